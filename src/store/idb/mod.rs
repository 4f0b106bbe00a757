//! The event log in IndexedDB: the app's storage.
//!
//! # Layout (database version [`DB_VERSION`])
//!
//! | object store   | key                      | value                                   |
//! |----------------|--------------------------|-----------------------------------------|
//! | `meta`         | `"head"`                 | seq of the last event (number)          |
//! | `segments`     | seq of its last event    | the events of one commit, [`encode_segment`] bytes |
//! | `stream_index` | `[stream, last version]` | key of the segment holding that version |
//! | `snapshots`    | projection name          | projection snapshots (see `projection`) |
//!
//! One commit is ONE readwrite transaction over `meta`, `segments` and
//! `stream_index`: it reads the head, checks every stream's expected version,
//! writes one segment, the index entries and the new head. IndexedDB runs
//! overlapping readwrite transactions one after another, so several tabs
//! appending at once still get contiguous `seq`s; a failed check or a full
//! disk aborts the transaction and nothing is written.
//!
//! Appends that arrive while a commit is in flight are grouped into the next
//! commit (group commit), each keeping its own version check.
//!
//! History: version 1 had `meta` and `segments` only; opening it upgrades to
//! version 2 and rebuilds `stream_index` from the segments.

mod request;

use super::{place_batch, Committed, EventStore, StoreError, StreamAppend};
use crate::log::codec::{decode_segment, encode_segment};
use crate::log::Envelope;
use futures::channel::oneshot;
use js_sys::{Array, Uint8Array};
use request::{committed, done, js_error};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{
    BroadcastChannel, IdbCursorDirection, IdbDatabase, IdbKeyRange, IdbObjectStore, IdbOpenDbRequest,
    IdbTransaction, IdbTransactionMode, IdbVersionChangeEvent, MessageEvent,
};

/// The database version this build creates and reads.
pub const DB_VERSION: u32 = 2;
/// Object store names.
pub const META: &str = "meta";
/// Segments of events.
pub const SEGMENTS: &str = "segments";
/// `[stream, version]` → segment key.
pub const STREAM_INDEX: &str = "stream_index";
/// Projection snapshots.
pub const SNAPSHOTS: &str = "snapshots";

const HEAD: &str = "head";
const NEEDS_REINDEX: &str = "needs_reindex";
/// The version cache is dropped when it grows past this many streams.
const CACHE_LIMIT: usize = 200_000;

/// Stream versions known to be current as of `head`. Valid only while the
/// stored head still equals `head`: any other writer moves the head.
#[derive(Default)]
struct VersionCache {
    head: u64,
    versions: HashMap<String, Option<u64>>,
}

struct Pending {
    batch: Vec<StreamAppend>,
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
    cache: RefCell<VersionCache>,
    queue: RefCell<Vec<Pending>>,
    writing: Cell<bool>,
    closed: Rc<Cell<bool>>,
    channel: Option<BroadcastChannel>,
    listeners: RefCell<Vec<Closure<dyn FnMut(MessageEvent)>>>,
    _on_version_change: Closure<dyn FnMut(web_sys::Event)>,
}

fn stream_range(stream: &str, from_version: u64) -> Result<JsValue, StoreError> {
    let lower = Array::of2(&JsValue::from_str(stream), &JsValue::from_f64(from_version as f64));
    let upper = Array::of2(&JsValue::from_str(stream), &JsValue::from_f64(f64::INFINITY));
    IdbKeyRange::bound(&lower, &upper).map(Into::into).map_err(|e| js_error(e, "building a key range"))
}

fn number(v: &JsValue) -> u64 {
    v.as_f64().unwrap_or(0.0) as u64
}

