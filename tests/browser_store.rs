//! The IndexedDB store in headless Chromium: the shared contract suite plus
//! what only a real browser database can show (reopening, upgrades, size).
#![cfg(target_arch = "wasm32")]

use futures::future::join_all;
use retrace::log::NewEvent;
use retrace::store::idb::{create_v1_database, IdbStore, DB_VERSION};
use retrace::store::{EventStore, ExpectedVersion, StoreError, StreamAppend};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

#[wasm_bindgen(inline_js = r#"
export function overwrite(name, store, key, bytes) {
  return new Promise((ok, fail) => {
    const open = indexedDB.open(name);
    open.onerror = () => fail(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction(store, 'readwrite');
      tx.objectStore(store).put(bytes, key);
      tx.oncomplete = () => { db.close(); ok(); };
      tx.onabort = () => fail(tx.error);
    };
  });
}
"#)]
extern "C" {
    /// Overwrite one record behind the store's back (to damage it).
    fn overwrite(name: &str, store: &str, key: &str, bytes: &[u8]) -> js_sys::Promise;
    /// The same, for a record with a numeric key (a segment).
    #[wasm_bindgen(js_name = overwrite)]
    fn overwrite_numbered(name: &str, store: &str, key: f64, bytes: &[u8]) -> js_sys::Promise;
    /// The same, writing a string (an outbox record of the first version).
    #[wasm_bindgen(js_name = overwrite)]
    fn overwrite_text(name: &str, store: &str, key: f64, text: &str) -> js_sys::Promise;
}

wasm_bindgen_test_configure!(run_in_browser);

/// Each test gets its own randomly named database.
fn fresh_name() -> String {
    retrace::store::idb::fresh_database_name("test")
}

async fn fresh_store() -> IdbStore {
    IdbStore::open(&fresh_name())
        .await
        .expect("a fresh database opens")
}

retrace::store_contract!(browser: fresh_store());

/// What a shared log's replica needs beside it, as in memory.
mod replica {
    use super::fresh_store;
    retrace::replica_contract!(browser: fresh_store());
}

fn event(n: u64) -> NewEvent {
    retrace::store::contract::event(n)
}

/// The append was refused: the stream stands at version `actual`.
fn refused(result: Result<retrace::store::Committed, StoreError>, actual: u64) {
    let err = result.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { actual: Some(a), .. } if a == actual),
        "{err:?}"
    );
}

#[wasm_bindgen_test]
async fn the_log_survives_closing_and_reopening() {
    let name = fresh_name();
    let store = IdbStore::open(&name).await.unwrap();
    store
        .append(
            "case-1",
            ExpectedVersion::NoStream,
            (0..5).map(event).collect(),
        )
        .await
        .unwrap();
    store.close();
    let reopened = IdbStore::open(&name).await.unwrap();
    assert_eq!(reopened.head().await.unwrap(), 5);
    assert_eq!(reopened.stream_version("case-1").await.unwrap(), Some(5));
    let err = reopened
        .append("case-1", ExpectedVersion::Exact(4), vec![event(9)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                actual: Some(5),
                ..
            }
        ),
        "version check after reopen: {err:?}"
    );
}

#[wasm_bindgen_test]
async fn a_version_1_database_is_upgraded_and_its_streams_found() {
    let name = fresh_name();
    let old: Vec<_> = (0..6u64)
        .map(|i| event(i).into_envelope(i + 1, if i % 2 == 0 { "a" } else { "b" }, i / 2 + 1, 1))
        .collect();
    create_v1_database(&name, &old).await.unwrap();
    let store = IdbStore::open(&name).await.expect("v1 upgrades");
    assert_eq!(store.head().await.unwrap(), 6);
    assert_eq!(
        store.read_all(1, 100).await.unwrap(),
        old,
        "old events read back unchanged"
    );
    let b = store.read_stream("b", 2, 10).await.unwrap();
    assert_eq!(
        b.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![4, 6],
        "streams of a v1 log are found from its segments"
    );
    store
        .append("a", ExpectedVersion::Exact(3), vec![event(7)])
        .await
        .expect("appends continue after upgrade");
    assert_eq!(store.head().await.unwrap(), 7);
}

