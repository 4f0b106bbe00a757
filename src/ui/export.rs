//! Export the log as CloudEvents NDJSON, or its cases as CSV: read a page
//! at a time (the page breathes between them) and hand the browser a file.

use super::browser::{yield_now, Parts};
use crate::io::cases_csv;
use crate::io::cloudevents::to_line;
use crate::store::idb::IdbStore;
use crate::store::EventStore;

/// Hand the log's events `from..=to` to `f`, 4,096 at a time, letting the
/// page breathe between pages.
async fn each_page(
    store: &IdbStore,
    from: u64,
    to: u64,
    mut f: impl FnMut(Vec<crate::log::Envelope>),
) -> Result<(), crate::store::StoreError> {
    let mut next = from.max(1);
    while next <= to {
        let page = store.read_all(next, 4096).await?;
        let Some(last) = page.last().map(|e| e.seq) else {
            break;
        };
        next = last + 1;
        f(page.into_iter().filter(|e| e.seq <= to).collect());
        yield_now().await;
    }
    Ok(())
}

/// Events `from..=to` as `retrace-log.ndjson`; `busy` hears the progress.
/// Returns what to tell the user.
pub async fn log(
    store: &IdbStore,
    from: u64,
    to: u64,
    busy: &dyn Fn(String),
) -> Result<String, String> {
    let mut parts = Parts::default();
    let mut lines = 0u64;
    each_page(store, from.max(1), to, |page| {
        let mut text = String::new();
        for e in page {
            text.push_str(&to_line(&e));
            text.push('\n');
            lines += 1;
        }
        parts.push(&text);
        busy(format!("exported {lines} events…"));
    })
    .await
    .map_err(|e| e.to_string())?;
    parts.download("retrace-log.ndjson", "application/x-ndjson")?;
    Ok(format!("Exported {lines} events as CloudEvents."))
}

/// Every activity as a row of `retrace-cases.csv`.
pub async fn cases(store: &IdbStore) -> Result<String, String> {
    let mut parts = Parts::default();
    parts.push(cases_csv::HEADER);
    let mut rows = 0;
    each_page(store, 1, u64::MAX, |page| {
        let (text, n) = cases_csv::rows(page);
        rows += n;
        parts.push(&text);
    })
    .await
    .map_err(|e| e.to_string())?;
    parts.download("retrace-cases.csv", "text/csv")?;
    Ok(format!("Exported {rows} activities as CSV."))
}
