//! Phase 1 of an import: parsed events become sorted runs of staged rows.

use super::plan::Merger;
use super::*;
use crate::domain::events::{ActivityRecorded, Attributes};
use crate::io::parsed::{Completion, EventSink, ImportCounts, ParsedEvent};
use crate::log::NewEvent;
use std::collections::{HashMap, HashSet, VecDeque};

/// Phase 1: turns parsed events into sorted runs of staged rows.
pub struct Stager {
    label: String,
    completion: Completion,
    run_rows: usize,
    block_rows: usize,
    /// Each case's number, by its id in the file. (What is kept per case is
    /// what bounds an import's memory: about 100 bytes.)
    numbers: HashMap<Box<str>, u32>,
    /// Each case's close, by number.
    closes: Vec<Close>,
    /// Attributes stated once for a case (XES trace attributes), by number;
    /// only cases that have some.
    attributes: HashMap<u32, Attributes>,
    buffer: Vec<StagedRow>,
    /// Blocks of each run staged so far.
    runs: Vec<u32>,
    rows: u64,
    activities: HashSet<String>,
    last_time: i64,
}

impl Stager {
    /// Stage events whose case ids get the prefix `label` (none when empty).
    pub fn new(label: &str, completion: Completion) -> Self {
        Self::with_sizes(label, completion, RUN_ROWS, BLOCK_ROWS)
    }

    /// As [`Stager::new`], with chosen run and block sizes (tests use tiny ones).
    pub fn with_sizes(
        label: &str,
        completion: Completion,
        run_rows: usize,
        block_rows: usize,
    ) -> Self {
        Stager {
            label: label.to_owned(),
            completion,
            run_rows: run_rows.max(1),
            block_rows: block_rows.max(1),
            numbers: HashMap::new(),
            closes: Vec::new(),
            attributes: HashMap::new(),
            buffer: Vec::new(),
            runs: Vec::new(),
            rows: 0,
            activities: HashSet::new(),
            last_time: i64::MIN,
        }
    }

    fn case_number(&mut self, case: &str) -> u32 {
        if let Some(&n) = self.numbers.get(case) {
            return n;
        }
        let n = self.closes.len() as u32;
        self.numbers.insert(case.into(), n);
        self.closes.push(NO_CLOSE);
        n
    }

    /// Rows staged or waiting to be.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Whether a run's worth of rows waits to be staged.
    pub fn full(&self) -> bool {
        self.buffer.len() >= self.run_rows
    }

    /// Sort the waiting rows into the next run: its blocks, encoded, with
    /// their keys. Empty when no rows wait.
    pub fn take_run(&mut self) -> Vec<(BlockKey, Vec<u8>)> {
        if self.buffer.is_empty() {
            return Vec::new();
        }
        let mut rows = std::mem::take(&mut self.buffer);
        rows.sort_unstable_by_key(StagedRow::key); // keys are unique
        let run = self.runs.len() as u32;
        let blocks: Vec<(BlockKey, Vec<u8>)> = rows
            .chunks(self.block_rows)
            .enumerate()
            .map(|(b, chunk)| ((run, b as u32), encode_block(chunk)))
            .collect();
        self.runs.push(blocks.len() as u32);
        blocks
    }

    /// What the import will write, counted. Call after the last run is taken.
    pub fn counts(&self) -> ImportCounts {
        let cases = self.closes.len() as u64;
        let closed = self.closes.iter().filter(|&&c| c != NO_CLOSE).count() as u64;
        ImportCounts {
            cases,
            closed,
            events: self.rows + cases + closed,
            activities: self.activities.len() as u64,
        }
    }

    /// The latest time of any row (None before the first).
    pub fn last_time(&self) -> Option<i64> {
        (self.rows > 0).then_some(self.last_time)
    }

    /// Phase 2: the plan that merges the staged runs. `id_prefix` names the
    /// events (`{id_prefix}-{n}`); `record` (the `ImportCompleted` event),
    /// if any, comes last. Rows not yet taken as a run are taken now and
    /// returned, to be staged before the plan runs.
    pub fn plan(
        mut self,
        id_prefix: &str,
        record: Option<(String, NewEvent)>,
    ) -> (ImportPlan, Vec<(BlockKey, Vec<u8>)>) {
        let rest = self.take_run();
        let opened = vec![false; self.closes.len()];
        // Ids by number; the map by id is no longer needed.
        let mut ids: Vec<Box<str>> = vec![Box::default(); self.closes.len()];
        for (id, n) in std::mem::take(&mut self.numbers) {
            ids[n as usize] = id;
        }
        let plan = ImportPlan {
            merger: Merger::new(&self.runs),
            label: self.label,
            ids,
            closes: self.closes,
            attributes: self.attributes,
            opened,
            pending: VecDeque::new(),
            id_prefix: id_prefix.to_owned(),
            n: 0,
            record,
        };
        (plan, rest)
    }
}

impl EventSink for Stager {
    fn event(&mut self, e: ParsedEvent) {
        let case = self.case_number(&e.case);
        let row = self.rows;
        self.rows += 1;
        self.last_time = self.last_time.max(e.time);
        if !self.activities.contains(e.activity.as_str()) {
            self.activities.insert(e.activity.clone());
        }
        let at = (e.time, row);
        let close = &mut self.closes[case as usize];
        match &self.completion {
            Completion::AllComplete => {
                if *close == NO_CLOSE || at > *close {
                    *close = at;
                }
            }
            Completion::EndActivity(end) => {
                if &e.activity == end && (*close == NO_CLOSE || at < *close) {
                    *close = at;
                }
            }
            Completion::NoneComplete => {}
        }
        let payload = ActivityRecorded {
            case: labelled(&self.label, &e.case),
            activity: e.activity.as_str().into(),
            resource: e.resource.as_deref().map(Into::into),
            hours: None,
            attributes: e.attributes,
        };
        self.buffer.push(StagedRow {
            time: e.time,
            case,
            row,
            data: serde_json::to_string(&payload).expect("payloads serialise"),
        });
    }

    fn case_attributes(&mut self, case: &str, attributes: Attributes) {
        // A case none of whose events could be read is not imported.
        if let Some(&n) = self.numbers.get(case) {
            self.attributes.insert(n, attributes);
        }
    }
}
