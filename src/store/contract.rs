//! The contract every [`EventStore`] keeps, as one suite run against each
//! backend: `store_contract!(native: MemoryStore::new())` in native tests,
//! `store_contract!(browser: fresh_idb_store())` in browser tests.
//!
//! Each case takes a fresh, empty store and panics with a message that says
//! what broke.

use super::{EventStore, ExpectedVersion::*, StoreError, StreamAppend};
use crate::log::NewEvent;

/// A small event for stream tests; `n` makes the id and payload unique.
pub fn event(n: u64) -> NewEvent {
    NewEvent::new(
        format!("ev-{n}"),
        "ActivityRecorded",
        3,
        1_700_000_000_000 + n as i64 * 1000,
        &serde_json::json!({ "case": format!("c{n}"), "activity": "Work", "resource": null, "hours": null, "attributes": {} }),
    )
}

fn events(range: std::ops::Range<u64>) -> Vec<NewEvent> {
    range.map(event).collect()
}

/// Appended events come back in order with contiguous positions.
pub async fn appended_events_read_back_in_order<S: EventStore>(store: S) {
    assert_eq!(store.head().await.unwrap(), 0, "a fresh store is empty");
    let c = store
        .append("case-1", NoStream, events(0..3))
        .await
        .unwrap();
    assert_eq!((c.first_seq, c.last_seq), (1, 3));
    let c = store
        .append("case-2", NoStream, events(3..5))
        .await
        .unwrap();
    assert_eq!((c.first_seq, c.last_seq), (4, 5));
    let all = store.read_all(1, 100).await.unwrap();
    let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5], "seq is contiguous from 1");
    let versions: Vec<(String, u64)> = all.iter().map(|e| (e.stream.clone(), e.version)).collect();
    assert_eq!(
        versions,
        vec![
            ("case-1".into(), 1),
            ("case-1".into(), 2),
            ("case-1".into(), 3),
            ("case-2".into(), 1),
            ("case-2".into(), 2)
        ]
    );
    assert_eq!(all[3].id, "ev-3");
    assert_eq!(
        all[3].data,
        event(3).data,
        "payload comes back byte for byte"
    );
    assert_eq!(store.head().await.unwrap(), 5);
}

/// `NoStream` on an existing stream is a conflict carrying the actual version.
pub async fn no_stream_on_an_existing_stream_conflicts<S: EventStore>(store: S) {
    store
        .append("case-1", NoStream, events(0..2))
        .await
        .unwrap();
    let err = store
        .append("case-1", NoStream, events(2..3))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Conflict {
            stream: "case-1".into(),
            expected: NoStream,
            actual: Some(2)
        }
    );
    assert_eq!(store.head().await.unwrap(), 2, "a conflict writes nothing");
}

/// `Exact(n)` passes only at version n; the conflict says where the stream is.
pub async fn exact_version_is_checked<S: EventStore>(store: S) {
    store.append("s", NoStream, events(0..2)).await.unwrap();
    let err = store.append("s", Exact(1), events(2..3)).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                actual: Some(2),
                expected: Exact(1),
                ..
            }
        ),
        "stale expected version must conflict, got {err:?}"
    );
    let err = store.append("t", Exact(0), events(2..3)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { actual: None, .. }),
        "{err:?}"
    );
    store.append("s", Exact(2), events(2..3)).await.unwrap();
    assert_eq!(store.stream_version("s").await.unwrap(), Some(3));
    assert_eq!(store.stream_version("t").await.unwrap(), None);
}

/// `Any` appends to new and existing streams alike.
pub async fn any_appends_without_a_check<S: EventStore>(store: S) {
    store.append("s", Any, events(0..1)).await.unwrap();
    store.append("s", Any, events(1..2)).await.unwrap();
    assert_eq!(store.stream_version("s").await.unwrap(), Some(2));
}

