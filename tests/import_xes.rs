//! XES import: structure, typed attributes, lifecycle, gzip, errors.
#![cfg(not(target_arch = "wasm32"))]

use retrace::io::xes::{read, XesError};
use serde_json::json;
use std::io::Write;

fn small() -> Vec<u8> {
    std::fs::read("tests/fixtures/import/small.xes").unwrap()
}

#[test]
fn traces_events_and_typed_attributes_are_read() {
    let log = read(&small(), true).unwrap();
    let names: Vec<(&str, &str)> = log
        .events
        .iter()
        .map(|e| (e.case.as_str(), e.activity.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("order-1", "Register"),
            ("order-1", "Repair"),
            ("order-2", "Register")
        ],
        "the start event is skipped"
    );
    let first = &log.events[0];
    assert_eq!(
        first.time, 1_333_464_938_000,
        "16:55:38 at +02:00 is 14:55:38 UTC"
    );
    assert_eq!(first.resource.as_deref(), Some("ana"));
    assert_eq!(first.attributes["cost"], json!(12.5));
    assert_eq!(first.attributes["urgent"], json!(true));
    let order1 = &log.case_attributes["order-1"];
    assert_eq!(
        order1["customer"],
        json!("Bianchi & figli"),
        "entities are unescaped"
    );
    assert_eq!(order1["units"], json!(3));
    assert!(
        !log.events[1].attributes.contains_key("part"),
        "nested list values are not flattened in"
    );
}

#[test]
fn an_event_without_a_name_is_reported_with_its_line() {
    match read(&small(), false) {
        Err(XesError::BadEvents { first, total }) => {
            assert_eq!(total, 1);
            assert_eq!(first.line, 39, "the <event> at line 39");
            assert!(first.problem.contains("no concept:name"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(read(&small(), true).unwrap().skipped.len(), 1);
}

#[test]
fn gzip_compressed_xes_reads_the_same() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&small()).unwrap();
    let bytes = gz.finish().unwrap();
    assert_eq!(read(&bytes, true).unwrap(), read(&small(), true).unwrap());
}

#[test]
fn what_is_not_xes_says_so() {
    assert_eq!(read(b"", true), Err(XesError::Empty));
    assert!(matches!(
        read(b"<html><body/></html>", true),
        Err(XesError::NotXes(_))
    ));
    match read(b"<log>\n<trace>\n<event>\n</trace>", true) {
        Err(XesError::Malformed { line, .. }) => assert_eq!(line, 4),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_file_cut_after_an_event_is_an_error_not_fewer_cases() {
    let whole = small();
    let text = String::from_utf8(whole.clone()).unwrap();
    // Cut right after the last `</event>` of the second trace: no `</trace>`, no `</log>`.
    let second_trace = text.match_indices("<trace>").nth(1).expect("two traces").0;
    let end_of_trace = second_trace + text[second_trace..].find("</trace>").unwrap();
    let cut = text[..end_of_trace].rfind("</event>").unwrap() + "</event>".len();
    match read(&whole[..cut], true) {
        Err(XesError::Malformed { problem, .. }) => {
            assert!(problem.contains("<trace> is closed"), "{problem}")
        }
        other => panic!("a cut file must be refused, got {other:?}"),
    }
    // The same file whole reads.
    assert!(read(&whole, true).is_ok());
}

/// An XES cut anywhere before its end is refused: no cut gives fewer cases
/// silently. (Every cut position of the fixture, not a sample.)
#[test]
fn an_xes_cut_anywhere_before_its_end_is_refused() {
    let bytes = small();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let end = text.rfind("</log>").unwrap() + "</log>".len();
    let whole = read(&bytes, true).unwrap();
    for cut in 0..bytes.len() {
        match read(&bytes[..cut], true) {
            Ok(log) if cut >= end => assert_eq!(log, whole, "cut at {cut}, after </log>"),
            Ok(_) => panic!(
                "a file cut at byte {cut} of {} was read as whole",
                bytes.len()
            ),
            Err(_) => {}
        }
    }
}

#[test]
fn binary_bytes_are_not_printed_as_an_element_name() {
    let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00<\xff\xfe\x01>".to_vec();
    match read(&zip, true) {
        Err(XesError::NotXes(why)) => assert!(
            !why.contains('\u{fffd}') && why.contains("does not start with an XML element"),
            "{why}"
        ),
        Err(XesError::Malformed { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_document_with_entity_declarations_is_refused() {
    let laughs = br#"<?xml version="1.0"?><!DOCTYPE log [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;">]><log><trace><string key="concept:name" value="&b;"/></trace></log>"#;
    match read(laughs, true) {
        Err(XesError::NotXes(why)) => assert!(why.contains("DTD"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_gzip_bomb_is_refused_without_unpacking_it_whole() {
    // 200 MB of spaces after the root: one endless piece of text.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b"<log>").unwrap();
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..200 {
        gz.write_all(&spaces).unwrap();
    }
    let bytes = gz.finish().unwrap();
    assert!(bytes.len() < 1 << 20, "{} bytes packed", bytes.len());
    match read(&bytes, true) {
        Err(XesError::Malformed { problem, .. }) => {
            assert!(problem.contains("runs past 32 MB"), "{problem}")
        }
        other => panic!("{other:?}"),
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn any_bytes_give_a_result_or_an_error_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = read(&bytes, true);
        }

        #[test]
        fn cut_files_fail_with_a_position_not_a_panic(cut in 0usize..1400) {
            let bytes = small();
            let cut = cut.min(bytes.len());
            match read(&bytes[..cut], true) {
                Ok(_) | Err(XesError::Empty) | Err(XesError::NotXes(_)) => {}
                Err(XesError::Malformed { line, .. }) => prop_assert!((1..=44).contains(&line)),
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }
    }
}
