//! The simulator's controls, shared by the page: its panel, the demo
//! button and the views all drive one run, which goes on while the user
//! moves between views. The run itself is the engine's: it produces and
//! commits the events in its worker ([`crate::engine::simulation`]); the
//! page sends what the user does and shows how far it got.

use super::live::Live;
use super::Log;
use crate::domain::simulator::{Drift, Settings};
use crate::engine::simulation::SimCommand;
use leptos::prelude::*;

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

/// The page's side of the simulator.
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
    /// Source events this run has produced (committed).
    pub produced: RwSignal<u64>,
    live: Live,
}

impl Sim {
    /// The controls of the engine's simulator.
    pub fn new(log: Log, live: Live) -> Sim {
        let sim = Sim {
            seed: RwSignal::new(42),
            rate: RwSignal::new(20.0),
            cases_per_day: RwSignal::new(Settings::default().cases_per_day),
            status: RwSignal::new(Status::Stopped),
            produced: live.sim_produced,
            live,
        };
        Effect::new(move |_| {
            let rate = sim.rate.get();
            live.simulate(SimCommand::Rate(rate));
        });
        // The log refused the run's events: it paused; say why.
        Effect::new(move |_| {
            if let Some(why) = live.sim_halted.get() {
                live.sim_halted.set(None);
                sim.status.set(Status::Paused);
                log.fail(why);
            }
        });
        sim
    }

    /// Start (or resume) a run; a new run continues the log's domain time
    /// with its own case ids, and injects `drift` after that many cases.
    pub fn start(self, log: Log, live: Live, drift: Option<(u64, Drift)>) {
        self.start_with(log, live, drift, None)
    }

    /// [`Sim::start`], for a run whose process has already `changed` (the
    /// demo resumed after its drift).
    pub fn start_with(
        self,
        log: Log,
        live: Live,
        drift: Option<(u64, Drift)>,
        changed: Option<Drift>,
    ) {
        if self.status.get_untracked() == Status::Stopped {
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
                changed,
            };
            self.produced.set(0);
            self.live.simulate(SimCommand::Start {
                settings: Box::new(settings),
                rate: self.rate.get_untracked(),
            });
        } else {
            self.live.simulate(SimCommand::Resume);
        }
        self.status.set(Status::Running);
    }

    /// Hold still.
    pub fn pause(self) {
        self.live.simulate(SimCommand::Pause);
        self.status.set(Status::Paused);
    }

    /// End the run.
    pub fn stop(self) {
        self.live.simulate(SimCommand::Stop);
        self.status.set(Status::Stopped);
    }

    /// Change the process now.
    pub fn inject(self, drift: Drift) {
        self.live.simulate(SimCommand::Inject(drift));
    }
}

/// Six random hex digits from the browser's CSPRNG (a run's own label).
pub fn run_token() -> String {
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
