//! The in-memory store: the reference implementation of the contract, used by
//! native tests and tools. Never the app's storage.

use super::{place_batch, Committed, EventStore, StoreError, StreamAppend};
use crate::log::Envelope;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// A log held in memory.
#[derive(Default)]
pub struct MemoryStore {
    events: RefCell<Vec<Envelope>>,
    /// seqs of each stream's events, in version order.
    streams: RefCell<HashMap<String, Vec<u64>>>,
    /// Wall clock for `recorded_at`; a counter so tests are deterministic.
    clock: Cell<i64>,
}

impl MemoryStore {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of events held.
    pub fn len(&self) -> usize {
        self.events.borrow().len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl EventStore for MemoryStore {
    async fn append_batch(&self, batch: Vec<StreamAppend>) -> Result<Committed, StoreError> {
        let head = self.events.borrow().len() as u64;
        self.clock.set(self.clock.get() + 1);
        let placed = {
            let streams = self.streams.borrow();
            place_batch(batch, head, self.clock.get(), |s| {
                streams.get(s).map(|v| v.len() as u64)
            })?
        };
        let mut streams = self.streams.borrow_mut();
        let mut events = self.events.borrow_mut();
        for e in placed {
            streams.entry(e.stream.clone()).or_default().push(e.seq);
            events.push(e);
        }
        Ok(Committed {
            first_seq: head + 1,
            last_seq: events.len() as u64,
        })
    }

    async fn read_all(&self, from_seq: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        let events = self.events.borrow();
        let start = (from_seq.max(1) - 1) as usize;
        Ok(events.iter().skip(start).take(limit).cloned().collect())
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        let streams = self.streams.borrow();
        let events = self.events.borrow();
        let Some(seqs) = streams.get(stream) else {
            return Ok(Vec::new());
        };
        let start = (from_version.max(1) - 1) as usize;
        Ok(seqs
            .iter()
            .skip(start)
            .take(limit)
            .map(|&s| events[(s - 1) as usize].clone())
            .collect())
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.streams.borrow().get(stream).map(|v| v.len() as u64))
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.events.borrow().len() as u64)
    }
}
