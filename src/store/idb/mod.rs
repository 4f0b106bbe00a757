//! The event log in IndexedDB: the app's storage.
//!
//! # Layout (database version [`DB_VERSION`])
//!
//! | object store   | key                   | value                                           |
//! |----------------|-----------------------|-------------------------------------------------|
//! | `meta`         | `"head"`              | seq of the last event (number)                  |
//! | `segments`     | seq of its last event | the events of one commit ([`encode_segment`])   |
//! | `stream_table` | `"table"`             | a checkpoint of the [`StreamTable`]             |
//! | `snapshots`    | `[name, seq]`         | projection snapshots (see `projection`)         |
//! | `models`       | model id              | the model's `ModelTrained` record (JSON)         |
//! | `model_bytes`  | model id              | the model's bytes                               |
//! | `staging`      | `[run, block]`        | rows of an import being read (see [`staging`])  |
//! | `outbox`       | counting up           | a shared log's events waiting to be sent (JSON) |
//!
//! One commit is ONE readwrite transaction over `meta`, `segments` and
//! `stream_table`: it reads the head, brings this tab's [`StreamTable`] up
//! to it (reading only segments other tabs wrote since), checks every
//! stream's expected version against the table, and writes one segment and
//! the new head — no per-stream records, which is what makes a commit cheap.
//! IndexedDB runs overlapping readwrite transactions one after another, so
//! several tabs appending at once still get contiguous `seq`s; a failed check
//! or a full disk aborts the transaction and nothing is written. Every
//! [`CHECKPOINT_EVERY`] events the table is checkpointed in the same
//! transaction, so a tab loads it by reading the checkpoint and the tail.
//!
//! Appends that arrive while a commit is in flight are grouped into the next
//! commit (group commit), each keeping its own version check.
//!
//! Files: this one holds the store and its readers; `writer` the group
//! commit, `schema` opening and upgrading, `staging` staged imports,
//! `snapshots` and `registry` their object stores, `recovery` salvage and cut.
//!
//! History: version 1 had `meta` and `segments` only; version 2 added the
//! stream table and snapshots (the stream table of an upgraded log is built
//! from its segments); version 3 added the model registry; version 4 the
//! staging area of imports; version 5 the outbox of a shared log's replica.

mod outbox;
mod recovery;
mod registry;
mod replica;
mod request;
mod schema;
mod snapshots;
pub mod staging;
mod writer;

pub use recovery::Salvage;
use schema::open_database;
pub use schema::{create_v1_database, fresh_database_name};

use super::stream_table::StreamTable;
use super::{Committed, EventStore, StoreError, StreamAppend};
use crate::log::codec::decode_segment;
use crate::log::Envelope;
use js_sys::{Array, Uint8Array};
use request::{done, js_error};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{
    BroadcastChannel, IdbDatabase, IdbKeyRange, IdbObjectStore, IdbTransaction, IdbTransactionMode,
    MessageEvent,
};
use writer::{Job, Pending};

/// The database version this build creates and reads.
pub const DB_VERSION: u32 = 5;
/// Object store names.
pub const META: &str = "meta";
/// Segments of events.
pub const SEGMENTS: &str = "segments";
/// The checkpointed [`StreamTable`].
pub const STREAM_TABLE: &str = "stream_table";
/// Projection snapshots.
pub const SNAPSHOTS: &str = "snapshots";
/// Model registry records (`ModelTrained`), by model id.
pub const MODELS: &str = "models";
/// Model bytes, by model id.
pub const MODEL_BYTES: &str = "model_bytes";
/// Staged rows of an import in progress.
pub const STAGING: &str = "staging";
/// A shared log's events waiting to be sent.
pub const OUTBOX: &str = "outbox";

const HEAD: &str = "head";
const TABLE: &str = "table";
/// Most events in one segment record.
pub const SEGMENT_MAX: usize = 10_000;
/// How many events may pass between checkpoints of the stream table.
pub const CHECKPOINT_EVERY: u64 = 50_000;

type Listener = Closure<dyn FnMut(MessageEvent)>;

/// An [`EventStore`] in IndexedDB.
pub struct IdbStore {
    db: IdbDatabase,
    name: String,
    /// This tab's stream table, loaded on first need and kept current.
    table: RefCell<Option<StreamTable>>,
    /// Decoded events the last `read_all` did not hand out, or the last
    /// commits' events (see [`IdbStore::keep_commits`]).
    read_ahead: RefCell<Vec<Envelope>>,
    /// Keep up to this many events of the last commits for the next read.
    keep: Cell<usize>,
    queue: RefCell<Vec<Pending>>,
    writing: Cell<bool>,
    closed: Rc<Cell<bool>>,
    channel: Option<BroadcastChannel>,
    /// Why appends are refused, if they are.
    read_only: RefCell<Option<String>>,
    /// Appends wait in the outbox (a shared log's replica): where each
    /// stream stands counting its waiting events.
    outbox: RefCell<Option<crate::store::outbox::Tops>>,
    listeners: RefCell<Vec<Listener>>,
    _on_version_change: Closure<dyn FnMut(web_sys::Event)>,
}

