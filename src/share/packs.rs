//! Packs: the older part of a shared log, kept on the server a second time
//! as large objects, so that a browser joining a long log reads it in a few
//! hundred big messages instead of one message per event.
//!
//! A pack holds the events `from..=to` of the log, each with its sequence
//! and Retrace stream, exactly as the browsers that followed the stream
//! stored them: in postcard (the compact binary form the log's own
//! segments use; read several times faster than JSON), gzipped. It lives in a JetStream object store bucket of
//! its own (`retrace_packs_<log>`, NATS's object store layout, so `nats
//! object ls` lists it). The stream stays the truth: a browser uses a pack
//! only when its bytes match their SHA-256 and its first and last events
//! are the stream's messages at `from` and `to` (same ids); otherwise it
//! reads the stream as before.
//!
//! A pack ends only where no import was half received: a browser packs up
//! to the end of one of its own commits of received events, and it commits
//! only while no import (unit) is open. So a browser that joins from packs
//! never shows part of an import either.

use super::jetstream::subject_token;
use super::objects::{self, Meta};
use crate::log::{Envelope, NewEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A pack of a shared log's events, made by the engine from its log
/// (it lives here, below the engine, because the sync sends it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackMade {
    /// Its bytes, as stored on the server.
    pub bytes: Vec<u8>,
    /// Their SHA-256.
    pub sha256: Vec<u8>,
    /// Its first event's id.
    pub first_id: String,
    /// Its last event's id.
    pub last_id: String,
}

/// Events per pack, at least (a pack ends at the first safe place after).
pub const PACK_EVENTS: u64 = 50_000;

/// A pack holds at most this many times [`PACK_EVENTS`]: a browser that
/// knows no safe place closer to the last pack leaves the packing to one
/// that does.
pub const PACK_SPAN: u64 = 4;

const FROM: &str = "retrace-from";
const TO: &str = "retrace-to";
const FIRST: &str = "retrace-first-id";
const LAST: &str = "retrace-last-id";

/// The bucket of shared log `log`'s packs.
pub fn bucket(log: &str) -> String {
    format!("retrace_packs_{}", subject_token(log))
}

/// The object name of the pack of events `from..=to` (sorts by `from`).
pub fn name(from: u64, to: u64) -> String {
    format!("events-{from:012}-{to:012}")
}

/// The events a pack's object name says it holds.
pub fn range_of(name: &str) -> Option<(u64, u64)> {
    let (from, to) = name.strip_prefix("events-")?.split_once('-')?;
    let (from, to): (u64, u64) = (from.parse().ok()?, to.parse().ok()?);
    (from >= 1 && from <= to).then_some((from, to))
}

/// One event of a pack.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    seq: u64,
    stream: String,
    event: NewEvent,
}

/// An event read from a pack: its sequence, its Retrace stream, the event.
pub type Packed = (u64, String, NewEvent);

/// The events of a pack, unzipped.
pub fn encode(events: &[Envelope]) -> Vec<u8> {
    let lines: Vec<Line> = events
        .iter()
        .map(|e| {
            let seq = e.seq;
            let (stream, event) = e.clone().into_new_event();
            Line { seq, stream, event }
        })
        .collect();
    // Plain data in memory cannot fail to serialise.
    postcard::to_allocvec(&lines).expect("a pack serialises")
}

/// Read the unzipped pack `from..=to`, keeping the events after `after`:
/// every event must be there, in order.
pub fn decode(bytes: &[u8], from: u64, to: u64, after: u64) -> Result<Vec<Packed>, String> {
    let lines: Vec<Line> = postcard::from_bytes(bytes)
        .map_err(|e| format!("pack {} is unreadable ({e})", name(from, to)))?;
    let mut expected = from;
    for line in &lines {
        if line.seq != expected {
            return Err(format!(
                "pack {} holds event {} where {expected} belongs",
                name(from, to),
                line.seq
            ));
        }
        expected += 1;
    }
    if expected != to + 1 {
        return Err(format!(
            "pack {} ends at event {}",
            name(from, to),
            expected - 1
        ));
    }
    Ok(lines
        .into_iter()
        .filter(|l| l.seq > after)
        .map(|l| (l.seq, l.stream, l.event))
        .collect())
}

/// The pack of `events` (contiguous, as read from the log), as stored on
/// the server: [`encode`]d and gzipped.
pub fn pack(events: &[Envelope]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into memory cannot fail.
    gz.write_all(&encode(events)).expect("gzip into memory");
    gz.finish().expect("gzip into memory")
}

