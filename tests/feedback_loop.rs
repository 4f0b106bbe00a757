//! The feedback loop end to end on the memory store: the simulator with a
//! scheduled drift drives predictions, scoring, drift detection, retraining
//! and promotion — and a replay of the log gives the same state.
#![cfg(not(target_arch = "wasm32"))]

use futures::executor::block_on;
use retrace::domain::calendar::DAY;
use retrace::domain::simulator::{Drift, Settings, Simulator};
use retrace::domain::{decode, Fact};
use retrace::ml::feedback_loop::{decide, Decision, Harness, Policy};
use retrace::ml::models::{Algorithm, Spec};
use retrace::projection::feedback::MarkerKind;
use retrace::projection::{replay, Feedback, ProjectionSet};
use retrace::store::{by_stream, EventStore};

fn demo_policy() -> Policy {
    Policy {
        first_after: 150,
        ..Policy::default()
    }
}

fn spec() -> Spec {
    Spec {
        trees: 30,
        ..Spec::new(Algorithm::RandomForest)
    }
}

/// Run the simulator through the loop until `events` source events.
fn run(seed: u64, drift_after_cases: u64, events: usize) -> Harness {
    run_with(seed, drift_after_cases, events, Some(spec()))
}

/// [`run`], with the model to serve chosen on validation (as the page does).
fn run_choosing(seed: u64, drift_after_cases: u64, events: usize) -> Harness {
    run_with(seed, drift_after_cases, events, None)
}

fn run_with(seed: u64, drift_after_cases: u64, events: usize, spec: Option<Spec>) -> Harness {
    let mut sim = Simulator::new(Settings {
        seed,
        drift: Some((drift_after_cases, Drift::WorkDoubles("repair".into()))),
        // Busy but stable, before the drift and after it.
        cases_per_day: 3.0,
        ..Settings::default()
    });
    let mut h = Harness::new(demo_policy(), spec);
    let mut fed = 0;
    while fed < events {
        let next = sim.next_events(50);
        fed += next.len();
        h.feed(by_stream(next)).unwrap();
    }
    h
}

fn types(h: &Harness) -> Vec<(u64, i64, String)> {
    block_on(h.store.read_all(1, usize::MAX))
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.occurred_at, e.event_type))
        .collect()
}

#[test]
fn the_demo_detects_drift_retrains_and_promotes() {
    // The page's demo: its seed, and the model chosen on validation.
    let h = run_choosing(6, 400, 9_000);
    let log = types(&h);
    let first = |t: &str| {
        log.iter()
            .find(|(_, _, ty)| ty == t)
            .map(|(s, at, _)| (*s, *at))
    };
    let changed = first("ProcessChanged").expect("the drift was injected");
    let drift = first("DriftDetected").expect("the detector fired");
    let challenger = first("ChallengerStarted").expect("a challenger was trained");
    let promoted: Vec<_> = log
        .iter()
        .filter(|(_, _, t)| t == "ModelPromoted")
        .collect();
    assert!(
        drift.0 > changed.0,
        "the alarm comes after the change: {drift:?} {changed:?}"
    );
    assert!(challenger.0 > drift.0, "retrained after the alarm");
    assert!(
        promoted.len() >= 2,
        "first model and a promoted challenger: {:?}\n{:#?}",
        promoted,
        h.journal
    );
    let f = &h.set.feedback.state;
    let champion = f.champion.clone().unwrap();
    assert_ne!(
        champion, "model-1",
        "the first model was replaced: {:#?}",
        h.journal
    );
    // What the loop served: its rolling error peaked between the change and
    // the promotion, and in the days after the promotion it is lower.
    let promoted_at = f
        .markers
        .iter()
        .find(|m| m.kind == MarkerKind::Promoted && m.at > changed.1)
        .expect("a promotion after the change")
        .at;
    let served = &f.served.series;
    let peak = served
        .iter()
        .filter(|(t, _)| *t > changed.1 && *t <= promoted_at)
        .map(|(_, m)| *m)
        .fold(0.0, f64::max);
    let after: Vec<f64> = served
        .iter()
        .filter(|(t, _)| *t > promoted_at && *t <= promoted_at + 10 * DAY)
        .map(|(_, m)| *m)
        .collect();
    let after = after.iter().sum::<f64>() / after.len() as f64;
    eprintln!("served rolling MAE: peak {peak:.2} d before the promotion, {after:.2} d in the 10 days after");
    assert!(
        after < peak,
        "rolling MAE {after:.2} d after the promotion is below the peak {peak:.2} d"
    );
}

