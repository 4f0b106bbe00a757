//! The worker: a second wasm module, built with the speed profile
//! (smartcore trains several times slower under `opt-level = "z"`), run in
//! Web Workers so the page never waits. It only moves bytes. A plain
//! `Uint8Array` is a training request (`retrace::ml::protocol::handle`);
//! `{engine: Uint8Array}` is a command to the log engine
//! (`retrace::engine::messages`), which this worker runs over the
//! browser's IndexedDB and answers the same way.

#[cfg(target_arch = "wasm32")]
fn main() {
    use retrace::ml::protocol::{decode, encode, handle, FromWorker, ToWorker};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

    console_error_panic_hook::set_once();
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let post = {
        let scope = scope.clone();
        move |message: &FromWorker| {
            let bytes = encode(message);
            let _ = scope.post_message(&js_sys::Uint8Array::from(bytes.as_slice()));
        }
    };
    let on_message = {
        let post = post.clone();
        let engine = engine_host::Host::new(scope.clone());
        Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let data = ev.data();
            if let Ok(command) = js_sys::Reflect::get(&data, &"engine".into()) {
                if command.is_instance_of::<js_sys::Uint8Array>() {
                    engine.receive(js_sys::Uint8Array::new(&command).to_vec());
                    return;
                }
            }
            let bytes = js_sys::Uint8Array::new(&data).to_vec();
            let reply = match decode::<ToWorker>(&bytes) {
                Ok(ToWorker::VerifyLog { id, database }) => {
                    let post = post.clone();
                    wasm_bindgen_futures::spawn_local(async move {
                        post(&verify(id, &database, &post).await);
                    });
                    return;
                }
                Ok(request) => handle(request, &js_sys::Date::now, &mut |id, message| {
                    post(&FromWorker::Progress {
                        id,
                        message: message.to_owned(),
                    })
                }),
                Err(message) => FromWorker::Failed { id: 0, message },
            };
            post(&reply);
        })
    };
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    post(&FromWorker::Ready);
}

/// The log engine in this worker: commands queue up and are answered one
/// at a time, in order, by one task that owns the engine (a command that
/// arrives while another is being answered waits; consecutive head moves
/// are answered once).
#[cfg(target_arch = "wasm32")]
mod engine_host {
    use retrace::engine::messages::{Command, Driver, Reply};
    use retrace::engine::Engine;
    use retrace::ml::protocol::{decode, encode};
    use retrace::store::idb::IdbStore;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;
    use wasm_bindgen::{JsCast, JsValue};
    use web_sys::DedicatedWorkerGlobalScope;

    type Running = Driver<Rc<IdbStore>, Rc<IdbStore>>;

    /// Wait for the Web Lock `name` and hold it for the rest of this
    /// worker's life. Without Web Locks, go on at once.
    async fn hold_lock(name: &str) {
        use js_sys::{Function, Promise, Reflect};
        let locks = Reflect::get(&js_sys::global(), &"navigator".into())
            .and_then(|n| Reflect::get(&n, &"locks".into()))
            .unwrap_or(JsValue::UNDEFINED);
        let Some(request) = Reflect::get(&locks, &"request".into())
            .ok()
            .and_then(|r| r.dyn_into::<Function>().ok())
        else {
            return;
        };
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let granted =
            wasm_bindgen::closure::Closure::once_into_js(move |_lock: JsValue| -> JsValue {
                let _ = tx.send(());
                // Never settles: the lock is held until the worker ends.
                Promise::new(&mut |_, _| {}).into()
            });
        let _ = request.call2(&locks, &name.into(), &granted);
        let _ = rx.await;
    }

    #[derive(Default)]
    struct State {
        inbox: VecDeque<Command>,
        busy: bool,
        driver: Option<Running>,
    }

    /// The engine's side of this worker.
    #[derive(Clone)]
    pub struct Host {
        state: Rc<RefCell<State>>,
        scope: DedicatedWorkerGlobalScope,
    }

    impl Host {
        pub fn new(scope: DedicatedWorkerGlobalScope) -> Host {
            Host {
                state: Default::default(),
                scope,
            }
        }

