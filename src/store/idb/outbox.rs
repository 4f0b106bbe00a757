//! The outbox of a shared log's replica: appends in this browser wait here
//! (one transaction per append, all or nothing) until the sync has sent
//! them and the server has stored them. Records hold up to [`CHUNK`] events
//! and their keys count up, so the outbox keeps the order events were
//! written in; an event stored on the server is marked done in its record,
//! and a record whose events are all done goes. Another tab's sync learns of new
//! entries over a BroadcastChannel.

use super::request::{committed, done, js_error};
use super::staging::fetch;
use super::{store_of, IdbStore, OUTBOX, STAGING};
use crate::store::outbox::{as_unit, place, Tops, Waiting, CHUNK, SPAN};
use crate::store::staged::{StagedPlan, Step};
use crate::store::{push_event, Committed, StoreError, StreamAppend};
use js_sys::Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BroadcastChannel, IdbKeyRange, IdbTransactionMode, MessageEvent};

/// One outbox record: events written together, and which of them are done.
/// Stored as a JS object `{events, n, done}` — `events` the JSON of the
/// events, kept as it was written, so that marking events done (thousands
/// of times during a push) never decodes or re-encodes them; records of the
/// first version were one JSON string of the whole chunk, and are read too.
#[derive(serde::Serialize, serde::Deserialize)]
struct Chunk {
    events: Vec<Waiting>,
    #[serde(default)]
    done: Vec<u32>,
}

fn unreadable(record: u64, e: impl std::fmt::Display) -> StoreError {
    StoreError::Storage(format!("record {record} of the outbox is unreadable ({e})"))
}

impl Chunk {
    /// The record as stored.
    fn to_value(&self) -> Result<JsValue, StoreError> {
        let events =
            serde_json::to_string(&self.events).map_err(|e| StoreError::Storage(e.to_string()))?;
        Ok(record_value(
            &JsValue::from_str(&events),
            self.events.len(),
            &self.done,
        ))
    }

    fn from_value(record: u64, value: &JsValue) -> Result<Chunk, StoreError> {
        if let Some(text) = value.as_string() {
            return serde_json::from_str(&text).map_err(|e| unreadable(record, e));
        }
        let events = js_sys::Reflect::get(value, &"events".into())
            .ok()
            .and_then(|e| e.as_string())
            .ok_or_else(|| unreadable(record, "no events"))?;
        Ok(Chunk {
            events: serde_json::from_str(&events).map_err(|e| unreadable(record, e))?,
            done: done_of(value),
        })
    }
}

/// A record's value: its events' JSON (as a JS string), their number and
/// which are done.
fn record_value(events: &JsValue, n: usize, done: &[u32]) -> JsValue {
    let value = js_sys::Object::new();
    let list: Array = done.iter().map(|i| JsValue::from(*i)).collect();
    let _ = js_sys::Reflect::set(&value, &"events".into(), events);
    let _ = js_sys::Reflect::set(&value, &"n".into(), &JsValue::from(n as u32));
    let _ = js_sys::Reflect::set(&value, &"done".into(), &list);
    value.into()
}

/// The done marks of a record of the second version.
fn done_of(value: &JsValue) -> Vec<u32> {
    js_sys::Reflect::get(value, &"done".into())
        .ok()
        .filter(|d| d.is_object())
        .map(|d| {
            Array::from(&d)
                .iter()
                .filter_map(|i| i.as_f64())
                .map(|i| i as u32)
                .collect()
        })
        .unwrap_or_default()
}

fn channel_name(db: &str) -> String {
    format!("retrace-outbox:{db}")
}

impl IdbStore {
    /// From now on appends wait in the outbox instead of reaching the log
    /// (a shared log's replica: the log is written by its sync only).
    pub async fn use_outbox(&self) -> Result<(), StoreError> {
        let waiting = self.waiting(None).await?;
        *self.outbox.borrow_mut() = Some(Tops::of(waiting.iter().map(|(_, w)| w)));
        Ok(())
    }

    /// Whether appends go to the outbox.
    pub fn uses_outbox(&self) -> bool {
        self.outbox.borrow().is_some()
    }

    /// Put a batch in the outbox: every stream's check passes against the
    /// log and the events already waiting, and every event waits, or
    /// nothing does. Nothing reaches the log yet: the commit is empty.
    pub(super) async fn enqueue(&self, batch: Vec<StreamAppend>) -> Result<Committed, StoreError> {
        self.enqueue_clearing(batch, false, false).await
    }

