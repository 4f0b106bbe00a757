//! What a shared log's sync needs of the store beside the [`EventStore`]
//! contract: an outbox of events written here that the server has not
//! stored yet, commits of what the server sends, a read-only switch, and
//! the model registry whose bytes it trades with the team. IndexedDB
//! implements it in the app; [`super::memory::MemoryStore`] for native
//! tests of the sync; both pass [`contract`].

use super::outbox::Waiting;
use super::{Committed, EventStore, RegistryRow, StoreError, StreamAppend};
use crate::domain::model::ModelTrained;

/// The log's side of a replica of a shared log.
#[allow(async_fn_in_trait)]
pub trait ReplicaStore: EventStore {
    /// From now on appends wait in the outbox (and what already waits there
    /// is counted): the log holds only what the server stored.
    async fn use_outbox(&self) -> Result<(), StoreError>;
    /// Put `batch` in the outbox as one unit, closed by its last event:
    /// every other browser sees all of it or none (an import, an upload).
    async fn append_unit(&self, batch: Vec<StreamAppend>) -> Result<Committed, StoreError>;
    /// The waiting events with keys above `after` (all: None), in order.
    async fn waiting(&self, after: Option<u64>) -> Result<Vec<(u64, Waiting)>, StoreError>;
    /// Mark `delete` done (stored by the server, or dropped by the user) and
    /// put `rewrite` in place of what waits under those keys, at once.
    async fn settle(&self, delete: &[u64], rewrite: &[(u64, Waiting)]) -> Result<(), StoreError>;
    /// Append what the server sent, whatever [`ReplicaStore::set_read_only`]
    /// says: one commit, in the order given.
    async fn append_replicated(&self, batch: Vec<StreamAppend>) -> Result<Committed, StoreError>;
    /// The current versions of several streams.
    async fn stream_versions(&self, streams: &[&str]) -> Result<Vec<Option<u64>>, StoreError>;
    /// Whether appends are refused (a user who may only read).
    fn is_read_only(&self) -> bool;
    /// Refuse appends from now on, saying why (None: take them again).
    fn set_read_only(&self, why: Option<String>);
}

/// The model registry, as the team's model trade uses it.
#[allow(async_fn_in_trait)]
pub trait ModelStore {
    /// Every record, oldest id first; one this build cannot read, in words.
    async fn list_models(&self) -> Result<Vec<(String, RegistryRow)>, StoreError>;
    /// A model's bytes (None: never here, or let go).
    async fn model_bytes(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Store a record and its bytes under an id nobody used: `false`, and
    /// nothing written, if it is taken.
    async fn save_new_model(&self, record: &ModelTrained, bytes: &[u8])
        -> Result<bool, StoreError>;
}

/// Order registry rows oldest id first (`model-2` before `model-10`).
pub fn oldest_first(rows: &mut [(String, RegistryRow)]) {
    rows.sort_by_key(|(id, _)| {
        id.trim_start_matches("model-")
            .parse::<u64>()
            .unwrap_or(u64::MAX)
    });
}

/// The contract every [`ReplicaStore`] keeps, run on each implementation.
pub mod contract {
    use super::ReplicaStore;
    use crate::store::contract::event;
    use crate::store::outbox::{record_keys, CHUNK};
    use crate::store::{ExpectedVersion, StoreError, StreamAppend};

    async fn keys_waiting<S: ReplicaStore>(s: &S) -> Vec<u64> {
        let waiting = s.waiting(None).await.unwrap();
        waiting.into_iter().map(|(k, _)| k).collect()
    }

    fn append(stream: &str, expected: ExpectedVersion, ids: std::ops::Range<u64>) -> StreamAppend {
        StreamAppend {
            stream: stream.into(),
            expected,
            events: ids.map(event).collect(),
        }
    }

    pub async fn appends_wait_in_the_outbox_until_the_server_sends_them_back<S: ReplicaStore>(
        s: S,
    ) {
        s.use_outbox().await.unwrap();
        let c = s
            .append_batch(vec![append("a", ExpectedVersion::NoStream, 1..3)])
            .await
            .unwrap();
        assert_eq!(
            (c.first_seq, c.last_seq),
            (1, 0),
            "nothing reaches the log yet"
        );
        assert_eq!(s.head().await.unwrap(), 0);
        let waiting = s.waiting(None).await.unwrap();
        assert_eq!(waiting.len(), 2);
        assert_eq!(waiting[0].1.stream, "a");
        assert_eq!(waiting[0].1.event.id, event(1).id);
        assert!(waiting[0].0 < waiting[1].0, "keys count up");
        // Only what comes after a key is new.
        assert_eq!(s.waiting(Some(waiting[1].0)).await.unwrap().len(), 0);
        let c = s
            .append_replicated(vec![append("a", ExpectedVersion::Any, 1..3)])
            .await
            .unwrap();
        assert_eq!((c.first_seq, c.last_seq), (1, 2));
        assert_eq!(s.read_all(1, 10).await.unwrap().len(), 2);
    }

    pub async fn settled_events_no_longer_wait_and_a_record_goes_when_all_are_done<
        S: ReplicaStore,
    >(
        s: S,
    ) {
        s.use_outbox().await.unwrap();
        s.append_batch(vec![append("a", ExpectedVersion::Any, 1..4)])
            .await
            .unwrap();
        let keys = keys_waiting(&s).await;
        s.settle(&keys[..1], &[]).await.unwrap();
        let left = keys_waiting(&s).await;
        assert_eq!(left, keys[1..]);
        s.settle(&keys[1..], &[]).await.unwrap();
        assert!(s.waiting(None).await.unwrap().is_empty());
        // Settling again (after a crash, say) changes nothing.
        s.settle(&keys, &[]).await.unwrap();
        assert!(s.waiting(None).await.unwrap().is_empty());
    }

