//! Reading a chosen file into the log in bounded memory: the file is read a
//! slice at a time, its rows staged in IndexedDB (`staging`) as sorted runs,
//! then either committed in one transaction or played as a stream. See
//! `io::staged` for the pure half.

use crate::io::cloudevents::{rfc3339, NdjsonReader};
use crate::io::csv::{CsvError, CsvMapping, CsvReader};
use crate::io::import::{completed_record, id_prefix, FileFacts, Format};
use crate::io::parsed::{Completion, EventSink, ParsedEvent, ReadSummary};
use crate::io::staged::{
    encode_block, BlockKey, RestorePlan, StagedEvent, StagedPlan, Stager, Step, BLOCK_ROWS,
};
use crate::io::xes;
use crate::store::idb::IdbStore;
use crate::store::{EventStore, ExpectedVersion, StreamAppend};
use crate::web::{blob_slice, sleep};
use sha2::{Digest, Sha256};

/// Bytes read from the file at a time.
pub const SLICE: u64 = 1 << 20;
/// Staged blocks written per transaction.
const BLOCKS_PER_WRITE: usize = 32;

/// Why an import stopped.
#[derive(Debug)]
pub enum Stopped {
    /// The user cancelled.
    Cancelled,
    /// It failed; `skippable` when skipping bad rows would get past it.
    Failed {
        /// What happened, where, and what to do.
        message: String,
        /// Whether "skip the bad rows" is an answer.
        skippable: bool,
    },
}

fn failed(message: impl std::fmt::Display) -> Stopped {
    Stopped::Failed {
        message: message.to_string(),
        skippable: false,
    }
}

/// How the page reports and is told to stop.
pub struct Progress<'a> {
    /// Show a line of progress, and how much of the pass is done (0–1).
    pub report: &'a dyn Fn(String, Option<f64>),
    /// Whether the user asked to stop.
    pub cancelled: &'a dyn Fn() -> bool,
}

impl Progress<'_> {
    fn check(&self) -> Result<(), Stopped> {
        if (self.cancelled)() {
            Err(Stopped::Cancelled)
        } else {
            Ok(())
        }
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1_048_576.0)
}

/// SHA-256 of a file, read a slice at a time.
pub async fn sha256_of(blob: &web_sys::Blob, progress: &Progress<'_>) -> Result<String, Stopped> {
    let size = blob.size() as u64;
    let mut hasher = Sha256::new();
    let mut at = 0;
    while at < size {
        let end = (at + SLICE).min(size);
        hasher.update(blob_slice(blob, at, end).await.map_err(failed)?);
        at = end;
        (progress.report)(
            format!("checking the file: {} of {} MB", mb(at), mb(size)),
            Some(at as f64 / size as f64),
        );
        progress.check()?;
    }
    Ok(crate::util::hex(&hasher.finalize()))
}

/// What to import and how.
pub struct Request<'a> {
    /// File name.
    pub name: &'a str,
    /// The file.
    pub blob: &'a web_sys::Blob,
    /// Its format.
    pub format: Format,
    /// CSV columns (CSV only).
    pub mapping: Option<CsvMapping>,
    /// Which cases are complete.
    pub completion: Completion,
    /// Case-id prefix.
    pub label: String,
    /// The file's SHA-256.
    pub sha256: String,
    /// Skip unreadable rows instead of stopping.
    pub skip_bad: bool,
}

/// A file staged and ready to commit or play.
pub struct Staged {
    /// Reads the staged rows back as events.
    pub plan: Box<dyn StagedPlan>,
    /// Events it will write.
    pub events: u64,
    /// What was read, in words.
    pub summary: String,
}

/// Stages blocks in IndexedDB a transaction's worth at a time.
struct Writer<'a> {
    store: &'a IdbStore,
    waiting: Vec<(BlockKey, Vec<u8>)>,
}