#[wasm_bindgen_test]
async fn a_database_from_a_newer_build_is_refused() {
    let name = fresh_name();
    // A newer build's database: a higher version than this code knows.
    let factory = web_sys::window().unwrap().indexed_db().unwrap().unwrap();
    let req = factory.open_with_u32(&name, DB_VERSION + 1).unwrap();
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    let tx = std::cell::RefCell::new(Some(tx));
    let on_ok = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::Event)>::new({
        let req = req.clone();
        move |_| {
            use wasm_bindgen::JsCast;
            req.result()
                .unwrap()
                .unchecked_into::<web_sys::IdbDatabase>()
                .close();
            if let Some(tx) = tx.borrow_mut().take() {
                let _ = tx.send(());
            }
        }
    });
    req.set_onsuccess(Some(wasm_bindgen::JsCast::unchecked_ref(on_ok.as_ref())));
    rx.await.unwrap();
    let err = IdbStore::open(&name)
        .await
        .err()
        .expect("a newer database must not open");
    assert_eq!(
        err,
        StoreError::NewerDatabase {
            found: DB_VERSION + 1,
            known: DB_VERSION
        }
    );
    assert!(
        err.to_string().contains("newer version of Retrace"),
        "{err}"
    );
}

#[wasm_bindgen_test]
async fn two_connections_appending_at_once_keep_seq_contiguous() {
    let name = fresh_name();
    let one = IdbStore::open(&name).await.unwrap();
    let two = IdbStore::open(&name).await.unwrap();
    let mut writes = Vec::new();
    for i in 0..40u64 {
        let store = if i % 2 == 0 { &one } else { &two };
        writes.push(store.append_batch(vec![StreamAppend::new(
            format!("s{}", i % 5),
            ExpectedVersion::Any,
            vec![event(i), event(i + 100)],
        )]));
    }
    let results = join_all(writes).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let all = one.read_all(1, 1000).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=80).collect::<Vec<_>>()
    );
    for s in 0..5 {
        let versions: Vec<u64> = all
            .iter()
            .filter(|e| e.stream == format!("s{s}"))
            .map(|e| e.version)
            .collect();
        assert_eq!(
            versions,
            (1..=16).collect::<Vec<_>>(),
            "stream s{s} versions"
        );
    }
}

#[wasm_bindgen_test]
async fn concurrent_single_appends_are_grouped_and_each_checked() {
    let store = fresh_store().await;
    store
        .append("taken", ExpectedVersion::NoStream, vec![event(0)])
        .await
        .unwrap();
    let mut writes = Vec::new();
    for i in 1..=50u64 {
        writes.push(store.append_batch(vec![StreamAppend::new(
            format!("case-{i}"),
            ExpectedVersion::NoStream,
            vec![event(i)],
        )]));
    }
    // One of the group fails its own check; the others must still land.
    writes.push(store.append_batch(vec![StreamAppend::new(
        "taken",
        ExpectedVersion::NoStream,
        vec![event(99)],
    )]));
    let results = join_all(writes).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 50);
    assert!(matches!(
        results.last().unwrap(),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.head().await.unwrap(), 51);
}

#[wasm_bindgen_test]
async fn a_hundred_thousand_events_read_back_in_bounded_batches() {
    let store = fresh_store().await;
    let per_batch = 10_000u64;
    for b in 0..10u64 {
        let batch: Vec<StreamAppend> = (0..per_batch / 5)
            .map(|c| {
                let case = b * per_batch + c;
                StreamAppend::new(
                    format!("case-{case}"),
                    ExpectedVersion::NoStream,
                    (0..5).map(|k| event(case * 5 + k)).collect(),
                )
            })
            .collect();
        store.append_batch(batch).await.unwrap();
    }
    assert_eq!(store.head().await.unwrap(), 100_000);
    let (mut from, mut count, mut largest) = (1u64, 0u64, 0usize);
    loop {
        let page = store.read_all(from, 4096).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert_eq!(page[0].seq, from, "pages continue where the last stopped");
        largest = largest.max(page.len());
        count += page.len() as u64;
        from = page.last().unwrap().seq + 1;
    }
    assert_eq!(count, 100_000);
    assert!(largest <= 4096, "a batch never exceeds its limit");
    let one = store.read_stream("case-70777", 1, 10).await.unwrap();
    assert_eq!(one.len(), 5);
    assert!(one.iter().all(|e| e.stream == "case-70777"));
}

