//! The cases of a log as CSV, one row per activity, in the column names
//! process-mining tools read (`case:concept:name,concept:name,
//! time:timestamp,org:resource`).

use crate::domain::{decode, Fact};
use crate::io::cloudevents::rfc3339;
use crate::log::Envelope;

/// The header row.
pub const HEADER: &str = "case:concept:name,concept:name,time:timestamp,org:resource\n";

/// A field as RFC 4180 wants it: quoted (quotes doubled) when it holds a
/// comma, a quote or a line break.
pub fn field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// The rows of `events` (activities only; other events have no row), and
/// how many there are.
pub fn rows(events: impl IntoIterator<Item = Envelope>) -> (String, usize) {
    let mut text = String::new();
    let mut n = 0;
    for e in events {
        let at = e.occurred_at;
        if let Ok(Fact::ActivityRecorded(a)) = decode(e).map(|r| r.fact) {
            n += 1;
            text.push_str(&format!(
                "{},{},{},{}\n",
                field(&a.case),
                field(&a.activity),
                rfc3339(at),
                field(a.resource.as_deref().unwrap_or(""))
            ));
        }
    }
    (text, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::csv::{read_all, sniff};

    #[test]
    fn awkward_fields_survive_a_round_trip_through_the_csv_reader() {
        let names = ["plain", "a, b", "say \"hi\"", "two\nlines", "cr\rhere"];
        let at = |i: usize| 1_700_000_000_000 + i as i64 * 60_000;
        let events: Vec<Envelope> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                crate::log::NewEvent::new(
                    format!("e{i}"),
                    "ActivityRecorded",
                    3,
                    at(i),
                    &serde_json::json!({"case": name, "activity": name, "resource": name, "hours": null, "attributes": {}}),
                )
                .into_envelope(i as u64 + 1, "s", i as u64 + 1, 0)
            })
            .collect();
        let (text, n) = rows(events);
        assert_eq!(n, names.len());
        let file = format!("{HEADER}{text}");
        let mapping = sniff(file.as_bytes())
            .expect("the header is recognised")
            .mapping;
        let log = read_all(file.as_bytes(), mapping, false).expect("the export reads back");
        let back: Vec<(String, String, Option<String>, i64)> = log
            .events
            .into_iter()
            .map(|e| (e.case, e.activity, e.resource, e.time))
            .collect();
        let want: Vec<(String, String, Option<String>, i64)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), n.to_string(), Some(n.to_string()), at(i)))
            .collect();
        assert_eq!(back, want);
    }
}
