//! Work in progress: open cases in the process and per resource.
//!
//! A case counts against the resource who last worked on it until someone
//! else does or it closes — what an event log can tell without a task list.

use crate::domain::{Fact, Recorded};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Open cases, in total and by the resource holding them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wip {
    /// Open cases.
    pub open: u32,
    /// Open cases per resource.
    pub by_resource: BTreeMap<String, u32>,
    /// Who holds each open case that someone has worked on.
    holder: BTreeMap<String, String>,
}

impl Wip {
    /// Take one event into account.
    pub fn apply(&mut self, event: &Recorded) {
        match &event.fact {
            Fact::CaseOpened(_) => self.open += 1,
            Fact::ActivityRecorded(a) => {
                if let Some(r) = &a.resource {
                    if let Some(previous) = self.holder.insert(a.case.clone(), r.clone()) {
                        self.release(&previous);
                    }
                    *self.by_resource.entry(r.clone()).or_default() += 1;
                }
            }
            Fact::CaseClosed(c) => {
                self.open = self.open.saturating_sub(1);
                if let Some(previous) = self.holder.remove(&c.case) {
                    self.release(&previous);
                }
            }
            _ => {}
        }
    }

    fn release(&mut self, resource: &str) {
        if let Some(n) = self.by_resource.get_mut(resource) {
            *n = n.saturating_sub(1);
        }
    }

    /// Open cases held by `resource`.
    pub fn of(&self, resource: &str) -> u32 {
        self.by_resource.get(resource).copied().unwrap_or(0)
    }
}
