//! Recently closed cases, newest last: what happened to each, in brief.

use super::open_cases::OpenCases;
use super::Projection;
use crate::domain::{Fact, Recorded};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How many closed cases the history keeps.
pub const KEEP: usize = 500;

/// A closed case in brief.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClosedCase {
    /// Case id.
    pub case: String,
    /// When it opened and closed (UTC ms).
    pub opened_at: i64,
    /// When it closed.
    pub closed_at: i64,
    /// Its activities in order.
    pub activities: Vec<String>,
    /// How it ended.
    pub outcome: Option<String>,
}

impl ClosedCase {
    /// How long it took, in ms.
    pub fn duration(&self) -> i64 {
        self.closed_at - self.opened_at
    }
}

/// The last [`KEEP`] closed cases.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseHistory {
    open: OpenCases,
    /// Closed cases, oldest first.
    pub closed: VecDeque<ClosedCase>,
}

impl Projection for CaseHistory {
    const NAME: &'static str = "case_history";
    const VERSION: u32 = 1;

    fn apply(&mut self, event: &Recorded) {
        if let Some(trace) = self.open.apply_and_take_closed(event) {
            let outcome = match &event.fact {
                Fact::CaseClosed(c) => c.outcome.clone(),
                _ => None,
            };
            self.closed.push_back(ClosedCase {
                case: trace.case,
                opened_at: trace.opened_at,
                closed_at: event.occurred_at,
                activities: trace.steps.into_iter().map(|s| s.activity).collect(),
                outcome,
            });
            if self.closed.len() > KEEP {
                self.closed.pop_front();
            }
        }
    }
}
