//! The live event stream's rows: each event in a line of words, and the
//! newest of them kept.

use crate::domain::{Fact, Recorded};
use std::collections::VecDeque;

/// Rows the live event stream shows.
pub const STREAM_ROWS: usize = 40;

/// One row of the live event stream.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StreamRow {
    /// Position.
    pub seq: u64,
    /// Domain time.
    pub at: i64,
    /// Event type.
    pub event_type: String,
    /// The case, if any.
    pub case: String,
    /// What it says, briefly.
    pub detail: String,
}

impl StreamRow {
    /// The row of event `e`.
    pub fn of(e: &Recorded) -> StreamRow {
        let (case, detail) = match &e.fact {
            Fact::CaseOpened(c) => (
                c.case.clone(),
                c.attributes
                    .get("category")
                    .map(|v| v.to_string().replace('"', ""))
                    .unwrap_or_default(),
            ),
            Fact::ActivityRecorded(a) => (
                a.case.clone(),
                match (&a.resource, a.hours) {
                    (Some(r), Some(h)) => format!("{} by {r}, {h:.1} h", a.activity),
                    (Some(r), None) => format!("{} by {r}", a.activity),
                    _ => a.activity.to_string(),
                },
            ),
            Fact::CaseClosed(c) => (c.case.clone(), c.outcome.clone().unwrap_or_default()),
            Fact::ProcessChanged(p) => (String::new(), p.description.clone()),
            Fact::MessageRefused(r) => (
                String::new(),
                format!("shared log message {} refused: {}", r.seq, r.reason),
            ),
            Fact::DriftDetected(d) => (
                String::new(),
                format!(
                    "{}: errors drifted (Page-Hinkley {:.0} > {:.0})",
                    d.model, d.statistic, d.threshold
                ),
            ),
            Fact::PredictionRecorded(p) => (
                p.case.clone(),
                format!(
                    "{}{}: {:.1} h remaining",
                    p.model,
                    if p.shadow { " (shadow)" } else { "" },
                    p.predicted_h
                ),
            ),
            Fact::ChallengerStarted(c) => (
                String::new(),
                format!("{} enters as challenger ({})", c.model, c.reason),
            ),
            Fact::ModelPromoted(p) => (
                String::new(),
                match &p.replaced {
                    Some(old) => format!("{} replaces {old} ({})", p.model, p.reason),
                    None => format!("{} is champion ({})", p.model, p.reason),
                },
            ),
            Fact::ModelRetired(r) => (String::new(), format!("{} retired ({})", r.model, r.reason)),
            Fact::LoopTaken(t) => (
                String::new(),
                format!("{} drives the team's loop from here on", t.name),
            ),
            Fact::ModelBytesReleased(r) => (
                String::new(),
                format!(
                    "{}'s bytes released ({:.0} KB; {})",
                    r.model,
                    r.size_bytes as f64 / 1000.0,
                    r.reason
                ),
            ),
            Fact::ModelTrained(m) => (
                String::new(),
                format!(
                    "{} trained: {}, {} cases, holdout MAE {:.2} d",
                    m.id,
                    m.algorithm,
                    m.train_cases + m.holdout_cases,
                    m.holdout_mae_days
                ),
            ),
            Fact::Other(_) => (String::new(), String::new()),
        };
        StreamRow {
            seq: e.seq,
            at: e.occurred_at,
            event_type: e.fact.type_name().to_owned(),
            case,
            detail,
        }
    }
}

/// Put the newest of `events` at the front of `rows`, keeping [`STREAM_ROWS`].
pub fn keep_newest(rows: &mut VecDeque<StreamRow>, events: &[Recorded]) {
    for e in events.iter().rev().take(STREAM_ROWS).rev() {
        rows.push_front(StreamRow::of(e));
    }
    rows.truncate(STREAM_ROWS);
}
