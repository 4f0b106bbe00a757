//! The model registry in IndexedDB: a model saved and read back after a
//! reopen predicts exactly as before.
#![cfg(target_arch = "wasm32")]

use retrace::domain::simulator::{Settings, Simulator};
use retrace::ml::models::{Algorithm, Model, Spec};
use retrace::ml::registry::train_with_holdout;
use retrace::projection::{replay, ProjectionSet};
use retrace::store::idb::IdbStore;
use retrace::store::{EventStore, ExpectedVersion, StreamAppend};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn a_saved_model_reloads_and_predicts_the_same() {
    let name = retrace::store::idb::fresh_database_name("registry");
    let store = IdbStore::open(&name).await.unwrap();
    let mut sim = Simulator::new(Settings::default());
    let batch = sim
        .next_events(4000)
        .into_iter()
        .map(|(s, e)| StreamAppend::new(s, ExpectedVersion::Any, vec![e]))
        .collect();
    store.append_batch(batch).await.unwrap();
    let mut set = ProjectionSet::default();
    replay(&mut set, &store, u64::MAX, 1000, |_| {})
        .await
        .unwrap();
    let cases: Vec<_> = set.training.state.closed.iter().cloned().collect();
    assert!(
        cases.len() > 100,
        "the simulated log has closed cases ({})",
        cases.len()
    );
    let spec = Spec {
        trees: 20,
        ..Spec::new(Algorithm::RandomForest)
    };
    let mut trained = train_with_holdout(&spec, &cases, 0.2, &js_sys::Date::now).unwrap();
    trained.record.id = "model-1".into();
    assert!(
        trained.record.holdout_mae_days < trained.record.baseline_mae_days,
        "the forest beats the median on the simulator's holdout"
    );
    store
        .save_model(&trained.record, &trained.bytes)
        .await
        .unwrap();
    store.close();

    let store = IdbStore::open(&name).await.unwrap();
    let listed = store.list_models().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1.as_ref().unwrap(), &trained.record);
    let model = Model::from_bytes(&store.model_bytes("model-1").await.unwrap().unwrap()).unwrap();
    let rows: Vec<Vec<f64>> = trained.sample.iter().map(|(r, _)| r.clone()).collect();
    let expected: Vec<f64> = trained.sample.iter().map(|(_, p)| *p).collect();
    assert_eq!(model.predict(&rows).unwrap(), expected);
}
