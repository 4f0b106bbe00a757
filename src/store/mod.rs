//! Where the log lives: the [`EventStore`] contract and its implementations.
//!
//! - [`memory::MemoryStore`] — in memory, for native tests and tools.
//! - `idb::IdbStore` (wasm only) — IndexedDB, the app's storage.
//!
//! Both pass the same contract suite ([`contract`]).

pub mod contract;
pub mod memory;
pub mod outbox;
pub mod replica;
pub mod snapshot;
pub mod staged;
pub mod stream_table;
pub mod verify;

/// A model registry row as stored: the record, or why it cannot be read.
pub type RegistryRow = Result<crate::domain::model::ModelTrained, String>;

#[cfg(target_arch = "wasm32")]
pub mod idb;

use crate::log::codec::CodecError;
use crate::log::{Envelope, NewEvent};
use thiserror::Error;

/// What the writer believes about a stream's version before appending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream whose current version is `actual` (None: no such
    /// stream) satisfies this expectation.
    pub fn admits(self, actual: Option<u64>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::Exact(n) => actual == Some(n),
        }
    }
}

/// Events for one stream, with the version check they are written under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamAppend {
    /// Stream name.
    pub stream: String,
    /// The version the writer expects the stream to be at.
    pub expected: ExpectedVersion,
    /// The events, in order.
    pub events: Vec<NewEvent>,
}

impl StreamAppend {
    /// Events for `stream` under `expected`.
    pub fn new(
        stream: impl Into<String>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Self {
        StreamAppend {
            stream: stream.into(),
            expected,
            events,
        }
    }
}

/// Events in order, each with its stream, as one batch: consecutive events
/// of the same stream share a part (written under `Any`).
pub fn by_stream(events: impl IntoIterator<Item = (String, NewEvent)>) -> Vec<StreamAppend> {
    let mut batch: Vec<StreamAppend> = Vec::new();
    for (stream, event) in events {
        push_event(&mut batch, stream, ExpectedVersion::Any, event);
    }
    batch
}

/// Add one event to a batch: onto the last part when it is the same stream
/// and the event needs no check of its own, else as a new part.
pub fn push_event(
    batch: &mut Vec<StreamAppend>,
    stream: String,
    expected: ExpectedVersion,
    event: NewEvent,
) {
    match batch.last_mut() {
        Some(part) if part.stream == stream && expected == ExpectedVersion::Any => {
            part.events.push(event)
        }
        _ => batch.push(StreamAppend::new(stream, expected, vec![event])),
    }
}

/// The positions a commit was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    /// `seq` of the first event written (equals `last_seq + 1` when nothing was written).
    pub first_seq: u64,
    /// `seq` of the last event written: the log's head after the commit.
    pub last_seq: u64,
}

