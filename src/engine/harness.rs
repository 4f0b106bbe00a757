//! The engine run natively on the memory store, step for step as the page's
//! worker runs it — except that training finishes at once instead of in
//! another worker.

use super::{Engine, TrainRequest};
use crate::domain::model::{ModelTrained, Spec};
use crate::log::NewEvent;
use crate::ml::feedback_loop::{Loaded, Policy};
use crate::ml::models::{Model, ModelError};
use crate::ml::registry::{train_served, train_with_holdout};
use crate::projection::ProjectionSet;
use crate::store::memory::MemoryStore;
use crate::store::{by_stream, EventStore, StreamAppend};

/// Drive a future that never waits (the memory store's) to its end.
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("the memory store answers at once"),
    }
}

/// A log in memory with the engine following it.
pub struct Harness {
    /// The log.
    pub store: MemoryStore,
    /// The engine over it.
    pub engine: Engine,
    /// What to train; None: choose on validation, as the page does.
    pub spec: Option<Spec>,
    trained: usize,
    /// What the loop did, in words, in order.
    pub journal: Vec<String>,
}

impl Harness {
    /// An empty log with a policy.
    pub fn new(policy: Policy, spec: Option<Spec>) -> Self {
        Harness {
            store: MemoryStore::new(),
            engine: Engine::new(ProjectionSet::default(), policy),
            spec,
            trained: 0,
            journal: Vec::new(),
        }
    }

    /// The engine's projections.
    pub fn set(&self) -> &ProjectionSet {
        self.engine.set()
    }

    /// Append a batch from outside (the simulator, an import) and let the
    /// engine react to it, as the page's worker does after every commit.
    pub fn feed(&mut self, batch: Vec<StreamAppend>) -> Result<(), String> {
        ready(self.store.append_batch(batch)).map_err(|e| e.to_string())?;
        self.catch_up()
    }

    /// Feed a whole log (an import's appends, in time order) as a stream
    /// of commits of `per_commit` events each.
    pub fn stream(&mut self, appends: Vec<StreamAppend>, per_commit: usize) -> Result<(), String> {
        let events: Vec<(String, NewEvent)> = appends
            .into_iter()
            .flat_map(|part| {
                let stream = part.stream;
                part.events.into_iter().map(move |e| (stream.clone(), e))
            })
            .collect();
        for commit in events.chunks(per_commit.max(1)) {
            self.feed(by_stream(commit.iter().cloned()))?;
        }
        Ok(())
    }

    /// Step the engine until it has folded everything, its own appends
    /// included, training what it asks for on the way.
    fn catch_up(&mut self) -> Result<(), String> {
        loop {
            let step = ready(self.engine.step(&self.store, 4096)).map_err(|e| e.to_string())?;
            if let Some(verdict) = &step.verdict {
                self.journal.push(format!("{verdict:?}"));
            }
            if let Some(request) = step.train {
                let reason = request.reason;
                let (record, model) = self.train(request)?;
                ready(self.engine.enter(&self.store, &record, reason, Some(model)))
                    .map_err(|e| e.to_string())?;
                continue;
            }
            if step.appended_to.is_none() {
                return Ok(());
            }
        }
    }

    fn train(&mut self, request: TrainRequest) -> Result<(ModelTrained, Loaded), String> {
        let cases = &request.cases;
        let trained = match &self.spec {
            Some(spec) => train_with_holdout(spec, cases, 0.2, &|| 0.0),
            None => train_served(cases, &|| 0.0, &mut |_| {}),
        }
        .map_err(|e: ModelError| e.to_string())?;
        self.trained += 1;
        let mut record = trained.record;
        record.id = format!("model-{}", self.trained);
        record.trained_to_seq = request.position.0;
        let model = Model::from_bytes(&trained.bytes).map_err(|e| e.to_string())?;
        self.journal.push(format!(
            "{} {} trained ({}) on {} cases at seq {}",
            record.id,
            record.algorithm,
            request.reason,
            cases.len(),
            record.trained_to_seq
        ));
        let loaded = Loaded {
            id: record.id.clone(),
            model,
            median_h: record.median_h,
        };
        Ok((record, loaded))
    }
}
