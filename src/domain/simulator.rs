//! A seeded, deterministic simulator of an ERP service process with a
//! work-logging side: the live stream the app runs on when no real log is
//! loaded.
//!
//! Cases (service orders) arrive during working hours. Each category routes
//! through its own activities; some steps loop back (a failed test goes back
//! to repair). Every activity needs a resource with the skill for it;
//! resources differ in speed and working days, work one task at a time, and
//! take waiting tasks by priority, so queues form when they are busy. Work
//! only progresses in working hours (see [`calendar`](super::calendar)).
//! Remaining times therefore depend on real structure: category, priority,
//! progress so far, who is doing the work and how busy everyone is.
//!
//! The process is data: [`CATEGORIES`] (each kind of order, its share and
//! its route, rework included, as [`Next`] rules), [`ACTIVITY_HOURS`] and
//! the team; the engine below only follows them.
//!
//! The same seed and settings give byte-identical events. Concept drift is
//! injected with [`Simulator::inject`] or scheduled in [`Settings::drift`]:
//! it is recorded as a `ProcessChanged` event, then changes the process.

use super::calendar::{WorkDays, HOUR};
use super::events::{ActivityRecorded, Attributes, CaseClosed, CaseOpened, ProcessChanged};
use crate::log::NewEvent;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

pub use crate::util::Rng;

/// A change to the process, injected at a chosen moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Drift {
    /// A resource leaves: their skills are covered by the others.
    ResourceLeaves(String),
    /// A category's work takes twice as long.
    WorkDoubles(String),
    /// A category gets a new rework step (a second review after repair).
    ReworkAdded(String),
    /// A category's cases wait for parts after diagnosis: a few working
    /// days in which nobody on the team works on them.
    PartsWait(String),
}

impl Drift {
    fn kind(&self) -> &'static str {
        match self {
            Drift::ResourceLeaves(_) => "resource_left",
            Drift::WorkDoubles(_) => "work_doubled",
            Drift::ReworkAdded(_) => "rework_added",
            Drift::PartsWait(_) => "parts_wait",
        }
    }

    fn describe(&self) -> String {
        match self {
            Drift::ResourceLeaves(r) => format!("{r} left the team"),
            Drift::WorkDoubles(c) => format!("{c} work now takes twice as long"),
            Drift::ReworkAdded(c) => format!("{c} cases now need a second review after repair"),
            Drift::PartsWait(c) => format!(
                "{c} cases now wait for parts from the central warehouse after diagnosis (about {PARTS_WAIT_DAYS} working days)"
            ),
        }
    }
}

/// Simulator settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Seed: the same seed and settings give the same events.
    pub seed: u64,
    /// Run label, part of every case id (so several runs share one log).
    pub run: String,
    /// Domain time of the start (UTC ms).
    pub start_ms: i64,
    /// Mean new cases per working day.
    pub cases_per_day: f64,
    /// Drift to inject after this many cases have opened.
    pub drift: Option<(u64, Drift)>,
    /// A change already in force when the run starts (a run resumed after
    /// its drift): applied from the first case, without a new
    /// `ProcessChanged` event.
    #[serde(default)]
    pub changed: Option<Drift>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            seed: 42,
            run: "s1".into(),
            // Monday 2024-01-01 08:00 UTC.
            start_ms: 1_704_096_000_000,
            cases_per_day: 4.0,
            drift: None,
            changed: None,
        }
    }
}

struct Resource {
    name: &'static str,
    speed: f64,
    days: WorkDays,
    skills: &'static [&'static str],
    busy: bool,
    present: bool,
}

fn team() -> Vec<Resource> {
    let r = |name, speed, days, skills| Resource {
        name,
        speed,
        days,
        skills,
        busy: false,
        present: true,
    };
    vec![
        r(
            "Ana",
            0.7,
            WorkDays::WEEKDAYS,
            &["Triage", "Diagnose", "Repair"][..],
        ),
        r(
            "Ben",
            1.0,
            WorkDays::WEEKDAYS,
            &["Repair", "Test", "Install"][..],
        ),
        r(
            "Chen",
            1.4,
            WorkDays::WEEKDAYS,
            &["Diagnose", "Repair", "Install", "Plan"][..],
        ),
        r(
            "Dana",
            1.0,
            WorkDays::WEEKDAYS,
            &["Triage", "Review", "Sign-off", "Report"][..],
        ),
        r(
            "Eli",
            0.9,
            WorkDays(0b0000_0111),
            &["Install", "Test", "Inspect"][..],
        ),
        r(
            "Fay",
            1.2,
            WorkDays::WEEKDAYS,
            &["Plan", "Inspect", "Report", "Review", "Test"][..],
        ),
    ]
}

