//! Open cases, each with its events so far (its prefix). Closed cases leave.

use super::wip::Wip;
use super::Projection;
use crate::domain::events::Name;
use crate::domain::fact::{attributes, AttrValue};
use crate::domain::{Fact, Recorded};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One event of a case, as a prefix keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Activity name.
    pub activity: Name,
    /// Who did it, when known.
    pub resource: Option<Name>,
    /// When (domain time, UTC ms).
    pub at: i64,
    /// Hours logged, when known.
    pub hours: Option<f64>,
    /// Open cases in the process just before this event.
    pub wip_total: u32,
    /// Open cases held by this event's resource just before it.
    pub wip_resource: u32,
}

/// A case's events so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseTrace {
    /// Case id.
    pub case: String,
    /// When it opened.
    pub opened_at: i64,
    /// Its attributes, sorted by name.
    pub attributes: Vec<(String, AttrValue)>,
    /// Open cases in the process when it opened.
    pub opened_wip: u32,
    /// `seq` of its last event.
    pub last_seq: u64,
    /// Its activities so far.
    pub steps: Vec<Step>,
}

impl CaseTrace {
    /// When its last event happened.
    pub fn last_at(&self) -> i64 {
        self.steps.last().map_or(self.opened_at, |s| s.at)
    }

    /// An attribute by name.
    pub fn attribute(&self, name: &str) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// The open cases.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenCases {
    /// Open cases by id.
    pub cases: BTreeMap<String, CaseTrace>,
    /// Work in progress, as of the last event.
    pub wip: Wip,
}

impl OpenCases {
    /// Fold one event, handing out the trace of a case that closes.
    pub fn apply_and_take_closed(&mut self, event: &Recorded) -> Option<CaseTrace> {
        let mut closed = None;
        match &event.fact {
            Fact::CaseOpened(c) => {
                self.cases.insert(
                    c.case.clone(),
                    CaseTrace {
                        case: c.case.clone(),
                        opened_at: event.occurred_at,
                        attributes: attributes(&c.attributes),
                        opened_wip: self.wip.open,
                        last_seq: event.seq,
                        steps: Vec::new(),
                    },
                );
            }
            Fact::ActivityRecorded(a) => {
                let wip_total = self.wip.open;
                let wip_resource = a.resource.as_deref().map_or(0, |r| self.wip.of(r));
                // An activity for a case never opened (an import may start
                // mid-case) opens it implicitly at that moment. (get_mut
                // first: the hot path must not copy the case id.)
                if !self.cases.contains_key(&a.case) {
                    self.cases.insert(
                        a.case.clone(),
                        CaseTrace {
                            case: a.case.clone(),
                            opened_at: event.occurred_at,
                            attributes: Vec::new(),
                            opened_wip: wip_total,
                            last_seq: event.seq,
                            steps: Vec::new(),
                        },
                    );
                }
                let trace = self.cases.get_mut(&a.case).expect("inserted above");
                trace.last_seq = event.seq;
                trace.steps.push(Step {
                    activity: a.activity.clone(),
                    resource: a.resource.clone(),
                    at: event.occurred_at,
                    hours: a.hours,
                    wip_total,
                    wip_resource,
                });
            }
            Fact::CaseClosed(c) => closed = self.cases.remove(&c.case),
            _ => {}
        }
        self.wip.apply(event);
        closed
    }
}

impl Projection for OpenCases {
    const NAME: &'static str = "open_cases";
    const VERSION: u32 = 1;

    fn apply(&mut self, event: &Recorded) {
        self.apply_and_take_closed(event);
    }
}
