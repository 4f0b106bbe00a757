//! The feedback loop end to end on the memory store: the simulator with a
//! scheduled drift drives predictions, scoring, drift detection, retraining
//! and promotion — and a replay of the log gives the same state.
#![cfg(not(target_arch = "wasm32"))]

use futures::executor::block_on;
use retrace::domain::calendar::DAY;
use retrace::domain::calendar::HOUR;
use retrace::domain::events::{
    CaseClosed, CaseOpened, ChallengerStarted, ModelPromoted, PredictionRecorded, MODELS_STREAM,
};
use retrace::domain::simulator::{Drift, Settings, Simulator};
use retrace::domain::{decode, Fact};
use retrace::engine::Harness;
use retrace::log::NewEvent;
use retrace::ml::feedback_loop::{decide, Decision, Policy};
use retrace::ml::feedback_loop::{verdict_event, Stamp};
use retrace::ml::models::{Algorithm, Spec};
use retrace::projection::feedback::MarkerKind;
use retrace::projection::{replay, Feedback, ProjectionSet};
use retrace::store::memory::MemoryStore;
use retrace::store::{by_stream, EventStore, ExpectedVersion, StreamAppend};

fn demo_policy() -> Policy {
    Policy::demo()
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
        drift: Some((drift_after_cases, Drift::PartsWait("repair".into()))),
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
    let f = &h.set().feedback.state;
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
    let served = &h.set().feedback.state.served;
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
    assert_eq!(again.feedback.state, h.set().feedback.state);
    assert_eq!(again.seq(), h.set().seq());
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
        ..Policy::demo()
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
    f.closed_since_alarm = 199;
    assert_eq!(
        decide(&f, &policy),
        None,
        "after drift, waits for 200 cases of the new regime"
    );
    f.closed_since_alarm = 200;
    assert_eq!(
        decide(&f, &policy),
        Some(Decision::Train {
            reason: "drift",
            window: 200
        }),
        "and trains on the cases closed since the alarm"
    );
}

/// A log built event by event, as the loop's given/when/then tests need:
/// each event is appended to the memory store, read back and folded, so
/// the projections see exactly what a replay of the log would.
struct Given {
    store: MemoryStore,
    set: ProjectionSet,
    n: u64,
}

impl Given {
    fn new() -> Self {
        Given {
            store: MemoryStore::new(),
            set: ProjectionSet::default(),
            n: 0,
        }
    }

    fn event<T: serde::Serialize>(
        &mut self,
        stream: &str,
        (kind, schema): (&str, u32),
        hour: i64,
        payload: &T,
    ) {
        self.n += 1;
        let e = NewEvent::new(format!("e{}", self.n), kind, schema, hour * HOUR, payload);
        self.append(StreamAppend::new(stream, ExpectedVersion::Any, vec![e]));
    }

    fn append(&mut self, append: StreamAppend) {
        block_on(self.store.append_batch(vec![append])).unwrap();
        for e in block_on(self.store.read_all(self.set.seq() + 1, usize::MAX)).unwrap() {
            self.set.apply(&decode(e).unwrap());
        }
    }

    /// `model` is the first champion (at hour 0).
    fn champion(&mut self, model: &str) {
        let promoted = ModelPromoted {
            model: model.into(),
            replaced: None,
            reason: "first model".into(),
            champion_mae_d: None,
            challenger_mae_d: None,
            outcomes: 0,
            term: None,
        };
        let kind = (ModelPromoted::TYPE, ModelPromoted::SCHEMA);
        self.event(MODELS_STREAM, kind, 0, &promoted);
    }

    /// `model` starts as challenger (at hour 0), trained after an alarm.
    fn challenger(&mut self, model: &str) {
        let started = ChallengerStarted {
            model: model.into(),
            reason: "drift".into(),
            median_h: 24.0,
            train_cases: 150,
            term: None,
        };
        let kind = (ChallengerStarted::TYPE, ChallengerStarted::SCHEMA);
        self.event(MODELS_STREAM, kind, 0, &started);
    }

    fn opened(&mut self, case: &str, hour: i64) {
        let c = CaseOpened {
            case: case.into(),
            attributes: Default::default(),
        };
        self.event(
            &format!("case-{case}"),
            (CaseOpened::TYPE, CaseOpened::SCHEMA),
            hour,
            &c,
        );
    }

