//! The envelope keeps every field through the stored form and through JSON.

use retrace::log::codec::{decode_segment, encode_segment};
use retrace::log::{Envelope, NewEvent};

fn sample() -> Envelope {
    NewEvent::new(
        "id-1",
        "CaseOpened",
        2,
        -86_400_000,
        &serde_json::json!({"case":"ä ü 🚀","attributes":{"n":1.5}}),
    )
    .correlated("corr")
    .caused_by("cause")
    .into_envelope(u64::MAX - 1, "case-ä", 7, 1_800_000_000_123)
}

#[test]
fn an_envelope_round_trips_through_the_stored_form() {
    let e = sample();
    assert_eq!(
        decode_segment(&encode_segment(std::slice::from_ref(&e))).unwrap(),
        vec![e]
    );
}

#[test]
fn an_envelope_round_trips_through_json() {
    let e = sample();
    let text = serde_json::to_string(&e).unwrap();
    assert_eq!(serde_json::from_str::<Envelope>(&text).unwrap(), e);
}

#[test]
fn into_envelope_places_the_event() {
    let e = sample();
    assert_eq!(
        (e.seq, e.stream.as_str(), e.version),
        (u64::MAX - 1, "case-ä", 7)
    );
    assert_eq!(
        (e.correlation.as_deref(), e.causation.as_deref()),
        (Some("corr"), Some("cause"))
    );
    let v: serde_json::Value = e.payload().unwrap();
    assert_eq!(v["case"], "ä ü 🚀");
}
