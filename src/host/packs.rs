//! A shared log's packs ([`crate::share::packs`]) in the engine's worker:
//! the page downloads and uploads them; reading, checking and committing a
//! pack, and making one from the log, happen here, off the page's thread.

use crate::share::packs::PackMade;
use crate::share::{objects, packs};
use crate::store::idb::IdbStore;
use crate::store::{by_stream, EventStore};
use crate::web::sha256;

/// Events per commit of a pack's events.
const COMMIT: usize = 25_000;

/// Check pack `from..=to` against the SHA-256 its description gives and
/// against the stream's events sampled inside it, and commit its events
/// after `after`: the log's head after them. Nothing is committed unless
/// every check passed.
pub async fn apply(
    store: &IdbStore,
    (from, to): (u64, u64),
    after: u64,
    (described, samples): (&str, &[packs::Packed]),
    bytes: Vec<u8>,
) -> Result<u64, String> {
    if objects::digest_of(&sha256(&bytes).await) != described {
        return Err(format!(
            "pack {}'s bytes do not match their SHA-256",
            packs::name(from, to)
        ));
    }
    let events = packs::unpack(&bytes, from, to, after)?;
    drop(bytes);
    packs::agrees(&events, samples)?;
    let mut head = after;
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let part: Vec<_> = events
            .by_ref()
            .take(COMMIT)
            .map(|(_, stream, event)| (stream, event))
            .collect();
        head = store
            .append_replicated(by_stream(part))
            .await
            .map_err(|e| e.to_string())?
            .last_seq;
    }
    Ok(head)
}

/// The pack of the log's events `from..=to`.
pub async fn make(store: &IdbStore, from: u64, to: u64) -> Result<PackMade, String> {
    let n = to.checked_sub(from).map(|d| d + 1).unwrap_or(0) as usize;
    let events = store.read_all(from, n).await.map_err(|e| e.to_string())?;
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Err(format!("the log holds no events from {from}"));
    };
    if (first.seq, last.seq, events.len()) != (from, to, n) {
        return Err(format!(
            "the log holds events {}..{} of {from}..{to}",
            first.seq, last.seq
        ));
    }
    let bytes = packs::pack(&events);
    Ok(PackMade {
        sha256: sha256(&bytes).await,
        bytes,
        first_id: first.id.clone(),
        last_id: last.id.clone(),
    })
}
