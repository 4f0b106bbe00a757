//! CSV import: sniff the dialect, guess the column mapping from common
//! names, read rows in steps (so a page can show progress and cancel), with
//! every problem reported by line.

use super::parsed::{EventSink, ParsedEvent, ParsedLog, ReadSummary, RowError};
use super::time::{self, TimeFormat};
use crate::domain::events::Attributes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use thiserror::Error;

/// Why a file cannot be imported as CSV.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CsvError {
    /// Nothing in it.
    #[error("the file is empty")]
    Empty,
    /// Not text.
    #[error("line {line} is not UTF-8 text; save the file as UTF-8 and try again")]
    NotUtf8 {
        /// Where.
        line: u64,
    },
    /// No delimiter gives a table.
    #[error("this does not look like a CSV file: no delimiter (comma, semicolon, tab, pipe) splits its first lines into the same number of columns")]
    NotCsv,
    /// A column the mapping needs is not in the file.
    #[error("the file has no column {0}; choose the column that holds it")]
    MissingColumn(String),
    /// Rows could not be read and the user chose to stop.
    #[error("{total} rows could not be read (first at line {}: {}); fix them, or choose to skip bad rows", first.line, first.problem)]
    BadRows {
        /// The first problem.
        first: RowError,
        /// How many rows had problems.
        total: u64,
        /// The first few problems.
        sample: Vec<RowError>,
    },
    /// The reader itself failed.
    #[error("line {line}: {problem}")]
    Malformed {
        /// Where.
        line: u64,
        /// What.
        problem: String,
    },
}

/// How to read the file's columns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsvMapping {
    /// Field delimiter.
    pub delimiter: u8,
    /// Whether the first row names the columns.
    pub has_header: bool,
    /// Column names (or `column 1`, … without a header).
    pub columns: Vec<String>,
    /// Case id column.
    pub case: Option<usize>,
    /// Activity column.
    pub activity: Option<usize>,
    /// Completion timestamp column.
    pub timestamp: Option<usize>,
    /// Start timestamp column, if any (kept as an attribute).
    pub start: Option<usize>,
    /// Resource column, if any.
    pub resource: Option<usize>,
    /// Further columns kept as event attributes.
    pub attributes: Vec<usize>,
    /// How timestamps are written.
    pub time_format: TimeFormat,
    /// Whether day-first and month-first both fit (the user must choose).
    pub ambiguous_dates: bool,
    /// Minutes from UTC of zone-less timestamps.
    pub tz_offset_min: i64,
}

/// What the first lines of a file show.
#[derive(Clone, Debug, PartialEq)]
pub struct Sniffed {
    /// The guessed mapping.
    pub mapping: CsvMapping,
    /// The first rows, as text.
    pub preview: Vec<Vec<String>>,
}

const NAMES_CASE: &[&str] = &[
    "case",
    "caseid",
    "caseconceptname",
    "casenumber",
    "caseno",
    "ticket",
    "ticketid",
    "order",
    "orderid",
    "workorder",
    "traceid",
    "trace",
    "incident",
    "incidentid",
];
const NAMES_ACTIVITY: &[&str] = &[
    "activity",
    "activityid",
    "conceptname",
    "activityname",
    "eventname",
    "event",
    "task",
    "step",
    "action",
    "status",
];
const NAMES_TIME: &[&str] = &[
    "timestamp",
    "timetimestamp",
    "completetimestamp",
    "endtimestamp",
    "endtime",
    "end",
    "completetime",
    "completiontime",
    "time",
    "datetime",
    "date",
    "eventtime",
];
const NAMES_START: &[&str] = &["starttimestamp", "starttime", "start", "startdate"];
const NAMES_RESOURCE: &[&str] = &[
    "resource",
    "orgresource",
    "user",
    "username",
    "agent",
    "employee",
    "worker",
    "performer",
    "assignee",
    "operator",
];

fn norm(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn find(columns: &[String], names: &[&str], taken: &[Option<usize>]) -> Option<usize> {
    // Earlier names in the list are better matches.
    names.iter().find_map(|n| {
        columns
            .iter()
            .position(|c| norm(c) == *n)
            .filter(|i| !taken.contains(&Some(*i)))
    })
}

fn reader(bytes: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes)
}

