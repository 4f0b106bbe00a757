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
//! History: version 1 had `meta` and `segments` only; version 2 added the
//! stream table and snapshots (the stream table of an upgraded log is built
//! from its segments); version 3 added the model registry; version 4 the
//! staging area of imports.

mod recovery;
mod registry;
mod request;
mod snapshots;
pub mod staging;

pub use recovery::Salvage;

use super::stream_table::StreamTable;
use super::{place_batch, Committed, EventStore, StoreError, StreamAppend};
use crate::log::codec::{decode_segment, encode_segment};
use crate::log::Envelope;
use crate::store::staged::StagedPlan;
use futures::channel::oneshot;
use js_sys::{Array, Uint8Array};
use request::{committed, done, js_error};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{
    BroadcastChannel, IdbDatabase, IdbKeyRange, IdbObjectStore, IdbOpenDbRequest, IdbTransaction,
    IdbTransactionMode, IdbVersionChangeEvent, MessageEvent,
};

/// The database version this build creates and reads.
pub const DB_VERSION: u32 = 4;
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

const HEAD: &str = "head";
const TABLE: &str = "table";
/// Most events in one segment record.
pub const SEGMENT_MAX: usize = 10_000;
/// How many events may pass between checkpoints of the stream table.
pub const CHECKPOINT_EVERY: u64 = 50_000;

type Listener = Closure<dyn FnMut(MessageEvent)>;

/// What a writer waits to have written.
enum Job {
    /// Appends, grouped with others into one commit.
    Batch(Vec<StreamAppend>),
    /// A staged import: a commit of its own.
    Staged(Box<dyn StagedPlan>),
}

struct Pending {
    job: Job,
    reply: oneshot::Sender<Result<Committed, StoreError>>,
}

