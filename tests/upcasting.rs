//! Old logs keep loading: events written at older schemas come out in
//! today's shape, and a log from a newer build is refused, not misread.
#![cfg(not(target_arch = "wasm32"))]

use retrace::domain::{schemas, ActivityRecorded, CaseClosed, CaseOpened};
use retrace::log::upcast::UpcastError;
use retrace::log::Envelope;
use serde_json::json;

fn fixture() -> Vec<Envelope> {
    let text =
        std::fs::read_to_string("tests/fixtures/log-schema-v1.json").expect("fixture present");
    serde_json::from_str(&text).expect("fixture parses")
}

fn upcast_all() -> Vec<Envelope> {
    fixture()
        .into_iter()
        .map(|e| schemas().upcast(e).expect("old events upcast"))
        .collect()
}

#[test]
fn case_opened_v1_moves_its_fields_into_attributes() {
    let opened: CaseOpened = upcast_all()[0].payload().unwrap();
    assert_eq!(opened.case, "17");
    assert_eq!(
        opened.attributes.get("customer"),
        Some(&json!("Bianchi srl"))
    );
    assert_eq!(opened.attributes.get("priority"), Some(&json!("high")));
    assert_eq!(opened.attributes.len(), 3);
}

#[test]
fn activity_v1_runs_the_whole_chain_to_v3() {
    let events = upcast_all();
    assert_eq!(events[1].schema, ActivityRecorded::SCHEMA);
    let a: ActivityRecorded = events[1].payload().unwrap();
    assert_eq!(
        a.resource.as_deref(),
        Some("value 1"),
        "user became resource (v1→v2)"
    );
    assert_eq!(a.hours, Some(0.75), "45 minutes became 0.75 hours (v2→v3)");
}

#[test]
fn activity_v2_runs_only_the_last_step() {
    let a: ActivityRecorded = upcast_all()[2].payload().unwrap();
    assert_eq!(a.resource.as_deref(), Some("value 2"));
    assert_eq!(a.hours, None, "an unknown duration stays unknown");
}

#[test]
fn case_closed_v1_gets_an_unknown_outcome() {
    let c: CaseClosed = upcast_all()[3].payload().unwrap();
    assert_eq!(
        c,
        CaseClosed {
            case: "17".into(),
            outcome: None
        }
    );
}

#[test]
fn upcasting_keeps_the_envelope_and_never_touches_the_stored_form() {
    let before = fixture();
    let after = upcast_all();
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            (b.seq, &b.stream, b.version, &b.id),
            (a.seq, &a.stream, a.version, &a.id)
        );
        assert_eq!(
            (b.occurred_at, b.recorded_at),
            (a.occurred_at, a.recorded_at)
        );
        assert_eq!(
            (&b.correlation, &b.causation),
            (&a.correlation, &a.causation)
        );
    }
    assert_eq!(before, fixture(), "reading must not change the fixture");
}

#[test]
fn an_event_from_a_newer_build_is_refused_with_a_clear_message() {
    let mut e = fixture().remove(0);
    e.schema = CaseOpened::SCHEMA + 1;
    let err = schemas().upcast(e).unwrap_err();
    assert!(matches!(err, UpcastError::SchemaTooNew { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("newer") || msg.contains("update Retrace"),
        "message tells what to do: {msg}"
    );
}

#[test]
fn every_declared_type_is_at_its_payload_schema() {
    assert_eq!(
        schemas().current(CaseOpened::TYPE),
        Some(CaseOpened::SCHEMA)
    );
    assert_eq!(
        schemas().current(ActivityRecorded::TYPE),
        Some(ActivityRecorded::SCHEMA)
    );
    assert_eq!(
        schemas().current(CaseClosed::TYPE),
        Some(CaseClosed::SCHEMA)
    );
}
