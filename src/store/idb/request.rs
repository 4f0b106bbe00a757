//! Futures over IndexedDB requests and transactions.
//!
//! A transaction stays active while its requests' success events are being
//! dispatched; the futures here resolve inside that dispatch (wasm-bindgen's
//! executor runs on the microtask queue), so code that awaits one request and
//! places the next keeps the transaction alive.

use super::super::StoreError;
use futures::channel::oneshot;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DomException, IdbRequest, IdbTransaction};

/// Translate a DOM error into the store's words.
pub fn dom_error(err: Option<DomException>, doing: &str) -> StoreError {
    match err {
        Some(e) if e.name() == "QuotaExceededError" => StoreError::QuotaExceeded,
        Some(e) => StoreError::Storage(format!("{doing}: {} ({})", e.message(), e.name())),
        None => StoreError::Storage(format!("{doing}: the browser aborted the operation")),
    }
}

/// Translate a thrown JS value (a synchronous IndexedDB exception).
pub fn js_error(err: JsValue, doing: &str) -> StoreError {
    dom_error(err.dyn_into::<DomException>().ok(), doing)
}

type Slot = Rc<RefCell<Option<oneshot::Sender<bool>>>>;

fn signal(slot: &Slot, ok: bool) {
    if let Some(tx) = slot.borrow_mut().take() {
        let _ = tx.send(ok);
    }
}

/// Wait for `req` to succeed and return its result.
pub async fn done(req: &IdbRequest, doing: &str) -> Result<JsValue, StoreError> {
    let (tx, rx) = oneshot::channel();
    let slot: Slot = Rc::new(RefCell::new(Some(tx)));
    let on_ok = {
        let slot = slot.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| signal(&slot, true))
    };
    let on_err = {
        let slot = slot.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| signal(&slot, false))
    };
    req.set_onsuccess(Some(on_ok.as_ref().unchecked_ref()));
    req.set_onerror(Some(on_err.as_ref().unchecked_ref()));
    let ok = rx.await.unwrap_or(false);
    req.set_onsuccess(None);
    req.set_onerror(None);
    if ok {
        req.result().map_err(|e| js_error(e, doing))
    } else {
        Err(dom_error(req.error().ok().flatten(), doing))
    }
}

/// Ask the transaction to commit and wait until it has (or has failed).
pub async fn committed(tx: &IdbTransaction, doing: &str) -> Result<(), StoreError> {
    let (sender, rx) = oneshot::channel();
    let slot: Slot = Rc::new(RefCell::new(Some(sender)));
    let on_complete = {
        let slot = slot.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| signal(&slot, true))
    };
    let on_fail = {
        let slot = slot.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| signal(&slot, false))
    };
    tx.set_oncomplete(Some(on_complete.as_ref().unchecked_ref()));
    // A failed request bubbles an `error` event and then aborts the
    // transaction; only `abort` carries the final reason (tx.error()).
    tx.set_onabort(Some(on_fail.as_ref().unchecked_ref()));
    // Committing early saves a round of the event loop; it throws if the
    // transaction already finished, and then the handlers above tell.
    #[allow(deprecated)] // web-sys marks it so only because older browsers lack it
    let _ = tx.commit();
    let ok = rx.await.unwrap_or(false);
    tx.set_oncomplete(None);
    tx.set_onabort(None);
    if ok {
        Ok(())
    } else {
        Err(dom_error(tx.error(), doing))
    }
}