fn store_of(tx: &IdbTransaction, name: &str) -> Result<IdbObjectStore, StoreError> {
    tx.object_store(name).map_err(|e| js_error(e, "opening an object store"))
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
            cache: RefCell::default(),
            queue: RefCell::default(),
            writing: Cell::new(false),
            closed,
            channel: BroadcastChannel::new(&format!("retrace-log:{name}")).ok(),
            listeners: RefCell::default(),
            _on_version_change: on_version_change,
        };
        if store.needs_reindex().await? {
            store.reindex().await?;
        }
        Ok(store)
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Call `on_head` with the new head whenever another tab commits to this log.
    pub fn on_remote_commit(&self, mut on_head: impl FnMut(u64) + 'static) {
        let Some(channel) = &self.channel else { return };
        let listener = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| on_head(number(&ev.data())));
        let _ = channel.add_event_listener_with_callback("message", listener.as_ref().unchecked_ref());
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

    fn transaction(&self, stores: &[&str], mode: IdbTransactionMode) -> Result<IdbTransaction, StoreError> {
        if self.closed.get() {
            return Err(StoreError::Closed);
        }
        let names = stores.iter().map(|s| JsValue::from_str(s)).collect::<Array>();
        self.db
            .transaction_with_str_sequence_and_mode(&names, mode)
            .map_err(|e| js_error(e, "starting a transaction"))
    }

    async fn needs_reindex(&self) -> Result<bool, StoreError> {
        let tx = self.transaction(&[META], IdbTransactionMode::Readonly)?;
        let req = store_of(&tx, META)?.get(&NEEDS_REINDEX.into()).map_err(|e| js_error(e, "reading meta"))?;
        Ok(done(&req, "reading meta").await?.is_truthy())
    }

    /// Rebuild `stream_index` from the segments (after an upgrade from v1),
    /// in one transaction: a reload during it simply starts it again.
    async fn reindex(&self) -> Result<(), StoreError> {
        let tx = self.transaction(&[META, SEGMENTS, STREAM_INDEX], IdbTransactionMode::Readwrite)?;
        let segments = store_of(&tx, SEGMENTS)?;
        let index = store_of(&tx, STREAM_INDEX)?;
        let mut lower = 1u64;
        loop {
            let range = IdbKeyRange::lower_bound(&JsValue::from_f64(lower as f64)).map_err(|e| js_error(e, "reindex"))?;
            let req = segments.get_all_with_key_and_limit(&range, 64).map_err(|e| js_error(e, "reindex"))?;
            let page: Array = done(&req, "reading segments").await?.unchecked_into();
            if page.length() == 0 {
                break;
            }
            for value in page.iter() {
                let events = decode_segment(&Uint8Array::new(&value).to_vec())?;
                let Some(last) = events.last() else { continue };
                let key = JsValue::from_f64(last.seq as f64);
                lower = last.seq + 1;
                put_index_entries(&index, &events, &key)?;
            }
        }
        store_of(&tx, META)?.delete(&NEEDS_REINDEX.into()).map_err(|e| js_error(e, "reindex"))?;
        committed(&tx, "rebuilding the stream index").await
    }

    async fn read_head(&self, meta: &IdbObjectStore) -> Result<u64, StoreError> {
        let req = meta.get(&HEAD.into()).map_err(|e| js_error(e, "reading the head"))?;
        Ok(number(&done(&req, "reading the head").await?))
    }

    /// Write one group of appends in one transaction. Returns each append's
    /// own outcome, or the transaction's error for all of them.
    async fn write_group(&self, batches: Vec<Vec<StreamAppend>>) -> Result<Vec<Result<Committed, StoreError>>, StoreError> {
        let tx = self.transaction(&[META, SEGMENTS, STREAM_INDEX], IdbTransactionMode::Readwrite)?;
        let meta = store_of(&tx, META)?;
        let index = store_of(&tx, STREAM_INDEX)?;
        let head = self.read_head(&meta).await?;

        // Versions we know, valid as of `head`; look up the rest in one go.
        let mut known: HashMap<String, Option<u64>> = HashMap::new();
        {
            let mut cache = self.cache.borrow_mut();
            if cache.head != head || cache.versions.len() > CACHE_LIMIT {
                cache.versions.clear();
                cache.head = head;
            }
            for append in batches.iter().flatten() {
                if let Some(v) = cache.versions.get(&append.stream) {
                    known.insert(append.stream.clone(), *v);
                }
            }
        }
        let mut lookups = Vec::new();
        for append in batches.iter().flatten() {
            if !known.contains_key(&append.stream) && !lookups.iter().any(|(s, _)| s == &append.stream) {
                let req = index
                    .open_key_cursor_with_range_and_direction(&stream_range(&append.stream, 0)?, IdbCursorDirection::Prev)
                    .map_err(|e| js_error(e, "looking up a stream"))?;
                lookups.push((append.stream.clone(), req));
            }
        }
        // Requests in one transaction complete in order: the last one done
        // means all are.
        if let Some((_, last)) = lookups.last() {
            done(last, "looking up stream versions").await?;
        }
        for (stream, req) in lookups {
            let cursor = req.result().map_err(|e| js_error(e, "looking up a stream"))?;
            let version = if cursor.is_null() || cursor.is_undefined() {
                None
            } else {
                let key = cursor.unchecked_into::<web_sys::IdbCursor>().key().map_err(|e| js_error(e, "stream key"))?;
                Some(number(&Array::from(&key).get(1)))
            };
            known.insert(stream, version);
        }

        let recorded_at = js_sys::Date::now() as i64;
        let mut outcomes = Vec::with_capacity(batches.len());
        let mut placed: Vec<Envelope> = Vec::new();
        let mut next_head = head;
        for batch in batches {
            match place_batch(batch, next_head, recorded_at, |s| known.get(s).copied().flatten()) {
                Ok(events) => {
                    let first = next_head + 1;
                    next_head += events.len() as u64;
                    for e in &events {
                        known.insert(e.stream.clone(), Some(e.version));
                    }
                    placed.extend(events);
                    outcomes.push(Ok(Committed { first_seq: first, last_seq: next_head }));
                }
                Err(e) => outcomes.push(Err(e)),
            }
        }
        if !placed.is_empty() {
            let key = JsValue::from_f64(next_head as f64);
            let bytes = encode_segment(&placed);
            store_of(&tx, SEGMENTS)?
                .put_with_key(&Uint8Array::from(bytes.as_slice()), &key)
                .map_err(|e| js_error(e, "writing a segment"))?;
            put_index_entries(&index, &placed, &key)?;
            meta.put_with_key(&JsValue::from_f64(next_head as f64), &HEAD.into())
                .map_err(|e| js_error(e, "writing the head"))?;
        }
        if let Err(e) = committed(&tx, "appending events").await {
            self.cache.borrow_mut().versions.clear();
            self.cache.borrow_mut().head = u64::MAX;
            return Err(e);
        }
        {
            let mut cache = self.cache.borrow_mut();
            cache.head = next_head;
            cache.versions.extend(known);
        }
        if next_head != head {
            if let Some(channel) = &self.channel {
                let _ = channel.post_message(&JsValue::from_f64(next_head as f64));
            }
        }
        Ok(outcomes)
    }
}

