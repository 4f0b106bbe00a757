//! Opening the database: the upgrade path, one step per version, and a
//! newer database (from a newer Retrace) or a blocked upgrade said in words.

use super::request::{self, committed, js_error};
use super::{
    store_of, DB_VERSION, HEAD, META, MODELS, MODEL_BYTES, OUTBOX, SEGMENTS, SNAPSHOTS, STAGING,
    STREAM_TABLE,
};
use crate::log::codec::encode_segment;
use crate::log::Envelope;
use crate::store::StoreError;
use futures::channel::oneshot;
use js_sys::{Array, Uint8Array};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{
    IdbDatabase, IdbOpenDbRequest, IdbTransaction, IdbTransactionMode, IdbVersionChangeEvent,
};

/// Open `name` at [`DB_VERSION`], running the upgrade steps it needs.
pub(super) async fn open_database(name: &str) -> Result<IdbDatabase, StoreError> {
    // The page's window or a worker's scope: both offer `indexedDB`.
    let factory = js_sys::Reflect::get(&js_sys::global(), &"indexedDB".into())
        .ok()
        .and_then(|f| f.dyn_into::<web_sys::IdbFactory>().ok())
        .ok_or_else(|| {
            StoreError::Storage("this browser offers no IndexedDB (is it a private window?)".into())
        })?;
    let req = factory
        .open_with_u32(name, DB_VERSION)
        .map_err(|e| js_error(e, "opening the log"))?;
    match open_request(&req, Some(upgrade)).await? {
        Ok(db) => Ok(db),
        Err(err) if err.as_ref().map(|e| e.name()) == Some("VersionError".into()) => {
            // Find out which version is there, to say so.
            let probe = factory
                .open(name)
                .map_err(|e| js_error(e, "opening the log"))?;
            let found = match open_request(&probe, None).await? {
                Ok(db) => {
                    let v = db.version() as u32;
                    db.close();
                    v
                }
                Err(_) => 0,
            };
            Err(StoreError::NewerDatabase {
                found,
                known: DB_VERSION,
            })
        }
        Err(err) => Err(request::dom_error(err, "opening the log")),
    }
}

type Upgrade = fn(&IdbDatabase, &IdbTransaction, u32) -> Result<(), JsValue>;

enum Opened {
    Success,
    Failed,
    Blocked,
}

/// Drive an open request. The outer error is the store's; the inner one is
/// the raw DOM error so the caller can tell a VersionError apart.
async fn open_request(
    req: &IdbOpenDbRequest,
    upgrade: Option<Upgrade>,
) -> Result<Result<IdbDatabase, Option<web_sys::DomException>>, StoreError> {
    let (tx, rx) = oneshot::channel::<Opened>();
    let slot = Rc::new(RefCell::new(Some(tx)));
    let send = |slot: &Rc<RefCell<Option<oneshot::Sender<Opened>>>>, o: Opened| {
        if let Some(tx) = slot.borrow_mut().take() {
            let _ = tx.send(o);
            true
        } else {
            false
        }
    };
    let on_success = {
        let slot = slot.clone();
        let req = req.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if !send(&slot, Opened::Success) {
                // We already told the caller the upgrade was blocked; the
                // late connection is not wanted.
                if let Ok(db) = req.result() {
                    db.unchecked_into::<IdbDatabase>().close();
                }
            }
        })
    };
    let on_error = {
        let slot = slot.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            send(&slot, Opened::Failed);
        })
    };
    let on_blocked = {
        let slot = slot.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            send(&slot, Opened::Blocked);
        })
    };
    let on_upgrade = {
        let req = req.clone();
        Closure::<dyn FnMut(IdbVersionChangeEvent)>::new(move |ev: IdbVersionChangeEvent| {
            let (Some(upgrade), Ok(db), Some(tx)) = (upgrade, req.result(), req.transaction())
            else {
                return;
            };
            let db: IdbDatabase = db.unchecked_into();
            if upgrade(&db, &tx, ev.old_version() as u32).is_err() {
                let _ = tx.abort();
            }
        })
    };
    req.set_onsuccess(Some(on_success.as_ref().unchecked_ref()));
    req.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    req.set_onblocked(Some(on_blocked.as_ref().unchecked_ref()));
    req.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    let outcome = rx.await.unwrap_or(Opened::Failed);
    // The request may still fire after a block; its handlers must outlive us.
    on_success.forget();
    on_error.forget();
    on_blocked.forget();
    on_upgrade.forget();
    match outcome {
        Opened::Success => Ok(Ok(req
            .result()
            .map_err(|e| js_error(e, "opening the log"))?
            .unchecked_into())),
        Opened::Failed => Ok(Err(req.error().ok().flatten())),
        Opened::Blocked => Err(StoreError::UpgradeBlocked),
    }
}

