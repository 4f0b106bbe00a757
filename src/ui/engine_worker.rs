//! The page's side of the log engine's worker. Every tab starts one
//! dedicated worker running `crate::engine` over this browser's IndexedDB:
//! it folds the log for the tab's views and hands over what they show; while
//! the tab drives the loop (it holds the loop's Web Lock) it also predicts
//! every open case, records predictions, alarms and verdicts, and asks the
//! page for a model when one is due. Closing the tab ends the worker, and
//! the loop's locks pass to another tab, whose own engine takes over from
//! the log.

use crate::engine::imports::ImportCommand;
use crate::engine::messages::{Reply, ToEngine};
use crate::ml::protocol::{decode, encode, FromWorker};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker};

type OnMessage = Closure<dyn FnMut(MessageEvent)>;

/// A message waiting for the worker to listen.
enum Queued {
    Command(ToEngine),
    /// An import order with its file, ready to post.
    Raw(JsValue),
}

#[derive(Default)]
struct Inner {
    worker: RefCell<Option<Worker>>,
    ready: Cell<bool>,
    /// Messages sent before the worker listened.
    queued: RefCell<Vec<Queued>>,
    handlers: RefCell<Vec<OnMessage>>,
    /// Bumped whenever a worker is ended (each start ends the one before):
    /// replies of an ended worker are dropped.
    generation: Cell<u64>,
}

/// The engine's worker, if running.
#[derive(Clone, Default)]
pub struct EngineWorker(Rc<Inner>);

impl EngineWorker {
    /// Start the worker; `on_reply` hears every answer. Commands posted
    /// from now on wait until it listens.
    pub async fn start(&self, on_reply: impl Fn(Reply) + 'static) -> Result<(), String> {
        // Commands posted before (the page's first ones, a click while the
        // worker loads) stay queued for the new worker.
        self.end_worker();
        let generation = self.0.generation.get();
        let url = crate::web::module_worker::url().await?;
        if self.0.generation.get() != generation {
            return Ok(()); // started again meanwhile: that start owns the worker
        }
        let worker = crate::web::module_worker::start(&url, "the engine's worker")?;
        let inner = self.0.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let data = ev.data();
            if let Ok(bytes) = js_sys::Reflect::get(&data, &"engine".into()) {
                if bytes.is_instance_of::<js_sys::Uint8Array>() {
                    if inner.generation.get() == generation {
                        match decode::<Reply>(&js_sys::Uint8Array::new(&bytes).to_vec()) {
                            Ok(reply) => on_reply(reply),
                            Err(e) => on_reply(Reply::Failed(e)),
                        }
                    }
                    return;
                }
            }
            let bytes = js_sys::Uint8Array::new(&data).to_vec();
            if let Ok(FromWorker::Ready) = decode::<FromWorker>(&bytes) {
                inner.ready.set(true);
                let queued: Vec<Queued> = inner.queued.borrow_mut().drain(..).collect();
                if let Some(w) = inner.worker.borrow().as_ref() {
                    for message in queued {
                        match message {
                            Queued::Command(command) => send(w, &command),
                            Queued::Raw(message) => {
                                let _ = w.post_message(&message);
                            }
                        }
                    }
                }
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        self.0.handlers.borrow_mut().push(on_message);
        *self.0.worker.borrow_mut() = Some(worker);
        Ok(())
    }

    /// Send a command, queued until the worker listens (also before it
    /// was started).
    pub fn post(&self, command: impl Into<ToEngine>) {
        let command = command.into();
        match self.listening() {
            Some(w) => send(&w, &command),
            None => self.0.queued.borrow_mut().push(Queued::Command(command)),
        }
    }

    /// The worker, if it listens.
    fn listening(&self) -> Option<Worker> {
        self.0
            .worker
            .borrow()
            .as_ref()
            .filter(|_| self.0.ready.get())
            .cloned()
    }

    /// Send an import order, with its file (queued like a command).
    pub fn post_import(&self, command: &ImportCommand, file: Option<&web_sys::Blob>) {
        let message = js_sys::Object::new();
        let bytes = js_sys::Uint8Array::from(encode(command).as_slice());
        let _ = js_sys::Reflect::set(&message, &"import".into(), &bytes);
        if let Some(file) = file {
            let _ = js_sys::Reflect::set(&message, &"file".into(), file);
        }
        let message = JsValue::from(message);
        match self.listening() {
            Some(w) => {
                let _ = w.post_message(&message);
            }
            None => self.0.queued.borrow_mut().push(Queued::Raw(message)),
        }
    }

    /// End the running worker, if any (its pending work with it: the log
    /// has what it wrote).
    fn end_worker(&self) {
        self.0.generation.set(self.0.generation.get() + 1);
        if let Some(w) = self.0.worker.borrow_mut().take() {
            w.terminate();
        }
        self.0.ready.set(false);
        // The old worker's handler stays allocated: it may be running
        // right now, and its replies are dropped by generation anyway.
    }
}

fn send(worker: &Worker, command: &ToEngine) {
    let message = js_sys::Object::new();
    let bytes = js_sys::Uint8Array::from(encode(command).as_slice());
    let _ = js_sys::Reflect::set(&message, &"engine".into(), &bytes);
    let _ = worker.post_message(&JsValue::from(message));
}
