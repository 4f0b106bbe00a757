//! The gate every message of a shared log passes before it enters a copy.
//!
//! Anyone who may write to the log's subjects can publish anything there:
//! bytes that are not JSON, JSON that is no Retrace event, an event whose
//! subject names another stream than its payload, an id that differs from
//! the one JetStream de-duplicates by, a payload too large to be sensible.
//! None of it may stop a browser, and every browser must reach the same
//! verdict, so the copies stay equal byte for byte. So a message either
//! passes — it is the event it claims to be, on the subject it belongs to —
//! or it takes its place in the log as a *refusal*: a `MessageRefused`
//! event at the same position (the server's sequence stays the log's `seq`)
//! saying why, with a hash of the bytes refused. A gap in the server's
//! sequence (a message deleted there) is filled the same way. The verdict
//! depends only on the message and this build, never on the browser.

use super::consumer::SharedEvent;
use super::jetstream::{is_subject, subject, MSG_ID};
use super::proto::Message;
use super::seal::{event_context, Seal};
use crate::log::NewEvent;
use sha2::{Digest, Sha256};

/// The largest message a browser takes in.
pub use super::jetstream::MAX_MESSAGE_BYTES;

/// Ids and streams of refusals begin so; an event from the server may not.
pub const REFUSAL_ID: &str = "refused-";

pub use crate::domain::events::MessageRefused;

fn refusal(seq: u64, subject: &str, payload: &[u8], reason: String) -> MessageRefused {
    MessageRefused {
        seq,
        subject: subject.to_string(),
        reason,
        sha256: crate::util::hex(&Sha256::digest(payload)),
        size: payload.len(),
    }
}

/// The refusal as the event every copy writes at its place: the same id,
/// stream, time and payload in every browser. Each refusal is a stream of
/// its own (`refused-<seq>`), so a copy that has a refusal another lacks (a
/// message deleted on the server after one browser read it) differs from
/// it there and nowhere else.
pub fn into_event(r: MessageRefused, stored_at: i64) -> (String, NewEvent) {
    let id = format!("{REFUSAL_ID}{}", r.seq);
    let mut event = NewEvent::new(
        id.clone(),
        MessageRefused::TYPE,
        MessageRefused::SCHEMA,
        stored_at,
        &r,
    );
    event.recorded_at = Some(stored_at);
    (id, event)
}

/// What the gate decided.
#[derive(Clone, Debug, PartialEq)]
pub enum Admitted {
    /// The event it claims to be.
    Event(Box<SharedEvent>),
    /// Refused: write this in its place.
    Refused(MessageRefused),
}

/// The verdict on message `message`, stored at sequence `seq` of shared
/// log `log`. Never panics, whatever the bytes.
pub fn admit(log: &str, seq: u64, message: &Message) -> Admitted {
    admit_with(log, seq, message, None)
}

/// [`admit`] for a log whose payloads are sealed with `seal` (None: a
/// plain log): a payload must open with the team's key for its subject and
/// id before anything else is looked at.
pub fn admit_with(log: &str, seq: u64, message: &Message, seal: Option<&Seal>) -> Admitted {
    let refuse = |reason: String| {
        Admitted::Refused(refusal(seq, &message.subject, &message.payload, reason))
    };
    if message.payload.len() > MAX_MESSAGE_BYTES {
        return refuse(format!(
            "{} bytes, more than the {MAX_MESSAGE_BYTES} a Retrace event may take",
            message.payload.len()
        ));
    }
    let opened;
    let payload: &[u8] = match seal {
        None => &message.payload,
        Some(seal) => {
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.pairs.iter().find(|(k, _)| k == MSG_ID))
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            match seal.open(&event_context(&message.subject, id), &message.payload) {
                Ok(plain) => {
                    opened = plain;
                    &opened
                }
                Err(e) => return refuse(format!("not readable: {e}")),
            }
        }
    };
    let shared: SharedEvent = match serde_json::from_slice(payload) {
        Ok(s) => s,
        Err(e) => return refuse(format!("not a Retrace event ({e})")),
    };
    let event = &shared.event;
    if shared.stream.is_empty() || event.id.is_empty() {
        return refuse("an event without a stream or an id".into());
    }
    if event.id.starts_with(REFUSAL_ID)
        || shared.stream.starts_with(REFUSAL_ID)
        || event.event_type == MessageRefused::TYPE
    {
        return refuse(format!(
            "event {} claims to be a refusal; only a browser's own gate writes those",
            event.id
        ));
    }
    if !is_subject(&message.subject, log, &shared.stream) {
        return refuse(format!(
            "published to {} but its stream {} belongs on {}",
            message.subject,
            shared.stream,
            subject(log, &shared.stream)
        ));
    }
    let id_header = message
        .headers
        .as_ref()
        .and_then(|h| h.pairs.iter().find(|(k, _)| k == MSG_ID))
        .map(|(_, v)| v.as_str());
    if id_header != Some(event.id.as_str()) {
        return refuse(format!(
            "its {MSG_ID} ({}) is not its id ({})",
            id_header.unwrap_or("none"),
            event.id
        ));
    }
    // Readable by this build, or written by a newer Retrace (kept as such,
    // as in a browser's own log); a payload that does not match its own
    // type is refused.
    if let Err(reason) = crate::domain::check_payload(event) {
        return refuse(format!(
            "a {} whose payload does not match its type ({reason})",
            event.event_type
        ));
    }
    Admitted::Event(Box::new(shared))
}

