//! The shared log's gate fuzzed: any bytes, on any subject, with any id
//! header, give a verdict — never a panic — and the same verdict twice;
//! a refusal is an event every copy can read and write.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use retrace::share::gate::{admit, into_event, Admitted, MessageRefused};
use retrace::share::proto::{Headers, Message};

fn message(subject: String, id: Option<String>, payload: Vec<u8>) -> Message {
    Message {
        subject,
        sid: 1,
        reply: None,
        headers: id.map(|id| Headers::of(&[("Nats-Msg-Id", id.as_str())])),
        payload,
    }
}

/// Payloads near a real event: JSON with the right keys and odd values.
fn near_event() -> impl Strategy<Value = Vec<u8>> {
    (
        "[a-z0-9-]{0,12}",
        "[a-z0-9-]{0,8}",
        prop::sample::select(vec!["CaseOpened", "CaseClosed", "ActivityRecorded", "ModelTrained", "Unknown"]),
        any::<u32>(),
        any::<i64>(),
        ".{0,40}",
    )
        .prop_map(|(stream, id, kind, schema, at, data)| {
            serde_json::to_vec(&serde_json::json!({
                "stream": stream,
                "event": {"id": id, "event_type": kind, "schema": schema, "occurred_at": at,
                          "correlation": null, "causation": null, "data": data, "recorded_at": null},
                "unit": if at % 3 == 0 { serde_json::Value::Null } else { "u".into() },
            }))
            .unwrap()
        })
}

fn check(subject: String, id: Option<String>, payload: Vec<u8>, seq: u64) {
    let m = message(subject, id, payload);
    let first = admit("team", seq, &m);
    assert_eq!(first, admit("team", seq, &m), "the same verdict twice");
    if let Admitted::Refused(r) = first {
        assert_eq!(r.seq, seq);
        assert!(!r.reason.is_empty());
        let (_, event) = into_event(r.clone(), 1);
        let back: MessageRefused = serde_json::from_str(&event.data).unwrap();
        assert_eq!(back, r);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_bytes_on_any_subject_give_a_verdict(
        subject in ".{0,60}",
        id in proptest::option::of(".{0,20}"),
        payload in prop::collection::vec(any::<u8>(), 0..400),
        seq in 1u64..u64::MAX,
    ) {
        check(subject, id, payload, seq);
    }

    #[test]
    fn near_events_give_a_verdict(
        stream_on_subject in "[a-z0-9-]{0,12}",
        id in proptest::option::of("[a-z0-9-]{0,8}"),
        payload in near_event(),
        seq in 1u64..1_000_000,
    ) {
        check(format!("retrace.team.{stream_on_subject}"), id, payload, seq);
    }
}
