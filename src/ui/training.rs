//! Train a model in the worker and register it: bytes in this browser's
//! registry first, then the `ModelTrained` event in the log. Used by the
//! loop and by the Models view.

use super::trainer::{Asked, Trainer};
use super::Log;
use crate::domain::model::{ModelTrained, Spec};
use crate::log::NewEvent;
use crate::ml::models::Model;
use crate::ml::protocol::{FromWorker, ToWorker};
use crate::projection::training_set::Finished;
use crate::store::idb::IdbStore;
use crate::store::{EventStore, ExpectedVersion};
use leptos::prelude::*;
use std::rc::Rc;

/// Train `spec` in the worker on closed `cases`; record it in the log (a
/// `ModelTrained` event, trained up to `seq`) and the registry; check that
/// the stored bytes predict what the worker did. Returns the record and a
/// line for the page.
pub async fn train_and_register(
    log: Log,
    trainer: &Trainer,
    spec: Option<Spec>,
    cases: Vec<Finished>,
    (trained_to_seq, at): (u64, i64),
    known_models: u64,
    progress: impl Fn(String) + 'static,
) -> Result<(ModelTrained, String), Asked> {
    let store: Rc<IdbStore> = log.get().ok_or("the log is not open")?;
    if cases.len() < 10 {
        return Err(Asked::Failed(format!(
            "only {} closed cases: at least 10 are needed to train",
            cases.len()
        )));
    }
    let answer = trainer
        .request(
            move |id| ToWorker::TrainCases {
                id,
                spec,
                cases,
                holdout: 0.2,
            },
            progress,
        )
        .await?;
    let (mut record, bytes, sample) = match answer {
        FromWorker::TrainedCases {
            record,
            model,
            sample,
            ..
        } => (record, model, sample),
        FromWorker::Failed { message, .. } => return Err(Asked::Failed(message)),
        _ => {
            return Err(Asked::Failed(
                "the training worker answered something unexpected".into(),
            ))
        }
    };
    record.trained_to_seq = trained_to_seq;
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
        // Store the bytes first: a model named in the log can always be loaded.
        if store
            .save_new_model(&record, &bytes)
            .await
            .map_err(|e| e.to_string())?
        {
            break;
        }
        n += 1;
    }
    // Load what was stored and predict on this thread: it must agree.
    let stored = store
        .model_bytes(&record.id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the model's bytes were not stored")?;
    let model = Model::from_bytes(&stored).map_err(|e| e.to_string())?;
    let rows: Vec<Vec<f64>> = sample.iter().map(|(r, _)| r.clone()).collect();
    let here = model.predict(&rows).map_err(|e| e.to_string())?;
    let same = here.iter().zip(&sample).all(|(a, (_, b))| a == b);
    if !same {
        return Err(Asked::Failed(format!(
            "{}: the stored model predicts differently from the worker",
            record.id
        )));
    }
    let event = NewEvent::new(
        format!("{}-trained", record.id),
        ModelTrained::TYPE,
        ModelTrained::SCHEMA,
        at,
        &record,
    );
    let committed = store
        .append(&record.id, ExpectedVersion::NoStream, vec![event])
        .await
        .map_err(|e| e.to_string())?;
    log.head.update(|h| *h = (*h).max(committed.last_seq));
    let message = format!(
        "{} trained on {} cases: holdout MAE {:.2} days vs median {:.2}; the stored bytes predict the same as the worker on {} holdout rows",
        record.id,
        record.train_cases + record.holdout_cases,
        record.holdout_mae_days,
        record.baseline_mae_days,
        rows.len()
    );
    Ok((*record, message))
}
