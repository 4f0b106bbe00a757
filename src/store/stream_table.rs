//! Where every stream stands: its current version and the segments that
//! hold its events. A projection of the log kept by the IndexedDB store, so
//! that a commit checks versions without a database lookup per stream and
//! writes no per-stream records; checkpointed now and then so that loading
//! it reads only the log's tail.

use crate::log::Envelope;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// Checkpoints of a table of n streams are at least n / SPACING events
/// apart (see [`StreamTable::checkpoint_due`]).
pub const SPACING: u64 = 4;

/// One stream's position and the segments holding its events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEntry {
    /// Version of the stream's last event.
    pub version: u64,
    /// `(segment key, first version of this stream in that segment)`, in
    /// order. Most streams (a case's) live in one segment: held inline.
    pub segments: SmallVec<[(u64, u64); 1]>,
}

/// Every stream of a log, as of `head`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamTable {
    head: u64,
    checkpoint_head: u64,
    /// By stream name, boxed to its length: at 10M events and 1.7M streams
    /// the table is most of what a log costs in memory (see
    /// docs/benchmarks.md, "A vast log").
    streams: FxHashMap<Box<str>, StreamEntry>,
}

impl StreamTable {
    /// An empty table (an empty log).
    pub fn new() -> Self {
        Self::default()
    }

    /// The `seq` up to which the table is complete.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Number of streams.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Whether no stream exists.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// The current version of `stream` (None: no such stream).
    pub fn version(&self, stream: &str) -> Option<u64> {
        self.streams.get(stream).map(|e| e.version)
    }

    /// Take in the events of one segment, stored under `segment_key`.
    /// Segments must be applied in log order.
    pub fn apply_segment(&mut self, segment_key: u64, events: &[Envelope]) {
        for e in events {
            let entry = match self.streams.get_mut(e.stream.as_str()) {
                Some(entry) => entry,
                None => self.streams.entry(e.stream.as_str().into()).or_default(),
            };
            if entry.segments.last().map(|s| s.0) != Some(segment_key) {
                entry.segments.push((segment_key, e.version));
            }
            entry.version = e.version;
        }
        if let Some(last) = events.last() {
            self.head = self.head.max(last.seq);
        }
    }

    /// Keys of the segments holding `stream`'s events with version ≥
    /// `from_version`, in order.
    pub fn segments_from(&self, stream: &str, from_version: u64) -> &[(u64, u64)] {
        let Some(entry) = self.streams.get(stream) else {
            return &[];
        };
        // The last segment starting at or before `from_version` holds it.
        let start = entry
            .segments
            .partition_point(|&(_, first)| first <= from_version)
            .saturating_sub(1);
        &entry.segments[start..]
    }

    /// Events appended since the last checkpoint.
    pub fn since_checkpoint(&self) -> u64 {
        self.head - self.checkpoint_head
    }

    /// Whether to checkpoint now: `every` events have passed since the
    /// last checkpoint, and at least a [`SPACING`]th as many as the table
    /// has streams. A checkpoint writes the whole table, so spacing them by
    /// its size keeps their cost per appended event bounded as the log
    /// grows (at 10M events and 1.7M streams, one every 50,000 events wrote
    /// the table 200 times); a tab that opens the log reads at most that
    /// many events past the checkpoint.
    pub fn checkpoint_due(&self, every: u64) -> bool {
        self.since_checkpoint() >= every.max(self.streams.len() as u64 / SPACING)
    }

    /// The table's compact binary form, marking it as checkpointed.
    pub fn checkpoint(&mut self) -> Vec<u8> {
        self.checkpoint_head = self.head;
        postcard::to_allocvec(self).expect("a table always encodes")
    }

