//! Phase 2 of an import: the staged runs merged back into the log's order.

use super::*;
use crate::domain::events::{ActivityRecorded, Attributes, CaseClosed, CaseOpened};
use crate::log::NewEvent;
use crate::store::ExpectedVersion;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

/// A staged row's place in the log: (time, case, row).
pub(super) type RowKey = (i64, u32, u64);

/// Merges sorted runs, holding one block of each.
pub(super) struct Merger {
    blocks: Vec<u32>,
    next_block: Vec<u32>,
    buffered: Vec<VecDeque<StagedRow>>,
    /// (head row's key, run), smallest first.
    heap: BinaryHeap<Reverse<(RowKey, u32)>>,
    /// Runs whose buffer ran dry while they have blocks left.
    starved: Vec<u32>,
}

pub(super) enum Merged {
    Need(BlockKey),
    Row(StagedRow),
    Empty,
}

impl Merger {
    pub(super) fn new(blocks: &[u32]) -> Self {
        Merger {
            blocks: blocks.to_vec(),
            next_block: vec![0; blocks.len()],
            buffered: vec![VecDeque::new(); blocks.len()],
            heap: BinaryHeap::new(),
            starved: (0..blocks.len() as u32)
                .rev()
                .filter(|&r| blocks[r as usize] > 0)
                .collect(),
        }
    }

    pub(super) fn supply(&mut self, key: BlockKey, rows: Vec<StagedRow>) -> Result<(), String> {
        let (run, block) = key;
        if self.starved.last() != Some(&run) || self.next_block[run as usize] != block {
            return Err(format!("staged block {key:?} came out of turn"));
        }
        if rows.is_empty() {
            return Err(format!("staged block {key:?} is empty"));
        }
        self.starved.pop();
        self.next_block[run as usize] += 1;
        let buf = &mut self.buffered[run as usize];
        buf.extend(rows);
        self.heap.push(Reverse((buf[0].key(), run)));
        Ok(())
    }

    pub(super) fn pop(&mut self) -> Merged {
        // A dry run's next row may be the smallest: refill it first.
        if let Some(&run) = self.starved.last() {
            return Merged::Need((run, self.next_block[run as usize]));
        }
        let Some(Reverse((_, run))) = self.heap.pop() else {
            return Merged::Empty;
        };
        let r = run as usize;
        let row = self.buffered[r]
            .pop_front()
            .expect("a run in the heap has rows");
        match self.buffered[r].front() {
            Some(next) => self.heap.push(Reverse((next.key(), run))),
            None if self.next_block[r] < self.blocks[r] => self.starved.push(run),
            None => {}
        }
        Merged::Row(row)
    }
}

/// Phase 2 of a CSV or XES import.
pub struct ImportPlan {
    pub(super) merger: Merger,
    pub(super) label: String,
    /// Case ids as the file writes them, by number.
    pub(super) ids: Vec<Box<str>>,
    pub(super) closes: Vec<Close>,
    pub(super) attributes: HashMap<u32, Attributes>,
    pub(super) opened: Vec<bool>,
    pub(super) pending: VecDeque<(String, ExpectedVersion, NewEvent)>,
    pub(super) id_prefix: String,
    pub(super) n: u64,
    pub(super) record: Option<(String, NewEvent)>,
}

impl ImportPlan {
    fn next_id(&mut self) -> String {
        self.n += 1;
        format!("{}-{}", self.id_prefix, self.n)
    }

    fn expand(&mut self, row: StagedRow) {
        let c = row.case as usize;
        let id = labelled(&self.label, &self.ids[c]);
        let stream = format!("case-{id}");
        if !self.opened[c] {
            // A case's first event expects a new stream: importing into a
            // log that already has the case fails as a whole.
            self.opened[c] = true;
            let attributes = self.attributes.remove(&row.case).unwrap_or_default();
            let opened = NewEvent::new(
                self.next_id(),
                CaseOpened::TYPE,
                CaseOpened::SCHEMA,
                row.time,
                &CaseOpened {
                    case: id.clone(),
                    attributes,
                },
            )
            .correlated(id.clone());
            self.pending
                .push_back((stream.clone(), ExpectedVersion::NoStream, opened));
        }
        let closes = self.closes[c] == (row.time, row.row);
        let activity = NewEvent {
            id: self.next_id(),
            event_type: ActivityRecorded::TYPE.into(),
            schema: ActivityRecorded::SCHEMA,
            occurred_at: row.time,
            correlation: Some(id.clone()),
            causation: None,
            data: row.data,
            recorded_at: None,
        };
        self.pending
            .push_back((stream.clone(), ExpectedVersion::Any, activity));
        if closes {
            // Right after the closing activity (later events of the case
            // still belong to it, but it is closed).
            let closed = NewEvent::new(
                self.next_id(),
                CaseClosed::TYPE,
                CaseClosed::SCHEMA,
                row.time,
                &CaseClosed {
                    case: id.clone(),
                    outcome: None,
                },
            )
            .correlated(id);
            self.pending
                .push_back((stream, ExpectedVersion::Any, closed));
        }
    }
}

impl StagedPlan for ImportPlan {
    fn next(&mut self) -> Result<Step, String> {
        loop {
            if let Some((stream, expected, event)) = self.pending.pop_front() {
                return Ok(Step::Event(stream, expected, event));
            }
            match self.merger.pop() {
                Merged::Need(key) => return Ok(Step::Need(key)),
                Merged::Row(row) => self.expand(row),
                Merged::Empty => {
                    return Ok(match self.record.take() {
                        Some((stream, event)) => Step::Event(stream, ExpectedVersion::Any, event),
                        None => Step::Done,
                    })
                }
            }
        }
    }

    fn supply(&mut self, key: BlockKey, bytes: &[u8]) -> Result<(), String> {
        let rows = decode_block::<StagedRow>(bytes)?;
        self.merger.supply(key, rows)
    }
}
