//! Learning from the log: features of case prefixes, models, and the
//! standard backtest. Pure Rust: the same code trains natively, on the page
//! and in the training worker.

pub mod backtest;
pub mod boosting;
pub mod drift;
pub mod features;
pub mod feedback_loop;
pub mod models;
pub mod prequential;
pub mod protocol;
pub mod registry;
pub mod selection;
