//! The log engine: the projections kept current with a log and the
//! prediction feedback loop run over them — fold what was committed,
//! predict every open case it touched, record the predictions and the
//! detector's alarms, judge a challenger, ask for a model when one is due.
//!
//! The same projections serve the views: [`views::Views`] takes from them
//! what the page's panels show, and the engine hands it over whenever they
//! moved, so the page never folds.
//!
//! It is written once, over any [`EventStore`]: every tab runs it in a Web
//! Worker against IndexedDB (`src/bin/worker.rs`, [`messages`]), the native
//! tests and `examples/prequential.rs` run it through [`Harness`] against
//! the memory store. Training is the host's: the engine says what to train
//! on ([`TrainRequest`]) and is told what came of it ([`Engine::enter`],
//! [`Engine::training_failed`]) — a worker trains in another worker while
//! predictions go on; the harness trains at once.

pub mod api;
pub mod call;
mod harness;
pub mod imports;
pub mod messages;
pub mod simulation;
pub mod stream_row;
pub mod views;

pub use harness::Harness;

use crate::domain::model::ModelTrained;
use crate::domain::Fact;
use crate::ml::feedback_loop::{
    apply_and_predict, decide, drift_events, entry_event, log_time, mature_cases, release_events,
    training_cases, unguessable, verdict_event, Decision, Loaded, Policy, Stamp,
};
use crate::projection::training_set::Finished;
use crate::projection::{read_decoded, ProjectionSet, ReplayError};
use crate::store::{EventStore, StoreError};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use stream_row::{keep_newest, StreamRow, STREAM_ROWS};

/// When the loop may take its next decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gate {
    /// Now.
    Open,
    /// Once the projections have folded this position (the engine's own
    /// verdict or a model's entry): deciding before would decide twice.
    Until(u64),
    /// A model is being trained for it.
    Training,
}

/// This browser drives a shared log's loop: it holds the loop's lease on
/// the server. What the engine needs to fence its decisions by term.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Driver {
    /// The browser's lasting id.
    pub browser: String,
    /// What the others are shown.
    pub name: String,
    /// The lease's revision when this browser took it.
    pub lease: u64,
    /// Random bytes drawn for this term: they key the decisions' ids.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("browser", &self.browser)
            .field("lease", &self.lease)
            .finish()
    }
}

/// Where the engine stands on deciding.
#[derive(Clone, Debug, PartialEq)]
pub enum Standing {
    /// A log of its own: it decides, without a term.
    Own,
    /// It drives a shared log and its term is the log's: it decides in it.
    InTerm(u64),
    /// It drives a shared log but its term is not (yet) the log's, or its
    /// lease may have run out: it neither predicts nor decides.
    Fenced,
    /// It does not drive the shared log's loop.
    NotDriving,
}

/// A model the loop wants trained, and what to train it on.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainRequest {
    /// `first model`, `drift` or `schedule`.
    pub reason: &'static str,
    /// The closed cases, in log order.
    pub cases: Vec<Finished>,
    /// The position and domain time it is trained up to.
    pub position: (u64, i64),
    /// The highest `model-N` the log knows (new ids go past it).
    pub known_models: u64,
}

/// What one [`Engine::step`] did, and what it asks of the host.
#[derive(Debug, Default)]
pub struct Step {
    /// Where the projections stand now.
    pub seq: u64,
    /// The last position the engine appended (predictions, alarms, a
    /// verdict), if it appended.
    pub appended_to: Option<u64>,
    /// Predictions recorded.
    pub predictions: usize,
    /// A challenger's promotion or retirement, recorded.
    pub verdict: Option<Decision>,
    /// A model to train.
    pub train: Option<TrainRequest>,
}

/// The projections and the loop over one log.
pub struct Engine {
    set: ProjectionSet,
    /// When to train and how to judge.
    pub policy: Policy,
    /// Whether the loop runs (predictions, alarms, decisions); off, the
    /// engine only folds.
    pub predicting: bool,
    models: BTreeMap<String, Loaded>,
    unloadable: BTreeSet<String>,
    gate: Gate,
    /// The engine's own alarms and decisions that went to a shared log's
    /// outbox and have not come back from the server yet: until they are
    /// folded the projections do not know of them, and deciding again
    /// would record them twice.
    awaiting: BTreeSet<String>,
    /// The newest events, newest first, as the live stream shows them.
    stream: VecDeque<StreamRow>,
    /// On a shared log: the lease this browser holds, if it does.
    driver: Option<Driver>,
    /// Until when (the host's clock, ms) the lease is surely held.
    lease_until: f64,
    /// The id of this driver's newest `LoopTaken`, and how many it wrote.
    announced: Option<String>,
    announcements: u32,
    /// The host's clock, ms, as of the current step.
    clock: f64,
    /// This is a shared log's copy: decisions need a term.
    shared: bool,
}