    pub async fn a_unit_waits_whole_and_closed_by_its_last_event<S: ReplicaStore>(s: S) {
        s.use_outbox().await.unwrap();
        s.append_batch(vec![append("a", ExpectedVersion::Any, 1..2)])
            .await
            .unwrap();
        s.append_unit(vec![
            append("b", ExpectedVersion::NoStream, 2..4),
            append("c", ExpectedVersion::NoStream, 4..5),
        ])
        .await
        .unwrap();
        let waiting: Vec<_> = s
            .waiting(None)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, w)| w)
            .collect();
        assert_eq!(waiting.len(), 4);
        assert_eq!(
            waiting[0].unit, None,
            "what was written before is no part of it"
        );
        let unit = format!("unit-{}", event(2).id);
        for w in &waiting[1..] {
            assert_eq!(w.unit.as_deref(), Some(unit.as_str()));
        }
        let closes: Vec<bool> = waiting.iter().map(|w| w.closes).collect();
        assert_eq!(
            closes,
            [false, false, false, true],
            "closed by its last event"
        );
    }

    pub async fn a_rewrite_replaces_what_waits<S: ReplicaStore>(s: S) {
        s.use_outbox().await.unwrap();
        s.append_batch(vec![append("a", ExpectedVersion::Any, 1..3)])
            .await
            .unwrap();
        let waiting = s.waiting(None).await.unwrap();
        let (key, mut w) = waiting[1].clone();
        w.after = 7;
        s.settle(&[waiting[0].0], &[(key, w.clone())])
            .await
            .unwrap();
        assert_eq!(s.waiting(None).await.unwrap(), vec![(key, w)]);
    }

    pub async fn a_read_only_replica_refuses_appends_but_takes_the_servers<S: ReplicaStore>(s: S) {
        s.use_outbox().await.unwrap();
        s.set_read_only(Some("may only read".into()));
        assert!(s.is_read_only());
        let refused = s
            .append_batch(vec![append("a", ExpectedVersion::Any, 1..2)])
            .await;
        assert!(matches!(refused, Err(StoreError::ReadOnly(ref why)) if why == "may only read"));
        assert!(
            s.waiting(None).await.unwrap().is_empty(),
            "nothing half written"
        );
        s.append_replicated(vec![append("a", ExpectedVersion::Any, 1..2)])
            .await
            .unwrap();
        assert_eq!(s.head().await.unwrap(), 1);
        s.set_read_only(None);
        assert!(!s.is_read_only());
    }

    pub async fn the_outbox_checks_versions_over_the_log_and_what_waits<S: ReplicaStore>(s: S) {
        s.append_replicated(vec![append("a", ExpectedVersion::Any, 1..3)])
            .await
            .unwrap();
        s.use_outbox().await.unwrap();
        assert_eq!(
            s.stream_versions(&["a", "b"]).await.unwrap(),
            vec![Some(2), None]
        );
        // Written after the log's version 2 and the outbox: the check holds.
        s.append_batch(vec![append("a", ExpectedVersion::Exact(2), 3..4)])
            .await
            .unwrap();
        let stale = s
            .append_batch(vec![append("a", ExpectedVersion::Exact(2), 4..5)])
            .await;
        assert!(
            matches!(stale, Err(StoreError::Conflict { .. })),
            "the outbox counts: {stale:?}"
        );
        let waiting = s.waiting(None).await.unwrap();
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].1.after, 2);
    }

    pub async fn big_writes_span_several_records_in_order<S: ReplicaStore>(s: S) {
        s.use_outbox().await.unwrap();
        let n = CHUNK as u64 + 5;
        s.append_batch(vec![append("a", ExpectedVersion::Any, 1..n + 1)])
            .await
            .unwrap();
        let waiting = s.waiting(None).await.unwrap();
        assert_eq!(waiting.len() as u64, n);
        let first = record_keys(waiting[0].0);
        let last = record_keys(waiting[waiting.len() - 1].0);
        assert!(first.end <= last.start, "two records");
        let ids: Vec<String> = waiting.iter().map(|(_, w)| w.event.id.clone()).collect();
        let want: Vec<String> = (1..n + 1).map(|i| event(i).id).collect();
        assert_eq!(ids, want);
        // The second record is new after any key of the first.
        assert_eq!(s.waiting(Some(waiting[0].0)).await.unwrap().len(), 5);
    }
}

/// The replica contract's cases as tests, natively or in the browser, on
/// stores from `$make` (an expression; awaited in the browser).
#[macro_export]
macro_rules! replica_contract {
    ($kind:ident: $make:expr) => {
        $crate::replica_contract!(@cases $kind $make;
            appends_wait_in_the_outbox_until_the_server_sends_them_back,
            settled_events_no_longer_wait_and_a_record_goes_when_all_are_done,
            a_rewrite_replaces_what_waits,
            a_unit_waits_whole_and_closed_by_its_last_event,
            a_read_only_replica_refuses_appends_but_takes_the_servers,
            the_outbox_checks_versions_over_the_log_and_what_waits,
            big_writes_span_several_records_in_order);
    };
    (@cases native $make:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                futures::executor::block_on($crate::store::replica::contract::$case($make));
            }
        )*
    };
    (@cases browser $make:expr; $($case:ident),*) => {
        $(
            #[wasm_bindgen_test::wasm_bindgen_test]
            async fn $case() {
                $crate::store::replica::contract::$case($make.await).await;
            }
        )*
    };
}
