//! The live state of this tab: the projection set its views show, kept
//! current with the log (boot from snapshots, then follow every commit,
//! from this tab and others), snapshots every N events and when the tab is
//! hidden, and time travel to any past position. The feedback loop runs in
//! the log engine's worker ([`super::engine_worker`]) while this tab holds
//! the loop; this page only hears where it stands and trains what it asks.

use super::engine_worker::EngineWorker;
use super::stream_row::{keep_newest, StreamRow, STREAM_ROWS};
use super::trainer::Trainer;
use super::Log;
use crate::engine::messages::{Command, Reply};
use crate::ml::feedback_loop::{entry_event, training_cases, verdict_event, Decision, Policy};
use crate::projection::snapshot::{self, snapshots_of};
use crate::projection::training_set::Finished;
use crate::projection::{read_decoded, replay, ProjectionSet};
use crate::store::EventStore;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::VecDeque;

/// Events between snapshots, by default.
pub const SNAPSHOT_EVERY: u64 = 5_000;
/// Events read per batch while replaying.
const BATCH: usize = 4_096;

/// Latency samples kept (one per commit the loop predicted for).
const LATENCIES: usize = 500;

/// The live state, shared by the panels through context.
#[derive(Clone, Copy)]
pub struct Live {
    set: StoredValue<ProjectionSet, LocalStorage>,
    past_set: StoredValue<Option<ProjectionSet>, LocalStorage>,
    /// Bumps whenever what the panels show changed.
    pub tick: RwSignal<u64>,
    /// Position of the live projections.
    pub seq: RwSignal<u64>,
    /// Newest events first.
    pub stream: RwSignal<VecDeque<StreamRow>>,
    /// "restored from snapshot at seq N, replayed M events in X ms".
    pub boot: RwSignal<Option<String>>,
    /// Snapshots ignored at boot, and why.
    pub notes: RwSignal<Vec<String>>,
    /// The position being viewed in the past (None: live).
    pub past: RwSignal<Option<u64>>,
    /// Snapshot every this many events.
    pub snapshot_every: RwSignal<u64>,
    /// Whether this tab runs the feedback loop: predicts with the champion
    /// (and the challenger, in shadow), records drift, trains, promotes.
    pub predicting: RwSignal<bool>,
    /// This tab holds the loop's Web Lock (the loop runs here).
    pub holding: RwSignal<bool>,
    /// When the loop trains and how it judges challengers.
    pub policy: RwSignal<Policy>,
    /// What the loop's training is doing, in words.
    pub training: RwSignal<Option<String>>,
    /// Whether a training of the loop's runs now.
    pub training_busy: RwSignal<bool>,
    /// Where the engine's projections stood at its last answer (0: no engine).
    pub engine_seq: RwSignal<u64>,
    /// Prediction latency (commit seen → predictions committed), ms.
    pub latencies: RwSignal<VecDeque<f64>>,
    /// The log engine's worker, while this tab drives the loop.
    engine: StoredValue<EngineWorker, LocalStorage>,
    /// The shared log's sync (whose lease says who drives a team's loop).
    shared: super::shared::Shared,
    /// The page shows a shared log.
    team: bool,
    /// A model is being trained by hand (the button on the loop's panel).
    manual: StoredValue<bool, LocalStorage>,
    trainer: StoredValue<Trainer, LocalStorage>,
    last_snapshot: StoredValue<u64, LocalStorage>,
    following: StoredValue<bool, LocalStorage>,
    again: StoredValue<bool, LocalStorage>,
}

impl Live {
    /// Whether this browser may steer the loop by hand (train a challenger,
    /// promote it): always on its own log; on a shared log only while it
    /// drives the team's loop — a model trained elsewhere would enter the
    /// loop before its driver has its bytes.
    pub fn steers(&self) -> bool {
        !self.team || self.shared.standing.get() == super::shared::Standing::Ours
    }

    /// Read the projections the panels should show: the past ones while
    /// time travelling, the live ones otherwise.
    pub fn with_view<R>(&self, f: impl FnOnce(&ProjectionSet) -> R) -> R {
        self.tick.track();
        let past = self.past_set.with_value(|p| p.is_some());
        if past {
            self.past_set
                .with_value(|p| f(p.as_ref().expect("checked")))
        } else {
            self.set.with_value(f)
        }
    }