        fn post(&self, reply: &Reply) {
            let message = js_sys::Object::new();
            let bytes = js_sys::Uint8Array::from(encode(reply).as_slice());
            let _ = js_sys::Reflect::set(&message, &"engine".into(), &bytes);
            let _ = self.scope.post_message(&JsValue::from(message));
        }

        /// A command's bytes from the page.
        pub fn receive(&self, bytes: Vec<u8>) {
            match decode::<Command>(&bytes) {
                Ok(command) => self.state.borrow_mut().inbox.push_back(command),
                Err(e) => return self.post(&Reply::Failed(e)),
            }
            if self.state.borrow().busy {
                return;
            }
            self.state.borrow_mut().busy = true;
            let host = self.clone();
            wasm_bindgen_futures::spawn_local(async move {
                while let Some(command) = host.next() {
                    for reply in host.answer(command).await {
                        host.post(&reply);
                    }
                }
                host.state.borrow_mut().busy = false;
            });
        }

        fn next(&self) -> Option<Command> {
            let mut state = self.state.borrow_mut();
            let command = state.inbox.pop_front()?;
            if matches!(command, Command::Head(_)) {
                while matches!(state.inbox.front(), Some(Command::Head(_))) {
                    state.inbox.pop_front();
                }
            }
            Some(command)
        }

        async fn answer(&self, command: Command) -> Vec<Reply> {
            let now = || js_sys::Date::now();
            if let Command::Start {
                database,
                policy,
                shared,
            } = &command
            {
                // One engine writes to a log at a time, across tabs: the
                // lock is this worker's until it ends, so a tab taking the
                // loop over waits until the last engine is really gone
                // (a closed tab's worker can outlive its page a moment).
                hold_lock(&format!("retrace-engine:{database}")).await;
                let store = match IdbStore::open(database).await {
                    Ok(store) => Rc::new(store),
                    Err(e) => return vec![Reply::Failed(e.to_string())],
                };
                if *shared {
                    if let Err(e) = store.use_outbox().await {
                        return vec![Reply::Failed(e.to_string())];
                    }
                }
                let set = match retrace::projection::snapshot::restore(&*store, u64::MAX).await {
                    Ok((set, _)) => set,
                    Err(_) => Default::default(),
                };
                let engine = Engine::new(set, policy.clone());
                let mut driver = Driver::new(store.clone(), store, engine);
                let replies = driver.handle(command, &now).await;
                if let Some(old) = self.state.borrow_mut().driver.replace(driver) {
                    old.store().close();
                }
                return replies;
            }
            // The driver leaves the state while it works: nothing else may
            // touch it across the awaits, and commands wait in the inbox.
            let Some(mut driver) = self.state.borrow_mut().driver.take() else {
                return vec![Reply::Failed("the engine has not been started".into())];
            };
            let replies = driver.handle(command, &now).await;
            self.state.borrow_mut().driver = Some(driver);
            replies
        }
    }
}

/// The integrity check over the log in `database`, saying how far it got.
#[cfg(target_arch = "wasm32")]
async fn verify(
    id: u32,
    database: &str,
    post: &dyn Fn(&retrace::ml::protocol::FromWorker),
) -> retrace::ml::protocol::FromWorker {
    use retrace::ml::protocol::FromWorker;
    use retrace::store::idb::IdbStore;
    use retrace::store::verify::verify_log_with_progress;
    let failed = |e: retrace::store::StoreError| FromWorker::Failed {
        id,
        message: e.to_string(),
    };
    let store = match IdbStore::open(database).await {
        Ok(store) => store,
        Err(e) => return failed(e),
    };
    let mut progress = |n: u64| {
        post(&FromWorker::Progress {
            id,
            message: format!("checking: {n} events read so far…"),
        })
    };
    let outcome = verify_log_with_progress(&store, 8192, &mut progress).await;
    store.close();
    match outcome {
        Ok(report) => FromWorker::Verified { id, report },
        Err(e) => failed(e),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the training worker runs in the browser; `make run` builds it");
}
