//! The browser side of the engine's worker: what it does that needs the
//! browser — reading a chosen file, staging it in IndexedDB, committing or
//! playing it ([`import_job`]) — written over [`crate::store::idb`] and
//! the pure readers in [`crate::io`]. Nothing here touches the page: the
//! worker runs it and the page hears [`crate::engine::imports::ImportNews`].

pub mod browser;
pub mod import_job;
pub mod importer;
pub mod web_lock;
