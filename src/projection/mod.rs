//! Projections: every table, chart and metric is a pure fold over the log.
//!
//! A [`Projection`] is plain data with an `apply` that reads one decoded
//! event. Folds are deterministic — no clocks, no randomness — so replaying
//! the same events always gives the same state: after a reload, in another
//! tab, or at a past position (time travel). [`ProjectionSet`] holds the
//! app's projections with the position each has reached; [`replay`] brings
//! it forward from a store in bounded batches; [`snapshot`] saves and
//! restores it so boot reads only the tail of the log.

pub mod case_history;
pub mod drift;
pub mod feedback;
pub mod open_cases;
pub mod snapshot;
pub mod stats;
pub mod training_set;
pub mod wip;
pub mod workload;

use crate::domain::fact::DecodeError;
use crate::domain::{decode, Recorded};
use crate::store::{EventStore, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

pub use case_history::CaseHistory;
pub use feedback::Feedback;
pub use open_cases::OpenCases;
pub use stats::LogStats;
pub use training_set::TrainingSet;
pub use workload::Workload;

/// A fold over the log.
pub trait Projection: Default + Clone + Serialize + DeserializeOwned {
    /// Stable name (snapshots are stored under it).
    const NAME: &'static str;
    /// Version of the fold and the state's shape: bump it whenever either
    /// changes, and old snapshots are ignored and rebuilt from the log.
    const VERSION: u32;
    /// Take one event into account.
    fn apply(&mut self, event: &Recorded);
}

/// A projection and the `seq` it has applied up to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Slot<P> {
    /// The state.
    pub state: P,
    /// The last `seq` applied.
    pub seq: u64,
}

impl<P: Projection> Slot<P> {
    fn apply(&mut self, event: &Recorded) {
        if event.seq > self.seq {
            self.state.apply(event);
            self.seq = event.seq;
        }
    }
}

/// Runs `$body` once for every slot of a set, with `$slot` bound to it.
macro_rules! each_slot {
    ($set:expr, $slot:ident => $body:expr) => {{
        {
            let $slot = &mut $set.open_cases;
            $body;
        }
        {
            let $slot = &mut $set.history;
            $body;
        }
        {
            let $slot = &mut $set.workload;
            $body;
        }
        {
            let $slot = &mut $set.stats;
            $body;
        }
        {
            let $slot = &mut $set.training;
            $body;
        }
        {
            let $slot = &mut $set.feedback;
            $body;
        }
    }};
}
pub(crate) use each_slot;

/// The app's projections.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProjectionSet {
    /// Open cases with their events so far.
    pub open_cases: Slot<OpenCases>,
    /// Recently closed cases.
    pub history: Slot<CaseHistory>,
    /// Work in progress per resource over time.
    pub workload: Slot<Workload>,
    /// Counts, per-day series and duration distribution.
    pub stats: Slot<LogStats>,
    /// Every prefix of recently closed cases, labelled with remaining time.
    pub training: Slot<TrainingSet>,
    /// Recorded predictions scored against outcomes.
    pub feedback: Slot<Feedback>,
}

impl ProjectionSet {
    /// Take one event into every projection that has not seen it.
    pub fn apply(&mut self, event: &Recorded) {
        each_slot!(self, slot => slot.apply(event));
    }

    /// The position every projection has reached (the smallest).
    pub fn seq(&self) -> u64 {
        [
            self.open_cases.seq,
            self.history.seq,
            self.workload.seq,
            self.stats.seq,
            self.training.seq,
            self.feedback.seq,
        ]
        .into_iter()
        .min()
        .unwrap_or(0)
    }
}

/// Why a replay stopped.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ReplayError {
    /// Reading the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event could not be decoded; the projections stop before it.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Read events `from..=to` (`to = u64::MAX`: up to the head) `batch` at a
/// time, decode them and hand each batch to `sink`, so memory stays bounded
/// and the caller decides what to fold. Returns the number of events read.
pub async fn read_decoded<S: EventStore>(
    store: &S,
    from: u64,
    to: u64,
    batch: usize,
    mut sink: impl FnMut(Vec<Recorded>),
) -> Result<u64, ReplayError> {
    let mut read = 0;
    let mut from = from.max(1);
    while from <= to {
        let want = batch.min((to - from + 1).min(usize::MAX as u64) as usize);
        let page = store.read_all(from, want).await?;
        let Some(last) = page.last().map(|e| e.seq) else {
            break;
        };
        let mut decoded = Vec::with_capacity(page.len());
        let mut failure = None;
        for envelope in page {
            match decode(envelope) {
                Ok(event) => decoded.push(event),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        read += decoded.len() as u64;
        // Whatever decoded before a bad event still counts.
        sink(decoded);
        if let Some(e) = failure {
            return Err(e.into());
        }
        from = last + 1;
    }
    Ok(read)
}

/// Bring `set` forward to `to` (inclusive; `u64::MAX` for the head), reading
/// `batch` events at a time. Calls `progress` with the position after each
/// batch. Returns the number of events applied.
pub async fn replay<S: EventStore>(
    set: &mut ProjectionSet,
    store: &S,
    to: u64,
    batch: usize,
    mut progress: impl FnMut(u64),
) -> Result<u64, ReplayError> {
    let from = set.seq() + 1;
    read_decoded(store, from, to, batch, |events| {
        for e in &events {
            set.apply(e);
        }
        if let Some(last) = events.last() {
            progress(last.seq);
        }
    })
    .await
}
