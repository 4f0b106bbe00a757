//! Browser helpers that work on the page and in a worker alike.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Wait `ms` milliseconds (the global `setTimeout`: a window's or a
/// worker's).
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        let set_timeout = js_sys::Reflect::get(&global, &"setTimeout".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        match set_timeout {
            Some(f) => {
                let _ = f.call2(&global, &resolve, &JsValue::from(ms));
            }
            None => {
                let _ = resolve.call0(&JsValue::NULL);
            }
        }
    });
    let _ = JsFuture::from(promise).await;
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
