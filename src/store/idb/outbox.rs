//! The outbox of a shared log's replica: appends in this browser wait here
//! (one transaction per append, all or nothing) until the sync has sent
//! them and they came back from the server. Keys count up, so the outbox
//! keeps the order they were written in. Another tab's sync learns of new
//! entries over a BroadcastChannel.

use super::request::{committed, done, js_error};
use super::staging::fetch;
use super::{store_of, IdbStore, OUTBOX, STAGING};
use crate::store::outbox::{as_unit, place, Tops, Waiting};
use crate::store::staged::{StagedPlan, Step};
use crate::store::{push_event, Committed, StoreError, StreamAppend};
use js_sys::Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BroadcastChannel, IdbKeyRange, IdbTransactionMode, MessageEvent};

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
        for w in placed {
            let json = serde_json::to_string(w).map_err(|e| StoreError::Storage(e.to_string()))?;
            store
                .add(&JsValue::from_str(&json))
                .map_err(|e| js_error(e, "writing to the outbox"))?;
        }
        committed(&tx, "writing to the outbox").await
    }

    /// The waiting events with keys above `after` (all: None), in order.
    pub async fn waiting(&self, after: Option<u64>) -> Result<Vec<(u64, Waiting)>, StoreError> {
        let tx = self.transaction(&[OUTBOX], IdbTransactionMode::Readonly)?;
        let store = store_of(&tx, OUTBOX)?;
        let range = match after {
            Some(k) => Some(
                IdbKeyRange::lower_bound_with_open(&JsValue::from_f64(k as f64), true)
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
        let mut out = Vec::with_capacity(values.length() as usize);
        for (k, v) in keys.iter().zip(values.iter()) {
            let key = k.as_f64().unwrap_or(0.0) as u64;
            let text = v.as_string().unwrap_or_default();
            let w: Waiting = serde_json::from_str(&text).map_err(|e| {
                StoreError::Storage(format!("entry {key} of the outbox is unreadable ({e})"))
            })?;
            out.push((key, w));
        }
        Ok(out)
    }

    /// Delete the entries the server stored (or the user dropped) and
    /// rewrite the ones kept after a conflict, in one transaction. (After
    /// a drop, [`IdbStore::use_outbox`] counts what still waits.)
    pub async fn settle(
        &self,
        delete: &[u64],
        rewrite: &[(u64, Waiting)],
    ) -> Result<(), StoreError> {
        if delete.is_empty() && rewrite.is_empty() {
            return Ok(());
        }
        let tx = self.transaction(&[OUTBOX], IdbTransactionMode::Readwrite)?;
        let store = store_of(&tx, OUTBOX)?;
        for k in delete {
            store
                .delete(&JsValue::from_f64(*k as f64))
                .map_err(|e| js_error(e, "settling the outbox"))?;
        }
        for (k, w) in rewrite {
            let json = serde_json::to_string(w).map_err(|e| StoreError::Storage(e.to_string()))?;
            store
                .put_with_key(&JsValue::from_str(&json), &JsValue::from_f64(*k as f64))
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
