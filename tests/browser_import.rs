//! Imports into the IndexedDB log are one commit: all of a file or none.
#![cfg(target_arch = "wasm32")]

use retrace::io::csv::{read_all, sniff};
use retrace::io::import::{plan, sha256_hex, FileFacts, Format};
use retrace::io::parsed::Completion;
use retrace::store::idb::{IdbStore, SEGMENT_MAX};
use retrace::store::verify::verify_log;
use retrace::store::{EventStore, ExpectedVersion};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const HELPDESK: &[u8] = include_bytes!("../../shared/data/helpdesk.csv");

fn helpdesk_plan() -> Vec<retrace::store::StreamAppend> {
    let mapping = sniff(HELPDESK).unwrap().mapping;
    let log = read_all(HELPDESK, mapping.clone(), false).unwrap();
    let facts = FileFacts {
        file: "helpdesk.csv",
        size: HELPDESK.len() as u64,
        sha256: sha256_hex(HELPDESK),
        format: Format::Csv,
        mapping: serde_json::to_value(&mapping).unwrap(),
    };
    plan(&log, facts, &Completion::AllComplete, "helpdesk").0
}

async fn fresh() -> IdbStore {
    IdbStore::open(&retrace::store::idb::fresh_database_name("import"))
        .await
        .unwrap()
}

#[wasm_bindgen_test]
async fn a_large_import_is_one_commit_over_several_segments() {
    let store = fresh().await;
    store.append_batch(helpdesk_plan()).await.unwrap();
    let head = store.head().await.unwrap();
    assert_eq!(
        head,
        13_710 + 2 * 3_804 + 1,
        "events, opens, closes and the ImportCompleted record"
    );
    assert!(head as usize > 2 * SEGMENT_MAX, "spans several segments");
    let report = verify_log(&store, 4096).await.unwrap();
    assert_eq!(report.problem, None);
    assert_eq!(report.streams, 3_804 + 1);
}

#[wasm_bindgen_test]
async fn an_import_that_fails_midway_leaves_the_log_as_it_was() {
    let store = fresh().await;
    // A case the file holds near its end already exists in the log.
    let appends = helpdesk_plan();
    let late = appends
        .iter()
        .rev()
        .find(|a| a.stream.starts_with("case-"))
        .unwrap()
        .stream
        .clone();
    store
        .append(
            &late,
            ExpectedVersion::NoStream,
            vec![retrace::store::contract::event(1)],
        )
        .await
        .unwrap();
    let before = store.head().await.unwrap();
    let err = store.append_batch(appends).await.unwrap_err();
    assert!(
        err.to_string().contains(&late),
        "the conflict names the case: {err}"
    );
    assert_eq!(
        store.head().await.unwrap(),
        before,
        "nothing of the failed import was written"
    );
    assert_eq!(store.read_all(1, 10).await.unwrap().len(), 1);
}
