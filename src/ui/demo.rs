//! The demo runs in a log of its own: a database beside the user's, so
//! watching it never adds a simulated case to what the user imported. The
//! page opens it while this browser's demo setting says so (localStorage,
//! like the shared log's settings); *Back to your log* is one click.
//!
//! The demo tells one story — a process change, the alarm, a challenger,
//! its promotion — and stops once the new champion has been scored on
//! [`TOLD_AFTER`] outcomes, saying what happened, with *Run on*. A reload
//! resumes it where it was: the run goes on from the log's newest time, with
//! the process as the log says it is.

pub use super::demo_saved::shown;
use super::demo_saved::{save, saved, Saved};
use super::live::Live;
use super::sim::{Sim, Status};
use super::Log;
use crate::domain::simulator::Drift;
use crate::ml::feedback_loop::Policy;
use crate::web::lock::{request, Held};
use leptos::prelude::*;

/// The demo's seed: a run whose drift is found, retrained for and promoted
/// within a few thousand events at any commit size (see tests/feedback_loop.rs).
pub const DEMO_SEED: u64 = 6;
/// The demo injects its drift after this many cases.
pub const DEMO_DRIFT_AFTER: u64 = 400;

/// Outcomes the promoted challenger is scored on before the demo stops.
pub const TOLD_AFTER: u64 = 500;

/// The demo's process change.
pub fn drift() -> Drift {
    Drift::PartsWait("repair".into())
}

fn reload() {
    if let Some(w) = web_sys::window() {
        let _ = w.location().set_hash(super::route::View::Live.href());
        let _ = w.location().reload();
    }
}

/// Start a fresh demo in a new log of its own (the last demo's log is
/// deleted) and show it.
pub fn start_fresh() {
    let old = saved();
    if !old.database.is_empty() {
        if let Some(factory) = web_sys::window().and_then(|w| w.indexed_db().ok().flatten()) {
            // Deleted once no tab holds it open; nothing waits for that.
            let _ = factory.delete_database(&old.database);
        }
    }
    save(&Saved {
        on: true,
        database: format!("retrace-demo-{}", super::sim::run_token()),
        ..Saved::default()
    });
    reload();
}

/// Back to this browser's own log (or the shared log it is connected to);
/// the demo's log stays until the next fresh demo.
pub fn leave() {
    save(&Saved {
        on: false,
        ..saved()
    });
    reload();
}

/// The demo's loop: the first model early, so the story fits in minutes.
fn policy() -> Policy {
    Policy::demo()
}

/// The Web Lock of the tab that runs the demo: another tab on the demo's
/// log only shows it (two tabs would run two simulators into one log).
const LOCK: &str = "retrace-demo";

/// The demo on this page: what the views and the header show of it.
#[derive(Clone, Copy)]
pub struct Demo {
    /// The page shows the demo's log.
    pub shown: bool,
    /// While the demo holds still (its story told, or paused by the user,
    /// or run by another tab): what happened, in a line, beside *Run on*.
    pub note: RwSignal<Option<String>>,
    /// This tab runs the demo (it holds [`LOCK`]).
    driving: RwSignal<bool>,
    held: StoredValue<Option<Held>, LocalStorage>,
}

impl Default for Demo {
    fn default() -> Self {
        Demo::new()
    }
}

impl Demo {
    /// The demo as this page was opened.
    pub fn new() -> Demo {
        Demo {
            shown: shown(),
            note: RwSignal::new(None),
            driving: RwSignal::new(false),
            held: StoredValue::new_local(None),
        }
    }

    /// Run the demo's simulator and loop in this tab, if no other tab does.
    fn drive(self, log: Log, live: Live, sim: Sim) {
        if self.driving.get_untracked() {
            self.note.set(None);
            return resume(log, live, sim);
        }
        request(LOCK, true, move |got| match got {
            Some(held) => {
                self.held.set_value(Some(held));
                self.driving.set(true);
                self.note.set(None);
                resume(log, live, sim);
            }
            None => self.note.set(Some(
                "Another tab runs the demo; this one shows what it records.".to_owned(),
            )),
        });
    }

