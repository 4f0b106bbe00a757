//! Reading a shared log: an ordered push consumer (no acknowledgements,
//! flow control, heartbeats, in memory) delivers the stream from a given
//! sequence on — the whole log when a browser joins, then every new event
//! as it is stored. Each delivery's reply subject carries its stream
//! sequence; the payload is the event and the Retrace stream it belongs to.

use super::proto::Message;
use crate::log::NewEvent;
use serde::{Deserialize, Serialize};

/// What a shared log stores per event: the event, and its Retrace stream
/// (the subject carries it too, escaped, for JetStream's per-stream checks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedEvent {
    /// The Retrace stream, e.g. `case-s1-7`.
    pub stream: String,
    /// The event.
    pub event: NewEvent,
    /// The commit it belongs to, when others must see that commit whole
    /// (an import): readers hold its events back until the one that closes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// This event closes its unit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closes: bool,
}

/// The units (imports) a reader has seen begin and not yet end. While one
/// is open, a reader holds back every event after its first — its own and
/// others' — and commits them together once the unit closes, so no view
/// ever shows part of an import, and the log keeps the server's order.
///
/// Not for ever: a unit that stays open longer than [`HOLD_MAX_MS`], or
/// while more than [`HOLD_MAX_EVENTS`] events wait, is given up on (its
/// importer vanished, or somebody opened a unit to stall everyone): the
/// reader commits what it holds and shows the unit's later events as they
/// come. Only *when* events are committed changes, never which or in what
/// order, so every copy of the log stays the same.
#[derive(Clone, Debug, Default)]
pub struct Units {
    /// Open units, and when (the reader's clock, ms) each was first seen.
    open: std::collections::HashMap<String, f64>,
    /// Units given up on, in the order they were.
    abandoned: Vec<String>,
}

/// The longest a reader holds events back for an open unit, ms.
pub const HOLD_MAX_MS: f64 = 600_000.0;
/// The most events a reader holds back for open units.
pub const HOLD_MAX_EVENTS: usize = 500_000;

impl Units {
    /// Take in the next event's unit, seen at `now` (ms).
    pub fn see(&mut self, event: &SharedEvent, now: f64) {
        if let Some(unit) = &event.unit {
            if event.closes {
                self.open.remove(unit);
            } else if !self.abandoned.contains(unit) {
                self.open.entry(unit.clone()).or_insert(now);
            }
        }
    }

    /// Whether events must be held back, with `held` waiting at `now`; a
    /// unit open too long or holding too much is given up on here.
    pub fn holding(&mut self, held: usize, now: f64) -> bool {
        if self.open.is_empty() {
            return false;
        }
        if held > HOLD_MAX_EVENTS || self.open.values().any(|t| now - t > HOLD_MAX_MS) {
            let mut gone: Vec<String> = self.open.drain().map(|(u, _)| u).collect();
            gone.sort();
            self.abandoned.extend(gone);
            return false;
        }
        true
    }

    /// The units given up on so far.
    pub fn abandoned(&self) -> &[String] {
        &self.abandoned
    }

    /// Forget everything (a new connection reads from the last commit on).
    pub fn clear(&mut self) {
        self.open.clear()
    }
}

/// `CONSUMER.CREATE`'s subject for stream `name`.
pub fn create_subject(name: &str) -> String {
    format!("$JS.API.CONSUMER.CREATE.{name}")
}

/// The request creating an ordered consumer of `stream` that pushes to
/// `deliver_subject` from sequence `from`.
pub fn ordered(stream: &str, deliver_subject: &str, from: u64) -> serde_json::Value {
    let mut request = pushing(stream, deliver_subject, 300);
    request["config"]["deliver_policy"] = "by_start_sequence".into();
    request["config"]["opt_start_seq"] = from.max(1).into();
    request
}

/// The request creating a consumer of `stream` that pushes every message
/// of `subject` to `deliver_subject`, in order, once (an object's chunks).
pub fn of_subject(stream: &str, deliver_subject: &str, subject: &str) -> serde_json::Value {
    let mut request = pushing(stream, deliver_subject, 60);
    request["config"]["deliver_policy"] = "all".into();
    request["config"]["filter_subject"] = subject.into();
    request
}

/// A push consumer without acknowledgements, with flow control and
/// heartbeats, in memory, gone after `inactive_s` seconds without a reader.
fn pushing(stream: &str, deliver_subject: &str, inactive_s: u64) -> serde_json::Value {
    serde_json::json!({
        "stream_name": stream,
        "config": {
            "deliver_subject": deliver_subject,
            "ack_policy": "none",
            "max_deliver": 1,
            "flow_control": true,
            "idle_heartbeat": 5_000_000_000u64,
            "mem_storage": true,
            "num_replicas": 1,
            "inactive_threshold": inactive_s * 1_000_000_000,
        }
    })
}

