//! The engine's message API: what the page asks of the engine in its
//! worker ([`Command`]) and what it hears back ([`Reply`]), both plain data
//! (postcard-encoded across the worker boundary), and the [`Driver`] that
//! answers them over any store — so the API is tested natively, on the
//! memory store, and the worker only moves bytes.
//!
//! The page never receives projections: it folds the log itself for its
//! views, and hears from the engine only where the loop stands.

use super::{Engine, Step};
use crate::domain::model::ModelTrained;
use crate::ml::feedback_loop::{Loaded, Policy};
use crate::ml::models::Model;
use crate::projection::training_set::Finished;
use crate::store::EventStore;
use serde::{Deserialize, Serialize};
use std::future::Future;

/// What the page asks of the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Open the log in the browser's database `database`, restore the
    /// projections from its newest snapshot, fold the rest of the log, and
    /// follow it with `policy`, predicting what is committed from then on.
    /// (The worker opens IndexedDB; the driver does the rest.)
    Start {
        /// The IndexedDB database.
        database: String,
        /// The loop's policy.
        policy: Policy,
        /// The database is a shared log's copy: the engine's appends wait
        /// in its outbox until the server has them.
        #[serde(default)]
        shared: bool,
    },
    /// The log's head moved (a commit in this tab or another): catch up.
    Head(u64),
    /// A new policy.
    Policy(Policy),
    /// The model asked for ([`Reply::Train`]) was trained and registered
    /// (bytes in the registry, `ModelTrained` in the log): let it enter.
    Trained {
        /// What the log says of it.
        record: Box<ModelTrained>,
        /// The reason it was asked for.
        reason: String,
    },
    /// The model asked for could not be trained, or the user cancelled it.
    TrainingFailed,
}

/// What the engine tells the page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// Following the log; the projections restored to `seq`.
    Started {
        /// Where the projections stand.
        seq: u64,
    },
    /// Caught up to `seq` after a [`Command::Head`].
    CaughtUp {
        /// Where the projections stand.
        seq: u64,
        /// Predictions recorded on the way.
        predictions: usize,
        /// The newest position the engine appended, if it did.
        appended_to: Option<u64>,
        /// Milliseconds from the command to the engine's last commit (what
        /// the page calls prediction latency; without a commit, to the end).
        ms: f64,
    },
    /// Train a model on these cases and answer [`Command::Trained`] or
    /// [`Command::TrainingFailed`].
    Train {
        /// `first model`, `drift` or `schedule`.
        reason: String,
        /// The closed cases, in log order.
        cases: Vec<Finished>,
        /// The position and domain time it is trained up to.
        position: (u64, i64),
        /// The highest `model-N` the log knows.
        known_models: u64,
    },
    /// Something the user should read (a model that cannot predict here).
    Note(String),
    /// A command failed; the engine goes on with the next.
    Failed(String),
}

/// Where the engine finds a registered model's bytes and record.
pub trait ModelSource {
    /// The model `id`, ready to predict, or why not.
    fn load(&self, id: &str) -> impl Future<Output = Result<Loaded, String>>;
}

/// A registered model from its record and bytes.
pub fn loaded(record: &ModelTrained, bytes: &[u8]) -> Result<Loaded, String> {
    Ok(Loaded {
        id: record.id.clone(),
        model: Model::from_bytes(bytes).map_err(|e| e.to_string())?,
        median_h: record.median_h,
    })
}

/// Models kept in memory by id (record and bytes): the native hosts'.
impl ModelSource
    for std::cell::RefCell<std::collections::BTreeMap<String, (ModelTrained, Vec<u8>)>>
{
    async fn load(&self, id: &str) -> Result<Loaded, String> {
        let found = self.borrow().get(id).cloned();
        let (record, bytes) = found.ok_or("it is not in the registry")?;
        loaded(&record, &bytes)
    }
}

