//! The training worker: a second wasm module, built with the speed profile
//! (smartcore trains several times slower under `opt-level = "z"`), run in
//! a Web Worker so the page never waits on training. It only moves bytes:
//! the work is `retrace::ml::protocol::handle`.

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
        Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let bytes = js_sys::Uint8Array::new(&ev.data()).to_vec();
            let reply = match decode::<ToWorker>(&bytes) {
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

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the training worker runs in the browser; `make run` builds it");
}
