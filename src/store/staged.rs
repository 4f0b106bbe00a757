//! The staged-commit protocol: a large commit (an import) is staged in
//! blocks, then handed to the store one event at a time by a plan that asks
//! for the blocks it needs. The store knows blocks and envelopes; what the
//! rows mean is the importer's business (`io::staged`).

use super::{push_event, ExpectedVersion, StreamAppend};
use crate::log::NewEvent;
use serde::{Deserialize, Serialize};

/// Format byte of a staged block.
const BLOCK_FORMAT: u8 = 1;

/// Where a block lives in the staging area: (run, block within the run).
pub type BlockKey = (u32, u32);

/// Encode one block of staged items.
pub fn encode_block<T: Serialize>(items: &[T]) -> Vec<u8> {
    let out = vec![BLOCK_FORMAT];
    postcard::to_extend(items, out).expect("writing to a Vec cannot fail")
}

/// Decode a block written by [`encode_block`].
pub fn decode_block<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<Vec<T>, String> {
    match bytes.split_first() {
        Some((&BLOCK_FORMAT, rest)) => {
            postcard::from_bytes(rest).map_err(|e| format!("a staged block is damaged ({e})"))
        }
        _ => Err("a staged block has an unknown format".into()),
    }
}

/// What a plan does next.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Fetch this block and [`StagedPlan::supply`] it before going on.
    Need(BlockKey),
    /// The next event, for this stream, under this check.
    Event(String, ExpectedVersion, NewEvent),
    /// Every event has been handed out.
    Done,
}

/// A commit read back from the staging area, one event at a time.
pub trait StagedPlan {
    /// The next step.
    fn next(&mut self) -> Result<Step, String>;
    /// The block asked for by the last [`Step::Need`].
    fn supply(&mut self, key: BlockKey, bytes: &[u8]) -> Result<(), String>;
}

/// Everything a plan would write, with blocks fetched from `blocks`, as
/// appends (consecutive events of one stream share a part). For tests and
/// native tools; the browser writes while it reads instead.
pub fn drain(
    plan: &mut dyn StagedPlan,
    mut fetch: impl FnMut(BlockKey) -> Option<Vec<u8>>,
) -> Result<Vec<StreamAppend>, String> {
    let mut out: Vec<StreamAppend> = Vec::new();
    loop {
        match plan.next()? {
            Step::Need(key) => {
                let bytes = fetch(key).ok_or_else(|| format!("staged block {key:?} is missing"))?;
                plan.supply(key, &bytes)?;
            }
            Step::Event(stream, expected, event) => push_event(&mut out, stream, expected, event),
            Step::Done => return Ok(out),
        }
    }
}
