//! Snapshots: a projection's state at a position, so boot replays only the
//! tail of the log.
//!
//! A snapshot carries the projection's name, the code version of its fold,
//! the `seq` it reflects, a checksum and the state in postcard bytes. On
//! restore, one whose checksum fails or whose code version differs is
//! ignored (with a note saying why) and that projection is rebuilt from the
//! log — a snapshot is only ever a shortcut, never the truth.

use super::{each_slot, Projection, ProjectionSet, Slot};
use crate::store::StoreError;

pub use crate::store::snapshot::{
    checksum, to_prune, MemorySnapshots, Snapshot, SnapshotStore, KEEP_NEWEST, KEEP_OLDER, SPACING,
};

impl Snapshot {
    /// The snapshot of a slot.
    pub fn of<P: Projection>(slot: &Slot<P>) -> Snapshot {
        let bytes = postcard::to_allocvec(&slot.state).expect("projection states encode");
        Snapshot {
            name: P::NAME.into(),
            code_version: P::VERSION,
            seq: slot.seq,
            checksum: checksum(&bytes),
            bytes,
        }
    }

    /// The slot this snapshot holds, or why it cannot be used.
    pub fn restore<P: Projection>(&self) -> Result<Slot<P>, String> {
        if self.code_version != P::VERSION {
            return Err(format!(
                "the {} snapshot at seq {} was written by another version of its fold ({} ≠ {})",
                P::NAME,
                self.seq,
                self.code_version,
                P::VERSION
            ));
        }
        if checksum(&self.bytes) != self.checksum {
            return Err(format!(
                "the {} snapshot at seq {} is damaged (checksum mismatch)",
                P::NAME,
                self.seq
            ));
        }
        let state = postcard::from_bytes(&self.bytes).map_err(|e| {
            format!(
                "the {} snapshot at seq {} does not decode: {e}",
                P::NAME,
                self.seq
            )
        })?;
        Ok(Slot {
            state,
            seq: self.seq,
        })
    }
}

/// What a restore did: for the boot line and the notes on the page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Restored {
    /// The lowest position any projection was restored to (replay starts after it).
    pub from_seq: u64,
    /// Snapshots that were ignored, and why.
    pub notes: Vec<String>,
}

/// The set as of the newest usable snapshots at or before `at`.
pub async fn restore<S: SnapshotStore>(
    store: &S,
    at: u64,
) -> Result<(ProjectionSet, Restored), StoreError> {
    let mut set = ProjectionSet::default();
    let mut notes = Vec::new();
    each_slot!(set, slot => restore_slot(store, at, slot, &mut notes).await?);
    let from_seq = set.seq();
    Ok((set, Restored { from_seq, notes }))
}

async fn restore_slot<S: SnapshotStore, P: Projection>(
    store: &S,
    at: u64,
    slot: &mut Slot<P>,
    notes: &mut Vec<String>,
) -> Result<(), StoreError> {
    let positions = store.positions(P::NAME).await?;
    for &seq in positions.iter().rev().filter(|&&s| s <= at) {
        let Some(snapshot) = store.load(P::NAME, seq).await? else {
            continue;
        };
        match snapshot.restore::<P>() {
            Ok(restored) => {
                *slot = restored;
                return Ok(());
            }
            Err(why) => notes.push(format!("{why}; rebuilt it from the log")),
        }
    }
    Ok(())
}

/// Snapshots of every projection of the set (synchronous: no borrow of the
/// set lives across an await).
pub fn snapshots_of(set: &ProjectionSet) -> Vec<Snapshot> {
    vec![
        Snapshot::of(&set.open_cases),
        Snapshot::of(&set.history),
        Snapshot::of(&set.workload),
        Snapshot::of(&set.stats),
        Snapshot::of(&set.training),
        Snapshot::of(&set.feedback),
    ]
}

/// Older snapshots kept of projection `name`. The training set keeps only
/// its newest: it is the newest closed cases with their events, copied from
/// the log (the biggest snapshot by far), and no view of the past reads it
/// (see [`restore_for_views`]).
pub fn keep_older(name: &str) -> usize {
    if name == <crate::projection::training_set::TrainingSet as Projection>::NAME {
        0
    } else {
        KEEP_OLDER
    }
}

