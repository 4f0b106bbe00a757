//! The writer: appends queue up while a commit is in flight and go
//! together in the next one (group commit), each keeping its own version
//! check; a staged import is a commit of its own, in turn with the rest.

use super::request::{committed, js_error};
use super::{
    store_of, IdbStore, CHECKPOINT_EVERY, HEAD, META, SEGMENTS, SEGMENT_MAX, STREAM_TABLE, TABLE,
};
use crate::log::codec::encode_segment;
use crate::log::Envelope;
use crate::store::staged::StagedPlan;
use crate::store::{place, Committed, Placed, StoreError, StreamAppend};
use futures::channel::oneshot;
use js_sys::Uint8Array;
use rustc_hash::FxHashMap;
use std::cell::Cell;
use wasm_bindgen::prelude::*;
use web_sys::IdbTransactionMode;

/// What a writer waits to have written.
pub(super) enum Job {
    /// Appends, grouped with others into one commit.
    Batch(Vec<StreamAppend>),
    /// A staged import: a commit of its own.
    Staged(Box<dyn StagedPlan>),
}

pub(super) struct Pending {
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

impl IdbStore {
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
        let mut moved: FxHashMap<String, u64> = FxHashMap::default();
        let mut next_head = head;
        for batch in batches {
            let lookup = |s: &str| moved.get(s).copied().or_else(|| table.version(s));
            match place(batch, next_head, recorded_at, lookup) {
                Ok(Placed { events, versions }) => {
                    let first = next_head + 1;
                    next_head += events.len() as u64;
                    moved.extend(versions);
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
            if table.checkpoint_due(CHECKPOINT_EVERY) {
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
            self.kept(placed);
            self.announce(next_head);
        }
        Ok(outcomes)
    }

    /// Write a staged import in one commit of its own, in turn with this
    /// tab's other appends (see [`staging`]).
    /// A shared log's replica puts the whole import in its outbox instead.
    pub async fn commit_staged(&self, plan: Box<dyn StagedPlan>) -> Result<Committed, StoreError> {
        if let Some(why) = self.read_only.borrow().clone() {
            return Err(StoreError::ReadOnly(why));
        }
        if self.uses_outbox() {
            return self.enqueue_staged(plan).await;
        }
        self.submit(Job::Staged(plan)).await
    }

    /// Queue a job; the first waiting writer writes every queued job, in
    /// order, grouping consecutive batches into one commit.
    pub(super) async fn submit(&self, job: Job) -> Result<Committed, StoreError> {
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
    pub(super) fn announce(&self, head: u64) {
        if let Some(channel) = &self.channel {
            let _ = channel.post_message(&JsValue::from_f64(head as f64));
        }
    }
}
