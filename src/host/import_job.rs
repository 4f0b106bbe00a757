//! One import, as the engine's worker runs it: hash the file, ask about a
//! repeat, stage it, then commit it in one transaction — or play it into
//! the log as a stream — and clear the staging area whatever happened.
//! Everything the page learns of it is [`ImportNews`], told as it happens.

use super::importer::{self, Progress, Request, Stopped};
use crate::domain::events::ImportCompleted;
use crate::engine::imports::{ImportNews, ImportOrder};
use crate::io::import::label_for;
use crate::io::staged::Watched;
use crate::store::idb::IdbStore;
use crate::store::EventStore;
use std::cell::Cell;
use std::rc::Rc;

/// Whether the user asked the import to stop (set by the worker when the
/// page says so).
pub type CancelFlag = Rc<Cell<bool>>;
/// Where the news goes.
pub type Tell = Rc<dyn Fn(ImportNews)>;

/// Run `order` over `store` with the file `blob`. `tell` hears the news as
/// it happens; the last piece ([`ImportNews::ends`]) is returned instead.
pub async fn run(
    store: &IdbStore,
    order: &ImportOrder,
    blob: &web_sys::Blob,
    cancel: CancelFlag,
    tell: Tell,
) -> ImportNews {
    let outcome = import(store, order, blob, cancel, tell.clone()).await;
    if let Err(e) = store.clear_staging().await {
        tell(ImportNews::Leftover(format!(
            "Could not clear the import's staging area: {e}"
        )));
    }
    match outcome {
        Ok(news) => news,
        Err(Stopped::Cancelled) => ImportNews::Cancelled {
            streamed: order.stream.is_some(),
        },
        Err(Stopped::Failed { message, skippable }) => ImportNews::Failed { message, skippable },
    }
}

async fn import(
    store: &IdbStore,
    order: &ImportOrder,
    blob: &web_sys::Blob,
    cancel: CancelFlag,
    tell: Tell,
) -> Result<ImportNews, Stopped> {
    let report = {
        let tell = tell.clone();
        move |line: String, fraction: Option<f64>| tell(ImportNews::Progress { line, fraction })
    };
    let cancelled = {
        let cancel = cancel.clone();
        move || cancel.get()
    };
    let progress = Progress {
        report: &report,
        cancelled: &cancelled,
    };
    let name = order.name.as_str();
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
    if earlier > 0 && !order.again {
        return Ok(ImportNews::Duplicate(format!(
            "{name} was imported before ({earlier} time{}). Import it again, as separate cases?",
            if earlier == 1 { "" } else { "s" }
        )));
    }
    let request = Request {
        name,
        blob,
        format: order.format,
        mapping: order.mapping.clone(),
        completion: order.completion.clone(),
        label: label_for(name, earlier),
        sha256: sha,
        skip_bad: order.skip_bad,
    };
    let staged = importer::stage(store, &request, &progress).await?;
    if let Some(speed) = order.stream {
        let on_commit = |head: u64| tell(ImportNews::Committed(head));
        importer::play(
            store,
            staged.plan,
            staged.events,
            speed,
            &progress,
            &on_commit,
        )
        .await?;
        return Ok(ImportNews::Done(format!("{} (streamed).", staged.summary)));
    }
    let t1 = js_sys::Date::now();
    let total = staged.events;
    report(format!("writing {total} events in one commit…"), None);
    let plan = Box::new(Watched {
        inner: staged.plan,
        cancelled: move || cancel.get(),
        report: move |n: u64| {
            report(
                format!("writing {n} of {total} events in one commit…"),
                Some(n as f64 / total.max(1) as f64),
            )
        },
        handed: 0,
    });
    match store.commit_staged(plan).await {
        Ok(c) => {
            tell(ImportNews::Committed(c.last_seq));
            let now = js_sys::Date::now();
            Ok(ImportNews::Done(format!(
                "{} in {:.1} s (read {:.1} s, write {:.1} s).",
                staged.summary,
                (now - t0) / 1000.0,
                (t1 - t0) / 1000.0,
                (now - t1) / 1000.0
            )))
        }
        Err(_) if cancelled() => Err(Stopped::Cancelled),
        Err(e) => Err(Stopped::Failed {
            message: format!("Nothing was imported: {e}"),
            skippable: false,
        }),
    }
}
