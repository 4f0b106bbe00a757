//! Projections as specifications: given these events, the state is this.
#![cfg(not(target_arch = "wasm32"))]

use futures::executor::block_on;
use retrace::domain::simulator::{Settings, Simulator};
use retrace::domain::{decode, Recorded};
use retrace::log::NewEvent;
use retrace::projection::snapshot::{self, MemorySnapshots};
use retrace::projection::{replay, Projection, ProjectionSet};
use retrace::projection::{CaseHistory, LogStats, OpenCases, TrainingSet, Workload};
use retrace::store::memory::MemoryStore;
use retrace::store::{EventStore, ExpectedVersion, StreamAppend};
use serde_json::json;

const H: i64 = 3_600_000;
const T0: i64 = 1_704_096_000_000; // Monday 08:00 UTC

/// A tiny log written by hand: (hours after T0, type, payload).
fn given(events: &[(i64, &str, serde_json::Value)]) -> Vec<Recorded> {
    let store = MemoryStore::new();
    for (i, (h, ty, data)) in events.iter().enumerate() {
        let schema = retrace::domain::schemas().current(ty).unwrap();
        let stream = format!("case-{}", data["case"].as_str().unwrap_or("process"));
        let e = NewEvent::new(format!("e{i}"), *ty, schema, T0 + h * H, data);
        block_on(store.append(&stream, ExpectedVersion::Any, vec![e])).unwrap();
    }
    block_on(store.read_all(1, 1000))
        .unwrap()
        .into_iter()
        .map(|e| decode(e).unwrap())
        .collect()
}

fn fold<P: Projection>(events: &[Recorded]) -> P {
    let mut p = P::default();
    events.iter().for_each(|e| p.apply(e));
    p
}

fn opened(case: &str, h: i64) -> (i64, &'static str, serde_json::Value) {
    (
        h,
        "CaseOpened",
        json!({"case": case, "attributes": {"priority": "high"}}),
    )
}
fn did(case: &str, h: i64, activity: &str, who: &str) -> (i64, &'static str, serde_json::Value) {
    (
        h,
        "ActivityRecorded",
        json!({"case": case, "activity": activity, "resource": who, "hours": 1.0, "attributes": {}}),
    )
}
fn closed(case: &str, h: i64) -> (i64, &'static str, serde_json::Value) {
    (h, "CaseClosed", json!({"case": case, "outcome": "done"}))
}

#[test]
fn open_cases_hold_their_prefix_and_leave_when_closed() {
    let log = given(&[
        opened("a", 0),
        opened("b", 1),
        did("a", 2, "Triage", "Ana"),
        did("a", 3, "Repair", "Ben"),
        closed("b", 4),
    ]);
    let open: OpenCases = fold(&log);
    assert_eq!(
        open.cases.keys().collect::<Vec<_>>(),
        vec!["a"],
        "b closed and left"
    );
    let a = &open.cases["a"];
    assert_eq!(
        a.steps.iter().map(|s| &*s.activity).collect::<Vec<_>>(),
        vec!["Triage", "Repair"]
    );
    assert_eq!(
        a.steps[0].wip_total, 2,
        "two cases were open when a was triaged"
    );
    assert_eq!(
        a.steps[1].wip_resource, 0,
        "Ben held nothing before repairing a"
    );
    assert_eq!(a.attribute("priority").unwrap().as_text(), "high");
    assert_eq!(
        (open.wip.open, open.wip.of("Ben"), open.wip.of("Ana")),
        (1, 1, 0),
        "a moved from Ana to Ben"
    );
}

#[test]
fn nothing_assumes_the_simulators_attributes() {
    let log = given(&[
        (0, "CaseOpened", json!({"case": "x", "attributes": {}})),
        (
            1,
            "ActivityRecorded",
            json!({"case": "x", "activity": "7", "resource": null, "hours": null, "attributes": {}}),
        ),
        (2, "CaseClosed", json!({"case": "x", "outcome": null})),
    ]);
    let mut set = ProjectionSet::default();
    log.iter().for_each(|e| set.apply(e));
    assert_eq!(set.training.state.prefixes().count(), 2);
    assert_eq!(set.stats.state.closed(), 1);
}

#[test]
fn case_history_keeps_closed_cases_in_brief() {
    let log = given(&[
        opened("a", 0),
        did("a", 2, "Triage", "Ana"),
        closed("a", 30),
    ]);
    let h: CaseHistory = fold(&log);
    let c = &h.closed[0];
    assert_eq!(
        (c.case.as_str(), c.duration(), c.activities.clone()),
        ("a", 30 * H, vec!["Triage".into()])
    );
    assert_eq!(c.outcome.as_deref(), Some("done"));
}

#[test]
fn workload_tracks_each_resources_peak_per_day() {
    let log = given(&[
        opened("a", 0),
        opened("b", 0),
        did("a", 1, "T", "Ana"),
        did("b", 2, "T", "Ana"),
        did("a", 26, "R", "Ben"),
    ]);
    let w: Workload = fold(&log);
    let days: Vec<_> = w.daily.values().collect();
    assert_eq!(days[0]["Ana"], 2, "Ana held two cases on day one");
    assert_eq!((days[1]["Ana"], days[1]["Ben"]), (1, 1));
    assert_eq!(w.now.of("Ana"), 1);
}

