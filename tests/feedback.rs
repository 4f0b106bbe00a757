//! Prequential feedback: the projection's metrics equal metrics recomputed
//! from scratch.
#![cfg(not(target_arch = "wasm32"))]

use futures::executor::block_on;
use proptest::prelude::*;
use retrace::domain::decode;
use retrace::domain::events::{CaseClosed, CaseOpened, PredictionRecorded};
use retrace::log::NewEvent;
use retrace::projection::feedback::ROLLING;
use retrace::projection::{Feedback, Projection};
use retrace::store::memory::MemoryStore;
use retrace::store::{EventStore, ExpectedVersion};

const H: i64 = 3_600_000;

/// A case: when it opens, its predictions (hour offset, model, predicted h,
/// baseline h), and when it closes (None: still open).
type Plan = (i64, Vec<(i64, u8, f64, f64)>, Option<i64>);

fn plans() -> impl Strategy<Value = Vec<Plan>> {
    prop::collection::vec(
        (
            0i64..500,
            prop::collection::vec((0i64..50, 0u8..2, 0.0f64..300.0, 0.0f64..300.0), 0..5),
            prop::option::weighted(0.8, 50i64..400),
        ),
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn feedback_metrics_equal_a_recomputation(plans in plans()) {
        // Events in time order, as the log would hold them.
        let mut events: Vec<(i64, NewEvent)> = Vec::new();
        for (i, (open, predictions, close)) in plans.iter().enumerate() {
            let case = format!("c{i}");
            events.push((open * H, NewEvent::new(format!("o{i}"), CaseOpened::TYPE, CaseOpened::SCHEMA, open * H, &CaseOpened { case: case.clone(), attributes: Default::default() })));
            for (k, (at, model, p, b)) in predictions.iter().enumerate() {
                let (low_h, high_h) = if *model == 0 { (Some(p * 0.5), Some(p * 1.5)) } else { (None, None) };
                let payload = PredictionRecorded { case: case.clone(), model: format!("model-{model}"), predicted_h: *p, baseline_h: *b, prefix_len: k as u32, shadow: *model == 1, low_h, high_h };
                events.push(((open + at) * H, NewEvent::new(format!("p{i}-{k}"), PredictionRecorded::TYPE, PredictionRecorded::SCHEMA, (open + at) * H, &payload)));
            }
            if let Some(c) = close {
                events.push(((open + 50 + c) * H, NewEvent::new(format!("c{i}"), CaseClosed::TYPE, CaseClosed::SCHEMA, (open + 50 + c) * H, &CaseClosed { case: case.clone(), outcome: None })));
            }
        }
        events.sort_by_key(|(t, _)| *t);
        let store = MemoryStore::new();
        for (_, e) in &events {
            block_on(store.append("s", ExpectedVersion::Any, vec![e.clone()])).unwrap();
        }
        let mut feedback = Feedback::default();
        for e in block_on(store.read_all(1, usize::MAX)).unwrap() {
            feedback.apply(&decode(e).unwrap());
        }

        // From scratch: every prediction of a closed case, by model, in the
        // order the closes happened.
        let mut closes: Vec<(i64, usize)> = plans.iter().enumerate().filter_map(|(i, (o, _, c))| c.map(|c| ((o + 50 + c) * H, i))).collect();
        closes.sort();
        for model in 0u8..2 {
            let name = format!("model-{model}");
            let mut errors = Vec::new();
            let (mut base, mut signed, mut delay) = (0.0, 0.0, 0.0);
            for (closed_at, i) in &closes {
                let (open, predictions, _) = &plans[*i];
                for (at, m, p, b) in predictions {
                    if *m != model { continue; }
                    let actual = (closed_at - (open + at) * H) as f64 / H as f64;
                    errors.push((p - actual).abs() / 24.0);
                    base += (b - actual).abs() / 24.0;
                    signed += (p - actual) / 24.0;
                    delay += actual / 24.0;
                }
            }
            let score = feedback.models.get(&name);
            if errors.is_empty() {
                prop_assert!(score.is_none_or(|s| s.outcomes == 0));
                continue;
            }
            let s = score.unwrap();
            let n = errors.len() as f64;
            prop_assert_eq!(s.outcomes as usize, errors.len());
            prop_assert!((s.mae().unwrap() - errors.iter().sum::<f64>() / n).abs() < 1e-9);
            prop_assert!((s.baseline_mae().unwrap() - base / n).abs() < 1e-9);
            prop_assert!((s.bias().unwrap() - signed / n).abs() < 1e-9);
            prop_assert!((s.label_delay().unwrap() - delay / n).abs() < 1e-9);
            // The domain-time window: outcomes closed within 7 days of the newest.
            let mut timed: Vec<(i64, f64)> = Vec::new();
            for (closed_at, i) in &closes {
                let (open, predictions, _) = &plans[*i];
                for (at, m, p, _) in predictions {
                    if *m == model {
                        let actual = (closed_at - (open + at) * H) as f64 / H as f64;
                        timed.push((*closed_at, (p - actual).abs() / 24.0));
                    }
                }
            }
            let newest = timed.iter().map(|t| t.0).max().unwrap();
            let recent: Vec<f64> = timed.iter().filter(|t| t.0 >= newest - 7 * 24 * H).map(|t| t.1).collect();
            let window = recent.iter().sum::<f64>() / recent.len() as f64;
            prop_assert!((s.window_mae().unwrap() - window).abs() < 1e-9);
            let k = errors.len().min(ROLLING);
            let rolling = errors[errors.len() - k..].iter().sum::<f64>() / k as f64;
            prop_assert!((s.rolling_mae(ROLLING).unwrap() - rolling).abs() < 1e-9);
            // Intervals: model-0's predictions carry [p/2, 3p/2]; model-1's none.
            let (mut inside, mut width) = (0usize, 0.0);
            for (closed_at, i) in &closes {
                let (open, predictions, _) = &plans[*i];
                for (at, m, p, _) in predictions {
                    if *m == model && model == 0 {
                        let actual = (closed_at - (open + at) * H) as f64 / H as f64;
                        inside += (p * 0.5 <= actual && actual <= p * 1.5) as usize;
                        width += p / 24.0;
                    }
                }
            }
            if model == 0 {
                prop_assert!((s.coverage().unwrap() - inside as f64 / n).abs() < 1e-9);
                prop_assert!((s.mean_width().unwrap() - width / n).abs() < 1e-9);
            } else {
                prop_assert_eq!(s.coverage(), None);
            }
        }
        // What was served: model-0's predictions (model-1's are shadow).
        prop_assert_eq!(feedback.served.outcomes, feedback.models.get("model-0").map_or(0, |s| s.outcomes));
        prop_assert_eq!(feedback.served.mae(), feedback.models.get("model-0").and_then(|s| s.mae()));
        let open_predictions: usize = plans.iter().filter(|(_, _, c)| c.is_none()).map(|(_, p, _)| p.len()).sum();
        let pending: u64 = feedback.models.values().map(|s| s.pending).sum();
        prop_assert_eq!(pending as usize, open_predictions, "predictions of open cases wait");
        // What was served waits too: model-0's predictions of open cases.
        let served_waiting: usize = plans.iter().filter(|(_, _, c)| c.is_none()).map(|(_, p, _)| p.iter().filter(|x| x.1 == 0).count()).sum();
        prop_assert_eq!(feedback.served.pending as usize, served_waiting, "served predictions of open cases wait");
    }
}

/// Given model events in the log, the registry lists every trained model
/// with the part it plays now.
#[test]
fn every_trained_model_is_listed_with_its_role() {
    use retrace::domain::events::{ChallengerStarted, ModelPromoted, ModelRetired};
    use retrace::domain::model::{Algorithm, ModelTrained, Spec, MODEL_FORMAT};
    use retrace::projection::feedback::Role;
    let trained = |id: &str| ModelTrained {
        id: id.into(),
        algorithm: "random forest (log target)".into(),
        spec: Spec::new(Algorithm::RandomForest),
        features: vec![],
        versions: vec![],
        format: MODEL_FORMAT,
        trained_to_seq: 1,
        train_cases: 10,
        rows: 20,
        rows_hash: "00".into(),
        holdout_cases: 2,
        holdout_rows: 4,
        holdout_mae_days: 1.0,
        baseline_mae_days: 2.0,
        seconds: 0.1,
        size_bytes: 100,
        median_h: 5.0,
        validation: vec![],
        choice: String::new(),
        sha256: String::new(),
    };
    let promoted = |model: &str, replaced: Option<&str>| ModelPromoted {
        model: model.into(),
        replaced: replaced.map(Into::into),
        reason: "test".into(),
        champion_mae_d: None,
        challenger_mae_d: None,
        outcomes: 0,
        term: None,
    };
    let challenger = |model: &str| ChallengerStarted {
        model: model.into(),
        reason: "drift".into(),
        median_h: 5.0,
        train_cases: 10,
        term: None,
    };
    let mut events: Vec<NewEvent> = Vec::new();
    let mut add = |t: &str, s: u32, json: serde_json::Value| {
        let id = format!("e{}", events.len());
        events.push(NewEvent::new(id, t, s, 0, &json))
    };
    add(
        ModelTrained::TYPE,
        ModelTrained::SCHEMA,
        serde_json::to_value(trained("model-1")).unwrap(),
    );
    add(
        ModelPromoted::TYPE,
        ModelPromoted::SCHEMA,
        serde_json::to_value(promoted("model-1", None)).unwrap(),
    );
    add(
        ModelTrained::TYPE,
        ModelTrained::SCHEMA,
        serde_json::to_value(trained("model-2")).unwrap(),
    );
    add(
        ChallengerStarted::TYPE,
        ChallengerStarted::SCHEMA,
        serde_json::to_value(challenger("model-2")).unwrap(),
    );
    add(
        ModelPromoted::TYPE,
        ModelPromoted::SCHEMA,
        serde_json::to_value(promoted("model-2", Some("model-1"))).unwrap(),
    );
    add(
        ModelTrained::TYPE,
        ModelTrained::SCHEMA,
        serde_json::to_value(trained("model-3")).unwrap(),
    );
    add(
        ChallengerStarted::TYPE,
        ChallengerStarted::SCHEMA,
        serde_json::to_value(challenger("model-3")).unwrap(),
    );
    let retired = ModelRetired {
        model: "model-3".into(),
        reason: "not better".into(),
        champion_mae_d: None,
        challenger_mae_d: None,
        outcomes: 0,
        term: None,
    };
    add(
        ModelRetired::TYPE,
        ModelRetired::SCHEMA,
        serde_json::to_value(retired).unwrap(),
    );
    add(
        ModelTrained::TYPE,
        ModelTrained::SCHEMA,
        serde_json::to_value(trained("model-4")).unwrap(),
    );
    add(
        ModelTrained::TYPE,
        ModelTrained::SCHEMA,
        serde_json::to_value(trained("model-5")).unwrap(),
    );
    add(
        ChallengerStarted::TYPE,
        ChallengerStarted::SCHEMA,
        serde_json::to_value(challenger("model-5")).unwrap(),
    );
    let store = MemoryStore::new();
    for e in events {
        block_on(store.append("s", ExpectedVersion::Any, vec![e])).unwrap();
    }
    let mut feedback = Feedback::default();
    for e in block_on(store.read_all(1, usize::MAX)).unwrap() {
        feedback.apply(&decode(e).unwrap());
    }
    let listed: Vec<(&str, Role)> = feedback
        .registered
        .iter()
        .map(|r| (r.record.id.as_str(), feedback.role(&r.record.id)))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("model-1", Role::Retired),
            ("model-2", Role::Champion),
            ("model-3", Role::Retired),
            ("model-4", Role::Registered),
            ("model-5", Role::Challenger),
        ]
    );
}