/// The upgrade path, one step per database version.
fn upgrade(db: &IdbDatabase, _tx: &IdbTransaction, old_version: u32) -> Result<(), JsValue> {
    if old_version < 1 {
        db.create_object_store(META)?;
        db.create_object_store(SEGMENTS)?;
    }
    if old_version < 2 {
        // v1 logs have no stream table yet: it is built from their segments
        // on first use.
        db.create_object_store(STREAM_TABLE)?;
        db.create_object_store(SNAPSHOTS)?;
    }
    if old_version < 3 {
        db.create_object_store(MODELS)?;
        db.create_object_store(MODEL_BYTES)?;
    }
    if old_version < 4 {
        db.create_object_store(STAGING)?;
    }
    if old_version < 5 {
        let params = web_sys::IdbObjectStoreParameters::new();
        params.set_auto_increment(true);
        db.create_object_store_with_optional_parameters(OUTBOX, &params)?;
    }
    Ok(())
}

/// Test support: a database name no other test uses (each browser test gets
/// its own, fresh database).
#[doc(hidden)]
pub fn fresh_database_name(purpose: &str) -> String {
    format!(
        "retrace-{purpose}-{}",
        (js_sys::Math::random() * 1e15) as u64
    )
}

/// Test support: create a database exactly as version 1 of Retrace did
/// (`meta` and `segments`, no stream table) holding `events` as one segment.
#[doc(hidden)]
pub async fn create_v1_database(name: &str, events: &[Envelope]) -> Result<(), StoreError> {
    fn v1_layout(db: &IdbDatabase, _tx: &IdbTransaction, old: u32) -> Result<(), JsValue> {
        if old < 1 {
            db.create_object_store(META)?;
            db.create_object_store(SEGMENTS)?;
        }
        Ok(())
    }
    let factory = web_sys::window()
        .and_then(|w| w.indexed_db().ok().flatten())
        .expect("IndexedDB");
    let req = factory
        .open_with_u32(name, 1)
        .map_err(|e| js_error(e, "v1"))?;
    let db = open_request(&req, Some(v1_layout))
        .await?
        .map_err(|e| request::dom_error(e, "v1"))?;
    let names = Array::of2(&META.into(), &SEGMENTS.into());
    let tx = db
        .transaction_with_str_sequence_and_mode(&names, IdbTransactionMode::Readwrite)
        .map_err(|e| js_error(e, "v1"))?;
    if let Some(last) = events.last() {
        let key = JsValue::from_f64(last.seq as f64);
        let bytes = encode_segment(events);
        store_of(&tx, SEGMENTS)?
            .put_with_key(&Uint8Array::from(bytes.as_slice()), &key)
            .map_err(|e| js_error(e, "v1"))?;
        store_of(&tx, META)?
            .put_with_key(&key, &HEAD.into())
            .map_err(|e| js_error(e, "v1"))?;
    }
    committed(&tx, "writing a v1 log").await?;
    db.close();
    Ok(())
}