/// One message on the deliver subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A stored message, with its stream sequence; what it holds is for
    /// [`super::gate::admit`] to judge.
    Event {
        /// The stream sequence: the log's `seq`.
        seq: u64,
        /// When the server stored it (UTC ms): every replica records the
        /// event as learnt then, so their exports agree byte for byte.
        stored_at: i64,
    },
    /// The server asks to be told the client keeps up: publish an empty
    /// message to this subject.
    FlowControl(String),
    /// Nothing new for a while; the stream's newest sequence delivered.
    Heartbeat,
}

/// Read a message from the deliver subject.
pub fn delivery(message: &Message) -> Result<Delivery, String> {
    if let Some(status) = message.headers.as_ref().and_then(|h| h.status) {
        if status == 100 {
            return Ok(match &message.reply {
                Some(reply) if !reply.is_empty() => Delivery::FlowControl(reply.clone()),
                _ => Delivery::Heartbeat,
            });
        }
        return Err(format!(
            "the server stopped delivering the log ({status} {})",
            message
                .headers
                .as_ref()
                .map_or("", |h| h.description.as_str())
        ));
    }
    let reply = message
        .reply
        .as_deref()
        .ok_or("a delivery without its stream sequence")?;
    let (seq, stored_at) =
        ack_info(reply).ok_or_else(|| format!("cannot read the sequence in {reply}"))?;
    Ok(Delivery::Event { seq, stored_at })
}

/// The stream sequence in a delivery's `$JS.ACK` reply subject: v1
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`,
/// v2 with a domain and an account hash before the stream.
pub fn stream_seq(reply: &str) -> Option<u64> {
    ack_info(reply).map(|(seq, _)| seq)
}

/// The stream sequence and the time stored (UTC ms) in a `$JS.ACK` subject.
pub fn ack_info(reply: &str) -> Option<(u64, i64)> {
    let tokens: Vec<&str> = reply.split('.').collect();
    if tokens.len() < 9 || tokens[0] != "$JS" || tokens[1] != "ACK" {
        return None;
    }
    let at = if tokens.len() == 9 { 5 } else { 7 };
    let seq = tokens.get(at)?.parse().ok()?;
    let nanos: i64 = tokens.get(at + 2)?.parse().ok()?;
    Some((seq, nanos / 1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_holds_back_from_a_units_first_event_to_the_one_closing_it() {
        let e = |unit: Option<&str>, closes: bool| SharedEvent {
            stream: "s".into(),
            event: crate::store::contract::event(1),
            unit: unit.map(str::to_owned),
            closes,
        };
        let mut units = Units::default();
        units.see(&e(None, false), 0.0);
        assert!(!units.holding(0, 0.0));
        units.see(&e(Some("a"), false), 0.0);
        units.see(&e(Some("b"), false), 0.0);
        units.see(&e(None, false), 0.0);
        units.see(&e(Some("a"), true), 0.0);
        assert!(units.holding(3, 1.0), "b is still open");
        units.see(&e(Some("b"), true), 0.0);
        assert!(!units.holding(3, 1.0));
        // A unit of one event closes itself.
        units.see(&e(Some("c"), true), 0.0);
        assert!(!units.holding(0, 1.0));
        assert!(units.abandoned().is_empty());
        // The wire form of an event outside a unit is as before.
        let plain = serde_json::to_value(e(None, false)).unwrap();
        assert_eq!(plain.as_object().unwrap().len(), 2);
    }

    #[test]
    fn a_unit_that_never_closes_holds_nobody_for_ever() {
        let e = |unit: &str, closes: bool| SharedEvent {
            stream: "s".into(),
            event: crate::store::contract::event(1),
            unit: Some(unit.to_owned()),
            closes,
        };
        // Open too long: given up on, and its later events not held again.
        let mut units = Units::default();
        units.see(&e("stall", false), 1_000.0);
        assert!(units.holding(10, 1_000.0 + HOLD_MAX_MS));
        assert!(!units.holding(10, 1_001.0 + HOLD_MAX_MS));
        assert_eq!(units.abandoned(), ["stall"]);
        units.see(&e("stall", false), 2_000_000.0);
        assert!(!units.holding(11, 2_000_000.0));
        // Holding too much: the same.
        let mut units = Units::default();
        units.see(&e("big", false), 0.0);
        assert!(units.holding(HOLD_MAX_EVENTS, 1.0));
        assert!(!units.holding(HOLD_MAX_EVENTS + 1, 1.0));
        assert_eq!(units.abandoned(), ["big"]);
    }

    #[test]
    fn the_stream_sequence_is_read_from_both_ack_forms() {
        assert_eq!(stream_seq("$JS.ACK.S.C.1.42.7.1700000000.0"), Some(42));
        assert_eq!(
            ack_info("$JS.ACK.S.C.1.42.7.1700000000123456789.0"),
            Some((42, 1_700_000_000_123))
        );
        assert_eq!(
            stream_seq("$JS.ACK.dom.acc.S.C.1.43.7.1700000000.0.x"),
            Some(43)
        );
        assert_eq!(stream_seq("_INBOX.x"), None);
    }
}
