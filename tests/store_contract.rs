//! The store contract on the in-memory backend (the browser suite runs the
//! same cases on IndexedDB: tests/browser_store.rs).
#![cfg(not(target_arch = "wasm32"))]

use retrace::store::memory::MemoryStore;

retrace::store_contract!(native: MemoryStore::new());

/// What a shared log's replica needs beside it.
mod replica {
    use retrace::store::memory::MemoryStore;
    retrace::replica_contract!(native: MemoryStore::new());
}
