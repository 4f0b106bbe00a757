//! What every importer produces — rows of a log, each with its case,
//! activity and time — and how they become Retrace's events.

use crate::domain::events::{ActivityRecorded, Attributes, CaseClosed, CaseOpened};
use crate::log::NewEvent;
use crate::store::{ExpectedVersion, StreamAppend};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One event read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedEvent {
    /// Case id as the file writes it.
    pub case: String,
    /// Activity name.
    pub activity: String,
    /// When it completed (UTC ms).
    pub time: i64,
    /// Who did it.
    pub resource: Option<String>,
    /// Further attributes of the event.
    pub attributes: Attributes,
}

/// A row (or element) that could not be read, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// Line (CSV) or line of the element (XES), from 1.
    pub line: u64,
    /// What is wrong, in words.
    pub problem: String,
}

/// A whole file, read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedLog {
    /// Events in file order.
    pub events: Vec<ParsedEvent>,
    /// Attributes of each case that the file states once per case (XES trace
    /// attributes), by case id.
    pub case_attributes: HashMap<String, Attributes>,
    /// Rows (or events) read, good and bad.
    pub rows: u64,
    /// Rows skipped because they could not be read.
    pub skipped: Vec<RowError>,
}

/// Which cases of an imported log are finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Completion {
    /// Every case in the file is complete: each gets a `CaseClosed`.
    AllComplete,
    /// A case is complete when this activity has happened.
    EndActivity(String),
    /// No case is known to be complete.
    NoneComplete,
}

/// Counts of an import, for the user and the `ImportCompleted` event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCounts {
    /// Cases.
    pub cases: u64,
    /// Cases closed.
    pub closed: u64,
    /// Events written (opened + activities + closed).
    pub events: u64,
    /// Distinct activities.
    pub activities: u64,
}

/// Turn a parsed log into appends, in global time order (stable for ties,
/// so a case's events keep their file order). Case ids are prefixed with
/// `label` (e.g. the file name) so logs from several files do not collide.
/// Event ids are `{id_prefix}-{n}`.
pub fn to_appends(
    log: &ParsedLog,
    label: &str,
    completion: &Completion,
    id_prefix: &str,
) -> (Vec<StreamAppend>, ImportCounts) {
    // Group by case, keeping the order cases first appear.
    let mut order: Vec<&str> = Vec::new();
    let mut by_case: HashMap<&str, Vec<&ParsedEvent>> = HashMap::new();
    for e in &log.events {
        by_case
            .entry(e.case.as_str())
            .or_insert_with(|| {
                order.push(&e.case);
                Vec::new()
            })
            .push(e);
    }
    // (time, case index, position in case): opened first, closed last.
    let mut items: Vec<(i64, usize, usize, NewEvent)> = Vec::new();
    let mut counts = ImportCounts::default();
    let mut activities = std::collections::HashSet::new();
    let mut n = 0u64;
    let mut next_id = || {
        n += 1;
        format!("{id_prefix}-{n}")
    };
    for (ci, case) in order.iter().enumerate() {
        let mut events = by_case.remove(case).unwrap_or_default();
        events.sort_by_key(|e| e.time); // stable: ties keep file order
        let id = if label.is_empty() {
            case.to_string()
        } else {
            format!("{label}-{case}")
        };
        let first = events[0].time;
        let last = events[events.len() - 1].time;
        let attributes = log.case_attributes.get(*case).cloned().unwrap_or_default();
        let opened = NewEvent::new(
            next_id(),
            CaseOpened::TYPE,
            CaseOpened::SCHEMA,
            first,
            &CaseOpened {
                case: id.clone(),
                attributes,
            },
        )
        .correlated(id.clone());
        items.push((first, ci, 0, opened));
        let mut closed_at = None;
        for (k, e) in events.iter().enumerate() {
            activities.insert(e.activity.as_str());
            let payload = ActivityRecorded {
                case: id.clone(),
                activity: e.activity.as_str().into(),
                resource: e.resource.as_deref().map(Into::into),
                hours: None,
                attributes: e.attributes.clone(),
            };
            let event = NewEvent::new(
                next_id(),
                ActivityRecorded::TYPE,
                ActivityRecorded::SCHEMA,
                e.time,
                &payload,
            )
            .correlated(id.clone());
            items.push((e.time, ci, k + 1, event));
            if let Completion::EndActivity(end) = completion {
                if &e.activity == end && closed_at.is_none() {
                    closed_at = Some((e.time, k + 1));
                }
            }
        }
        if let Completion::AllComplete = completion {
            closed_at = Some((last, events.len()));
        }
        if let Some((at, k)) = closed_at {
            let closed = NewEvent::new(
                next_id(),
                CaseClosed::TYPE,
                CaseClosed::SCHEMA,
                at,
                &CaseClosed {
                    case: id.clone(),
                    outcome: None,
                },
            )
            .correlated(id.clone());
            // Right after the closing activity (later events of the case, if
            // any, still belong to it, but it is closed).
            items.push((at, ci, k, closed));
            counts.closed += 1;
        }
        counts.cases += 1;
    }
    items.sort_by_key(|(t, ci, k, _)| (*t, *ci, *k));
    counts.events = items.len() as u64;
    counts.activities = activities.len() as u64;
    // A case's first part expects a new stream: importing into a log that
    // already has the case fails as a whole instead of mixing two cases.
    let mut seen = std::collections::HashSet::new();
    let appends = items
        .into_iter()
        .map(|(_, _, _, e)| {
            let stream = format!("case-{}", e.correlation.as_deref().unwrap_or_default());
            let expected = if seen.insert(stream.clone()) {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Any
            };
            StreamAppend::new(stream, expected, vec![e])
        })
        .collect();
    (merge_runs(appends), counts)
}

/// Merge consecutive appends to the same stream (fewer, larger parts).
fn merge_runs(appends: Vec<StreamAppend>) -> Vec<StreamAppend> {
    let mut out: Vec<StreamAppend> = Vec::with_capacity(appends.len());
    for a in appends {
        match out.last_mut() {
            Some(last) if last.stream == a.stream => last.events.extend(a.events),
            _ => out.push(a),
        }
    }
    out
}