    /// Read a checkpoint written by [`StreamTable::checkpoint`]; None if it is
    /// damaged (the caller then rebuilds the table from the log).
    pub fn from_checkpoint(bytes: &[u8]) -> Option<Self> {
        postcard::from_bytes(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::event;

    fn seg(first_seq: u64, items: &[(&str, u64)]) -> Vec<Envelope> {
        items
            .iter()
            .enumerate()
            .map(|(i, (s, v))| {
                event(first_seq + i as u64).into_envelope(first_seq + i as u64, s, *v, 0)
            })
            .collect()
    }

    #[test]
    fn versions_follow_the_segments() {
        let mut t = StreamTable::new();
        t.apply_segment(3, &seg(1, &[("a", 1), ("b", 1), ("a", 2)]));
        t.apply_segment(4, &seg(4, &[("a", 3)]));
        assert_eq!(
            (t.version("a"), t.version("b"), t.version("c")),
            (Some(3), Some(1), None)
        );
        assert_eq!(t.head(), 4);
    }

    #[test]
    fn segments_from_a_version_skip_earlier_segments() {
        let mut t = StreamTable::new();
        t.apply_segment(2, &seg(1, &[("a", 1), ("a", 2)]));
        t.apply_segment(3, &seg(3, &[("a", 3)]));
        t.apply_segment(5, &seg(4, &[("b", 1), ("a", 4)]));
        let keys = |from| {
            t.segments_from("a", from)
                .iter()
                .map(|s| s.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(1), vec![2, 3, 5]);
        assert_eq!(keys(2), vec![2, 3, 5], "version 2 lives in segment 2");
        assert_eq!(keys(3), vec![3, 5]);
        assert_eq!(keys(4), vec![5]);
        assert_eq!(
            keys(9),
            vec![5],
            "past the end: only the last segment is looked at"
        );
        assert!(t.segments_from("zz", 1).is_empty());
    }

    #[test]
    fn a_table_of_many_streams_is_checkpointed_less_often() {
        // 40 streams of one event each: due after 10 events, not 4.
        let mut t = StreamTable::new();
        let names: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
        let items: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 1)).collect();
        t.apply_segment(40, &seg(1, &items));
        t.checkpoint();
        t.apply_segment(49, &seg(41, &items[..9]));
        assert!(
            !t.checkpoint_due(4),
            "9 events since, a quarter of 40 streams is 10"
        );
        t.apply_segment(50, &seg(50, &items[9..10]));
        assert!(t.checkpoint_due(4));
        // A small table: the floor decides.
        let mut small = StreamTable::new();
        small.apply_segment(3, &seg(1, &[("a", 1), ("a", 2), ("a", 3)]));
        assert!(!small.checkpoint_due(4));
        small.apply_segment(4, &seg(4, &[("a", 4)]));
        assert!(small.checkpoint_due(4));
    }

    #[test]
    fn a_checkpoint_written_before_the_compact_table_still_reads() {
        // The table as it was stored before (String keys, Vec segments):
        // users' browsers hold such checkpoints, which must not force a
        // rebuild from the whole log.
        #[derive(Serialize)]
        struct OldEntry {
            version: u64,
            segments: Vec<(u64, u64)>,
        }
        #[derive(Serialize)]
        struct OldTable {
            head: u64,
            checkpoint_head: u64,
            streams: std::collections::HashMap<String, OldEntry>,
        }
        let mut old = OldTable {
            head: 4,
            checkpoint_head: 4,
            streams: std::collections::HashMap::new(),
        };
        old.streams.insert(
            "a".into(),
            OldEntry {
                version: 3,
                segments: vec![(2, 1), (4, 3)],
            },
        );
        old.streams.insert(
            "b".into(),
            OldEntry {
                version: 1,
                segments: vec![(2, 1)],
            },
        );
        let bytes = postcard::to_allocvec(&old).unwrap();
        let mut now = StreamTable::new();
        now.apply_segment(2, &seg(1, &[("a", 1), ("b", 1), ("a", 2)]));
        now.apply_segment(4, &seg(4, &[("a", 3)]));
        now.checkpoint();
        assert_eq!(StreamTable::from_checkpoint(&bytes), Some(now));
    }

    #[test]
    fn a_checkpoint_round_trips_and_resets_the_counter() {
        let mut t = StreamTable::new();
        t.apply_segment(2, &seg(1, &[("a", 1), ("b", 1)]));
        assert_eq!(t.since_checkpoint(), 2);
        let bytes = t.checkpoint();
        assert_eq!(t.since_checkpoint(), 0);
        assert_eq!(StreamTable::from_checkpoint(&bytes), Some(t));
        assert_eq!(
            StreamTable::from_checkpoint(&bytes[..bytes.len() / 2]),
            None
        );
    }
}
