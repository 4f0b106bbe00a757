//! The log engine as a tab's worker hosts it over IndexedDB: the engine's
//! commands (the page's, the sync's, the host's own) and the host's jobs
//! that need the engine held still (time travel, snapshots, registering a
//! model, a shared log's packs, the simulator's clock) queue up as
//! [`Job`]s and are answered one at a time, in order, by one task that
//! owns the engine (a job that arrives while another is being answered
//! waits; consecutive head moves are answered once, and so are
//! consecutive moves of the time slider; the simulator's ticks that
//! waited are one tick of all their time). The driver is given only
//! commands it answers itself. Every answer that moved the projections is
//! followed by the views.
//! Imports run beside the queue (see `Host::import`), and so does a shared
//! log's sync ([`crate::host::sync`]), which reaches the engine through the
//! same queue.

use crate::domain::model::ModelTrained;
use crate::engine::call::{Answer, CasesAnswer, ClosedCases, EngineError, Request};
use crate::engine::imports::{ImportCommand, ImportNews};
use crate::engine::messages::{
    boot_line, Command, Driver, Export, HostCommand, PackMade, Registration, Reply, ToEngine,
};
use crate::engine::simulation::{SimCommand, TICK_MS};
use crate::engine::views::Views;
use crate::engine::Engine;
use crate::host::export;
use crate::host::import_job::{self, CancelFlag};
use crate::host::sync::{self, wake, Incoming, Replica, Wakes};
use crate::host::trainer::Trainer;
use crate::ml::feedback_loop::Policy;
use crate::ml::protocol::{decode, encode};
use crate::projection::snapshot;
use crate::share::status::News;
use crate::store::idb::{IdbStore, Salvage};
use crate::web::lock::{take_in_line, Held};
use crate::web::sleep;
use futures::channel::oneshot;
use futures::future::LocalBoxFuture;
use futures::FutureExt;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use wasm_bindgen::JsValue;
use web_sys::DedicatedWorkerGlobalScope;

type Running = Driver<Rc<IdbStore>, Rc<IdbStore>>;

/// Events between snapshots, unless the page says otherwise.
const SNAPSHOT_EVERY: u64 = 5_000;
/// Events of its own last commits the engine's store keeps for the fold
/// (a pack of the shared log is committed whole before it is folded).
const KEEP_COMMITS: usize = 150_000;
/// Events per read when rebuilding a past position.
const BATCH: usize = 4_096;

/// What waits in the host's queue, answered one at a time, in order: the
/// engine's commands (the page's or the host's own), and the host's work
/// that needs the engine held still (its stores, its projections).
enum Job {
    /// For the engine's driver ([`Driver::handle`]).
    Engine(Command),
    /// The views as of `Some(seq)`; `None`: back to live.
    Travel(Option<u64>),
    /// Write snapshots of the projections now.
    Snapshot,
    /// Register a model the training worker trained: give it the next
    /// free id, store its bytes, check that the stored bytes predict what
    /// the training worker did, and record `ModelTrained`; answered with
    /// [`Reply::Registered`] under `id`.
    Register {
        id: u32,
        registration: Box<Registration>,
    },
    /// Check a pack of a shared log's events against its SHA-256 and the
    /// stream's samples, and commit its events `from..=to` after `after`;
    /// answered with [`Reply::PackApplied`] under `id`, then the views.
    ApplyPack {
        id: u32,
        range: (u64, u64),
        after: u64,
        sha256: String,
        bytes: Vec<u8>,
        samples: Vec<crate::share::packs::Packed>,
    },
    /// Make the pack of events `from..=to`; answered with
    /// [`Reply::PackMade`] under `id`.
    MakePack { id: u32, from: u64, to: u64 },
    /// The simulator's clock: this much wall time since the last tick.
    Tick { elapsed_ms: f64 },
}