    /// The live state; it fills once [`Live::boot`] has run.
    pub fn new(log: Log, trainer: Trainer, shared: super::shared::Shared) -> Live {
        let live = Live {
            set: StoredValue::new_local(ProjectionSet::default()),
            past_set: StoredValue::new_local(None),
            tick: RwSignal::new(0),
            seq: RwSignal::new(0),
            stream: RwSignal::new(VecDeque::new()),
            boot: RwSignal::new(None),
            notes: RwSignal::new(Vec::new()),
            past: RwSignal::new(None),
            snapshot_every: RwSignal::new(SNAPSHOT_EVERY),
            predicting: RwSignal::new(false),
            holding: RwSignal::new(false),
            policy: RwSignal::new(Policy::default()),
            training: RwSignal::new(None),
            training_busy: RwSignal::new(false),
            latencies: RwSignal::new(VecDeque::new()),
            engine_seq: RwSignal::new(0),
            engine: StoredValue::new_local(EngineWorker::default()),
            shared,
            team: super::shared::connected(),
            manual: StoredValue::new_local(false),
            trainer: StoredValue::new_local(trainer),
            last_snapshot: StoredValue::new_local(0),
            // Booting counts as following: commits meanwhile wait for it.
            following: StoredValue::new_local(true),
            again: StoredValue::new_local(false),
        };
        // Every new head (this tab's commits and other tabs') → catch up.
        Effect::new(move |_| {
            let head = log.head.get();
            // The engine first: its latency is counted from here.
            live.engine.with_value(|e| e.post(Command::Head(head)));
            if head > live.seq.get_untracked() {
                live.follow(log);
            }
        });
        // On a shared log the loop runs in one browser for the whole team:
        // the one holding the lease on the server (see share::lease).
        let team = live.team;
        Effect::new(move |_| {
            let wanted = team && live.predicting.get() && live.holding.get();
            if shared.loop_wanted.get_untracked() != wanted {
                shared.loop_wanted.set(wanted);
            }
        });
        live.say_standing(shared, team);
        // The loop on (this tab holds its lock, and on a shared log this
        // browser the lease): the engine's worker runs.
        Effect::new(move |_| {
            let leased = !team || shared.standing.get() == super::shared::Standing::Ours;
            let on = live.predicting.get() && live.holding.get() && leased;
            // Also re-run as the head moves: the store may open after the switch.
            log.head.track();
            let opened = log.get().is_some();
            match (on && opened, live.engine.with_value(|e| e.running())) {
                (true, false) => live.start_engine(log),
                (false, true) => {
                    live.engine.with_value(|e| e.stop());
                    live.training_busy.set(false);
                }
                _ => {}
            }
        });
        Effect::new(move |_| {
            let policy = live.policy.get();
            live.engine.with_value(|e| e.post(Command::Policy(policy)));
        });
        live.snapshot_when_hidden(log);
        live.remember_policy();
        super::web_lock::guard(live.predicting, live.holding, live.training);
        live
    }