/// Clears the writer flag even if the writing future is dropped.
struct WriterGuard<'a>(&'a Cell<bool>);
impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// An [`EventStore`] in IndexedDB.
pub struct IdbStore {
    db: IdbDatabase,
    name: String,
    /// This tab's stream table, loaded on first need and kept current.
    table: RefCell<Option<StreamTable>>,
    /// Decoded events the last `read_all` did not hand out.
    read_ahead: RefCell<Vec<Envelope>>,
    queue: RefCell<Vec<Pending>>,
    writing: Cell<bool>,
    closed: Rc<Cell<bool>>,
    channel: Option<BroadcastChannel>,
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
            queue: RefCell::default(),
            writing: Cell::new(false),
            closed,
            channel: BroadcastChannel::new(&format!("retrace-log:{name}")).ok(),
            listeners: RefCell::default(),
            _on_version_change: on_version_change,
        };
        Ok(store)
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
        let cached = self.table.borrow_mut().take();
        let mut table = match cached {
            Some(t) if t.head() <= head => t,
            _ => {
                let req = store_of(tx, STREAM_TABLE)?
                    .get(&TABLE.into())
                    .map_err(|e| js_error(e, "reading the stream table"))?;
                let value = done(&req, "reading the stream table").await?;
                let checkpoint = value.dyn_into::<Uint8Array>().ok().map(|b| b.to_vec());
                // A damaged checkpoint is rebuilt from the log: it is only a cache.
                checkpoint
                    .and_then(|b| StreamTable::from_checkpoint(&b))
                    .filter(|t| t.head() <= head)
                    .unwrap_or_default()
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

    /// Write one group of appends in one transaction. Returns each append's
    /// own outcome, or the transaction's error for all of them.
    async fn write_group(
        &self,
        batches: Vec<Vec<StreamAppend>>,
    ) -> Result<Vec<Result<Committed, StoreError>>, StoreError> {
        let tx = self.transaction(
            &[META, SEGMENTS, STREAM_TABLE],
            IdbTransactionMode::Readwrite,
        )?;
        let meta = store_of(&tx, META)?;
        let head = self.read_head(&meta).await?;
        let mut table = self.current_table(&tx, head).await?;

        let recorded_at = js_sys::Date::now() as i64;
        let mut outcomes = Vec::with_capacity(batches.len());
        let mut placed: Vec<Envelope> = Vec::new();
        // Versions this group has moved, over the table's.
        let mut moved: HashMap<String, u64> = HashMap::new();
        let mut next_head = head;
        for batch in batches {
            let lookup = |s: &str| moved.get(s).copied().or_else(|| table.version(s));
            match place_batch(batch, next_head, recorded_at, lookup) {
                Ok(events) => {
                    let first = next_head + 1;
                    next_head += events.len() as u64;
                    for e in &events {
                        moved.insert(e.stream.clone(), e.version);
                    }
                    placed.extend(events);
                    outcomes.push(Ok(Committed {
                        first_seq: first,
                        last_seq: next_head,
                    }));
                }
                Err(e) => outcomes.push(Err(e)),
            }
        }
        if !placed.is_empty() {
            // A large commit (an import) becomes several bounded segments,
            // all in this one transaction: still all or nothing.
            let segments = store_of(&tx, SEGMENTS)?;
            for chunk in placed.chunks(SEGMENT_MAX) {
                let last = chunk[chunk.len() - 1].seq;
                let bytes = encode_segment(chunk);
                segments
                    .put_with_key(
                        &Uint8Array::from(bytes.as_slice()),
                        &JsValue::from_f64(last as f64),
                    )
                    .map_err(|e| js_error(e, "writing a segment"))?;
                table.apply_segment(last, chunk);
            }
            meta.put_with_key(&JsValue::from_f64(next_head as f64), &HEAD.into())
                .map_err(|e| js_error(e, "writing the head"))?;
            if table.since_checkpoint() >= CHECKPOINT_EVERY {
                let bytes = table.checkpoint();
                store_of(&tx, STREAM_TABLE)?
                    .put_with_key(&Uint8Array::from(bytes.as_slice()), &TABLE.into())
                    .map_err(|e| js_error(e, "checkpointing the stream table"))?;
            }
        }
        // On failure the table (which already holds this group) is dropped
        // and reloaded on next use.
        committed(&tx, "appending events").await?;
        *self.table.borrow_mut() = Some(table);
        if next_head != head {
            self.announce(next_head);
        }
        Ok(outcomes)
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

    /// Write a staged import in one commit of its own, in turn with this
    /// tab's other appends (see [`staging`]).
    pub async fn commit_staged(&self, plan: Box<dyn StagedPlan>) -> Result<Committed, StoreError> {
        self.submit(Job::Staged(plan)).await
    }

    /// Queue a job; the first waiting writer writes every queued job, in
    /// order, grouping consecutive batches into one commit.
    async fn submit(&self, job: Job) -> Result<Committed, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.queue.borrow_mut().push(Pending { job, reply });
        if !self.writing.get() {
            self.writing.set(true);
            let _guard = WriterGuard(&self.writing);
            loop {
                let staged = |p: &Pending| matches!(p.job, Job::Staged(_));
                let next_staged = self.queue.borrow().first().is_some_and(staged);
                if next_staged {
                    let Pending { job, reply } = self.queue.borrow_mut().remove(0);
                    if let Job::Staged(mut plan) = job {
                        let _ = reply.send(self.write_staged(plan.as_mut()).await);
                    }
                    continue;
                }
                // Batches up to the next staged job go together.
                let queue: Vec<Pending> = {
                    let mut q = self.queue.borrow_mut();
                    let n = q.iter().position(staged).unwrap_or(q.len());
                    q.drain(..n).collect()
                };
                if queue.is_empty() {
                    break;
                }
                let (batches, replies): (Vec<_>, Vec<_>) = queue
                    .into_iter()
                    .filter_map(|p| match p.job {
                        Job::Batch(b) => Some((b, p.reply)),
                        Job::Staged(_) => None,
                    })
                    .unzip();
                match self.write_group(batches).await {
                    Ok(outcomes) => {
                        for (reply, outcome) in replies.into_iter().zip(outcomes) {
                            let _ = reply.send(outcome);
                        }
                    }
                    Err(e) => {
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        }
        outcome
            .await
            .unwrap_or_else(|_| Err(StoreError::Storage("the append was cancelled".into())))
    }

    /// Tell other tabs the log has a new head.
    fn announce(&self, head: u64) {
        if let Some(channel) = &self.channel {
            let _ = channel.post_message(&JsValue::from_f64(head as f64));
        }
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
                        return Err(StoreError::Damaged {
                            from: lower,
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

/// Open `name` at [`DB_VERSION`], running the upgrade steps it needs.
async fn open_database(name: &str) -> Result<IdbDatabase, StoreError> {
    // The page's window or a worker's scope: both offer `indexedDB`.
    let factory = js_sys::Reflect::get(&js_sys::global(), &"indexedDB".into())
        .ok()
        .and_then(|f| f.dyn_into::<web_sys::IdbFactory>().ok())
        .ok_or_else(|| {
            StoreError::Storage("this browser offers no IndexedDB (is it a private window?)".into())
        })?;
    let req = factory
        .open_with_u32(name, DB_VERSION)
        .map_err(|e| js_error(e, "opening the log"))?;
    match open_request(&req, Some(upgrade)).await? {
        Ok(db) => Ok(db),
        Err(err) if err.as_ref().map(|e| e.name()) == Some("VersionError".into()) => {
            // Find out which version is there, to say so.
            let probe = factory
                .open(name)
                .map_err(|e| js_error(e, "opening the log"))?;
            let found = match open_request(&probe, None).await? {
                Ok(db) => {
                    let v = db.version() as u32;
                    db.close();
                    v
                }
                Err(_) => 0,
            };
            Err(StoreError::NewerDatabase {
                found,
                known: DB_VERSION,
            })
        }
        Err(err) => Err(request::dom_error(err, "opening the log")),
    }
}

type Upgrade = fn(&IdbDatabase, &IdbTransaction, u32) -> Result<(), JsValue>;

enum Opened {
    Success,
    Failed,
    Blocked,
}

/// Drive an open request. The outer error is the store's; the inner one is
/// the raw DOM error so the caller can tell a VersionError apart.
async fn open_request(
    req: &IdbOpenDbRequest,
    upgrade: Option<Upgrade>,
) -> Result<Result<IdbDatabase, Option<web_sys::DomException>>, StoreError> {
    let (tx, rx) = oneshot::channel::<Opened>();
    let slot = Rc::new(RefCell::new(Some(tx)));
    let send = |slot: &Rc<RefCell<Option<oneshot::Sender<Opened>>>>, o: Opened| {
        if let Some(tx) = slot.borrow_mut().take() {
            let _ = tx.send(o);
            true
        } else {
            false
        }
    };
    let on_success = {
        let slot = slot.clone();
        let req = req.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if !send(&slot, Opened::Success) {
                // We already told the caller the upgrade was blocked; the
                // late connection is not wanted.
                if let Ok(db) = req.result() {
                    db.unchecked_into::<IdbDatabase>().close();
                }
            }
        })
    };
    let on_error = {
        let slot = slot.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            send(&slot, Opened::Failed);
        })
    };
    let on_blocked = {
        let slot = slot.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            send(&slot, Opened::Blocked);
        })
    };
    let on_upgrade = {
        let req = req.clone();
        Closure::<dyn FnMut(IdbVersionChangeEvent)>::new(move |ev: IdbVersionChangeEvent| {
            let (Some(upgrade), Ok(db), Some(tx)) = (upgrade, req.result(), req.transaction())
            else {
                return;
            };
            let db: IdbDatabase = db.unchecked_into();
            if upgrade(&db, &tx, ev.old_version() as u32).is_err() {
                let _ = tx.abort();
            }
        })
    };
    req.set_onsuccess(Some(on_success.as_ref().unchecked_ref()));
    req.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    req.set_onblocked(Some(on_blocked.as_ref().unchecked_ref()));
    req.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    let outcome = rx.await.unwrap_or(Opened::Failed);
    // The request may still fire after a block; its handlers must outlive us.
    on_success.forget();
    on_error.forget();
    on_blocked.forget();
    on_upgrade.forget();
    match outcome {
        Opened::Success => Ok(Ok(req
            .result()
            .map_err(|e| js_error(e, "opening the log"))?
            .unchecked_into())),
        Opened::Failed => Ok(Err(req.error().ok().flatten())),
        Opened::Blocked => Err(StoreError::UpgradeBlocked),
    }
}

/// The upgrade path, one step per database version.
fn upgrade(db: &IdbDatabase, _tx: &IdbTransaction, old_version: u32) -> Result<(), JsValue> {
    if old_version < 1 {
        db.create_object_store(META)?;
        db.create_object_store(SEGMENTS)?;
    }
    if old_version < 2 {
        // v1 logs have no stream table yet: it is built from their segments
        // on first use.
        db.create_object_store(STREAM_TABLE)?;
        db.create_object_store(SNAPSHOTS)?;
    }
    if old_version < 3 {
        db.create_object_store(MODELS)?;
        db.create_object_store(MODEL_BYTES)?;
    }
    if old_version < 4 {
        db.create_object_store(STAGING)?;
    }
    Ok(())
}

/// Test support: a database name no other test uses (each browser test gets
/// its own, fresh database).
#[doc(hidden)]
pub fn fresh_database_name(purpose: &str) -> String {
    format!(
        "retrace-{purpose}-{}",
        (js_sys::Math::random() * 1e15) as u64
    )
}

/// Test support: create a database exactly as version 1 of Retrace did
/// (`meta` and `segments`, no stream table) holding `events` as one segment.
#[doc(hidden)]
pub async fn create_v1_database(name: &str, events: &[Envelope]) -> Result<(), StoreError> {
    fn v1_layout(db: &IdbDatabase, _tx: &IdbTransaction, old: u32) -> Result<(), JsValue> {
        if old < 1 {
            db.create_object_store(META)?;
            db.create_object_store(SEGMENTS)?;
        }
        Ok(())
    }
    let factory = web_sys::window()
        .and_then(|w| w.indexed_db().ok().flatten())
        .expect("IndexedDB");
    let req = factory
        .open_with_u32(name, 1)
        .map_err(|e| js_error(e, "v1"))?;
    let db = open_request(&req, Some(v1_layout))
        .await?
        .map_err(|e| request::dom_error(e, "v1"))?;
    let names = Array::of2(&META.into(), &SEGMENTS.into());
    let tx = db
        .transaction_with_str_sequence_and_mode(&names, IdbTransactionMode::Readwrite)
        .map_err(|e| js_error(e, "v1"))?;
    if let Some(last) = events.last() {
        let key = JsValue::from_f64(last.seq as f64);
        let bytes = encode_segment(events);
        store_of(&tx, SEGMENTS)?
            .put_with_key(&Uint8Array::from(bytes.as_slice()), &key)
            .map_err(|e| js_error(e, "v1"))?;
        store_of(&tx, META)?
            .put_with_key(&key, &HEAD.into())
            .map_err(|e| js_error(e, "v1"))?;
    }
    committed(&tx, "writing a v1 log").await?;
    db.close();
    Ok(())
}