struct State {
    inbox: VecDeque<Job>,
    busy: bool,
    driver: Option<Running>,
    /// The open log (also while the driver is out working): imports
    /// write to it.
    store: Option<Rc<IdbStore>>,
    /// Imports running, by id.
    imports: BTreeMap<u32, CancelFlag>,
    /// Imports waiting for the log to open (dropped if it does not).
    store_wanted: Vec<futures::channel::oneshot::Sender<Rc<IdbStore>>>,
    database: String,
    /// The log's engine lock, held while the loop runs here.
    release: Option<Held>,
    snapshot_every: u64,
    last_snapshot: u64,
    /// The simulator's clock runs.
    ticking: bool,
    /// Which clock it is (each start of the clock counts up).
    clock: u64,
    /// The shared log's sync, once connected: how it is woken.
    sync: Option<Wakes>,
    /// What the host's own work (the sync, a training) asked the engine,
    /// by the id its command carries.
    pending: BTreeMap<u32, oneshot::Sender<Reply>>,
    /// The id of the sync's next command (page ids stay below it).
    next_internal: u32,
    /// The user wants the team's loop in this browser.
    loop_wanted: bool,
    /// The models the log registered, and those whose bytes went, as of
    /// the last views (the sync trades their bytes with the server).
    models: (BTreeMap<String, ModelTrained>, BTreeSet<String>),
    /// The newest salvage of a damaged log, for the cut the user agrees to.
    salvaged: Option<Rc<Salvage>>,
    /// The highest head this engine has known (opened, folded, or heard
    /// from another tab).
    head: u64,
}

/// Where the host's own commands are numbered from (the page's stay
/// below).
const SYNC_IDS: u32 = 1 << 31;

/// The engine's side of this worker.
#[derive(Clone)]
pub struct Host {
    state: Rc<RefCell<State>>,
    scope: DedicatedWorkerGlobalScope,
    /// The training worker this worker starts when a model is wanted.
    trainer: Trainer,
    /// The checks' worker (the same module): backtests and the integrity
    /// check, stopped on their own without stopping a training.
    checker: Trainer,
}

impl Host {
    pub fn new(scope: DedicatedWorkerGlobalScope) -> Host {
        Host {
            state: Rc::new(RefCell::new(State {
                inbox: VecDeque::new(),
                busy: false,
                driver: None,
                store: None,
                imports: BTreeMap::new(),
                store_wanted: Vec::new(),
                database: String::new(),
                release: None,
                snapshot_every: SNAPSHOT_EVERY,
                last_snapshot: 0,
                ticking: false,
                clock: 0,
                sync: None,
                pending: BTreeMap::new(),
                next_internal: SYNC_IDS,
                loop_wanted: false,
                models: Default::default(),
                salvaged: None,
                head: 0,
            })),
            scope,
            trainer: Trainer::default(),
            checker: Trainer::default(),
        }
    }

    /// The training worker (started on its first request).
    pub(super) fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    /// The checks' worker (started on its first request).
    pub(super) fn checker(&self) -> &Trainer {
        &self.checker
    }

    /// The log's database, once open (awaits the open).
    pub(super) async fn database(&self) -> Result<String, EngineError> {
        self.store_when_open()
            .await
            .map_err(|_| EngineError::NotOpen)?;
        Ok(self.state.borrow().database.clone())
    }

    /// The user cancelled training: what is under way ends, and what was
    /// begun before registers nothing.
    pub(super) fn cancel_training(&self) {
        self.trainer.cancel();
    }