fn text_rows(bytes: &[u8], delimiter: u8, n: usize) -> Vec<Vec<String>> {
    reader(bytes, delimiter)
        .byte_records()
        .take(n)
        .filter_map(Result::ok)
        .map(|r| {
            r.iter()
                .map(|f| String::from_utf8_lossy(f).trim().to_string())
                .collect()
        })
        .collect()
}

/// Look at the start of a file: delimiter, header, mapping, preview.
pub fn sniff(bytes: &[u8]) -> Result<Sniffed, CsvError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(CsvError::Empty);
    }
    let head = &bytes[..bytes.len().min(64 * 1024)];
    if head.contains(&0) {
        return Err(CsvError::NotCsv);
    }
    if let Err(e) = std::str::from_utf8(head) {
        // error_len None: only a character cut by the 64 KiB window.
        if e.error_len().is_some() {
            let line = head[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64
                + 1;
            return Err(CsvError::NotUtf8 { line });
        }
    }
    let cut = head.len() < bytes.len();
    // The delimiter that splits the first lines into the most, equal, columns.
    let mut best: Option<(u8, usize)> = None;
    for d in [b',', b';', b'\t', b'|'] {
        let mut rows = text_rows(head, d, 20);
        if cut && rows.len() > 1 && rows.len() < 20 {
            rows.pop(); // the window may have cut the last row
        }
        let Some(first) = rows.first() else { continue };
        let width = first.len();
        if width >= 2
            && rows.iter().all(|r| r.len() == width)
            && best.is_none_or(|(_, w)| width > w)
        {
            best = Some((d, width));
        }
    }
    let (delimiter, _) = best.ok_or(CsvError::NotCsv)?;
    let rows = text_rows(head, delimiter, 51);
    let first = &rows[0];
    let body = if rows.len() > 1 {
        &rows[1..]
    } else {
        &rows[..]
    };
    // A header: its cells name things, where the body has times or numbers,
    // or it uses a name we know.
    let known = first.iter().any(|c| {
        let n = norm(c);
        [NAMES_CASE, NAMES_ACTIVITY, NAMES_TIME, NAMES_RESOURCE]
            .iter()
            .any(|names| names.contains(&n.as_str()))
    });
    let looks_data = |c: &str| c.parse::<f64>().is_ok() || time::detect([c]).is_some();
    let has_header = known
        || (0..first.len()).any(|i| {
            !looks_data(&first[i]) && body.iter().all(|r| r.get(i).is_some_and(|c| looks_data(c)))
        });
    let columns: Vec<String> = if has_header {
        first.clone()
    } else {
        (1..=first.len()).map(|i| format!("column {i}")).collect()
    };
    let samples = if has_header { body } else { &rows[..] };
    let column_samples = |i: usize| {
        samples
            .iter()
            .filter_map(move |r| r.get(i).map(String::as_str))
    };
    // A column of times: one format reads every sample, or at least half of
    // them (a few bad rows must not hide the column; they are reported later).
    let times = |i: usize| {
        time::detect(column_samples(i)).or_else(|| {
            let all: Vec<&str> = column_samples(i).collect();
            let readable: Vec<&str> = all
                .iter()
                .copied()
                .filter(|s| time::detect([*s]).is_some())
                .collect();
            (readable.len() * 2 >= all.len())
                .then(|| time::detect(readable))
                .flatten()
        })
    };

    let mut taken: Vec<Option<usize>> = Vec::new();
    let case = find(&columns, NAMES_CASE, &taken);
    taken.push(case);
    let timestamp = find(&columns, NAMES_TIME, &taken)
        .filter(|&i| times(i).is_some())
        .or_else(|| {
            (0..columns.len()).find(|&i| {
                !taken.contains(&Some(i))
                    && times(i).is_some_and(|d| {
                        !matches!(d.format, TimeFormat::EpochSeconds | TimeFormat::EpochMillis)
                    })
            })
        });
    taken.push(timestamp);
    let activity = find(&columns, NAMES_ACTIVITY, &taken);
    taken.push(activity);
    let start = find(&columns, NAMES_START, &taken).filter(|&i| times(i).is_some());
    taken.push(start);
    let resource = find(&columns, NAMES_RESOURCE, &taken);
    taken.push(resource);
    let attributes = (0..columns.len())
        .filter(|i| !taken.contains(&Some(*i)))
        .collect();
    let detected = timestamp.and_then(times);
    let mapping = CsvMapping {
        delimiter,
        has_header,
        columns,
        case,
        activity,
        timestamp,
        start,
        resource,
        attributes,
        time_format: detected.map_or(TimeFormat::Iso, |d| d.format),
        ambiguous_dates: detected.is_some_and(|d| d.ambiguous),
        tz_offset_min: 0,
    };
    Ok(Sniffed {
        mapping,
        preview: rows.into_iter().take(11).collect(),
    })
}

