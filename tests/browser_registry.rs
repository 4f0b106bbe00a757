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

/// A fresh database holding `events` of the simulator's events, and the
/// cases closed in them (the training set a model is trained on).
async fn simulated_log(
    prefix: &str,
    events: usize,
) -> (
    String,
    IdbStore,
    Vec<retrace::projection::training_set::Finished>,
) {
    let name = retrace::store::idb::fresh_database_name(prefix);
    let store = IdbStore::open(&name).await.unwrap();
    let mut sim = Simulator::new(Settings::default());
    let batch = sim
        .next_events(events)
        .into_iter()
        .map(|(s, e)| StreamAppend::new(s, ExpectedVersion::Any, vec![e]))
        .collect();
    store.append_batch(batch).await.unwrap();
    let mut set = ProjectionSet::default();
    replay(&mut set, &store, u64::MAX, 1000, |_| {})
        .await
        .unwrap();
    let cases = set.training.state.closed.iter().cloned().collect();
    (name, store, cases)
}

#[wasm_bindgen_test]
async fn a_saved_model_reloads_and_predicts_the_same() {
    let (name, store, cases) = simulated_log("registry", 4000).await;
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

/// Given a trained model, when the engine's worker registers it twice, then
/// each gets the next free id, its bytes are stored, and `ModelTrained` is
/// in the log; when the bytes do not predict what the training worker said,
/// then nothing is recorded in the log.
#[wasm_bindgen_test]
async fn the_engine_registers_a_trained_model_under_the_next_free_id() {
    use retrace::domain::model::ModelTrained;
    use retrace::engine::messages::Registration;
    use retrace::host::registry::register;
    let (_, store, cases) = simulated_log("register", 3000).await;
    let spec = Spec {
        trees: 10,
        ..Spec::new(Algorithm::RandomForest)
    };
    let trained = train_with_holdout(&spec, &cases, 0.2, &js_sys::Date::now).unwrap();
    let registration = |known_models| Registration {
        record: Box::new(trained.record.clone()),
        bytes: trained.bytes.clone(),
        sample: trained.sample.clone(),
        at: 7,
        known_models,
    };
    let before = store.head().await.unwrap();
    let (first, head) = register(&store, registration(0)).await.unwrap();
    assert_eq!(first.id, "model-1");
    assert_eq!(head, before + 1);
    // The log already knows model-4 (from another browser, say): past it.
    let (second, head) = register(&store, registration(4)).await.unwrap();
    assert_eq!(second.id, "model-5");
    assert_eq!(head, before + 2);
    let recorded: Vec<ModelTrained> = store
        .read_all(before + 1, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.payload::<ModelTrained>().unwrap())
        .collect();
    // The log holds JSON text, and serde_json's default float parsing may
    // differ from the written value in the last bit: compare what the log
    // would give back for each registered record.
    let as_logged = |m: &ModelTrained| -> ModelTrained {
        serde_json::from_str(&serde_json::to_string(m).unwrap()).unwrap()
    };
    assert_eq!(recorded, vec![as_logged(&first), as_logged(&second)]);
    assert!(store.model_bytes("model-5").await.unwrap().is_some());

    let mut wrong = registration(0);
    wrong.sample[0].1 += 1.0;
    let err = register(&store, wrong).await.unwrap_err();
    assert!(err.contains("predicts differently"), "{err}");
    assert_eq!(
        store.head().await.unwrap(),
        before + 2,
        "nothing recorded in the log"
    );
}
