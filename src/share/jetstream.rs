//! JetStream's API as Retrace uses it: requests are JSON published to
//! `$JS.API.…` subjects, answers come back to the requester's inbox; a
//! publish to a stream's subject is answered with an acknowledgement
//! carrying the stream sequence — the shared log's `seq` in every browser.
//! A shared log is one stream; each of Retrace's streams (`case-…`,
//! `models`, …) is one subject under it, so JetStream checks the expected
//! version per stream (`Nats-Expected-Last-Subject-Sequence`) and drops a
//! repeated event id (`Nats-Msg-Id`) inside its duplicate window.

use super::proto::Headers;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The header that makes a repeated publish of one event a no-op.
pub const MSG_ID: &str = "Nats-Msg-Id";

/// The largest message of a shared log: the server's default
/// `max_payload`. A Retrace event is a few hundred bytes.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// The header that makes a write conflict instead of interleaving.
pub const EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";
/// JetStream's error code for a failed expected-sequence check.
pub const WRONG_LAST_SEQUENCE: u32 = 10071;
/// JetStream's code for a stream that does not exist.
pub const STREAM_NOT_FOUND: u32 = 10059;
/// JetStream's code for "no message found" (a get of a subject without one).
pub const NO_MESSAGE: u32 = 10037;

/// The stream that holds the shared log `log`.
pub fn stream_name(log: &str) -> String {
    format!("RETRACE_{}", subject_token(log).to_ascii_uppercase())
}

/// The subject of Retrace stream `stream` in shared log `log`.
pub fn subject(log: &str, stream: &str) -> String {
    format!("retrace.{}.{}", subject_token(log), subject_token(stream))
}

/// Whether `subject` is [`subject`]`(log, stream)`, without building it
/// (the gate asks this of every message).
pub fn is_subject(subject: &str, log: &str, stream: &str) -> bool {
    let rest = subject.strip_prefix("retrace.").unwrap_or("");
    let Some(rest) = strip_token(rest, log) else {
        return false;
    };
    rest.strip_prefix('.')
        .and_then(|rest| strip_token(rest, stream))
        .is_some_and(str::is_empty)
}

/// `s` after [`subject_token`]`(name)`, if it begins so.
fn strip_token<'a>(mut s: &'a str, name: &str) -> Option<&'a str> {
    if name.is_empty() {
        return s.strip_prefix('_');
    }
    for b in name.bytes() {
        s = if b.is_ascii_alphanumeric() || b == b'-' {
            s.strip_prefix(b as char)?
        } else {
            let hex = s.strip_prefix('_')?;
            let (digits, after) = (hex.get(..2)?, hex.get(2..)?);
            const HEX: &[u8; 16] = b"0123456789abcdef";
            if digits.as_bytes() != [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]] {
                return None;
            }
            after
        };
    }
    Some(s)
}

/// Every subject of shared log `log`.
pub fn subjects(log: &str) -> String {
    format!("retrace.{}.*", subject_token(log))
}