/// Longest run of text without a record end the reader will hold (an
/// unbalanced quote would otherwise swallow the rest of the file).
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// Reads a file fed to it in slices of any size, handing each readable row
/// to a sink as soon as its record is complete. Holds only the unfinished
/// last record of a slice.
pub struct CsvReader {
    mapping: CsvMapping,
    case: usize,
    activity: usize,
    timestamp: usize,
    /// Bytes after the last complete record.
    carry: Vec<u8>,
    /// Whether the scan so far ends inside a quoted field.
    in_quotes: bool,
    /// Lines before the carry.
    lines_before: u64,
    started: bool,
    header_done: bool,
    seen_text: bool,
    summary: ReadSummary,
}

impl CsvReader {
    /// A reader for files in `mapping`'s layout.
    pub fn new(mapping: CsvMapping) -> Result<Self, CsvError> {
        let need = |col: Option<usize>, what: &str| {
            col.filter(|&i| i < mapping.columns.len())
                .ok_or_else(|| CsvError::MissingColumn(what.into()))
        };
        let case = need(mapping.case, "for the case id")?;
        let activity = need(mapping.activity, "for the activity")?;
        let timestamp = need(mapping.timestamp, "for the timestamp")?;
        Ok(CsvReader {
            header_done: !mapping.has_header,
            mapping,
            case,
            activity,
            timestamp,
            carry: Vec::new(),
            in_quotes: false,
            lines_before: 0,
            started: false,
            seen_text: false,
            summary: ReadSummary::default(),
        })
    }

    /// Rows read so far.
    pub fn rows(&self) -> u64 {
        self.summary.rows
    }

    /// Rows that could not be read so far.
    pub fn bad_rows(&self) -> u64 {
        self.summary.bad
    }

    /// Read the next slice of the file.
    pub fn feed(&mut self, slice: &[u8], sink: &mut dyn EventSink) -> Result<(), CsvError> {
        let mut slice = slice;
        if !self.started {
            self.started = true;
            slice = slice.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(slice);
        }
        if !self.seen_text && slice.iter().any(|b| !b.is_ascii_whitespace()) {
            self.seen_text = true;
        }
        let scanned = self.carry.len();
        self.carry.extend_from_slice(slice);
        // The last record end outside quotes: everything before it parses.
        let mut cut = None;
        for (i, &b) in self.carry[scanned..].iter().enumerate() {
            match b {
                b'"' => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => cut = Some(scanned + i + 1),
                _ => {}
            }
        }
        if let Some(cut) = cut {
            let rest = self.carry.split_off(cut);
            let complete = std::mem::replace(&mut self.carry, rest);
            self.parse(&complete, sink)?;
        }
        if self.carry.len() > MAX_RECORD_BYTES {
            return Err(CsvError::Malformed {
                line: self.lines_before + 1,
                problem: format!(
                    "a record runs on for more than {} MB without ending; is a quote (\") left open?",
                    MAX_RECORD_BYTES >> 20
                ),
            });
        }
        Ok(())
    }

    /// The file has ended: read what is left.
    pub fn end(&mut self, sink: &mut dyn EventSink) -> Result<(), CsvError> {
        let rest = std::mem::take(&mut self.carry);
        if !rest.is_empty() {
            self.parse(&rest, sink)?;
        }
        if !self.seen_text {
            return Err(CsvError::Empty);
        }
        Ok(())
    }

