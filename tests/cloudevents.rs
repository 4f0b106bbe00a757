//! A log exported as CloudEvents NDJSON and imported again is the same log.
#![cfg(not(target_arch = "wasm32"))]

use futures::executor::block_on;
use retrace::domain::simulator::{Drift, Settings, Simulator};
use retrace::io::cloudevents::{read_ndjson, to_line, NdjsonReader};
use retrace::io::staged::{encode_block, MemoryStaging, RestorePlan};
use retrace::store::memory::MemoryStore;
use retrace::store::{EventStore, ExpectedVersion, StreamAppend};

#[test]
fn a_log_round_trips_through_cloudevents_ndjson() {
    let original = MemoryStore::new();
    let mut sim = Simulator::new(Settings {
        drift: Some((30, Drift::WorkDoubles("repair".into()))),
        ..Settings::default()
    });
    for chunk in sim.next_events(3000).chunks(100) {
        let batch = chunk
            .iter()
            .cloned()
            .map(|(s, e)| StreamAppend::new(s, ExpectedVersion::Any, vec![e.caused_by("cmd-7")]))
            .collect();
        block_on(original.append_batch(batch)).unwrap();
    }
    let events = block_on(original.read_all(1, usize::MAX)).unwrap();
    let ndjson: String = events.iter().map(|e| to_line(e) + "\n").collect();

    let first: serde_json::Value = serde_json::from_str(ndjson.lines().next().unwrap()).unwrap();
    for field in [
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "subject",
        "datacontenttype",
        "data",
        "sequence",
        "recordedtime",
        "correlationid",
        "causationid",
    ] {
        assert!(
            first.get(field).is_some(),
            "CloudEvents field {field} missing: {first}"
        );
    }
    assert_eq!(first["specversion"], "1.0");

    let copy = MemoryStore::new();
    block_on(copy.append_batch(read_ndjson(&ndjson).unwrap())).unwrap();
    assert_eq!(
        block_on(copy.read_all(1, usize::MAX)).unwrap(),
        events,
        "identical log, recorded times included"
    );

    // The page's path: read in odd-sized slices, staged in blocks, read back.
    let mut reader = NdjsonReader::default();
    let mut staged = Vec::new();
    let mut staging = MemoryStaging::default();
    let mut blocks = 0;
    for slice in ndjson.as_bytes().chunks(4093) {
        reader.feed(slice, &mut staged).unwrap();
        if staged.len() >= 700 {
            staging.put(vec![((0, blocks), encode_block(&staged))]);
            staged.clear();
            blocks += 1;
        }
    }
    reader.end(&mut staged).unwrap();
    staging.put(vec![((0, blocks), encode_block(&staged))]);
    let appends = staging.drain(&mut RestorePlan::new(blocks + 1)).unwrap();
    let copy = MemoryStore::new();
    block_on(copy.append_batch(appends)).unwrap();
    assert_eq!(block_on(copy.read_all(1, usize::MAX)).unwrap(), events);
}

#[test]
fn importing_an_export_into_a_log_that_has_its_streams_is_refused_whole() {
    let store = MemoryStore::new();
    let mut sim = Simulator::new(Settings::default());
    let batch = sim
        .next_events(50)
        .into_iter()
        .map(|(s, e)| StreamAppend::new(s, ExpectedVersion::Any, vec![e]))
        .collect();
    block_on(store.append_batch(batch)).unwrap();
    let head = block_on(store.head()).unwrap();
    let ndjson: String = block_on(store.read_all(1, 1000))
        .unwrap()
        .iter()
        .map(|e| to_line(e) + "\n")
        .collect();
    assert!(block_on(store.append_batch(read_ndjson(&ndjson).unwrap())).is_err());
    assert_eq!(
        block_on(store.head()).unwrap(),
        head,
        "nothing of the refused import was written"
    );
}

#[test]
fn a_bad_line_is_reported_by_number() {
    let err = read_ndjson("\n{\"specversion\":\"1.0\"}\n").unwrap_err();
    assert_eq!(err.line, 2);
}
