//! What every importer produces — rows of a log, each with its case,
//! activity and time — and how they become Retrace's events.

use crate::domain::events::Attributes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One event read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedEvent {
    /// Case id as the file writes it.
    pub case: String,
    /// Activity name.
    pub activity: String,
    /// When it completed (UTC ms).
    pub time: i64,
    /// Who did it.
    pub resource: Option<String>,
    /// Further attributes of the event.
    pub attributes: Attributes,
}

/// A row (or element) that could not be read, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// Line (CSV) or line of the element (XES), from 1.
    pub line: u64,
    /// What is wrong, in words.
    pub problem: String,
}

/// What a finished read found, besides its events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadSummary {
    /// Rows read, good and bad (blank lines are not rows).
    pub rows: u64,
    /// Rows that could not be read.
    pub bad: u64,
    /// The first 100 of them, with their lines.
    pub skipped: Vec<RowError>,
}

/// A whole file, read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedLog {
    /// Events in file order.
    pub events: Vec<ParsedEvent>,
    /// Attributes of each case that the file states once per case (XES trace
    /// attributes), by case id.
    pub case_attributes: HashMap<String, Attributes>,
    /// Rows (or events) read, good and bad.
    pub rows: u64,
    /// Rows skipped because they could not be read.
    pub skipped: Vec<RowError>,
}

/// Which cases of an imported log are finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Completion {
    /// Every case in the file is complete: each gets a `CaseClosed`.
    AllComplete,
    /// A case is complete when this activity has happened.
    EndActivity(String),
    /// No case is known to be complete.
    NoneComplete,
}

/// Counts of an import, for the user and the `ImportCompleted` event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCounts {
    /// Cases.
    pub cases: u64,
    /// Cases closed.
    pub closed: u64,
    /// Events written (opened + activities + closed).
    pub events: u64,
    /// Distinct activities.
    pub activities: u64,
}

/// Where readers put what they read, as they read it.
pub trait EventSink {
    /// One readable event.
    fn event(&mut self, event: ParsedEvent);
    /// Attributes the file states once for a case (after its events).
    fn case_attributes(&mut self, case: &str, attributes: Attributes);
}

impl EventSink for ParsedLog {
    fn event(&mut self, event: ParsedEvent) {
        self.events.push(event);
    }

    fn case_attributes(&mut self, case: &str, attributes: Attributes) {
        self.case_attributes.insert(case.to_owned(), attributes);
    }
}
