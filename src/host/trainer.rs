//! A training worker, seen from the engine's worker that starts it (one
//! trains the models, one runs the backtests and the integrity check):
//! start it when first needed, send requests, route its replies, and
//! cancel by terminating it.

use crate::ml::protocol::{decode, encode, FromWorker, ToWorker};
use crate::web::module_worker;
use futures::channel::oneshot;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker};

type Reply = oneshot::Sender<Result<FromWorker, Asked>>;

/// Why a request to the training worker gave no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Asked {
    /// The user cancelled it (the worker was stopped).
    #[error("cancelled")]
    Cancelled,
    /// The worker failed, in words.
    #[error("{0}")]
    Failed(String),
}

impl From<&str> for Asked {
    fn from(message: &str) -> Asked {
        Asked::Failed(message.to_owned())
    }
}

impl From<String> for Asked {
    fn from(message: String) -> Asked {
        Asked::Failed(message)
    }
}
type Progress = Box<dyn Fn(String)>;
type OnMessage = Closure<dyn FnMut(MessageEvent)>;
type OnError = Closure<dyn FnMut(web_sys::Event)>;

#[derive(Default)]
struct Inner {
    worker: RefCell<Option<Worker>>,
    ready: RefCell<Vec<oneshot::Sender<()>>>,
    is_ready: Cell<bool>,
    pending: RefCell<HashMap<u32, (Reply, Progress)>>,
    next_id: Cell<u32>,
    /// How many times it was cancelled.
    cancels: Cell<u64>,
    handlers: RefCell<Vec<OnMessage>>,
    error_handlers: RefCell<Vec<OnError>>,
}

/// A training worker of the engine's.
#[derive(Clone, Default)]
pub struct Trainer(Rc<Inner>);

impl Trainer {
    /// Start the worker if it is not running, and wait until it listens
    /// (cancelled if it is stopped meanwhile).
    async fn ensure(&self) -> Result<Worker, Asked> {
        if let Some(w) = self.0.worker.borrow().as_ref() {
            if self.0.is_ready.get() {
                return Ok(w.clone());
            }
        }
        if self.0.worker.borrow().is_none() {
            let url = module_worker::url().await?;
            let worker = module_worker::start(&url, "the training worker")?;
            let inner = self.0.clone();
            let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
                let bytes = js_sys::Uint8Array::new(&ev.data()).to_vec();
                match decode::<FromWorker>(&bytes) {
                    Ok(FromWorker::Ready) => {
                        inner.is_ready.set(true);
                        for tx in inner.ready.borrow_mut().drain(..) {
                            let _ = tx.send(());
                        }
                    }
                    Ok(FromWorker::Progress { id, message }) => {
                        if let Some((_, progress)) = inner.pending.borrow().get(&id) {
                            progress(message);
                        }
                    }
                    Ok(reply) => {
                        // No wildcard: a new reply type must be routed here.
                        let id = match &reply {
                            FromWorker::Trained { id, .. }
                            | FromWorker::TrainedCases { id, .. }
                            | FromWorker::BacktestDone { id, .. }
                            | FromWorker::Verified { id, .. }
                            | FromWorker::Failed { id, .. } => *id,
                            FromWorker::Ready | FromWorker::Progress { .. } => return,
                        };
                        let waiting = inner.pending.borrow_mut().remove(&id);
                        if let Some((tx, _)) = waiting {
                            let _ = tx.send(Ok(reply));
                        }
                    }
                    Err(e) => {
                        for (_, (tx, _)) in inner.pending.borrow_mut().drain() {
                            let _ = tx.send(Err(Asked::Failed(e.clone())));
                        }
                    }
                }
            });
            worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            let inner = self.0.clone();
            let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
                let message = ev
                    .dyn_ref::<web_sys::ErrorEvent>()
                    .map_or("the training worker failed".into(), |e| {
                        format!("the training worker failed: {}", e.message())
                    });
                for (_, (tx, _)) in inner.pending.borrow_mut().drain() {
                    let _ = tx.send(Err(Asked::Failed(message.clone())));
                }
            });
            worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
            self.0.handlers.borrow_mut().push(on_message);
            self.0.error_handlers.borrow_mut().push(on_error);
            *self.0.worker.borrow_mut() = Some(worker);
        }
        if !self.0.is_ready.get() {
            let (tx, rx) = oneshot::channel();
            self.0.ready.borrow_mut().push(tx);
            // Stopped while it loaded: the sender was dropped.
            rx.await.map_err(|_| Asked::Cancelled)?;
        }
        self.0.worker.borrow().clone().ok_or(Asked::Cancelled)
    }

    /// Send a request built for id `id` and wait for its answer.
    pub async fn request(
        &self,
        build: impl FnOnce(u32) -> ToWorker,
        progress: impl Fn(String) + 'static,
    ) -> Result<FromWorker, Asked> {
        let worker = self.ensure().await?;
        let id = self.0.next_id.get() + 1;
        self.0.next_id.set(id);
        let (tx, rx) = oneshot::channel();
        self.0
            .pending
            .borrow_mut()
            .insert(id, (tx, Box::new(progress)));
        let bytes = encode(&build(id));
        worker
            .post_message(&js_sys::Uint8Array::from(bytes.as_slice()))
            .map_err(|e| Asked::Failed(format!("could not send to the training worker: {e:?}")))?;
        rx.await.unwrap_or(Err(Asked::Cancelled))
    }

    /// How many times it was cancelled so far: work that took this count
    /// when it began and finds it changed was cancelled meanwhile (also
    /// while it waited for something else than this worker).
    pub fn cancels(&self) -> u64 {
        self.0.cancels.get()
    }

    /// `Err(Asked::Cancelled)` if cancelled since the count was `round`.
    pub fn still_wanted(&self, round: u64) -> Result<(), Asked> {
        if self.cancels() == round {
            Ok(())
        } else {
            Err(Asked::Cancelled)
        }
    }

    /// Stop whatever the worker is doing: it is terminated and restarted on
    /// the next request. Pending requests end as cancelled.
    pub fn cancel(&self) {
        self.0.cancels.set(self.0.cancels.get() + 1);
        if let Some(w) = self.0.worker.borrow_mut().take() {
            w.terminate();
        }
        self.0.is_ready.set(false);
        // Whoever waits for it to load hears it was cancelled.
        self.0.ready.borrow_mut().clear();
        for (_, (tx, _)) in self.0.pending.borrow_mut().drain() {
            let _ = tx.send(Err(Asked::Cancelled));
        }
    }
}
