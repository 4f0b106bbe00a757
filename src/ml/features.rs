//! Features of a case prefix — everything a model may know about a case at
//! one moment, documented here in one place.
//!
//! For a prefix of `len` activities of a case (0 = just opened), the row is:
//!
//! | feature | meaning |
//! |---|---|
//! | `prefix_len` | activities so far |
//! | `elapsed_h` | hours since the case opened |
//! | `since_last_h` | hours since the previous event (0 for the first) |
//! | `hour`, `weekday` | hour of day and day of week (Mon = 0) of the last event |
//! | `wip_total` | open cases in the process at the last event |
//! | `wip_resource` | open cases held by the last event's resource |
//! | `estimate_h` | the case's `estimate_hours` attribute, if any (else −1) |
//! | `due_in_h` | hours from the last event to the `due` attribute, if any (else 0) |
//! | `last=<activity>` | one-hot of the last activity (vocabulary + other) |
//! | `count=<activity>` | how often each activity happened so far |
//! | `resource=<name>` | one-hot of the last event's resource (vocabulary + other) |
//! | `<attr>=<value>` | one-hot of categorical case attributes (`category`, `priority`, `customer`, … — those with few values) |
//!
//! Vocabularies are fixed when the schema is built from training cases; a
//! value never seen in training maps to the `other` slot.

use crate::domain::calendar::{hour, weekday, HOUR};
use crate::domain::fact::AttrValue;
use crate::projection::open_cases::CaseTrace;
use crate::projection::training_set::Finished;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most values a categorical vocabulary keeps (the most frequent).
pub const VOCAB_MAX: usize = 30;
/// Case attributes with more distinct values than this are not one-hot encoded.
pub const CATEGORICAL_MAX: usize = 12;

/// Values seen in training, most frequent first; everything else is "other".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vocab {
    values: Vec<String>,
}

impl Vocab {
    /// The `max` most frequent values (ties by name, so it is deterministic).
    pub fn build<'a>(values: impl Iterator<Item = &'a str>, max: usize) -> Vocab {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for v in values {
            *counts.entry(v).or_default() += 1;
        }
        let mut sorted: Vec<(&str, usize)> = counts.into_iter().collect();
        sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        Vocab {
            values: sorted
                .into_iter()
                .take(max)
                .map(|(v, _)| v.to_owned())
                .collect(),
        }
    }

    /// Slot of `value`: its index, or `len()` for "other".
    pub fn slot(&self, value: &str) -> usize {
        self.values
            .iter()
            .position(|v| v == value)
            .unwrap_or(self.values.len())
    }

    /// Slots, "other" included.
    pub fn width(&self) -> usize {
        self.values.len() + 1
    }

    /// The known values.
    pub fn values(&self) -> &[String] {
        &self.values
    }
}

/// How rows are made: fixed at training time and stored with the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSchema {
    /// Activities.
    pub activities: Vocab,
    /// Resources.
    pub resources: Vocab,
    /// Categorical case attributes and their vocabularies.
    pub categorical: Vec<(String, Vocab)>,
}

const NUMERIC: [&str; 8] = [
    "prefix_len",
    "elapsed_h",
    "since_last_h",
    "hour",
    "weekday",
    "wip_total",
    "wip_resource",
    "estimate_h",
];

