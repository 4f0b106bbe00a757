//! Random interleavings of appends from writers with stale views never leave
//! a gap, a duplicate or a partly applied batch.
#![cfg(not(target_arch = "wasm32"))]

use futures::executor::block_on;
use proptest::prelude::*;
use retrace::log::NewEvent;
use retrace::store::memory::MemoryStore;
use retrace::store::{EventStore, ExpectedVersion, StreamAppend};
use std::collections::{HashMap, HashSet};

/// One writer's attempt: for each (stream, expectation kind, event count).
#[derive(Clone, Debug)]
struct Attempt {
    writer: usize,
    parts: Vec<(u8, u8, u8)>,
}

fn attempts() -> impl Strategy<Value = Vec<Attempt>> {
    prop::collection::vec(
        (
            0..3usize,
            prop::collection::vec((0..4u8, 0..3u8, 0..4u8), 1..4),
        )
            .prop_map(|(writer, parts)| Attempt { writer, parts }),
        1..40,
    )
}

proptest! {
    #[test]
    fn appends_never_leave_gaps_duplicates_or_partial_batches(plan in attempts()) {
        let store = MemoryStore::new();
        // Each writer remembers the versions it last saw: often stale.
        let mut views: Vec<HashMap<String, u64>> = vec![HashMap::new(); 3];
        let mut landed: Vec<Vec<String>> = Vec::new();
        let mut refused: Vec<Vec<String>> = Vec::new();
        let mut next_id = 0u64;
        for attempt in plan {
            let view = &views[attempt.writer];
            let mut batch = Vec::new();
            let mut ids = Vec::new();
            for (stream, kind, count) in &attempt.parts {
                let name = format!("s{stream}");
                let expected = match (kind, view.get(&name)) {
                    (0, _) => ExpectedVersion::Any,
                    (_, None) => ExpectedVersion::NoStream,
                    (_, Some(&v)) => ExpectedVersion::Exact(v),
                };
                let events: Vec<NewEvent> = (0..*count).map(|_| {
                    next_id += 1;
                    ids.push(format!("e{next_id}"));
                    NewEvent::new(format!("e{next_id}"), "T", 1, 0, &next_id)
                }).collect();
                batch.push(StreamAppend::new(name, expected, events));
            }
            match block_on(store.append_batch(batch)) {
                Ok(_) => landed.push(ids),
                Err(_) => refused.push(ids),
            }
            // The writer refreshes its view after its own attempt.
            for s in 0..4 {
                let name = format!("s{s}");
                if let Some(v) = block_on(store.stream_version(&name)).unwrap() {
                    views[attempt.writer].insert(name, v);
                }
            }
        }
        let all = block_on(store.read_all(1, usize::MAX)).unwrap();
        let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
        prop_assert_eq!(seqs, (1..=all.len() as u64).collect::<Vec<_>>(), "seq has a gap");
        let mut by_stream: HashMap<&str, Vec<u64>> = HashMap::new();
        for e in &all { by_stream.entry(&e.stream).or_default().push(e.version); }
        for (stream, versions) in by_stream {
            prop_assert_eq!(versions.clone(), (1..=versions.len() as u64).collect::<Vec<_>>(), "versions of {} have a gap", stream);
        }
        let stored: HashSet<&str> = all.iter().map(|e| e.id.as_str()).collect();
        prop_assert_eq!(stored.len(), all.len(), "an event was stored twice");
        for ids in &landed { for id in ids { prop_assert!(stored.contains(id.as_str()), "event {} of a committed batch is missing", id); } }
        for ids in &refused { for id in ids { prop_assert!(!stored.contains(id.as_str()), "event {} of a refused batch was stored", id); } }
    }
}
