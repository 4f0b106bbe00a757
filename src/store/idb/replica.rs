//! IndexedDB as a shared log's replica: the sync's view of the outbox,
//! the registry and the read-only switch (each method lives beside its
//! object store; this only names them for the sync).

use super::IdbStore;
use crate::domain::model::ModelTrained;
use crate::store::outbox::Waiting;
use crate::store::replica::{ModelStore, ReplicaStore};
use crate::store::{Committed, RegistryRow, StoreError, StreamAppend};

impl ReplicaStore for IdbStore {
    async fn use_outbox(&self) -> Result<(), StoreError> {
        IdbStore::use_outbox(self).await
    }
    async fn append_unit(&self, batch: Vec<StreamAppend>) -> Result<Committed, StoreError> {
        IdbStore::append_unit(self, batch).await
    }
    async fn waiting(&self, after: Option<u64>) -> Result<Vec<(u64, Waiting)>, StoreError> {
        IdbStore::waiting(self, after).await
    }
    async fn settle(&self, delete: &[u64], rewrite: &[(u64, Waiting)]) -> Result<(), StoreError> {
        IdbStore::settle(self, delete, rewrite).await
    }
    async fn append_replicated(&self, batch: Vec<StreamAppend>) -> Result<Committed, StoreError> {
        IdbStore::append_replicated(self, batch).await
    }
    async fn stream_versions(&self, streams: &[&str]) -> Result<Vec<Option<u64>>, StoreError> {
        IdbStore::stream_versions(self, streams).await
    }
    fn is_read_only(&self) -> bool {
        IdbStore::is_read_only(self)
    }
    fn set_read_only(&self, why: Option<String>) {
        IdbStore::set_read_only(self, why)
    }
}

impl ModelStore for IdbStore {
    async fn list_models(&self) -> Result<Vec<(String, RegistryRow)>, StoreError> {
        IdbStore::list_models(self).await
    }
    async fn model_bytes(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        IdbStore::model_bytes(self, id).await
    }
    async fn save_new_model(
        &self,
        record: &ModelTrained,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        IdbStore::save_new_model(self, record, bytes).await
    }
}
