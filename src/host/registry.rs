//! A trained model into this browser's registry and the log, in the
//! engine's worker: the next free id, the bytes stored first (a model named
//! in the log can always be loaded), the stored bytes checked against the
//! training worker's predictions, then `ModelTrained` recorded.

use crate::domain::model::ModelTrained;
use crate::engine::messages::Registration;
use crate::log::NewEvent;
use crate::ml::models::Model;
use crate::store::idb::IdbStore;
use crate::store::{EventStore, ExpectedVersion};

/// Register `r` in `store`: the record as registered and the log's head
/// after its `ModelTrained`, or why not (nothing recorded in the log then).
pub async fn register(store: &IdbStore, r: Registration) -> Result<(ModelTrained, u64), String> {
    let Registration {
        mut record,
        bytes,
        sample,
        at,
        known_models,
    } = r;
    // The next free number: one past every model this browser or the log
    // knows, and never an id already stored (two tabs training at once
    // each get their own; the registry refuses to overwrite).
    let existing = store.list_models().await.map_err(|e| e.to_string())?;
    let mut n = existing
        .iter()
        .filter_map(|(id, _)| id.strip_prefix("model-")?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        .max(known_models)
        + 1;
    loop {
        record.id = format!("model-{n}");
        if store
            .save_new_model(&record, &bytes)
            .await
            .map_err(|e| e.to_string())?
        {
            break;
        }
        n += 1;
    }
    // Load what was stored and predict here: it must agree.
    let stored = store
        .model_bytes(&record.id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the model's bytes were not stored")?;
    let model = Model::from_bytes(&stored).map_err(|e| e.to_string())?;
    let rows: Vec<Vec<f64>> = sample.iter().map(|(r, _)| r.clone()).collect();
    let here = model.predict(&rows).map_err(|e| e.to_string())?;
    if !here.iter().zip(&sample).all(|(a, (_, b))| a == b) {
        return Err(format!(
            "{}: the stored model predicts differently from the training worker",
            record.id
        ));
    }
    let event = NewEvent::new(
        format!("{}-trained", record.id),
        ModelTrained::TYPE,
        ModelTrained::SCHEMA,
        at,
        &*record,
    );
    let committed = store
        .append(&record.id, ExpectedVersion::NoStream, vec![event])
        .await
        .map_err(|e| e.to_string())?;
    Ok((*record, committed.last_seq))
}