/// The projections as of `at`, for the views of the past: every one the
/// views read, from its newest snapshot at or before `at`. The training set
/// is left empty, at `at`, so the replay up to `at` does not fold it.
pub async fn restore_for_views<S: SnapshotStore>(
    store: &S,
    at: u64,
) -> Result<(ProjectionSet, Restored), StoreError> {
    let (mut set, mut restored) = restore(store, at).await?;
    set.training = Slot {
        state: Default::default(),
        seq: at,
    };
    restored.from_seq = set.seq();
    Ok((set, restored))
}

/// Save the whole set and prune old snapshots.
pub async fn save<S: SnapshotStore>(store: &S, set: &ProjectionSet) -> Result<(), StoreError> {
    save_snapshots(store, snapshots_of(set)).await
}

/// Save snapshots and prune old ones.
pub async fn save_snapshots<S: SnapshotStore>(
    store: &S,
    snapshots: Vec<Snapshot>,
) -> Result<(), StoreError> {
    let names: Vec<String> = snapshots.iter().map(|s| s.name.clone()).collect();
    store.save(snapshots).await?;
    for name in names {
        for seq in to_prune(&store.positions(&name).await?, keep_older(&name)) {
            store.delete(&name, seq).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(positions: &[u64], keep_older: usize) -> Vec<u64> {
        let pruned = to_prune(positions, keep_older);
        positions
            .iter()
            .copied()
            .filter(|p| !pruned.contains(p))
            .collect()
    }

    #[test]
    fn pruning_keeps_the_newest_and_one_per_band() {
        let positions: Vec<u64> = (1..=30).map(|i| i * 10_000).collect();
        let kept = kept(&positions, 20);
        assert!(kept.ends_with(&[280_000, 290_000, 300_000]), "{kept:?}");
        // Older ones: one per 50k band, the newest in each.
        assert!(
            kept.contains(&40_000) && !kept.contains(&30_000),
            "{kept:?}"
        );
        assert!(to_prune(&[5, 6, 7], 0).is_empty());
    }

    #[test]
    fn on_a_vast_log_the_older_snapshots_stay_few_and_spread_over_all_of_it() {
        // A snapshot every 10,000 events of a 10M-event log, pruned after each.
        let mut stored: Vec<u64> = Vec::new();
        for seq in (1..=1_000).map(|i| i * 10_000) {
            stored.push(seq);
            stored = kept(&stored, KEEP_OLDER);
            assert!(stored.len() <= KEEP_NEWEST + KEEP_OLDER, "{stored:?}");
        }
        // Travel anywhere folds at most a band: no gap wider than 10M / 4.
        let gaps = stored.windows(2).map(|w| w[1] - w[0]).chain([stored[0]]);
        assert!(gaps.clone().all(|g| g <= 2_600_000), "{stored:?}");
        assert!(stored.len() >= KEEP_NEWEST + KEEP_OLDER / 2, "{stored:?}");
        // Without older ones (the training set): only the newest stay.
        assert_eq!(kept(&stored, 0), stored[stored.len() - KEEP_NEWEST..]);
    }

    #[test]
    fn the_past_for_the_views_does_not_fold_the_training_set() {
        use crate::store::EventStore;
        let store = crate::store::memory::MemoryStore::new();
        let events =
            crate::domain::simulator::Simulator::new(Default::default()).next_events(3_000);
        futures::executor::block_on(store.append_batch(crate::store::by_stream(events))).unwrap();
        let snaps = MemorySnapshots::default();
        let (set, _) = futures::executor::block_on(restore_for_views(&snaps, 2_000)).unwrap();
        assert_eq!(set.training.seq, 2_000);
        assert_eq!(set.seq(), 0, "every other projection folds from the start");
        let mut set = set;
        futures::executor::block_on(crate::projection::replay(
            &mut set,
            &store,
            2_000,
            512,
            |_| {},
        ))
        .unwrap();
        assert_eq!(set.open_cases.seq, 2_000);
        assert!(
            set.training.state == Default::default(),
            "the training set was not folded"
        );
    }
}
