//! The work domain: cases (work orders, tickets) and what happens to them.

pub mod events;

pub use events::{schemas, ActivityRecorded, CaseClosed, CaseOpened};
