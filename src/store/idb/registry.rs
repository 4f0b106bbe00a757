//! The model registry: records in `models`, bytes in `model_bytes`, both
//! keyed by model id and written in one transaction.

use super::request::{committed, done, js_error};
use super::{store_of, IdbStore, MODELS, MODEL_BYTES};
use crate::domain::model::ModelTrained;
use crate::store::StoreError;
use js_sys::{Array, Uint8Array};
use wasm_bindgen::JsCast;
use web_sys::IdbTransactionMode;

pub use crate::store::RegistryRow;

impl IdbStore {
    /// Store a model's record and bytes.
    pub async fn save_model(&self, record: &ModelTrained, bytes: &[u8]) -> Result<(), StoreError> {
        let tx = self.transaction(&[MODELS, MODEL_BYTES], IdbTransactionMode::Readwrite)?;
        let meta = serde_json::to_vec(record).expect("records encode");
        let key = wasm_bindgen::JsValue::from_str(&record.id);
        store_of(&tx, MODELS)?
            .put_with_key(&Uint8Array::from(meta.as_slice()), &key)
            .map_err(|e| js_error(e, "saving a model"))?;
        store_of(&tx, MODEL_BYTES)?
            .put_with_key(&Uint8Array::from(bytes), &key)
            .map_err(|e| js_error(e, "saving a model"))?;
        committed(&tx, "saving a model").await
    }

    /// Store a new model's record and bytes under an id nobody has used:
    /// `false` (nothing written) if the id is taken — by another tab that
    /// trained at the same moment, say.
    pub async fn save_new_model(
        &self,
        record: &ModelTrained,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        let tx = self.transaction(&[MODELS, MODEL_BYTES], IdbTransactionMode::Readwrite)?;
        let key = wasm_bindgen::JsValue::from_str(&record.id);
        let models = store_of(&tx, MODELS)?;
        let req = models
            .count_with_key(&key)
            .map_err(|e| js_error(e, "saving a model"))?;
        if done(&req, "saving a model").await?.as_f64().unwrap_or(0.0) > 0.0 {
            let _ = tx.abort();
            return Ok(false);
        }
        let meta = serde_json::to_vec(record).expect("records encode");
        models
            .add_with_key(&Uint8Array::from(meta.as_slice()), &key)
            .map_err(|e| js_error(e, "saving a model"))?;
        store_of(&tx, MODEL_BYTES)?
            .put_with_key(&Uint8Array::from(bytes), &key)
            .map_err(|e| js_error(e, "saving a model"))?;
        committed(&tx, "saving a model").await?;
        Ok(true)
    }

    /// Every registry record, oldest id first; a record this build cannot
    /// read comes back as an error in words.
    pub async fn list_models(&self) -> Result<Vec<(String, RegistryRow)>, StoreError> {
        let tx = self.transaction(&[MODELS], IdbTransactionMode::Readonly)?;
        let store = store_of(&tx, MODELS)?;
        let keys_req = store
            .get_all_keys()
            .map_err(|e| js_error(e, "listing models"))?;
        let values_req = store.get_all().map_err(|e| js_error(e, "listing models"))?;
        // Requests complete in order: waiting for the last means both are
        // done (waiting for each in turn could miss the second's event).
        let values: Array = done(&values_req, "listing models").await?.unchecked_into();
        let keys: Array = keys_req
            .result()
            .map_err(|e| js_error(e, "listing models"))?
            .unchecked_into();
        let mut out: Vec<(String, RegistryRow)> = keys
            .iter()
            .zip(values.iter())
            .map(|(k, v)| {
                let id = k.as_string().unwrap_or_default();
                let record = v
                    .dyn_into::<Uint8Array>()
                    .ok()
                    .and_then(|b| {
                        // JSON since records grew fields (old ones are postcard).
                        let bytes = b.to_vec();
                        serde_json::from_slice::<ModelTrained>(&bytes)
                            .ok()
                            .or_else(|| postcard::from_bytes::<ModelTrained>(&bytes).ok())
                    })
                    .ok_or_else(|| format!("{id} was saved by another version of Retrace and cannot be read here; retrain it from the log"));
                (id, record)
            })
            .collect();
        crate::store::replica::oldest_first(&mut out);
        Ok(out)
    }

    /// Delete the bytes of the models `ids`, in one transaction (their
    /// records stay: the log still names them).
    pub async fn delete_model_bytes(&self, ids: &[String]) -> Result<(), StoreError> {
        let tx = self.transaction(&[MODEL_BYTES], IdbTransactionMode::Readwrite)?;
        let store = store_of(&tx, MODEL_BYTES)?;
        for id in ids {
            store
                .delete(&wasm_bindgen::JsValue::from_str(id))
                .map_err(|e| js_error(e, "releasing a model's bytes"))?;
        }
        committed(&tx, "releasing a model's bytes").await
    }

    /// A model's bytes.
    pub async fn model_bytes(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.transaction(&[MODEL_BYTES], IdbTransactionMode::Readonly)?;
        let req = store_of(&tx, MODEL_BYTES)?
            .get(&id.into())
            .map_err(|e| js_error(e, "reading a model"))?;
        let value = done(&req, "reading a model").await?;
        Ok(value.dyn_into::<Uint8Array>().ok().map(|b| b.to_vec()))
    }
}
