//! A plan that reports progress and stops when the user cancels.

use super::*;

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
