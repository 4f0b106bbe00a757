//! The browser's primitives that the page and the engine's worker both
//! use — timers, the clock, randomness, hashing, blobs, the network's
//! state — and Web Locks ([`lock`]). The lowest browser layer: it knows
//! nothing of the log.

pub mod lock;
pub mod module_worker;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Wait `ms` milliseconds (the global `setTimeout`: a window's or a
/// worker's).
pub async fn sleep(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}

/// Let the browser run what waits (drawing, input, messages) and come
/// back at once: a message to ourselves over a `MessageChannel`, which —
/// unlike `setTimeout(0)`, held back 4 ms when called in a row — costs
/// nothing when nothing waits.
pub async fn yield_now() {
    let Ok(channel) = web_sys::MessageChannel::new() else {
        return sleep(0).await;
    };
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        channel.port1().set_onmessage(Some(&resolve));
    });
    let _ = channel.port2().post_message(&JsValue::NULL);
    let _ = JsFuture::from(promise).await;
    channel.port1().set_onmessage(None);
    channel.port1().close();
}

/// Bytes `start..end` of a file (or any blob), read without the rest.
pub async fn blob_slice(blob: &web_sys::Blob, start: u64, end: u64) -> Result<Vec<u8>, String> {
    let part = blob
        .slice_with_f64_and_f64(start as f64, end as f64)
        .map_err(|e| format!("the browser could not cut the file: {e:?}"))?;
    let buffer = JsFuture::from(part.array_buffer()).await.map_err(|_| {
        "the browser could not read the file (was it changed, moved or deleted?); choose it again"
            .to_string()
    })?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// The SHA-256 of `bytes`: the browser's own (WebCrypto, many times faster
/// than one compiled to WebAssembly) where this context may use it (https
/// or localhost), else computed here.
pub async fn sha256(bytes: &[u8]) -> Vec<u8> {
    let global = js_sys::global();
    let secure = js_sys::Reflect::get(&global, &"isSecureContext".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let subtle = js_sys::Reflect::get(&global, &"crypto".into())
        .ok()
        .and_then(|c| c.dyn_into::<web_sys::Crypto>().ok())
        .filter(|_| secure)
        .map(|c| c.subtle());
    if let Some(subtle) = subtle {
        if let Ok(promise) = subtle.digest_with_str_and_u8_array("SHA-256", bytes) {
            if let Ok(hash) = JsFuture::from(promise).await {
                return js_sys::Uint8Array::new(&hash).to_vec();
            }
        }
    }
    <sha2::Sha256 as sha2::Digest>::digest(bytes).to_vec()
}

/// The global scope's property `name` (a window's or a worker's).
fn global_get(name: &str) -> Option<JsValue> {
    js_sys::Reflect::get(&js_sys::global(), &name.into())
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

thread_local! {
    /// This context's monotonic clock, looked up once: readers such as the
    /// shared log's sync read it several times per event, and a lookup on
    /// the global object is several calls into JavaScript.
    static PERFORMANCE: Option<web_sys::Performance> = global_get("performance")
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok());
}

/// Milliseconds on this context's monotonic clock.
pub fn now() -> f64 {
    PERFORMANCE.with(|p| p.as_ref().map_or_else(js_sys::Date::now, |p| p.now()))
}

/// Sixteen hex digits from the browser's cryptographic source.
pub fn random_token() -> String {
    let mut bytes = [0u8; 8];
    if let Some(c) = global_get("crypto").and_then(|c| c.dyn_into::<web_sys::Crypto>().ok()) {
        let _ = c.get_random_values_with_u8_array(&mut bytes);
    }
    crate::util::hex(&bytes)
}

/// Whether the browser says it is online (true where it cannot say).
pub fn online() -> bool {
    global_get("navigator")
        .and_then(|n| js_sys::Reflect::get(&n, &"onLine".into()).ok())
        .and_then(|v| v.as_bool())
        .unwrap_or(true)
}

/// Call `then` whenever the browser goes offline, for the life of this
/// context.
pub fn on_offline(then: impl FnMut() + 'static) {
    let on = Closure::<dyn FnMut()>::new(then);
    let _ = js_sys::global()
        .unchecked_into::<web_sys::EventTarget>()
        .add_event_listener_with_callback("offline", on.as_ref().unchecked_ref());
    on.forget();
}
