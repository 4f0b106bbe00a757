//! Imports in bounded memory.
//!
//! A log file must be written in global time order, but files come grouped
//! by case, or in any order at all. Holding the whole file to sort it costs
//! memory in proportion to the file (about 1 KB per event in the browser).
//! Instead an import runs in two phases:
//!
//! 1. **Stage.** Rows are read a slice at a time. Each becomes a
//!    [`StagedRow`] (its time, case, file position and finished payload);
//!    once [`RUN_ROWS`] have gathered they are sorted and written out as a
//!    *run* of encoded blocks ([`BLOCK_ROWS`] rows each) to a staging area
//!    (an object store in the browser, a map in tests). What stays in memory
//!    is one small record per case ([`Stager`]).
//! 2. **Commit.** A [`StagedPlan`] merges the runs back, one block per run at
//!    a time, and hands out the events in their final order: `CaseOpened`
//!    before a case's first activity, `CaseClosed` right after its closing
//!    one, the `ImportCompleted` record last. The store writes them as they
//!    come, in one transaction: the log sees all of them or none.
//!
//! The plan is pure: it says which block it needs next ([`Step::Need`]) and
//! the caller fetches it, from IndexedDB or from memory.

use super::parsed::{Completion, EventSink, ImportCounts, ParsedEvent, ParsedLog};
use crate::domain::events::{ActivityRecorded, Attributes, CaseClosed, CaseOpened};
use crate::log::NewEvent;
use crate::store::{ExpectedVersion, StreamAppend};

pub use crate::store::staged::{decode_block, drain, encode_block, BlockKey, StagedPlan, Step};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};

/// Rows gathered before they are sorted and staged as one run.
pub const RUN_ROWS: usize = 50_000;
/// Rows per staged block: the unit the merge reads.
pub const BLOCK_ROWS: usize = 2_000;
/// One activity row, ready to become an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StagedRow {
    /// When it happened (UTC ms).
    pub time: i64,
    /// The case's number, in order of first appearance in the file.
    pub case: u32,
    /// Position in the file (0-based, over readable rows): ties keep file order.
    pub row: u64,
    /// The `ActivityRecorded` payload, as JSON.
    pub data: String,
}

impl StagedRow {
    fn key(&self) -> RowKey {
        (self.time, self.case, self.row)
    }
}

/// The (time, row) of the activity that closes a case; [`NO_CLOSE`] if none.
type Close = (i64, u64);
const NO_CLOSE: Close = (i64::MIN, u64::MAX);

/// A case's id in the log: the file's id with the import's label in front.
fn labelled(label: &str, case: &str) -> String {
    if label.is_empty() {
        case.to_owned()
    } else {
        format!("{label}-{case}")
    }
}

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

/// A staged row's place in the log: (time, case, row).
type RowKey = (i64, u32, u64);

/// Merges sorted runs, holding one block of each.
struct Merger {
    blocks: Vec<u32>,
    next_block: Vec<u32>,
    buffered: Vec<VecDeque<StagedRow>>,
    /// (head row's key, run), smallest first.
    heap: BinaryHeap<Reverse<(RowKey, u32)>>,
    /// Runs whose buffer ran dry while they have blocks left.
    starved: Vec<u32>,
}

enum Merged {
    Need(BlockKey),
    Row(StagedRow),
    Empty,
}