fn number(v: &JsValue) -> u64 {
    v.as_f64().unwrap_or(0.0) as u64
}

fn store_of(tx: &IdbTransaction, name: &str) -> Result<IdbObjectStore, StoreError> {
    tx.object_store(name)
        .map_err(|e| js_error(e, "opening an object store"))
}

impl IdbStore {
    /// Open (creating or upgrading as needed) the log in database `name`.
    pub async fn open(name: &str) -> Result<IdbStore, StoreError> {
        let db = open_database(name).await?;
        let closed = Rc::new(Cell::new(false));
        let on_version_change = {
            let db = db.clone();
            let closed = closed.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                // Let the other tab upgrade; this tab stops using the log.
                closed.set(true);
                db.close();
            })
        };
        db.set_onversionchange(Some(on_version_change.as_ref().unchecked_ref()));
        let store = IdbStore {
            db,
            name: name.to_owned(),
            table: RefCell::new(None),
            read_ahead: RefCell::default(),
            keep: Cell::new(0),
            queue: RefCell::default(),
            writing: Cell::new(false),
            closed,
            channel: BroadcastChannel::new(&format!("retrace-log:{name}")).ok(),
            read_only: RefCell::new(None),
            outbox: RefCell::new(None),
            listeners: RefCell::default(),
            _on_version_change: on_version_change,
        };
        Ok(store)
    }

    /// Refuse every append from now on, with `why` (None: take them again).
    /// A replica of a shared log is written only by its sync.
    pub fn set_read_only(&self, why: Option<String>) {
        *self.read_only.borrow_mut() = why;
    }

    /// The current versions of several streams, read at once.
    pub async fn stream_versions(&self, streams: &[&str]) -> Result<Vec<Option<u64>>, StoreError> {
        let (_tx, table) = self.table_now().await?;
        let versions = streams.iter().map(|s| table.version(s)).collect();
        self.keep_table(table);
        Ok(versions)
    }

    /// Whether appends are refused.
    pub fn is_read_only(&self) -> bool {
        self.read_only.borrow().is_some()
    }

    /// Append events that come from a shared log's server, whatever
    /// [`IdbStore::set_read_only`] says: one commit, in the order given.
    pub async fn append_replicated(
        &self,
        batch: Vec<StreamAppend>,
    ) -> Result<Committed, StoreError> {
        self.submit(Job::Batch(batch)).await
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Call `on_head` with the new head whenever another tab commits to this log.
    pub fn on_remote_commit(&self, mut on_head: impl FnMut(u64) + 'static) {
        let Some(channel) = &self.channel else { return };
        let listener = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            on_head(number(&ev.data()))
        });
        let _ =
            channel.add_event_listener_with_callback("message", listener.as_ref().unchecked_ref());
        self.listeners.borrow_mut().push(listener);
    }

    /// Close the connection (tests use this to reopen).
    pub fn close(&self) {
        self.closed.set(true);
        self.db.close();
        if let Some(c) = &self.channel {
            c.close();
        }
    }

    fn transaction(
        &self,
        stores: &[&str],
        mode: IdbTransactionMode,
    ) -> Result<IdbTransaction, StoreError> {
        if self.closed.get() {
            return Err(StoreError::Closed);
        }
        let names = stores
            .iter()
            .map(|s| JsValue::from_str(s))
            .collect::<Array>();
        self.db
            .transaction_with_str_sequence_and_mode(&names, mode)
            .map_err(|e| js_error(e, "starting a transaction"))
    }

    /// The stream table, current as of `head`, read inside `tx` (which must
    /// cover `segments` and `stream_table`). Loads the checkpoint on first
    /// use and reads only the segments written since.
    async fn current_table(
        &self,
        tx: &IdbTransaction,
        head: u64,
    ) -> Result<StreamTable, StoreError> {
        let cached = self.table.borrow_mut().take().filter(|t| t.head() <= head);
        let mut table = match cached {
            // Near the head: read the few segments since.
            Some(t) if head - t.head() < CHECKPOINT_EVERY => t,
            // Far behind (another tab or the worker committed a large
            // import): the stored checkpoint, if it is nearer.
            cached => {
                let req = store_of(tx, STREAM_TABLE)?
                    .get(&TABLE.into())
                    .map_err(|e| js_error(e, "reading the stream table"))?;
                let value = done(&req, "reading the stream table").await?;
                let checkpoint = value.dyn_into::<Uint8Array>().ok().map(|b| b.to_vec());
                // A damaged checkpoint is rebuilt from the log: it is only a cache.
                let stored = checkpoint
                    .and_then(|b| StreamTable::from_checkpoint(&b))
                    .filter(|t| t.head() <= head);
                match (cached, stored) {
                    (Some(c), Some(s)) => {
                        if s.head() > c.head() {
                            s
                        } else {
                            c
                        }
                    }
                    (c, s) => c.or(s).unwrap_or_default(),
                }
            }
        };
        let segments = store_of(tx, SEGMENTS)?;
        while table.head() < head {
            let range = IdbKeyRange::lower_bound(&JsValue::from_f64((table.head() + 1) as f64))
                .map_err(|e| js_error(e, "reading the tail"))?;
            let req = segments
                .get_all_with_key_and_limit(&range, 64)
                .map_err(|e| js_error(e, "reading the tail"))?;
            let page: Array = done(&req, "reading the tail").await?.unchecked_into();
            if page.length() == 0 {
                return Err(StoreError::Storage(format!(
                    "the log's head is {head} but its segments end at {}",
                    table.head()
                )));
            }
            for value in page.iter() {
                let events = decode_segment(&Uint8Array::new(&value).to_vec())?;
                if let Some(last) = events.last() {
                    table.apply_segment(last.seq, &events);
                }
            }
        }
        Ok(table)
    }

    async fn read_head(&self, meta: &IdbObjectStore) -> Result<u64, StoreError> {
        let req = meta
            .get(&HEAD.into())
            .map_err(|e| js_error(e, "reading the head"))?;
        Ok(number(&done(&req, "reading the head").await?))
    }

    /// Keep the events of this store's last commits (up to `events` of
    /// them, contiguous) for the next `read_all`: a reader that follows the
    /// log right behind this store's writes (the engine folding what it
    /// committed) then reads them without IndexedDB and decoding.
    pub fn keep_commits(&self, events: usize) {
        self.keep.set(events);
    }

    /// Hand the events just committed to [`IdbStore::keep_commits`].
    fn kept(&self, placed: Vec<Envelope>) {
        let keep = self.keep.get();
        if keep == 0 {
            return;
        }
        let mut ahead = self.read_ahead.borrow_mut();
        let follows = ahead.last().map(|e| e.seq + 1) == placed.first().map(|e| e.seq);
        if follows && ahead.len() + placed.len() <= keep {
            ahead.extend(placed);
        } else if placed.len() <= keep {
            *ahead = placed;
        } else {
            ahead.clear();
        }
    }

    /// Events from `from_seq` on, up to `limit`, out of the leftovers of the
    /// previous read (segments are immutable, so they are still valid).
    fn take_read_ahead(&self, from_seq: u64, limit: usize) -> Vec<Envelope> {
        let mut ahead = self.read_ahead.borrow_mut();
        let (Some(first), Some(last)) = (ahead.first().map(|e| e.seq), ahead.last().map(|e| e.seq))
        else {
            return Vec::new();
        };
        if from_seq < first || from_seq > last {
            return Vec::new();
        }
        // The leftovers are one run of contiguous seqs.
        let mut run = std::mem::take(&mut *ahead).split_off((from_seq - first) as usize);
        if run.len() > limit {
            *ahead = run.split_off(limit);
        }
        run
    }

    /// The table as of the current head, in a read-only transaction.
    async fn table_now(&self) -> Result<(IdbTransaction, StreamTable), StoreError> {
        let tx = self.transaction(
            &[META, SEGMENTS, STREAM_TABLE],
            IdbTransactionMode::Readonly,
        )?;
        let head = self.read_head(&store_of(&tx, META)?).await?;
        let table = self.current_table(&tx, head).await?;
        Ok((tx, table))
    }

    /// Keep the table for later use unless a fresher one was stored meanwhile.
    fn keep_table(&self, table: StreamTable) {
        let mut slot = self.table.borrow_mut();
        if slot.as_ref().is_none_or(|t| t.head() <= table.head()) {
            *slot = Some(table);
        }
    }
}