    pub(super) fn post(&self, reply: &Reply) {
        let message = js_sys::Object::new();
        let encoded = encode(reply);
        // For `make bench`: the bytes this engine has posted to its page,
        // in all and in views.
        let mut counters = vec!["retracePosted"];
        if matches!(reply, Reply::Views { .. }) {
            counters.push("retracePostedViews");
        }
        for name in counters {
            let key = JsValue::from_str(name);
            let so_far = js_sys::Reflect::get(&self.scope, &key)
                .ok()
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0);
            let _ =
                js_sys::Reflect::set(&self.scope, &key, &(so_far + encoded.len() as f64).into());
        }
        let bytes = js_sys::Uint8Array::from(encoded.as_slice());
        let _ = js_sys::Reflect::set(&message, &"engine".into(), &bytes);
        let _ = self.scope.post_message(&JsValue::from(message));
    }

    /// A command's bytes from the page.
    pub fn receive(&self, bytes: Vec<u8>) {
        match decode::<ToEngine>(&bytes) {
            Ok(ToEngine::Host(command)) => self.host(command),
            Ok(ToEngine::Engine(command)) => {
                if let Command::Simulate(sim) = &command {
                    self.clock(sim);
                }
                self.enqueue(command)
            }
            Err(e) => self.post(&Reply::Failed(e)),
        }
    }

    /// What the page asks of this host, done beside the engine's queue.
    fn host(&self, command: HostCommand) {
        match command {
            HostCommand::Connect(connect) => self.connect(*connect),
            HostCommand::LoopWanted(on) => self.state.borrow_mut().loop_wanted = on,
            HostCommand::Upload { from } => self.upload(from),
            HostCommand::ListModels => self.list_models(),
            HostCommand::Export { id, what } => self.export(id, what),
            HostCommand::Recover {
                id,
                export_file,
                at,
            } => self.recover(id, export_file, at),
            HostCommand::Resolve { stream, keep } => {
                if let Some(wakes) = &self.state.borrow().sync {
                    wake(wakes, Incoming::Choice(stream, keep));
                }
            }
            HostCommand::Train {
                id,
                spec,
                window,
                enter,
            } => self.train_by_hand(id, spec, window, enter),
            HostCommand::CancelTraining => self.cancel_training(),
            HostCommand::Backtest { id } => self.backtest(id),
            HostCommand::CheckLog { id } => self.check_log(id),
            HostCommand::CancelChecks => self.checker.cancel(),
            HostCommand::Travel(at) => self.queue(Job::Travel(at)),
            HostCommand::Snapshot => self.queue(Job::Snapshot),
            HostCommand::SnapshotEvery(n) => self.state.borrow_mut().snapshot_every = n,
        }
    }

    /// Start the shared log's sync over the log this engine opened (once:
    /// a second order is ignored).
    fn connect(&self, connect: crate::share::status::Connect) {
        let wakes = {
            let mut state = self.state.borrow_mut();
            if state.sync.is_some() {
                return;
            }
            let wakes = Wakes::default();
            state.sync = Some(wakes.clone());
            wakes
        };
        let store = self.store_when_open();
        let host = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            match store.await {
                Ok(store) => {
                    let replica: Rc<dyn Replica> = Rc::new(host.clone());
                    sync::run(store, connect, replica, wakes).await
                }
                Err(_) => host.post(&Reply::Sync(News::Status(
                    "not connected: the log did not open in this tab's engine (the page says why). Reload the page.".into(),
                ))),
            }
        });
    }

    /// Upload the own log in database `from` into this shared log's
    /// outbox, saying how it goes.
    fn upload(&self, from: String) {
        let store = self.store_when_open();
        let host = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let say = |text: String| host.post(&Reply::Sync(News::Upload(text)));
            let said = match store.await {
                Ok(replica) => match sync::upload(&replica, &from, &say).await {
                    Ok(done) => done,
                    Err(why) => format!("Not uploaded: {why}"),
                },
                Err(_) => "Not uploaded: the log did not open in this tab's engine".into(),
            };
            say(said);
        });
    }

    /// Tell the page which models this browser's registry holds.
    fn list_models(&self) {
        let store = self.store_when_open();
        let host = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let Ok(store) = store.await else { return };
            match store.list_models().await {
                Ok(list) => host.post(&Reply::StoredModels(list)),
                Err(e) => host.post(&Reply::Failed(e.to_string())),
            }
        });
    }

    /// Read the log for a download beside the queue, posting the text a
    /// page at a time (a damaged log can be read: that is what a salvage
    /// is for).
    fn export(&self, id: u32, what: Export) {
        let store = self.store_when_open();
        let host = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let Ok(store) = store.await else {
                return host.post(&Reply::Exported {
                    id,
                    outcome: Err(EngineError::NotOpen),
                });
            };
            let part = |text: String, so_far: u64| {
                host.post(&Reply::ExportPart { id, text, so_far });
            };
            let outcome = match what {
                Export::Log { from, to } => export::log(&store, from, to, &part).await,
                Export::Cases => export::cases(&store, &part).await,
                Export::Salvage => match export::salvage(&store, &part).await {
                    Ok((exported, salvage)) => {
                        host.state.borrow_mut().salvaged = Some(Rc::new(salvage));
                        Ok(exported)
                    }
                    Err(e) => Err(e),
                },
            };
            host.post(&Reply::Exported { id, outcome });
        });
    }

    /// Cut the log after the newest salvage's last good event.
    fn recover(&self, id: u32, export_file: String, at: i64) {
        let store = self.state.borrow().store.clone();
        let salvaged = self.state.borrow_mut().salvaged.take();
        let host = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let outcome = match (store, salvaged) {
                (Some(store), Some(salvage)) => {
                    export::cut(&store, &salvage, export_file, at).await
                }
                (None, _) => Err(EngineError::NotOpen),
                (_, None) => Err(EngineError::NothingToCut(
                    "the log was not read for a recovery first".into(),
                )),
            };
            if let Ok(last_seq) = &outcome {
                // The log now ends at the cut's own record.
                host.state.borrow_mut().head = *last_seq;
            }
            host.post(&Reply::Recovered { id, outcome });
        });
    }

    /// Another tab committed, and the log's head is `h`: catch up. A head
    /// below what this engine has known is late news of an older commit —
    /// or another tab recovered the log, and the log itself says which.
    fn remote_head(&self, h: u64) {
        let seen = self.state.borrow().head;
        if h >= seen {
            self.knows_head(h);
            self.enqueue(Command::Head(h));
            return;
        }
        let store = self.state.borrow().store.clone();
        let host = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let Some(store) = store else { return };
            if let Ok(actual) = crate::store::EventStore::head(&*store).await {
                if actual < seen {
                    host.state.borrow_mut().head = actual;
                    host.post(&Reply::LogCut { head: actual, seen });
                }
            }
        });
    }

    /// The log reached `h` (a commit here or in another tab): the page
    /// hears of a head it has not been told.
    fn knows_head(&self, h: u64) {
        if self.learn_head(h) {
            self.post(&Reply::Head(h));
        }
    }

    /// The log reached `h`: whether this host had not known it.
    fn learn_head(&self, h: u64) -> bool {
        let mut state = self.state.borrow_mut();
        let newer = h > state.head;
        state.head = state.head.max(h);
        newer
    }

    /// The open log, now or once it opens (an error if it does not).
    fn store_when_open(&self) -> LocalBoxFuture<'static, Result<Rc<IdbStore>, oneshot::Canceled>> {
        let store = self.state.borrow().store.clone();
        match store {
            Some(store) => futures::future::ready(Ok(store)).boxed_local(),
            None => {
                let (tx, rx) = oneshot::channel();
                self.state.borrow_mut().store_wanted.push(tx);
                rx.boxed_local()
            }
        }
    }

    /// A reply to the host's own work goes to it, a model the loop asks
    /// for is trained here; any other reply goes to the page.
    fn deliver(&self, reply: Reply) {
        if let Reply::Train {
            reason,
            cases,
            position,
            known_models,
        } = reply
        {
            let material = CasesAnswer {
                cases,
                position,
                known_models,
            };
            return self.train_for_loop(reason, material);
        }
        let waiting = reply
            .id()
            .filter(|id| *id >= SYNC_IDS)
            .and_then(|id| self.state.borrow_mut().pending.remove(&id));
        match waiting {
            Some(tx) => {
                let _ = tx.send(reply);
            }
            None => self.post(&reply),
        }
    }

    /// Queue the command `build` makes under an id of the host's own; its
    /// answer comes on the returned channel.
    fn ask(&self, build: impl FnOnce(u32) -> Job) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        let id = self.internal_id();
        self.state.borrow_mut().pending.insert(id, tx);
        self.queue(build(id));
        rx
    }

    /// The newest `window` closed cases (0: all) and where the log stands.
    pub(super) async fn closed_cases(&self, window: usize) -> Result<CasesAnswer, EngineError> {
        let reply = self
            .ask(|id| Job::Engine(Command::Cases { id, window }))
            .await
            .map_err(|_| EngineError::NotOpen)?;
        match ClosedCases::answer(reply) {
            Answer::Done(outcome) => outcome,
            Answer::Piece(_) => Err(EngineError::NotOpen),
        }
    }

    /// Register a trained model through the queue: the record as
    /// registered (its id given).
    pub(super) async fn register(
        &self,
        registration: Registration,
    ) -> Result<ModelTrained, EngineError> {
        let asked = self.ask(|id| Job::Register {
            id,
            registration: Box::new(registration),
        });
        match asked.await {
            Ok(Reply::Registered { outcome, .. }) => outcome.map(|(record, _)| *record),
            _ => Err(EngineError::Gone),
        }
    }

    /// A number for the sync's next command.
    fn internal_id(&self) -> u32 {
        let mut state = self.state.borrow_mut();
        let id = state.next_internal;
        state.next_internal = state.next_internal.checked_add(1).unwrap_or(SYNC_IDS);
        id
    }

    /// The simulator's clock: ticking while a run produces (started or
    /// resumed); paused or stopped, it stops, and ticks that still wait
    /// are dropped.
    fn clock(&self, sim: &SimCommand) {
        let on = match sim {
            SimCommand::Start { .. } | SimCommand::Resume => true,
            SimCommand::Stop | SimCommand::Pause => false,
            _ => return,
        };
        let was = std::mem::replace(&mut self.state.borrow_mut().ticking, on);
        if !on {
            // Stopped means now: ticks still waiting write nothing.
            self.state
                .borrow_mut()
                .inbox
                .retain(|job| !matches!(job, Job::Tick { .. }));
            return;
        }
        if was {
            return;
        }
        // One clock at a time: one stopped a moment ago may still sleep.
        let generation = {
            let mut state = self.state.borrow_mut();
            state.clock += 1;
            state.clock
        };
        let host = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let mut last = js_sys::Date::now();
            let current = || {
                let state = host.state.borrow();
                state.ticking && state.clock == generation
            };
            while current() {
                sleep(TICK_MS).await;
                if !current() {
                    break;
                }
                let now = js_sys::Date::now();
                host.queue(Job::Tick {
                    elapsed_ms: now - last,
                });
                last = now;
            }
        });
    }

    /// Queue a command for the engine.
    pub(super) fn enqueue(&self, command: Command) {
        self.queue(Job::Engine(command))
    }

    /// Queue a job; answer the queue unless that is under way.
    fn queue(&self, job: Job) {
        self.state.borrow_mut().inbox.push_back(job);
        if self.state.borrow().busy {
            return;
        }
        self.state.borrow_mut().busy = true;
        let host = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            while let Some(job) = host.next() {
                for reply in host.answer(job).await {
                    host.deliver(reply);
                }
                for reply in host.after().await {
                    host.deliver(reply);
                }
            }
            host.state.borrow_mut().busy = false;
        });
    }

    /// An import order's bytes (and its file) from the page. An import
    /// runs beside the engine's commands, not in their queue: it takes
    /// minutes, and a cancel must reach it at once.
    pub fn import(&self, bytes: Vec<u8>, file: Option<web_sys::Blob>) {
        let order = match decode::<ImportCommand>(&bytes) {
            Ok(ImportCommand::Cancel(id)) => {
                if let Some(flag) = self.state.borrow().imports.get(&id) {
                    flag.set(true);
                }
                return;
            }
            Ok(ImportCommand::Start(order)) => order,
            Err(e) => return self.post(&Reply::Failed(e)),
        };
        let id = order.id;
        let host = self.clone();
        let tell = move |news: ImportNews| {
            // The engine folds an import's commits as it does its own: the
            // page is told, not asked to pass the head back.
            // (The page hears the head in this news: not twice.)
            if let ImportNews::Committed(head) = news {
                host.learn_head(head);
                host.enqueue(Command::Head(head));
            }
            host.post(&Reply::Import { id, news })
        };
        let not_open = || {
            ImportNews::Failed {
            message: "The import could not start: the log did not open in this tab's engine (the page says why). Reload the page and try again.".into(),
            skippable: false,
        }
        };
        let Some(file) = file else {
            return tell(ImportNews::Failed {
                message: "The import could not start: no file came with the order.".into(),
                skippable: false,
            });
        };
        // An order sent right after the page started the engine waits
        // for the log to open.
        let store = self.store_when_open();
        let cancel = CancelFlag::default();
        self.state.borrow_mut().imports.insert(id, cancel.clone());
        let host = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let last = match store.await {
                Ok(store) => {
                    import_job::run(&store, &order, &file, cancel, Rc::new(tell.clone())).await
                }
                Err(_) => not_open(),
            };
            host.state.borrow_mut().imports.remove(&id);
            tell(last);
        });
    }

    fn next(&self) -> Option<Job> {
        let mut state = self.state.borrow_mut();
        let mut job = state.inbox.pop_front()?;
        // Only the newest of a run of head moves, or of slider moves, matters.
        let same = |a: &Job, b: &Job| {
            matches!(
                (a, b),
                (Job::Engine(Command::Head(_)), Job::Engine(Command::Head(_)))
                    | (Job::Travel(_), Job::Travel(_))
            )
        };
        while state.inbox.front().is_some_and(|next| same(&job, next)) {
            job = state.inbox.pop_front().expect("checked");
        }
        // Ticks that waited are one tick of all their time.
        while let (Job::Tick { elapsed_ms }, Some(Job::Tick { elapsed_ms: more })) =
            (&mut job, state.inbox.front())
        {
            *elapsed_ms += *more;
            state.inbox.pop_front();
        }
        Some(job)
    }

    /// Snapshots when due, then the views if the projections moved.
    async fn after(&self) -> Vec<Reply> {
        let Some(mut driver) = self.state.borrow_mut().driver.take() else {
            return Vec::new();
        };
        let seq = driver.engine().set().seq();
        self.knows_head(seq);
        let (every, last) = {
            let s = self.state.borrow();
            (s.snapshot_every, s.last_snapshot)
        };
        let mut replies = Vec::new();
        if every > 0 && seq >= last + every {
            replies.extend(self.snapshot(&driver).await);
        }
        let views = driver.views();
        if views.is_some() {
            // What the sync trades with the server.
            let f = &driver.engine().set().feedback.state;
            self.state.borrow_mut().models = (
                f.registered
                    .iter()
                    .map(|r| (r.record.id.clone(), r.record.clone()))
                    .collect(),
                f.released().map(str::to_owned).collect(),
            );
        }
        replies.extend(views);
        self.state.borrow_mut().driver = Some(driver);
        replies
    }

    async fn snapshot(&self, driver: &Running) -> Option<Reply> {
        let set = driver.engine().set();
        let seq = set.seq();
        if seq == 0 || seq == self.state.borrow().last_snapshot {
            return None;
        }
        let snaps = snapshot::snapshots_of(set);
        match snapshot::save_snapshots(&**driver.store(), snaps).await {
            Ok(()) => {
                self.state.borrow_mut().last_snapshot = seq;
                None
            }
            Err(e) => Some(Reply::Failed(e.to_string())),
        }
    }

    async fn open(&self, database: &str, shared: bool) -> Result<Vec<Reply>, String> {
        let started = js_sys::Date::now();
        // For `make bench`: this worker is a tab's engine.
        let _ = js_sys::Reflect::set(&self.scope, &"retraceEngine".into(), &true.into());
        let opened = async {
            let store = Rc::new(IdbStore::open(database).await.map_err(|e| e.to_string())?);
            // The engine folds what it commits right after: from memory.
            store.keep_commits(KEEP_COMMITS);
            if shared {
                store.use_outbox().await.map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(store)
        };
        let store = opened.await;
        // Imports waiting for the log go on now (or hear it did not open).
        let wanted = std::mem::take(&mut self.state.borrow_mut().store_wanted);
        if let Ok(store) = &store {
            let mut state = self.state.borrow_mut();
            state.store = Some(store.clone());
            state.database = database.to_owned();
            drop(state);
            for tx in wanted {
                let _ = tx.send(store.clone());
            }
        }
        let store = store?;
        // Snapshots past the log's head come from a history that is gone (a
        // tab still open on the log before a recovery cut it, saving as it
        // closed): never restored.
        let head = crate::store::EventStore::head(&*store)
            .await
            .map_err(|e| e.to_string())?;
        // Another tab's commits reach this engine, and the page hears of
        // them from it.
        self.state.borrow_mut().head = head;
        self.post(&Reply::Head(head));
        let host = self.clone();
        store.on_remote_commit(move |h| host.remote_head(h));
        let (set, restored) = snapshot::restore(&*store, head)
            .await
            .map_err(|e| e.to_string())?;
        let mut engine = Engine::new(set, Policy::default());
        engine.predicting = false;
        engine.set_shared(shared);
        let mut driver = Driver::new(store.clone(), store, engine);
        // A damaged record stops the fold where it lies: the views show
        // what comes before it, and the page says where it is.
        let folded = driver.open().await;
        let seq = driver.engine().set().seq();
        let line = boot_line(restored.from_seq, seq, js_sys::Date::now() - started);
        let mut state = self.state.borrow_mut();
        state.last_snapshot = restored.from_seq;
        if let Some(old) = state.driver.replace(driver) {
            old.store().close();
        }
        let mut replies = vec![Reply::Booted {
            seq,
            line,
            notes: restored.notes,
        }];
        replies.extend(folded.err().map(Reply::Failed));
        Ok(replies)
    }

    async fn answer(&self, job: Job) -> Vec<Reply> {
        let now = || js_sys::Date::now();
        match &job {
            Job::Engine(Command::Open { database, shared }) => {
                return self
                    .open(database, *shared)
                    .await
                    .unwrap_or_else(|e| vec![Reply::Failed(e)])
            }
            // One engine writes to a log at a time, across tabs: a tab
            // taking the loop over waits until the last engine has let
            // go (a closed tab's worker can outlive its page a moment).
            Job::Engine(Command::Start { .. }) if self.state.borrow().release.is_none() => {
                let name = format!("retrace-engine:{}", self.state.borrow().database);
                let release = take_in_line(&name).await;
                self.state.borrow_mut().release = release;
            }
            _ => {}
        }
        // The driver leaves the state while it works: nothing else may
        // touch it across the awaits, and jobs wait in the inbox.
        let Some(mut driver) = self.state.borrow_mut().driver.take() else {
            return not_open(job);
        };
        let replies = match job {
            Job::Snapshot => self.snapshot(&driver).await.into_iter().collect(),
            Job::Register { id, registration } => {
                match super::registry::register(driver.store(), *registration).await {
                    Ok((record, head)) => {
                        let mut replies = vec![Reply::Registered {
                            id,
                            outcome: Ok((Box::new(record), head)),
                        }];
                        replies.extend(driver.handle(Command::Head(head), &now).await);
                        replies
                    }
                    Err(why) => vec![Reply::Registered {
                        id,
                        outcome: Err(EngineError::Model(why)),
                    }],
                }
            }
            Job::ApplyPack {
                id,
                range,
                after,
                sha256,
                bytes,
                samples,
            } => {
                let applied =
                    super::packs::apply(driver.store(), range, after, (&sha256, &samples), bytes)
                        .await;
                let head = applied.as_ref().ok().copied();
                let mut replies = vec![Reply::PackApplied {
                    id,
                    outcome: applied,
                }];
                if let Some(head) = head {
                    replies.extend(driver.handle(Command::Head(head), &now).await);
                }
                replies
            }
            Job::MakePack { id, from, to } => vec![Reply::PackMade {
                id,
                outcome: super::packs::make(driver.store(), from, to).await,
            }],
            Job::Travel(Some(at)) => past(&driver, at).await,
            // Back to live: the page shows the live views it kept.
            Job::Travel(None) => Vec::new(),
            Job::Tick { elapsed_ms } => driver.tick(elapsed_ms, &now).await,
            Job::Engine(command) => {
                let stop = matches!(command, Command::Stop);
                let replies = driver.handle(command, &now).await;
                if stop {
                    if let Some(held) = self.state.borrow_mut().release.take() {
                        held.release();
                    }
                }
                replies
            }
        };
        self.state.borrow_mut().driver = Some(driver);
        replies
    }
}

