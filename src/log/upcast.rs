//! Upcasting: old payloads are lifted to the current shape on read.
//!
//! Stored bytes are never rewritten. Each event type declares its current
//! schema version and a chain of upcasters, one per step (v1→v2, v2→v3, …).
//! [`Schemas::upcast`] runs the steps an event needs. An event whose schema is
//! newer than the code knows, or whose type the code has never heard of, is
//! refused with an error that says so — never guessed at.

use super::Envelope;
use serde_json::Value;
use std::collections::BTreeMap;
use thiserror::Error;

/// One step of a chain: lifts a payload from schema `n` to `n + 1`.
pub type UpcastStep = fn(Value) -> Result<Value, String>;

/// Why an event could not be brought to the current shape.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum UpcastError {
    /// The log holds a type this build does not know.
    #[error("event {seq} has type `{event_type}`, which this version of Retrace does not know; it was probably written by a newer version — update Retrace to read this log")]
    UnknownType {
        /// Position of the event.
        seq: u64,
        /// Its type name.
        event_type: String,
    },
    /// The event was written with a newer payload schema than this build reads.
    #[error("event {seq} (`{event_type}`) uses schema {found}, but this version of Retrace reads up to schema {known}; update Retrace to read this log — nothing was changed")]
    SchemaTooNew {
        /// Position of the event.
        seq: u64,
        /// Its type name.
        event_type: String,
        /// The schema stored.
        found: u32,
        /// The newest schema this build reads.
        known: u32,
    },
    /// An old payload did not have the shape its schema promises.
    #[error("event {seq} (`{event_type}`, schema {schema}) could not be upgraded: {reason}")]
    Malformed {
        /// Position of the event.
        seq: u64,
        /// Its type name.
        event_type: String,
        /// The schema the failing step started from.
        schema: u32,
        /// What was wrong.
        reason: String,
    },
}

#[derive(Clone)]
struct TypeSchema {
    current: u32,
    steps: Vec<UpcastStep>,
}

/// The declared event types, their current schema and their upcaster chains.
#[derive(Clone, Default)]
pub struct Schemas {
    types: BTreeMap<String, TypeSchema>,
}

impl Schemas {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declare `event_type` at schema `current`, with `steps[i]` lifting
    /// schema `i + 1` to `i + 2`.
    ///
    /// # Panics
    /// If the chain does not reach `current` (a programming error that tests
    /// catch at once).
    pub fn declare(mut self, event_type: &str, current: u32, steps: &[UpcastStep]) -> Self {
        assert!(current >= 1, "schemas start at 1");
        assert_eq!(
            steps.len() as u32,
            current - 1,
            "`{event_type}` at schema {current} needs {} upcasters",
            current - 1
        );
        self.types.insert(
            event_type.to_owned(),
            TypeSchema {
                current,
                steps: steps.to_vec(),
            },
        );
        self
    }

    /// The current schema of `event_type`, if it is declared.
    pub fn current(&self, event_type: &str) -> Option<u32> {
        self.types.get(event_type).map(|t| t.current)
    }

    /// Whether the type is declared.
    pub fn knows(&self, event_type: &str) -> bool {
        self.types.contains_key(event_type)
    }

    /// Bring `event` to the current schema of its type. An event already at
    /// the current schema is returned untouched, without parsing its payload.
    pub fn upcast(&self, mut event: Envelope) -> Result<Envelope, UpcastError> {
        let Some(ty) = self.types.get(&event.event_type) else {
            return Err(UpcastError::UnknownType {
                seq: event.seq,
                event_type: event.event_type,
            });
        };
        if event.schema == ty.current {
            return Ok(event);
        }
        if event.schema > ty.current || event.schema == 0 {
            return Err(UpcastError::SchemaTooNew {
                seq: event.seq,
                event_type: event.event_type,
                found: event.schema,
                known: ty.current,
            });
        }
        let malformed = |event: &Envelope, schema: u32, reason: String| UpcastError::Malformed {
            seq: event.seq,
            event_type: event.event_type.clone(),
            schema,
            reason,
        };
        let mut value: Value = serde_json::from_str(&event.data)
            .map_err(|e| malformed(&event, event.schema, e.to_string()))?;
        for schema in event.schema..ty.current {
            let step = ty.steps[(schema - 1) as usize];
            value = step(value).map_err(|reason| malformed(&event, schema, reason))?;
        }
        event.data = value.to_string();
        event.schema = ty.current;
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn add_b(mut v: Value) -> Result<Value, String> {
        v["b"] = json!(2);
        Ok(v)
    }
    fn a_to_c(mut v: Value) -> Result<Value, String> {
        let a = v
            .as_object_mut()
            .ok_or("not an object")?
            .remove("a")
            .ok_or("no field a")?;
        v["c"] = a;
        Ok(v)
    }

    fn env(event_type: &str, schema: u32, data: &str) -> Envelope {
        Envelope {
            seq: 9,
            stream: "s".into(),
            version: 1,
            id: "e".into(),
            event_type: event_type.into(),
            schema,
            occurred_at: 0,
            recorded_at: 0,
            correlation: None,
            causation: None,
            data: data.into(),
        }
    }

    fn table() -> Schemas {
        Schemas::new()
            .declare("T", 3, &[add_b, a_to_c])
            .declare("U", 1, &[])
    }

    #[test]
    fn a_chain_runs_every_step_in_order() {
        let out = table().upcast(env("T", 1, r#"{"a":1}"#)).unwrap();
        assert_eq!(out.schema, 3);
        assert_eq!(
            serde_json::from_str::<Value>(&out.data).unwrap(),
            json!({"b":2,"c":1})
        );
    }

    #[test]
    fn a_chain_starts_where_the_event_is() {
        let out = table().upcast(env("T", 2, r#"{"a":5}"#)).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&out.data).unwrap(),
            json!({"c":5})
        );
    }

    #[test]
    fn a_current_event_is_untouched() {
        let e = env("T", 3, r#"{ "c" : 1 }"#);
        assert_eq!(table().upcast(e.clone()).unwrap(), e);
    }

    #[test]
    fn newer_schemas_and_unknown_types_are_refused() {
        assert!(matches!(
            table().upcast(env("T", 4, "{}")),
            Err(UpcastError::SchemaTooNew {
                found: 4,
                known: 3,
                ..
            })
        ));
        assert!(matches!(
            table().upcast(env("V", 1, "{}")),
            Err(UpcastError::UnknownType { .. })
        ));
    }

    #[test]
    fn a_malformed_old_payload_names_the_step() {
        let err = table().upcast(env("T", 2, r#"{"x":1}"#)).unwrap_err();
        assert!(
            matches!(err, UpcastError::Malformed { schema: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("no field a"));
    }

    #[test]
    #[should_panic(expected = "needs 2 upcasters")]
    fn a_chain_with_a_gap_is_a_programming_error() {
        let _ = Schemas::new().declare("T", 3, &[add_b]);
    }
}
