//! Exports in the engine's worker: the log as CloudEvents NDJSON, its
//! cases as CSV, and a damaged log's salvage — read a page at a time, each
//! page's text handed on as it is made (the page joins the pieces into
//! the file it offers), and the cut that keeps a damaged log up to its
//! last good event.

use crate::domain::events::LogRecovered;
use crate::engine::call::EngineError;
use crate::engine::messages::{Exported, Salvaged};
use crate::io::cases_csv;
use crate::io::cloudevents::to_line;
use crate::log::{Envelope, NewEvent};
use crate::store::idb::{IdbStore, Salvage};
use crate::store::{EventStore, ExpectedVersion, StoreError, StreamAppend};

/// Events per read.
const PAGE: usize = 4_096;

/// Hand the log's events `from..=to` to `f`, a page at a time.
async fn each_page(
    store: &IdbStore,
    from: u64,
    to: u64,
    mut f: impl FnMut(Vec<Envelope>),
) -> Result<(), StoreError> {
    let mut next = from.max(1);
    while next <= to {
        let page = store.read_all(next, PAGE).await?;
        let Some(last) = page.last().map(|e| e.seq) else {
            break;
        };
        next = last + 1;
        f(page.into_iter().filter(|e| e.seq <= to).collect());
    }
    Ok(())
}

/// Events as CloudEvents lines.
fn lines(events: &[Envelope]) -> String {
    let mut text = String::new();
    for e in events {
        text.push_str(&to_line(e));
        text.push('\n');
    }
    text
}

/// Events `from..=to`, a CloudEvent a line; `part` hears each piece and
/// the events written so far.
pub async fn log(
    store: &IdbStore,
    from: u64,
    to: u64,
    part: &dyn Fn(String, u64),
) -> Result<Exported, EngineError> {
    let mut count = 0u64;
    each_page(store, from, to, |page| {
        count += page.len() as u64;
        part(lines(&page), count);
    })
    .await
    .map_err(|e| EngineError::Store(e.to_string()))?;
    Ok(Exported {
        count,
        salvage: None,
    })
}

/// Every activity as a row of the cases CSV, its header first.
pub async fn cases(store: &IdbStore, part: &dyn Fn(String, u64)) -> Result<Exported, EngineError> {
    part(cases_csv::HEADER.to_string(), 0);
    let mut count = 0u64;
    each_page(store, 1, u64::MAX, |page| {
        let (text, n) = cases_csv::rows(page);
        count += n as u64;
        part(text, count);
    })
    .await
    .map_err(|e| EngineError::Store(e.to_string()))?;
    Ok(Exported {
        count,
        salvage: None,
    })
}

/// Every record that still decodes, as CloudEvents lines, and what is
/// wrong where; the salvage itself is kept for [`cut`].
pub async fn salvage(
    store: &IdbStore,
    part: &dyn Fn(String, u64),
) -> Result<(Exported, Salvage), EngineError> {
    let mut count = 0u64;
    let salvage = store
        .salvage(|events| {
            count += events.len() as u64;
            part(lines(events), count);
        })
        .await
        .map_err(|e| EngineError::Store(e.to_string()))?;
    let found = Salvaged {
        head: salvage.head,
        last_good: salvage.last_good(),
        problem: salvage.problem.clone(),
        readable_after: salvage.readable_after,
    };
    Ok((
        Exported {
            count,
            salvage: Some(found),
        },
        salvage,
    ))
}

/// Keep the log up to the salvage's last good event and record the cut
/// right after it; the head after the cut.
pub async fn cut(
    store: &IdbStore,
    salvage: &Salvage,
    export_file: String,
    at: i64,
) -> Result<u64, EngineError> {
    let Some(problem) = salvage.problem.clone() else {
        return Err(EngineError::NothingToCut("the log keeps its rules".into()));
    };
    let payload = LogRecovered {
        kept_to: salvage.last_good(),
        old_head: salvage.head,
        problem,
        exported_after_cut: salvage.readable_after,
        export_file,
    };
    let record = StreamAppend::new(
        LogRecovered::STREAM,
        ExpectedVersion::Any,
        vec![NewEvent::new(
            crate::web::random_token(),
            LogRecovered::TYPE,
            LogRecovered::SCHEMA,
            at,
            &payload,
        )],
    );
    store
        .cut_after(salvage, record)
        .await
        .map(|c| c.last_seq)
        .map_err(|e| EngineError::Store(e.to_string()))
}