#[test]
fn log_stats_count_types_days_and_durations() {
    let log = given(&[
        opened("a", 0),
        opened("b", 1),
        did("a", 2, "T", "Ana"),
        closed("a", 3),
        closed("b", 50),
    ]);
    let s: LogStats = fold(&log);
    assert_eq!(s.events, 5);
    assert_eq!(s.by_type["CaseOpened"], 2);
    let days: Vec<(u32, u32)> = s.per_day.values().copied().collect();
    assert_eq!(
        days,
        vec![(2, 1), (0, 1)],
        "two opened and one closed on day one; b closed two days later"
    );
    assert_eq!(s.closed(), 2);
    assert_eq!(s.durations[0] + s.durations[1], 1, "a took 3 hours");
    assert_eq!(s.mean_duration_h(), Some((3.0 + 49.0) / 2.0));
}

#[test]
fn the_training_set_labels_every_prefix_with_its_remaining_time() {
    let log = given(&[
        opened("a", 0),
        did("a", 2, "T", "Ana"),
        did("a", 5, "R", "Ben"),
        closed("a", 9),
        opened("b", 9),
    ]);
    let t: TrainingSet = fold(&log);
    let rows: Vec<(usize, i64)> = t.prefixes().map(|p| (p.len, p.remaining_ms / H)).collect();
    assert_eq!(
        rows,
        vec![(0, 9), (1, 7), (2, 4)],
        "b is still open and not in the set"
    );
}

fn simulated_store(seed: u64, n: usize) -> MemoryStore {
    let store = MemoryStore::new();
    let mut sim = Simulator::new(Settings {
        seed,
        ..Settings::default()
    });
    let events = sim.next_events(n);
    let batch = events
        .into_iter()
        .map(|(s, e)| StreamAppend::new(s, ExpectedVersion::Any, vec![e]))
        .collect();
    block_on(store.append_batch(batch)).unwrap();
    store
}

fn full_replay(store: &MemoryStore) -> ProjectionSet {
    let mut set = ProjectionSet::default();
    block_on(replay(&mut set, store, u64::MAX, 333, |_| {})).unwrap();
    set
}

#[test]
fn a_damaged_or_outdated_snapshot_is_ignored_and_the_state_still_equals_full_replay() {
    let store = simulated_store(3, 1500);
    let snaps = MemorySnapshots::default();
    let mut partial = ProjectionSet::default();
    block_on(replay(&mut partial, &store, 900, 100, |_| {})).unwrap();
    block_on(snapshot::save(&snaps, &partial)).unwrap();
    snaps.tamper("open_cases", 900, |s| s.bytes[3] ^= 0xff);
    snaps.tamper("log_stats", 900, |s| s.code_version += 1);
    let (mut set, restored) = block_on(snapshot::restore(&snaps, u64::MAX)).unwrap();
    assert_eq!(
        restored.from_seq, 0,
        "the damaged projection starts from the beginning"
    );
    assert_eq!(
        set.training.seq, 900,
        "the intact ones start from their snapshot"
    );
    assert_eq!(restored.notes.len(), 2, "{:?}", restored.notes);
    assert!(restored.notes.iter().any(|n| n.contains("damaged")));
    assert!(restored.notes.iter().any(|n| n.contains("another version")));
    block_on(replay(&mut set, &store, u64::MAX, 100, |_| {})).unwrap();
    assert_eq!(set, full_replay(&store));
}

#[test]
fn time_travel_gives_the_state_as_of_a_past_position() {
    let store = simulated_store(5, 1200);
    let snaps = MemorySnapshots::default();
    for cut in [300, 600, 900, 1200] {
        let mut set = ProjectionSet::default();
        block_on(replay(&mut set, &store, cut, 128, |_| {})).unwrap();
        block_on(snapshot::save(&snaps, &set)).unwrap();
    }
    // As of 750: the snapshot at 600 plus 150 events.
    let (mut past, restored) = block_on(snapshot::restore(&snaps, 750)).unwrap();
    assert_eq!(restored.from_seq, 600);
    let replayed = block_on(replay(&mut past, &store, 750, 128, |_| {})).unwrap();
    assert_eq!(replayed, 150);
    let mut direct = ProjectionSet::default();
    block_on(replay(&mut direct, &store, 750, 1000, |_| {})).unwrap();
    assert_eq!(past, direct);
    assert_eq!(past.stats.state.events, 750);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn snapshot_plus_tail_replay_equals_full_replay(seed in 0u64..1000, n in 50usize..1500, cut_frac in 0.0f64..1.0, batch in 1usize..400) {
            let store = simulated_store(seed, n);
            let head = block_on(store.head()).unwrap();
            let cut = (head as f64 * cut_frac) as u64;
            let snaps = MemorySnapshots::default();
            let mut first = ProjectionSet::default();
            block_on(replay(&mut first, &store, cut, batch, |_| {})).unwrap();
            block_on(snapshot::save(&snaps, &first)).unwrap();
            let (mut resumed, restored) = block_on(snapshot::restore(&snaps, u64::MAX)).unwrap();
            prop_assert_eq!(restored.from_seq, cut);
            block_on(replay(&mut resumed, &store, u64::MAX, batch, |_| {})).unwrap();
            prop_assert!(resumed == full_replay(&store), "snapshot at {} of {} then tail differs from full replay", cut, head);
        }
    }
}