    fn closed(&mut self, case: &str, hour: i64) {
        let c = CaseClosed {
            case: case.into(),
            outcome: None,
        };
        self.event(
            &format!("case-{case}"),
            (CaseClosed::TYPE, CaseClosed::SCHEMA),
            hour,
            &c,
        );
    }

    fn predicted(&mut self, case: &str, model: &str, hour: i64, predicted_h: f64) {
        let p = PredictionRecorded {
            case: case.into(),
            model: model.into(),
            predicted_h,
            baseline_h: 24.0,
            prefix_len: 1,
            shadow: model != "model-1",
            low_h: None,
            high_h: None,
        };
        self.event(
            &format!("predictions-{model}"),
            (PredictionRecorded::TYPE, PredictionRecorded::SCHEMA),
            hour,
            &p,
        );
    }
}

/// Given a champion and a challenger, and the cases opened after the
/// challenger started — half quick (where the challenger errs a little
/// more), half slow (where the champion, blind to a change, errs by days) —
/// when the quick ones have closed, the loop waits: judging now would judge
/// on the quickest cases only. When every one has closed, it promotes the
/// challenger, and the `ModelPromoted` it records carries both MAEs over
/// every shared prediction.
#[test]
fn given_a_duel_the_loop_judges_whole_cases_not_the_first_outcomes() {
    let policy = Policy {
        duel_cases: 20,
        ..Policy::demo()
    };
    let mut g = Given::new();
    g.champion("model-1");
    g.challenger("model-2");
    // Twenty cases open at hour 1..=20; each is predicted as it opens.
    // Quick cases (odd) close 12 h later: champion says 12 h (right),
    // challenger 18 h (6 h off). Slow ones (even) close 96 h later:
    // champion says 24 h (3 days off), challenger 90 h (6 h off).
    for i in 1..=20i64 {
        let case = format!("c{i}");
        g.opened(&case, i);
        let quick = i % 2 == 1;
        g.predicted(&case, "model-1", i, if quick { 12.0 } else { 24.0 });
        g.predicted(&case, "model-2", i, if quick { 18.0 } else { 90.0 });
    }
    for i in (1..=20i64).filter(|i| i % 2 == 1) {
        g.closed(&format!("c{i}"), i + 12);
    }
    let f = &g.set.feedback.state;
    assert_eq!(f.duel.len(), 10, "ten shared predictions scored");
    let (champion, challenger, _) = f.duel_mae().unwrap();
    assert!(
        challenger > champion,
        "on the quick cases alone the challenger looks worse"
    );
    assert_eq!(
        decide(f, &policy),
        None,
        "when half the duel's cases are open, the loop waits"
    );

    for i in (1..=20i64).filter(|i| i % 2 == 0) {
        g.closed(&format!("c{i}"), i + 96);
    }
    let decision =
        decide(&g.set.feedback.state, &policy).expect("every duel case closed: a verdict");
    let append = verdict_event(&g.set, &decision, &Stamp::local()).expect("a verdict is an event");
    assert_eq!(append.stream, MODELS_STREAM);
    let recorded: ModelPromoted = serde_json::from_str(&append.events[0].data).unwrap();
    assert_eq!(append.events[0].event_type, ModelPromoted::TYPE);
    assert_eq!(recorded.model, "model-2");
    assert_eq!(recorded.replaced.as_deref(), Some("model-1"));
    assert_eq!(recorded.outcomes, 20);
    let (c, ch) = (
        recorded.champion_mae_d.unwrap(),
        recorded.challenger_mae_d.unwrap(),
    );
    assert!(
        (c - 1.5).abs() < 1e-9,
        "champion: 0 on ten, 3 days on ten: {c}"
    );
    assert!(
        (ch - 0.25).abs() < 1e-9,
        "challenger: 6 h on all twenty: {ch}"
    );

    // Then: recorded, the promotion ends the duel and a new one can begin.
    g.append(append);
    let f = &g.set.feedback.state;
    assert_eq!(f.champion.as_deref(), Some("model-2"));
    assert_eq!(f.challenger, None);
    assert_eq!(decide(f, &policy), None);
}

