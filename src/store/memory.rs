//! The in-memory store: the reference implementation of the contract, used by
//! native tests and tools. Never the app's storage.

use super::outbox::{as_unit, place, Tops, Waiting, CHUNK, SPAN};
use super::replica::{ModelStore, ReplicaStore};
use super::{place_batch, Committed, EventStore, RegistryRow, StoreError, StreamAppend};
use crate::domain::model::ModelTrained;
use crate::log::Envelope;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A log held in memory.
#[derive(Default)]
pub struct MemoryStore {
    events: RefCell<Vec<Envelope>>,
    /// seqs of each stream's events, in version order.
    streams: RefCell<HashMap<String, Vec<u64>>>,
    /// Wall clock for `recorded_at`; a counter so tests are deterministic.
    clock: Cell<i64>,
    /// A shared log's replica: what waits for the server, once in use.
    outbox: RefCell<Option<Outbox>>,
    /// Why appends are refused, if they are.
    read_only: RefCell<Option<String>>,
    /// The model registry: record and bytes by id.
    models: RefCell<BTreeMap<String, (ModelTrained, Vec<u8>)>>,
}

/// The outbox as records of up to [`CHUNK`] events, keyed as IndexedDB's.
#[derive(Default)]
struct Outbox {
    tops: Tops,
    /// By record key: the events written together, and which are done.
    records: BTreeMap<u64, (Vec<Waiting>, BTreeSet<u32>)>,
    next_record: u64,
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
        if let Some(why) = self.read_only.borrow().clone() {
            return Err(StoreError::ReadOnly(why));
        }
        if self.outbox.borrow().is_some() {
            return self.enqueue(batch, false);
        }
        self.commit(batch)
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

impl MemoryStore {
    /// Commit `batch` to the log.
    fn commit(&self, batch: Vec<StreamAppend>) -> Result<Committed, StoreError> {
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

    /// Put `batch` in the outbox: all of it waits, or none; as one `unit`
    /// if asked.
    fn enqueue(&self, batch: Vec<StreamAppend>, unit: bool) -> Result<Committed, StoreError> {
        let head = self.events.borrow().len() as u64;
        let mut slot = self.outbox.borrow_mut();
        let outbox = slot.get_or_insert_with(Outbox::default);
        let placed = {
            let streams = self.streams.borrow();
            let tops = &outbox.tops;
            place(batch, |s| {
                tops.version(s, streams.get(s).map(|v| v.len() as u64))
            })?
        };
        let mut placed = placed;
        outbox.tops.add(&placed);
        if unit {
            if let Some(name) = placed.first().map(|w| format!("unit-{}", w.event.id)) {
                as_unit(&mut placed, &name);
            }
        }
        for events in placed.chunks(CHUNK) {
            outbox.next_record += 1;
            outbox
                .records
                .insert(outbox.next_record, (events.to_vec(), BTreeSet::new()));
        }
        Ok(Committed {
            first_seq: head + 1,
            last_seq: head,
        })
    }
}

impl ReplicaStore for MemoryStore {
    async fn use_outbox(&self) -> Result<(), StoreError> {
        let mut slot = self.outbox.borrow_mut();
        let outbox = slot.get_or_insert_with(Outbox::default);
        let waiting = outbox.records.values().flat_map(|(events, done)| {
            events
                .iter()
                .enumerate()
                .filter(|(i, _)| !done.contains(&(*i as u32)))
                .map(|(_, w)| w)
        });
        outbox.tops = Tops::of(waiting);
        Ok(())
    }

    async fn append_unit(&self, batch: Vec<StreamAppend>) -> Result<Committed, StoreError> {
        if self.outbox.borrow().is_none() {
            return Err(StoreError::Storage(
                "only a shared log's copy has an outbox".into(),
            ));
        }
        self.enqueue(batch, true)
    }

    async fn waiting(&self, after: Option<u64>) -> Result<Vec<(u64, Waiting)>, StoreError> {
        let slot = self.outbox.borrow();
        let Some(outbox) = slot.as_ref() else {
            return Ok(Vec::new());
        };
        let from = after.map_or(0, |k| k / SPAN + 1);
        Ok(outbox
            .records
            .range(from..)
            .flat_map(|(record, (events, done))| {
                events
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !done.contains(&(*i as u32)))
                    .map(move |(i, w)| (record * SPAN + i as u64, w.clone()))
            })
            .collect())
    }

    async fn settle(&self, delete: &[u64], rewrite: &[(u64, Waiting)]) -> Result<(), StoreError> {
        let mut slot = self.outbox.borrow_mut();
        let Some(outbox) = slot.as_mut() else {
            return Ok(());
        };
        for (key, w) in rewrite {
            if let Some((events, _)) = outbox.records.get_mut(&(key / SPAN)) {
                if let Some(slot) = events.get_mut((key % SPAN) as usize) {
                    *slot = w.clone();
                }
            }
        }
        for key in delete {
            let record = key / SPAN;
            if let Some((events, done)) = outbox.records.get_mut(&record) {
                done.insert((key % SPAN) as u32);
                if done.len() >= events.len() {
                    outbox.records.remove(&record);
                }
            }
        }
        Ok(())
    }

    async fn append_replicated(&self, batch: Vec<StreamAppend>) -> Result<Committed, StoreError> {
        self.commit(batch)
    }

    async fn stream_versions(&self, streams: &[&str]) -> Result<Vec<Option<u64>>, StoreError> {
        let known = self.streams.borrow();
        Ok(streams
            .iter()
            .map(|s| known.get(*s).map(|v| v.len() as u64))
            .collect())
    }

    fn is_read_only(&self) -> bool {
        self.read_only.borrow().is_some()
    }

    fn set_read_only(&self, why: Option<String>) {
        *self.read_only.borrow_mut() = why;
    }
}

impl ModelStore for MemoryStore {
    async fn list_models(&self) -> Result<Vec<(String, RegistryRow)>, StoreError> {
        let mut out: Vec<(String, RegistryRow)> = self
            .models
            .borrow()
            .iter()
            .map(|(id, (record, _))| (id.clone(), Ok(record.clone())))
            .collect();
        crate::store::replica::oldest_first(&mut out);
        Ok(out)
    }

    async fn model_bytes(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.models.borrow().get(id).map(|(_, b)| b.clone()))
    }

    async fn save_new_model(
        &self,
        record: &ModelTrained,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        let mut models = self.models.borrow_mut();
        if models.contains_key(&record.id) {
            return Ok(false);
        }
        models.insert(record.id.clone(), (record.clone(), bytes.to_vec()));
        Ok(true)
    }
}
