//! Staging in memory, for tools and tests (the browser stages to IndexedDB).

use super::*;
use crate::io::parsed::{Completion, EventSink, ImportCounts, ParsedLog};
use crate::log::NewEvent;
use crate::store::StreamAppend;
use std::collections::BTreeMap;

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
