//! The bounded-memory import path: rows staged in sorted runs and merged
//! back must give exactly the log a whole-file sort would, whatever the run
//! and block sizes.
#![cfg(not(target_arch = "wasm32"))]

use retrace::domain::events::Attributes;
use retrace::io::parsed::{Completion, EventSink, ParsedEvent, ParsedLog};
use retrace::io::staged::{stage, to_appends};
use retrace::io::staged::{MemoryStaging, StagedPlan, Stager};
use retrace::store::{ExpectedVersion, StreamAppend};
use serde_json::json;

/// (stream, type, time, data) of every event, in order.
type Flat = Vec<(String, String, i64, String)>;

fn flat(appends: &[StreamAppend]) -> Flat {
    appends
        .iter()
        .flat_map(|a| {
            a.events.iter().map(|e| {
                (
                    a.stream.clone(),
                    e.event_type.clone(),
                    e.occurred_at,
                    e.data.clone(),
                )
            })
        })
        .collect()
}

/// The order a whole-file import defines, computed the obvious way: group
/// by case (cases in order of first appearance), sort each case by time
/// (ties keep file order), open at the first event, close right after the
/// closing activity, then sort everything by (time, case, place in case).
fn reference(
    log: &ParsedLog,
    label: &str,
    completion: &Completion,
) -> Vec<(String, String, i64, String)> {
    let mut order: Vec<String> = Vec::new();
    for e in &log.events {
        if !order.contains(&e.case) {
            order.push(e.case.clone());
        }
    }
    type Item = ((i64, usize, usize), (String, String, i64, String));
    let mut items: Vec<Item> = Vec::new();
    for (ci, case) in order.iter().enumerate() {
        let mut events: Vec<&ParsedEvent> = log.events.iter().filter(|e| &e.case == case).collect();
        events.sort_by_key(|e| e.time);
        let stream = format!("case-{label}-{case}");
        items.push((
            (events[0].time, ci, 0),
            (
                stream.clone(),
                "CaseOpened".into(),
                events[0].time,
                String::new(),
            ),
        ));
        let mut close = None;
        for (k, e) in events.iter().enumerate() {
            items.push((
                (e.time, ci, k + 1),
                (
                    stream.clone(),
                    "ActivityRecorded".into(),
                    e.time,
                    e.activity.clone(),
                ),
            ));
            if let Completion::EndActivity(end) = completion {
                if &e.activity == end && close.is_none() {
                    close = Some((e.time, k + 1));
                }
            }
        }
        if *completion == Completion::AllComplete {
            close = Some((events[events.len() - 1].time, events.len()));
        }
        if let Some((t, k)) = close {
            items.push(((t, ci, k), (stream, "CaseClosed".into(), t, String::new())));
        }
    }
    items.sort_by_key(|(key, _)| *key); // stable: a close follows its activity
    items.into_iter().map(|(_, v)| v).collect()
}

fn staged_with(
    log: &ParsedLog,
    completion: &Completion,
    run: usize,
    block: usize,
    feed_every: usize,
) -> Vec<StreamAppend> {
    let mut stager = Stager::with_sizes("f", completion.clone(), run, block);
    let mut staging = MemoryStaging::default();
    for (i, e) in log.events.iter().enumerate() {
        stager.event(e.clone());
        if (i + 1) % feed_every == 0 && stager.full() {
            staging.put(stager.take_run());
        }
    }
    let (mut plan, rest) = stager.plan("x", None);
    staging.put(rest);
    staging.drain(&mut plan).unwrap()
}

/// (stream, type, time, activity) of every event, in order.
fn comparable(appends: &[StreamAppend]) -> Vec<(String, String, i64, String)> {
    flat(appends)
        .into_iter()
        .map(|(s, t, at, data)| {
            let v: serde_json::Value = serde_json::from_str(&data).unwrap();
            let activity = v
                .get("activity")
                .and_then(|a| a.as_str())
                .unwrap_or("")
                .to_owned();
            (s, t, at, activity)
        })
        .collect()
}

fn event(case: &str, activity: &str, time: i64) -> ParsedEvent {
    ParsedEvent {
        case: case.into(),
        activity: activity.into(),
        time,
        resource: None,
        attributes: Attributes::new(),
    }
}

#[test]
fn tiny_runs_give_the_whole_file_order_on_helpdesk() {
    let bytes = std::fs::read("../shared/data/helpdesk.csv").expect("../shared/data/helpdesk.csv");
    let m = retrace::io::csv::sniff(&bytes).unwrap().mapping;
    let log = retrace::io::csv::read_all(&bytes, m, false).unwrap();
    let whole = to_appends(&log, "f", &Completion::AllComplete, "x").0;
    // 13,710 rows in runs of 777 and blocks of 50: 18 runs merged.
    let staged = staged_with(&log, &Completion::AllComplete, 777, 50, 1);
    assert_eq!(staged, whole, "ids, order, payloads and checks all agree");
    let got: Vec<_> = comparable(&staged);
    assert_eq!(got, reference(&log, "f", &Completion::AllComplete));
    assert_eq!(got.len(), 13_710 + 2 * 3_804);
}