#[wasm_bindgen_test]
async fn a_tab_far_behind_a_large_commit_still_checks_versions() {
    // The engine's worker commits a large import while the page's own
    // connection holds a stream table from before it: the page's next
    // append starts from the stored checkpoint, not from its old table.
    use retrace::store::idb::CHECKPOINT_EVERY;
    let name = fresh_name();
    let page = IdbStore::open(&name).await.unwrap();
    page.append("case-a", ExpectedVersion::NoStream, vec![event(0)])
        .await
        .unwrap();
    let worker = IdbStore::open(&name).await.unwrap();
    let n = CHECKPOINT_EVERY + 10;
    let mut batch: Vec<StreamAppend> = (0..n / 2)
        .map(|i| {
            StreamAppend::new(
                format!("case-{i}"),
                ExpectedVersion::NoStream,
                vec![event(2 * i + 1), event(2 * i + 2)],
            )
        })
        .collect();
    batch.push(StreamAppend::new(
        "case-a",
        ExpectedVersion::Exact(1),
        vec![event(n + 1)],
    ));
    worker.append_batch(batch).await.unwrap();
    refused(
        page.append("case-a", ExpectedVersion::Exact(1), vec![event(n + 2)])
            .await,
        2,
    );
    refused(
        page.append("case-9", ExpectedVersion::NoStream, vec![event(n + 3)])
            .await,
        2,
    );
    let c = page
        .append("case-a", ExpectedVersion::Exact(2), vec![event(n + 4)])
        .await
        .unwrap();
    assert_eq!(c.last_seq, 1 + n / 2 * 2 + 1 + 1);
    assert_eq!(page.stream_version("case-a").await.unwrap(), Some(3));
}

#[wasm_bindgen_test]
async fn a_damaged_stream_table_checkpoint_is_rebuilt_from_the_log() {
    use retrace::store::idb::{CHECKPOINT_EVERY, STREAM_TABLE};
    let name = fresh_name();
    let store = IdbStore::open(&name).await.unwrap();
    let n = CHECKPOINT_EVERY + 10;
    let batch: Vec<StreamAppend> = (0..n / 2)
        .map(|i| {
            StreamAppend::new(
                format!("case-{i}"),
                ExpectedVersion::NoStream,
                vec![event(2 * i), event(2 * i + 1)],
            )
        })
        .collect();
    store.append_batch(batch).await.unwrap();
    store.close();
    wasm_bindgen_futures::JsFuture::from(overwrite(
        &name,
        STREAM_TABLE,
        "table",
        &[0xff, 0x13, 0x37],
    ))
    .await
    .unwrap();
    let reopened = IdbStore::open(&name).await.unwrap();
    assert_eq!(
        reopened.stream_version("case-7").await.unwrap(),
        Some(2),
        "rebuilt from the segments"
    );
    refused(
        reopened
            .append("case-7", ExpectedVersion::NoStream, vec![event(n + 1)])
            .await,
        2,
    );
    reopened
        .append("case-7", ExpectedVersion::Exact(2), vec![event(n + 1)])
        .await
        .unwrap();
    assert_eq!(
        reopened.read_stream("case-7", 1, 10).await.unwrap().len(),
        3
    );
}

/// Three commits, three segments: events 1–2, 3–4, 5–6 (keyed 2, 4, 6).
async fn three_segments(store: &IdbStore) {
    for i in 0..3u64 {
        store
            .append(
                &format!("case-{i}"),
                ExpectedVersion::NoStream,
                vec![event(2 * i), event(2 * i + 1)],
            )
            .await
            .unwrap();
    }
}

