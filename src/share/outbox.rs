//! Sending the outbox to a shared log. Each waiting event goes out with
//! the server sequence of its stream's event it was written after (JetStream
//! checks it as `Nats-Expected-Last-Subject-Sequence`), one event per stream
//! at a time, many streams at once. What the log says of a stream decides:
//! the stream is where the event expects it → send; the event itself is
//! there already (sent before an answer was lost) → done; somebody else's
//! event is there → a conflict, which waits for the user: keep mine (send
//! it after theirs) or drop mine. An event written without a check of its
//! stream (`ExpectedVersion::Any`: predictions, alarms, the model
//! lifecycle) goes after theirs without asking, and a stream's run of such
//! events goes out at once, without an expected sequence — the loop
//! records hundreds of predictions a second into one stream, and a round
//! trip each would hold them back. A lost answer is then found out by the
//! event's id: the stream's next event is looked at after a reconnect, and
//! the server drops a re-sent id it has stored (`Nats-Msg-Id`, within the
//! log's duplicate window of a day).
//!
//! Without I/O: the page reads the log and talks to the server, and tells
//! this what it found.

use crate::log::NewEvent;
use crate::store::outbox::Waiting;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// A stream's unchecked events sent at once, at most.
const UNCHECKED_AT_ONCE: usize = 500;

/// A stream's newest event as known here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Known {
    version: u64,
    seq: u64,
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read the log's events of `stream` from version `after` (two do) and
    /// its version, then call [`Outbox::looked`].
    Look {
        /// The stream.
        stream: String,
        /// The version its first waiting event follows.
        after: u64,
    },
    /// Publish waiting event `key`, expecting its stream's newest event on
    /// the server to be at sequence `expected` (0: none; None: no check,
    /// an unchecked event).
    Send {
        /// The outbox key.
        key: u64,
        /// The expected last subject sequence.
        expected: Option<u64>,
    },
}

/// A stream somebody else wrote to first.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conflict {
    /// The stream.
    pub stream: String,
    /// How many of this browser's events to it wait.
    pub waiting: usize,
    /// The version this browser's first one was written after.
    pub after: u64,
    /// The version the stream is at now, if known.
    pub now: Option<u64>,
}

/// One of the log's events of a stream, as [`Action::Look`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Its version in the stream.
    pub version: u64,
    /// Its seq (the server's sequence).
    pub seq: u64,
    /// Its id.
    pub id: String,
}

/// The outbox as the sync sees it.
#[derive(Debug, Default)]
pub struct Outbox {
    waiting: BTreeMap<u64, Waiting>,
    /// Each stream's waiting keys, in order.
    queues: HashMap<String, BTreeSet<u64>>,
    /// Streams whose next step may have changed.
    dirty: BTreeSet<String>,
    ids: HashMap<String, u64>,
    known: HashMap<String, Known>,
    busy: HashSet<String>,
    /// Per busy stream, its events sent and not yet answered.
    flying: HashMap<String, usize>,
    /// Streams whose first event of a unit (an import) is stored: the
    /// unit's later events to them follow without a check.
    claimed: HashMap<String, String>,
    conflicts: BTreeMap<String, Conflict>,
    rebase: HashSet<String>,
    /// Per unit: its events still waiting, the one closing it aside.
    open_units: HashMap<String, usize>,
    /// Events the server stored since this page opened.
    pub sent: u64,
}

/// What an answer or a look changed in the stored outbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Keys to delete: stored on the server.
    pub stored: Vec<u64>,
    /// Entries to rewrite (a kept conflict's events, now after theirs).
    pub rewritten: Vec<(u64, Waiting)>,
}

impl Outbox {
    /// Take in a waiting event (one already known is ignored).
    pub fn add(&mut self, key: u64, waiting: Waiting) {
        if self.waiting.contains_key(&key) {
            return;
        }
        self.ids.insert(waiting.event.id.clone(), key);
        self.queues
            .entry(waiting.stream.clone())
            .or_default()
            .insert(key);
        self.dirty.insert(waiting.stream.clone());
        if let (Some(unit), false) = (&waiting.unit, waiting.closes) {
            *self.open_units.entry(unit.clone()).or_default() += 1;
        }
        self.waiting.insert(key, waiting);
    }

