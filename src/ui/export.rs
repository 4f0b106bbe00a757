//! Exports, as the page sees them: the engine's worker reads the log and
//! sends the text a piece at a time; the page turns each piece into a blob
//! as it comes ([`Parts`]) and offers them joined as the file, so a large
//! export sits whole neither in wasm memory nor on the page's heap.

use super::browser::Parts;
use super::live::Live;
use crate::engine::call::{EngineError, ExportFile};
use crate::engine::messages::{Export, Exported, Reply};

/// Have the engine read `what`; the pieces and how it ended. `busy` hears
/// how many items are written so far.
pub async fn read(
    live: Live,
    what: Export,
    busy: &dyn Fn(u64),
) -> Result<(Parts, Exported), EngineError> {
    let mut parts = Parts::default();
    let done = live
        .call(ExportFile(what), |piece| {
            if let Reply::ExportPart { text, so_far, .. } = piece {
                parts.push(&text);
                busy(so_far);
            }
        })
        .await?;
    Ok((parts, done))
}

/// Events `from..=to` as `retrace-log.ndjson`; `busy` hears the progress.
/// Returns what to tell the user.
pub async fn log(live: Live, from: u64, to: u64, busy: &dyn Fn(String)) -> Result<String, String> {
    let (parts, done) = read(live, Export::Log { from, to }, &|n| {
        busy(format!("exported {n} events…"))
    })
    .await
    .map_err(|e| e.to_string())?;
    parts.download("retrace-log.ndjson", "application/x-ndjson")?;
    Ok(format!("Exported {} events as CloudEvents.", done.count))
}

/// Every activity as a row of `retrace-cases.csv`.
pub async fn cases(live: Live) -> Result<String, String> {
    let (parts, done) = read(live, Export::Cases, &|_| {})
        .await
        .map_err(|e| e.to_string())?;
    parts.download("retrace-cases.csv", "text/csv")?;
    Ok(format!("Exported {} activities as CSV.", done.count))
}