    fn parse(&mut self, text: &[u8], sink: &mut dyn EventSink) -> Result<(), CsvError> {
        let records = reader(text, self.mapping.delimiter).into_byte_records();
        // Lines are counted from byte offsets (the csv crate's own line
        // count lags behind on CRLF files).
        let (mut at, mut line) = (0usize, self.lines_before + 1);
        let mut line_at = |byte: usize| {
            let mut byte = byte.min(text.len());
            // A CRLF record "starts" at its predecessor's LF.
            while byte < text.len() && matches!(text[byte], b'\r' | b'\n') {
                byte += 1;
            }
            if byte > at {
                line += text[at..byte].iter().filter(|&&b| b == b'\n').count() as u64;
                at = byte;
            }
            line
        };
        for next in records {
            let record = next.map_err(|e| CsvError::Malformed {
                line: line_at(e.position().map_or(0, |p| p.byte() as usize)),
                problem: e.to_string(),
            })?;
            let line = line_at(record.position().map_or(0, |p| p.byte() as usize));
            if !self.header_done {
                self.header_done = true;
                continue;
            }
            if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                continue; // blank line
            }
            self.summary.rows += 1;
            match self.row(&record) {
                Ok(event) => sink.event(event),
                Err(problem) => {
                    self.summary.bad += 1;
                    if self.summary.skipped.len() < 100 {
                        self.summary.skipped.push(RowError { line, problem });
                    }
                }
            }
        }
        self.lines_before += text.iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(())
    }

    fn row(&self, record: &csv::ByteRecord) -> Result<ParsedEvent, String> {
        let field = |i: usize| -> Result<&str, String> {
            let raw = record.get(i).ok_or_else(|| {
                format!(
                    "no value in column {} (the row has {} fields)",
                    self.mapping.columns[i],
                    record.len()
                )
            })?;
            std::str::from_utf8(raw)
                .map(str::trim)
                .map_err(|_| format!("column {} is not UTF-8 text", self.mapping.columns[i]))
        };
        let case = field(self.case)?;
        let activity = field(self.activity)?;
        let stamp = field(self.timestamp)?;
        if case.is_empty() {
            return Err("the case id is empty".into());
        }
        if activity.is_empty() {
            return Err("the activity is empty".into());
        }
        let time = time::parse(stamp, self.mapping.time_format, self.mapping.tz_offset_min)
            .ok_or_else(|| {
                format!(
                    "cannot read the timestamp {stamp:?} as {:?}",
                    self.mapping.time_format
                )
            })?;
        let resource = match self.mapping.resource {
            Some(i) => Some(field(i)?).filter(|r| !r.is_empty()).map(str::to_owned),
            None => None,
        };
        let mut attributes = Attributes::new();
        if let Some(i) = self.mapping.start {
            let s = field(i)?;
            if let Some(t) = time::parse(s, self.mapping.time_format, self.mapping.tz_offset_min) {
                attributes.insert("start".into(), json!(t));
            }
        }
        for &i in &self.mapping.attributes {
            let Ok(v) = field(i) else { continue };
            if v.is_empty() {
                continue;
            }
            let value = match v.parse::<f64>() {
                Ok(n) if n.is_finite() => json!(n),
                _ => json!(v),
            };
            attributes.insert(self.mapping.columns[i].clone(), value);
        }
        Ok(ParsedEvent {
            case: case.to_owned(),
            activity: activity.to_owned(),
            time,
            resource,
            attributes,
        })
    }

    /// The file, read. With `skip_bad` false, any bad row fails the import.
    pub fn finish(self, skip_bad: bool) -> Result<ReadSummary, CsvError> {
        if self.summary.bad > 0 && !skip_bad {
            let sample: Vec<RowError> = self.summary.skipped.iter().take(10).cloned().collect();
            return Err(CsvError::BadRows {
                first: sample[0].clone(),
                total: self.summary.bad,
                sample,
            });
        }
        Ok(self.summary)
    }
}

/// Read a whole CSV file at once (tools and tests).
pub fn read_all(bytes: &[u8], mapping: CsvMapping, skip_bad: bool) -> Result<ParsedLog, CsvError> {
    let mut reader = CsvReader::new(mapping)?;
    let mut log = ParsedLog::default();
    reader.feed(bytes, &mut log)?;
    reader.end(&mut log)?;
    let summary = reader.finish(skip_bad)?;
    log.rows = summary.rows;
    log.skipped = summary.skipped;
    Ok(log)
}
