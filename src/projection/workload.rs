//! Work in progress per resource, now and per day.

use super::wip::Wip;
use super::Projection;
use crate::domain::calendar::DAY;
use crate::domain::events::Name;
use crate::domain::{Fact, Recorded};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many days of history the workload keeps.
pub const KEEP_DAYS: usize = 120;

/// WIP per resource now, and the highest WIP each resource had on each day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Current work in progress.
    pub now: Wip,
    /// Day (UTC ms at midnight) → resource → highest WIP that day.
    pub daily: BTreeMap<i64, BTreeMap<Name, u32>>,
}

impl Projection for Workload {
    const NAME: &'static str = "workload";
    const VERSION: u32 = 1;

    fn apply(&mut self, event: &Recorded) {
        self.now.apply(event);
        let day = event.occurred_at.div_euclid(DAY) * DAY;
        if self.daily.last_key_value().is_none_or(|(d, _)| *d < day) {
            // A new day starts from everyone's current work in progress.
            self.daily.insert(day, self.now.by_resource.clone());
            while self.daily.len() > KEEP_DAYS {
                self.daily.pop_first();
            }
        }
        // Only the resource this event touched can have reached a new peak.
        if let (Fact::ActivityRecorded(a), Some(row)) = (&event.fact, self.daily.get_mut(&day)) {
            if let Some(r) = &a.resource {
                let wip = self.now.of(r);
                match row.get_mut(r) {
                    Some(peak) => *peak = (*peak).max(wip),
                    None => {
                        row.insert(r.clone(), wip);
                    }
                }
            }
        }
    }
}
