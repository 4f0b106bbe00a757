//! An integrity check over a whole log, read in bounded batches.

use super::{EventStore, StoreError};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// What a full read of the log found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogReport {
    /// Events read.
    pub events: u64,
    /// Distinct streams.
    pub streams: usize,
    /// The first problem found, if any.
    pub problem: Option<String>,
}

impl fmt::Display for LogReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            None => write!(
                f,
                "{} events in {} streams; seq and versions contiguous",
                self.events, self.streams
            ),
            Some(p) => write!(f, "problem after {} events: {p}", self.events),
        }
    }
}

/// Read the whole log `batch` events at a time and check that `seq` runs
/// 1, 2, 3, …, every stream's versions run 1, 2, 3, …, and every event can be
/// read by this build (known type, schema not newer, old payloads upcast).
pub async fn verify_log<S: EventStore>(store: &S, batch: usize) -> Result<LogReport, StoreError> {
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut ids: HashSet<String> = HashSet::new();
    let mut expected_seq = 1u64;
    loop {
        let page = store.read_all(expected_seq, batch).await?;
        if page.is_empty() {
            break;
        }
        for e in page {
            let problem = if e.seq != expected_seq {
                Some(format!("expected seq {expected_seq}, found {}", e.seq))
            } else if !ids.insert(e.id.clone()) {
                Some(format!(
                    "event id {} at seq {} was already used by an earlier event",
                    e.id, e.seq
                ))
            } else {
                let v = versions.entry(e.stream.clone()).or_insert(0);
                *v += 1;
                if e.version != *v {
                    Some(format!(
                        "stream {} expected version {}, found {}",
                        e.stream, v, e.version
                    ))
                } else {
                    crate::domain::schemas()
                        .upcast(e)
                        .err()
                        .map(|err| err.to_string())
                }
            };
            if problem.is_some() {
                return Ok(LogReport {
                    events: expected_seq - 1,
                    streams: versions.len(),
                    problem,
                });
            }
            expected_seq += 1;
        }
    }
    Ok(LogReport {
        events: expected_seq - 1,
        streams: versions.len(),
        problem: None,
    })
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