    /// Put a batch in the outbox as one unit: others see all of it or none
    /// (an upload of a whole log).
    pub async fn append_unit(&self, batch: Vec<StreamAppend>) -> Result<Committed, StoreError> {
        if !self.uses_outbox() {
            return Err(StoreError::Storage(
                "only a shared log's copy has an outbox".into(),
            ));
        }
        self.enqueue_clearing(batch, true, false).await
    }

    /// Put a staged import in the outbox: read from the staging area, then
    /// every event waits and the staged rows go, in one transaction. The
    /// import is one unit: others see all of it or none.
    pub(super) async fn enqueue_staged(
        &self,
        mut plan: Box<dyn StagedPlan>,
    ) -> Result<Committed, StoreError> {
        let mut batch = Vec::new();
        loop {
            match plan.next().map_err(StoreError::Storage)? {
                Step::Need(at) => {
                    let tx = self.transaction(&[STAGING], IdbTransactionMode::Readonly)?;
                    let bytes = fetch(&store_of(&tx, STAGING)?, at).await?;
                    plan.supply(at, &bytes).map_err(StoreError::Storage)?;
                }
                Step::Event(stream, expected, event) => {
                    push_event(&mut batch, stream, expected, event)
                }
                Step::Done => break,
            }
        }
        self.enqueue_clearing(batch, true, true).await
    }

    async fn enqueue_clearing(
        &self,
        batch: Vec<StreamAppend>,
        unit: bool,
        clear_staging: bool,
    ) -> Result<Committed, StoreError> {
        let (_tx, table) = self.table_now().await?;
        let head = table.head();
        let placed = {
            let mut slot = self.outbox.borrow_mut();
            let tops = slot.get_or_insert_with(Tops::default);
            let mut placed = place(batch, |s| tops.version(s, table.version(s)))?;
            tops.add(&placed);
            if unit {
                if let Some(first) = placed.first().map(|w| format!("unit-{}", w.event.id)) {
                    as_unit(&mut placed, &first);
                }
            }
            placed
        };
        self.keep_table(table);
        let written = self.write_waiting(&placed, clear_staging).await;
        if written.is_err() {
            // Count only what is stored.
            let _ = self.use_outbox().await;
        }
        written?;
        if let Ok(c) = BroadcastChannel::new(&channel_name(&self.name)) {
            let _ = c.post_message(&JsValue::TRUE);
            c.close();
        }
        Ok(Committed {
            first_seq: head + 1,
            last_seq: head,
        })
    }

    async fn write_waiting(
        &self,
        placed: &[Waiting],
        clear_staging: bool,
    ) -> Result<(), StoreError> {
        let stores: &[&str] = if clear_staging {
            &[OUTBOX, STAGING]
        } else {
            &[OUTBOX]
        };
        let tx = self.transaction(stores, IdbTransactionMode::Readwrite)?;
        let store = store_of(&tx, OUTBOX)?;
        if clear_staging {
            store_of(&tx, STAGING)?
                .clear()
                .map_err(|e| js_error(e, "clearing staged rows"))?;
        }
        for events in placed.chunks(CHUNK) {
            let chunk = Chunk {
                events: events.to_vec(),
                done: Vec::new(),
            };
            store
                .add(&chunk.to_value()?)
                .map_err(|e| js_error(e, "writing to the outbox"))?;
        }
        committed(&tx, "writing to the outbox").await
    }

    /// The waiting events with keys above `after` (all: None), in order.
    /// Records are written whole, so every record after `after`'s is new.
    pub async fn waiting(&self, after: Option<u64>) -> Result<Vec<(u64, Waiting)>, StoreError> {
        let tx = self.transaction(&[OUTBOX], IdbTransactionMode::Readonly)?;
        let store = store_of(&tx, OUTBOX)?;
        let range = match after {
            Some(k) => Some(
                IdbKeyRange::lower_bound_with_open(&JsValue::from_f64((k / SPAN) as f64), true)
                    .map_err(|e| js_error(e, "reading the outbox"))?,
            ),
            None => None,
        };
        let (keys, values) = match &range {
            Some(r) => (store.get_all_keys_with_key(r), store.get_all_with_key(r)),
            None => (store.get_all_keys(), store.get_all()),
        };
        let keys: Array = done(
            &keys.map_err(|e| js_error(e, "reading the outbox"))?,
            "reading the outbox",
        )
        .await?
        .unchecked_into();
        let values: Array = done(
            &values.map_err(|e| js_error(e, "reading the outbox"))?,
            "reading the outbox",
        )
        .await?
        .unchecked_into();
        let mut out = Vec::new();
        for (k, v) in keys.iter().zip(values.iter()) {
            let record = k.as_f64().unwrap_or(0.0) as u64;
            let chunk = Chunk::from_value(record, &v)?;
            let done: std::collections::HashSet<u32> = chunk.done.into_iter().collect();
            for (i, w) in chunk.events.into_iter().enumerate() {
                if !done.contains(&(i as u32)) {
                    out.push((record * SPAN + i as u64, w));
                }
            }
        }
        Ok(out)
    }