/// A name made safe as one subject token (and part of a stream name):
/// letters, digits and `-` stay, every other byte becomes `_` and two hex
/// digits — so two names never share a token.
pub fn subject_token(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// A stream's configuration, as far as Retrace sets it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamConfig {
    /// The stream's name.
    pub name: String,
    /// The subjects it captures.
    pub subjects: Vec<String>,
    /// `file` (durable) or `memory`.
    pub storage: String,
    /// Copies kept across a cluster (1 on a single server, 3 in production).
    pub num_replicas: u32,
    /// How long `Nats-Msg-Id`s are remembered, nanoseconds.
    pub duplicate_window: u64,
    /// Messages may be read by sequence without a consumer.
    #[serde(default)]
    pub allow_direct: bool,
    /// Atomic batch publish (nats-server 2.12 and later).
    #[serde(default)]
    pub allow_atomic: bool,
    /// No message may be deleted: the log is append-only on the server too.
    #[serde(default)]
    pub deny_delete: bool,
    /// The stream may not be purged.
    #[serde(default)]
    pub deny_purge: bool,
    /// The largest message the stream stores, bytes (-1: the server's).
    #[serde(default = "unlimited")]
    pub max_msg_size: i64,
    /// The stream's metadata: an encrypted log's salt and key check
    /// ([`super::seal`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

fn unlimited() -> i64 {
    -1
}

impl StreamConfig {
    /// The stream of shared log `log`, with `replicas` copies.
    pub fn for_log(log: &str, replicas: u32) -> StreamConfig {
        StreamConfig {
            name: stream_name(log),
            subjects: vec![subjects(log)],
            storage: "file".into(),
            num_replicas: replicas,
            // A day: an event re-sent after a day offline would be a
            // duplicate the window no longer sees — the outbox keeps the
            // stream's expected version as well, which still refuses it.
            duplicate_window: 24 * 3600 * 1_000_000_000,
            allow_direct: true,
            allow_atomic: true,
            deny_delete: true,
            deny_purge: true,
            max_msg_size: MAX_MESSAGE_BYTES as i64,
            metadata: BTreeMap::new(),
        }
    }
}

/// An error JetStream answered with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{description} (JetStream error {err_code})")]
pub struct ApiError {
    /// HTTP-like status.
    pub code: u32,
    /// JetStream's own code (10071: wrong last sequence).
    #[serde(default)]
    pub err_code: u32,
    /// In words.
    #[serde(default)]
    pub description: String,
}

/// The acknowledgement of a publish to a stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubAck {
    /// The stream that stored it.
    pub stream: String,
    /// Its sequence in the stream.
    pub seq: u64,
    /// The message id was seen before: nothing was stored again, `seq` is
    /// the first copy's.
    #[serde(default)]
    pub duplicate: bool,
}

/// Any API answer: the value, or JetStream's error.
#[derive(Deserialize)]
struct Answer<T> {
    #[serde(default)]
    error: Option<ApiError>,
    #[serde(flatten)]
    value: Option<T>,
}

/// Read an API answer's payload.
pub fn answer<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<Result<T, ApiError>, String> {
    let a: Answer<T> = serde_json::from_slice(payload).map_err(|e| {
        format!(
            "JetStream answered something unreadable ({e}): {}",
            String::from_utf8_lossy(&payload[..payload.len().min(200)])
        )
    })?;
    match (a.error, a.value) {
        (Some(e), _) => Ok(Err(e)),
        (None, Some(v)) => Ok(Ok(v)),
        (None, None) => Err("JetStream answered with neither a value nor an error".into()),
    }
}

/// What `STREAM.INFO` and `STREAM.CREATE` answer.
#[derive(Clone, Debug, Deserialize)]
pub struct StreamInfo {
    /// The configuration in force.
    pub config: StreamConfig,
    /// Its counters.
    pub state: StreamState,
}

/// A stream's counters.
#[derive(Clone, Debug, Deserialize)]
pub struct StreamState {
    /// Messages held.
    pub messages: u64,
    /// The newest sequence.
    pub last_seq: u64,
}

/// The subject to create stream `name`.
pub fn create_subject(name: &str) -> String {
    format!("$JS.API.STREAM.CREATE.{name}")
}

/// The subject to ask about stream `name`.
pub fn info_subject(name: &str) -> String {
    format!("$JS.API.STREAM.INFO.{name}")
}

/// The subject to read one message of stream `name` by sequence.
pub fn get_subject(name: &str) -> String {
    format!("$JS.API.STREAM.MSG.GET.{name}")
}

/// `STREAM.MSG.GET`'s request: by sequence, or the newest of a subject.
#[derive(Serialize, Default)]
pub struct GetRequest {
    /// The sequence to read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The newest message of this subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_by_subj: Option<String>,
    /// The first message of this subject at `seq` or after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_by_subj: Option<String>,
}

/// A stored message, as `STREAM.MSG.GET` returns it.
#[derive(Clone, Debug, Deserialize)]
pub struct StoredMessage {
    /// Its subject.
    pub subject: String,
    /// Its sequence.
    pub seq: u64,
    /// Headers, base64.
    #[serde(default)]
    pub hdrs: Option<String>,
    /// Payload, base64.
    #[serde(default)]
    pub data: Option<String>,
}

/// `STREAM.MSG.GET`'s answer.
#[derive(Clone, Debug, Deserialize)]
pub struct GetAnswer {
    /// The message.
    pub message: StoredMessage,
}

