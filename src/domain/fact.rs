//! Events decoded once, for every projection to read.

use super::events::{
    ActivityRecorded, Attributes, CaseClosed, CaseOpened, ChallengerStarted, DriftDetected,
    LoopTaken, MessageRefused, ModelBytesReleased, ModelPromoted, ModelRetired, PredictionRecorded,
    ProcessChanged,
};
use super::model::ModelTrained;
use crate::log::upcast::UpcastError;
use crate::log::Envelope;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// An attribute value in a form every projection can store (postcard has no
/// free-form JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AttrValue {
    /// Text, or anything that is neither a number nor a boolean.
    Text(String),
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
}

impl AttrValue {
    /// From a JSON value: numbers and booleans keep their type; everything
    /// else becomes text.
    pub fn from_json(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::Number(n) => AttrValue::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::Bool(b) => AttrValue::Bool(*b),
            serde_json::Value::String(s) => AttrValue::Text(s.clone()),
            other => AttrValue::Text(other.to_string()),
        }
    }

    /// The value as a number, if it is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            AttrValue::Number(n) => Some(*n),
            AttrValue::Text(t) => t.trim().parse().ok(),
            AttrValue::Bool(_) => None,
        }
    }

    /// The value as text.
    pub fn as_text(&self) -> String {
        match self {
            AttrValue::Text(t) => t.clone(),
            AttrValue::Number(n) => format!("{n}"),
            AttrValue::Bool(b) => format!("{b}"),
        }
    }
}

/// Attributes as sorted pairs.
pub fn attributes(a: &Attributes) -> Vec<(String, AttrValue)> {
    a.iter()
        .map(|(k, v)| (k.clone(), AttrValue::from_json(v)))
        .collect()
}

/// What an event says, decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum Fact {
    /// A case opened.
    CaseOpened(CaseOpened),
    /// Work was done on a case.
    ActivityRecorded(ActivityRecorded),
    /// A case closed.
    CaseClosed(CaseClosed),
    /// The process changed.
    ProcessChanged(ProcessChanged),
    /// A model made a prediction.
    PredictionRecorded(PredictionRecorded),
    /// A model's errors drifted.
    DriftDetected(DriftDetected),
    /// A challenger started predicting in shadow.
    ChallengerStarted(ChallengerStarted),
    /// A model became the champion.
    ModelPromoted(ModelPromoted),
    /// A challenger was retired.
    ModelRetired(ModelRetired),
    /// A browser took over a shared log's loop.
    LoopTaken(LoopTaken),
    /// A retired model's bytes were let go.
    ModelBytesReleased(ModelBytesReleased),
    /// A model was trained and registered.
    ModelTrained(Box<ModelTrained>),
    /// A shared log's message was refused at its place.
    MessageRefused(MessageRefused),
    /// An event the domain projections do not read (models, predictions, …),
    /// by type name.
    Other(String),
}

impl Fact {
    /// The event type name.
    pub fn type_name(&self) -> &str {
        match self {
            Fact::CaseOpened(_) => CaseOpened::TYPE,
            Fact::ActivityRecorded(_) => ActivityRecorded::TYPE,
            Fact::CaseClosed(_) => CaseClosed::TYPE,
            Fact::ProcessChanged(_) => ProcessChanged::TYPE,
            Fact::PredictionRecorded(_) => PredictionRecorded::TYPE,
            Fact::DriftDetected(_) => DriftDetected::TYPE,
            Fact::ChallengerStarted(_) => ChallengerStarted::TYPE,
            Fact::ModelPromoted(_) => ModelPromoted::TYPE,
            Fact::ModelRetired(_) => ModelRetired::TYPE,
            Fact::LoopTaken(_) => LoopTaken::TYPE,
            Fact::ModelBytesReleased(_) => ModelBytesReleased::TYPE,
            Fact::ModelTrained(_) => ModelTrained::TYPE,
            Fact::MessageRefused(_) => MessageRefused::TYPE,
            Fact::Other(t) => t,
        }
    }
}

/// An event in the log, decoded: its position, its domain time and its fact.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    /// Global position.
    pub seq: u64,
    /// The event's id (what later events name as their cause).
    pub id: String,
    /// Domain time (UTC ms).
    pub occurred_at: i64,
    /// The stream it belongs to.
    pub stream: String,
    /// What it says.
    pub fact: Fact,
}

/// Why an event could not be decoded.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum DecodeError {
    /// Unknown type or newer schema.
    #[error(transparent)]
    Upcast(#[from] UpcastError),
    /// The payload does not match its declared type.
    #[error("event {seq} (`{event_type}`) has a payload that does not match its type: {reason}")]
    Payload {
        /// Position.
        seq: u64,
        /// Type name.
        event_type: String,
        /// What serde said.
        reason: String,
    },
}

/// The fact a payload of type `event_type`, at its current schema, says.
fn fact_of(event_type: &str, data: &str) -> Result<Fact, serde_json::Error> {
    use serde_json::from_str as read;
    Ok(match event_type {
        CaseOpened::TYPE => Fact::CaseOpened(read(data)?),
        ActivityRecorded::TYPE => Fact::ActivityRecorded(read(data)?),
        CaseClosed::TYPE => Fact::CaseClosed(read(data)?),
        ProcessChanged::TYPE => Fact::ProcessChanged(read(data)?),
        PredictionRecorded::TYPE => Fact::PredictionRecorded(read(data)?),
        DriftDetected::TYPE => Fact::DriftDetected(read(data)?),
        ChallengerStarted::TYPE => Fact::ChallengerStarted(read(data)?),
        ModelPromoted::TYPE => Fact::ModelPromoted(read(data)?),
        ModelRetired::TYPE => Fact::ModelRetired(read(data)?),
        LoopTaken::TYPE => Fact::LoopTaken(read(data)?),
        ModelBytesReleased::TYPE => Fact::ModelBytesReleased(read(data)?),
        ModelTrained::TYPE => Fact::ModelTrained(Box::new(read(data)?)),
        MessageRefused::TYPE => Fact::MessageRefused(read(data)?),
        other => Fact::Other(other.to_owned()),
    })
}

/// Whether an event's payload matches its type, as [`decode`] would judge
/// it, without taking the event apart: `Err` (what serde said) only for a
/// payload that does not match; a type this build does not know, or a
/// newer schema (a newer Retrace wrote it), is not an error here. The
/// shared log's gate asks this of every message it receives.
pub fn check_payload(event: &crate::log::NewEvent) -> Result<(), String> {
    match super::schemas().current(&event.event_type) {
        Some(current) if event.schema == current => fact_of(&event.event_type, &event.data)
            .map(drop)
            .map_err(|e| e.to_string()),
        // An older schema: upcast first (rare; the event is copied).
        Some(_) => match decode(event.clone().into_envelope(0, "", 1, 0)) {
            Err(DecodeError::Payload { reason, .. }) => Err(reason),
            _ => Ok(()),
        },
        None => Ok(()),
    }
}

/// Upcast and decode one event.
pub fn decode(e: Envelope) -> Result<Recorded, DecodeError> {
    let e = super::schemas().upcast(e)?;
    let fact = fact_of(&e.event_type, &e.data).map_err(|err| DecodeError::Payload {
        seq: e.seq,
        event_type: e.event_type.clone(),
        reason: err.to_string(),
    })?;
    Ok(Recorded {
        seq: e.seq,
        id: e.id,
        occurred_at: e.occurred_at,
        stream: e.stream,
        fact,
    })
}
