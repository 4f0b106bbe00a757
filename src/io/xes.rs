//! XES import (IEEE 1849): traces, events and typed attributes at log,
//! trace and event level, read as a stream of XML events (never a DOM of the
//! whole file); `.xes.gz` too.
//!
//! Mapping: a trace's `concept:name` is the case; an event's `concept:name`
//! the activity, `time:timestamp` the time, `org:resource` the resource.
//! With `lifecycle:transition`, only `complete` events become activities
//! (others are counted and skipped); all other attributes are kept, typed.

use super::parsed::{EventSink, ParsedEvent, ParsedLog, ReadSummary, RowError};
use super::time::{parse, TimeFormat};
use crate::domain::events::Attributes;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde_json::{json, Value};
use std::cell::Cell;
use std::io::{BufRead, BufReader, Read};
use std::rc::Rc;
use thiserror::Error;

/// Why a file cannot be imported as XES.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum XesError {
    /// Nothing in it.
    #[error("the file is empty")]
    Empty,
    /// Not an XES log.
    #[error("this is not an XES file: {0}")]
    NotXes(String),
    /// The XML is broken.
    #[error("the XML is malformed at line {line}: {problem}")]
    Malformed {
        /// Line, from 1.
        line: u64,
        /// What the parser said.
        problem: String,
    },
    /// Events could not be read and the user chose to stop.
    #[error("{total} events could not be read (first at line {}: {}); fix them, or choose to skip bad events", first.line, first.problem)]
    BadEvents {
        /// The first problem.
        first: RowError,
        /// How many.
        total: u64,
    },
}

/// Whether the bytes are gzip-compressed.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Whether the bytes look like XML.
pub fn looks_like_xml(bytes: &[u8]) -> bool {
    let start = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    start.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

/// Read an XES file (plain or gzip). With `skip_bad`, events without a
/// name or a readable timestamp are skipped and listed; otherwise they fail
/// the import.
pub fn read(bytes: &[u8], skip_bad: bool) -> Result<ParsedLog, XesError> {
    let mut log = ParsedLog::default();
    let summary = read_into(bytes, skip_bad, &mut log)?;
    log.rows = summary.rows;
    log.skipped = summary.skipped;
    Ok(log)
}

/// Read an XES file (plain or gzip), handing each trace's events to `sink`
/// as the trace ends (then the trace's attributes).
pub fn read_into(
    bytes: &[u8],
    skip_bad: bool,
    sink: &mut dyn EventSink,
) -> Result<ReadSummary, XesError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(XesError::Empty);
    }
    let used = Rc::new(Cell::new(0u64));
    let input: Box<dyn Read + '_> = if is_gzip(bytes) {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let capped = Capped {
        inner: input,
        used: used.clone(),
    };
    read_from(BufReader::new(capped), skip_bad, sink, &used)
}

/// Most bytes one piece of XML (a tag, or the text between two tags) may
/// take: a real log's are small; a file that is one endless run of text
/// (a gzip bomb, a damaged file) would otherwise be held whole in memory.
pub const MAX_PIECE_BYTES: u64 = 32 * 1024 * 1024;

/// Counts the bytes read since the reader last finished a piece of XML, and
/// refuses to read past [`MAX_PIECE_BYTES`].
struct Capped<R> {
    inner: R,
    used: Rc<Cell<u64>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.used.get() > MAX_PIECE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a piece of XML that never ends",
            ));
        }
        let n = self.inner.read(buf)?;
        self.used.set(self.used.get() + n as u64);
        Ok(n)
    }
}