/// What a job gets when the log did not open (the page was told why): only
/// a question deserves an answer.
fn not_open(job: Job) -> Vec<Reply> {
    let failed = || Reply::Failed("the log is not open in the engine".into());
    match job {
        // The asker waits for this answer: no cases.
        Job::Engine(Command::Cases { id, .. }) => vec![
            failed(),
            Reply::Cases {
                id,
                cases: Vec::new(),
                position: (0, 0),
                known_models: 0,
            },
        ],
        Job::Register { id, .. } => vec![Reply::Registered {
            id,
            outcome: Err(EngineError::NotOpen),
        }],
        Job::ApplyPack { id, .. } => vec![Reply::PackApplied {
            id,
            outcome: Err("the log is not open in the engine".into()),
        }],
        Job::MakePack { id, .. } => vec![Reply::PackMade {
            id,
            outcome: Err("the log is not open in the engine".into()),
        }],
        Job::Engine(Command::Enter { .. } | Command::Promote | Command::Append { .. }) => {
            vec![failed()]
        }
        _ => Vec::new(),
    }
}

/// The views as of `at`: the newest snapshot at or before it, then
/// the log up to it.
async fn past(driver: &Running, at: u64) -> Vec<Reply> {
    let store = &**driver.store();
    let rebuilt = async {
        let (mut set, _) = snapshot::restore_for_views(store, at)
            .await
            .map_err(|e| e.to_string())?;
        crate::projection::replay(&mut set, store, at, BATCH, |_| {})
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(set)
    };
    match rebuilt.await {
        Ok(set) => vec![Reply::Past {
            at,
            views: Box::new(Views::of(&set)),
        }],
        Err(e) => vec![Reply::Failed(e)],
    }
}

