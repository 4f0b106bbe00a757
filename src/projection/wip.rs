//! Work in progress: open cases in the process and per resource.
//!
//! A case counts against the resource who last worked on it until someone
//! else does or it closes — what an event log can tell without a task list.

use crate::domain::events::Name;
use crate::domain::{Fact, Recorded};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Open cases, in total and by the resource holding them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wip {
    /// Open cases.
    pub open: u32,
    /// Open cases per resource.
    pub by_resource: BTreeMap<Name, u32>,
    /// Who holds each open case that someone has worked on.
    holder: BTreeMap<String, Name>,
}

impl Wip {
    /// Take one event into account.
    pub fn apply(&mut self, event: &Recorded) {
        match &event.fact {
            Fact::CaseOpened(_) => self.open += 1,
            Fact::ActivityRecorded(a) => {
                let Some(r) = &a.resource else { return };
                // The hot path allocates nothing when the holder is unchanged.
                match self.holder.get_mut(&a.case) {
                    Some(h) if **h == **r => return,
                    Some(h) => {
                        let previous = std::mem::replace(h, r.clone());
                        self.release(&previous);
                    }
                    None => {
                        self.holder.insert(a.case.clone(), r.clone());
                    }
                }
                match self.by_resource.get_mut(r) {
                    Some(n) => *n += 1,
                    None => {
                        self.by_resource.insert(r.clone(), 1);
                    }
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
