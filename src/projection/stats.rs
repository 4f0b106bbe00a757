//! Log statistics: events per type, cases opened and closed per day, how
//! long cases take, and when the process changed.

use super::Projection;
use crate::domain::calendar::{DAY, HOUR};
use crate::domain::{Fact, Recorded};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Upper bounds (hours) of the duration histogram's buckets; the last
/// bucket holds everything longer.
pub const DURATION_BUCKETS_H: [f64; 10] =
    [1.0, 4.0, 8.0, 24.0, 48.0, 96.0, 168.0, 336.0, 720.0, 1440.0];

/// Refusals the statistics list (the newest; the count covers all).
pub const REFUSALS_KEPT: usize = 200;

/// A moment the process changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Position in the log.
    pub seq: u64,
    /// Domain time.
    pub at: i64,
    /// What changed.
    pub description: String,
}

/// Counts and distributions over the whole log.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogStats {
    /// Events read.
    pub events: u64,
    /// Events per type.
    pub by_type: BTreeMap<String, u64>,
    /// Day (UTC ms at midnight) → (cases opened, cases closed).
    pub per_day: BTreeMap<i64, (u32, u32)>,
    /// Case durations: counts per bucket of [`DURATION_BUCKETS_H`] (+1 overflow).
    pub durations: Vec<u64>,
    /// Sum of closed cases' durations (ms), for the mean.
    pub duration_sum_ms: i64,
    /// Earliest and latest domain time seen.
    pub span: Option<(i64, i64)>,
    /// Process changes, in order.
    pub changes: Vec<Change>,
    /// Messages of a shared log refused at their place: (seq, why), the
    /// newest [`REFUSALS_KEPT`].
    #[serde(default)]
    pub refused: Vec<(u64, String)>,
    /// All refused, also those no longer listed.
    #[serde(default)]
    pub refused_total: u64,
    opened_at: BTreeMap<String, i64>,
}

impl LogStats {
    /// Cases closed so far.
    pub fn closed(&self) -> u64 {
        self.durations.iter().sum()
    }

    /// Mean duration of closed cases, in hours.
    pub fn mean_duration_h(&self) -> Option<f64> {
        let n = self.closed();
        (n > 0).then(|| self.duration_sum_ms as f64 / HOUR as f64 / n as f64)
    }
}

impl Projection for LogStats {
    const NAME: &'static str = "log_stats";
    const VERSION: u32 = 2;

    fn apply(&mut self, event: &Recorded) {
        self.events += 1;
        *self
            .by_type
            .entry(event.fact.type_name().to_owned())
            .or_default() += 1;
        let t = event.occurred_at;
        self.span = Some(self.span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        let day = t.div_euclid(DAY) * DAY;
        match &event.fact {
            Fact::CaseOpened(c) => {
                self.per_day.entry(day).or_default().0 += 1;
                // (the case id is cloned once per case, not per event)
                self.opened_at.insert(c.case.clone(), t);
            }
            Fact::CaseClosed(c) => {
                self.per_day.entry(day).or_default().1 += 1;
                if let Some(opened) = self.opened_at.remove(&c.case) {
                    let hours = (t - opened) as f64 / HOUR as f64;
                    let bucket = DURATION_BUCKETS_H
                        .iter()
                        .position(|b| hours <= *b)
                        .unwrap_or(DURATION_BUCKETS_H.len());
                    if self.durations.len() <= DURATION_BUCKETS_H.len() {
                        self.durations.resize(DURATION_BUCKETS_H.len() + 1, 0);
                    }
                    self.durations[bucket] += 1;
                    self.duration_sum_ms += t - opened;
                }
            }
            Fact::ProcessChanged(p) => self.changes.push(Change {
                seq: event.seq,
                at: t,
                description: p.description.clone(),
            }),
            Fact::MessageRefused(r) => {
                self.refused_total += 1;
                self.refused.push((event.seq, r.reason.clone()));
                if self.refused.len() > REFUSALS_KEPT {
                    self.refused.remove(0);
                }
            }
            _ => {}
        }
    }
}