impl Committed {
    /// Number of events written.
    pub fn len(&self) -> u64 {
        self.last_seq + 1 - self.first_seq
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Everything that can go wrong with the log, in words a user can act on.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The optimistic-concurrency check failed: somebody else wrote first.
    #[error("conflict on stream `{stream}`: expected {expected:?}, but it is at {}; reload the latest state and try again — nothing was written", describe_version(*actual))]
    Conflict {
        /// The stream whose check failed.
        stream: String,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's actual version (None: it does not exist).
        actual: Option<u64>,
    },
    /// This log takes no writes from here (a replica of a shared log).
    #[error("{0}")]
    ReadOnly(String),
    /// The browser refused to store more.
    #[error("the browser's storage for this site is full; free space (export and clear old logs, or allow persistent storage) and try again — nothing was written")]
    QuotaExceeded,
    /// Another tab holds the database open at an older version.
    #[error("another Retrace tab is open with an older version of the log; close or reload the other tabs, then reload this one")]
    UpgradeBlocked,
    /// The database was created by a newer build.
    #[error("this log was written by a newer version of Retrace (database version {found}, this version knows {known}); open it with the newer version — nothing was changed")]
    NewerDatabase {
        /// The database version found.
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// Another tab upgraded the database; this tab's connection was closed.
    #[error("Retrace was updated in another tab, so this tab let go of the log; reload this page to continue")]
    Closed,
    /// A stored segment could not be decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A stored segment could not be decoded; the events before `from` are intact.
    #[error("the log's record of {} is damaged ({reason}). The events before {from} are intact: Settings → Recover saves everything readable and keeps the log up to event {}", events_at(*from, *to), from - 1)]
    Damaged {
        /// The first event the damaged record should hold.
        from: u64,
        /// Its last event (the record's key), if known.
        to: Option<u64>,
        /// What was wrong with it.
        reason: String,
    },
    /// IndexedDB is missing or failed in a way not listed above.
    #[error("the browser's storage failed: {0}")]
    Storage(String),
}

/// "event 7", "events 7–9", or "the events from 7 on".
pub fn events_at(from: u64, to: Option<u64>) -> String {
    match to {
        Some(to) if to == from => format!("event {from}"),
        Some(to) => format!("events {from}–{to}"),
        None => format!("the events from {from} on"),
    }
}

fn describe_version(v: Option<u64>) -> String {
    match v {
        None => "no stream (it does not exist)".into(),
        Some(n) => format!("version {n}"),
    }
}

/// An append-only, globally ordered log of events, grouped into streams.
///
/// All methods take `&self`: implementations use interior mutability, and no
/// future is required to be `Send` (IndexedDB futures are not).
#[allow(async_fn_in_trait)]
pub trait EventStore {
    /// Append events for several streams in ONE commit: every stream's check
    /// passes and every event is written, or nothing is. Events get
    /// contiguous `seq`s in the order given.
    async fn append_batch(&self, batch: Vec<StreamAppend>) -> Result<Committed, StoreError>;

    /// Append events to one stream after checking its version.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Committed, StoreError> {
        self.append_batch(vec![StreamAppend::new(stream, expected, events)])
            .await
    }

    /// Up to `limit` events with `seq >= from_seq`, in order.
    async fn read_all(&self, from_seq: u64, limit: usize) -> Result<Vec<Envelope>, StoreError>;

    /// Up to `limit` events of `stream` with `version >= from_version`, in order.
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError>;

    /// The current version of `stream`, or None when it has no events.
    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError>;

    /// `seq` of the last event (0 for an empty log).
    async fn head(&self) -> Result<u64, StoreError>;
}

/// A shared store is a store: one open database can serve the engine's
/// reads and writes and its model lookups.
impl<T: EventStore> EventStore for std::rc::Rc<T> {
    async fn append_batch(&self, batch: Vec<StreamAppend>) -> Result<Committed, StoreError> {
        (**self).append_batch(batch).await
    }

    async fn read_all(&self, from_seq: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        (**self).read_all(from_seq, limit).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        (**self).read_stream(stream, from_version, limit).await
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        (**self).stream_version(stream).await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        (**self).head().await
    }
}

/// The version `append`'s stream is at — after an earlier part of the same
/// batch (`seen`), else as `lookup` reports — once it meets the part's
/// expectation; a conflict otherwise.
pub fn checked_version(
    append: &StreamAppend,
    seen: &rustc_hash::FxHashMap<String, u64>,
    lookup: &mut impl FnMut(&str) -> Option<u64>,
) -> Result<Option<u64>, StoreError> {
    let actual = match seen.get(&append.stream) {
        Some(&v) => Some(v),
        None => lookup(&append.stream),
    };
    if append.expected.admits(actual) {
        Ok(actual)
    } else {
        Err(StoreError::Conflict {
            stream: append.stream.clone(),
            expected: append.expected,
            actual,
        })
    }
}

/// Check every stream of a batch against the versions `lookup` reports and
/// give each event its positions. Shared by every store so that they agree
/// on the rules: a stream named twice in one batch continues where the first
/// part left off.
pub fn place_batch(
    batch: Vec<StreamAppend>,
    head: u64,
    recorded_at: i64,
    lookup: impl FnMut(&str) -> Option<u64>,
) -> Result<Vec<Envelope>, StoreError> {
    place(batch, head, recorded_at, lookup).map(|p| p.events)
}

/// A batch placed: its events, and each stream's version after them.
pub struct Placed {
    /// The events with their positions.
    pub events: Vec<Envelope>,
    /// Every stream the batch wrote to, at its new version.
    pub versions: rustc_hash::FxHashMap<String, u64>,
}

/// [`place_batch`], also saying where each stream it wrote to now stands
/// (a writer grouping batches looks there first).
pub fn place(
    batch: Vec<StreamAppend>,
    head: u64,
    recorded_at: i64,
    mut lookup: impl FnMut(&str) -> Option<u64>,
) -> Result<Placed, StoreError> {
    let mut seen = rustc_hash::FxHashMap::default();
    let mut seq = head;
    let mut placed = Vec::with_capacity(batch.iter().map(|a| a.events.len()).sum());
    for append in batch {
        let actual = checked_version(&append, &seen, &mut lookup)?;
        let mut version = actual.unwrap_or(0);
        for event in append.events {
            seq += 1;
            version += 1;
            placed.push(event.into_envelope(seq, &append.stream, version, recorded_at));
        }
        if version > 0 {
            seen.insert(append.stream, version);
        }
    }
    Ok(Placed {
        events: placed,
        versions: seen,
    })
}