fn attr(e: &BytesStart, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// A typed XES attribute as (key, JSON value).
fn typed(e: &BytesStart) -> Option<(String, Value)> {
    let key = attr(e, b"key")?;
    let raw = attr(e, b"value").unwrap_or_default();
    let value = match e.name().as_ref() {
        b"string" | b"id" => json!(raw),
        b"date" => parse(&raw, TimeFormat::Iso, 0).map_or(json!(raw), |t| json!(t)),
        b"int" => raw.trim().parse::<i64>().map_or(json!(raw), |v| json!(v)),
        b"float" => raw
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map_or(json!(raw), |v| json!(v)),
        b"boolean" => json!(raw.trim().eq_ignore_ascii_case("true")),
        _ => return None,
    };
    Some((key, value))
}

#[derive(PartialEq)]
enum Scope {
    Log,
    Trace,
    Event,
    /// Inside `<global>`, `<extension>`, `<classifier>`, or a nested
    /// attribute (list/container values): not data we map.
    Skip,
}

fn read_from<R: BufRead + Read>(
    input: R,
    skip_bad: bool,
    sink: &mut dyn EventSink,
    used: &Cell<u64>,
) -> Result<ReadSummary, XesError> {
    let mut reader = Reader::from_reader(input);
    // Whitespace text is kept so that every byte passes through `buf` and
    // line numbers are exact.
    reader.config_mut().trim_text(false);
    let mut buf = Vec::new();
    let mut log = ReadSummary::default();
    let mut traces = 0u64;
    let mut scopes: Vec<Scope> = Vec::new();
    let mut attr_depth = 0usize;
    let mut seen_root = false;
    let mut lines = 1u64;
    let mut case = String::new();
    let mut trace_attrs = Attributes::new();
    let mut trace_events: Vec<(Attributes, u64)> = Vec::new();
    let mut event_attrs = Attributes::new();
    let mut event_line = 0u64;
    let mut bad = 0u64;
    let mut skipped_lifecycle = 0u64;

    loop {
        let ev = reader.read_event_into(&mut buf);
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                let problem = if used.get() > MAX_PIECE_BYTES {
                    format!(
                        "a tag or text runs past {} MB without ending: this is not an event log (or it is damaged), so nothing was imported",
                        MAX_PIECE_BYTES / 1024 / 1024
                    )
                } else {
                    e.to_string()
                };
                return Err(XesError::Malformed {
                    line: lines,
                    problem,
                });
            }
        };
        // A whole piece was read: count the next one afresh.
        used.set(0);
        let is_empty = matches!(ev, Event::Empty(_));
        match &ev {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.name();
                let name = name.as_ref();
                if !seen_root {
                    if name != b"log" {
                        let readable = std::str::from_utf8(name).ok().filter(|n| {
                            n.len() <= 64
                                && n.chars().all(|c| c.is_alphanumeric() || "_-.:".contains(c))
                        });
                        return Err(XesError::NotXes(match readable {
                            Some(n) => format!("its root element is <{n}>, not <log>"),
                            None => "it does not start with an XML element (is it another kind of archive?)".into(),
                        }));
                    }
                    seen_root = true;
                    if !is_empty {
                        scopes.push(Scope::Log);
                    }
                } else if attr_depth > 0 || scopes.last() == Some(&Scope::Skip) {
                    if !is_empty {
                        if attr_depth > 0 {
                            attr_depth += 1;
                        } else {
                            scopes.push(Scope::Skip);
                        }
                    }
                } else {
                    match name {
                        b"trace" if scopes.last() == Some(&Scope::Log) => {
                            case.clear();
                            trace_attrs.clear();
                            trace_events.clear();
                            if !is_empty {
                                scopes.push(Scope::Trace);
                            }
                        }
                        b"event" if scopes.last() == Some(&Scope::Trace) => {
                            event_attrs.clear();
                            event_line = lines;
                            if is_empty {
                                trace_events.push((std::mem::take(&mut event_attrs), event_line));
                            } else {
                                scopes.push(Scope::Event);
                            }
                        }
                        b"string" | b"date" | b"int" | b"float" | b"boolean" | b"id" | b"list"
                        | b"container" => {
                            if let Some((key, value)) = typed(e) {
                                match scopes.last() {
                                    Some(Scope::Event) => {
                                        event_attrs.insert(key, value);
                                    }
                                    Some(Scope::Trace) => {
                                        if key == "concept:name" {
                                            case = value
                                                .as_str()
                                                .map(str::to_owned)
                                                .unwrap_or_else(|| value.to_string());
                                        } else {
                                            trace_attrs.insert(key, value);
                                        }
                                    }
                                    _ => {} // log-level attributes describe the file
                                }
                            }
                            if !is_empty {
                                attr_depth = 1; // nested values are not mapped
                            }
                        }
                        _ => {
                            if !is_empty {
                                scopes.push(Scope::Skip);
                            }
                        }
                    }
                }
            }
            Event::End(_) => {
                if attr_depth > 0 {
                    attr_depth -= 1;
                } else {
                    match scopes.pop() {
                        Some(Scope::Event) => {
                            trace_events.push((std::mem::take(&mut event_attrs), event_line))
                        }
                        Some(Scope::Trace) => {
                            traces += 1;
                            let trace_case = if case.is_empty() {
                                format!("trace {traces}")
                            } else {
                                case.clone()
                            };
                            for (mut attrs, line) in trace_events.drain(..) {
                                log.rows += 1;
                                if let Some(t) =
                                    attrs.get("lifecycle:transition").and_then(Value::as_str)
                                {
                                    if !t.eq_ignore_ascii_case("complete") {
                                        skipped_lifecycle += 1;
                                        continue;
                                    }
                                }
                                let activity = attrs
                                    .remove("concept:name")
                                    .and_then(|v| v.as_str().map(str::to_owned));
                                let time = attrs.remove("time:timestamp").and_then(|v| v.as_i64());
                                let resource = attrs
                                    .remove("org:resource")
                                    .and_then(|v| v.as_str().map(str::to_owned));
                                match (activity, time) {
                                    (Some(activity), Some(time)) => sink.event(ParsedEvent {
                                        case: trace_case.clone(),
                                        activity,
                                        time,
                                        resource,
                                        attributes: attrs,
                                    }),
                                    (a, _) => {
                                        bad += 1;
                                        let problem = if a.is_none() {
                                            "the event has no concept:name"
                                        } else {
                                            "the event has no readable time:timestamp"
                                        };
                                        if log.skipped.len() < 100 {
                                            log.skipped.push(RowError {
                                                line,
                                                problem: format!("{problem} (trace {trace_case})"),
                                            });
                                        }
                                    }
                                }
                            }
                            sink.case_attributes(&trace_case, std::mem::take(&mut trace_attrs));
                        }
                        _ => {}
                    }
                }
            }
            Event::DocType(_) => {
                // Entity declarations can expand a few bytes into gigabytes;
                // XES never needs them.
                return Err(XesError::NotXes(
                    "it declares a DTD (<!DOCTYPE …>); XES logs have none, and Retrace does not read them".into(),
                ));
            }
            Event::Eof => {
                // A document whose elements are not all closed was cut short:
                // what it holds may be missing whole traces.
                if let Some(open) = scopes
                    .iter()
                    .rev()
                    .find(|s| **s != Scope::Skip)
                    .or(scopes.last())
                {
                    let element = match open {
                        Scope::Log => "<log>",
                        Scope::Trace => "<trace>",
                        Scope::Event => "<event>",
                        Scope::Skip => "an element",
                    };
                    return Err(XesError::Malformed {
                        line: lines,
                        problem: format!(
                            "the file ends before {element} is closed: it looks cut short, so nothing was imported (export the log again, completely)"
                        ),
                    });
                }
                break;
            }
            _ => {}
        }
        lines += buf.iter().filter(|b| **b == b'\n').count() as u64;
        buf.clear();
    }
    if !seen_root {
        return Err(XesError::NotXes("there is no <log> element".into()));
    }
    let _ = skipped_lifecycle;
    log.bad = bad;
    if bad > 0 && !skip_bad {
        return Err(XesError::BadEvents {
            first: log.skipped[0].clone(),
            total: bad,
        });
    }
    Ok(log)
}