    /// Restore from snapshots, replay the tail, then follow the log.
    pub async fn boot(self, log: Log) {
        let Some(store) = log.get() else {
            self.following.set_value(false);
            return;
        };
        let t0 = now();
        let (mut set, restored) = match snapshot::restore(&*store, u64::MAX).await {
            Ok(r) => r,
            Err(e) => {
                log.fail(e);
                Default::default()
            }
        };
        let from = set.seq() + 1;
        let head = log.head.get_untracked();
        let boot_line = self.boot;
        let result = read_decoded(&*store, from, u64::MAX, BATCH, |events| {
            for e in &events {
                set.apply(e);
            }
            // Say how far the rebuild has come (the page renders between batches).
            if let Some(last) = events.last() {
                boot_line.set(Some(format!(
                    "rebuilding the projections: {} of {head} events…",
                    last.seq
                )));
            }
        })
        .await;
        // The stream shows the newest events, whether replayed or restored.
        let mut rows = VecDeque::new();
        let newest_from = set.seq().saturating_sub(STREAM_ROWS as u64 - 1);
        // A read that fails here (a damaged record) is shown, never dropped.
        let newest = read_decoded(&*store, newest_from, set.seq(), STREAM_ROWS, |events| {
            keep_newest(&mut rows, &events)
        })
        .await;
        let replayed = set.seq().saturating_sub(restored.from_seq);
        let ms = now() - t0;
        self.last_snapshot.set_value(restored.from_seq);
        self.boot.set(Some(if restored.from_seq > 0 {
            format!(
                "restored from snapshot at seq {}, replayed {replayed} events in {ms:.0} ms",
                restored.from_seq
            )
        } else {
            format!("no snapshot: replayed {replayed} events in {ms:.0} ms")
        }));
        if !restored.notes.is_empty() {
            self.notes.set(restored.notes);
        }
        if let Err(e) = result.and(newest) {
            log.fail(e);
        }
        let seq = set.seq();
        self.set.set_value(set);
        self.stream.set(rows);
        self.seq.set(seq);
        self.tick.update(|t| *t += 1);
        self.following.set_value(false);
        // Anything committed while booting.
        if log.head.get_untracked() > seq {
            self.follow(log);
        }
    }

    /// Catch up with the log; one runner at a time, re-run if more arrived.
    fn follow(self, log: Log) {
        if self.following.get_value() {
            self.again.set_value(true);
            return;
        }
        self.following.set_value(true);
        spawn_local(async move {
            loop {
                self.again.set_value(false);
                let Some(store) = log.get() else { break };
                let from = self.set.with_value(|s| s.seq()) + 1;
                // The stream's new rows, shown together with the projections' new position.
                let mut rows = self.stream.get_untracked();
                let result = read_decoded(&*store, from, u64::MAX, BATCH, |events| {
                    self.set
                        .update_value(|set| events.iter().for_each(|e| set.apply(e)));
                    keep_newest(&mut rows, &events);
                })
                .await;
                if let Err(e) = result {
                    log.fail(e);
                    break;
                }
                let seq = self.set.with_value(|s| s.seq());
                self.stream.set(rows);
                self.seq.set(seq);
                if self.past.get_untracked().is_none() {
                    self.tick.update(|t| *t += 1);
                }
                if seq >= self.last_snapshot.get_value() + self.snapshot_every.get_untracked() {
                    self.snapshot(log).await;
                }
                if !self.again.get_value() {
                    break;
                }
            }
            self.following.set_value(false);
        });
    }

    /// Start the log engine's worker over this tab's database.
    fn start_engine(self, log: Log) {
        let Some(store) = log.get() else { return };
        let shared = super::shared::connected();
        let database = store.name().to_owned();
        let policy = self.policy.get_untracked();
        let engine = self.engine.get_value();
        spawn_local(async move {
            let started = engine
                .start(database, policy, shared, move |reply| self.hear(log, reply))
                .await;
            match started {
                Ok(()) => engine.post(Command::Head(log.head.get_untracked())),
                Err(e) => self.training.set(Some(e)),
            }
        });
    }

    /// On a shared log: say who drives the team's loop, as it changes.
    fn say_standing(self, shared: super::shared::Shared, team: bool) {
        use super::shared::Standing;
        if !team {
            return;
        }
        let ttl = crate::share::lease::TTL_MS / 1000.0;
        Effect::new(move |before: Option<Standing>| {
            let now = shared.standing.get();
            let wanted = shared.loop_wanted.get();
            let syncing = shared.syncing.get();
            let said = match &now {
                _ if !wanted => None,
                _ if !syncing => Some(
                    "The loop of a shared log runs in the tab that sends and receives it (the first tab opened on it); switch it on there.".to_owned(),
                ),
                Standing::Ours if matches!(before, Some(Standing::Theirs(_))) => Some(format!(
                    "This browser took the team's loop over: the browser that drove it went away (its lease ran out after {ttl:.0} s)."
                )),
                Standing::Ours => Some(
                    "This browser drives the team's loop on this shared log (it holds the lease on the server).".to_owned(),
                ),
                Standing::Theirs(holder) => Some(format!(
                    "{} drives the team's loop on this shared log; this browser shows what it records, and takes the loop over if that browser goes away ({ttl:.0} s without renewing its lease).",
                    holder.name
                )),
                Standing::Asking | Standing::Idle => Some(
                    "Asking the server who drives the team's loop on this shared log…".to_owned(),
                ),
            };
            if let Some(text) = said {
                self.training.set(Some(text));
            }
            now
        });
    }

