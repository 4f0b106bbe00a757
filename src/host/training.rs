//! Models trained for this tab's engine: in a training worker the engine's
//! worker starts itself (the same module, nested), so the closed cases go
//! from the engine to the trainer and the model's bytes back into the
//! registry without crossing the page. The loop's requests
//! ([`Reply::Train`]) and the user's ([`HostCommand::Train`]) take the same
//! way: the closed cases from the engine's queue, the training worker,
//! then the registration through the host's queue.
//!
//! The backtest and the integrity check run in a second worker of the
//! same module, the checks' worker: the cases go to it from the engine, and
//! it reads the log's database itself, so the page starts no worker and
//! opens no database.
//!
//! [`HostCommand::Train`]: crate::engine::messages::HostCommand::Train

use super::engine::Host;
use crate::domain::model::ModelTrained;
use crate::engine::call::{CasesAnswer, EngineError};
use crate::engine::messages::{Command, Registration, Reply};
use crate::host::trainer::Asked;
use crate::ml::backtest::default_specs;
use crate::ml::models::Spec;
use crate::ml::protocol::{FromWorker, ToWorker};

/// Fewer closed cases than this train nothing.
const FEWEST_CASES: usize = 10;

impl Host {
    /// The loop asked for a model (`reason`: first model, drift,
    /// schedule): train it, register it, and tell the engine how it went.
    pub(super) fn train_for_loop(&self, reason: String, material: CasesAnswer) {
        let host = self.clone();
        let round = self.trainer().cancels();
        wasm_bindgen_futures::spawn_local(async move {
            let say =
                |busy: bool, message: String| host.post(&Reply::LoopTraining { busy, message });
            say(
                true,
                format!(
                    "training on {} closed cases ({reason})…",
                    material.cases.len()
                ),
            );
            // The loop serves what validation chooses (see ml::selection).
            let said = host.clone();
            let progress = move |message| {
                said.post(&Reply::LoopTraining {
                    busy: true,
                    message,
                })
            };
            match host
                .train_and_register(None, material, round, progress)
                .await
            {
                Ok((record, line)) => {
                    host.enqueue(Command::Trained {
                        record: Box::new(record),
                        reason,
                    });
                    say(false, line);
                }
                Err(e) => {
                    host.enqueue(Command::TrainingFailed);
                    say(false, e.to_string());
                }
            }
        });
    }

    /// The user asked for a model (`HostCommand::Train`): train it on the
    /// newest `window` closed cases, register it, let it enter the loop
    /// if `enter` says why, and answer under `id`.
    pub(super) fn train_by_hand(
        &self,
        id: u32,
        spec: Option<Spec>,
        window: usize,
        enter: Option<String>,
    ) {
        let host = self.clone();
        let round = self.trainer().cancels();
        wasm_bindgen_futures::spawn_local(async move {
            let outcome = async {
                let material = host.closed_cases(window).await?;
                host.trainer().still_wanted(round).map_err(cancelled)?;
                host.post(&Reply::Progress {
                    id,
                    message: format!("training on {} closed cases…", material.cases.len()),
                });
                let said = host.clone();
                let progress = move |message| said.post(&Reply::Progress { id, message });
                host.train_and_register(spec, material, round, progress)
                    .await
            }
            .await;
            if let (Ok((record, _)), Some(reason)) = (&outcome, enter) {
                host.enqueue(Command::Enter {
                    record: Box::new(record.clone()),
                    reason,
                });
            }
            host.post(&Reply::TrainedByHand {
                id,
                outcome: outcome.map(|(record, line)| (Box::new(record), line)),
            });
        });
    }