#[wasm_bindgen_test]
async fn a_damaged_segment_is_reported_with_the_events_it_held() {
    use retrace::store::idb::SEGMENTS;
    let name = fresh_name();
    let store = IdbStore::open(&name).await.unwrap();
    three_segments(&store).await;
    store.close();
    // Garble the middle segment.
    wasm_bindgen_futures::JsFuture::from(overwrite_numbered(
        &name,
        SEGMENTS,
        4.0,
        &[0x01, 0xff, 0x13],
    ))
    .await
    .unwrap();
    let reopened = IdbStore::open(&name).await.unwrap();
    assert_eq!(
        reopened.read_all(1, 2).await.unwrap().len(),
        2,
        "what comes before the damage reads"
    );
    let err = reopened.read_all(1, 100).await.unwrap_err();
    match &err {
        StoreError::Damaged {
            from: 3,
            to: Some(4),
            ..
        } => {}
        other => panic!("expected the damage at events 3–4, got {other:?}"),
    }
    assert!(
        err.to_string().contains("record of events 3–4 is damaged"),
        "{err}"
    );
    // A read that starts inside the record still names all of it.
    match reopened.read_all(4, 100).await.unwrap_err() {
        StoreError::Damaged {
            from: 3,
            to: Some(4),
            ..
        } => {}
        other => panic!("expected the damage at events 3–4, got {other:?}"),
    }
}

/// The recovery's own event, as the app writes it.
fn recovered(kept_to: u64, old_head: u64, after: u64) -> StreamAppend {
    use retrace::domain::events::LogRecovered;
    let payload = LogRecovered {
        kept_to,
        old_head,
        problem: "test".into(),
        exported_after_cut: after,
        export_file: "retrace-recovered.ndjson".into(),
    };
    StreamAppend::new(
        LogRecovered::STREAM,
        ExpectedVersion::Any,
        vec![NewEvent::new(
            format!("recovery-{kept_to}"),
            LogRecovered::TYPE,
            LogRecovered::SCHEMA,
            0,
            &payload,
        )],
    )
}

#[wasm_bindgen_test]
async fn a_damaged_log_is_cut_after_its_last_good_event_and_the_cut_recorded() {
    use retrace::store::idb::SEGMENTS;
    use retrace::store::snapshot::{Snapshot, SnapshotStore};
    use retrace::store::verify::verify_log;
    let name = fresh_name();
    let store = IdbStore::open(&name).await.unwrap();
    three_segments(&store).await;
    let snapshot = |seq| Snapshot {
        name: "p".into(),
        code_version: 1,
        seq,
        checksum: 0,
        bytes: vec![],
    };
    store.save(vec![snapshot(2), snapshot(6)]).await.unwrap();
    store.close();
    wasm_bindgen_futures::JsFuture::from(overwrite_numbered(&name, SEGMENTS, 4.0, &[0xff; 3]))
        .await
        .unwrap();

    let store = IdbStore::open(&name).await.unwrap();
    let mut readable = Vec::new();
    let salvage = store
        .salvage(|events| readable.extend(events.iter().map(|e| e.seq)))
        .await
        .unwrap();
    assert_eq!(
        readable,
        vec![1, 2, 5, 6],
        "every record that decodes is handed out"
    );
    assert_eq!(salvage.last_good(), 2);
    assert_eq!(salvage.readable_after, 2);
    let problem = salvage.problem.clone().expect("the damage is found");
    assert!(
        problem.contains("record of events 3–4 is damaged"),
        "{problem}"
    );

    let cut = store.cut_after(&salvage, recovered(2, 6, 2)).await.unwrap();
    assert_eq!((cut.first_seq, cut.last_seq), (3, 3));
    let report = verify_log(&store, 100).await.unwrap();
    assert_eq!((report.events, report.problem), (3, None));
    assert_eq!(
        store.positions("p").await.unwrap(),
        vec![2],
        "snapshots past the cut are gone"
    );
    store.close();

    // After reopening: the cut is in the log, and the log takes appends again
    // (case-1's events were cut off, so its stream starts anew).
    let store = IdbStore::open(&name).await.unwrap();
    let all = store.read_all(1, 100).await.unwrap();
    let types: Vec<&str> = all.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec!["ActivityRecorded", "ActivityRecorded", "LogRecovered"]
    );
    store
        .append("case-1", ExpectedVersion::NoStream, vec![event(9)])
        .await
        .unwrap();
    assert_eq!(store.head().await.unwrap(), 4);
    assert_eq!(verify_log(&store, 2).await.unwrap().problem, None);
}

