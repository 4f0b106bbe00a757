//! The browser's storage manager: usage, quota and persistence.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::StorageManager;

fn manager() -> Option<StorageManager> {
    web_sys::window().map(|w| w.navigator().storage())
}

/// Bytes used and the quota for this origin, when the browser says.
pub async fn estimate() -> Option<(f64, f64)> {
    let promise = manager()?.estimate().ok()?;
    let est: web_sys::StorageEstimate = JsFuture::from(promise).await.ok()?.unchecked_into();
    Some((est.get_usage()?, est.get_quota()?))
}

/// Whether the origin's storage is persistent (not evicted under pressure).
pub async fn persisted() -> Option<bool> {
    let promise = manager()?.persisted().ok()?;
    JsFuture::from(promise).await.ok()?.as_bool()
}

/// Ask the browser to make storage persistent; returns what it granted.
pub async fn persist() -> Option<bool> {
    let promise = manager()?.persist().ok()?;
    JsFuture::from(promise).await.ok()?.as_bool()
}

/// Bytes in words: "3.2 MB".
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