    /// Mark as done the events the server stored (or the user dropped)
    /// and rewrite the ones kept after a conflict, in one transaction; a
    /// record all of whose events are done goes. (After a drop,
    /// [`IdbStore::use_outbox`] counts what still waits.)
    pub async fn settle(
        &self,
        delete: &[u64],
        rewrite: &[(u64, Waiting)],
    ) -> Result<(), StoreError> {
        if delete.is_empty() && rewrite.is_empty() {
            return Ok(());
        }
        // Per outbox record: the slots settled now, and the slots rewritten.
        type Changes<'a> = (Vec<u32>, Vec<(u32, &'a Waiting)>);
        let mut by_record: std::collections::BTreeMap<u64, Changes> = Default::default();
        for k in delete {
            by_record
                .entry(k / SPAN)
                .or_default()
                .0
                .push((k % SPAN) as u32);
        }
        for (k, w) in rewrite {
            by_record
                .entry(k / SPAN)
                .or_default()
                .1
                .push(((k % SPAN) as u32, w));
        }
        let tx = self.transaction(&[OUTBOX], IdbTransactionMode::Readwrite)?;
        let store = store_of(&tx, OUTBOX)?;
        for (record, (done_now, rewritten)) in by_record {
            let key = JsValue::from_f64(record as f64);
            let req = store
                .get(&key)
                .map_err(|e| js_error(e, "settling the outbox"))?;
            let value = done(&req, "settling the outbox").await?;
            if value.is_undefined() || value.is_null() {
                continue;
            }
            let events = js_sys::Reflect::get(&value, &"events".into()).ok();
            let n = js_sys::Reflect::get(&value, &"n".into())
                .ok()
                .and_then(|n| n.as_f64());
            let updated = match (events, n) {
                // Only done marks: the events' JSON is put back as it was.
                (Some(events), Some(n)) if rewritten.is_empty() && events.is_string() => {
                    let mut marks = done_of(&value);
                    let mut seen: std::collections::HashSet<u32> = marks.iter().copied().collect();
                    marks.extend(done_now.into_iter().filter(|i| seen.insert(*i)));
                    (marks.len() < n as usize).then(|| record_value(&events, n as usize, &marks))
                }
                _ => {
                    let mut chunk = Chunk::from_value(record, &value)?;
                    let mut seen: std::collections::HashSet<u32> =
                        chunk.done.iter().copied().collect();
                    chunk
                        .done
                        .extend(done_now.into_iter().filter(|i| seen.insert(*i)));
                    for (i, w) in rewritten {
                        if let Some(slot) = chunk.events.get_mut(i as usize) {
                            *slot = w.clone();
                        }
                    }
                    if chunk.done.len() < chunk.events.len() {
                        Some(chunk.to_value()?)
                    } else {
                        None
                    }
                }
            };
            match updated {
                Some(v) => store.put_with_key(&v, &key),
                None => store.delete(&key),
            }
            .map_err(|e| js_error(e, "settling the outbox"))?;
        }
        committed(&tx, "settling the outbox").await
    }

    /// Call `on_more` whenever any tab puts events in this log's outbox.
    pub fn on_outbox(&self, mut on_more: impl FnMut() + 'static) {
        let Ok(channel) = BroadcastChannel::new(&channel_name(&self.name)) else {
            return;
        };
        let listener = Closure::<dyn FnMut(MessageEvent)>::new(move |_| on_more());
        let _ =
            channel.add_event_listener_with_callback("message", listener.as_ref().unchecked_ref());
        self.listeners.borrow_mut().push(listener);
        // Kept open for the page's life.
        std::mem::forget(channel);
    }
}