#[wasm_bindgen_test]
async fn a_cut_inside_a_record_keeps_that_records_good_events() {
    use retrace::store::verify::verify_log;
    let store = fresh_store().await;
    store
        .append("a", ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    // One commit whose second event repeats an id: the rules break at seq 3.
    store
        .append(
            "b",
            ExpectedVersion::NoStream,
            vec![event(5), event(1), event(6)],
        )
        .await
        .unwrap();
    let report = verify_log(&store, 100).await.unwrap();
    assert_eq!(report.last_good(), 2);
    assert!(report.problem.unwrap().contains("ev-1 at seq 3"));

    let salvage = store.salvage(|_| {}).await.unwrap();
    assert_eq!((salvage.last_good(), salvage.readable_after), (2, 2));
    store.cut_after(&salvage, recovered(2, 4, 2)).await.unwrap();
    let ids: Vec<String> = store
        .read_all(1, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, vec!["ev-1", "ev-5", "recovery-2"]);
    assert_eq!(store.stream_version("b").await.unwrap(), Some(1));
}

#[wasm_bindgen_test]
async fn a_cut_is_refused_when_the_log_moved_after_the_salvage() {
    let store = fresh_store().await;
    store
        .append("a", ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    let salvage = store.salvage(|_| {}).await.unwrap();
    store
        .append("a", ExpectedVersion::Exact(1), vec![event(2)])
        .await
        .unwrap();
    let err = store
        .cut_after(&salvage, recovered(1, 1, 0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("moved from 1 to 2"), "{err}");
    assert_eq!(store.head().await.unwrap(), 2, "nothing was cut");
}

#[wasm_bindgen_test]
async fn an_event_from_a_newer_retrace_is_not_damage_and_is_never_cut() {
    let store = fresh_store().await;
    let mut newer = event(2);
    newer.schema = 99;
    store
        .append("a", ExpectedVersion::NoStream, vec![event(1), newer])
        .await
        .unwrap();
    let err = store.salvage(|_| {}).await.err().expect("salvage refuses");
    assert!(err.to_string().contains("nothing to recover"), "{err}");
    assert!(err.to_string().contains("update Retrace"), "{err}");
    assert_eq!(store.head().await.unwrap(), 2);
}

#[wasm_bindgen_test]
async fn a_replicas_appends_wait_in_its_outbox_whole_checked_against_log_and_outbox() {
    let name = fresh_name();
    let store = IdbStore::open(&name).await.unwrap();
    // What came from the server: case-1 at version 2.
    store
        .append_replicated(vec![StreamAppend::new(
            "case-1",
            ExpectedVersion::Any,
            vec![event(1), event(2)],
        )])
        .await
        .unwrap();
    store.use_outbox().await.unwrap();
    let c = store
        .append_batch(vec![
            StreamAppend::new("case-1", ExpectedVersion::Exact(2), vec![event(3)]),
            StreamAppend::new("case-2", ExpectedVersion::NoStream, vec![event(4)]),
        ])
        .await
        .unwrap();
    assert!(
        c.is_empty(),
        "nothing reaches the log before the server has it"
    );
    assert_eq!(store.head().await.unwrap(), 2);
    // A second write counts the first's waiting events.
    store
        .append("case-1", ExpectedVersion::Exact(3), vec![event(5)])
        .await
        .unwrap();
    // A stale expectation: nothing of this batch waits.
    let stale = store
        .append_batch(vec![
            StreamAppend::new("case-3", ExpectedVersion::NoStream, vec![event(6)]),
            StreamAppend::new("case-1", ExpectedVersion::Exact(2), vec![event(7)]),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(
            stale,
            StoreError::Conflict {
                actual: Some(4),
                ..
            }
        ),
        "{stale}"
    );
    let waiting = store.waiting(None).await.unwrap();
    let seen: Vec<(String, u64, bool, String)> = waiting
        .iter()
        .map(|(_, w)| (w.stream.clone(), w.after, w.checked, w.event.id.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("case-1".into(), 2, true, "ev-3".into()),
            ("case-2".into(), 0, true, "ev-4".into()),
            ("case-1".into(), 3, true, "ev-5".into()),
        ]
    );
    // Reopened (another tab, a reload): the same entries, in order; the
    // newer-than query returns what later writes put there.
    store.close();
    let again = IdbStore::open(&name).await.unwrap();
    again.use_outbox().await.unwrap();
    assert_eq!(again.waiting(None).await.unwrap(), waiting);
    let first = waiting[0].0;
    assert_eq!(
        again.waiting(Some(waiting[1].0)).await.unwrap(),
        waiting[2..]
    );
    // Stored on the server: gone from the outbox; a kept event rewritten.
    again.settle(&[first], &[]).await.unwrap();
    assert_eq!(again.waiting(None).await.unwrap(), waiting[1..]);
    let mut kept = waiting[2].clone();
    kept.1.after = 9;
    again
        .settle(&[waiting[1].0], &[kept.clone()])
        .await
        .unwrap();
    assert_eq!(again.waiting(None).await.unwrap(), [kept.clone()]);
    again.settle(&[kept.0], &[]).await.unwrap();
    assert!(again.waiting(None).await.unwrap().is_empty());

    // A record of the first version (the whole chunk as one JSON string)
    // is read, settled event by event, and goes when all are done.
    let old = serde_json::json!({
        "events": [waiting[0].1, waiting[1].1],
        "done": [],
    })
    .to_string();
    again.close();
    wasm_bindgen_futures::JsFuture::from(overwrite_text(&name, "outbox", 999.0, &old))
        .await
        .unwrap();
    let again = IdbStore::open(&name).await.unwrap();
    let read = again.waiting(None).await.unwrap();
    let base = 999 * (1 << 16);
    assert_eq!(
        read,
        [
            (base, waiting[0].1.clone()),
            (base + 1, waiting[1].1.clone())
        ]
    );
    again.settle(&[base], &[]).await.unwrap();
    assert_eq!(again.waiting(None).await.unwrap(), read[1..]);
    again.settle(&[base + 1], &[]).await.unwrap();
    assert!(again.waiting(None).await.unwrap().is_empty());
}

async fn append(store: &IdbStore, stream: &str, from: u64, n: u64) {
    let events: Vec<NewEvent> = (from..from + n).map(event).collect();
    store
        .append(stream, ExpectedVersion::Any, events)
        .await
        .unwrap();
}

#[wasm_bindgen_test]
async fn a_store_keeping_its_commits_reads_them_back_as_the_database_holds_them() {
    let name = fresh_name();
    let writer = IdbStore::open(&name).await.unwrap();
    writer.keep_commits(100);
    let other = IdbStore::open(&name).await.unwrap();
    append(&writer, "a", 0, 30).await;
    append(&writer, "b", 30, 40).await;
    // Another tab's commit between this store's own.
    append(&other, "a", 70, 5).await;
    append(&writer, "a", 75, 20).await;
    // One larger than what it keeps.
    append(&writer, "c", 95, 150).await;
    let from_db = other.read_all(1, 1_000).await.unwrap();
    assert_eq!(from_db.len(), 245);
    // Read in the steps a folding engine takes, from every place.
    for start in [1, 31, 71, 76, 96, 200] {
        let mut read = Vec::new();
        let mut at = start;
        loop {
            let step = writer.read_all(at, 16).await.unwrap();
            let Some(last) = step.last() else { break };
            at = last.seq + 1;
            read.extend(step);
        }
        assert_eq!(read, from_db[(start - 1) as usize..], "read from {start}");
    }
}
