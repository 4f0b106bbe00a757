//! The live state of this tab: what its views show, as the log engine in
//! this tab's worker ([`super::engine_worker`]) hands it over. The engine
//! boots the projections from snapshots, follows every commit (this tab's
//! and other tabs'), writes snapshots, rebuilds past positions for time
//! travel, and runs the feedback loop while this tab holds it; the page
//! tells it of new heads and what the user asks, and renders its answers.

use super::engine_worker::EngineWorker;
use super::Log;
use crate::engine::call::{Answer, EngineError, Request, TrainModel};
use crate::engine::imports::{ImportCommand, ImportNews, ImportOrder};
use crate::engine::messages::{Command, HostCommand, Reply, ToEngine};
use crate::engine::simulation::SimCommand;
use crate::engine::stream_row::StreamRow;
use crate::engine::views::Views;
use crate::ml::feedback_loop::Policy;
use futures::channel::mpsc;
use futures::StreamExt;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::{BTreeMap, VecDeque};

/// Events between snapshots, by default.
pub const SNAPSHOT_EVERY: u64 = 5_000;

/// Latency samples kept (one per commit the loop predicted for).
const LATENCIES: usize = 500;

/// The live state, shared by the panels through context.
#[derive(Clone, Copy)]
pub struct Live {
    /// What the panels show: the live views, or the past ones while time
    /// travelling.
    pub views: RwSignal<Views>,
    /// What this browser's registry holds, by model id (the engine reads
    /// it: [`HostCommand::ListModels`]).
    pub stored_models:
        RwSignal<BTreeMap<String, Result<crate::domain::model::ModelTrained, String>>>,
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
    /// Source events the engine's simulator produced in this run.
    pub sim_produced: RwSignal<u64>,
    /// Why the engine's simulator paused by itself (the log refused it).
    pub sim_halted: RwSignal<Option<String>>,
    /// The log engine's worker.
    engine: StoredValue<EngineWorker, LocalStorage>,
    /// The loop runs in the engine (it was told to start).
    /// The loop runs in the engine (and, on a shared log, in the term of
    /// the lease taken at this revision).
    looping: StoredValue<Option<Option<u64>>, LocalStorage>,
    /// The engine has been asked to open the log.
    pub opened: RwSignal<bool>,
    /// The newest live views (shown again after time travel).
    live_views: StoredValue<Views, LocalStorage>,
    /// Requests waiting for the engine's answers, by id: every reply
    /// under an id goes to its request, which ends with the last.
    pending: StoredValue<BTreeMap<u32, mpsc::UnboundedSender<Reply>>, LocalStorage>,
    next_ask: StoredValue<u32, LocalStorage>,
    /// The shared log's sync (whose lease says who drives a team's loop).
    shared: super::shared::Shared,
    /// The page shows a shared log.
    team: bool,
    /// A model is being trained by hand (the button on the loop's panel).
    manual: StoredValue<bool, LocalStorage>,
}

impl Live {
    /// Whether this browser may steer the loop by hand (train a challenger,
    /// promote it): always on its own log; on a shared log only while it
    /// drives the team's loop — a model trained elsewhere would enter the
    /// loop before its driver has its bytes.
    pub fn steers(&self) -> bool {
        !self.team || self.shared.standing.get() == super::shared::Standing::Ours
    }