/// Median working hours of each activity (others: one hour).
const ACTIVITY_HOURS: [(&str, f64); 10] = [
    ("Triage", 0.5),
    ("Diagnose", 2.0),
    ("Repair", 5.0),
    ("Test", 1.0),
    ("Plan", 2.0),
    ("Install", 7.0),
    ("Sign-off", 0.5),
    ("Inspect", 3.0),
    ("Report", 1.0),
    ("Review", 1.5),
];

/// Median working hours of an activity.
fn base_hours(activity: &str) -> f64 {
    ACTIVITY_HOURS
        .iter()
        .find(|(a, _)| *a == activity)
        .map_or(1.0, |(_, h)| *h)
}

/// What follows an activity on a category's route. Each decision draws one
/// roll in `[0, 1)`.
#[derive(Clone, Copy, Debug)]
enum Next {
    /// Always this activity.
    To(&'static str),
    /// The case is done.
    Done,
    /// Back to `to` with chance `p` divided by how often `to` was done
    /// already (a failed test goes back to repair, less often each time);
    /// otherwise done.
    Retry { to: &'static str, p: f64 },
    /// `to` with chance `p`, otherwise `or`.
    Chance {
        to: &'static str,
        p: f64,
        or: &'static Next,
    },
    /// If `activity` was done already, `then`; otherwise `otherwise`.
    IfDone {
        activity: &'static str,
        then: &'static Next,
        otherwise: &'static Next,
    },
}

/// A kind of case: how often it arrives and the route it takes.
struct Category {
    name: &'static str,
    /// Share of arrivals.
    share: f64,
    /// The first activity.
    first: &'static str,
    /// What follows each activity (an activity not listed ends the case).
    route: &'static [(&'static str, Next)],
    /// The usual route, for the case's first estimate.
    usual: &'static [&'static str],
}

/// The service process: four kinds of order and their routes.
const CATEGORIES: [Category; 4] = [
    Category {
        name: "repair",
        share: 0.4,
        first: "Triage",
        route: &[
            ("Triage", Next::To("Diagnose")),
            ("Diagnose", Next::To("Repair")),
            ("Repair", Next::To("Test")),
            ("Review", Next::To("Test")),
            (
                "Test",
                Next::Retry {
                    to: "Repair",
                    p: 0.3,
                },
            ),
        ],
        usual: &["Triage", "Diagnose", "Repair", "Test"],
    },
    Category {
        name: "installation",
        share: 0.2,
        first: "Plan",
        route: &[
            ("Plan", Next::To("Install")),
            ("Install", Next::To("Test")),
            (
                "Test",
                Next::Chance {
                    to: "Install",
                    p: 0.15,
                    or: &Next::To("Sign-off"),
                },
            ),
            ("Sign-off", Next::Done),
        ],
        usual: &["Plan", "Install", "Test", "Sign-off"],
    },
    Category {
        name: "inspection",
        share: 0.25,
        first: "Inspect",
        route: &[("Inspect", Next::To("Report")), ("Report", Next::Done)],
        usual: &["Inspect", "Report"],
    },
    Category {
        name: "warranty",
        share: 0.15,
        first: "Triage",
        route: &[
            ("Triage", Next::To("Review")),
            (
                "Review",
                Next::IfDone {
                    activity: "Repair",
                    then: &Next::To("Test"),
                    otherwise: &Next::Chance {
                        to: "Repair",
                        p: 0.65,
                        or: &Next::Done,
                    },
                },
            ),
            ("Repair", Next::To("Test")),
            ("Test", Next::Done),
        ],
        usual: &["Triage", "Review", "Repair", "Test"],
    },
];

fn kind_of(name: &str) -> Option<&'static Category> {
    CATEGORIES.iter().find(|c| c.name == name)
}