#[test]
fn first_event_of_each_case_expects_a_new_stream_and_the_record_comes_last() {
    let mut log = ParsedLog::default();
    for (c, a, t) in [
        ("b", "x", 5),
        ("a", "x", 1),
        ("b", "end", 9),
        ("a", "end", 3),
        ("a", "y", 4),
    ] {
        log.event(event(c, a, t));
    }
    log.case_attributes("a", [("k".to_string(), json!(1))].into_iter().collect());
    log.case_attributes("nobody", Attributes::new());
    let mut stager = stage(&log, "L", &Completion::EndActivity("end".into()));
    let counts = stager.counts();
    assert_eq!(
        (
            counts.cases,
            counts.closed,
            counts.events,
            counts.activities
        ),
        (2, 2, 9, 3)
    );
    let mut staging = MemoryStaging::default();
    staging.put(stager.take_run());
    let record = retrace::log::NewEvent::new("r", "ImportCompleted", 1, 9, &json!({}));
    let (mut plan, rest) = stager.plan("p", Some(("imports".into(), record)));
    staging.put(rest);
    let out = staging.drain(&mut plan).unwrap();
    let firsts: Vec<(&str, ExpectedVersion, &str)> = out
        .iter()
        .map(|a| {
            (
                a.stream.as_str(),
                a.expected,
                a.events[0].event_type.as_str(),
            )
        })
        .collect();
    assert_eq!(
        firsts[0],
        ("case-L-a", ExpectedVersion::NoStream, "CaseOpened")
    );
    assert!(
        out.iter()
            .filter(|a| a.expected == ExpectedVersion::NoStream)
            .count()
            == 2
    );
    let last = out.last().unwrap();
    assert_eq!(
        (last.stream.as_str(), last.events[0].id.as_str()),
        ("imports", "r")
    );
    // Case "a" is closed by "end" at 3; its later "y" at 4 still belongs to it.
    let a: Vec<(&str, i64)> = out
        .iter()
        .filter(|p| p.stream == "case-L-a")
        .flat_map(|p| {
            p.events
                .iter()
                .map(|e| (e.event_type.as_str(), e.occurred_at))
        })
        .collect();
    assert_eq!(
        a,
        [
            ("CaseOpened", 1),
            ("ActivityRecorded", 1),
            ("ActivityRecorded", 3),
            ("CaseClosed", 3),
            ("ActivityRecorded", 4)
        ]
    );
    assert!(
        out[0].events[0].data.contains("\"k\":1"),
        "trace attributes open the case"
    );
    // Ids are unique.
    let mut ids: Vec<&str> = out
        .iter()
        .flat_map(|a| a.events.iter().map(|e| e.id.as_str()))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10);
}

#[test]
fn a_missing_or_damaged_block_is_an_error() {
    let mut log = ParsedLog::default();
    for i in 0..20 {
        log.event(event(&format!("c{}", i % 3), "a", 20 - i));
    }
    let mut stager = Stager::with_sizes("", Completion::NoneComplete, 5, 2);
    let mut staging = MemoryStaging::default();
    for e in &log.events {
        stager.event(e.clone());
        if stager.full() {
            staging.put(stager.take_run());
        }
    }
    let (mut plan, rest) = stager.plan("p", None);
    staging.put(rest);
    let mut broken = MemoryStaging(staging.0.clone());
    broken.0.remove(&(2, 1));
    assert!(broken.drain(&mut plan).unwrap_err().contains("missing"));
    let (mut plan, _) = {
        let mut s = Stager::with_sizes("", Completion::NoneComplete, 50, 2);
        for e in &log.events {
            s.event(e.clone());
        }
        s.plan("p", None)
    };
    let mut damaged = MemoryStaging::default();
    damaged.put(vec![((0, 0), vec![1, 200, 3])]);
    assert!(damaged.drain(&mut plan as &mut dyn StagedPlan).is_err());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn completion() -> impl Strategy<Value = Completion> {
        prop_oneof![
            Just(Completion::AllComplete),
            Just(Completion::NoneComplete),
            Just(Completion::EndActivity("B".into())),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn any_run_and_block_size_gives_the_reference_order(
            rows in prop::collection::vec(("[a-f]", "[A-C]", 0i64..12), 1..80),
            run in 1usize..20,
            block in 1usize..6,
            feed_every in 1usize..10,
            completion in completion(),
        ) {
            let mut log = ParsedLog::default();
            for (c, a, t) in &rows {
                log.event(event(c, a, *t));
            }
            let staged = staged_with(&log, &completion, run, block, feed_every);
            let got: Vec<_> = comparable(&staged);
            prop_assert_eq!(got, reference(&log, "f", &completion));
            prop_assert_eq!(staged, to_appends(&log, "f", &completion, "x").0);
        }
    }
}
