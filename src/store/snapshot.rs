//! Snapshots as the store keeps them: a projection's name, the code
//! version of its fold, the `seq` it reflects, a checksum and opaque bytes.
//! What the bytes mean is the projections' business (`projection::snapshot`).

use super::StoreError;
use serde::{Deserialize, Serialize};

/// A stored projection state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Projection name.
    pub name: String,
    /// The projection's code version when it was written.
    pub code_version: u32,
    /// The last `seq` the state reflects.
    pub seq: u64,
    /// FNV-1a 64 of `bytes`.
    pub checksum: u64,
    /// The state, postcard-encoded.
    pub bytes: Vec<u8>,
}

/// FNV-1a, 64 bit: cheap, and enough to catch a damaged record.
pub fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where snapshots are kept.
#[allow(async_fn_in_trait)]
pub trait SnapshotStore {
    /// Save snapshots.
    async fn save(&self, snapshots: Vec<Snapshot>) -> Result<(), StoreError>;
    /// Positions of `name`'s stored snapshots, ascending.
    async fn positions(&self, name: &str) -> Result<Vec<u64>, StoreError>;
    /// One snapshot.
    async fn load(&self, name: &str, seq: u64) -> Result<Option<Snapshot>, StoreError>;
    /// Delete one snapshot.
    async fn delete(&self, name: &str, seq: u64) -> Result<(), StoreError>;
}

/// Which stored positions to delete: keep the newest [`KEEP_NEWEST`] (boot
/// uses the newest; the others stand in if it is damaged), and of the older
/// ones at most `keep_older`, spread over the whole log for time travel:
/// the newest in each band of [`SPACING`] events, the bands doubling in width
/// until no more than `keep_older` are left. Bands only ever merge in pairs
/// as the log grows, so every band keeps a snapshot once it has had one, and
/// travelling anywhere folds at most about a band's width of events.
pub fn to_prune(positions: &[u64], keep_older: usize) -> Vec<u64> {
    let mut sorted = positions.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let split = sorted.len().saturating_sub(KEEP_NEWEST);
    let older = &sorted[..split];
    let newest_per_band = |width: u64| {
        let mut kept: Vec<u64> = Vec::new();
        for &p in older.iter().rev() {
            if kept.last().is_none_or(|&k| k / width != p / width) {
                kept.push(p);
            }
        }
        kept
    };
    let mut width = SPACING;
    let mut keep = newest_per_band(width);
    while keep.len() > keep_older && width < u64::MAX / 2 {
        width *= 2;
        keep = newest_per_band(width);
    }
    if keep_older == 0 {
        keep.clear();
    }
    older
        .iter()
        .copied()
        .filter(|p| !keep.contains(p))
        .collect()
}

/// Newest snapshots always kept per projection.
pub const KEEP_NEWEST: usize = 3;
/// The narrowest band for older snapshots.
pub const SPACING: u64 = 50_000;
/// Older snapshots kept per projection (for time travel), at most.
pub const KEEP_OLDER: usize = 8;

/// Snapshots in memory, for native tests.
#[derive(Default)]
pub struct MemorySnapshots {
    items: std::cell::RefCell<std::collections::BTreeMap<(String, u64), Snapshot>>,
}

impl MemorySnapshots {
    /// Change a stored snapshot (tests use it to damage one).
    pub fn tamper(&self, name: &str, seq: u64, f: impl FnOnce(&mut Snapshot)) {
        if let Some(s) = self.items.borrow_mut().get_mut(&(name.to_owned(), seq)) {
            f(s);
        }
    }
}

impl SnapshotStore for MemorySnapshots {
    async fn save(&self, snapshots: Vec<Snapshot>) -> Result<(), StoreError> {
        let mut items = self.items.borrow_mut();
        for s in snapshots {
            items.insert((s.name.clone(), s.seq), s);
        }
        Ok(())
    }

    async fn positions(&self, name: &str) -> Result<Vec<u64>, StoreError> {
        Ok(self
            .items
            .borrow()
            .keys()
            .filter(|(n, _)| n == name)
            .map(|(_, s)| *s)
            .collect())
    }

    async fn load(&self, name: &str, seq: u64) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.items.borrow().get(&(name.to_owned(), seq)).cloned())
    }

    async fn delete(&self, name: &str, seq: u64) -> Result<(), StoreError> {
        self.items.borrow_mut().remove(&(name.to_owned(), seq));
        Ok(())
    }
}