impl Merger {
    fn new(blocks: &[u32]) -> Self {
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

    fn supply(&mut self, key: BlockKey, rows: Vec<StagedRow>) -> Result<(), String> {
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

    fn pop(&mut self) -> Merged {
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
    merger: Merger,
    label: String,
    /// Case ids as the file writes them, by number.
    ids: Vec<Box<str>>,
    closes: Vec<Close>,
    attributes: HashMap<u32, Attributes>,
    opened: Vec<bool>,
    pending: VecDeque<(String, ExpectedVersion, NewEvent)>,
    id_prefix: String,
    n: u64,
    record: Option<(String, NewEvent)>,
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

/// An event of a restored export, staged in file order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StagedEvent {
    /// Its stream.
    pub stream: String,
    /// The stream version it must follow (0: the stream must be new).
    pub after: u64,
    /// The event.
    pub event: NewEvent,
}

impl StagedEvent {
    /// The check it is written under.
    pub fn expected(&self) -> ExpectedVersion {
        match self.after {
            0 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v),
        }
    }
}

/// Phase 2 of restoring an export: staged events in file order, each
/// checked against the version it followed when exported.
pub struct RestorePlan {
    blocks: u32,
    next_block: u32,
    buffered: VecDeque<StagedEvent>,
}

impl RestorePlan {
    /// Read back `blocks` blocks of run 0.
    pub fn new(blocks: u32) -> Self {
        RestorePlan {
            blocks,
            next_block: 0,
            buffered: VecDeque::new(),
        }
    }
}

impl StagedPlan for RestorePlan {
    fn next(&mut self) -> Result<Step, String> {
        if let Some(e) = self.buffered.pop_front() {
            let expected = e.expected();
            return Ok(Step::Event(e.stream, expected, e.event));
        }
        if self.next_block < self.blocks {
            return Ok(Step::Need((0, self.next_block)));
        }
        Ok(Step::Done)
    }

    fn supply(&mut self, key: BlockKey, bytes: &[u8]) -> Result<(), String> {
        if key != (0, self.next_block) {
            return Err(format!("staged block {key:?} came out of turn"));
        }
        self.next_block += 1;
        self.buffered.extend(decode_block::<StagedEvent>(bytes)?);
        Ok(())
    }
}

/// A plan that reports how many events it has handed out (every
/// [`REPORT_EVERY`]) and stops — aborting its commit — when the user cancels.
pub struct Watched<F: Fn() -> bool, R: Fn(u64)> {
    /// The plan.
    pub inner: Box<dyn StagedPlan>,
    /// Whether to stop.
    pub cancelled: F,
    /// Told the number of events handed out so far.
    pub report: R,
    /// Events handed out so far.
    pub handed: u64,
}

/// Events between two progress reports of a commit.
pub const REPORT_EVERY: u64 = 5_000;

impl<F: Fn() -> bool, R: Fn(u64)> StagedPlan for Watched<F, R> {
    fn next(&mut self) -> Result<Step, String> {
        if (self.cancelled)() {
            return Err("cancelled".into());
        }
        let step = self.inner.next()?;
        if matches!(step, Step::Event(..)) {
            self.handed += 1;
            if self.handed.is_multiple_of(REPORT_EVERY) {
                (self.report)(self.handed);
            }
        }
        Ok(step)
    }

    fn supply(&mut self, key: BlockKey, bytes: &[u8]) -> Result<(), String> {
        self.inner.supply(key, bytes)
    }
}

/// Staging in memory: blocks by key. Tools and tests stage here; the
/// browser stages to IndexedDB.
#[derive(Default)]
pub struct MemoryStaging(pub BTreeMap<BlockKey, Vec<u8>>);

impl MemoryStaging {
    /// Keep these blocks.
    pub fn put(&mut self, blocks: Vec<(BlockKey, Vec<u8>)>) {
        self.0.extend(blocks);
    }

    /// Run `plan` against the blocks kept here.
    pub fn drain(&self, plan: &mut dyn StagedPlan) -> Result<Vec<StreamAppend>, String> {
        drain(plan, |k| self.0.get(&k).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(time: i64, case: u32, row: u64) -> StagedRow {
        StagedRow {
            time,
            case,
            row,
            data: String::new(),
        }
    }

    #[test]
    fn merger_yields_global_order_and_asks_for_each_block_once() {
        let mut runs: Vec<Vec<StagedRow>> = vec![
            vec![row(1, 0, 0), row(5, 0, 1), row(9, 1, 2)],
            vec![row(2, 2, 3), row(3, 2, 4)],
            vec![],
            vec![row(0, 3, 5), row(9, 0, 6), row(10, 1, 7), row(11, 1, 8)],
        ];
        let blocks: Vec<Vec<Vec<StagedRow>>> = runs
            .iter_mut()
            .map(|r| r.chunks(2).map(<[_]>::to_vec).collect())
            .collect();
        let counts: Vec<u32> = blocks.iter().map(|b| b.len() as u32).collect();
        let mut m = Merger::new(&counts);
        let mut asked = Vec::new();
        let mut out = Vec::new();
        loop {
            match m.pop() {
                Merged::Need((r, b)) => {
                    asked.push((r, b));
                    m.supply((r, b), blocks[r as usize][b as usize].clone())
                        .unwrap();
                }
                Merged::Row(r) => out.push(r.key()),
                Merged::Empty => break,
            }
        }
        let mut want: Vec<_> = runs.concat().iter().map(StagedRow::key).collect();
        want.sort();
        assert_eq!(out, want);
        let mut unique = asked.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), asked.len(), "a block was asked for twice");
        assert_eq!(asked.len(), counts.iter().sum::<u32>() as usize);
        // Supplying the wrong block is an error, not a silent misorder.
        let mut m = Merger::new(&counts);
        assert!(m.supply((1, 0), vec![row(2, 2, 3)]).is_err());
    }

    #[test]
    fn blocks_reject_damage() {
        let bytes = encode_block(&[row(1, 2, 3)]);
        assert_eq!(
            decode_block::<StagedRow>(&bytes).unwrap(),
            vec![row(1, 2, 3)]
        );
        assert!(decode_block::<StagedRow>(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_block::<StagedRow>(&[9, 0]).is_err());
        assert!(decode_block::<StagedRow>(&[]).is_err());
    }
}

/// Stage a parsed log (events first, so cases are numbered in order of
/// first appearance; then the attributes of cases that have events).
pub fn stage(log: &ParsedLog, label: &str, completion: &Completion) -> Stager {
    let mut stager = Stager::new(label, completion.clone());
    for e in &log.events {
        stager.event(e.clone());
    }
    let mut cases: Vec<_> = log.case_attributes.iter().collect();
    cases.sort_by(|a, b| a.0.cmp(b.0));
    for (case, attributes) in cases {
        stager.case_attributes(case, attributes.clone());
    }
    stager
}

/// Turn a parsed log into appends, in global time order (stable for ties,
/// so a case's events keep their file order). Case ids are prefixed with
/// `label` (e.g. the file name) so logs from several files do not collide.
/// Event ids are `{id_prefix}-{n}`. The same staged path as the browser's
/// bounded-memory import, with the staging area in memory.
pub fn to_appends(
    log: &ParsedLog,
    label: &str,
    completion: &Completion,
    id_prefix: &str,
) -> (Vec<StreamAppend>, ImportCounts) {
    staged_in_memory(log, label, completion, id_prefix, |_, _| None)
}

/// Stage `log` in memory and read it back as appends; `last` may add a
/// final event, given the stager and the counts.
pub fn staged_in_memory(
    log: &ParsedLog,
    label: &str,
    completion: &Completion,
    id_prefix: &str,
    last: impl FnOnce(&Stager, &ImportCounts) -> Option<(String, NewEvent)>,
) -> (Vec<StreamAppend>, ImportCounts) {
    let mut stager = stage(log, label, completion);
    let mut staging = MemoryStaging::default();
    staging.put(stager.take_run());
    let counts = stager.counts();
    let record = last(&stager, &counts);
    let (mut plan, rest) = stager.plan(id_prefix, record);
    staging.put(rest);
    let appends = staging
        .drain(&mut plan)
        .expect("blocks staged in memory are complete");
    (appends, counts)
}