/// The browser's registry: the record and the bytes the page stored.
#[cfg(target_arch = "wasm32")]
impl ModelSource for crate::store::idb::IdbStore {
    async fn load(&self, id: &str) -> Result<Loaded, String> {
        let record = self
            .list_models()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|(k, _)| k == id)
            .ok_or("it is not in this browser's registry (was the log imported from elsewhere?)")?
            .1?;
        let bytes = self
            .model_bytes(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("its bytes are missing from the registry")?;
        loaded(&record, &bytes)
    }
}

impl<M: ModelSource> ModelSource for std::rc::Rc<M> {
    async fn load(&self, id: &str) -> Result<Loaded, String> {
        (**self).load(id).await
    }
}

/// The engine answering commands over a store, with models from `M`.
pub struct Driver<S, M> {
    store: S,
    models: M,
    engine: Engine,
    /// Events per read.
    pub batch: usize,
}

impl<S: EventStore, M: ModelSource> Driver<S, M> {
    /// Drive `engine` over `store`.
    pub fn new(store: S, models: M, engine: Engine) -> Self {
        Driver {
            store,
            models,
            engine,
            batch: 4096,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Answer one command; `now` is a clock in milliseconds.
    pub async fn handle(&mut self, command: Command, now: &dyn Fn() -> f64) -> Vec<Reply> {
        match command {
            // What the log holds already was predicted by whoever ran the
            // loop then (or by nobody): fold it, predict from here on.
            // Predicting it now would record predictions twice, or late.
            Command::Start { .. } => {
                let predicting = self.engine.predicting;
                self.engine.predicting = false;
                let mut replies = self.catch_up(now).await;
                self.engine.predicting = predicting;
                let seq = self.engine.set().seq();
                replies.retain(|r| !matches!(r, Reply::CaughtUp { .. }));
                replies.push(Reply::Started { seq });
                replies
            }
            Command::Head(_) => self.catch_up(now).await,
            Command::Policy(policy) => {
                self.engine.policy = policy;
                self.catch_up(now).await
            }
            Command::Trained { record, reason } => {
                let model = match self.models.load(&record.id).await {
                    Ok(model) => Some(model),
                    Err(why) => {
                        self.engine.training_failed();
                        return vec![Reply::Failed(format!(
                            "{} was trained but cannot be loaded: {why}",
                            record.id
                        ))];
                    }
                };
                match self
                    .engine
                    .enter(&self.store, &record, &reason, model)
                    .await
                {
                    Ok(_) => self.catch_up(now).await,
                    Err(e) => vec![Reply::Failed(e.to_string())],
                }
            }
            Command::TrainingFailed => {
                self.engine.training_failed();
                self.catch_up(now).await
            }
        }
    }

    /// Step until everything is folded, the engine's own appends included.
    async fn catch_up(&mut self, now: &dyn Fn() -> f64) -> Vec<Reply> {
        let started = now();
        let mut replies = Vec::new();
        let (mut predictions, mut appended_to, mut appended_at) = (0, None, None);
        loop {
            for id in self.engine.wanted_models() {
                match self.models.load(&id).await {
                    Ok(model) => self.engine.add_model(model),
                    Err(why) => {
                        self.engine.cannot_load(&id);
                        replies.push(Reply::Note(format!("{id} cannot predict here: {why}")));
                    }
                }
            }
            let step: Step = match self.engine.step(&self.store, self.batch).await {
                Ok(step) => step,
                Err(e) => {
                    replies.push(Reply::Failed(e.to_string()));
                    return replies;
                }
            };
            predictions += step.predictions;
            if step.appended_to.is_some() {
                appended_at = Some(now());
            }
            appended_to = step.appended_to.or(appended_to);
            if let Some(request) = step.train {
                replies.push(Reply::Train {
                    reason: request.reason.to_owned(),
                    cases: request.cases,
                    position: request.position,
                    known_models: request.known_models,
                });
            }
            if step.appended_to.is_none() {
                replies.push(Reply::CaughtUp {
                    seq: step.seq,
                    predictions,
                    appended_to,
                    ms: appended_at.unwrap_or_else(now) - started,
                });
                return replies;
            }
        }
    }
}
