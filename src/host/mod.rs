//! The browser side of the engine's worker: the engine over IndexedDB
//! with its queue, snapshots, time travel and the simulator's clock
//! ([`engine`]), exports and a damaged log's salvage ([`export`]), an import from a chosen file to a commit
//! ([`import_job`]), models trained, backtests and the integrity check in nested workers ([`training`], [`trainer`]) and into the registry ([`registry`]), a shared log's packs ([`packs`]) and its sync with the server ([`sync`]) — written over [`crate::store::idb`] and the pure
//! readers in [`crate::io`]. Nothing here touches the page: the
//! worker runs it, and the page hears [`crate::engine::messages::Reply`].

pub mod engine;
pub mod export;
pub mod import_job;
pub mod importer;
pub mod packs;
pub mod registry;
pub mod sync;
pub mod trainer;
mod training;
