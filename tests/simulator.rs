//! The simulator: deterministic, structured, and drift that shows.
#![cfg(not(target_arch = "wasm32"))]

use retrace::domain::simulator::{Drift, Settings, Simulator};
use retrace::domain::{decode, Fact};
use retrace::store::memory::MemoryStore;
use retrace::store::{EventStore, ExpectedVersion, StreamAppend};
use std::collections::HashMap;

fn run(settings: Settings, n: usize) -> Vec<(String, retrace::log::NewEvent)> {
    let mut sim = Simulator::new(settings);
    let mut out = Vec::new();
    while out.len() < n {
        out.extend(sim.next_events(100));
    }
    out
}

#[test]
fn the_same_seed_gives_byte_identical_events() {
    let a = run(Settings::default(), 3000);
    let b = run(Settings::default(), 3000);
    assert_eq!(a, b);
    let c = run(
        Settings {
            seed: 7,
            ..Settings::default()
        },
        3000,
    );
    assert_ne!(a[..200], c[..200], "another seed gives another stream");
}

#[test]
fn events_come_in_domain_time_order_and_cases_open_before_they_close() {
    let events = run(Settings::default(), 5000);
    assert!(
        events
            .windows(2)
            .all(|w| w[0].1.occurred_at <= w[1].1.occurred_at),
        "domain time never goes back"
    );
    let mut state: HashMap<String, &str> = HashMap::new();
    for (stream, e) in &events {
        let s = state.entry(stream.clone()).or_insert("new");
        match e.event_type.as_str() {
            "CaseOpened" => assert_eq!(*s, "new", "{stream} opened twice"),
            "ActivityRecorded" => assert_eq!(*s, "open", "{stream}: activity outside an open case"),
            "CaseClosed" => assert_eq!(*s, "open", "{stream} closed while not open"),
            _ => {}
        }
        *s = match e.event_type.as_str() {
            "CaseClosed" => "closed",
            _ => "open",
        };
    }
    assert!(
        state.values().filter(|s| **s == "closed").count() > 300,
        "cases do close"
    );
}

/// Case durations (days) by case, from a simulated log.
fn durations(events: &[(String, retrace::log::NewEvent)]) -> Vec<(u64, f64)> {
    let mut opened: HashMap<&str, (u64, i64)> = HashMap::new();
    let mut out = Vec::new();
    for (i, (stream, e)) in events.iter().enumerate() {
        match e.event_type.as_str() {
            "CaseOpened" => {
                opened.insert(stream, (i as u64, e.occurred_at));
            }
            "CaseClosed" => {
                let (at, t0) = opened[stream.as_str()];
                out.push((at, (e.occurred_at - t0) as f64 / 86_400_000.0));
            }
            _ => {}
        }
    }
    out
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn injected_drift_makes_cases_measurably_longer() {
    let n = 12_000;
    let calm = durations(&run(Settings::default(), n));
    let drift = Settings {
        drift: Some((600, Drift::WorkDoubles("repair".into()))),
        ..Settings::default()
    };
    let drifted_events = run(drift, n);
    let at = drifted_events
        .iter()
        .position(|(_, e)| e.event_type == "ProcessChanged")
        .expect("drift recorded");
    let drifted = durations(&drifted_events);
    // Compare cases opened after the drift point in both runs.
    let after = |d: &[(u64, f64)]| {
        mean(
            d.iter()
                .filter(|(i, _)| *i as usize > at + 500)
                .map(|(_, x)| *x),
        )
    };
    let (before_mean, after_mean) = (after(&calm), after(&drifted));
    assert!(
        after_mean > before_mean * 1.3,
        "cases after the drift should take longer: {after_mean:.2} vs {before_mean:.2} days"
    );
}

#[test]
fn a_run_resumed_after_its_drift_keeps_the_change_without_recording_it_again() {
    let n = 6_000;
    let parts = |events: &[(String, retrace::log::NewEvent)]| {
        events
            .iter()
            .filter(|(_, e)| e.data.contains("Await parts"))
            .count()
    };
    let calm = run(Settings::default(), n);
    let resumed = run(
        Settings {
            changed: Some(Drift::PartsWait("repair".into())),
            ..Settings::default()
        },
        n,
    );
    assert_eq!(
        parts(&calm),
        0,
        "repairs wait for parts only after the change"
    );
    assert!(
        parts(&resumed) > 50,
        "the resumed run's repairs wait for parts from its first case: {}",
        parts(&resumed)
    );
    assert!(
        resumed
            .iter()
            .all(|(_, e)| e.event_type != "ProcessChanged"),
        "the change is not recorded a second time"
    );
}

#[test]
fn the_simulated_log_loads_into_a_store_and_decodes() {
    let store = MemoryStore::new();
    let drift = Some((20, Drift::ReworkAdded("installation".into())));
    let events = run(
        Settings {
            drift,
            ..Settings::default()
        },
        1000,
    );
    let batch = events
        .into_iter()
        .map(|(s, e)| StreamAppend::new(s, ExpectedVersion::Any, vec![e]))
        .collect();
    futures::executor::block_on(store.append_batch(batch)).unwrap();
    let all = futures::executor::block_on(store.read_all(1, 10_000)).unwrap();
    let facts: Vec<Fact> = all.into_iter().map(|e| decode(e).unwrap().fact).collect();
    assert!(facts.iter().any(
        |f| matches!(f, Fact::ActivityRecorded(a) if a.hours.is_some() && a.resource.is_some())
    ));
}

#[test]
fn the_default_process_is_stable_cases_take_days_not_months() {
    let d = durations(&run(Settings::default(), 8000));
    let early = mean(d[..d.len() / 2].iter().map(|(_, x)| *x));
    let late = mean(d[d.len() / 2..].iter().map(|(_, x)| *x));
    assert!(
        early < 10.0 && late < 10.0,
        "mean case duration {early:.1} then {late:.1} days"
    );
    assert!(
        late < early * 1.5,
        "queues must not grow without bound: {early:.1} then {late:.1} days"
    );
}
