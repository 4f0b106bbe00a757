//! Projection snapshots in the `snapshots` object store, keyed by
//! `[name, seq]`, each value the postcard bytes of a [`Snapshot`].

use super::request::{committed, done, js_error};
use super::{store_of, IdbStore, SNAPSHOTS};
use crate::store::snapshot::{Snapshot, SnapshotStore};
use crate::store::StoreError;
use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{IdbKeyRange, IdbTransactionMode};

fn key(name: &str, seq: u64) -> Array {
    Array::of2(&JsValue::from_str(name), &JsValue::from_f64(seq as f64))
}

impl SnapshotStore for IdbStore {
    async fn save(&self, snapshots: Vec<Snapshot>) -> Result<(), StoreError> {
        let tx = self.transaction(&[SNAPSHOTS], IdbTransactionMode::Readwrite)?;
        let store = store_of(&tx, SNAPSHOTS)?;
        for s in &snapshots {
            let bytes = postcard::to_allocvec(s).expect("snapshots encode");
            store
                .put_with_key(&Uint8Array::from(bytes.as_slice()), &key(&s.name, s.seq))
                .map_err(|e| js_error(e, "saving a snapshot"))?;
        }
        committed(&tx, "saving snapshots").await
    }

    async fn positions(&self, name: &str) -> Result<Vec<u64>, StoreError> {
        let tx = self.transaction(&[SNAPSHOTS], IdbTransactionMode::Readonly)?;
        let range = IdbKeyRange::bound(
            &key(name, 0),
            &Array::of2(&JsValue::from_str(name), &JsValue::from_f64(f64::INFINITY)),
        )
        .map_err(|e| js_error(e, "listing snapshots"))?;
        let req = store_of(&tx, SNAPSHOTS)?
            .get_all_keys_with_key(&range)
            .map_err(|e| js_error(e, "listing snapshots"))?;
        let keys: Array = done(&req, "listing snapshots").await?.unchecked_into();
        Ok(keys
            .iter()
            .map(|k| Array::from(&k).get(1).as_f64().unwrap_or(0.0) as u64)
            .collect())
    }

    async fn load(&self, name: &str, seq: u64) -> Result<Option<Snapshot>, StoreError> {
        let tx = self.transaction(&[SNAPSHOTS], IdbTransactionMode::Readonly)?;
        let req = store_of(&tx, SNAPSHOTS)?
            .get(&key(name, seq))
            .map_err(|e| js_error(e, "reading a snapshot"))?;
        let value = done(&req, "reading a snapshot").await?;
        let Ok(bytes) = value.dyn_into::<Uint8Array>() else {
            return Ok(None);
        };
        // A record that does not even decode is as good as missing: the
        // projection is rebuilt from the log.
        Ok(postcard::from_bytes(&bytes.to_vec()).ok())
    }

    async fn delete(&self, name: &str, seq: u64) -> Result<(), StoreError> {
        let tx = self.transaction(&[SNAPSHOTS], IdbTransactionMode::Readwrite)?;
        store_of(&tx, SNAPSHOTS)?
            .delete(&key(name, seq))
            .map_err(|e| js_error(e, "deleting a snapshot"))?;
        committed(&tx, "deleting a snapshot").await
    }
}