#[test]
fn without_drift_alarms_are_rare_and_the_first_model_serves_well() {
    let h = run(8, u64::MAX, 9_000);
    let log = types(&h);
    let alarms = log.iter().filter(|(_, _, t)| t == "DriftDetected").count();
    let served = &h.set.feedback.state.served;
    assert!(served.outcomes > 4_000);
    assert!(
        alarms as u64 <= served.outcomes / 2_000,
        "{alarms} alarms on {} stationary outcomes",
        served.outcomes
    );
    assert!(served.skill().unwrap() > 0.1, "the model beats the median");
}

#[test]
fn a_replay_of_the_log_gives_the_same_metrics_and_champion() {
    let h = run(42, 400, 12_000);
    let mut again = ProjectionSet::default();
    block_on(replay(&mut again, &h.store, u64::MAX, 1000, |_| {})).unwrap();
    assert_eq!(again.feedback.state, h.set.feedback.state);
    assert_eq!(again.seq(), h.set.seq());
    // Every prediction names its cause, an event earlier in the log.
    let all = block_on(h.store.read_all(1, usize::MAX)).unwrap();
    let ids: std::collections::HashMap<String, u64> =
        all.iter().map(|e| (e.id.clone(), e.seq)).collect();
    for e in all.iter().filter(|e| e.event_type == "PredictionRecorded") {
        let cause = e.causation.as_ref().expect("a prediction names its cause");
        assert!(ids[cause] < e.seq);
        assert!(matches!(
            decode(e.clone()).unwrap().fact,
            Fact::PredictionRecorded(_)
        ));
    }
}

#[test]
fn the_policy_decides_from_the_log_state() {
    let policy = Policy {
        first_after: 10,
        retrain_every: 50,
        ..Policy::default()
    };
    let mut f = Feedback::default();
    assert_eq!(decide(&f, &policy), None, "too few cases for a first model");
    f.closed = 10;
    assert_eq!(
        decide(&f, &policy),
        Some(Decision::Train {
            reason: "first model",
            window: 400
        })
    );
    f.champion = Some("model-1".into());
    f.closed_at_last_model = 10;
    assert_eq!(decide(&f, &policy), None);
    f.closed = 60;
    assert_eq!(
        decide(&f, &policy),
        Some(Decision::Train {
            reason: "schedule",
            window: 400
        })
    );
    f.closed = 20;
    f.champion_drifted = true;
    f.closed_since_onset = 149;
    assert_eq!(
        decide(&f, &policy),
        None,
        "after drift, waits for 150 cases of the new regime"
    );
    f.closed_since_onset = 175;
    assert_eq!(
        decide(&f, &policy),
        Some(Decision::Train {
            reason: "drift",
            window: 175
        }),
        "and trains on the cases closed since the rise began"
    );
    f.challenger = Some("model-2".into());
    f.duel = vec![(10.0, 5.0); 99];
    assert_eq!(decide(&f, &policy), None, "waits for k shared outcomes");
    f.duel.push((10.0, 5.0));
    match decide(&f, &policy) {
        Some(Decision::Promote(p)) => {
            assert_eq!(p.model, "model-2");
            assert_eq!(p.replaced.as_deref(), Some("model-1"));
            assert_eq!(p.outcomes, 100);
            assert_eq!(p.challenger_mae_d, Some(5.0));
        }
        other => panic!("expected a promotion, got {other:?}"),
    }
    f.duel = vec![(10.0, 9.9); 100];
    assert!(matches!(decide(&f, &policy), Some(Decision::Retire(_))));
}

