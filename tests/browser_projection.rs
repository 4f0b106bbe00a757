//! Projections over the IndexedDB log: snapshots survive a reopen and cut
//! the replay to the tail; a corrupted snapshot is ignored and the state
//! still equals a full replay.
#![cfg(target_arch = "wasm32")]

use retrace::domain::simulator::{Settings, Simulator};
use retrace::projection::snapshot::{self, SnapshotStore};
use retrace::projection::{replay, ProjectionSet};
use retrace::store::idb::IdbStore;
use retrace::store::{EventStore, ExpectedVersion, StreamAppend};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = r#"
export function damage(name, store) {
  return new Promise((ok, fail) => {
    const open = indexedDB.open(name);
    open.onerror = () => fail(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction(store, 'readwrite');
      const s = tx.objectStore(store);
      const keys = s.getAllKeys();
      keys.onsuccess = () => {
        for (const k of keys.result) {
          const get = s.get(k);
          get.onsuccess = () => {
            const bytes = new Uint8Array(get.result);
            // Flip bytes in the middle of each record.
            for (let i = bytes.length >> 1; i < (bytes.length >> 1) + 8 && i < bytes.length; i++) bytes[i] ^= 0x5a;
            s.put(bytes, k);
          };
        }
      };
      tx.oncomplete = () => { db.close(); ok(); };
      tx.onabort = () => fail(tx.error);
    };
  });
}
"#)]
extern "C" {
    fn damage(name: &str, store: &str) -> js_sys::Promise;
}

fn fresh_name() -> String {
    retrace::store::idb::fresh_database_name("proj")
}

async fn simulated(store: &IdbStore, seed: u64, n: usize) {
    let mut sim = Simulator::new(Settings {
        seed,
        ..Settings::default()
    });
    let batch = sim
        .next_events(n)
        .into_iter()
        .map(|(s, e)| StreamAppend::new(s, ExpectedVersion::Any, vec![e]))
        .collect();
    store.append_batch(batch).await.unwrap();
}

async fn full_replay(store: &IdbStore) -> ProjectionSet {
    let mut set = ProjectionSet::default();
    replay(&mut set, store, u64::MAX, 500, |_| {})
        .await
        .unwrap();
    set
}

#[wasm_bindgen_test]
async fn a_snapshot_survives_reopening_and_only_the_tail_is_replayed() {
    let name = fresh_name();
    let store = IdbStore::open(&name).await.unwrap();
    simulated(&store, 11, 3000).await;
    let set = full_replay(&store).await;
    snapshot::save(&store, &set).await.unwrap();
    store.close();

    let store = IdbStore::open(&name).await.unwrap();
    simulated(&store, 12, 200).await;
    let head = store.head().await.unwrap();
    let (mut restored, report) = snapshot::restore(&store, u64::MAX).await.unwrap();
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert_eq!(
        report.from_seq,
        set.seq(),
        "restored from the saved position"
    );
    let replayed = replay(&mut restored, &store, u64::MAX, 500, |_| {})
        .await
        .unwrap();
    assert_eq!(replayed, head - set.seq(), "only the tail is replayed");
    assert_eq!(restored, full_replay(&store).await);
}

#[wasm_bindgen_test]
async fn a_corrupted_snapshot_is_ignored_and_the_state_equals_full_replay() {
    let name = fresh_name();
    let store = IdbStore::open(&name).await.unwrap();
    simulated(&store, 21, 1500).await;
    let set = full_replay(&store).await;
    snapshot::save(&store, &set).await.unwrap();
    store.close();
    wasm_bindgen_futures::JsFuture::from(damage(&name, retrace::store::idb::SNAPSHOTS))
        .await
        .unwrap();

    let store = IdbStore::open(&name).await.unwrap();
    assert_eq!(
        store.positions("open_cases").await.unwrap(),
        vec![set.seq()],
        "the damaged record is still there"
    );
    let (mut restored, report) = snapshot::restore(&store, u64::MAX).await.unwrap();
    assert_eq!(
        report.notes.len(),
        6,
        "every damaged snapshot is reported: {:?}",
        report.notes
    );
    assert_eq!(report.from_seq, 0);
    replay(&mut restored, &store, u64::MAX, 500, |_| {})
        .await
        .unwrap();
    assert_eq!(restored, set, "rebuilt from the log, the state is the same");
}

#[wasm_bindgen_test]
async fn a_model_whose_stored_bytes_are_damaged_is_refused_not_used() {
    use retrace::ml::feedback_loop::training_cases;
    use retrace::ml::models::{Algorithm, Model, ModelError, Spec};
    use retrace::ml::registry::train_with_holdout;
    let name = fresh_name();
    let store = IdbStore::open(&name).await.unwrap();
    simulated(&store, 11, 4_000).await;
    let set = full_replay(&store).await;
    let cases = training_cases(&set, 0, "manual");
    assert!(cases.len() > 50, "{} closed cases", cases.len());
    let mut trained =
        train_with_holdout(&Spec::new(Algorithm::Ridge), &cases, 0.2, &|| 0.0).unwrap();
    trained.record.id = "model-1".into();
    assert!(store
        .save_new_model(&trained.record, &trained.bytes)
        .await
        .unwrap());
    let stored = store.model_bytes("model-1").await.unwrap().unwrap();
    assert!(Model::from_bytes(&stored).is_ok(), "the stored bytes load");
    store.close();

    wasm_bindgen_futures::JsFuture::from(damage(&name, retrace::store::idb::MODEL_BYTES))
        .await
        .unwrap();
    let store = IdbStore::open(&name).await.unwrap();
    let damaged = store.model_bytes("model-1").await.unwrap().unwrap();
    assert_ne!(damaged, stored, "the record was damaged");
    let err = Model::from_bytes(&damaged).expect_err("damaged bytes never predict");
    assert!(matches!(err, ModelError::Damaged(_)), "{err}");
    assert!(err.to_string().contains("train a new model"), "{err}");
    // The registry still lists it: the log names it, the page says why it cannot serve.
    let listed = store.list_models().await.unwrap();
    assert_eq!(listed.len(), 1);
}
