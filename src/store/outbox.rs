//! A shared log's outbox: events written in this browser that the shared
//! log's server has not stored yet. Each waits with the version of its
//! stream it was written after, so that the server can refuse it when
//! somebody else wrote to that stream first (a conflict, never an
//! interleaving). The events reach the log only when they come back from
//! the server, in the server's order.

use super::{checked_version, ExpectedVersion, StoreError, StreamAppend};
use crate::log::NewEvent;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Events per outbox record: a large write (an import) is a few hundred
/// records, not one per event.
pub const CHUNK: usize = 1_000;
/// An event's key: its record's key × SPAN + its place in the record.
pub const SPAN: u64 = 1 << 16;

/// The keys of the outbox record holding event `key`: a record is read,
/// rewritten and deleted whole.
pub fn record_keys(key: u64) -> std::ops::Range<u64> {
    let record = key / SPAN;
    record * SPAN..(record + 1) * SPAN
}

/// One event waiting to be sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// Its Retrace stream.
    pub stream: String,
    /// The stream's version it was written after (0: a new stream).
    pub after: u64,
    /// The writer asked for a check of the stream's version (anything but
    /// `Any`): when somebody else wrote first, the user decides. Without
    /// one, the event simply goes after theirs.
    #[serde(default)]
    pub checked: bool,
    /// The commit it belongs to when that must reach others whole (an
    /// import): readers hold its events back until the one that closes it.
    #[serde(default)]
    pub unit: Option<String>,
    /// This event closes its unit (sent only once the rest is stored).
    #[serde(default)]
    pub closes: bool,
    /// The event.
    pub event: NewEvent,
}

/// Check a batch against the versions `lookup` reports (the log's, or an
/// earlier waiting event's) and give each event the version it follows.
/// The same rules as a commit to the log: all pass or nothing waits.
pub fn place(
    batch: Vec<StreamAppend>,
    mut lookup: impl FnMut(&str) -> Option<u64>,
) -> Result<Vec<Waiting>, StoreError> {
    let mut seen = rustc_hash::FxHashMap::default();
    let mut placed = Vec::new();
    for append in batch {
        let actual = checked_version(&append, &seen, &mut lookup)?;
        let mut after = actual.unwrap_or(0);
        let checked = append.expected != ExpectedVersion::Any;
        for event in append.events {
            placed.push(Waiting {
                stream: append.stream.clone(),
                after,
                checked,
                unit: None,
                closes: false,
                event,
            });
            after += 1;
        }
        if after > 0 {
            seen.insert(append.stream, after);
        }
    }
    Ok(placed)
}

/// Make `placed` one unit, named `unit`, closed by its last event.
pub fn as_unit(placed: &mut [Waiting], unit: &str) {
    let n = placed.len();
    for (i, w) in placed.iter_mut().enumerate() {
        w.unit = Some(unit.to_owned());
        w.closes = i + 1 == n;
    }
}

/// Where each stream stands once its waiting events are counted: the
/// version a new event to it follows.
#[derive(Clone, Debug, Default)]
pub struct Tops(HashMap<String, u64>);

impl Tops {
    /// The tops of `waiting`.
    pub fn of<'a>(waiting: impl IntoIterator<Item = &'a Waiting>) -> Tops {
        let mut tops = Tops::default();
        tops.add(waiting);
        tops
    }

    /// Count more waiting events.
    pub fn add<'a>(&mut self, waiting: impl IntoIterator<Item = &'a Waiting>) {
        for w in waiting {
            let top = self.0.entry(w.stream.clone()).or_default();
            *top = (*top).max(w.after + 1);
        }
    }

    /// The version of `stream` counting its waiting events, over the log's.
    pub fn version(&self, stream: &str, in_log: Option<u64>) -> Option<u64> {
        match (self.0.get(stream).copied(), in_log) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::event;
    use crate::store::ExpectedVersion;

    fn new(n: u64) -> NewEvent {
        event(n)
    }

    #[test]
    fn each_waiting_event_follows_the_one_before_it_in_its_stream() {
        let log = |s: &str| (s == "case-a").then_some(3);
        let batch = vec![
            StreamAppend::new("case-a", ExpectedVersion::Exact(3), vec![new(1), new(2)]),
            StreamAppend::new("case-b", ExpectedVersion::NoStream, vec![new(3)]),
            StreamAppend::new("case-a", ExpectedVersion::Any, vec![new(4)]),
        ];
        let placed = place(batch, log).unwrap();
        let afters: Vec<(&str, u64)> = placed
            .iter()
            .map(|w| (w.stream.as_str(), w.after))
            .collect();
        assert_eq!(
            afters,
            [("case-a", 3), ("case-a", 4), ("case-b", 0), ("case-a", 5)]
        );
        let tops = Tops::of(&placed);
        assert_eq!(tops.version("case-a", Some(3)), Some(6));
        assert_eq!(tops.version("case-b", None), Some(1));
        assert_eq!(tops.version("case-c", Some(2)), Some(2));
    }

    #[test]
    fn a_stale_expectation_waits_for_nothing() {
        let err = place(
            vec![
                StreamAppend::new("case-b", ExpectedVersion::NoStream, vec![new(1)]),
                StreamAppend::new("case-a", ExpectedVersion::Exact(2), vec![new(2)]),
            ],
            |s| (s == "case-a").then_some(3),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Conflict {
                    actual: Some(3),
                    ..
                }
            ),
            "{err}"
        );
    }
}
