//! Restoring an export: staged events read back in file order.

use super::*;
use crate::log::NewEvent;
use crate::store::ExpectedVersion;
use std::collections::VecDeque;

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