/// The activity `next` leads to for a case that has done `done`.
fn follow(next: &Next, done: &[&'static str], roll: f64) -> Option<&'static str> {
    match *next {
        Next::To(a) => Some(a),
        Next::Done => None,
        Next::Retry { to, p } => {
            let times = done.iter().filter(|a| **a == to).count() as f64;
            (roll < p / times).then_some(to)
        }
        Next::Chance { to, p, or } => {
            if roll < p {
                Some(to)
            } else {
                follow(or, done, roll)
            }
        }
        Next::IfDone {
            activity,
            then,
            otherwise,
        } => follow(
            if done.contains(&activity) {
                then
            } else {
                otherwise
            },
            done,
            roll,
        ),
    }
}

const PRIORITIES: [(&str, f64, i64); 4] = [
    ("low", 0.2, 15),
    ("normal", 0.55, 8),
    ("high", 0.2, 4),
    ("urgent", 0.05, 2),
];

struct Case {
    id: String,
    category: &'static str,
    priority: usize,
    /// Activities done so far, in order.
    done: Vec<&'static str>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Arrival,
    Finish {
        resource: usize,
        case: usize,
        activity: &'static str,
        hours_x1000: u64,
    },
    Drift,
    /// Parts arrived for a case waiting for them.
    Delivered {
        case: usize,
        hours_x1000: u64,
    },
}

/// The waiting activity [`Drift::PartsWait`] adds, and who records it.
const AWAIT_PARTS: &str = "Await parts";
const WAREHOUSE: &str = "Warehouse";
/// Typical wait for parts, working days.
const PARTS_WAIT_DAYS: f64 = 5.0;

struct Task {
    case: usize,
    activity: &'static str,
    priority: usize,
    order: u64,
}

/// The simulator. Call [`Simulator::next_events`] to advance it.
pub struct Simulator {
    settings: Settings,
    rng: Rng,
    now: i64,
    team: Vec<Resource>,
    /// Open cases by number; closed ones are dropped (memory stays bounded).
    cases: std::collections::HashMap<usize, Case>,
    opened: usize,
    waiting: Vec<Task>,
    agenda: BinaryHeap<Reverse<(i64, u64, Action)>>,
    order: u64,
    emitted: u64,
    out: Vec<(String, NewEvent)>,
    work_factor: Vec<(&'static str, f64)>,
    extra_review: Vec<&'static str>,
    parts_wait: Vec<&'static str>,
    drift_done: bool,
}

impl Simulator {
    /// A simulator at the start of its run.
    pub fn new(settings: Settings) -> Self {
        let mut sim = Simulator {
            rng: Rng::new(settings.seed),
            now: settings.start_ms,
            team: team(),
            cases: Default::default(),
            opened: 0,
            waiting: Vec::new(),
            agenda: BinaryHeap::new(),
            order: 0,
            emitted: 0,
            out: Vec::new(),
            work_factor: Vec::new(),
            extra_review: Vec::new(),
            parts_wait: Vec::new(),
            drift_done: false,
            settings,
        };
        if let Some(drift) = sim.settings.changed.clone() {
            sim.change(drift);
            sim.drift_done = true;
        }
        let first = sim.settings.start_ms;
        sim.schedule(first, Action::Arrival);
        sim
    }

    /// Domain time of the simulator's clock.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Events produced so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// The names of the team, in order.
    pub fn team(&self) -> Vec<&'static str> {
        self.team.iter().map(|r| r.name).collect()
    }

    fn schedule(&mut self, at: i64, action: Action) {
        self.order += 1;
        self.agenda.push(Reverse((at, self.order, action)));
    }

    fn emit<T: Serialize>(
        &mut self,
        stream: String,
        event_type: &str,
        schema: u32,
        data: &T,
        case: Option<&str>,
    ) {
        self.emitted += 1;
        let id = format!(
            "{}-{:x}-{}",
            self.settings.run, self.settings.seed, self.emitted
        );
        let mut event = NewEvent::new(id, event_type, schema, self.now, data);
        if let Some(case) = case {
            event = event.correlated(case);
        }
        self.out.push((stream, event));
    }

    /// Inject drift now: a `ProcessChanged` event, then the change.
    pub fn inject(&mut self, drift: Drift) {
        let change = ProcessChanged {
            kind: drift.kind().into(),
            description: drift.describe(),
        };
        self.emit(
            ProcessChanged::STREAM.into(),
            ProcessChanged::TYPE,
            ProcessChanged::SCHEMA,
            &change,
            None,
        );
        self.change(drift);
    }

    /// Change the process (what [`Simulator::inject`] does after recording it).
    fn change(&mut self, drift: Drift) {
        match drift {
            Drift::ResourceLeaves(name) => {
                if let Some(r) = self.team.iter_mut().find(|r| r.name == name) {
                    r.present = false;
                }
            }
            Drift::WorkDoubles(category) => {
                if let Some(c) = kind_of(category.as_str()) {
                    self.work_factor.push((c.name, 2.0));
                }
            }
            Drift::ReworkAdded(category) => {
                if let Some(c) = kind_of(category.as_str()) {
                    self.extra_review.push(c.name);
                }
            }
            Drift::PartsWait(category) => {
                if let Some(c) = kind_of(category.as_str()) {
                    self.parts_wait.push(c.name);
                }
            }
        }
    }

    /// Advance until at least `n` more events exist, and return them in
    /// order of domain time, each with its stream.
    pub fn next_events(&mut self, n: usize) -> Vec<(String, NewEvent)> {
        while self.out.len() < n {
            let Some(Reverse((at, _, action))) = self.agenda.pop() else {
                break;
            };
            self.now = self.now.max(at);
            match action {
                Action::Arrival => self.arrive(),
                Action::Finish {
                    resource,
                    case,
                    activity,
                    hours_x1000,
                } => self.finish(resource, case, activity, hours_x1000 as f64 / 1000.0),
                Action::Drift => {
                    if let Some((_, drift)) = self.settings.drift.clone() {
                        self.inject(drift);
                    }
                }
                Action::Delivered { case, hours_x1000 } => {
                    self.record(case, AWAIT_PARTS, WAREHOUSE, hours_x1000 as f64 / 1000.0)
                }
            }
            self.dispatch();
        }
        std::mem::take(&mut self.out)
    }

    fn pick<T: Copy>(&mut self, table: &[(T, f64)]) -> usize {
        let mut x = self.rng.unit();
        for (i, (_, p)) in table.iter().enumerate() {
            if x < *p {
                return i;
            }
            x -= p;
        }
        table.len() - 1
    }

    fn arrive(&mut self) {
        self.opened += 1;
        let n = self.opened as u64;
        let id = format!("{}-{n}", self.settings.run);
        let shares: Vec<(&str, f64)> = CATEGORIES.iter().map(|c| (c.name, c.share)).collect();
        let kind = &CATEGORIES[self.pick(&shares)];
        let category = kind.name;
        let pri_table: Vec<(usize, f64)> = PRIORITIES
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.1))
            .collect();
        let priority = self.pick(&pri_table);
        let usual: f64 = kind.usual.iter().map(|a| base_hours(a)).sum();
        let estimate: f64 = usual * 1.3 * self.rng.lognormal(0.3);
        let customer = format!("Customer {:02}", 1 + self.rng.below(24));
        let due = self.now + PRIORITIES[priority].2 * super::calendar::DAY;
        let mut attributes = Attributes::new();
        attributes.insert("category".into(), json!(category));
        attributes.insert("priority".into(), json!(PRIORITIES[priority].0));
        attributes.insert("customer".into(), json!(customer));
        attributes.insert(
            "estimate_hours".into(),
            json!((estimate * 10.0).round() / 10.0),
        );
        attributes.insert("due".into(), json!(due));
        let opened = CaseOpened {
            case: id.clone(),
            attributes,
        };
        self.emit(
            format!("case-{id}"),
            CaseOpened::TYPE,
            CaseOpened::SCHEMA,
            &opened,
            Some(&id),
        );
        let case = self.opened;
        self.cases.insert(
            case,
            Case {
                id,
                category,
                priority,
                done: Vec::new(),
            },
        );
        self.enqueue_next(case);
        if let Some((at_case, _)) = &self.settings.drift {
            if !self.drift_done && n >= *at_case {
                self.drift_done = true;
                let now = self.now;
                self.schedule(now, Action::Drift);
            }
        }
        // Next arrival: exponential gaps in working time.
        let gap = self
            .rng
            .exponential(9.0 / self.settings.cases_per_day.max(0.01));
        let next = WorkDays::WEEKDAYS.add_hours(self.now, gap);
        self.schedule(next, Action::Arrival);
    }

    fn next_activity(&mut self, case: usize) -> Option<&'static str> {
        let c = &self.cases[&case];
        let last = c.done.last().copied();
        let extra_review = self.extra_review.contains(&c.category);
        let reviews_after_repair = c
            .done
            .iter()
            .rev()
            .take_while(|a| **a != "Repair")
            .filter(|a| **a == "Review")
            .count();
        let roll = self.rng.unit();
        // The injected rework: a review after each repair.
        if last == Some("Repair") && extra_review && reviews_after_repair == 0 {
            return Some("Review");
        }
        // The injected wait: parts ordered once diagnosed.
        if last == Some("Diagnose")
            && self.parts_wait.contains(&c.category)
            && !c.done.contains(&AWAIT_PARTS)
        {
            return Some(AWAIT_PARTS);
        }
        let kind = kind_of(c.category)?;
        let Some(last) = last else {
            return Some(kind.first);
        };
        let (_, next) = kind.route.iter().find(|(a, _)| *a == last)?;
        follow(next, &c.done, roll)
    }

    fn enqueue_next(&mut self, case: usize) {
        match self.next_activity(case) {
            // Nobody on the team waits for parts: the case just sleeps.
            Some(AWAIT_PARTS) => {
                let hours = PARTS_WAIT_DAYS * 9.0 * self.rng.lognormal(0.3);
                let hours_x1000 = (hours * 1000.0).round() as u64;
                let end = WorkDays::WEEKDAYS.add_hours(self.now, hours_x1000 as f64 / 1000.0);
                self.schedule(end, Action::Delivered { case, hours_x1000 });
            }
            Some(activity) => {
                self.order += 1;
                let priority = self.cases[&case].priority;
                self.waiting.push(Task {
                    case,
                    activity,
                    priority,
                    order: self.order,
                });
            }
            None => {
                let c = self.cases.remove(&case).expect("an open case");
                let id = c.id.clone();
                let outcome = if c.done.contains(&"Repair") || c.done.contains(&"Install") {
                    "fixed"
                } else {
                    "done"
                };
                let closed = CaseClosed {
                    case: id.clone(),
                    outcome: Some(outcome.into()),
                };
                self.emit(
                    format!("case-{id}"),
                    CaseClosed::TYPE,
                    CaseClosed::SCHEMA,
                    &closed,
                    Some(&id),
                );
            }
        }
    }

    /// Give waiting tasks to idle resources: most urgent first, then oldest.
    fn dispatch(&mut self) {
        self.waiting.sort_by_key(|t| (Reverse(t.priority), t.order));
        let mut i = 0;
        while i < self.waiting.len() {
            let activity = self.waiting[i].activity;
            let candidates: Vec<usize> = (0..self.team.len())
                .filter(|&r| {
                    let res = &self.team[r];
                    res.present && !res.busy && res.skills.contains(&activity)
                })
                .collect();
            // Nobody present has the skill any more: anyone present can do it, slowly.
            let candidates = if candidates.is_empty()
                && !self
                    .team
                    .iter()
                    .any(|r| r.present && r.skills.contains(&activity))
            {
                (0..self.team.len())
                    .filter(|&r| self.team[r].present && !self.team[r].busy)
                    .collect()
            } else {
                candidates
            };
            if candidates.is_empty() {
                i += 1;
                continue;
            }
            let r = candidates[self.rng.below(candidates.len())];
            let task = self.waiting.remove(i);
            let category = self.cases[&task.case].category;
            let factor: f64 = self
                .work_factor
                .iter()
                .filter(|(c, _)| *c == category)
                .map(|(_, f)| f)
                .product();
            let unskilled = if self.team[r].skills.contains(&activity) {
                1.0
            } else {
                1.8
            };
            let hours = base_hours(activity)
                * self.team[r].speed
                * factor
                * unskilled
                * self.rng.lognormal(0.45);
            let hours = (hours * 1000.0).round() / 1000.0;
            self.team[r].busy = true;
            let end = self.team[r].days.add_hours(self.now, hours);
            self.schedule(
                end,
                Action::Finish {
                    resource: r,
                    case: task.case,
                    activity,
                    hours_x1000: (hours * 1000.0) as u64,
                },
            );
        }
    }

    fn finish(&mut self, resource: usize, case: usize, activity: &'static str, hours: f64) {
        self.team[resource].busy = false;
        self.record(case, activity, self.team[resource].name, hours);
    }

    /// `activity` of `case` is done: record it and route the case on.
    fn record(&mut self, case: usize, activity: &'static str, by: &'static str, hours: f64) {
        let id = self.cases[&case].id.clone();
        let recorded = ActivityRecorded {
            case: id.clone(),
            activity: activity.into(),
            resource: Some(by.into()),
            hours: Some(hours),
            attributes: Attributes::new(),
        };
        self.emit(
            format!("case-{id}"),
            ActivityRecorded::TYPE,
            ActivityRecorded::SCHEMA,
            &recorded,
            Some(&id),
        );
        self.cases
            .get_mut(&case)
            .expect("an open case")
            .done
            .push(activity);
        self.enqueue_next(case);
    }
}

/// Hours per millisecond, for callers converting durations.
pub const HOURS_PER_MS: f64 = 1.0 / HOUR as f64;