/// For each stream in `events`, index the last version this segment holds.
fn put_index_entries(index: &IdbObjectStore, events: &[Envelope], segment_key: &JsValue) -> Result<(), StoreError> {
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    for e in events {
        last.insert(&e.stream, e.version);
    }
    for (stream, version) in last {
        let key = Array::of2(&JsValue::from_str(stream), &JsValue::from_f64(version as f64));
        index.put_with_key(segment_key, &key).map_err(|e| js_error(e, "writing the stream index"))?;
    }
    Ok(())
}

impl EventStore for IdbStore {
    async fn append_batch(&self, batch: Vec<StreamAppend>) -> Result<Committed, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.queue.borrow_mut().push(Pending { batch, reply });
        if !self.writing.get() {
            self.writing.set(true);
            let _guard = WriterGuard(&self.writing);
            loop {
                let group = std::mem::take(&mut *self.queue.borrow_mut());
                if group.is_empty() {
                    break;
                }
                let (batches, replies): (Vec<_>, Vec<_>) = group.into_iter().map(|p| (p.batch, p.reply)).unzip();
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
        outcome.await.unwrap_or_else(|_| Err(StoreError::Storage("the append was cancelled".into())))
    }

    async fn read_all(&self, from_seq: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let from_seq = from_seq.max(1);
        let tx = self.transaction(&[SEGMENTS], IdbTransactionMode::Readonly)?;
        let segments = store_of(&tx, SEGMENTS)?;
        let mut lower = from_seq;
        // Start small; then size pages by the events per segment seen so far.
        let mut page_size = 4u32;
        let (mut seen_segments, mut seen_events) = (0usize, 0usize);
        while out.len() < limit {
            let range = IdbKeyRange::lower_bound(&JsValue::from_f64(lower as f64)).map_err(|e| js_error(e, "read"))?;
            let req = segments.get_all_with_key_and_limit(&range, page_size).map_err(|e| js_error(e, "read"))?;
            let page: Array = done(&req, "reading the log").await?.unchecked_into();
            if page.length() == 0 {
                break;
            }
            for value in page.iter() {
                let events = decode_segment(&Uint8Array::new(&value).to_vec())?;
                seen_segments += 1;
                seen_events += events.len();
                if let Some(last) = events.last() {
                    lower = last.seq + 1;
                }
                let room = limit - out.len();
                out.extend(events.into_iter().filter(|e| e.seq >= from_seq).take(room));
                if out.len() >= limit {
                    break;
                }
            }
            let per_segment = (seen_events / seen_segments.max(1)).max(1);
            page_size = ((limit - out.len()).div_ceil(per_segment)).clamp(1, 256) as u32;
        }
        Ok(out)
    }

    async fn read_stream(&self, stream: &str, from_version: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let from_version = from_version.max(1);
        let tx = self.transaction(&[STREAM_INDEX, SEGMENTS], IdbTransactionMode::Readonly)?;
        let req = store_of(&tx, STREAM_INDEX)?
            .get_all_with_key(&stream_range(stream, from_version)?)
            .map_err(|e| js_error(e, "reading a stream"))?;
        let keys: Array = done(&req, "reading a stream").await?.unchecked_into();
        let segments = store_of(&tx, SEGMENTS)?;
        let keys: Vec<JsValue> = keys.iter().collect();
        for chunk in keys.chunks(16) {
            let reqs = chunk
                .iter()
                .map(|k| segments.get(k).map_err(|e| js_error(e, "reading a segment")))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(last) = reqs.last() {
                done(last, "reading a stream").await?;
            }
            for req in reqs {
                let value = req.result().map_err(|e| js_error(e, "reading a segment"))?;
                let events = decode_segment(&Uint8Array::new(&value).to_vec())?;
                let room = limit - out.len();
                out.extend(
                    events.into_iter().filter(|e| e.stream == stream && e.version >= from_version).take(room),
                );
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        let tx = self.transaction(&[STREAM_INDEX], IdbTransactionMode::Readonly)?;
        let req = store_of(&tx, STREAM_INDEX)?
            .open_key_cursor_with_range_and_direction(&stream_range(stream, 0)?, IdbCursorDirection::Prev)
            .map_err(|e| js_error(e, "looking up a stream"))?;
        let cursor = done(&req, "looking up a stream").await?;
        if cursor.is_null() || cursor.is_undefined() {
            return Ok(None);
        }
        let key = cursor.unchecked_into::<web_sys::IdbCursor>().key().map_err(|e| js_error(e, "stream key"))?;
        Ok(Some(number(&Array::from(&key).get(1))))
    }

    async fn head(&self) -> Result<u64, StoreError> {
        let tx = self.transaction(&[META], IdbTransactionMode::Readonly)?;
        self.read_head(&store_of(&tx, META)?).await
    }
}

/// Open `name` at [`DB_VERSION`], running the upgrade steps it needs.
async fn open_database(name: &str) -> Result<IdbDatabase, StoreError> {
    let factory = web_sys::window()
        .and_then(|w| w.indexed_db().ok().flatten())
        .ok_or_else(|| StoreError::Storage("this browser offers no IndexedDB (is it a private window?)".into()))?;
    let req = factory.open_with_u32(name, DB_VERSION).map_err(|e| js_error(e, "opening the log"))?;
    match open_request(&req, Some(upgrade)).await? {
        Ok(db) => Ok(db),
        Err(err) if err.as_ref().map(|e| e.name()) == Some("VersionError".into()) => {
            // Find out which version is there, to say so.
            let probe = factory.open(name).map_err(|e| js_error(e, "opening the log"))?;
            let found = match open_request(&probe, None).await? {
                Ok(db) => {
                    let v = db.version() as u32;
                    db.close();
                    v
                }
                Err(_) => 0,
            };
            Err(StoreError::NewerDatabase { found, known: DB_VERSION })
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
            let (Some(upgrade), Ok(db), Some(tx)) = (upgrade, req.result(), req.transaction()) else { return };
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
        Opened::Success => Ok(Ok(req.result().map_err(|e| js_error(e, "opening the log"))?.unchecked_into())),
        Opened::Failed => Ok(Err(req.error().ok().flatten())),
        Opened::Blocked => Err(StoreError::UpgradeBlocked),
    }
}

/// The upgrade path, one step per database version.
fn upgrade(db: &IdbDatabase, tx: &IdbTransaction, old_version: u32) -> Result<(), JsValue> {
    if old_version < 1 {
        db.create_object_store(META)?;
        db.create_object_store(SEGMENTS)?;
    }
    if old_version < 2 {
        db.create_object_store(STREAM_INDEX)?;
        db.create_object_store(SNAPSHOTS)?;
        if old_version >= 1 {
            // Segments written by v1 are not indexed yet: do it after opening.
            tx.object_store(META)?.put_with_key(&JsValue::TRUE, &NEEDS_REINDEX.into())?;
        }
    }
    Ok(())
}

/// Test support: create a database exactly as version 1 of Retrace did
/// (`meta` and `segments`, no stream index) holding `events` as one segment.
#[doc(hidden)]
pub async fn create_v1_database(name: &str, events: &[Envelope]) -> Result<(), StoreError> {
    fn v1_layout(db: &IdbDatabase, _tx: &IdbTransaction, old: u32) -> Result<(), JsValue> {
        if old < 1 {
            db.create_object_store(META)?;
            db.create_object_store(SEGMENTS)?;
        }
        Ok(())
    }
    let factory = web_sys::window().and_then(|w| w.indexed_db().ok().flatten()).expect("IndexedDB");
    let req = factory.open_with_u32(name, 1).map_err(|e| js_error(e, "v1"))?;
    let db = open_request(&req, Some(v1_layout)).await?.map_err(|e| request::dom_error(e, "v1"))?;
    let names = Array::of2(&META.into(), &SEGMENTS.into());
    let tx = db
        .transaction_with_str_sequence_and_mode(&names, IdbTransactionMode::Readwrite)
        .map_err(|e| js_error(e, "v1"))?;
    if let Some(last) = events.last() {
        let key = JsValue::from_f64(last.seq as f64);
        let bytes = encode_segment(events);
        store_of(&tx, SEGMENTS)?.put_with_key(&Uint8Array::from(bytes.as_slice()), &key).map_err(|e| js_error(e, "v1"))?;
        store_of(&tx, META)?.put_with_key(&key, &HEAD.into()).map_err(|e| js_error(e, "v1"))?;
    }
    committed(&tx, "writing a v1 log").await?;
    db.close();
    Ok(())
}