#[test]
fn a_rise_in_error_raises_one_drift_alarm_and_recording_it_settles_it() {
    use retrace::domain::events::DriftDetected;
    let store = MemoryStore::new();
    let mut t = 0i64;
    // 300 cases predicted 1 day off, then 300 predicted 10 days off.
    for i in 0..600 {
        let case = format!("c{i}");
        let off_h = if i < 300 { 24.0 } else { 240.0 };
        let open = NewEvent::new(
            format!("o{i}"),
            CaseOpened::TYPE,
            CaseOpened::SCHEMA,
            t,
            &CaseOpened {
                case: case.clone(),
                attributes: Default::default(),
            },
        );
        let p = PredictionRecorded {
            case: case.clone(),
            model: "model-1".into(),
            predicted_h: 48.0 + off_h,
            baseline_h: 48.0,
            prefix_len: 0,
            shadow: false,
            low_h: None,
            high_h: None,
        };
        let predicted = NewEvent::new(
            format!("p{i}"),
            PredictionRecorded::TYPE,
            PredictionRecorded::SCHEMA,
            t,
            &p,
        );
        let closed = NewEvent::new(
            format!("c{i}"),
            CaseClosed::TYPE,
            CaseClosed::SCHEMA,
            t + 48 * H,
            &CaseClosed {
                case,
                outcome: None,
            },
        );
        block_on(store.append("s", ExpectedVersion::Any, vec![open, predicted, closed])).unwrap();
        t += H;
    }
    let mut feedback = Feedback::default();
    for e in block_on(store.read_all(1, usize::MAX)).unwrap() {
        feedback.apply(&decode(e).unwrap());
    }
    let score = &feedback.models["model-1"];
    assert_eq!(score.alarms.len(), 1, "one alarm: {:?}", score.alarms);
    let alarm = score.alarms[0];
    let (statistic, outcomes) = (alarm.statistic, alarm.outcomes);
    assert!(
        (301..=330).contains(&outcomes),
        "raised soon after the rise, at outcome {outcomes}"
    );
    // Where the rise began, by the detector: around case 300's close.
    assert!(
        (290 * H..=305 * H).contains(&(alarm.since - 48 * H)),
        "onset estimated at {} h",
        (alarm.since - 48 * H) / H
    );
    let drifts = feedback.unrecorded_drifts();
    assert_eq!(drifts.len(), 1);
    assert_eq!(
        (drifts[0].model.as_str(), drifts[0].statistic),
        ("model-1", statistic)
    );
    // Once the DriftDetected event is in the log, nothing is left to record.
    let event = NewEvent::new(
        "d1",
        DriftDetected::TYPE,
        DriftDetected::SCHEMA,
        t,
        &drifts[0],
    );
    let c = block_on(store.append("drift", ExpectedVersion::Any, vec![event])).unwrap();
    feedback.apply(&decode(block_on(store.read_all(c.first_seq, 1)).unwrap().remove(0)).unwrap());
    assert!(feedback.unrecorded_drifts().is_empty());
}