/// Refusals for sequences `from ..to` that the server delivered nothing
/// for (deleted or purged there).
pub fn gap(from: u64, to: u64) -> Vec<MessageRefused> {
    (from..to)
        .map(|seq| {
            refusal(
                seq,
                "",
                &[],
                format!("the server no longer holds event {seq} (deleted or purged there)"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::proto::Headers;

    fn message(subject: &str, id: Option<&str>, payload: &[u8]) -> Message {
        Message {
            subject: subject.to_string(),
            sid: 1,
            reply: None,
            headers: id.map(|id| Headers::of(&[(MSG_ID, id)])),
            payload: payload.to_vec(),
        }
    }

    fn event(stream: &str, id: &str, event_type: &str, data: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "stream": stream,
            "event": {"id": id, "event_type": event_type, "schema": 1, "occurred_at": 5,
                      "correlation": null, "causation": null, "data": data, "recorded_at": null}
        }))
        .unwrap()
    }

    fn reason(a: Admitted) -> String {
        match a {
            Admitted::Refused(r) => r.reason,
            Admitted::Event(e) => panic!("admitted {e:?}"),
        }
    }

    #[test]
    fn on_an_encrypted_log_only_payloads_sealed_with_the_team_key_for_their_place_pass() {
        use crate::share::seal::{event_context, metadata_for};
        let (_, key) = metadata_for("team passphrase", "salt");
        let (_, other) = metadata_for("another passphrase", "salt");
        let good = event("case-1", "e-1", "CaseClosed", r#"{"case":"1"}"#);
        let subject = "retrace.team.case-1";
        let sealed = key.seal(&event_context(subject, "e-1"), &good);
        let pass = admit_with(
            "team",
            7,
            &message(subject, Some("e-1"), &sealed),
            Some(&key),
        );
        assert!(matches!(pass, Admitted::Event(e) if e.event.id == "e-1"));
        let cases: Vec<(Message, &str)> = vec![
            // A teammate without the key publishes plain JSON.
            (message(subject, Some("e-1"), &good), "not encrypted"),
            // Sealed with another passphrase.
            (
                message(
                    subject,
                    Some("e-1"),
                    &other.seal(&event_context(subject, "e-1"), &good),
                ),
                "does not decrypt",
            ),
            // A true sealed payload replayed under another id or subject.
            (message(subject, Some("e-2"), &sealed), "does not decrypt"),
            (
                message("retrace.team.case-2", Some("e-1"), &sealed),
                "does not decrypt",
            ),
        ];
        for (m, why) in cases {
            let said = reason(admit_with("team", 8, &m, Some(&key)));
            assert!(said.contains(why), "{said:?} should say {why:?}");
        }
        // And the plain gate refuses the sealed bytes: nothing half-read.
        assert!(
            reason(admit("team", 9, &message(subject, Some("e-1"), &sealed)))
                .contains("not a Retrace event")
        );
    }

    #[test]
    fn a_true_event_passes_and_every_kind_of_lie_is_refused_in_words() {
        let good = event("case-1", "e-1", "CaseClosed", r#"{"case":"1"}"#);
        let ok = admit(
            "team",
            7,
            &message("retrace.team.case-1", Some("e-1"), &good),
        );
        assert!(matches!(ok, Admitted::Event(e) if e.event.id == "e-1"));
        // An event type this build does not know is kept, as locally.
        let newer = event("case-1", "e-2", "SomethingNew", "{}");
        assert!(matches!(
            admit(
                "team",
                8,
                &message("retrace.team.case-1", Some("e-2"), &newer)
            ),
            Admitted::Event(_)
        ));

        let cases: Vec<(Message, &str)> = vec![
            (
                message("retrace.team.case-1", Some("x"), b"this is not an event {"),
                "not a Retrace event",
            ),
            (
                message("retrace.team.case-1", Some("x"), br#"{"hello":1}"#),
                "not a Retrace event",
            ),
            (
                message("retrace.team.case-2", Some("e-1"), &good),
                "belongs on retrace.team.case-1",
            ),
            (
                message("retrace.team.case-1", Some("e-9"), &good),
                "is not its id",
            ),
            (
                message("retrace.team.case-1", None, &good),
                "(none) is not its id",
            ),
            (
                message(
                    "retrace.team.case-1",
                    Some("e-3"),
                    &event("case-1", "e-3", "CaseClosed", r#"{"nope":true}"#),
                ),
                "payload does not match its type",
            ),
            (
                message(
                    "retrace.team.case-1",
                    Some("e-4"),
                    &event("case-1", "e-4", "MessageRefused", "{}"),
                ),
                "claims to be a refusal",
            ),
            (
                message(
                    "retrace.team.case-1",
                    Some("x"),
                    &vec![b' '; MAX_MESSAGE_BYTES + 1],
                ),
                "more than the",
            ),
        ];
        for (m, words) in cases {
            let r = reason(admit("team", 9, &m));
            assert!(r.contains(words), "{r:?} should say {words:?}");
        }
    }

    #[test]
    fn a_refusal_is_the_same_event_in_every_browser() {
        let m = message("retrace.team.case-1", Some("x"), b"\xff\xfe garbage");
        let Admitted::Refused(a) = admit("team", 12, &m) else {
            panic!("refused")
        };
        let Admitted::Refused(b) = admit("team", 12, &m.clone()) else {
            panic!("refused")
        };
        let (stream, one) = into_event(a.clone(), 1_000);
        let (_, two) = into_event(b, 1_000);
        assert_eq!(one, two);
        assert_eq!(stream, "refused-12");
        assert_eq!(one.id, "refused-12");
        assert_eq!(one.recorded_at, Some(1_000));
        assert_eq!(a.size, 10);
        assert_eq!(a.sha256.len(), 64);
        let holes = gap(4, 7);
        assert_eq!(
            holes.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![4, 5, 6]
        );
        assert!(holes[0].reason.contains("no longer holds event 4"));
    }
}
