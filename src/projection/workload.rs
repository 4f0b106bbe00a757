//! Work in progress per resource, now and per day.

use super::wip::Wip;
use super::Projection;
use crate::domain::calendar::DAY;
use crate::domain::Recorded;
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
    pub daily: BTreeMap<i64, BTreeMap<String, u32>>,
}

impl Projection for Workload {
    const NAME: &'static str = "workload";
    const VERSION: u32 = 1;

    fn apply(&mut self, event: &Recorded) {
        self.now.apply(event);
        let day = event.occurred_at.div_euclid(DAY) * DAY;
        let row = self.daily.entry(day).or_default();
        for (resource, wip) in &self.now.by_resource {
            let peak = row.entry(resource.clone()).or_default();
            *peak = (*peak).max(*wip);
        }
        while self.daily.len() > KEEP_DAYS {
            self.daily.pop_first();
        }
    }
}
