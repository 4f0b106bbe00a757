//! Prequential evaluation of the feedback loop on a real log: the log is
//! replayed as a stream through the same loop the page runs (predict every
//! open case on each event, record, score on close, detect drift, retrain,
//! promote), and what the loop served is compared with the median baseline
//! on exactly the same predictions.
//!
//! cargo run --release --example prequential -- [file.csv] [key=value …]
//! keys: first (cases before the first model, 300), every (retrain every N
//! closed cases, 500; 0 off), drift (retrain on drift, true), window (cases
//! to train on, 0 = all kept), trees (100), commit (events per commit, 20).

use retrace::engine::Harness;
use retrace::io::csv::{read_all, sniff};
use retrace::io::parsed::Completion;
use retrace::io::staged::to_appends;
use retrace::ml::feedback_loop::Policy;
use retrace::ml::models::{Algorithm, Spec};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1).peekable();
    let file = match args.peek() {
        Some(a) if !a.contains('=') => args.next().unwrap_or_default(),
        _ => "../shared/data/helpdesk.csv".to_string(),
    };
    let mut policy = Policy {
        first_after: 300,
        retrain_every: 500,
        window: 0,
        ..Policy::default()
    };
    let mut spec = Spec::new(Algorithm::RandomForest);
    // As the page: the model to serve is chosen on validation, unless
    // `trees=N` asks for a forest of N trees.
    let mut choose = true;
    let mut commit = 20;
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
                spec.trees = v.parse().map_err(bad)?;
                choose = false;
            }
            "commit" => commit = v.parse().map_err(bad)?,
            other => return Err(format!("unknown key {other}")),
        }
    }
    let bytes = std::fs::read(&file).map_err(|e| format!("{file}: {e}"))?;
    let mapping = sniff(&bytes).map_err(|e| e.to_string())?.mapping;
    let parsed = read_all(&bytes, mapping, false).map_err(|e| e.to_string())?;
    let (appends, counts) = to_appends(&parsed, "log", &Completion::AllComplete, "p");
    let t0 = std::time::Instant::now();
    let mut h = Harness::new(policy.clone(), (!choose).then_some(spec));
    h.stream(appends, commit)?;
    let f = &h.set().feedback.state;
    let s = &f.served;
    for line in &h.journal {
        println!("  {line}");
    }
    println!(
        "{file}: {} cases, {} events replayed in {:.1} s; policy {policy:?}",
        counts.cases,
        counts.events,
        t0.elapsed().as_secs_f64()
    );
    println!(
        "served predictions scored: {}; MAE {:.3} d; median baseline on the same predictions {:.3} d; skill {:+.1} %; bias {:+.3} d",
        s.outcomes,
        s.mae().unwrap_or(f64::NAN),
        s.baseline_mae().unwrap_or(f64::NAN),
        s.skill().unwrap_or(f64::NAN) * 100.0,
        s.bias().unwrap_or(f64::NAN)
    );
    println!(
        "80 % intervals: {:.1} % of served outcomes inside, mean width {:.2} d",
        s.coverage().unwrap_or(f64::NAN) * 100.0,
        s.mean_width().unwrap_or(f64::NAN)
    );
    let trained = h.journal.iter().filter(|l| l.contains(" trained ")).count();
    let promoted = h
        .journal
        .iter()
        .filter(|l| l.starts_with("Promote"))
        .count();
    println!(
        "models trained {trained}, challengers promoted {promoted}, champion {}",
        f.champion.as_deref().unwrap_or("none")
    );
    Ok(())
}