/// A case that outlives its prediction's interval has missed it: the width
/// factors learn so at once, not when the case closes (months later, on a
/// slow log), and the miss is counted once.
#[test]
fn an_interval_outlived_widens_the_next_ones_before_its_case_closes() {
    let open = |i: u32, at: i64| {
        NewEvent::new(
            format!("o{i}"),
            CaseOpened::TYPE,
            CaseOpened::SCHEMA,
            at * H,
            &CaseOpened {
                case: format!("c{i}"),
                attributes: Default::default(),
            },
        )
    };
    let predicted = |i: u32, at: i64| {
        let payload = PredictionRecorded {
            case: format!("c{i}"),
            model: "model-1".into(),
            predicted_h: 5.0,
            baseline_h: 5.0,
            prefix_len: 0,
            shadow: false,
            low_h: Some(0.0),
            high_h: Some(10.0),
        };
        NewEvent::new(
            format!("p{i}"),
            PredictionRecorded::TYPE,
            PredictionRecorded::SCHEMA,
            at * H,
            &payload,
        )
    };
    let closed = |i: u32, at: i64| {
        NewEvent::new(
            format!("c{i}"),
            CaseClosed::TYPE,
            CaseClosed::SCHEMA,
            at * H,
            &CaseClosed {
                case: format!("c{i}"),
                outcome: None,
            },
        )
    };
    let store = MemoryStore::new();
    let mut feedback = Feedback::default();
    let mut fold = |e: NewEvent| {
        block_on(store.append("s", ExpectedVersion::Any, vec![e])).unwrap();
        let all = block_on(store.read_all(1, usize::MAX)).unwrap();
        feedback.apply(&decode(all.last().unwrap().clone()).unwrap());
        (
            feedback.served.stage_scales()[0],
            feedback.served.coverage(),
            feedback.served.interval_scale(),
        )
    };
    fold(open(1, 0));
    let (start, _, _) = fold(predicted(1, 0));
    assert_eq!(start, 1.0);
    // Nine hours on: still inside its interval, nothing learnt.
    let (scale, coverage, _) = fold(open(2, 9));
    assert_eq!((scale, coverage), (1.0, None));
    // Twenty hours on, c1 still open: its 10 h upper end has passed.
    let (widened, coverage, global) = fold(open(3, 20));
    assert!(
        widened > 1.0 && global > 1.0,
        "stage factor {widened}, model's {global}"
    );
    assert_eq!(coverage, None, "not scored until it closes");
    // It closes: scored as a miss, the factors not moved twice.
    let (after, coverage, _) = fold(closed(1, 30));
    assert_eq!(coverage, Some(0.0));
    assert_eq!(after, widened);
    // A prediction whose case closes inside narrows them again.
    fold(predicted(2, 31));
    let (narrowed, coverage, _) = fold(closed(2, 33));
    assert!(narrowed < after, "{narrowed} after a hit, {after} before");
    assert_eq!(coverage, Some(0.5));
}
