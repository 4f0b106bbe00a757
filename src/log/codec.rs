//! The compact binary form of a segment: the events of one commit.
//!
//! Layout: one format byte ([`SEGMENT_FORMAT`]) followed by the postcard
//! encoding of `Vec<Envelope>`. The format byte lets a later build change the
//! layout and still read old segments, and lets this build refuse a segment
//! written by a newer one instead of misreading it.

use super::Envelope;
use thiserror::Error;

/// The segment layout this build writes.
pub const SEGMENT_FORMAT: u8 = 1;

/// A segment that could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The segment was written in a layout newer than this build knows.
    #[error("a segment starts like storage format {found}, but this version of Retrace reads up to format {known}: the record is damaged, or a newer Retrace wrote it (then open the log there)")]
    FormatTooNew {
        /// The format byte found.
        found: u8,
        /// The newest format this build reads.
        known: u8,
    },
    /// The bytes are not a valid segment.
    #[error("a segment of the log is damaged ({0})")]
    Corrupt(String),
}

impl CodecError {
    /// What is wrong, without saying again that it is a segment.
    pub fn reason(&self) -> String {
        match self {
            CodecError::Corrupt(why) => why.clone(),
            other => other.to_string(),
        }
    }
}

/// Encode the events of one commit.
pub fn encode_segment(events: &[Envelope]) -> Vec<u8> {
    // Sized once: the text fields and at most 32 bytes of numbers and
    // lengths an event (growing a segment of 10,000 events copied it ~5 times).
    let text = |e: &Envelope| {
        e.stream.len()
            + e.id.len()
            + e.event_type.len()
            + e.data.len()
            + e.correlation.as_ref().map_or(0, String::len)
            + e.causation.as_ref().map_or(0, String::len)
    };
    let mut out = Vec::with_capacity(16 + events.iter().map(|e| text(e) + 32).sum::<usize>());
    out.push(SEGMENT_FORMAT);
    postcard::to_extend(events, out).expect("writing to a Vec cannot fail")
}

/// Decode a segment written by [`encode_segment`].
pub fn decode_segment(bytes: &[u8]) -> Result<Vec<Envelope>, CodecError> {
    match bytes.first() {
        None => Err(CodecError::Corrupt("empty segment".into())),
        Some(&SEGMENT_FORMAT) => {
            postcard::from_bytes(&bytes[1..]).map_err(|e| CodecError::Corrupt(e.to_string()))
        }
        Some(&found) if found > SEGMENT_FORMAT => Err(CodecError::FormatTooNew {
            found,
            known: SEGMENT_FORMAT,
        }),
        Some(&found) => Err(CodecError::Corrupt(format!(
            "unknown segment format {found}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> Envelope {
        Envelope {
            seq,
            stream: format!("case-{}", seq % 7),
            version: seq / 7 + 1,
            id: format!("ev-{seq}"),
            event_type: "ActivityRecorded".into(),
            schema: 3,
            occurred_at: 1_700_000_000_000 + seq as i64 * 60_000,
            recorded_at: 1_800_000_000_000,
            correlation: seq.is_multiple_of(2).then(|| "case-1".to_string()),
            causation: None,
            data:
                r#"{"case":"c1","activity":"Triage","resource":"ana","hours":1.5,"attributes":{}}"#
                    .into(),
        }
    }

    #[test]
    fn a_segment_round_trips_every_field() {
        let events: Vec<_> = (1..=50).map(event).collect();
        let bytes = encode_segment(&events);
        assert_eq!(decode_segment(&bytes).unwrap(), events);
    }

    #[test]
    fn the_binary_form_is_smaller_than_json() {
        let events: Vec<_> = (1..=100).map(event).collect();
        let binary = encode_segment(&events).len();
        let json = serde_json::to_vec(&events).unwrap().len();
        assert!(
            binary < json * 3 / 4,
            "binary {binary} bytes vs JSON {json} bytes"
        );
    }

    #[test]
    fn a_segment_from_a_newer_build_is_refused_not_misread() {
        let mut bytes = encode_segment(&[event(1)]);
        bytes[0] = SEGMENT_FORMAT + 1;
        assert_eq!(
            decode_segment(&bytes),
            Err(CodecError::FormatTooNew {
                found: SEGMENT_FORMAT + 1,
                known: SEGMENT_FORMAT
            })
        );
    }

    #[test]
    fn truncated_bytes_are_reported_as_damage() {
        let bytes = encode_segment(&[event(1), event(2)]);
        let err = decode_segment(&bytes[..bytes.len() - 5]).unwrap_err();
        assert!(matches!(err, CodecError::Corrupt(_)), "{err:?}");
        assert!(matches!(decode_segment(&[]), Err(CodecError::Corrupt(_))));
    }
}
