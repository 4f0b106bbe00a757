//! The simulator, shared by the page: its controls, the demo button and the
//! views all drive one run, which goes on while the user moves between views.

use super::live::Live;
use super::Log;
use crate::domain::simulator::{Drift, Settings, Simulator};
use crate::store::{by_stream, EventStore};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// Whether the simulator runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// No run.
    Stopped,
    /// Producing events.
    Running,
    /// A run, holding still.
    Paused,
}

const TICK_MS: i32 = 200;

/// The page's simulator.
#[derive(Clone, Copy)]
pub struct Sim {
    /// Seed of the next run.
    pub seed: RwSignal<u64>,
    /// Events per second.
    pub rate: RwSignal<f64>,
    /// New cases per working day in the next run.
    pub cases_per_day: RwSignal<f64>,
    /// Running, paused or stopped.
    pub status: RwSignal<Status>,
    /// Source events this run has produced.
    pub produced: RwSignal<u64>,
    sim: StoredValue<Option<Simulator>, LocalStorage>,
    carry: StoredValue<f64, LocalStorage>,
}

impl Sim {
    /// The simulator, ticking every 200 ms for the page's life.
    pub fn new(log: Log) -> Sim {
        let sim = Sim {
            seed: RwSignal::new(42),
            rate: RwSignal::new(20.0),
            cases_per_day: RwSignal::new(Settings::default().cases_per_day),
            status: RwSignal::new(Status::Stopped),
            produced: RwSignal::new(0),
            sim: StoredValue::new_local(None),
            carry: StoredValue::new_local(0.0),
        };
        let tick = Closure::<dyn FnMut()>::new(move || sim.tick(log));
        if let Some(w) = web_sys::window() {
            let _ = w.set_interval_with_callback_and_timeout_and_arguments_0(
                tick.as_ref().unchecked_ref(),
                TICK_MS,
            );
        }
        tick.forget();
        sim
    }

    fn tick(self, log: Log) {
        if self.status.get_untracked() != Status::Running {
            return;
        }
        let Some(store) = log.get() else { return };
        let due = self.carry.get_value() + self.rate.get_untracked() * TICK_MS as f64 / 1000.0;
        let n = due.floor();
        self.carry.set_value(due - n);
        if n < 1.0 {
            return;
        }
        let events = self
            .sim
            .try_update_value(|s| s.as_mut().map(|s| s.next_events(n as usize)))
            .flatten()
            .unwrap_or_default();
        if events.is_empty() {
            return;
        }
        self.produced.update(|p| *p += events.len() as u64);
        let status = self.status;
        spawn_local(async move {
            match store.append_batch(by_stream(events)).await {
                Ok(c) => log.head.update(|h| *h = (*h).max(c.last_seq)),
                Err(e) => {
                    status.set(Status::Paused);
                    log.fail(e);
                }
            }
        });
    }

    /// Start (or resume) a run; a new run continues the log's domain time
    /// with its own case ids, and injects `drift` after that many cases.
    pub fn start(self, log: Log, live: Live, drift: Option<(u64, Drift)>) {
        if self.sim.with_value(|s| s.is_none()) {
            let last = live.views.with_untracked(|v| v.newest_at);
            let defaults = Settings::default();
            let settings = Settings {
                seed: self.seed.get_untracked(),
                // Unique per run and per tab: several tabs starting at the
                // same head must not write into each other's cases.
                run: format!("r{}-{}", log.head.get_untracked(), run_token()),
                start_ms: last.map_or(defaults.start_ms, |t| t + 1),
                cases_per_day: self.cases_per_day.get_untracked(),
                drift,
            };
            self.sim.set_value(Some(Simulator::new(settings)));
            self.produced.set(0);
        }
        self.status.set(Status::Running);
    }

    /// Hold still.
    pub fn pause(self) {
        self.status.set(Status::Paused);
    }

    /// End the run.
    pub fn stop(self) {
        self.status.set(Status::Stopped);
        self.sim.set_value(None);
    }

    /// Change the process now.
    pub fn inject(self, drift: Drift) {
        self.sim.update_value(|s| {
            if let Some(s) = s {
                s.inject(drift)
            }
        });
    }
}

/// Six random hex digits from the browser's CSPRNG (a run's own label).
fn run_token() -> String {
    let mut bytes = [0u8; 3];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .and_then(|c| c.get_random_values_with_u8_array(&mut bytes).ok())
        .is_some();
    if !filled {
        // No crypto: the clock's sub-millisecond digits still differ per tab.
        let t = web_sys::window()
            .and_then(|w| w.performance())
            .map_or(0.0, |p| p.now());
        bytes = ((t * 1000.0) as u32).to_le_bytes()[..3]
            .try_into()
            .unwrap_or([0; 3]);
    }
    crate::util::hex(&bytes)
}
