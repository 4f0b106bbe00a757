//! The worker: a second wasm module, built with the speed profile
//! (smartcore trains several times slower under `opt-level = "z"`), run in
//! Web Workers so the page never waits. It only moves bytes. A plain
//! `Uint8Array` is a training request (`retrace::ml::protocol::handle`);
//! `{engine: Uint8Array}` is a command to the log engine
//! (`retrace::engine::messages`), which this worker runs over the
//! browser's IndexedDB (`retrace::host::engine`) and answers the same way; `{import: Uint8Array,
//! file?: Blob}` orders or cancels an import (`retrace::engine::imports`),
//! which runs here beside the engine and is answered with
//! `Reply::Import`.

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
        let engine = retrace::host::engine::Host::new(scope.clone());
        Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let data = ev.data();
            if let Ok(command) = js_sys::Reflect::get(&data, &"engine".into()) {
                if command.is_instance_of::<js_sys::Uint8Array>() {
                    engine.receive(js_sys::Uint8Array::new(&command).to_vec());
                    return;
                }
            }
            if let Ok(order) = js_sys::Reflect::get(&data, &"import".into()) {
                if order.is_instance_of::<js_sys::Uint8Array>() {
                    let file = js_sys::Reflect::get(&data, &"file".into())
                        .ok()
                        .and_then(|f| f.dyn_into::<web_sys::Blob>().ok());
                    engine.import(js_sys::Uint8Array::new(&order).to_vec(), file);
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
    // For `make bench`: this worker's linear memory (its size is the peak).
    let _ = js_sys::Reflect::set(&scope, &"retraceMemory".into(), &wasm_bindgen::memory());
    post(&FromWorker::Ready);
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
