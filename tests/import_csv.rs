//! CSV import on real and hand-made logs.
#![cfg(not(target_arch = "wasm32"))]

use retrace::io::csv::{read_all, sniff, CsvError};
use retrace::io::parsed::Completion;
use retrace::io::staged::to_appends;
use retrace::io::time::TimeFormat;
use std::collections::HashSet;

const HELPDESK: &str = "../shared/data/helpdesk.csv";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("tests/fixtures/import/{name}")).unwrap()
}

#[test]
fn helpdesk_maps_itself_and_yields_its_cases_events_and_activities() {
    let bytes = std::fs::read(HELPDESK).expect("../shared/data/helpdesk.csv is beside the project");
    let sniffed = sniff(&bytes).unwrap();
    let m = &sniffed.mapping;
    assert_eq!(m.delimiter, b',');
    assert!(m.has_header);
    assert_eq!(
        (m.case, m.activity, m.timestamp),
        (Some(0), Some(1), Some(2)),
        "CaseID, ActivityID, CompleteTimestamp"
    );
    assert_eq!(m.time_format, TimeFormat::Iso);
    let log = read_all(&bytes, m.clone(), false).unwrap();
    assert_eq!(log.rows, 13_710);
    let cases: HashSet<&str> = log.events.iter().map(|e| e.case.as_str()).collect();
    let activities: HashSet<&str> = log.events.iter().map(|e| e.activity.as_str()).collect();
    assert_eq!((cases.len(), activities.len()), (3_804, 9));
    let (appends, counts) = to_appends(&log, "helpdesk", &Completion::AllComplete, "imp");
    assert_eq!(
        (counts.cases, counts.closed, counts.activities),
        (3_804, 3_804, 9)
    );
    assert_eq!(
        counts.events,
        13_710 + 2 * 3_804,
        "one CaseOpened and one CaseClosed per case"
    );
    let times: Vec<i64> = appends
        .iter()
        .flat_map(|a| a.events.iter().map(|e| e.occurred_at))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "events are written in time order"
    );
}

#[test]
fn semicolons_day_first_dates_and_other_names_are_recognised() {
    let bytes = fixture("semicolon-dayfirst.csv");
    let m = sniff(&bytes).unwrap().mapping;
    assert_eq!(m.delimiter, b';');
    assert_eq!(
        (m.case, m.activity, m.timestamp, m.resource),
        (Some(0), Some(1), Some(2), Some(3))
    );
    assert_eq!(
        m.time_format,
        TimeFormat::DayFirst,
        "13/04 can only be day-first"
    );
    assert!(!m.ambiguous_dates);
    let log = read_all(&bytes, m, false).unwrap();
    assert_eq!(log.events.len(), 5);
    assert_eq!(
        log.events[3].resource, None,
        "an empty resource is no resource"
    );
    assert_eq!(
        log.events[0].attributes["Effort"],
        serde_json::json!(1.5),
        "numbers stay numbers"
    );
    assert_eq!(
        log.events[0].attributes["Priority"],
        serde_json::json!("high")
    );
    let (_, counts) = to_appends(&log, "t", &Completion::EndActivity("Resolved".into()), "x");
    assert_eq!(counts.closed, 2);
}

#[test]
fn bad_rows_are_reported_by_line_and_can_be_skipped() {
    let bytes = fixture("bad-rows.csv");
    let m = sniff(&bytes).unwrap().mapping;
    match read_all(&bytes, m.clone(), false) {
        Err(CsvError::BadRows { first, total, .. }) => {
            assert_eq!(total, 2);
            assert_eq!(first.line, 3, "the header is line 1");
            assert!(first.problem.contains("not a time"), "{}", first.problem);
        }
        other => panic!("expected bad rows, got {other:?}"),
    }
    let log = read_all(&bytes, m, true).unwrap();
    assert_eq!((log.events.len(), log.skipped.len()), (3, 2));
    assert_eq!(log.skipped[1].line, 5);
    assert!(log.skipped[1].problem.contains("activity is empty"));
}

#[test]
fn files_that_are_not_csv_say_so() {
    assert_eq!(sniff(b""), Err(CsvError::Empty));
    assert_eq!(sniff(b"  \n "), Err(CsvError::Empty));
    assert_eq!(
        sniff(b"just one line of prose without any separators\nand another"),
        Err(CsvError::NotCsv)
    );
    assert_eq!(
        sniff(&fixture("not-utf8.csv")),
        Err(CsvError::NotUtf8 { line: 4 })
    );
    let mut m = sniff(b"a,b\n1,2\n").unwrap().mapping;
    m.case = None;
    assert!(matches!(
        read_all(b"a,b\n1,2\n", m, false),
        Err(CsvError::MissingColumn(_))
    ));
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn any_bytes_give_a_result_or_an_error_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(s) = sniff(&bytes) {
                let _ = read_all(&bytes, s.mapping, true);
            }
        }

        #[test]
        fn slices_of_any_size_read_like_the_whole_file(
            rows in prop::collection::vec(("[a-c\" ]{1,3}", "[A-Z,\n]{0,3}", prop_oneof!["2020-01-0[1-9] 10:00:00", "junk"]), 1..30),
            cuts in prop::collection::vec(1usize..40, 1..20),
        ) {
            // Quoted fields with commas, quotes and line breaks inside.
            let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
            let mut text = String::from("\u{feff}case,activity,timestamp\r\n");
            for (c, a, t) in &rows { text.push_str(&format!("{},{},{t}\r\n", quote(c), quote(a))); }
            let bytes = text.as_bytes();
            let m = sniff(b"case,activity,timestamp\nx,A,2020-01-01 10:00:00\n").unwrap().mapping;
            let whole = read_all(bytes, m.clone(), true).unwrap();
            let mut reader = retrace::io::csv::CsvReader::new(m).unwrap();
            let mut log = retrace::io::parsed::ParsedLog::default();
            let mut at = 0;
            for cut in cuts.iter().cycle() {
                if at >= bytes.len() { break; }
                let end = (at + cut).min(bytes.len());
                reader.feed(&bytes[at..end], &mut log).unwrap();
                at = end;
            }
            reader.end(&mut log).unwrap();
            let summary = reader.finish(true).unwrap();
            prop_assert_eq!(&log.events, &whole.events);
            prop_assert_eq!(summary.rows, whole.rows);
            prop_assert_eq!(summary.skipped, whole.skipped);
        }

        #[test]
        fn row_errors_point_at_real_lines(rows in prop::collection::vec(("[a-c]{1,2}", "[A-Z]{0,2}", prop_oneof!["2020-01-0[1-9] 10:00:00", "junk"]), 1..30)) {
            let mut text = String::from("case,activity,timestamp\n");
            for (c, a, t) in &rows { text.push_str(&format!("{c},{a},{t}\n")); }
            // The columns as a user would map them (sniffing a mostly-junk
            // column is another test's business).
            let m = sniff(b"case,activity,timestamp\nx,A,2020-01-01 10:00:00\n").unwrap().mapping;
            let log = read_all(text.as_bytes(), m, true).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for e in &log.skipped {
                let line = lines[(e.line - 1) as usize];
                prop_assert!(line.contains("junk") || line.split(',').nth(1) == Some(""), "line {} is {:?}: {}", e.line, line, e.problem);
            }
            prop_assert_eq!(log.events.len() + log.skipped.len(), rows.len());
        }
    }
}
