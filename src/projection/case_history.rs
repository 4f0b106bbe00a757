//! Recently closed cases, newest last: what happened to each, in brief.

use super::Projection;
use crate::domain::events::Name;
use crate::domain::{Fact, Recorded};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

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
    pub activities: Vec<Name>,
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
    /// Open cases: when they opened and their activities so far.
    open: BTreeMap<String, (i64, Vec<Name>)>,
    /// Closed cases, oldest first.
    pub closed: VecDeque<ClosedCase>,
}

impl Projection for CaseHistory {
    const NAME: &'static str = "case_history";
    const VERSION: u32 = 1;

    fn apply(&mut self, event: &Recorded) {
        match &event.fact {
            Fact::CaseOpened(c) => {
                self.open
                    .insert(c.case.clone(), (event.occurred_at, Vec::new()));
            }
            Fact::ActivityRecorded(a) => match self.open.get_mut(&a.case) {
                Some((_, activities)) => activities.push(a.activity.clone()),
                None => {
                    self.open.insert(
                        a.case.clone(),
                        (event.occurred_at, vec![a.activity.clone()]),
                    );
                }
            },
            Fact::CaseClosed(c) => {
                let Some((case, (opened_at, activities))) = self.open.remove_entry(&c.case) else {
                    return;
                };
                self.closed.push_back(ClosedCase {
                    case,
                    opened_at,
                    closed_at: event.occurred_at,
                    activities,
                    outcome: c.outcome.clone(),
                });
                if self.closed.len() > KEEP {
                    self.closed.pop_front();
                }
            }
            _ => {}
        }
    }
}