/// A batch across streams is one commit; if any check fails nothing is written.
pub async fn a_batch_is_all_or_nothing<S: EventStore>(store: S) {
    store.append("b", NoStream, events(0..1)).await.unwrap();
    let err = store
        .append_batch(vec![
            StreamAppend::new("a", NoStream, events(1..4)),
            StreamAppend::new("b", NoStream, events(4..5)),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { ref stream, .. } if stream == "b"),
        "{err:?}"
    );
    assert_eq!(
        store.head().await.unwrap(),
        1,
        "the passing part of a failed batch must not land"
    );
    assert_eq!(store.stream_version("a").await.unwrap(), None);

    let c = store
        .append_batch(vec![
            StreamAppend::new("a", NoStream, events(1..4)),
            StreamAppend::new("b", Exact(1), events(4..5)),
            StreamAppend::new("a", Exact(3), events(5..6)),
        ])
        .await
        .unwrap();
    assert_eq!((c.first_seq, c.last_seq), (2, 6));
    let a = store.read_stream("a", 1, 100).await.unwrap();
    assert_eq!(
        a.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        a.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 3, 4, 6]
    );
}

/// `read_all` pages through the log by `from_seq` and `limit`.
pub async fn read_all_pages_through_the_log<S: EventStore>(store: S) {
    for i in 0..10 {
        store
            .append(&format!("s{}", i % 3), Any, events(i * 7..i * 7 + 7))
            .await
            .unwrap();
    }
    let mut from = 1;
    let mut seen = Vec::new();
    loop {
        let page = store.read_all(from, 9).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 9, "a page holds at most `limit` events");
        from = page.last().unwrap().seq + 1;
        seen.extend(page.into_iter().map(|e| e.seq));
    }
    assert_eq!(seen, (1..=70).collect::<Vec<_>>());
    assert_eq!(store.read_all(70, 5).await.unwrap().len(), 1);
    assert!(store.read_all(71, 5).await.unwrap().is_empty());
}

/// `read_stream` returns one stream's events from a version on.
pub async fn read_stream_starts_at_a_version<S: EventStore>(store: S) {
    for i in 0..6 {
        store
            .append(
                if i % 2 == 0 { "even" } else { "odd" },
                Any,
                events(i * 2..i * 2 + 2),
            )
            .await
            .unwrap();
    }
    let odd = store.read_stream("odd", 3, 100).await.unwrap();
    assert_eq!(
        odd.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );
    assert!(odd.iter().all(|e| e.stream == "odd"));
    let two = store.read_stream("odd", 2, 2).await.unwrap();
    assert_eq!(
        two.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(store.read_stream("none", 1, 10).await.unwrap().is_empty());
}

/// An empty append changes nothing.
pub async fn an_empty_append_writes_nothing<S: EventStore>(store: S) {
    store.append("s", NoStream, events(0..1)).await.unwrap();
    let c = store.append("s", Exact(1), Vec::new()).await.unwrap();
    assert!(c.is_empty());
    assert_eq!(store.head().await.unwrap(), 1);
}

/// Expand to one test per contract case. `native:` takes a store expression;
/// `browser:` takes an async expression that yields a fresh store.
#[macro_export]
macro_rules! store_contract {
    (native: $make:expr) => {
        $crate::store_contract!(@cases native $make;
            appended_events_read_back_in_order, no_stream_on_an_existing_stream_conflicts,
            exact_version_is_checked, any_appends_without_a_check, a_batch_is_all_or_nothing,
            read_all_pages_through_the_log, read_stream_starts_at_a_version,
            an_empty_append_writes_nothing);
    };
    (browser: $make:expr) => {
        $crate::store_contract!(@cases browser $make;
            appended_events_read_back_in_order, no_stream_on_an_existing_stream_conflicts,
            exact_version_is_checked, any_appends_without_a_check, a_batch_is_all_or_nothing,
            read_all_pages_through_the_log, read_stream_starts_at_a_version,
            an_empty_append_writes_nothing);
    };
    (@cases native $make:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                futures::executor::block_on($crate::store::contract::$case($make));
            }
        )*
    };
    (@cases browser $make:expr; $($case:ident),*) => {
        $(
            #[wasm_bindgen_test::wasm_bindgen_test]
            async fn $case() {
                $crate::store::contract::$case($make.await).await;
            }
        )*
    };
}