impl FeatureSchema {
    /// Build the vocabularies from training cases.
    pub fn build<'a>(cases: impl Iterator<Item = &'a CaseTrace> + Clone) -> FeatureSchema {
        let activities = Vocab::build(
            cases
                .clone()
                .flat_map(|c| c.steps.iter().map(|s| &*s.activity)),
            VOCAB_MAX,
        );
        let resources = Vocab::build(
            cases
                .clone()
                .flat_map(|c| c.steps.iter().filter_map(|s| s.resource.as_deref())),
            VOCAB_MAX,
        );
        let mut names: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for c in cases.clone() {
            for (k, v) in &c.attributes {
                if let AttrValue::Text(t) = v {
                    names.entry(k.as_str()).or_default().push(t.clone());
                }
            }
        }
        let categorical = names
            .into_iter()
            .filter_map(|(k, vals)| {
                let distinct: std::collections::BTreeSet<&String> = vals.iter().collect();
                (distinct.len() >= 2 && distinct.len() <= CATEGORICAL_MAX).then(|| {
                    (
                        k.to_owned(),
                        Vocab::build(vals.iter().map(String::as_str), CATEGORICAL_MAX),
                    )
                })
            })
            .collect();
        FeatureSchema {
            activities,
            resources,
            categorical,
        }
    }

    /// Column names, in row order.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = NUMERIC.iter().map(|s| s.to_string()).collect();
        names.push("due_in_h".into());
        let slots = |prefix: &str, v: &Vocab| -> Vec<String> {
            v.values()
                .iter()
                .map(|x| format!("{prefix}={x}"))
                .chain(std::iter::once(format!("{prefix}=other")))
                .collect()
        };
        names.extend(slots("last", &self.activities));
        names.extend(slots("count", &self.activities));
        names.extend(slots("resource", &self.resources));
        for (k, v) in &self.categorical {
            names.extend(slots(k, v));
        }
        names
    }

    /// Row width.
    pub fn width(&self) -> usize {
        NUMERIC.len()
            + 1
            + 2 * self.activities.width()
            + self.resources.width()
            + self
                .categorical
                .iter()
                .map(|(_, v)| v.width())
                .sum::<usize>()
    }

    /// The row of the first `len` activities of `case`.
    pub fn row(&self, case: &CaseTrace, len: usize) -> Vec<f64> {
        let steps = &case.steps[..len.min(case.steps.len())];
        let last = steps.last();
        let at = last.map_or(case.opened_at, |s| s.at);
        let previous = if steps.len() >= 2 {
            steps[steps.len() - 2].at
        } else {
            case.opened_at
        };
        let h = |ms: i64| ms as f64 / HOUR as f64;
        let mut row = Vec::with_capacity(self.width());
        row.push(steps.len() as f64);
        row.push(h(at - case.opened_at));
        row.push(h(at - previous));
        row.push(hour(at) as f64);
        row.push(weekday(at) as f64);
        row.push(last.map_or(case.opened_wip, |s| s.wip_total) as f64);
        row.push(last.map_or(0, |s| s.wip_resource) as f64);
        row.push(
            case.attribute("estimate_hours")
                .and_then(AttrValue::as_number)
                .unwrap_or(-1.0),
        );
        row.push(
            case.attribute("due")
                .and_then(AttrValue::as_number)
                .map_or(0.0, |due| h(due as i64 - at)),
        );
        push_one_hot(&mut row, &self.activities, last.map(|s| &*s.activity));
        let start = row.len();
        row.resize(start + self.activities.width(), 0.0);
        for s in steps {
            row[start + self.activities.slot(&s.activity)] += 1.0;
        }
        push_one_hot(
            &mut row,
            &self.resources,
            last.and_then(|s| s.resource.as_deref()),
        );
        for (name, vocab) in &self.categorical {
            let value = case.attribute(name).map(AttrValue::as_text);
            push_one_hot(&mut row, vocab, value.as_deref());
        }
        row
    }
}

fn push_one_hot(row: &mut Vec<f64>, vocab: &Vocab, value: Option<&str>) {
    let start = row.len();
    row.resize(start + vocab.width(), 0.0);
    if let Some(v) = value {
        row[start + vocab.slot(v)] = 1.0;
    }
}

/// Training rows: prefixes of length 1 … n−1 of each case.
pub fn training_rows(schema: &FeatureSchema, cases: &[&Finished]) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut rows = Vec::new();
    let mut hours = Vec::new();
    for f in cases {
        for len in 1..f.trace.steps.len() {
            rows.push(schema.row(&f.trace, len));
            hours.push((f.closed_at - f.trace.steps[len - 1].at) as f64 / HOUR as f64);
        }
    }
    (rows, hours)
}
