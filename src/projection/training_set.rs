//! The training set: every prefix of every recently closed case, labelled
//! with the time that remained until it closed.

use super::open_cases::{CaseTrace, OpenCases};
use super::Projection;
use crate::domain::Recorded;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How many closed cases the training set keeps by default (a window: the
/// newest cases describe the process as it is now).
pub const DEFAULT_WINDOW: usize = 5_000;

/// A closed case with everything a model may learn from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    /// The case's events.
    pub trace: CaseTrace,
    /// When it closed.
    pub closed_at: i64,
    /// `seq` of the closing event.
    pub closed_seq: u64,
}

/// One training example: a case's first `len` activities, and what remained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prefix<'a> {
    /// The whole case (only the first `len` steps are the prefix).
    pub trace: &'a CaseTrace,
    /// Number of activities in the prefix (0 = just opened).
    pub len: usize,
    /// Time from the prefix's last event to the close (ms).
    pub remaining_ms: i64,
}

/// Open cases being followed, and the window of closed ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingSet {
    open: OpenCases,
    /// Closed cases, oldest first.
    pub closed: VecDeque<Finished>,
    /// Closed cases kept.
    pub window: usize,
    /// The longest any closed case has lasted, kept or not (ms).
    #[serde(default)]
    pub longest_ms: i64,
}

impl Default for TrainingSet {
    fn default() -> Self {
        TrainingSet {
            open: OpenCases::default(),
            closed: VecDeque::new(),
            window: DEFAULT_WINDOW,
            longest_ms: 0,
        }
    }
}

impl TrainingSet {
    /// An empty set keeping `window` closed cases.
    pub fn with_window(window: usize) -> Self {
        TrainingSet {
            window,
            ..TrainingSet::default()
        }
    }

    /// Keep the newest `window` closed cases from now on (at least one);
    /// fewer than are kept lets the oldest go at once.
    pub fn set_window(&mut self, window: usize) {
        self.window = window.max(1);
        while self.closed.len() > self.window {
            self.closed.pop_front();
        }
    }

    /// Every prefix of every kept case, oldest case first.
    pub fn prefixes(&self) -> impl Iterator<Item = Prefix<'_>> {
        self.closed.iter().flat_map(|f| {
            (0..=f.trace.steps.len()).map(move |len| {
                let at = if len == 0 {
                    f.trace.opened_at
                } else {
                    f.trace.steps[len - 1].at
                };
                Prefix {
                    trace: &f.trace,
                    len,
                    remaining_ms: f.closed_at - at,
                }
            })
        })
    }
}

impl Projection for TrainingSet {
    const NAME: &'static str = "training_set";
    const VERSION: u32 = 2;

    fn apply(&mut self, event: &Recorded) {
        if let Some(trace) = self.open.apply_and_take_closed(event) {
            self.longest_ms = self.longest_ms.max(event.occurred_at - trace.opened_at);
            self.closed.push_back(Finished {
                trace,
                closed_at: event.occurred_at,
                closed_seq: event.seq,
            });
            while self.closed.len() > self.window {
                self.closed.pop_front();
            }
        }
    }
}