impl EventStore for IdbStore {
    async fn append_batch(&self, batch: Vec<StreamAppend>) -> Result<Committed, StoreError> {
        if let Some(why) = self.read_only.borrow().clone() {
            return Err(StoreError::ReadOnly(why));
        }
        if self.uses_outbox() {
            return self.enqueue(batch).await;
        }
        self.submit(Job::Batch(batch)).await
    }

    async fn read_all(&self, from_seq: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        let from_seq = from_seq.max(1);
        // A sequential reader usually continues inside the segment the last
        // read stopped in: serve that from the decoded leftovers.
        let mut out = self.take_read_ahead(from_seq, limit);
        if limit == 0 || out.len() >= limit {
            return Ok(out);
        }
        let tx = self.transaction(&[SEGMENTS], IdbTransactionMode::Readonly)?;
        let segments = store_of(&tx, SEGMENTS)?;
        let mut lower = out.last().map_or(from_seq, |e| e.seq + 1);
        // Start small; then size pages by the events per segment seen so far.
        let mut page_size = 4u32;
        let (mut seen_segments, mut seen_events) = (0usize, 0usize);
        while out.len() < limit {
            let range = IdbKeyRange::lower_bound(&JsValue::from_f64(lower as f64))
                .map_err(|e| js_error(e, "read"))?;
            let req = segments
                .get_all_with_key_and_limit(&range, page_size)
                .map_err(|e| js_error(e, "read"))?;
            let page: Array = done(&req, "reading the log").await?.unchecked_into();
            if page.length() == 0 {
                break;
            }
            for (i, value) in page.iter().enumerate() {
                let mut events = match decode_segment(&Uint8Array::new(&value).to_vec()) {
                    Ok(events) => events,
                    Err(e) => {
                        // Say where: the segment's key is the seq of its last event.
                        let keys = segments
                            .get_all_keys_with_key_and_limit(&range, page_size)
                            .map_err(|e| js_error(e, "read"))?;
                        let keys: Array = done(&keys, "reading the log").await?.unchecked_into();
                        let to = keys.get(i as u32).as_f64().map(|k| k as u64);
                        // It held the events after the record before it
                        // (the read may have started inside it).
                        let from = match to {
                            Some(to) => {
                                let before = IdbKeyRange::upper_bound_with_open(
                                    &JsValue::from_f64(to as f64),
                                    true,
                                )
                                .map_err(|e| js_error(e, "read"))?;
                                let req = segments
                                    .get_all_keys_with_key(&before)
                                    .map_err(|e| js_error(e, "read"))?;
                                let keys: Array =
                                    done(&req, "reading the log").await?.unchecked_into();
                                keys.pop().as_f64().map_or(1, |k| k as u64 + 1)
                            }
                            None => lower,
                        };
                        return Err(StoreError::Damaged {
                            from,
                            to,
                            reason: e.reason(),
                        });
                    }
                };
                seen_segments += 1;
                seen_events += events.len();
                let skip = events.iter().take_while(|e| e.seq < lower).count();
                let Some(last) = events.last() else { continue };
                lower = last.seq + 1;
                let mut wanted = events.split_off(skip);
                let room = limit - out.len();
                if wanted.len() > room {
                    *self.read_ahead.borrow_mut() = wanted.split_off(room);
                }
                out.append(&mut wanted);
                if out.len() >= limit {
                    break;
                }
            }
            let per_segment = (seen_events / seen_segments.max(1)).max(1);
            page_size = ((limit - out.len()).div_ceil(per_segment)).clamp(1, 256) as u32;
        }
        Ok(out)
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let from_version = from_version.max(1);
        let (tx, table) = self.table_now().await?;
        let keys: Vec<JsValue> = table
            .segments_from(stream, from_version)
            .iter()
            .map(|&(k, _)| JsValue::from_f64(k as f64))
            .collect();
        self.keep_table(table);
        let segments = store_of(&tx, SEGMENTS)?;
        for chunk in keys.chunks(16) {
            let reqs = chunk
                .iter()
                .map(|k| {
                    segments
                        .get(k)
                        .map_err(|e| js_error(e, "reading a segment"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(last) = reqs.last() {
                done(last, "reading a stream").await?;
            }
            for req in reqs {
                let value = req.result().map_err(|e| js_error(e, "reading a segment"))?;
                let events = decode_segment(&Uint8Array::new(&value).to_vec())?;
                let room = limit - out.len();
                out.extend(
                    events
                        .into_iter()
                        .filter(|e| e.stream == stream && e.version >= from_version)
                        .take(room),
                );
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        let (_tx, table) = self.table_now().await?;
        let version = table.version(stream);
        self.keep_table(table);
        Ok(version)
    }

    async fn head(&self) -> Result<u64, StoreError> {
        let tx = self.transaction(&[META], IdbTransactionMode::Readonly)?;
        self.read_head(&store_of(&tx, META)?).await
    }
}
