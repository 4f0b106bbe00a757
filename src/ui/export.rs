//! Exports, as the page sees them: the engine's worker reads the log and
//! sends the text a piece at a time; the page joins the pieces into the
//! file it offers (each piece goes to the browser as it comes, so a large
//! export never sits whole in wasm memory).

use super::browser::Parts;
use super::live::Live;
use crate::engine::messages::{Command, Export, Exported, Reply};
use futures::StreamExt;

/// Have the engine read `what`; the pieces and how it ended. `busy` hears
/// how many items are written so far.
pub async fn read(
    live: Live,
    what: Export,
    busy: &dyn Fn(u64),
) -> Result<(Parts, Exported), String> {
    let mut answers = live.export(|id| Command::Export { id, what });
    let mut parts = Parts::default();
    while let Some(reply) = answers.next().await {
        match reply {
            Reply::ExportPart { text, so_far, .. } => {
                parts.push(&text);
                busy(so_far);
            }
            Reply::Exported { outcome, .. } => return outcome.map(|e| (parts, e)),
            _ => {}
        }
    }
    Err("the log engine went away before the export was whole; try again".into())
}

/// Events `from..=to` as `retrace-log.ndjson`; `busy` hears the progress.
/// Returns what to tell the user.
pub async fn log(live: Live, from: u64, to: u64, busy: &dyn Fn(String)) -> Result<String, String> {
    let (parts, done) = read(live, Export::Log { from, to }, &|n| {
        busy(format!("exported {n} events…"))
    })
    .await?;
    parts.download("retrace-log.ndjson", "application/x-ndjson")?;
    Ok(format!("Exported {} events as CloudEvents.", done.count))
}

/// Every activity as a row of `retrace-cases.csv`.
pub async fn cases(live: Live) -> Result<String, String> {
    let (parts, done) = read(live, Export::Cases, &|_| {}).await?;
    parts.download("retrace-cases.csv", "text/csv")?;
    Ok(format!("Exported {} activities as CSV.", done.count))
}
