//! The event log's vocabulary: the envelope every stored event carries, the
//! compact binary form events are stored in, and the upcasters that lift old
//! payloads to the shapes the code knows today.
//!
//! # The stored form
//!
//! An event in the log is an [`Envelope`]:
//!
//! | field         | meaning                                                          |
//! |---------------|------------------------------------------------------------------|
//! | `seq`         | global position, contiguous from 1, never reused                 |
//! | `stream`      | the stream it belongs to, e.g. `case-4711`, `model-3`            |
//! | `version`     | position in its stream, contiguous from 1                        |
//! | `id`          | unique id chosen by the writer (idempotency, CloudEvents `id`)   |
//! | `event_type`  | the payload's type, e.g. `CaseOpened`                            |
//! | `schema`      | version of that type's payload shape                             |
//! | `occurred_at` | domain time, UTC milliseconds                                    |
//! | `recorded_at` | wall-clock time of the append, UTC milliseconds                  |
//! | `correlation` | id of the case/conversation it belongs to, if any                |
//! | `causation`   | id of the event or command that caused it, if any                |
//! | `data`        | the payload as JSON text                                         |
//!
//! Events are stored in *segments*: one IndexedDB record holds the events of
//! one commit, encoded with [`codec::encode_segment`] (postcard: varints and
//! length-prefixed strings, no field names). The payload stays JSON text so a
//! reader can decode it straight into the type it needs and so the log exports
//! to CloudEvents without loss.

pub mod codec;
pub mod upcast;

use serde::{Deserialize, Serialize};

/// One event as stored in the log, with its position and metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Global position in the log, contiguous from 1.
    pub seq: u64,
    /// The stream the event belongs to.
    pub stream: String,
    /// Position of the event in its stream, contiguous from 1.
    pub version: u64,
    /// Unique id of the event.
    pub id: String,
    /// The payload's type name.
    pub event_type: String,
    /// Version of the payload's shape for this type.
    pub schema: u32,
    /// When it happened in the domain (UTC ms).
    pub occurred_at: i64,
    /// When the log learned of it (UTC ms, wall clock).
    pub recorded_at: i64,
    /// Correlation id (e.g. the case a prediction is about).
    pub correlation: Option<String>,
    /// Causation id (the event or command that led to this one).
    pub causation: Option<String>,
    /// The payload, as JSON text.
    pub data: String,
}

/// An event on its way into the log: everything but the positions the store
/// assigns (`seq`, `stream`, `version`, `recorded_at`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Unique id of the event.
    pub id: String,
    /// The payload's type name.
    pub event_type: String,
    /// Version of the payload's shape.
    pub schema: u32,
    /// When it happened in the domain (UTC ms).
    pub occurred_at: i64,
    /// Correlation id.
    pub correlation: Option<String>,
    /// Causation id.
    pub causation: Option<String>,
    /// The payload, as JSON text.
    pub data: String,
    /// When the log learned of it, if already known (an event re-imported
    /// from an export keeps its original); None: the store's clock.
    #[serde(default)]
    pub recorded_at: Option<i64>,
}

impl NewEvent {
    /// A new event of `event_type` at schema `schema` whose payload is `data`
    /// serialised to JSON.
    pub fn new<T: Serialize>(
        id: impl Into<String>,
        event_type: impl Into<String>,
        schema: u32,
        occurred_at: i64,
        data: &T,
    ) -> Self {
        NewEvent {
            id: id.into(),
            event_type: event_type.into(),
            schema,
            occurred_at,
            correlation: None,
            causation: None,
            data: serde_json::to_string(data).expect("payload types serialise to JSON"),
            recorded_at: None,
        }
    }

    /// The same event with a correlation id.
    pub fn correlated(mut self, correlation: impl Into<String>) -> Self {
        self.correlation = Some(correlation.into());
        self
    }

    /// The same event with a causation id.
    pub fn caused_by(mut self, causation: impl Into<String>) -> Self {
        self.causation = Some(causation.into());
        self
    }

    /// Place the event in the log: the store calls this once it has chosen
    /// the positions (`recorded_at` is the store's clock, used unless the
    /// event already carries one).
    pub fn into_envelope(self, seq: u64, stream: &str, version: u64, recorded_at: i64) -> Envelope {
        Envelope {
            seq,
            stream: stream.to_owned(),
            version,
            id: self.id,
            event_type: self.event_type,
            schema: self.schema,
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at.unwrap_or(recorded_at),
            correlation: self.correlation,
            causation: self.causation,
            data: self.data,
        }
    }
}

impl Envelope {
    /// The event as written into another log: its stream, and the event
    /// keeping its id and the time the first log learnt of it.
    pub fn into_new_event(self) -> (String, NewEvent) {
        (
            self.stream,
            NewEvent {
                id: self.id,
                event_type: self.event_type,
                schema: self.schema,
                occurred_at: self.occurred_at,
                correlation: self.correlation,
                causation: self.causation,
                data: self.data,
                recorded_at: Some(self.recorded_at),
            },
        )
    }

    /// Decode the payload into `T`.
    pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.data)
    }
}
