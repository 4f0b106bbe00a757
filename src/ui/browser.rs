//! Small browser helpers the panels share: yielding to the event loop,
//! the clock, a blob of bytes, offering a download (sleeping and reading a
//! file: [`crate::web`], which a worker uses too; its yielding and clock
//! are re-exported here).

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

pub use crate::web::{now, yield_now};

/// Bytes in memory as a blob (so they are read like a chosen file).
pub fn bytes_blob(bytes: &[u8]) -> Result<web_sys::Blob, String> {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    web_sys::Blob::new_with_u8_array_sequence(&parts).map_err(|e| format!("{e:?}"))
}

/// Offer `text` as a file download named `name`.
pub fn download(name: &str, mime: &str, text: &str) -> Result<(), String> {
    let mut parts = Parts::default();
    parts.push(text);
    parts.download(name, mime)
}

/// `n` random bytes from the browser's cryptographic source.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok())
        .unwrap_or(false);
    assert!(
        filled,
        "the browser gives no random bytes (crypto.getRandomValues)"
    );
    bytes
}

/// A random id for a new event (a UUID where the browser offers one).
pub fn random_id() -> String {
    web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.random_uuid())
        .unwrap_or_else(|| format!("{}", js_sys::Math::random()))
}

/// A download built a piece at a time: each piece becomes a blob of its
/// UTF-8 bytes as it comes, so a large export sits whole neither in wasm
/// memory nor as strings on the page's JavaScript heap — the browser keeps
/// blobs in its own storage (Chromium moves large ones to disk), and the
/// file is those blobs joined by reference.
#[derive(Default)]
pub struct Parts(js_sys::Array);

impl Parts {
    /// Add a piece.
    pub fn push(&mut self, text: &str) {
        let bytes = js_sys::Array::of1(&js_sys::Uint8Array::from(text.as_bytes()));
        match web_sys::Blob::new_with_u8_array_sequence(&bytes) {
            Ok(blob) => self.0.push(&blob),
            // Not expected; the text itself still joins the file.
            Err(_) => self.0.push(&JsValue::from_str(text)),
        };
    }

    /// Offer the pieces, joined, as a file download named `name`.
    pub fn download(self, name: &str, mime: &str) -> Result<(), String> {
        blob_download(name, mime, &self.0)
    }
}

fn blob_download(name: &str, mime: &str, parts: &js_sys::Array) -> Result<(), String> {
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_blob_sequence_and_options(parts, &options)
        .map_err(|e| format!("{e:?}"))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|e| format!("{e:?}"))?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(|e| format!("{e:?}"))?
        .unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.click();
    // Revoke later: the download reads the object URL after this returns.
    let revoke = Closure::once_into_js(move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    if let Some(w) = web_sys::window() {
        let _ =
            w.set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 30_000);
    }
    Ok(())
}

/// GET `url` (relative to the page) and insist on a 2xx answer.
pub async fn fetch_ok(url: &str) -> Result<web_sys::Response, String> {
    let window = web_sys::window().ok_or("no window")?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|_| format!("{url} could not be loaded"))?
        .unchecked_into();
    if !response.ok() {
        return Err(format!("{url} answered {}", response.status()));
    }
    Ok(response)
}
