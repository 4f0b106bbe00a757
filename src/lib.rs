//! Retrace: learn from an event log in the browser.
//!
//! The pure core — [`log`], [`store`] (trait and memory store), [`domain`] —
//! knows nothing of the browser and is tested with plain `cargo test`. The
//! browser edges (IndexedDB, the UI) compile only for `wasm32`.

pub mod domain;
pub mod engine;
pub mod io;
pub mod log;
pub mod ml;
pub mod projection;
pub mod share;
pub mod store;
pub mod util;

#[cfg(target_arch = "wasm32")]
pub mod host;
#[cfg(target_arch = "wasm32")]
pub mod ui;
#[cfg(target_arch = "wasm32")]
pub mod web;