/// Read pack `from..=to` as stored on the server ([`pack`]), keeping the
/// events after `after`.
pub fn unpack(bytes: &[u8], from: u64, to: u64, after: u64) -> Result<Vec<Packed>, String> {
    unpack_within(bytes, (from, to), after, MAX_UNPACKED)
}

/// [`unpack`], refusing a pack that unzips to more than `limit` bytes.
pub fn unpack_within(
    bytes: &[u8],
    (from, to): (u64, u64),
    after: u64,
    limit: u64,
) -> Result<Vec<Packed>, String> {
    use std::io::Read;
    let mut plain = Vec::with_capacity(bytes.len().saturating_mul(8).min(limit as usize));
    // Inflated with a limit: a small pack that unzips to gigabytes (a
    // gzip bomb) is refused instead of taking the worker's memory.
    flate2::read::GzDecoder::new(bytes)
        .take(limit + 1)
        .read_to_end(&mut plain)
        .map_err(|e| format!("pack {} cannot be unzipped ({e})", name(from, to)))?;
    if plain.len() as u64 > limit {
        return Err(format!(
            "pack {} unzips to more than {} bytes: not used",
            name(from, to),
            limit
        ));
    }
    decode(&plain, from, to, after)
}

/// The most a pack may unzip to (a pack holds at most about 200,000
/// events of a few hundred bytes).
pub const MAX_UNPACKED: u64 = 1 << 30;

/// How many events of a pack, besides its ends, a joining browser compares
/// with the log's stream, at places the packer cannot know.
pub const SAMPLES: usize = 32;

/// Whether the pack's events agree with the stream's at the sampled places:
/// `expected` holds, for each sampled sequence, the event the stream's
/// message there is (through the gate, so a refusal is compared as one).
/// The time an event was stored is not compared (the server's `GET` does
/// not give it as the consumer does).
pub fn agrees(events: &[Packed], expected: &[Packed]) -> Result<(), String> {
    let first = events.first().map_or(0, |e| e.0);
    for (seq, stream, event) in expected {
        let Some((_, s, e)) = seq.checked_sub(first).and_then(|i| events.get(i as usize)) else {
            continue;
        };
        let same = s == stream
            && e.id == event.id
            && e.event_type == event.event_type
            && e.schema == event.schema
            && e.occurred_at == event.occurred_at
            && e.correlation == event.correlation
            && e.causation == event.causation
            && e.data == event.data;
        if !same {
            return Err(format!(
                "the pack's event {seq} is not the log's on the server: not used"
            ));
        }
    }
    Ok(())
}

/// `n` distinct places strictly inside `from..=to`, drawn with `random`
/// (uniform in 0..1): where a joiner compares a pack with the stream.
pub fn sample_places(from: u64, to: u64, n: usize, mut random: impl FnMut() -> f64) -> Vec<u64> {
    let inner = to.saturating_sub(from).saturating_sub(1);
    if inner == 0 {
        return Vec::new();
    }
    let mut places = std::collections::BTreeSet::new();
    for _ in 0..n * 4 {
        if places.len() >= n.min(inner as usize) {
            break;
        }
        let k = ((random() * inner as f64) as u64).min(inner - 1);
        places.insert(from + 1 + k);
    }
    places.into_iter().collect()
}

/// What a pack's description says of it: its place in the log and its
/// bytes (their length and SHA-256, as any object's).
pub struct Described<'a> {
    /// The shared log.
    pub log: &'a str,
    /// Where its chunks are.
    pub nuid: &'a str,
    /// Its length in bytes.
    pub size: usize,
    /// Their SHA-256.
    pub sha256: &'a [u8],
    /// Its first and last events' sequences.
    pub range: (u64, u64),
    /// Its first and last events' ids.
    pub ids: (&'a str, &'a str),
}

/// A pack's description.
pub fn describe(d: Described) -> Meta {
    let (from, to) = d.range;
    Meta {
        name: name(from, to),
        bucket: bucket(d.log),
        nuid: d.nuid.to_owned(),
        size: d.size as u64,
        chunks: d.size.div_ceil(objects::CHUNK) as u32,
        digest: objects::digest_of(d.sha256),
        metadata: BTreeMap::from([
            (FROM.to_owned(), from.to_string()),
            (TO.to_owned(), to.to_string()),
            (FIRST.to_owned(), d.ids.0.to_owned()),
            (LAST.to_owned(), d.ids.1.to_owned()),
        ]),
    }
}

/// What a pack's description says it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holds {
    /// Its first event's sequence.
    pub from: u64,
    /// Its last event's sequence.
    pub to: u64,
    /// Its first event's id.
    pub first_id: String,
    /// Its last event's id.
    pub last_id: String,
}

