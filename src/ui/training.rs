//! Train a model in the training worker, then have the engine register it
//! (bytes in this browser's registry first, then the `ModelTrained` event in
//! the log, both in the engine's worker: `Command::Register`). Used by the
//! loop and by the Models view.

use super::trainer::{Asked, Trainer};
use crate::domain::model::{ModelTrained, Spec};
use crate::engine::call::EngineError;
use crate::engine::messages::Registration;
use crate::ml::protocol::{FromWorker, ToWorker};
use crate::projection::training_set::Finished;
use std::future::Future;

/// Train `spec` in the training worker on closed `cases` (trained up to
/// `seq`, at domain time `at`), then hand it to `register` (the engine:
/// see [`super::live::Live::register`]). Returns the record as registered
/// and a line for the page.
pub async fn train_and_register<R>(
    trainer: &Trainer,
    spec: Option<Spec>,
    cases: Vec<Finished>,
    (trained_to_seq, at): (u64, i64),
    known_models: u64,
    progress: impl Fn(String) + 'static,
    register: impl FnOnce(Registration) -> R,
) -> Result<(ModelTrained, String), Asked>
where
    R: Future<Output = Result<ModelTrained, EngineError>>,
{
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
    let rows = sample.len();
    let record = register(Registration {
        record,
        bytes,
        sample,
        at,
        known_models,
    })
    .await
    .map_err(|e| Asked::Failed(e.to_string()))?;
    let message = format!(
        "{} trained on {} cases: holdout MAE {:.2} days vs median {:.2}; the stored bytes predict the same as the worker on {rows} holdout rows",
        record.id,
        record.train_cases + record.holdout_cases,
        record.holdout_mae_days,
        record.baseline_mae_days,
    );
    Ok((record, message))
}