/// Given a challenger whose duel cases closed with both models even, the
/// loop retires it: a model must beat the champion by the margin.
#[test]
fn given_an_even_duel_the_loop_retires_the_challenger() {
    let policy = Policy {
        duel_cases: 5,
        ..Policy::demo()
    };
    let mut g = Given::new();
    g.champion("model-1");
    // A case opened before the challenger started is not part of its duel.
    g.opened("before", 0);
    g.predicted("before", "model-1", 0, 10.0);
    g.challenger("model-2");
    g.predicted("before", "model-2", 1, 30.0);
    for i in 1..=5i64 {
        let case = format!("c{i}");
        g.opened(&case, i);
        g.predicted(&case, "model-1", i, 20.0);
        g.predicted(&case, "model-2", i, 28.0);
    }
    g.closed("before", 6);
    for i in 1..=4i64 {
        g.closed(&format!("c{i}"), i + 24);
    }
    assert_eq!(
        decide(&g.set.feedback.state, &policy),
        None,
        "c5 is still open"
    );
    g.closed("c5", 5 + 24);
    let Some(Decision::Retire(r)) = decide(&g.set.feedback.state, &policy) else {
        panic!("expected a retirement");
    };
    assert_eq!(r.model, "model-2");
    assert_eq!(
        r.outcomes, 5,
        "the case opened before it started does not count"
    );
    assert_eq!(r.champion_mae_d, r.challenger_mae_d, "4 h off either way");
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
            ..Policy::demo()
        },
        Some(spec()),
    );
    h.stream(appends, 20).unwrap();
    let served = &h.set().feedback.state.served;
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
    // The intervals, recalibrated as outcomes arrive, hold about 80 %.
    let coverage = served.coverage().unwrap();
    eprintln!(
        "80 % intervals: {:.1} % inside, mean width {:.1} d",
        coverage * 100.0,
        served.mean_width().unwrap()
    );
    assert!(
        (0.77..=0.83).contains(&coverage),
        "prequential coverage {:.1} %",
        coverage * 100.0
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
/// cases) through the loop until `cases` have closed; `spec` None chooses
/// each model on validation, as the page does.
fn run_cases(seed: u64, drift: bool, cases: u64, spec: Option<Spec>) -> Harness {
    let mut sim = Simulator::new(Settings {
        seed,
        drift: drift.then(|| (400, Drift::PartsWait("repair".into()))),
        cases_per_day: 3.0,
        ..Settings::default()
    });
    let mut h = Harness::new(demo_policy(), spec);
    while h.set().feedback.state.closed < cases {
        h.feed(by_stream(sim.next_events(50))).unwrap();
    }
    h
}

/// The demo's story on twenty seeds, each to 3,000 closed cases, the models
/// chosen as the page chooses them: the change is found within 150 closed
/// cases and never before it, and it is the only alarm; one challenger is
/// trained and promoted (the first model aside), none retired.
#[test]
fn on_twenty_seeds_the_demo_tells_one_story() {
    let mut delays = Vec::new();
    for seed in 0..20 {
        let (story, _) = story(&run_cases(seed, true, 3_000, None));
        let count = |t: &str| story.iter().filter(|(_, ty)| ty == t).count();
        let at = |t: &str| story.iter().find(|(_, ty)| ty == t).map(|(c, _)| *c);
        let changed = at("ProcessChanged").expect("changed");
        let alarm =
            at("DriftDetected").unwrap_or_else(|| panic!("seed {seed}: no alarm: {story:?}"));
        assert!(
            alarm > changed,
            "seed {seed}: an alarm before the change: {story:?}"
        );
        delays.push(alarm - changed);
        assert_eq!(
            count("DriftDetected"),
            1,
            "seed {seed}: one alarm: {story:?}"
        );
        assert_eq!(
            count("ChallengerStarted"),
            1,
            "seed {seed}: one challenger: {story:?}"
        );
        assert_eq!(
            count("ModelPromoted"),
            2,
            "seed {seed}: the first model and one promotion: {story:?}"
        );
        assert_eq!(count("ModelRetired"), 0, "seed {seed}: {story:?}");
    }
    eprintln!("closed cases from the change to the alarm, 20 seeds: {delays:?}");
    assert!(delays.iter().all(|d| *d <= 150), "{delays:?}");
}

#[test]
fn without_a_change_alarms_are_rarer_than_one_per_ten_thousand_cases() {
    let (mut alarms, mut cases) = (0usize, 0u64);
    for seed in 0..20 {
        let (story, closed) = story(&run_cases(seed, false, 3_000, Some(spec())));
        alarms += story.iter().filter(|(_, t)| t == "DriftDetected").count();
        cases += closed;
    }
    let rate = alarms as f64 / cases as f64 * 10_000.0;
    eprintln!("{alarms} alarms in {cases} closed cases without drift: {rate:.2} per 10,000");
    assert!(rate <= 1.0, "{alarms} alarms in {cases} cases");
}