/// The loop on a real log: helpdesk.csv replayed as a stream, the first
/// model trained on its first 300 cases, retrained on drift and every 500
/// closed cases. What it served beats the median baseline on the same
/// predictions.
#[test]
fn prequential_replay_of_helpdesk_beats_the_median() {
    use retrace::io::csv::{read_all, sniff};
    use retrace::io::parsed::Completion;
    use retrace::io::staged::to_appends;
    let bytes =
        std::fs::read("../shared/data/helpdesk.csv").expect("helpdesk.csv beside the project");
    let parsed = read_all(&bytes, sniff(&bytes).unwrap().mapping, false).unwrap();
    let (appends, _) = to_appends(&parsed, "helpdesk", &Completion::AllComplete, "hd");
    let mut h = Harness::new(
        Policy {
            first_after: 300,
            retrain_every: 500,
            window: 0,
            ..Policy::default()
        },
        Some(spec()),
    );
    h.stream(appends, 20).unwrap();
    let served = &h.set.feedback.state.served;
    let (mae, baseline) = (served.mae().unwrap(), served.baseline_mae().unwrap());
    eprintln!(
        "helpdesk prequential: {} predictions scored, MAE {mae:.3} d, median baseline {baseline:.3} d, skill {:+.1} %\n{:#?}",
        served.outcomes,
        served.skill().unwrap() * 100.0,
        h.journal
    );
    assert!(
        served.outcomes > 5_000,
        "most prefixes were predicted and scored"
    );
    assert!(
        mae < baseline,
        "MAE {mae:.3} d beats the median's {baseline:.3} d"
    );
    assert_eq!(
        served.pending, 0,
        "every case closed, every prediction scored"
    );
}

/// Closed cases up to each position of the log, and the model events.
fn story(h: &Harness) -> (Vec<(u64, String)>, u64) {
    let mut closed = 0u64;
    let mut out = Vec::new();
    for e in block_on(h.store.read_all(1, usize::MAX)).unwrap() {
        match e.event_type.as_str() {
            "CaseClosed" => closed += 1,
            "ProcessChanged" | "DriftDetected" | "ChallengerStarted" | "ModelPromoted"
            | "ModelRetired" => out.push((closed, e.event_type.clone())),
            _ => {}
        }
    }
    (out, closed)
}

/// Run the simulator (seeded, with or without the demo's change after 400
/// cases) through the loop until `cases` have closed.
fn run_cases(seed: u64, drift: bool, cases: u64) -> Harness {
    let mut sim = Simulator::new(Settings {
        seed,
        drift: drift.then(|| (400, Drift::WorkDoubles("repair".into()))),
        cases_per_day: 3.0,
        ..Settings::default()
    });
    let mut h = Harness::new(demo_policy(), Some(spec()));
    while h.set.feedback.state.closed < cases {
        h.feed(by_stream(sim.next_events(50))).unwrap();
    }
    h
}

#[test]
fn on_twenty_seeds_the_change_is_detected_within_200_cases_and_never_before() {
    let mut delays = Vec::new();
    for seed in 0..20 {
        let (story, _) = story(&run_cases(seed, true, 620));
        let changed = story
            .iter()
            .find(|(_, t)| t == "ProcessChanged")
            .expect("changed")
            .0;
        let first = story
            .iter()
            .find(|(_, t)| t == "DriftDetected")
            .map(|(c, _)| *c);
        let first =
            first.unwrap_or_else(|| panic!("seed {seed}: no alarm by 620 cases: {story:?}"));
        assert!(
            first > changed,
            "seed {seed}: an alarm before the change: {story:?}"
        );
        delays.push(first - changed);
    }
    eprintln!("closed cases from the change to the alarm, 20 seeds: {delays:?}");
    assert!(delays.iter().all(|d| *d <= 200), "{delays:?}");
}

#[test]
fn without_a_change_alarms_are_rarer_than_two_per_ten_thousand_cases() {
    let (mut alarms, mut cases) = (0usize, 0u64);
    for seed in 0..20 {
        let (story, closed) = story(&run_cases(seed, false, 1500));
        alarms += story.iter().filter(|(_, t)| t == "DriftDetected").count();
        cases += closed;
    }
    let rate = alarms as f64 / cases as f64 * 10_000.0;
    eprintln!("{alarms} alarms in {cases} closed cases without drift: {rate:.2} per 10,000");
    assert!(rate <= 2.0, "{alarms} alarms in {cases} cases");
}
