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

pub use crate::store::staged::{decode_block, drain, encode_block, BlockKey, StagedPlan, Step};
use serde::{Deserialize, Serialize};

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
    pub(crate) fn key(&self) -> RowKey {
        (self.time, self.case, self.row)
    }
}

/// The (time, row) of the activity that closes a case; [`NO_CLOSE`] if none.
pub(crate) type Close = (i64, u64);
pub(crate) const NO_CLOSE: Close = (i64::MIN, u64::MAX);

/// A case's id in the log: the file's id with the import's label in front.
pub(crate) fn labelled(label: &str, case: &str) -> String {
    if label.is_empty() {
        case.to_owned()
    } else {
        format!("{label}-{case}")
    }
}

mod memory;
mod plan;
mod restore;
mod stager;
mod watched;

pub use memory::{stage, staged_in_memory, to_appends, MemoryStaging};
pub use plan::ImportPlan;
use plan::RowKey;
pub use restore::{RestorePlan, StagedEvent};
pub use stager::Stager;
pub use watched::{Watched, REPORT_EVERY};

#[cfg(test)]
mod tests {
    use super::plan::{Merged, Merger};
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