impl Engine {
    /// An engine whose projections stand at `set` (restored from a
    /// snapshot, or empty).
    pub fn new(set: ProjectionSet, policy: Policy) -> Engine {
        let mut set = set;
        set.training.state.set_window(policy.keep);
        Engine {
            set,
            policy,
            predicting: true,
            models: BTreeMap::new(),
            unloadable: BTreeSet::new(),
            gate: Gate::Open,
            awaiting: BTreeSet::new(),
            stream: VecDeque::new(),
            driver: None,
            lease_until: f64::NEG_INFINITY,
            announced: None,
            announcements: 0,
            clock: 0.0,
            shared: false,
        }
    }

    /// This engine folds a shared log's copy: the loop's decisions are
    /// fenced by term, and only a driver takes them.
    pub fn set_shared(&mut self, shared: bool) {
        self.shared = shared;
    }

    /// This browser took the shared log's loop (`Some`), or no longer
    /// drives it. Taking it again with another lease starts a new term.
    pub fn drive(&mut self, driver: Option<Driver>) {
        if driver.as_ref().map(|d| d.lease) != self.driver.as_ref().map(|d| d.lease) {
            self.announced = None;
        }
        if driver.is_none() {
            self.lease_until = f64::NEG_INFINITY;
        }
        self.driver = driver;
    }

    /// The lease is surely held until `until` (the host's clock, ms): past
    /// it, whatever its requests are doing, the engine stops deciding.
    pub fn lease_until(&mut self, until: f64) {
        self.lease_until = until;
    }

    /// The host's clock now, ms (what the lease's time is measured on).
    pub fn set_clock(&mut self, now: f64) {
        self.clock = now;
    }

    /// Where the engine stands on deciding now.
    pub fn standing(&self) -> Standing {
        if !self.shared {
            return Standing::Own;
        }
        let Some(driver) = &self.driver else {
            return Standing::NotDriving;
        };
        if self.clock > self.lease_until {
            return Standing::Fenced;
        }
        match (&self.set.feedback.state.term, &self.announced) {
            (Some(term), Some(mine)) if term.id == *mine && term.browser == driver.browser => {
                Standing::InTerm(term.seq)
            }
            _ => Standing::Fenced,
        }
    }

    /// How this engine stamps its decisions now, if it may decide.
    fn stamp(&self) -> Option<Stamp> {
        match self.standing() {
            Standing::Own => Some(Stamp::local_in(
                self.set.feedback.state.term.as_ref().map(|t| t.seq),
            )),
            Standing::InTerm(term) => Some(Stamp::driving(
                term,
                &self.driver.as_ref().expect("a driver").secret,
            )),
            Standing::Fenced | Standing::NotDriving => None,
        }
    }

    /// A driver whose term is not the log's (it just took the lease, or
    /// another `LoopTaken` came after its own) announces itself, once its
    /// previous announcement is back: a `LoopTaken` with an id only it
    /// can make.
    fn announcement(&mut self) -> Option<crate::store::StreamAppend> {
        use crate::domain::events::{LoopTaken, MODELS_STREAM};
        if !self.predicting || self.standing() != Standing::Fenced || self.clock > self.lease_until
        {
            return None;
        }
        let driver = self.driver.as_ref()?;
        if self
            .announced
            .as_ref()
            .is_some_and(|id| self.awaiting.contains(id))
        {
            return None;
        }
        self.announcements += 1;
        let id = format!(
            "loop-{}-{}",
            driver.lease,
            unguessable(
                &driver.secret,
                &format!("loop-{}-{}", driver.lease, self.announcements)
            )
        );
        let event = crate::log::NewEvent::new(
            id.clone(),
            LoopTaken::TYPE,
            LoopTaken::SCHEMA,
            log_time(&self.set),
            &LoopTaken {
                browser: driver.browser.clone(),
                name: driver.name.clone(),
                lease: driver.lease,
            },
        );
        self.announced = Some(id.clone());
        self.awaiting.insert(id);
        Some(crate::store::StreamAppend::new(
            MODELS_STREAM,
            crate::store::ExpectedVersion::Any,
            vec![event],
        ))
    }