    /// The live state; it fills once [`Live::boot`] has run.
    pub fn new(shared: super::shared::Shared) -> Live {
        let live = Live {
            views: RwSignal::new(Views::default()),
            stored_models: RwSignal::new(BTreeMap::new()),
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
            sim_produced: RwSignal::new(0),
            sim_halted: RwSignal::new(None),
            engine: StoredValue::new_local(EngineWorker::default()),
            looping: StoredValue::new_local(None),
            opened: RwSignal::new(false),
            live_views: StoredValue::new_local(Views::default()),
            pending: StoredValue::new_local(BTreeMap::new()),
            next_ask: StoredValue::new_local(0),
            shared,
            team: super::shared::connected(),
            manual: StoredValue::new_local(false),
        };
        // On a shared log the loop runs in one browser for the whole team:
        // the one holding the lease on the server (see share::lease).
        let team = live.team;
        Effect::new(move |_| {
            let wanted = team && live.predicting.get() && live.holding.get();
            if shared.loop_wanted.get_untracked() != wanted {
                shared.loop_wanted.set(wanted);
                live.tell_engine(HostCommand::LoopWanted(wanted));
            }
        });
        live.say_standing(shared, team);
        // The loop on (this tab holds its lock, and on a shared log this
        // browser the lease): the engine runs it. On a shared log it runs
        // in the lease's term: taken again, it starts again.
        Effect::new(move |_| {
            let leased = !team || shared.standing.get() == super::shared::Standing::Ours;
            let on = live.predicting.get() && live.holding.get() && leased && live.opened.get();
            let taken = shared.lease.with(|l| l.as_ref().map(|l| l.taken));
            let key = on.then_some(taken);
            if key == live.looping.get_value() {
                return;
            }
            live.looping.set_value(key);
            let policy = live.policy.get_untracked();
            let held = shared.lease.get_untracked().filter(|_| team);
            let driver = held.as_ref().map(|held| crate::engine::Driver {
                browser: held.holder.browser.clone(),
                name: held.holder.name.clone(),
                lease: held.taken,
                secret: super::browser::random_bytes(32),
            });
            live.engine.with_value(|e| {
                if !on {
                    return e.post(Command::Stop);
                }
                e.post(Command::Start { policy, driver });
                if let Some(held) = &held {
                    e.post(Command::Lease {
                        for_ms: held.left_ms.max(0.0),
                    });
                }
            });
            if !on {
                live.training_busy.set(false);
            }
        });
        // Each renewal of the lease: the engine may decide this long more.
        Effect::new(move |_| {
            let Some(held) = shared.lease.get() else {
                return;
            };
            if live.looping.get_value().is_some() {
                let for_ms = held.left_ms.max(0.0);
                live.engine
                    .with_value(|e| e.post(Command::Lease { for_ms }));
            }
        });
        Effect::new(move |_| {
            let policy = live.policy.get();
            live.engine.with_value(|e| e.post(Command::Policy(policy)));
        });
        Effect::new(move |_| {
            let every = live.snapshot_every.get();
            live.engine
                .with_value(|e| e.post(HostCommand::SnapshotEvery(every)));
        });
        live.snapshot_when_hidden();
        // The demo sets its own policy; the user's stays as they left it.
        if !super::demo_saved::shown() {
            live.remember_policy();
        }
        super::web_lock::guard(live.predicting, live.holding, live.training);
        live
    }

    /// Start the log engine's worker on this tab's log: it restores the
    /// projections from snapshots, replays the tail, follows the log and
    /// hands over the views.
    pub async fn boot(self, log: Log) {
        let database = super::shared::database();
        let engine = self.engine.get_value();
        // A restarted worker ends what the old one was doing: its imports,
        // questions and registrations hear that it went away.
        self.pending.update_value(|p| p.clear());
        // First in the worker's queue: whatever the user does while it
        // loads (start the simulator, import a file) comes after.
        engine.post(Command::Open {
            database,
            shared: super::shared::connected(),
        });
        engine.post(HostCommand::SnapshotEvery(
            self.snapshot_every.get_untracked(),
        ));
        engine.post(Command::Head(log.head.get_untracked()));
        match engine.start(move |reply| self.hear(log, reply)).await {
            Ok(()) => self.opened.set(true),
            Err(e) => {
                log.fail(e);
                log.open.set(true);
            }
        }
    }

