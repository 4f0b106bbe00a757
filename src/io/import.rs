//! An import from file to appends: which format, which label, and the
//! `ImportCompleted` record that goes into the same commit.

use super::parsed::{Completion, ImportCounts, ParsedLog};
use super::staged::staged_in_memory;
use crate::domain::events::ImportCompleted;
use crate::log::NewEvent;
use crate::store::StreamAppend;
use sha2::{Digest, Sha256};

/// The formats Retrace reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Format {
    /// One row per event.
    Csv,
    /// IEEE 1849 XES, plain or gzip.
    Xes,
    /// Retrace's own export: CloudEvents, one per line.
    CloudEvents,
}

impl Format {
    /// Its name in the `ImportCompleted` record.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xes => "xes",
            Format::CloudEvents => "cloudevents",
        }
    }
}

/// Tell the format from the file's name and first bytes.
pub fn detect_format(name: &str, bytes: &[u8]) -> Result<Format, String> {
    let lower = name.to_lowercase();
    if super::xes::is_gzip(bytes)
        || lower.ends_with(".xes")
        || lower.ends_with(".xes.gz")
        || super::xes::looks_like_xml(bytes)
    {
        return Ok(Format::Xes);
    }
    let first = bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(bytes)
        .iter()
        .find(|b| !b.is_ascii_whitespace());
    if lower.ends_with(".ndjson") || lower.ends_with(".jsonl") || first == Some(&b'{') {
        return Ok(Format::CloudEvents);
    }
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err("the file is empty".into());
    }
    if bytes[..bytes.len().min(4096)].contains(&0) {
        return Err(format!(
            "{name} is neither CSV nor XES nor a Retrace export (it looks binary)"
        ));
    }
    Ok(Format::Csv)
}

/// SHA-256 of the file, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub use crate::util::hex;

/// The case-id prefix for a file: its name without extensions, made safe;
/// with `#n` when the same file was imported `n - 1` times before.
pub fn label_for(file: &str, earlier_imports: usize) -> String {
    let stem = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let stem = stem.split('.').next().unwrap_or(stem);
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    let clean = if clean.is_empty() {
        "import".to_string()
    } else {
        clean
    };
    if earlier_imports == 0 {
        clean
    } else {
        format!("{clean}#{}", earlier_imports + 1)
    }
}

/// What to tell the log about an import.
pub struct FileFacts<'a> {
    /// File name.
    pub file: &'a str,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Format read.
    pub format: Format,
    /// How it was read.
    pub mapping: serde_json::Value,
}

/// The prefix of the ids of an import's events.
pub fn id_prefix(label: &str, sha256: &str) -> String {
    format!("{label}-{}", &sha256[..12.min(sha256.len())])
}

/// The `ImportCompleted` event that ends an import's commit, with its stream.
/// `rows` counts rows read, `skipped` those that could not be.
pub fn completed_record(
    facts: &FileFacts<'_>,
    counts: &ImportCounts,
    rows: u64,
    skipped: u64,
    last_time: i64,
    completion: &Completion,
    label: &str,
) -> (String, NewEvent) {
    let record = ImportCompleted {
        file: facts.file.to_owned(),
        size: facts.size,
        sha256: facts.sha256.clone(),
        format: facts.format.name().into(),
        label: label.to_owned(),
        rows,
        skipped,
        cases: counts.cases,
        events: counts.events,
        mapping: serde_json::json!({ "read": facts.mapping, "completion": completion }),
    };
    let id = format!("import-{}", id_prefix(label, &facts.sha256));
    (
        ImportCompleted::STREAM.to_owned(),
        NewEvent::new(
            id,
            ImportCompleted::TYPE,
            ImportCompleted::SCHEMA,
            last_time,
            &record,
        ),
    )
}

/// The whole import as one commit: the file's events, then its
/// `ImportCompleted` record (tools and tests; the page stages instead).
pub fn plan(
    log: &ParsedLog,
    facts: FileFacts<'_>,
    completion: &Completion,
    label: &str,
) -> (Vec<StreamAppend>, ImportCounts) {
    staged_in_memory(
        log,
        label,
        completion,
        &id_prefix(label, &facts.sha256),
        |stager, counts| {
            Some(completed_record(
                &facts,
                counts,
                log.rows,
                log.rows - log.events.len() as u64,
                stager.last_time().unwrap_or(0),
                completion,
                label,
            ))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_apart() {
        assert_eq!(detect_format("a.csv", b"case,activity\n"), Ok(Format::Csv));
        assert_eq!(detect_format("a.xes", b"<log/>"), Ok(Format::Xes));
        assert_eq!(detect_format("a.bin", &[0x1f, 0x8b, 8, 0]), Ok(Format::Xes));
        assert_eq!(
            detect_format("log.ndjson", b"{\"id\":1}\n"),
            Ok(Format::CloudEvents)
        );
        assert!(detect_format("a.png", b"\x89PNG\r\n\x1a\n\0\0").is_err());
    }

    #[test]
    fn labels_are_safe_and_count_repeats() {
        assert_eq!(label_for("helpdesk.csv", 0), "helpdesk");
        assert_eq!(label_for("C:\\logs\\my log.xes.gz", 1), "my_log#2");
    }
}
