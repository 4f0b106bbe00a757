//! The simulator as the engine's worker runs it: the page sends what the
//! user does ([`SimCommand`]); the worker ticks a [`SimRun`] every
//! [`TICK_MS`] and commits what it hands out, so generating, encoding and
//! committing the demo's events never touch the page's thread. The pace is
//! kept against the wall clock: a tick makes up for the time since the
//! last one (a late tick writes more), up to [`MAX_CATCH_UP_MS`].

use crate::domain::simulator::{Drift, Settings, Simulator};
use crate::store::{by_stream, StreamAppend};
use serde::{Deserialize, Serialize};

/// Milliseconds between ticks.
pub const TICK_MS: u32 = 200;
/// Most wall time one tick makes up for (a worker that was busy for
/// seconds does not then write seconds' worth in one commit).
pub const MAX_CATCH_UP_MS: f64 = 1_000.0;

/// What the user does with the simulator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SimCommand {
    /// A new run with these settings, producing `rate` events per second.
    Start {
        /// The run's settings.
        settings: Box<Settings>,
        /// Events per second.
        rate: f64,
    },
    /// Go on with the paused run.
    Resume,
    /// Hold still.
    Pause,
    /// End the run.
    Stop,
    /// A new rate, events per second.
    Rate(f64),
    /// Change the process now.
    Inject(Drift),
}

/// A simulator run and its pace.
pub struct SimRun {
    sim: Simulator,
    rate: f64,
    /// Events due but not yet whole.
    carry: f64,
    running: bool,
    produced: u64,
}

impl SimRun {
    /// A run with `settings` at `rate` events per second, running.
    pub fn new(settings: Settings, rate: f64) -> SimRun {
        SimRun {
            sim: Simulator::new(settings),
            rate,
            carry: 0.0,
            running: true,
            produced: 0,
        }
    }

    /// Apply the user's `command` to the run in `slot`.
    pub fn apply(slot: &mut Option<SimRun>, command: SimCommand) {
        match command {
            SimCommand::Start { settings, rate } => *slot = Some(SimRun::new(*settings, rate)),
            SimCommand::Stop => *slot = None,
            command => {
                let Some(run) = slot.as_mut() else { return };
                match command {
                    SimCommand::Resume => run.running = true,
                    SimCommand::Pause => run.running = false,
                    SimCommand::Rate(rate) => run.rate = rate,
                    SimCommand::Inject(drift) => run.sim.inject(drift),
                    SimCommand::Start { .. } | SimCommand::Stop => {}
                }
            }
        }
    }

    /// Whether it produces events.
    pub fn running(&self) -> bool {
        self.running
    }

    /// Hold still (the log refused a commit).
    pub fn pause(&mut self) {
        self.running = false;
    }

    /// Source events handed out so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// The events due `elapsed_ms` after the last tick, as appends (none
    /// while paused).
    pub fn tick(&mut self, elapsed_ms: f64) -> Vec<StreamAppend> {
        if !self.running {
            return Vec::new();
        }
        let due = self.carry + self.rate * elapsed_ms.clamp(0.0, MAX_CATCH_UP_MS) / 1000.0;
        let n = due.floor();
        self.carry = due - n;
        if n < 1.0 {
            return Vec::new();
        }
        let events = self.sim.next_events(n as usize);
        self.produced += events.len() as u64;
        by_stream(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(batch: &[StreamAppend]) -> usize {
        batch.iter().map(|a| a.events.len()).sum()
    }

    fn run(rate: f64) -> Option<SimRun> {
        let mut slot = None;
        SimRun::apply(
            &mut slot,
            SimCommand::Start {
                settings: Box::new(Settings::default()),
                rate,
            },
        );
        slot
    }

    /// The ids of the events, in a fixed order (a batch groups them by stream).
    fn ids(batches: impl IntoIterator<Item = StreamAppend>) -> Vec<String> {
        let mut ids: Vec<String> = batches
            .into_iter()
            .flat_map(|a| a.events.into_iter().map(|e| e.id))
            .collect();
        ids.sort();
        ids
    }

    /// What the simulator itself hands out when asked for `asks` events in turn.
    fn asked(asks: &[usize]) -> Vec<String> {
        let mut alone = Simulator::new(Settings::default());
        ids(asks.iter().map(|&n| {
            let events = alone.next_events(n);
            StreamAppend::new("all", crate::store::ExpectedVersion::Any, {
                events.into_iter().map(|(_, e)| e).collect()
            })
        }))
    }

    #[test]
    fn a_run_keeps_its_rate_against_the_clock_fractions_included() {
        let mut slot = run(7.5);
        let run = slot.as_mut().unwrap();
        // 7.5 events per second in ticks of 200 ms: 1.5 due per tick, so
        // the simulator is asked for 1, 2, 1, 2, …
        let mut ticked: Vec<StreamAppend> = (0..50).flat_map(|_| run.tick(200.0)).collect();
        let mut asks: Vec<usize> = (0..50).map(|i| 1 + i % 2).collect();
        // A late tick makes up for the time it missed: 4.5 due, 4 asked.
        ticked.extend(run.tick(600.0));
        asks.push(4);
        // A minute's stall makes up for one second only: 7.5 + the half carried.
        ticked.extend(run.tick(60_000.0));
        asks.push(8);
        let ticked = ids(ticked);
        assert_eq!(ticked, asked(&asks));
        assert_eq!(run.produced(), ticked.len() as u64);
    }

    #[test]
    fn paused_it_writes_nothing_resumed_it_goes_on_stopped_it_is_gone() {
        let mut slot = run(100.0);
        SimRun::apply(&mut slot, SimCommand::Pause);
        assert!(slot.as_mut().unwrap().tick(200.0).is_empty());
        SimRun::apply(&mut slot, SimCommand::Resume);
        SimRun::apply(&mut slot, SimCommand::Rate(50.0));
        assert!(count(&slot.as_mut().unwrap().tick(200.0)) >= 10);
        SimRun::apply(&mut slot, SimCommand::Stop);
        assert!(slot.is_none());
        // Commands for a run that is gone change nothing.
        SimRun::apply(&mut slot, SimCommand::Resume);
        assert!(slot.is_none());
    }

    #[test]
    fn an_injected_drift_is_recorded_in_the_run() {
        let mut slot = run(1_000.0);
        SimRun::apply(
            &mut slot,
            SimCommand::Inject(Drift::WorkDoubles("repair".into())),
        );
        let batch = slot.as_mut().unwrap().tick(200.0);
        let types: Vec<_> = batch
            .iter()
            .flat_map(|a| a.events.iter().map(|e| e.event_type.clone()))
            .collect();
        assert!(types.iter().any(|t| t == "ProcessChanged"), "{types:?}");
    }
}