impl StoredMessage {
    /// Whether this is the message a browser sent: the same subject, the
    /// same id and the same bytes. An acknowledgement that points at a
    /// message with only the id in common (somebody published that id
    /// first) does not mean the browser's event was stored.
    pub fn is(&self, subject: &str, id: &str, payload: &[u8]) -> bool {
        self.subject == subject
            && self
                .headers()
                .ok()
                .flatten()
                .is_some_and(|h| h.get(MSG_ID) == Some(id))
            && self.payload().is_ok_and(|p| p == payload)
    }

    /// Its payload.
    pub fn payload(&self) -> Result<Vec<u8>, String> {
        decode_base64(self.data.as_deref().unwrap_or(""))
    }

    /// Its headers.
    pub fn headers(&self) -> Result<Option<Headers>, String> {
        match self.hdrs.as_deref() {
            None | Some("") => Ok(None),
            Some(b) => Headers::decode(&decode_base64(b)?)
                .map(Some)
                .map_err(|e| e.to_string()),
        }
    }
}

/// Headers of one event's publish: its id, and the version its stream must
/// be at (None: any).
pub fn publish_headers(event_id: &str, expected_subject_seq: Option<u64>) -> Headers {
    let mut pairs = vec![(MSG_ID.to_owned(), event_id.to_owned())];
    if let Some(seq) = expected_subject_seq {
        pairs.push((EXPECTED_LAST_SUBJECT_SEQUENCE.to_owned(), seq.to_string()));
    }
    Headers {
        status: None,
        description: String::new(),
        pairs,
    }
}

/// Standard base64 (what JetStream's JSON carries), decoded.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let body = bytes
        .strip_suffix(b"==")
        .or_else(|| bytes.strip_suffix(b"="))
        .unwrap_or(&bytes);
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c).ok_or_else(|| format!("not base64: {:?}", *c as char))? << (18 - 6 * i);
        }
        let take = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return Err("base64 of a wrong length".into()),
        };
        out.extend_from_slice(&n.to_be_bytes()[1..1 + take]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_safe_subjects() {
        assert_eq!(
            subject("team log", "case-r1-7"),
            "retrace.team_20log.case-r1-7"
        );
        assert_eq!(subject_token("a.b*>"), "a_2eb_2a_3e");
        assert_eq!(stream_name("ops"), "RETRACE_OPS");
    }

    #[test]
    fn a_subject_is_recognised_without_being_built() {
        let names = [
            "",
            "a",
            "team log",
            "case-r1-7",
            "a.b*>",
            "é",
            "_2e",
            "a_2eb",
            "\u{0}",
            "x.",
            "AbC",
        ];
        for log in names {
            for stream in names {
                let right = subject(log, stream);
                assert!(
                    is_subject(&right, log, stream),
                    "{right}: {log:?} {stream:?}"
                );
                for &other in &names {
                    let (as_stream, as_log) = (subject(log, other), subject(other, stream));
                    assert_eq!(is_subject(&right, log, other), as_stream == right);
                    assert_eq!(is_subject(&right, other, stream), as_log == right);
                }
                for wrong in [
                    format!("{right}x"),
                    format!("{right}.x"),
                    right[..right.len() - 1].to_owned(),
                    right.to_uppercase(),
                    format!("x{right}"),
                ] {
                    if wrong != right {
                        assert!(
                            !is_subject(&wrong, log, stream),
                            "{wrong} for {log:?} {stream:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn answers_are_a_value_or_jetstreams_error() {
        let ok: PubAck = answer(br#"{"stream":"S","seq":7}"#).unwrap().unwrap();
        assert_eq!((ok.seq, ok.duplicate), (7, false));
        let err = answer::<PubAck>(
            br#"{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"}}"#,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(err.err_code, WRONG_LAST_SEQUENCE);
        assert!(answer::<PubAck>(b"nonsense").is_err());
    }

    #[test]
    fn base64_round_trips_what_the_server_sends() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbA==").unwrap(), b"hell");
        assert_eq!(decode_base64("aGVs").unwrap(), b"hel");
        assert!(decode_base64("a$==").is_err());
    }
}
