//! Prequential evaluation of the feedback loop on a log: the log is replayed
//! as a stream through the same loop the page runs (predict every open case
//! on each event, record, score on close, detect drift, retrain, promote),
//! and what the loop served is compared with the median baseline on exactly
//! the same predictions. Prints one JSON report on stdout.
//!
//! cargo run --release --example prequential -- [LOG.csv | scenario:KIND:SEED] [key=value …]
//!
//! KIND is one of `retrace::io::scenario::Kind` (tail, trend, mix, months,
//! instant): a seeded synthetic log of 2,500 cases (`cases=N` for more or
//! fewer). keys: first (cases before the first model, 300), every (retrain
//! every N closed cases, 250; 0 off), drift (retrain on drift, true), window
//! (cases to train on, 0 = all kept), trees (serve a forest of N trees
//! instead of choosing on validation), commit (events per commit, 20),
//! journal (true: print what the loop did to stderr).

use retrace::engine::Harness;
use retrace::io::parsed::{Completion, ParsedLog};
use retrace::io::staged::to_appends;
use retrace::ml::feedback_loop::Policy;
use retrace::ml::models::{Algorithm, Spec};
use retrace::ml::prequential::{longest_case_days, Report};

fn main() {
    if let Err(e) = run() {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1).peekable();
    let source = match args.peek() {
        Some(a) if !a.contains('=') => args.next().unwrap_or_default(),
        _ => "../shared/data/helpdesk.csv".to_string(),
    };
    let mut policy = Policy::prequential();
    let mut spec = None;
    let mut commit = 20;
    let mut cases = 2_500;
    let mut journal = false;
    for arg in args {
        let (k, v) = arg
            .split_once('=')
            .ok_or(format!("expected key=value, got {arg}"))?;
        let bad = |_| format!("{k}: cannot read {v}");
        match k {
            "first" => policy.first_after = v.parse().map_err(bad)?,
            "every" => policy.retrain_every = v.parse().map_err(bad)?,
            "drift" => {
                policy.retrain_on_drift = v.parse().map_err(|_| format!("{k}: true or false"))?
            }
            "window" => policy.window = v.parse().map_err(bad)?,
            "trees" => {
                spec = Some(Spec {
                    trees: v.parse().map_err(bad)?,
                    ..Spec::new(Algorithm::RandomForest)
                })
            }
            "commit" => commit = v.parse().map_err(bad)?,
            "cases" => cases = v.parse().map_err(bad)?,
            "journal" => journal = v == "true",
            other => return Err(format!("unknown key {other}")),
        }
    }
    let log = load(&source, cases)?;
    let (appends, counts) = to_appends(&log, "log", &Completion::AllComplete, "p");
    let t0 = std::time::Instant::now();
    let mut h = Harness::new(policy.clone(), spec);
    h.stream(appends, commit)?;
    if journal {
        for line in &h.journal {
            eprintln!("  {line}");
        }
    }
    let report = Report::of(
        &source,
        &h.set().feedback.state,
        &h.journal,
        counts.cases as usize,
        longest_case_days(&log),
        t0.elapsed().as_secs_f64(),
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&report).expect("the report serialises")
    );
    Ok(())
}

fn load(source: &str, cases: usize) -> Result<ParsedLog, String> {
    if let Some(rest) = source.strip_prefix("scenario:") {
        let (kind, seed) = rest.split_once(':').unwrap_or((rest, "1"));
        let kind = retrace::io::scenario::Kind::parse(kind).ok_or(format!(
            "no scenario {kind}: tail, trend, mix, months or instant"
        ))?;
        let seed = seed
            .parse()
            .map_err(|_| format!("seed: cannot read {seed}"))?;
        return Ok(retrace::io::scenario::generate(kind, seed, cases));
    }
    let bytes = std::fs::read(source).map_err(|e| format!("{source}: {e}"))?;
    let mapping = retrace::io::csv::sniff(&bytes)
        .map_err(|e| e.to_string())?
        .mapping;
    retrace::io::csv::read_all(&bytes, mapping, false).map_err(|e| e.to_string())
}