/// The sync's way to the engine: through the queue, like the page's
/// commands, its answers routed back to it ([`Host::deliver`]).
impl Replica for Host {
    fn head_moved(&self, head: u64) {
        self.knows_head(head);
        self.enqueue(Command::Head(head));
    }

    fn apply_pack(
        &self,
        (from, to): (u64, u64),
        after: u64,
        (sha256, samples): (String, Vec<crate::share::packs::Packed>),
        bytes: Vec<u8>,
    ) -> LocalBoxFuture<'static, Result<u64, String>> {
        let asked = self.ask(|id| Job::ApplyPack {
            id,
            range: (from, to),
            after,
            sha256,
            bytes,
            samples,
        });
        Box::pin(async move {
            match asked.await {
                Ok(Reply::PackApplied { outcome, .. }) => outcome,
                _ => Err("the log engine dropped the pack".into()),
            }
        })
    }

    fn make_pack(&self, from: u64, to: u64) -> LocalBoxFuture<'static, Result<PackMade, String>> {
        let asked = self.ask(|id| Job::MakePack { id, from, to });
        Box::pin(async move {
            match asked.await {
                Ok(Reply::PackMade { outcome, .. }) => outcome,
                _ => Err("the log engine dropped the pack".into()),
            }
        })
    }

    fn logged_models(&self) -> BTreeMap<String, ModelTrained> {
        self.state.borrow().models.0.clone()
    }

    fn released_models(&self) -> BTreeSet<String> {
        self.state.borrow().models.1.clone()
    }

    fn loop_wanted(&self) -> bool {
        self.state.borrow().loop_wanted
    }

    fn tell(&self, news: News) {
        self.post(&Reply::Sync(news));
    }
}
