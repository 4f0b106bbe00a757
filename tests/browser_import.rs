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

/// Put one event in the stream of the case the import opens last, so that
/// the import's check for a new stream fails late; returns the stream.
async fn occupy_latest_new_case(
    store: &IdbStore,
    appends: &[retrace::store::StreamAppend],
) -> String {
    let late = appends
        .iter()
        .rev()
        .find(|a| a.expected == ExpectedVersion::NoStream)
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
    late
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
    let late = occupy_latest_new_case(&store, &appends).await;
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

/// helpdesk.csv staged in IndexedDB in runs of 3,000 rows (5 runs, blocks of
/// 500), ready to commit.
async fn stage_helpdesk(store: &IdbStore) -> (retrace::io::staged::ImportPlan, u64) {
    use retrace::io::parsed::EventSink;
    use retrace::io::staged::Stager;
    let mapping = sniff(HELPDESK).unwrap().mapping;
    let log = read_all(HELPDESK, mapping, false).unwrap();
    let mut stager = Stager::with_sizes("helpdesk", Completion::AllComplete, 3_000, 500);
    store.clear_staging().await.unwrap();
    for e in log.events {
        stager.event(e);
        if stager.full() {
            store.stage(stager.take_run()).await.unwrap();
        }
    }
    let events = stager.counts().events;
    let (plan, rest) = stager.plan("hd", None);
    store.stage(rest).await.unwrap();
    (plan, events)
}

#[wasm_bindgen_test]
async fn a_staged_import_commits_whole_and_clears_its_staging() {
    let store = fresh().await;
    store
        .append(
            "elsewhere",
            ExpectedVersion::NoStream,
            vec![retrace::store::contract::event(1)],
        )
        .await
        .unwrap();
    let (plan, events) = stage_helpdesk(&store).await;
    let c = store.commit_staged(Box::new(plan)).await.unwrap();
    assert_eq!((c.first_seq, c.last_seq), (2, 1 + events));
    assert_eq!(events, 13_710 + 2 * 3_804);
    let report = verify_log(&store, 4096).await.unwrap();
    assert_eq!(report.problem, None);
    assert_eq!(report.streams, 3_804 + 1);
    // The same events, in the same order, as the whole-file path gives.
    let written = store.read_all(2, usize::MAX).await.unwrap();
    let mapping = sniff(HELPDESK).unwrap().mapping;
    let whole = retrace::io::staged::to_appends(
        &read_all(HELPDESK, mapping, false).unwrap(),
        "helpdesk",
        &Completion::AllComplete,
        "hd",
    )
    .0;
    let expected: Vec<(String, String)> = whole
        .iter()
        .flat_map(|a| a.events.iter().map(|e| (a.stream.clone(), e.id.clone())))
        .collect();
    let got: Vec<(String, String)> = written
        .iter()
        .map(|e| (e.stream.clone(), e.id.clone()))
        .collect();
    assert_eq!(got, expected);
    // Nothing is left staged: the block a plan would first ask for is gone.
    assert!(store.staged_block((0, 0)).await.is_err());
}

#[wasm_bindgen_test]
async fn a_staged_import_that_fails_midway_leaves_the_log_as_it_was() {
    let store = fresh().await;
    // The case whose first event comes last in time already exists.
    let late = occupy_latest_new_case(&store, &helpdesk_plan()).await;
    let (plan, _) = stage_helpdesk(&store).await;
    let err = store.commit_staged(Box::new(plan)).await.unwrap_err();
    assert!(
        err.to_string().contains(&late),
        "the conflict names the case: {err}"
    );
    assert_eq!(
        store.head().await.unwrap(),
        1,
        "nothing of the failed import was written"
    );
    assert_eq!(store.read_all(1, 10).await.unwrap().len(), 1);
    // The log still takes appends, and the staged rows are still there to retry.
    store
        .append(
            "after",
            ExpectedVersion::NoStream,
            vec![retrace::store::contract::event(2)],
        )
        .await
        .unwrap();
    assert_eq!(store.head().await.unwrap(), 2);
    assert!(store.staged_block((0, 0)).await.is_ok());

    // A damaged block (needed long before the conflicting case) aborts the
    // commit the same way.
    let (plan, _) = stage_helpdesk(&store).await;
    store
        .stage(vec![((2, 1), vec![1, 255, 255])])
        .await
        .unwrap();
    let err = store.commit_staged(Box::new(plan)).await.unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
    assert_eq!(store.head().await.unwrap(), 2);
}

#[wasm_bindgen_test]
async fn a_commit_cancelled_midway_leaves_the_log_as_it_was() {
    use retrace::io::staged::Watched;
    use std::cell::Cell;
    use std::rc::Rc;
    let store = fresh().await;
    let (plan, _) = stage_helpdesk(&store).await;
    // Cancel once 15,000 of the 21,318 events (more than a segment) have been handed out.
    let handed = Rc::new(Cell::new(0u64));
    let seen = handed.clone();
    let watched = Watched {
        inner: Box::new(plan),
        cancelled: move || seen.get() >= 15_000,
        report: {
            let handed = handed.clone();
            move |n| handed.set(n)
        },
        handed: 0,
    };
    assert!(store.commit_staged(Box::new(watched)).await.is_err());
    assert_eq!(
        handed.get(),
        15_000,
        "stopped at the first check after the cancel"
    );
    assert_eq!(
        store.head().await.unwrap(),
        0,
        "nothing of the cancelled commit was written"
    );
}