    /// The user asked for a backtest (`HostCommand::Backtest`): run it in
    /// the checks' worker on the closed cases the training set keeps, and
    /// answer under `id`.
    pub(super) fn backtest(&self, id: u32) {
        let host = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let round = host.checker().cancels();
            let outcome = async {
                let cases = host.closed_cases(0).await?.cases;
                // Cancelled while the engine read them: nothing runs.
                host.checker().still_wanted(round).map_err(cancelled)?;
                host.post(&Reply::Progress {
                    id,
                    message: format!("backtesting on {} closed cases…", cases.len()),
                });
                let answer = host
                    .in_checks_worker(id, move |worker_id| ToWorker::Backtest {
                        id: worker_id,
                        cases,
                        specs: default_specs(),
                    })
                    .await;
                match answer? {
                    FromWorker::BacktestDone { report, .. } => Ok(report),
                    _ => Err(unexpected()),
                }
            }
            .await;
            host.post(&Reply::Backtested { id, outcome });
        });
    }

    /// The user (or the page at start) asked for the integrity check
    /// (`HostCommand::CheckLog`): the checks' worker reads every record of
    /// the log's database; answer under `id`.
    pub(super) fn check_log(&self, id: u32) {
        let host = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let round = host.checker().cancels();
            let outcome = async {
                let database = host.database().await?;
                host.checker().still_wanted(round).map_err(cancelled)?;
                let answer = host
                    .in_checks_worker(id, move |worker_id| ToWorker::VerifyLog {
                        id: worker_id,
                        database,
                    })
                    .await;
                match answer? {
                    FromWorker::Verified { report, .. } => Ok(report),
                    _ => Err(unexpected()),
                }
            }
            .await;
            host.post(&Reply::Checked { id, outcome });
        });
    }

    /// Ask the checks' worker what `build` makes, its progress said under
    /// `id`: its answer, or why there is none.
    async fn in_checks_worker(
        &self,
        id: u32,
        build: impl FnOnce(u32) -> ToWorker,
    ) -> Result<FromWorker, EngineError> {
        let said = self.clone();
        let progress = move |message| said.post(&Reply::Progress { id, message });
        match self.checker().request(build, progress).await {
            Ok(FromWorker::Failed { message, .. }) => Err(EngineError::Check(message)),
            Ok(reply) => Ok(reply),
            Err(Asked::Cancelled) => Err(EngineError::Cancelled),
            Err(Asked::Failed(why)) => Err(EngineError::Check(why)),
        }
    }

    /// Train in the training worker, then register through the engine's
    /// queue: the record as registered and a line for the page. Begun
    /// when the user had cancelled `round` times: a cancel since ends it.
    async fn train_and_register(
        &self,
        spec: Option<Spec>,
        material: CasesAnswer,
        round: u64,
        progress: impl Fn(String) + 'static,
    ) -> Result<(ModelTrained, String), EngineError> {
        let CasesAnswer {
            cases,
            position: (trained_to_seq, at),
            known_models,
        } = material;
        if cases.len() < FEWEST_CASES {
            return Err(EngineError::Training(format!(
                "only {} closed cases: at least {FEWEST_CASES} are needed to train",
                cases.len()
            )));
        }
        let answer = self
            .trainer()
            .request(
                move |id| ToWorker::TrainCases {
                    id,
                    spec,
                    cases,
                    holdout: 0.2,
                },
                progress,
            )
            .await;
        let (mut record, bytes, sample) = match answer {
            Ok(FromWorker::TrainedCases {
                record,
                model,
                sample,
                ..
            }) => (record, model, sample),
            Ok(FromWorker::Failed { message, .. }) => return Err(EngineError::Training(message)),
            Ok(_) => {
                return Err(EngineError::Training(
                    "the training worker answered something unexpected".into(),
                ))
            }
            Err(Asked::Cancelled) => return Err(EngineError::Cancelled),
            Err(Asked::Failed(why)) => return Err(EngineError::Training(why)),
        };
        // Cancelled while the worker answered: nothing is registered.
        self.trainer().still_wanted(round).map_err(cancelled)?;
        record.trained_to_seq = trained_to_seq;
        let rows = sample.len();
        let record = self
            .register(Registration {
                record,
                bytes,
                sample,
                at,
                known_models,
            })
            .await?;
        let line = format!(
            "{} trained on {} cases: holdout MAE {:.2} days vs median {:.2}; the stored bytes predict the same as the worker on {rows} holdout rows",
            record.id,
            record.train_cases + record.holdout_cases,
            record.holdout_mae_days,
            record.baseline_mae_days,
        );
        Ok((record, line))
    }
}

/// A cancel, as the page hears it.
fn cancelled(_: Asked) -> EngineError {
    EngineError::Cancelled
}

fn unexpected() -> EngineError {
    EngineError::Check("the checks' worker answered something unexpected".into())
}
