//! The import itself, once the file is chosen and the import lock held:
//! hash the file, ask about a repeat, stage it, then commit it in one
//! transaction — or play it into the log as a stream.

use super::importer::{self, Progress, Request, Stopped};
use super::Log;
use crate::domain::events::ImportCompleted;
use crate::io::csv::CsvMapping;
use crate::io::import::{label_for, Format};
use crate::io::parsed::Completion;
use crate::io::staged::Watched;
use crate::store::idb::IdbStore;
use crate::store::EventStore;
use leptos::prelude::*;

/// Where an import (or an export) stands, as the panel shows it.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Nothing chosen.
    Idle,
    /// A file is loaded and waits for the user to check and start.
    Ready,
    /// Working, in words.
    Busy(String),
    /// Finished, in words.
    Done(String),
    /// The same file was imported before: ask.
    Duplicate(String),
    /// Failed; `skippable` when bad rows could be skipped.
    Failed {
        /// What went wrong and what to do.
        message: String,
        /// Bad rows could be skipped.
        skippable: bool,
    },
}

/// The choices on the form when Import was pressed.
pub struct Form {
    /// The CSV's columns.
    pub mapping: Option<CsvMapping>,
    /// Which cases are complete.
    pub completion: Completion,
    /// Play as a stream at this speed instead of committing at once.
    pub stream: Option<f64>,
}

/// The whole import, once the lock is held: hash, ask about a repeat,
/// stage, then commit (or play). `Ok(None)` when the user must answer first.
#[allow(clippy::too_many_arguments)]
pub async fn import_file(
    store: &IdbStore,
    log: Log,
    name: &str,
    blob: &web_sys::Blob,
    fmt: Format,
    skip_bad: bool,
    again: bool,
    form: Form,
    status: RwSignal<Status>,
    fraction: RwSignal<Option<f64>>,
    cancel: StoredValue<bool, LocalStorage>,
) -> Result<Option<String>, Stopped> {
    let report = move |s: String, done: Option<f64>| {
        fraction.set(done);
        status.set(Status::Busy(s))
    };
    let cancelled = move || cancel.get_value();
    let progress = Progress {
        report: &report,
        cancelled: &cancelled,
    };
    let t0 = js_sys::Date::now();
    let sha = importer::sha256_of(blob, &progress).await?;
    // Seen before?
    let earlier = store
        .read_stream(ImportCompleted::STREAM, 1, 100_000)
        .await
        .map_err(|e| Stopped::Failed {
            message: e.to_string(),
            skippable: false,
        })?
        .into_iter()
        .filter_map(|e| e.payload::<ImportCompleted>().ok())
        .filter(|r| r.sha256 == sha)
        .count();
    if earlier > 0 && !again {
        status.set(Status::Duplicate(format!(
            "{name} was imported before ({earlier} time{}). Import it again, as separate cases?",
            if earlier == 1 { "" } else { "s" }
        )));
        return Ok(None);
    }
    let request = Request {
        name,
        blob,
        format: fmt,
        mapping: form.mapping,
        completion: form.completion,
        label: label_for(name, earlier),
        sha256: sha,
        skip_bad,
    };
    let staged = importer::stage(store, &request, &progress).await?;
    if let Some(speed) = form.stream {
        let on_commit = move |head: u64| log.head.update(|h| *h = (*h).max(head));
        importer::play(
            store,
            staged.plan,
            staged.events,
            speed,
            &progress,
            &on_commit,
        )
        .await?;
        return Ok(Some(format!("{} (streamed).", staged.summary)));
    }
    let t1 = js_sys::Date::now();
    report(
        format!("writing {} events in one commit…", staged.events),
        None,
    );
    let total = staged.events;
    let plan = Box::new(Watched {
        inner: staged.plan,
        cancelled: move || cancel.get_value(),
        report: move |n: u64| {
            fraction.set(Some(n as f64 / total.max(1) as f64));
            status.set(Status::Busy(format!(
                "writing {n} of {total} events in one commit…"
            )));
        },
        handed: 0,
    });
    match store.commit_staged(plan).await {
        Ok(c) => {
            log.head.update(|h| *h = (*h).max(c.last_seq));
            let now = js_sys::Date::now();
            Ok(Some(format!(
                "{} in {:.1} s (read {:.1} s, write {:.1} s).",
                staged.summary,
                (now - t0) / 1000.0,
                (t1 - t0) / 1000.0,
                (now - t1) / 1000.0
            )))
        }
        Err(_) if cancel.get_value() => Err(Stopped::Cancelled),
        Err(e) => Err(Stopped::Failed {
            message: format!("Nothing was imported: {e}"),
            skippable: false,
        }),
    }
}