    /// Run the demo in the log just opened: from the start on an empty
    /// log, else from where the log says it was (unless it was told or
    /// paused: then it holds still until *Run on*); once its story is told,
    /// stop and say so.
    pub fn run(self, log: Log, live: Live, sim: Sim) {
        live.policy.set(policy());
        sim.seed.set(DEMO_SEED);
        sim.cases_per_day.set(3.0);
        sim.rate.set(250.0);
        let begun = RwSignal::new(false);
        // Once the views stand at the log's head, the run can continue it.
        Effect::new(move |_| {
            let current = live.opened.get() && live.seq.get() >= log.head.get();
            if !current || begun.get_untracked() {
                return;
            }
            let was = saved();
            if let Some(line) = was.told {
                self.note.set(Some(line));
            } else if was.paused {
                self.note
                    .set(Some("The demo is paused where you left it.".to_owned()));
            } else {
                self.drive(log, live, sim);
            }
            // Started by a key press on the page before: the keyboard goes
            // on from the content, not from the top of the document.
            if log.head.get_untracked() == 0 {
                use wasm_bindgen::JsCast;
                let main = web_sys::window()
                    .and_then(|w| w.document())
                    .and_then(|d| d.get_element_by_id("main"))
                    .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
                if let Some(main) = main {
                    let _ = main.focus();
                }
            }
            begun.set(true);
        });
        // Paused or stopped by the user (or by the story's end), the demo
        // stays so across a reload.
        Effect::new(move |_| {
            let running = sim.status.get() == Status::Running;
            if self.driving.get() && saved().paused == running {
                save(&Saved {
                    paused: !running,
                    ..saved()
                });
            }
        });
        // The story is told once: after *Run on* the demo goes on for as
        // long as the user lets it.
        Effect::new(move |_| {
            if !self.driving.get() || sim.status.get() != Status::Running {
                return;
            }
            let was = saved();
            if was.ran_on || was.told.is_some() {
                return;
            }
            if let Some(line) = story(live) {
                save(&Saved {
                    told: Some(line.clone()),
                    ..was
                });
                sim.stop();
                live.predicting.set(false);
                self.note.set(Some(line));
            }
        });
    }

    /// Run on: the simulator and the loop go on from where the log is.
    pub fn run_on(self, log: Log, live: Live, sim: Sim) {
        save(&Saved {
            told: None,
            paused: false,
            ran_on: saved().told.is_some() || saved().ran_on,
            ..saved()
        });
        self.drive(log, live, sim);
    }
}

/// Start the demo's run from where its log is: the loop on, the process
/// changed if the log says it has, else the change scheduled after
/// [`DEMO_DRIFT_AFTER`] cases in all.
fn resume(log: Log, live: Live, sim: Sim) {
    live.predicting.set(true);
    let (cases, changed) = live.views.with_untracked(|v| {
        let opened = v
            .stats
            .types
            .iter()
            .find(|(t, _)| t == "CaseOpened")
            .map_or(0, |(_, n)| *n);
        (opened, !v.stats.changes.is_empty())
    });
    let schedule = (!changed).then(|| (DEMO_DRIFT_AFTER.saturating_sub(cases), drift()));
    sim.start_with(log, live, schedule, changed.then(drift));
}

/// What the demo showed, once its story is told: the line the page shows.
fn story(live: Live) -> Option<String> {
    live.views.with(|v| {
        let since = v.feedback.since_change.as_ref()?;
        if since.promoted == 0 {
            return None;
        }
        let champion = v.feedback.champion.as_ref()?;
        let row = v.feedback.rows.iter().find(|r| &r.id == champion)?;
        (row.outcomes >= TOLD_AFTER).then(|| {
            format!(
                "The demo's story is told: repairs began to wait for parts, the served error rose to {:.2} days, the drift detector fired, {champion} was trained on the new cases and took over — {:.2} days now, over its first {} outcomes. The simulator stopped here.",
                since.peak, since.now, row.outcomes
            )
        })
    })
}
