//! The staging area of a bounded-memory import (`staging`, keyed by
//! `[run, block]`), and the commit that reads it back into the log.
//!
//! Staging writes touch only `staging`, so the log stays open to other
//! writers while a file is read. The commit is one readwrite transaction
//! over the log's stores and `staging`: it merges the staged blocks as the
//! plan asks for them, writes the events as segments of at most
//! [`SEGMENT_MAX`], moves the head once at the end and clears the staging
//! area. Any failure — a version check, a damaged block, a full disk —
//! aborts the transaction: the log is exactly as before.

use super::request::{committed, done, js_error};
use super::{
    store_of, IdbStore, CHECKPOINT_EVERY, HEAD, META, SEGMENTS, SEGMENT_MAX, STAGING, STREAM_TABLE,
    TABLE,
};
use crate::log::codec::encode_segment;
use crate::store::staged::{BlockKey, StagedPlan, Step};
use crate::store::stream_table::StreamTable;
use crate::store::{place_batch, push_event, Committed, StoreError, StreamAppend};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{IdbObjectStore, IdbTransaction, IdbTransactionMode};

fn key((run, block): BlockKey) -> Array {
    Array::of2(&JsValue::from(run), &JsValue::from(block))
}

pub(super) async fn fetch(staging: &IdbObjectStore, at: BlockKey) -> Result<Vec<u8>, StoreError> {
    let req = staging
        .get(&key(at))
        .map_err(|e| js_error(e, "reading a staged block"))?;
    let value = done(&req, "reading a staged block").await?;
    value
        .dyn_into::<Uint8Array>()
        .map(|b| b.to_vec())
        .map_err(|_| StoreError::Storage(format!("staged block {at:?} is missing")))
}

impl IdbStore {
    /// Keep staged blocks (one transaction).
    pub async fn stage(&self, blocks: Vec<(BlockKey, Vec<u8>)>) -> Result<(), StoreError> {
        if blocks.is_empty() {
            return Ok(());
        }
        let tx = self.transaction(&[STAGING], IdbTransactionMode::Readwrite)?;
        let staging = store_of(&tx, STAGING)?;
        for (at, bytes) in blocks {
            staging
                .put_with_key(&Uint8Array::from(bytes.as_slice()), &key(at))
                .map_err(|e| js_error(e, "staging rows"))?;
        }
        committed(&tx, "staging rows").await
    }

    /// Drop everything staged (a finished, failed or abandoned import).
    pub async fn clear_staging(&self) -> Result<(), StoreError> {
        let tx = self.transaction(&[STAGING], IdbTransactionMode::Readwrite)?;
        store_of(&tx, STAGING)?
            .clear()
            .map_err(|e| js_error(e, "clearing staged rows"))?;
        committed(&tx, "clearing staged rows").await
    }

    /// One staged block, on its own (a replay reads them as it goes).
    pub async fn staged_block(&self, at: BlockKey) -> Result<Vec<u8>, StoreError> {
        let tx = self.transaction(&[STAGING], IdbTransactionMode::Readonly)?;
        fetch(&store_of(&tx, STAGING)?, at).await
    }

    /// Write everything `plan` hands out in one commit (see the module).
    pub(super) async fn write_staged(
        &self,
        plan: &mut dyn StagedPlan,
    ) -> Result<Committed, StoreError> {
        let tx = self.transaction(
            &[META, SEGMENTS, STREAM_TABLE, STAGING],
            IdbTransactionMode::Readwrite,
        )?;
        match self.fill(&tx, plan).await {
            Ok((c, table)) => {
                committed(&tx, "importing").await?;
                self.keep_table(table);
                self.announce(c.last_seq);
                Ok(c)
            }
            Err(e) => {
                // Requests already made would otherwise commit.
                let _ = tx.abort();
                Err(e)
            }
        }
    }

    async fn fill(
        &self,
        tx: &IdbTransaction,
        plan: &mut dyn StagedPlan,
    ) -> Result<(Committed, StreamTable), StoreError> {
        let meta = store_of(tx, META)?;
        let segments = store_of(tx, SEGMENTS)?;
        let staging = store_of(tx, STAGING)?;
        let head = self.read_head(&meta).await?;
        let mut table = self.current_table(tx, head).await?;
        let recorded_at = js_sys::Date::now() as i64;
        let mut next_head = head;
        let mut page: Vec<StreamAppend> = Vec::new();
        let mut in_page = 0;
        loop {
            let step = plan.next().map_err(StoreError::Storage)?;
            let finished = step == Step::Done;
            match step {
                Step::Need(at) => {
                    let bytes = fetch(&staging, at).await?;
                    plan.supply(at, &bytes).map_err(StoreError::Storage)?;
                    continue;
                }
                Step::Event(stream, expected, event) => {
                    in_page += 1;
                    push_event(&mut page, stream, expected, event);
                }
                Step::Done => {}
            }
            if in_page == SEGMENT_MAX || (finished && in_page > 0) {
                let events = place_batch(std::mem::take(&mut page), next_head, recorded_at, |s| {
                    table.version(s)
                })?;
                in_page = 0;
                let last = events[events.len() - 1].seq;
                segments
                    .put_with_key(
                        &Uint8Array::from(encode_segment(&events).as_slice()),
                        &JsValue::from_f64(last as f64),
                    )
                    .map_err(|e| js_error(e, "writing a segment"))?;
                table.apply_segment(last, &events);
                next_head = last;
            }
            if finished {
                break;
            }
        }
        if next_head != head {
            meta.put_with_key(&JsValue::from_f64(next_head as f64), &HEAD.into())
                .map_err(|e| js_error(e, "writing the head"))?;
            if table.checkpoint_due(CHECKPOINT_EVERY) {
                store_of(tx, STREAM_TABLE)?
                    .put_with_key(
                        &Uint8Array::from(table.checkpoint().as_slice()),
                        &TABLE.into(),
                    )
                    .map_err(|e| js_error(e, "checkpointing the stream table"))?;
            }
        }
        staging
            .clear()
            .map_err(|e| js_error(e, "clearing staged rows"))?;
        let c = Committed {
            first_seq: head + 1,
            last_seq: next_head,
        };
        Ok((c, table))
    }
}