    /// The highest key known.
    pub fn last_key(&self) -> Option<u64> {
        self.waiting.keys().next_back().copied()
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The streams in conflict.
    pub fn conflicts(&self) -> impl Iterator<Item = &Conflict> {
        self.conflicts.values()
    }

    /// A waiting event.
    pub fn get(&self, key: u64) -> Option<&Waiting> {
        self.waiting.get(&key)
    }

    fn first_of(&self, stream: &str) -> Option<(u64, &Waiting)> {
        let key = *self.queues.get(stream)?.first()?;
        Some((key, self.waiting.get(&key)?))
    }

    fn keys_of(&self, stream: &str) -> Vec<u64> {
        self.queues
            .get(stream)
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Whether an event with a key in `keys` still waits.
    pub fn waits_in(&self, keys: std::ops::Range<u64>) -> bool {
        self.waiting.range(keys).next().is_some()
    }

    fn remove(&mut self, key: u64) -> Option<Waiting> {
        let w = self.waiting.remove(&key)?;
        self.ids.remove(&w.event.id);
        if let Some(q) = self.queues.get_mut(&w.stream) {
            q.remove(&key);
            if q.is_empty() {
                self.queues.remove(&w.stream);
            }
        }
        self.dirty.insert(w.stream.clone());
        if let (Some(unit), false) = (&w.unit, w.closes) {
            if let Some(n) = self.open_units.get_mut(unit) {
                *n -= 1;
                if *n == 0 {
                    self.open_units.remove(unit);
                    self.claimed.retain(|_, u| u != unit);
                    // Its closing event may go now.
                    let closing = self
                        .waiting
                        .values()
                        .find(|c| c.closes && c.unit.as_ref() == Some(unit))
                        .map(|c| c.stream.clone());
                    self.dirty.extend(closing);
                }
            }
        }
        Some(w)
    }

    fn conflict(&mut self, stream: &str, now: Option<u64>) {
        let waiting = self.queues.get(stream).map_or(0, |q| q.len());
        if let Some((_, first)) = self.first_of(stream) {
            if !first.checked {
                // Written without a check: it goes after theirs.
                self.known.remove(stream);
                self.rebase.insert(stream.to_owned());
                self.dirty.insert(stream.to_owned());
                return;
            }
            let after = first.after;
            self.conflicts.insert(
                stream.to_owned(),
                Conflict {
                    stream: stream.to_owned(),
                    waiting,
                    after,
                    now,
                },
            );
        }
    }

    /// What to do now: one action per stream that is not already being
    /// looked at, sent, or in conflict.
    pub fn plan(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        for stream in std::mem::take(&mut self.dirty) {
            if self.busy.contains(&stream) || self.conflicts.contains_key(&stream) {
                continue;
            }
            let Some((key, first)) = self.first_of(&stream) else {
                continue;
            };
            if first.closes
                && first
                    .unit
                    .as_ref()
                    .is_some_and(|u| self.open_units.contains_key(u))
            {
                // A unit closes once the rest of it is stored.
                continue;
            }
            let (key, after) = (key, first.after);
            let claimed = first.unit.is_some() && first.unit == self.claimed.get(&stream).cloned();
            let unchecked = !first.checked || claimed;
            let action = match self.known.get(&stream) {
                Some(_) if unchecked && !self.rebase.contains(&stream) => {
                    let run = self.unchecked_run(&stream, claimed);
                    self.flying.insert(stream.clone(), run.len());
                    self.busy.insert(stream);
                    actions.extend(run.into_iter().map(|key| Action::Send {
                        key,
                        expected: None,
                    }));
                    continue;
                }
                Some(k) if k.version == after && !self.rebase.contains(&stream) => Action::Send {
                    key,
                    expected: Some(k.seq),
                },
                Some(k) if k.version > after && !self.rebase.contains(&stream) => {
                    let now = k.version;
                    self.conflict(&stream, Some(now));
                    continue;
                }
                _ => Action::Look {
                    stream: stream.clone(),
                    after,
                },
            };
            if matches!(action, Action::Send { .. }) {
                self.flying.insert(stream.clone(), 1);
            }
            self.busy.insert(stream);
            actions.push(action);
        }
        actions
    }

    /// The stream's unchecked events from its first on, up to a checked
    /// one or a unit's closing event that must wait. `claimed`: the stream's
    /// events of the first one's unit count as unchecked — nobody else can
    /// have written after them, as every reader holds a unit back until it
    /// is whole, so no one has seen them to write after.
    fn unchecked_run(&self, stream: &str, claimed: bool) -> Vec<u64> {
        let Some(queue) = self.queues.get(stream) else {
            return Vec::new();
        };
        let unit = queue
            .first()
            .and_then(|k| self.waiting.get(k))
            .and_then(|w| w.unit.clone());
        queue
            .iter()
            .map_while(|k| {
                let w = self.waiting.get(k)?;
                let held = w.closes
                    && w.unit
                        .as_ref()
                        .is_some_and(|u| self.open_units.contains_key(u));
                let free = !w.checked || (claimed && w.unit == unit);
                (free && !held).then_some(*k)
            })
            .take(UNCHECKED_AT_ONCE)
            .collect()
    }

    /// One of the stream's events sent was answered (or came back).
    fn landed(&mut self, stream: &str) {
        let left = self.flying.get_mut(stream).map(|n| {
            *n = n.saturating_sub(1);
            *n
        });
        if left.unwrap_or(0) == 0 {
            self.flying.remove(stream);
            self.busy.remove(stream);
        }
    }

    /// What the log holds of `stream` (as asked by [`Action::Look`]): its
    /// `version`, and its events from the looked-for version on.
    pub fn looked(&mut self, stream: &str, version: u64, events: &[Seen]) -> Changes {
        self.busy.remove(stream);
        let mut changes = Changes::default();
        let Some((key, first)) = self.first_of(stream) else {
            return changes;
        };
        let (after, id) = (first.after, first.event.id.clone());
        let at = |v: u64| events.iter().find(|e| e.version == v);
        // Stored before (an answer lost): done, look again for the next.
        if let Some(next) = at(after + 1) {
            if next.id == id {
                self.remove(key);
                self.sent += 1;
                changes.stored.push(key);
                return changes;
            }
        }
        let seq_at = |v: u64| {
            if v == 0 {
                Some(0)
            } else {
                at(v).map(|e| e.seq)
            }
        };
        if self.rebase.remove(stream) {
            // Kept after a conflict: this browser's events follow theirs.
            let Some(seq) = seq_at(version) else {
                self.rebase.insert(stream.to_owned());
                return changes;
            };
            let mut next = version;
            for k in self.keys_of(stream) {
                if let Some(w) = self.waiting.get_mut(&k) {
                    w.after = next;
                    next += 1;
                    changes.rewritten.push((k, w.clone()));
                }
            }
            self.known.insert(stream.to_owned(), Known { version, seq });
            self.dirty.insert(stream.to_owned());
            return changes;
        }
        match seq_at(after) {
            Some(seq) if version == after => {
                self.known.insert(stream.to_owned(), Known { version, seq });
                self.dirty.insert(stream.to_owned());
            }
            _ => self.conflict(stream, Some(version)),
        }
        changes
    }

    /// The server stored waiting event `key` at `seq`.
    pub fn stored(&mut self, key: u64, seq: u64) -> Changes {
        let Some(w) = self.remove(key) else {
            return Changes::default();
        };
        self.landed(&w.stream);
        self.sent += 1;
        if let Some(unit) = &w.unit {
            self.claimed.insert(w.stream.clone(), unit.clone());
        }
        let k = self
            .known
            .entry(w.stream)
            .or_insert(Known { version: 0, seq: 0 });
        if seq > k.seq {
            *k = Known {
                version: w.after + 1,
                seq,
            };
        }
        Changes {
            stored: vec![key],
            rewritten: vec![],
        }
    }

    /// The server refused waiting event `key`: its stream moved on under
    /// somebody else's event.
    pub fn refused(&mut self, key: u64) {
        if let Some(w) = self.waiting.get(&key) {
            let stream = w.stream.clone();
            self.landed(&stream);
            self.known.remove(&stream);
            self.conflict(&stream, None);
        }
    }

    /// Sending `key` failed for another reason: try it again later.
    pub fn failed(&mut self, key: u64) {
        if let Some(w) = self.waiting.get(&key) {
            let stream = w.stream.clone();
            self.landed(&stream);
            self.known.remove(&stream);
            self.dirty.insert(stream);
        }
    }

    /// An event of the shared log reached this browser. Returns the key of
    /// this browser's waiting copy of it, now stored, if there is one: the
    /// same id in the same stream saying the same thing. An event that only
    /// shares its id (somebody published it first) is not ours.
    pub fn arrived(&mut self, stream: &str, seq: u64, event: &NewEvent) -> Option<u64> {
        if let Some(k) = self.known.get_mut(stream) {
            if seq > k.seq {
                k.version += 1;
                k.seq = seq;
                if self.queues.contains_key(stream) {
                    self.dirty.insert(stream.to_owned());
                }
            }
        }
        let key = *self.ids.get(&event.id)?;
        let mine = self.waiting.get(&key)?;
        let same = mine.stream == stream
            && mine.event.event_type == event.event_type
            && mine.event.schema == event.schema
            && mine.event.occurred_at == event.occurred_at
            && mine.event.data == event.data;
        if !same {
            return None;
        }
        let w = self.remove(key)?;
        self.sent += 1;
        if let Some(unit) = &w.unit {
            self.claimed.insert(w.stream.clone(), unit.clone());
        }
        // An answer may still come for it: it finds nothing then.
        self.landed(&w.stream);
        Some(key)
    }

    /// Waiting event `key` cannot be sent at all (larger than any server
    /// takes): it leaves the outbox instead of being sent again for ever.
    pub fn unsendable(&mut self, key: u64) -> Option<Waiting> {
        let w = self.remove(key)?;
        self.landed(&w.stream);
        Some(w)
    }

    /// The user keeps their events of a conflicting stream: they go after
    /// the others' (looked up afresh).
    pub fn keep(&mut self, stream: &str) {
        if self.conflicts.remove(stream).is_some() {
            self.known.remove(stream);
            self.rebase.insert(stream.to_owned());
            self.dirty.insert(stream.to_owned());
        }
    }

    /// The user drops their events of a conflicting stream: the keys to delete.
    pub fn drop_stream(&mut self, stream: &str) -> Vec<u64> {
        self.conflicts.remove(stream);
        self.known.remove(stream);
        let keys = self.keys_of(stream);
        for k in &keys {
            self.remove(*k);
        }
        keys
    }

    /// The connection was lost: whatever was being sent or looked at is
    /// asked about afresh on the next connection.
    pub fn reconnected(&mut self) {
        self.busy.clear();
        self.flying.clear();
        self.known.clear();
        self.dirty.extend(self.queues.keys().cloned());
    }
}

#[cfg(test)]
mod tests;
