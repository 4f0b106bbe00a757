//! The standard backtest on a CSV event log, natively:
//!
//! ```sh
//! cargo run --release --example backtest -- [LOG.csv | scenario:KIND:SEED]
//! ```
//!
//! Columns are mapped as the page's CSV import guesses them; a scenario is
//! one of the simulator's drifting logs (`retrace::io::scenario`), 2,500
//! cases. Prints the
//! report as JSON: per model its name, MAE in days, training rows and
//! training seconds; the baseline's MAE; the counts of cases and evaluated
//! prefixes.

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: cargo run --release --example backtest -- LOG.csv | scenario:KIND:SEED");
        std::process::exit(2);
    };
    let log = if let Some(rest) = path.strip_prefix("scenario:") {
        let (kind, seed) = rest.split_once(':').unwrap_or((rest, "1"));
        let kind = retrace::io::scenario::Kind::parse(kind).unwrap_or_else(|| {
            fail(&format!(
                "no scenario {kind}: tail, trend, mix, months or instant"
            ))
        });
        let seed = seed
            .parse()
            .unwrap_or_else(|_| fail(&format!("seed: cannot read {seed}")));
        retrace::io::scenario::generate(kind, seed, 2_500)
    } else {
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| fail(&format!("cannot read {path}: {e}")));
        let sniffed =
            retrace::io::csv::sniff(&bytes).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
        retrace::io::csv::read_all(&bytes, sniffed.mapping, true)
            .unwrap_or_else(|e| fail(&format!("{path}: {e}")))
    };
    let cases = retrace::ml::backtest::cases_in_file_order(&log);
    let start = std::time::Instant::now();
    let clock = move || start.elapsed().as_secs_f64() * 1000.0;
    let report =
        retrace::ml::backtest::run(&cases, &retrace::ml::backtest::default_specs(), &clock)
            .unwrap_or_else(|e| fail(&e.to_string()));
    println!(
        "{}",
        serde_json::to_string_pretty(&report).expect("the report serialises")
    );
}

fn fail(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(1)
}
