//! An integrity check over a whole log, read in bounded batches.

use super::{EventStore, StoreError};
use crate::log::Envelope;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// What a full read of the log found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogReport {
    /// Events read and found good.
    pub events: u64,
    /// Distinct streams.
    pub streams: usize,
    /// The first problem found, if any.
    pub problem: Option<String>,
}

impl LogReport {
    /// The seq of the last good event: everything up to it reads and
    /// checks, so recovery can keep the log up to here.
    pub fn last_good(&self) -> u64 {
        self.events
    }
}

impl fmt::Display for LogReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            None => write!(
                f,
                "{} events in {} streams; seq and versions contiguous, every event id unique",
                self.events, self.streams
            ),
            Some(p) => write!(
                f,
                "good up to event {}; then: {p}. Settings → Recover keeps events 1–{} and exports everything readable",
                self.events, self.events
            ),
        }
    }
}

/// The rules every event of a log keeps, checked one event at a time in
/// log order: `seq` runs 1, 2, 3, …; every stream's versions run 1, 2, 3, …;
/// no event id is used twice; and this build can read the event (known
/// type, schema not newer, old payloads upcast).
#[derive(Default)]
pub struct Checker {
    versions: HashMap<String, u64>,
    ids: HashSet<String>,
    good: u64,
    newer_code: bool,
}

impl Checker {
    /// Check the next event. A good event is counted; a bad one is
    /// described and leaves the checker as it was.
    pub fn check(&mut self, e: &Envelope) -> Result<(), String> {
        let expected_seq = self.good + 1;
        if e.seq != expected_seq {
            return Err(format!("expected event {expected_seq}, found {}", e.seq));
        }
        if self.ids.contains(&e.id) {
            return Err(format!(
                "event id {} at seq {} was already used by an earlier event",
                e.id, e.seq
            ));
        }
        let version = self.versions.get(&e.stream).copied().unwrap_or(0) + 1;
        if e.version != version {
            return Err(format!(
                "stream {} expected version {version}, found {} at seq {}",
                e.stream, e.version, e.seq
            ));
        }
        if let Err(err) = crate::domain::schemas().upcast(e.clone()) {
            use crate::log::upcast::UpcastError;
            self.newer_code = matches!(
                err,
                UpcastError::UnknownType { .. } | UpcastError::SchemaTooNew { .. }
            );
            return Err(err.to_string());
        }
        self.ids.insert(e.id.clone());
        self.versions.insert(e.stream.clone(), version);
        self.good = e.seq;
        Ok(())
    }

    /// Whether the last problem was an event written by a newer build (not
    /// damage: a newer Retrace reads it).
    pub fn newer_code(&self) -> bool {
        self.newer_code
    }

    /// The last good event's seq.
    pub fn good(&self) -> u64 {
        self.good
    }

    /// Distinct streams among the good events.
    pub fn streams(&self) -> usize {
        self.versions.len()
    }

    /// A stream's version as of the last good event.
    pub fn version(&self, stream: &str) -> Option<u64> {
        self.versions.get(stream).copied()
    }

    fn report(&self, problem: Option<String>) -> LogReport {
        LogReport {
            events: self.good,
            streams: self.streams(),
            problem,
        }
    }
}

/// Read the whole log `batch` events at a time and [`Checker::check`] every
/// event. A record that cannot be decoded is a problem found (with where it
/// is), not an error; only a failing store is an error.
pub async fn verify_log<S: EventStore>(store: &S, batch: usize) -> Result<LogReport, StoreError> {
    verify_log_with_progress(store, batch, &mut |_| {}).await
}

/// [`verify_log`], calling `progress` with the events checked after each batch.
pub async fn verify_log_with_progress<S: EventStore>(
    store: &S,
    batch: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<LogReport, StoreError> {
    let mut checker = Checker::default();
    loop {
        progress(checker.good());
        let page = match store.read_all(checker.good() + 1, batch).await {
            Ok(page) => page,
            Err(damaged @ StoreError::Damaged { .. }) => {
                // What lies between the last checked event and the damage
                // still reads: check it too, so the report says exactly
                // where the good log ends.
                let StoreError::Damaged { from, .. } = damaged else {
                    unreachable!()
                };
                let before = from.saturating_sub(checker.good() + 1) as usize;
                let page = store.read_all(checker.good() + 1, before).await?;
                let problem = page
                    .iter()
                    .find_map(|e| checker.check(e).err())
                    .unwrap_or_else(|| damaged_words(&damaged));
                return Ok(checker.report(Some(problem)));
            }
            Err(e) => return Err(e),
        };
        if page.is_empty() {
            return Ok(checker.report(None));
        }
        for e in &page {
            if let Err(problem) = checker.check(e) {
                return Ok(checker.report(Some(problem)));
            }
        }
    }
}

/// A damaged record, said as a problem (without the advice the error adds).
pub fn damaged_words(err: &StoreError) -> String {
    match err {
        StoreError::Damaged { from, to, reason } => {
            format!(
                "the record of {} is damaged ({reason})",
                super::events_at(*from, *to)
            )
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::event;
    use crate::store::memory::MemoryStore;
    use crate::store::ExpectedVersion;
    use futures::executor::block_on;

    #[test]
    fn an_event_this_build_cannot_read_is_reported() {
        let store = MemoryStore::new();
        block_on(store.append("s", ExpectedVersion::Any, vec![event(0)])).unwrap();
        let mut future = event(1);
        future.schema = 99;
        block_on(store.append("s", ExpectedVersion::Any, vec![future])).unwrap();
        let report = block_on(verify_log(&store, 7)).unwrap();
        assert_eq!(report.events, 1);
        assert!(report.problem.unwrap().contains("schema 99"));
    }

    #[test]
    fn a_repeated_event_id_is_reported() {
        let store = MemoryStore::new();
        let mut twice = event(2);
        twice.id = event(1).id;
        block_on(store.append("a", ExpectedVersion::Any, vec![event(1)])).unwrap();
        block_on(store.append("b", ExpectedVersion::Any, vec![twice])).unwrap();
        let report = block_on(verify_log(&store, 10)).unwrap();
        assert_eq!(report.events, 1);
        let problem = report.problem.expect("a duplicate id is a problem");
        assert!(problem.contains("event id ev-1 at seq 2"), "{problem}");
    }

    #[test]
    fn a_healthy_log_verifies() {
        let store = MemoryStore::new();
        for i in 0..30 {
            block_on(store.append(&format!("s{}", i % 4), ExpectedVersion::Any, vec![event(i)]))
                .unwrap();
        }
        let report = block_on(verify_log(&store, 7)).unwrap();
        assert_eq!(
            report,
            LogReport {
                events: 30,
                streams: 4,
                problem: None
            }
        );
    }
}
