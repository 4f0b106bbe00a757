//! The log as CloudEvents 1.0 JSON, one event per line (NDJSON): the format
//! event brokers and stores already speak, so a log can move on from one
//! browser. Importing an export into an empty log gives an identical log.
//!
//! Each line carries `specversion`, `id`, `source`, `type`, `time` (the
//! domain time), `subject` (the stream), `datacontenttype`, `data` (the
//! payload, byte for byte), and the extensions `sequence` (the seq),
//! `streamversion`, `schemaversion`, `correlationid`, `causationid` and
//! `recordedtime`.

use super::staged::StagedEvent;
use super::time::{parse, TimeFormat};
use crate::log::{Envelope, NewEvent};
use crate::store::StreamAppend;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use thiserror::Error;

/// The CloudEvents `source` of events exported by Retrace.
pub const SOURCE: &str = "urn:retrace";

#[derive(Serialize, Deserialize)]
struct CloudEvent<'a> {
    specversion: &'a str,
    id: String,
    source: String,
    #[serde(rename = "type")]
    event_type: String,
    time: String,
    subject: String,
    datacontenttype: String,
    #[serde(borrow)]
    data: &'a RawValue,
    sequence: String,
    streamversion: u64,
    schemaversion: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    correlationid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    causationid: Option<String>,
    recordedtime: String,
}

/// RFC 3339 with milliseconds, UTC: `2012-04-03T16:55:38.000Z`.
pub fn rfc3339(ms: i64) -> String {
    let date = crate::io::time::date_of(ms);
    let t = ms.rem_euclid(86_400_000);
    format!(
        "{date}T{:02}:{:02}:{:02}.{:03}Z",
        t / 3_600_000,
        t / 60_000 % 60,
        t / 1000 % 60,
        t % 1000
    )
}

/// One event as one line of CloudEvents JSON (no newline).
pub fn to_line(e: &Envelope) -> String {
    let data = RawValue::from_string(e.data.clone())
        .unwrap_or_else(|_| RawValue::from_string("null".into()).unwrap());
    let ce = CloudEvent {
        specversion: "1.0",
        id: e.id.clone(),
        source: SOURCE.into(),
        event_type: e.event_type.clone(),
        time: rfc3339(e.occurred_at),
        subject: e.stream.clone(),
        datacontenttype: "application/json".into(),
        data: &data,
        sequence: e.seq.to_string(),
        streamversion: e.version,
        schemaversion: e.schema,
        correlationid: e.correlation.clone(),
        causationid: e.causation.clone(),
        recordedtime: rfc3339(e.recorded_at),
    };
    serde_json::to_string(&ce).expect("a cloud event serialises")
}

/// A line that is not a CloudEvent Retrace can read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("line {line}: {problem}")]
pub struct LineError {
    /// Line number, from 1.
    pub line: u64,
    /// What is wrong.
    pub problem: String,
}

/// An event read back from a line, with the stream position it had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// The stream.
    pub stream: String,
    /// Its version in the stream.
    pub version: u64,
    /// Its seq in the exporting log.
    pub seq: u64,
    /// The event.
    pub event: NewEvent,
}

/// Read one line.
pub fn from_line(line: &str, number: u64) -> Result<Imported, LineError> {
    let err = |problem: String| LineError {
        line: number,
        problem,
    };
    let ce: CloudEvent = serde_json::from_str(line)
        .map_err(|e| err(format!("not a CloudEvent Retrace wrote: {e}")))?;
    if ce.specversion != "1.0" {
        return Err(err(format!(
            "specversion {} (only 1.0 is read)",
            ce.specversion
        )));
    }
    let time = |s: &str, what: &str| {
        parse(s, TimeFormat::Iso, 0)
            .ok_or_else(|| err(format!("{what} {s:?} is not an RFC 3339 time")))
    };
    let occurred_at = time(&ce.time, "time")?;
    let recorded_at = time(&ce.recordedtime, "recordedtime")?;
    let seq = ce
        .sequence
        .parse()
        .map_err(|_| err(format!("sequence {:?} is not a number", ce.sequence)))?;
    Ok(Imported {
        stream: ce.subject,
        version: ce.streamversion,
        seq,
        event: NewEvent {
            id: ce.id,
            event_type: ce.event_type,
            schema: ce.schemaversion,
            occurred_at,
            correlation: ce.correlationid,
            causation: ce.causationid,
            data: ce.data.get().to_owned(),
            recorded_at: Some(recorded_at),
        },
    })
}

/// One line of an export as a staged event, checked against the version
/// its stream had before it.
pub fn staged_line(line: &str, number: u64) -> Result<StagedEvent, LineError> {
    let imported = from_line(line, number)?;
    if imported.version == 0 {
        return Err(LineError {
            line: number,
            problem: "streamversion 0 (versions start at 1)".into(),
        });
    }
    Ok(StagedEvent {
        stream: imported.stream,
        after: imported.version - 1,
        event: imported.event,
    })
}

/// Read an NDJSON export into appends that recreate the same streams and
/// versions (each event expects its stream at the version before it).
pub fn read_ndjson(text: &str) -> Result<Vec<StreamAppend>, LineError> {
    let mut reader = NdjsonReader::default();
    let mut events = Vec::new();
    reader.feed(text.as_bytes(), &mut events)?;
    reader.end(&mut events)?;
    Ok(events
        .into_iter()
        .map(|e| {
            let expected = e.expected();
            StreamAppend::new(e.stream, expected, vec![e.event])
        })
        .collect())
}

/// Reads an export fed in slices of any size, line by line.
#[derive(Default)]
pub struct NdjsonReader {
    carry: Vec<u8>,
    line: u64,
}

impl NdjsonReader {
    /// Lines read so far.
    pub fn lines(&self) -> u64 {
        self.line
    }

    /// Read the next slice; complete lines' events go to `out`.
    pub fn feed(&mut self, slice: &[u8], out: &mut Vec<StagedEvent>) -> Result<(), LineError> {
        let start = self.carry.len();
        self.carry.extend_from_slice(slice);
        let Some(last) = self.carry[start..].iter().rposition(|&b| b == b'\n') else {
            return Ok(());
        };
        let rest = self.carry.split_off(start + last + 1);
        let complete = std::mem::replace(&mut self.carry, rest);
        // Without the final newline, so `split` yields exactly the lines.
        for line in complete[..complete.len() - 1].split(|&b| b == b'\n') {
            self.line(line, out)?;
        }
        Ok(())
    }

    /// The file has ended: read its last line.
    pub fn end(&mut self, out: &mut Vec<StagedEvent>) -> Result<(), LineError> {
        let rest = std::mem::take(&mut self.carry);
        if !rest.is_empty() {
            self.line(&rest, out)?;
        }
        Ok(())
    }

    fn line(&mut self, bytes: &[u8], out: &mut Vec<StagedEvent>) -> Result<(), LineError> {
        self.line += 1;
        let text = std::str::from_utf8(bytes).map_err(|_| LineError {
            line: self.line,
            problem: "not UTF-8 text".into(),
        })?;
        if !text.trim().is_empty() {
            out.push(staged_line(text, self.line)?);
        }
        Ok(())
    }
}