/// Read what description `meta` says its pack holds (and that its name
/// agrees).
pub fn holds(meta: &Meta) -> Result<Holds, String> {
    let get = |k: &str| {
        meta.metadata
            .get(k)
            .cloned()
            .ok_or_else(|| format!("pack {} is described without {k}", meta.name))
    };
    let number = |k: &str| -> Result<u64, String> {
        get(k)?
            .parse()
            .map_err(|_| format!("pack {}'s {k} is not a number", meta.name))
    };
    let h = Holds {
        from: number(FROM)?,
        to: number(TO)?,
        first_id: get(FIRST)?,
        last_id: get(LAST)?,
    };
    if range_of(&meta.name) != Some((h.from, h.to)) {
        return Err(format!(
            "pack {} is described as events {}..{}",
            meta.name, h.from, h.to
        ));
    }
    Ok(h)
}

/// The packs to read, in order, for a browser holding events up to
/// `after`: from the packs on the server (`ranges`), each the one reaching
/// furthest among those that go on from where the last ends.
pub fn chain(ranges: &[(u64, u64)], after: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = after;
    loop {
        let next = ranges
            .iter()
            .filter(|(from, to)| *from <= at + 1 && *to > at)
            .max_by_key(|(_, to)| *to);
        match next {
            Some(&(from, to)) => {
                out.push((from, to));
                at = to;
            }
            None => return out,
        }
    }
}

/// Where the packs on the server end: the last event of the chain from
/// the log's start (0: none).
pub fn packed_to(ranges: &[(u64, u64)]) -> u64 {
    chain(ranges, 0).last().map_or(0, |(_, to)| *to)
}