    /// What the engine says.
    fn hear(self, log: Log, reply: Reply) {
        match reply {
            Reply::Started { seq } => self.engine_seq.set(seq),
            Reply::CaughtUp {
                seq,
                appended_to,
                ms,
                ..
            } => {
                self.engine_seq.set(seq);
                if let Some(last) = appended_to {
                    log.head.update(|h| *h = (*h).max(last));
                    self.latencies.update(|l| {
                        l.push_back(ms);
                        if l.len() > LATENCIES {
                            l.pop_front();
                        }
                    });
                }
            }
            Reply::Train {
                reason,
                cases,
                position,
                known_models,
            } => self.train_for_engine(log, reason, cases, position, known_models),
            Reply::Note(message) => self.training.set(Some(message)),
            Reply::Failed(message) => log.fail(message),
        }
    }

    /// Train what the engine asked for, register it, and tell the engine.
    fn train_for_engine(
        self,
        log: Log,
        reason: String,
        cases: Vec<Finished>,
        position: (u64, i64),
        known_models: u64,
    ) {
        self.training_busy.set(true);
        let status = self.training;
        status.set(Some(format!(
            "training on {} closed cases ({reason})…",
            cases.len()
        )));
        let trainer = self.trainer.get_value();
        spawn_local(async move {
            // The loop serves what validation chooses (see ml::selection).
            let result = super::training::train_and_register(
                log,
                &trainer,
                None,
                cases,
                position,
                known_models,
                move |m| status.set(Some(m)),
            )
            .await;
            let engine = self.engine.get_value();
            match result {
                Ok((record, message)) => {
                    engine.post(Command::Trained {
                        record: Box::new(record),
                        reason,
                    });
                    status.set(Some(message));
                }
                Err(e) => {
                    engine.post(Command::TrainingFailed);
                    status.set(Some(match e {
                        super::trainer::Asked::Cancelled => "training cancelled".into(),
                        other => other.to_string(),
                    }));
                }
            }
            self.training_busy.set(false);
        });
    }

    /// Train a model by hand (the loop's panel) in the training worker on
    /// the newest `window` closed cases, register it, and let it enter
    /// (champion if there is none, else challenger). The stream goes on
    /// meanwhile.
    pub fn train(self, log: Log, reason: &'static str, window: usize) {
        if self.manual.get_value() || self.training_busy.get_untracked() {
            return;
        }
        self.manual.set_value(true);
        self.training_busy.set(true);
        let cases = self.set.with_value(|s| training_cases(s, window));
        let position = self
            .set
            .with_value(|s| (s.seq(), crate::ml::feedback_loop::log_time(s)));
        let trainer = self.trainer.get_value();
        let status = self.training;
        status.set(Some(format!(
            "training on {} closed cases ({reason})…",
            cases.len()
        )));
        spawn_local(async move {
            // The loop serves what validation chooses (see ml::selection).
            let spec = None;
            let result = super::training::train_and_register(
                log,
                &trainer,
                spec,
                cases,
                position,
                self.set
                    .with_value(|s| s.feedback.state.highest_model_number()),
                move |m| status.set(Some(m)),
            )
            .await;
            let Some(store) = log.get() else {
                self.manual.set_value(false);
                self.training_busy.set(false);
                return;
            };
            match result {
                Ok((record, message)) => {
                    let entry = self.set.with_value(|s| entry_event(s, &record, reason));
                    match store.append_batch(vec![entry]).await {
                        Ok(c) => {
                            log.head.update(|h| *h = (*h).max(c.last_seq));
                            status.set(Some(message));
                        }
                        Err(e) => log.fail(e),
                    }
                }
                Err(e) => {
                    status.set(Some(match e {
                        super::trainer::Asked::Cancelled => "training cancelled".into(),
                        other => other.to_string(),
                    }));
                }
            }
            self.manual.set_value(false);
            self.training_busy.set(false);
        });
    }