    /// Follow `policy` from now on; the training set keeps as many closed
    /// cases as it says.
    pub fn set_policy(&mut self, policy: Policy) {
        self.set.training.state.set_window(policy.keep);
        self.policy = policy;
    }

    /// The projections.
    pub fn set(&self) -> &ProjectionSet {
        &self.set
    }

    /// The newest events folded, newest first.
    pub fn stream(&self) -> &VecDeque<StreamRow> {
        &self.stream
    }

    /// Read the newest events into the stream (after a restore from
    /// snapshots, which keep no events).
    pub async fn fill_stream<S: EventStore>(&mut self, store: &S) -> Result<(), ReplayError> {
        let seq = self.set.seq();
        if self.stream.len() >= STREAM_ROWS || seq == 0 {
            return Ok(());
        }
        let from = seq.saturating_sub(STREAM_ROWS as u64 - 1).max(1);
        let mut rows = VecDeque::new();
        read_decoded(store, from, seq, STREAM_ROWS, |events| {
            keep_newest(&mut rows, &events)
        })
        .await?;
        self.stream = rows;
        Ok(())
    }

    /// The champion and challenger the log names that the engine has not
    /// loaded (nor failed to load): load them, then [`Engine::add_model`]
    /// or [`Engine::cannot_load`].
    pub fn wanted_models(&self) -> Vec<String> {
        let f = &self.set.feedback.state;
        [f.champion.clone(), f.challenger.clone()]
            .into_iter()
            .flatten()
            .filter(|id| !self.models.contains_key(id) && !self.unloadable.contains(id))
            .collect()
    }

    /// A model ready to predict.
    pub fn add_model(&mut self, loaded: Loaded) {
        self.models.insert(loaded.id.clone(), loaded);
    }

    /// A model the log names that cannot be loaded here: its predictions
    /// are skipped (and the host says why).
    pub fn cannot_load(&mut self, id: &str) {
        self.unloadable.insert(id.to_owned());
    }

    /// Try every model the log names again (its bytes may have arrived).
    pub fn forget_unloadable(&mut self) {
        self.unloadable.clear();
    }

    /// Whether a model is being trained for the loop.
    pub fn is_training(&self) -> bool {
        self.gate == Gate::Training
    }