/// The end of the next pack this browser should make, if one is due: the
/// first safe place (the end of one of its commits of received events,
/// `safe`, ascending) at least `size` events past `packed`, and not past
/// `head`. This browser knows every safe place after `known_from` (it has
/// received every event since); a pack starting before that would end at
/// the first safe place this browser happens to know, so it is made only
/// if that keeps it within [`PACK_SPAN`] packs' size — else a browser that
/// knows closer places packs those events.
pub fn due(packed: u64, safe: &[u64], head: u64, size: u64, known_from: u64) -> Option<u64> {
    let size = size.max(1);
    safe.iter()
        .copied()
        .find(|s| *s >= packed + size && *s <= head)
        .filter(|s| packed >= known_from || s - packed <= size * PACK_SPAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(seq: u64) -> Envelope {
        Envelope {
            seq,
            stream: format!("case-{}", seq % 3),
            version: seq / 3 + 1,
            id: format!("ev-{seq}"),
            event_type: "ActivityCompleted".into(),
            schema: 1,
            occurred_at: 1_700_000_000_000 + seq as i64,
            recorded_at: 1_800_000_000_000 + seq as i64,
            correlation: seq.is_multiple_of(2).then(|| "c".to_owned()),
            causation: None,
            data: format!("{{\"n\":{seq},\"s\":\"a \\\"quoted\\\" line\\nbreak\"}}"),
        }
    }

    #[test]
    fn a_pack_with_an_edited_middle_is_found_where_it_is_sampled() {
        let events: Vec<Envelope> = (1..=100).map(envelope).collect();
        let truth = decode(&encode(&events), 1, 100, 0).unwrap();
        let mut forged = events.clone();
        forged[49].data = r#"{"n":"changed"}"#.into();
        let forged = decode(&encode(&forged), 1, 100, 0).unwrap();
        let at = |seq: u64| truth[(seq - 1) as usize].clone();
        assert_eq!(
            agrees(&forged, &[at(10), at(90)]),
            Ok(()),
            "not sampled there"
        );
        let found = agrees(&forged, &[at(10), at(50)]).unwrap_err();
        assert!(found.contains("event 50"), "{found}");
        assert_eq!(agrees(&truth, &[at(50)]), Ok(()));
        // Places: distinct, inside the ends, as many as asked where there is room.
        let mut r = crate::util::Rng::new(3);
        let places = sample_places(1, 100, 32, || r.unit());
        assert_eq!(places.len(), 32);
        assert!(places.iter().all(|p| (2..100).contains(p)));
        assert_eq!(sample_places(5, 6, 32, || 0.5), Vec::<u64>::new());
        assert_eq!(sample_places(5, 8, 32, || 0.99).len(), 1);
    }

    #[test]
    fn a_pack_that_unzips_past_the_limit_is_refused() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 8 << 20]).unwrap();
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 64 << 10, "a small file: {} bytes", bomb.len());
        let e = unpack_within(&bomb, (1, 10), 0, 1 << 20).unwrap_err();
        assert!(e.contains("unzips to more than"), "{e}");
    }

    #[test]
    fn a_pack_gives_back_the_events_it_was_made_of() {
        let events: Vec<Envelope> = (11..=20).map(envelope).collect();
        let bytes = encode(&events);
        let back = decode(&bytes, 11, 20, 0).unwrap();
        assert_eq!(back.len(), 10);
        for ((seq, stream, event), e) in back.iter().zip(&events) {
            assert_eq!((*seq, stream), (e.seq, &e.stream));
            assert_eq!(event.id, e.id);
            assert_eq!(event.data, e.data);
            assert_eq!(event.correlation, e.correlation);
            // The time it was stored travels, so every replica agrees.
            assert_eq!(event.recorded_at, Some(e.recorded_at));
        }
        // Only what comes after a browser's head.
        let tail = decode(&bytes, 11, 20, 15).unwrap();
        assert_eq!(
            tail.iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![16, 17, 18, 19, 20]
        );
    }

    #[test]
    fn a_damaged_or_incomplete_pack_is_refused() {
        let events: Vec<Envelope> = (1..=5).map(envelope).collect();
        let bytes = encode(&events);
        // Cut short.
        assert!(decode(&bytes[..bytes.len() - 20], 1, 5, 0).is_err());
        // An event missing in the middle.
        let gap: Vec<Envelope> = [1, 3, 4, 5].into_iter().map(envelope).collect();
        assert!(decode(&encode(&gap), 1, 5, 0)
            .unwrap_err()
            .contains("event 3 where 2"));
        // A pack named for other events.
        assert!(decode(&bytes, 2, 6, 0).is_err());
        assert!(decode(&bytes, 1, 4, 0)
            .unwrap_err()
            .contains("ends at event 5"));
        // Garbage.
        assert!(decode(b"\xff\xff\xff", 1, 5, 0)
            .unwrap_err()
            .contains("unreadable"));
    }

    #[test]
    fn a_description_names_its_events_and_is_checked_against_its_name() {
        let events: Vec<Envelope> = (101..=200).map(envelope).collect();
        let bytes = pack(&events);
        let sha = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
        let meta = describe(Described {
            log: "team log",
            nuid: "n1",
            size: bytes.len(),
            sha256: &sha,
            range: (101, 200),
            ids: ("ev-101", "ev-200"),
        });
        assert_eq!(meta.name, "events-000000000101-000000000200");
        assert_eq!(meta.bucket, "retrace_packs_team_20log");
        assert!(meta.check(&bytes).is_ok());
        let h = holds(&meta).unwrap();
        assert_eq!((h.from, h.to), (101, 200));
        assert_eq!(
            (h.first_id.as_str(), h.last_id.as_str()),
            ("ev-101", "ev-200")
        );
        let mut lying = meta.clone();
        lying.metadata.insert(TO.into(), "300".into());
        assert!(holds(&lying).is_err());
        assert_eq!(range_of(&meta.name), Some((101, 200)));
        assert_eq!(range_of("events-5-4"), None);
        assert_eq!(range_of("model-1"), None);
    }

    #[test]
    fn a_joining_browser_reads_the_packs_that_reach_furthest() {
        let on_server = [(1, 100), (101, 250), (101, 180), (251, 300), (400, 500)];
        assert_eq!(chain(&on_server, 0), vec![(1, 100), (101, 250), (251, 300)]);
        // A browser holding part of the log starts inside a pack.
        assert_eq!(chain(&on_server, 120), vec![(101, 250), (251, 300)]);
        assert_eq!(chain(&on_server, 300), vec![]);
        assert_eq!(packed_to(&on_server), 300);
        assert_eq!(packed_to(&[(2, 10)]), 0);
    }

    #[test]
    fn a_pack_is_due_at_the_first_safe_place_far_enough_on() {
        // Commits of received events ended at these places.
        let safe = [8_000, 16_000, 49_000, 50_500, 58_000];
        assert_eq!(due(0, &safe, 60_000, 50_000, 0), Some(50_500));
        // Not past what this browser holds.
        assert_eq!(due(0, &safe, 50_000, 50_000, 0), None);
        // Not when the last pack ends too close.
        assert_eq!(due(10_000, &safe, 60_000, 50_000, 0), None);
        // A browser that saw every event since the last pack packs up to
        // the end of a large import, however large.
        assert_eq!(due(0, &[900_000], 900_000, 50_000, 0), Some(900_000));
        // One that only knows places far after it leaves them to others.
        assert_eq!(due(0, &[900_000], 900_000, 50_000, 850_000), None);
        assert_eq!(due(0, &[150_000], 150_000, 50_000, 100_000), Some(150_000));
    }
}