    /// On a shared log: say who drives the team's loop, as it changes.
    fn say_standing(self, shared: super::shared::Shared, team: bool) {
        use super::shared::Standing;
        if !team {
            return;
        }
        let ttl = crate::engine::api::TTL_MS / 1000.0;
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
            Reply::Sync(news) => self.shared.hear(news),
            Reply::Head(head) => {
                log.head.update(|h| *h = (*h).max(head));
                log.open.set(true);
            }
            Reply::LogCut { head, seen } => {
                log.head.set(head);
                log.fail(format!(
                    "Another tab recovered the log and kept events 1–{}; this page still shows {seen}. Reload it to see the log as it is now.",
                    head.saturating_sub(1)
                ));
            }
            Reply::Booted { seq, line, notes } => {
                self.boot.set(Some(line));
                if !notes.is_empty() {
                    self.notes.set(notes);
                }
                self.seq.set(seq);
            }
            Reply::Views {
                views: update,
                stream,
                whole_stream,
            } => {
                self.seq.set(update.seq);
                if whole_stream {
                    self.stream.set(stream.into());
                } else if !stream.is_empty() {
                    self.stream.update(|rows| {
                        for row in stream.into_iter().rev() {
                            rows.push_front(row);
                        }
                        rows.truncate(crate::engine::stream_row::STREAM_ROWS);
                    });
                }
                let mut views = Box::new(self.live_views.get_value());
                views.apply(*update);
                // The Shared log card lists the log's refusals (live, not
                // as of a past position).
                if self
                    .shared
                    .set_aside
                    .with_untracked(|a| *a != views.feedback.set_aside)
                {
                    self.shared.set_aside.set(views.feedback.set_aside.clone());
                }
                let refused = (views.stats.refused_total, views.stats.refused.clone());
                if self.shared.refused.with_untracked(|r| *r != refused) {
                    self.shared.refused.set(refused);
                }
                if self.past.get_untracked().is_none() {
                    self.views.set((*views).clone());
                }
                self.live_views.set_value(*views);
            }
            Reply::Past { at, views } => {
                if self.past.get_untracked() == Some(at) {
                    self.views.set(*views);
                }
            }
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
            // The engine's worker trains what its loop asks for; the page
            // hears how it goes.
            Reply::Train { .. } => {}
            Reply::LoopTraining { busy, message } => {
                self.training_busy.set(busy);
                self.training.set(Some(message));
            }
            // Answers to requests go to them (see `Live::call`); the sync in
            // the engine's worker asks for packs, not the page.
            Reply::Cases { .. }
            | Reply::Import { .. }
            | Reply::ExportPart { .. }
            | Reply::Exported { .. }
            | Reply::Recovered { .. }
            | Reply::Registered { .. }
            | Reply::Progress { .. }
            | Reply::TrainedByHand { .. }
            | Reply::Backtested { .. }
            | Reply::Checked { .. }
            | Reply::PackApplied { .. }
            | Reply::PackMade { .. } => self.route(reply),
            Reply::Simulated { produced, head } => {
                log.head.update(|h| *h = (*h).max(head));
                self.sim_produced.set(produced);
            }
            Reply::SimulatorHalted(why) => self.sim_halted.set(Some(why)),
            Reply::Note(message) => self.training.set(Some(message)),
            Reply::Failed(message) => {
                log.fail(message);
                // The log did not open, or a command failed: either way
                // the page shows what it has.
                log.open.set(true);
            }
            Reply::Appended { head } => log.head.update(|h| *h = (*h).max(head)),
            Reply::StoredModels(list) => self.stored_models.set(list.into_iter().collect()),
        }
    }

    /// A fresh id for a question, an import or a registration sent to the
    /// engine (its answers carry it back).
    fn next_id(self) -> u32 {
        let id = self.next_ask.get_value();
        self.next_ask.set_value(id.wrapping_add(1));
        id
    }

    /// A reply under a request's id to the request waiting for it; the
    /// request's last reply ends it.
    fn route(self, reply: Reply) {
        let Some(id) = reply.id() else { return };
        let ends = reply.ends_request();
        self.pending.update_value(|p| {
            if let Some(tx) = p.get(&id) {
                let _ = tx.unbounded_send(reply);
            }
            if ends {
                p.remove(&id);
            }
        });
    }

    /// Wait for the replies under a new id, once `send(id)` has posted the
    /// request: they close after the last one — or without it if the
    /// worker went away.
    fn replies(self, send: impl FnOnce(u32)) -> mpsc::UnboundedReceiver<Reply> {
        let (tx, rx) = mpsc::unbounded();
        let id = self.next_id();
        self.pending.update_value(|p| {
            p.insert(id, tx);
        });
        send(id);
        rx
    }

    /// Ask the engine `request` and await its answer; pieces of a longer
    /// answer (an export's text) go to `piece` as they come.
    pub async fn call<R: Request>(
        self,
        request: R,
        mut piece: impl FnMut(Reply),
    ) -> Result<R::Response, EngineError> {
        let engine = self.engine;
        let mut replies =
            self.replies(move |id| engine.with_value(|e| e.post(request.command(id))));
        while let Some(reply) = replies.next().await {
            match R::answer(reply) {
                Answer::Done(outcome) => return outcome,
                Answer::Piece(p) => piece(p),
            }
        }
        Err(EngineError::Gone)
    }

    /// Import `blob` in the engine's worker as `order` says (its id is
    /// set here). The news arrives on the returned channel, which closes
    /// after the last piece — or without one if the worker went away.
    pub fn import(
        self,
        mut order: ImportOrder,
        blob: &web_sys::Blob,
    ) -> (u32, impl futures::Stream<Item = ImportNews>) {
        let engine = self.engine;
        let mut asked = 0;
        let replies = self.replies(|id| {
            asked = id;
            order.id = id;
            engine
                .with_value(|e| e.post_import(&ImportCommand::Start(Box::new(order)), Some(blob)));
        });
        let news = replies.filter_map(|reply| {
            futures::future::ready(match reply {
                Reply::Import { news, .. } => Some(news),
                _ => None,
            })
        });
        (asked, news)
    }

    /// Have the engine's worker train a model on the newest `window`
    /// closed cases (0: all), register it, and let it enter the loop if
    /// `enter` says why: the record as registered and a line for the page.
    /// How it goes is handed to `progress`.
    pub async fn train_by_hand(
        self,
        spec: Option<crate::ml::models::Spec>,
        window: usize,
        enter: Option<String>,
        progress: impl Fn(String),
    ) -> Result<(crate::domain::model::ModelTrained, String), EngineError> {
        let request = TrainModel {
            spec,
            window,
            enter,
        };
        self.call(request, |piece| {
            if let Reply::Progress { message, .. } = piece {
                progress(message)
            }
        })
        .await
    }

    /// Stop the training under way in the engine's worker.
    pub fn cancel_training(self) {
        self.tell_engine(HostCommand::CancelTraining);
    }

    /// The engine's worker, to post it commands that need no answer.
    pub fn engine_worker(self) -> StoredValue<super::engine_worker::EngineWorker, LocalStorage> {
        self.engine
    }

    /// Send the engine a command that needs no answer.
    pub fn tell_engine(self, command: impl Into<ToEngine>) {
        self.engine.with_value(|e| e.post(command));
    }

    /// Tell the engine's simulator what the user does.
    pub fn simulate(self, command: SimCommand) {
        self.engine
            .with_value(|e| e.post(Command::Simulate(command)));
    }

    /// Ask the import `id` to stop.
    pub fn cancel_import(self, id: u32) {
        self.engine
            .with_value(|e| e.post_import(&ImportCommand::Cancel(id), None));
    }

    /// Train a model by hand (the loop's panel) on the newest `window`
    /// closed cases and let it enter (champion if there is none, else
    /// challenger); the engine's worker does it all. The stream goes on
    /// meanwhile.
    pub fn train(self, reason: &'static str, window: usize) {
        if self.manual.get_value() || self.training_busy.get_untracked() {
            return;
        }
        self.manual.set_value(true);
        self.training_busy.set(true);
        let status = self.training;
        status.set(Some(format!("training ({reason})…")));
        spawn_local(async move {
            let result = self
                .train_by_hand(None, window, Some(reason.to_owned()), move |m| {
                    status.set(Some(m))
                })
                .await;
            status.set(Some(match result {
                Ok((_, line)) => line,
                Err(e) => e.to_string(),
            }));
            self.manual.set_value(false);
            self.training_busy.set(false);
        });
    }

    /// Promote the challenger now, whatever the duel says.
    pub fn promote_now(self) {
        self.engine.with_value(|e| e.post(Command::Promote));
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

    /// Write snapshots of the projections now.
    pub fn snapshot_now(self) {
        self.engine.with_value(|e| e.post(HostCommand::Snapshot));
    }

    fn snapshot_when_hidden(self) {
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
                self.snapshot_now();
            }
        });
        let _ = document
            .add_event_listener_with_callback("visibilitychange", handler.as_ref().unchecked_ref());
        handler.forget();
    }

    /// Show the state as of `seq` (None: back to live).
    pub fn travel(self, seq: Option<u64>) {
        self.past.set(seq);
        if seq.is_none() {
            self.views.set(self.live_views.get_value());
        }
        self.engine.with_value(|e| e.post(HostCommand::Travel(seq)));
    }
}
