//! The work domain: cases (work orders, tickets) and what happens to them.

pub mod calendar;
pub mod events;
pub mod fact;
pub mod model;
pub mod simulator;

pub use events::{schemas, ActivityRecorded, CaseClosed, CaseOpened, ProcessChanged};
pub use fact::{check_payload, decode, AttrValue, DecodeError, Fact, Recorded};