impl Writer<'_> {
    async fn put(&mut self, blocks: Vec<(BlockKey, Vec<u8>)>) -> Result<(), Stopped> {
        self.waiting.extend(blocks);
        while self.waiting.len() >= BLOCKS_PER_WRITE {
            let rest = self.waiting.split_off(BLOCKS_PER_WRITE);
            let now = std::mem::replace(&mut self.waiting, rest);
            self.store.stage(now).await.map_err(failed)?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Stopped> {
        let now = std::mem::take(&mut self.waiting);
        self.store.stage(now).await.map_err(failed)
    }
}

/// Collects sorted runs in memory while a synchronous reader (XES) runs.
struct Spill {
    stager: Stager,
    blocks: Vec<(BlockKey, Vec<u8>)>,
}

impl EventSink for Spill {
    fn event(&mut self, event: ParsedEvent) {
        self.stager.event(event);
        if self.stager.full() {
            self.blocks.extend(self.stager.take_run());
        }
    }

    fn case_attributes(&mut self, case: &str, attributes: crate::domain::events::Attributes) {
        self.stager.case_attributes(case, attributes);
    }
}

/// Read the whole file and stage it. The log is not touched.
pub async fn stage(
    store: &IdbStore,
    req: &Request<'_>,
    progress: &Progress<'_>,
) -> Result<Staged, Stopped> {
    store.clear_staging().await.map_err(failed)?;
    let name = req.name;
    let size = req.blob.size() as u64;
    let t0 = js_sys::Date::now();
    let rate = |n: u64| n as f64 / ((js_sys::Date::now() - t0) / 1000.0).max(0.001);
    let mut writer = Writer {
        store,
        waiting: Vec::new(),
    };
    let bad_csv = |e: CsvError| Stopped::Failed {
        skippable: matches!(e, CsvError::BadRows { .. }),
        message: format!("{name}: {e}"),
    };

    if req.format == Format::CloudEvents {
        let mut reader = NdjsonReader::default();
        let mut events: Vec<StagedEvent> = Vec::new();
        let (mut blocks, mut total, mut at) = (0u32, 0u64, 0u64);
        let bad_line = |e: crate::io::cloudevents::LineError| failed(format!("{name}: {e}"));
        loop {
            let last = at >= size;
            if last {
                reader.end(&mut events).map_err(bad_line)?;
            } else {
                let end = (at + SLICE).min(size);
                let bytes = blob_slice(req.blob, at, end).await.map_err(failed)?;
                reader.feed(&bytes, &mut events).map_err(bad_line)?;
                at = end;
            }
            while events.len() >= BLOCK_ROWS || (last && !events.is_empty()) {
                let rest = events.split_off(events.len().min(BLOCK_ROWS));
                let block = std::mem::replace(&mut events, rest);
                total += block.len() as u64;
                writer
                    .put(vec![((0, blocks), encode_block(&block))])
                    .await?;
                blocks += 1;
            }
            if last {
                break;
            }
            (progress.report)(
                format!(
                    "read {} events · {:.0} events/s · {} of {} MB",
                    total + events.len() as u64,
                    rate(total),
                    mb(at),
                    mb(size)
                ),
                Some(at as f64 / size as f64),
            );
            progress.check()?;
        }
        writer.flush().await?;
        if total == 0 {
            return Err(failed(format!("{name} holds no events")));
        }
        return Ok(Staged {
            plan: Box::new(RestorePlan::new(blocks)),
            events: total,
            summary: format!("Restored {total} events from {name}"),
        });
    }

    let mut stager = Stager::new(&req.label, req.completion.clone());
    let summary: ReadSummary = if req.format == Format::Csv {
        let mapping = req
            .mapping
            .clone()
            .ok_or_else(|| failed("choose the columns first"))?;
        let mut reader = CsvReader::new(mapping).map_err(bad_csv)?;
        let mut at = 0;
        while at < size {
            let end = (at + SLICE).min(size);
            let bytes = blob_slice(req.blob, at, end).await.map_err(failed)?;
            reader.feed(&bytes, &mut stager).map_err(bad_csv)?;
            at = end;
            drop(bytes);
            if stager.full() {
                writer.put(stager.take_run()).await?;
            }
            (progress.report)(
                format!(
                    "read {} rows ({} unreadable) · {:.0} rows/s · {} of {} MB",
                    reader.rows(),
                    reader.bad_rows(),
                    rate(reader.rows()),
                    mb(at),
                    mb(size)
                ),
                Some(at as f64 / size as f64),
            );
            progress.check()?;
        }
        reader.end(&mut stager).map_err(bad_csv)?;
        reader.finish(req.skip_bad).map_err(bad_csv)?
    } else {
        // XES is read whole (gzip and XML readers pull synchronously); its
        // rows are still kept as compact sorted runs, not as parsed events.
        (progress.report)(format!("reading {name} ({} MB)…", mb(size)), None);
        let bytes = blob_slice(req.blob, 0, size).await.map_err(failed)?;
        let mut spill = Spill {
            stager,
            blocks: Vec::new(),
        };
        let summary =
            xes::read_into(&bytes, req.skip_bad, &mut spill).map_err(|e| Stopped::Failed {
                skippable: matches!(e, xes::XesError::BadEvents { .. }),
                message: format!("{name}: {e}"),
            })?;
        drop(bytes);
        stager = spill.stager;
        writer.put(spill.blocks).await?;
        summary
    };
    if stager.rows() == 0 {
        return Err(failed(format!("{name} holds no events that could be read")));
    }
    let counts = stager.counts();
    let facts = FileFacts {
        file: name,
        size,
        sha256: req.sha256.clone(),
        format: req.format,
        mapping: serde_json::to_value(&req.mapping).unwrap_or_default(),
    };
    let skipped = summary.rows - stager.rows();
    let record = completed_record(
        &facts,
        &counts,
        summary.rows,
        skipped,
        stager.last_time().unwrap_or(0),
        &req.completion,
        &req.label,
    );
    let (plan, rest) = stager.plan(&id_prefix(&req.label, &req.sha256), Some(record));
    writer.put(rest).await?;
    writer.flush().await?;
    Ok(Staged {
        plan: Box::new(plan),
        events: counts.events + 1,
        summary: format!(
            "Imported {} cases ({} events, {} activities) from {name}{}",
            counts.cases,
            counts.events,
            counts.activities,
            match (summary.bad, skipped - summary.bad) {
                (0, 0) => String::new(),
                (bad, 0) => format!("; skipped {bad} unreadable rows"),
                (0, other) => format!("; left out {other} events not marked complete"),
                (bad, other) => format!(
                    "; skipped {bad} unreadable rows and left out {other} events not marked complete"
                ),
            }
        ),
    })
}

/// The plan's next event, fetching blocks as it asks for them.
async fn next_event(
    store: &IdbStore,
    plan: &mut dyn StagedPlan,
) -> Result<Option<(String, ExpectedVersion, crate::log::NewEvent)>, String> {
    loop {
        match plan.next()? {
            Step::Need(key) => {
                let bytes = store.staged_block(key).await.map_err(|e| e.to_string())?;
                plan.supply(key, &bytes)?;
            }
            Step::Event(stream, expected, event) => return Ok(Some((stream, expected, event))),
            Step::Done => return Ok(None),
        }
    }
}

/// Play a staged file into the log in event-time order, `speed` domain
/// seconds per wall second: a real log drives the live views like the
/// simulator. Returns the events played.
pub async fn play(
    store: &IdbStore,
    mut plan: Box<dyn StagedPlan>,
    total: u64,
    speed: f64,
    progress: &Progress<'_>,
    on_commit: &dyn Fn(u64),
) -> Result<u64, Stopped> {
    const TICK: u32 = 200;
    let mut ahead = next_event(store, plan.as_mut()).await.map_err(failed)?;
    let mut clock = ahead.as_ref().map_or(0, |(_, _, e)| e.occurred_at);
    let mut played = 0u64;
    while ahead.is_some() {
        progress.check()?;
        clock += (speed * TICK as f64) as i64;
        // Skip long quiet stretches instead of waiting through them.
        if let Some((_, _, e)) = &ahead {
            if e.occurred_at > clock + (speed * 10_000.0) as i64 {
                clock = e.occurred_at;
            }
        }
        let mut batch = Vec::new();
        while ahead
            .as_ref()
            .is_some_and(|(_, _, e)| e.occurred_at <= clock)
        {
            let (stream, expected, event) = ahead.take().expect("checked");
            batch.push(StreamAppend::new(stream, expected, vec![event]));
            ahead = next_event(store, plan.as_mut()).await.map_err(failed)?;
        }
        if !batch.is_empty() {
            played += batch.len() as u64;
            let c = store
                .append_batch(batch)
                .await
                .map_err(|e| failed(format!("Replay stopped: {e}")))?;
            on_commit(c.last_seq);
        }
        (progress.report)(
            format!(
                "replaying: {played} of {total} events, at {}",
                rfc3339(clock)
            ),
            Some(played as f64 / total.max(1) as f64),
        );
        sleep(TICK).await;
    }
    Ok(played)
}