    /// Catch up with `store`: fold every event past the projections'
    /// position (in batches of `batch`) and, while predicting, record the
    /// predictions of the champion and the challenger and the detector's
    /// new alarms in one commit; then take the loop's next decision, if the
    /// gate allows — a verdict is recorded in that same commit, a model to
    /// train is asked of the host.
    pub async fn step<S: EventStore>(
        &mut self,
        store: &S,
        batch: usize,
    ) -> Result<Step, ReplayError> {
        let from = self.set.seq() + 1;
        let mut appends = Vec::new();
        // On a shared log only the driver in the log's term predicts.
        let in_term = self.stamp().is_some();
        let (set, models, predicting) = (&mut self.set, &self.models, self.predicting && in_term);
        let awaiting = &mut self.awaiting;
        let stream = &mut self.stream;
        read_decoded(store, from, u64::MAX, batch, |events| {
            keep_newest(stream, &events);
            if !awaiting.is_empty() {
                events.iter().for_each(|e| {
                    awaiting.remove(&e.id);
                })
            }
            if !predicting {
                return events.iter().for_each(|e| set.apply(e));
            }
            // Each event is predicted by the models in force once the
            // events before it are folded: a promotion inside a batch
            // takes effect at once, not with the next read.
            let mut start = 0;
            for end in 1..=events.len() {
                let changes_models = matches!(
                    events[end - 1].fact,
                    Fact::ModelPromoted(_) | Fact::ChallengerStarted(_) | Fact::ModelRetired(_)
                );
                if changes_models || end == events.len() {
                    let f = &set.feedback.state;
                    let get = |id: &Option<String>| id.as_ref().and_then(|id| models.get(id));
                    let (champion, challenger) = (get(&f.champion), get(&f.challenger));
                    appends.extend(apply_and_predict(
                        set,
                        &events[start..end],
                        champion,
                        challenger,
                        &self.policy,
                    ));
                    start = end;
                }
            }
        })
        .await?;
        let mut step = Step {
            predictions: appends.iter().map(|a| a.events.len()).sum(),
            ..Step::default()
        };
        // Decisions wait for the engine's own earlier ones to be in the log.
        let mut decided = Vec::new();
        decided.extend(self.announcement());
        let stamp = self.stamp();
        if let Some(stamp) = stamp.filter(|_| self.predicting && self.awaiting.is_empty()) {
            decided.extend(drift_events(&self.set, &stamp));
            if let Gate::Until(seq) = self.gate {
                if self.set.seq() >= seq {
                    self.gate = Gate::Open;
                }
            }
            if self.gate == Gate::Open {
                match decide(&self.set.feedback.state, &self.policy) {
                    // The first model waits for enough cases whose
                    // outcome is known whatever their length.
                    Some(Decision::Train { reason, .. })
                        if reason == "first model"
                            && (mature_cases(&self.set) as u64) < self.policy.first_after => {}
                    Some(Decision::Train { reason, window }) => {
                        self.gate = Gate::Training;
                        step.train = Some(TrainRequest {
                            reason,
                            cases: training_cases(&self.set, window, reason),
                            position: (self.set.seq(), log_time(&self.set)),
                            known_models: self.set.feedback.state.highest_model_number(),
                        });
                    }
                    Some(verdict) => {
                        decided.extend(verdict_event(&self.set, &verdict, &stamp));
                        step.verdict = Some(verdict);
                    }
                    None => {}
                }
            }
            decided.extend(release_events(&self.set, self.policy.keep_retired, &stamp));
        }
        // A model whose bytes the log let go no longer predicts here.
        let f = &self.set.feedback.state;
        if f.registered
            .iter()
            .any(|r| r.released && self.models.contains_key(&r.record.id))
        {
            let gone: Vec<String> = f.released().map(str::to_owned).collect();
            self.models.retain(|id, _| !gone.contains(id));
        }
        let decided_ids = ids(&decided);
        appends.extend(decided);
        if !appends.is_empty() {
            let committed = store.append_batch(appends).await?;
            if step.verdict.is_some() {
                self.gate = Gate::Until(committed.last_seq);
            }
            if committed.is_empty() {
                self.awaiting.extend(decided_ids);
            }
            step.appended_to = Some(committed.last_seq);
        }
        step.seq = self.set.seq();
        Ok(step)
    }

    /// The model trained for [`Step::train`] is registered (its
    /// `ModelTrained` in the log, its bytes where the host keeps them):
    /// record how it enters — champion if there is none, else challenger —
    /// and predict with it from the next step on.
    pub async fn enter<S: EventStore>(
        &mut self,
        store: &S,
        record: &ModelTrained,
        reason: &str,
        model: Option<Loaded>,
    ) -> Result<u64, StoreError> {
        if let Some(model) = model {
            self.add_model(model);
        }
        // A driver out of its term does not let a model in: it stays
        // registered, and the log's driver decides about it.
        let Some(stamp) = self.stamp() else {
            self.gate = Gate::Open;
            return Ok(self.set.seq());
        };
        let entry = entry_event(&self.set, record, reason, &stamp);
        let entry_ids = ids(std::slice::from_ref(&entry));
        match store.append_batch(vec![entry]).await {
            Ok(committed) => {
                self.gate = Gate::Until(committed.last_seq);
                if committed.is_empty() {
                    self.awaiting.extend(entry_ids);
                }
                Ok(committed.last_seq)
            }
            Err(e) => {
                self.gate = Gate::Open;
                Err(e)
            }
        }
    }

    /// Whether the engine may record the loop's decisions now: always on a
    /// log of its own; on a shared log while it drives in the log's term.
    pub fn may_decide(&self) -> bool {
        self.stamp().is_some()
    }

    /// How a decision taken now is stamped (None: it may not decide).
    pub fn current_stamp(&self) -> Option<Stamp> {
        self.stamp()
    }

    /// The training asked for failed or was cancelled: decide afresh.
    pub fn training_failed(&mut self) {
        if self.gate == Gate::Training {
            self.gate = Gate::Open;
        }
    }
}

/// The ids of the events in `appends`.
fn ids(appends: &[crate::store::StreamAppend]) -> Vec<String> {
    appends
        .iter()
        .flat_map(|a| a.events.iter().map(|e| e.id.clone()))
        .collect()
}

#[cfg(test)]
mod scenario;
#[cfg(test)]
mod tests;