    /// Promote the challenger now, whatever the duel says.
    pub fn promote_now(self, log: Log) {
        let decision = self.set.with_value(|s| {
            let f = &s.feedback.state;
            let mae = f.duel_mae();
            f.challenger.as_ref().map(|c| {
                Decision::Promote(crate::domain::events::ModelPromoted {
                    model: c.clone(),
                    replaced: f.champion.clone(),
                    reason: "manual".into(),
                    champion_mae_d: mae.map(|m| m.0),
                    challenger_mae_d: mae.map(|m| m.1),
                    outcomes: mae.map_or(0, |m| m.2 as u64),
                })
            })
        });
        let Some(append) = decision.and_then(|d| self.set.with_value(|s| verdict_event(s, &d)))
        else {
            return;
        };
        let Some(store) = log.get() else { return };
        spawn_local(async move {
            match store.append_batch(vec![append]).await {
                Ok(c) => log.head.update(|h| *h = (*h).max(c.last_seq)),
                Err(e) => log.fail(e),
            }
        });
    }

    /// The loop's policy outlives a reload: kept in this origin's localStorage.
    fn remember_policy(self) {
        const KEY: &str = "retrace.policy";
        let storage = web_sys::window().and_then(|w| w.local_storage().ok().flatten());
        let Some(storage) = storage else { return };
        let saved = storage
            .get_item(KEY)
            .ok()
            .flatten()
            .and_then(|json| serde_json::from_str::<Policy>(&json).ok());
        if let Some(policy) = saved {
            self.policy.set(policy);
        }
        Effect::new(move |_| {
            let json = self
                .policy
                .with(|p| serde_json::to_string(p).unwrap_or_default());
            let _ = storage.set_item(KEY, &json);
        });
    }

    /// Write snapshots of the live set now.
    pub async fn snapshot(self, log: Log) {
        let Some(store) = log.get() else { return };
        let (seq, snaps) = self.set.with_value(|s| (s.seq(), snapshots_of(s)));
        if seq == 0 || seq == self.last_snapshot.get_value() {
            return;
        }
        match snapshot::save_snapshots(&*store, snaps).await {
            Ok(()) => self.last_snapshot.set_value(seq),
            Err(e) => log.fail(e),
        }
    }

    fn snapshot_when_hidden(self, log: Log) {
        use wasm_bindgen::closure::Closure;
        use wasm_bindgen::JsCast;
        let Some(document) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        let handler = Closure::<dyn FnMut()>::new(move || {
            let hidden = web_sys::window()
                .and_then(|w| w.document())
                .is_some_and(|d| d.visibility_state() == web_sys::VisibilityState::Hidden);
            if hidden {
                spawn_local(self.snapshot(log));
            }
        });
        let _ = document
            .add_event_listener_with_callback("visibilitychange", handler.as_ref().unchecked_ref());
        handler.forget();
    }

    /// Show the state as of `seq` (None: back to live).
    pub fn travel(self, log: Log, seq: Option<u64>) {
        let Some(at) = seq else {
            self.past.set(None);
            self.past_set.set_value(None);
            self.tick.update(|t| *t += 1);
            return;
        };
        self.past.set(Some(at));
        let Some(store) = log.get() else { return };
        spawn_local(async move {
            let (mut set, _) = match snapshot::restore(&*store, at).await {
                Ok(r) => r,
                Err(e) => return log.fail(e),
            };
            if let Err(e) = replay(&mut set, &*store, at, BATCH, |_| {}).await {
                return log.fail(e);
            }
            // The slider may have moved on meanwhile: keep only the latest.
            if self.past.get_untracked() == Some(at) {
                self.past_set.set_value(Some(set));
                self.tick.update(|t| *t += 1);
            }
        });
    }
}

use super::browser::now;
