//! The engine's message API: what the page asks of the engine in its
//! worker ([`Command`]) and what it hears back ([`Reply`]), both plain data
//! (postcard-encoded across the worker boundary), and the [`Driver`] that
//! answers them over any store — so the API is tested natively, on the
//! memory store, and the worker only moves bytes.
//!
//! Every tab runs one engine: it folds the log for the tab's views and
//! answers with what they show ([`Reply::Views`]: the newest rows, the
//! series, the counts — never the projections). The loop's side of it
//! predicts only while the tab drives the loop ([`Command::Start`]).

use super::simulation::{SimCommand, SimRun};
use super::stream_row::StreamRow;
use super::views::{Views, ViewsUpdate};
use super::{Engine, Step};
use crate::domain::model::ModelTrained;
use crate::ml::feedback_loop::{training_cases, verdict_event, Decision, Loaded, Policy};
use crate::ml::models::Model;
use crate::projection::training_set::Finished;
pub use crate::share::packs::PackMade;
use crate::store::EventStore;
use serde::{Deserialize, Serialize};
use std::future::Future;

/// What the page asks of the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Open the log in the browser's database `database`, restore the
    /// projections from its newest snapshot, fold the rest of the log, and
    /// follow it; answered with [`Reply::Booted`] and the views. (The
    /// worker opens IndexedDB and restores; the driver folds.)
    Open {
        /// The IndexedDB database.
        database: String,
        /// The database is a shared log's copy: the engine's appends wait
        /// in its outbox until the server has them.
        shared: bool,
    },
    /// Run the loop with `policy`: predict what is committed from now on,
    /// record alarms and verdicts, ask for models. (The worker first waits
    /// for the log's engine lock: one engine writes to a log at a time.)
    Start {
        /// The loop's policy.
        policy: Policy,
        /// On a shared log: the lease this browser holds. The engine
        /// announces its term (`LoopTaken`) and decides only within it.
        driver: Option<super::Driver>,
    },
    /// The loop's lease was renewed: it is surely held for `for_ms` more
    /// (past that the engine stops deciding, whatever the page does).
    Lease {
        /// Milliseconds from now.
        for_ms: f64,
    },
    /// Stop the loop; go on folding for the views.
    Stop,
    /// The log's head moved (a commit in this tab or another): catch up.
    Head(u64),
    /// A new policy.
    Policy(Policy),
    /// The model asked for ([`Reply::Train`]) was trained and registered
    /// (bytes in the registry, `ModelTrained` in the log): let it enter.
    Trained {
        /// What the log says of it.
        record: Box<ModelTrained>,
        /// The reason it was asked for.
        reason: String,
    },
    /// The model asked for could not be trained, or the user cancelled it.
    TrainingFailed,
    /// What a model trained by hand learns from: the newest `window`
    /// closed cases (0: all); answered with [`Reply::Cases`] under `id`.
    Cases {
        /// Said again in the answer.
        id: u32,
        /// Cases wanted (0: all).
        window: usize,
    },
    /// A model trained by hand enters the loop: champion if there is none,
    /// else challenger.
    Enter {
        /// What the log says of it.
        record: Box<ModelTrained>,
        /// Why it was trained.
        reason: String,
    },
    /// Append what the user wrote (`events` to `stream`, which must stand
    /// where `expected` says), then fold it; answered with
    /// [`Reply::Appended`], or [`Reply::Failed`] saying why nothing was.
    Append {
        /// The stream.
        stream: String,
        /// Where it must stand.
        expected: crate::store::ExpectedVersion,
        /// What to append.
        events: Vec<crate::log::NewEvent>,
    },
    /// Promote the challenger now, whatever the duel says.
    Promote,
    /// What the user does with the simulator, which runs in the engine
    /// ([`super::simulation`]).
    Simulate(SimCommand),
}

/// What the page sends the engine's worker: a command for the engine,
/// answered in order by its driver, or one for the worker's host, done
/// beside that queue — each side owns every variant it is given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToEngine {
    /// For the engine ([`Driver::handle`]).
    Engine(Command),
    /// For its host (the shared log's sync, reads of the store).
    Host(HostCommand),
}

impl From<Command> for ToEngine {
    fn from(command: Command) -> ToEngine {
        ToEngine::Engine(command)
    }
}

impl From<HostCommand> for ToEngine {
    fn from(command: HostCommand) -> ToEngine {
        ToEngine::Host(command)
    }
}

/// What the page asks of the worker's host: the shared log's sync, and
/// reads and cuts of the store that run beside the engine's queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HostCommand {
    /// Follow and write the shared log this engine's log replicates, as
    /// `Connect` says; the sync's news comes as [`Reply::Sync`]. The host
    /// runs the sync beside the queue (the driver has nothing to do).
    Connect(Box<crate::share::status::Connect>),
    /// Whether the user wants the team's loop in this browser (the sync
    /// asks the server for the lease while this is on).
    LoopWanted(bool),
    /// Put every event of the log in database `from` (this browser's own)
    /// into the outbox of the shared log this engine copies, as one unit,
    /// if that log is empty; the sync says how it went
    /// ([`crate::share::status::News::Upload`]).
    Upload {
        /// The database to read.
        from: String,
    },
    /// Say which models this browser's registry holds: answered with
    /// [`Reply::StoredModels`] (the host reads its store).
    ListModels,
    /// The user's answer to a conflict on `stream`: keep this browser's
    /// events (sent again after the others') or drop them.
    Resolve {
        /// The stream in conflict.
        stream: String,
        /// Keep (true) or drop.
        keep: bool,
    },
    /// Read the log for a file the page offers as a download; the text
    /// comes as [`Reply::ExportPart`]s, then [`Reply::Exported`], under
    /// `id`. (The host reads its store beside the queue.)
    Export {
        /// Said again in every answer.
        id: u32,
        /// What to read.
        what: Export,
    },
    /// Cut the log after the last good event that the newest
    /// [`Export::Salvage`] found, and record the cut (`LogRecovered`,
    /// naming `export_file`, at domain time `at`); answered with
    /// [`Reply::Recovered`] under `id`. Refused without a salvage that
    /// found a problem.
    Recover {
        /// Said again in the answer.
        id: u32,
        /// The file the salvage's events were offered as.
        export_file: String,
        /// When the user agreed (ms since the epoch).
        at: i64,
    },
    /// Train a model by hand on the newest `window` closed cases (0: all)
    /// in the training worker this host starts, register it, and, if
    /// `enter` gives a reason, let it enter the loop (champion if there is
    /// none, else challenger). How it goes comes as [`Reply::Progress`],
    /// the end as [`Reply::TrainedByHand`], under `id`. The cases and the
    /// model's bytes stay in the workers.
    Train {
        /// Said again in every answer.
        id: u32,
        /// The algorithm; None: chosen on validation.
        spec: Option<crate::ml::models::Spec>,
        /// The newest closed cases to learn from (0: all).
        window: usize,
        /// Why it enters the loop; None: it is only registered.
        enter: Option<String>,
    },
    /// Stop the training under way (the loop's or one by hand): the
    /// training worker is stopped, nothing of its model is registered.
    CancelTraining,
    /// Run the backtest protocol on the closed cases the training set
    /// keeps, in a worker of its own this host starts (the checks' worker);
    /// how it goes comes as [`Reply::Progress`], the report as
    /// [`Reply::Backtested`], under `id`. The cases stay in the workers.
    Backtest {
        /// Said again in every answer.
        id: u32,
    },
    /// Check the whole log (the integrity check) in the checks' worker,
    /// which reads the log's database itself; how far it got comes as
    /// [`Reply::Progress`], the report as [`Reply::Checked`], under `id`.
    CheckLog {
        /// Said again in every answer.
        id: u32,
    },
    /// Stop the backtest or integrity check under way: the checks' worker
    /// is stopped; what it was doing answers [`EngineError::Cancelled`].
    CancelChecks,
    /// Show the views as of `Some(seq)` (time travel), answered with
    /// [`Reply::Past`]; `None`: back to live. In turn with the engine's
    /// commands (the host rebuilds the past from its stores).
    Travel(Option<u64>),
    /// Write snapshots of the projections now, in turn with the engine's
    /// commands.
    Snapshot,
    /// Write snapshots every this many events.
    SnapshotEvery(u64),
}

/// What [`HostCommand::Export`] reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Export {
    /// Events `from..=to` as CloudEvents, a line each.
    Log {
        /// The first event's sequence.
        from: u64,
        /// The last event's sequence.
        to: u64,
    },
    /// Every activity as a row of the cases CSV.
    Cases,
    /// Every record that still decodes, as CloudEvents lines, and where
    /// the log stops keeping its rules ([`Exported::salvage`]).
    Salvage,
}

/// How an export ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exported {
    /// Events (or, for the cases CSV, activities) written.
    pub count: u64,
    /// For [`Export::Salvage`]: what reading every record found.
    pub salvage: Option<Salvaged>,
}

/// What reading every record of the log found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Salvaged {
    /// The head when the log was read.
    pub head: u64,
    /// The last event that decodes and keeps the log's rules.
    pub last_good: u64,
    /// What is wrong right after it (None: nothing).
    pub problem: Option<String>,
    /// Events after the last good one that still decode.
    pub readable_after: u64,
}

/// A trained model on its way into the registry and the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// Its record (the id is given when it is registered).
    pub record: Box<ModelTrained>,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Holdout rows and what the training worker predicted for them.
    pub sample: Vec<(Vec<f64>, f64)>,
    /// Domain time of the `ModelTrained` event.
    pub at: i64,
    /// The highest `model-N` the log knows (ids go past it).
    pub known_models: u64,
}

/// What the engine tells the page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// The log is open and folded to `seq`: "restored from snapshot at
    /// seq N, replayed M events in X ms", and snapshots ignored, with why.
    Booted {
        /// Where the projections stand.
        seq: u64,
        /// How the projections were rebuilt, in words.
        line: String,
        /// Snapshots ignored, and why.
        notes: Vec<String>,
    },
    /// The log's head as this tab's engine knows it: once it opened, and
    /// whenever another tab commits.
    Head(u64),
    /// The log's head fell below what this tab had seen: another tab
    /// recovered the log (cut it after its last good event), and the views
    /// hold events that are gone.
    LogCut {
        /// The head now.
        head: u64,
        /// The highest head this tab had seen.
        seen: u64,
    },
    /// What the views show now (sent whenever the projections moved).
    Views {
        /// What moved in the panels since the engine's last `Views`.
        views: Box<ViewsUpdate>,
        /// Events newer than the last `Views` carried (at most the newest
        /// [`super::stream_row::STREAM_ROWS`]), newest first.
        stream: Vec<StreamRow>,
        /// `stream` is the whole stream, not an addition to it.
        whole_stream: bool,
    },
    /// What the views showed at `at` ([`HostCommand::Travel`]).
    Past {
        /// The position asked for.
        at: u64,
        /// The views then.
        views: Box<Views>,
    },
    /// The loop runs; the projections stood at `seq` when it started.
    Started {
        /// Where the projections stand.
        seq: u64,
    },
    /// Caught up to `seq` after a [`Command::Head`].
    CaughtUp {
        /// Where the projections stand.
        seq: u64,
        /// Predictions recorded on the way.
        predictions: usize,
        /// The newest position the engine appended, if it did.
        appended_to: Option<u64>,
        /// Milliseconds from the command to the engine's last commit (what
        /// the page calls prediction latency; without a commit, to the end).
        ms: f64,
    },
    /// Train a model on these cases and answer [`Command::Trained`] or
    /// [`Command::TrainingFailed`]. The host trains it in its training
    /// worker; the page hears [`Reply::LoopTraining`] instead.
    Train {
        /// `first model`, `drift` or `schedule`.
        reason: String,
        /// The closed cases, in log order.
        cases: Vec<Finished>,
        /// The position and domain time it is trained up to.
        position: (u64, i64),
        /// The highest `model-N` the log knows.
        known_models: u64,
    },
    /// The answer to [`Command::Cases`].
    Cases {
        /// The command's id.
        id: u32,
        /// The closed cases, in log order.
        cases: Vec<Finished>,
        /// The position and domain time they reach.
        position: (u64, i64),
        /// The highest `model-N` the log knows.
        known_models: u64,
    },
    /// Something the user should read (a model that cannot predict here).
    Note(String),
    /// A command failed; the engine goes on with the next.
    Failed(String),
    /// What [`Command::Append`] wrote is in the log, up to `head` (on a
    /// shared log: in the outbox, and `head` is where the log stands).
    Appended {
        /// The log's head after it.
        head: u64,
    },
    /// What the shared log's sync says.
    Sync(crate::share::status::News),
    /// The models this browser's registry holds, by id: the record, or why
    /// it cannot be read (a format this build does not know).
    StoredModels(Vec<(String, Result<ModelTrained, String>)>),
    /// How the registration `id` went: the record as registered (its id
    /// given), or why it was not.
    Registered {
        /// The registration's id.
        id: u32,
        /// The record and the log's head after it, or why not.
        outcome: Result<(Box<ModelTrained>, u64), EngineError>,
    },
    /// The pack asked for was committed: the log's head after it, or why not.
    PackApplied {
        /// The command's id.
        id: u32,
        /// The head after it, or why not.
        outcome: Result<u64, String>,
    },
    /// The pack asked for, or why not.
    PackMade {
        /// The command's id.
        id: u32,
        /// The pack.
        outcome: Result<PackMade, String>,
    },
    /// The next piece of the export `id`'s text.
    ExportPart {
        /// The export's id.
        id: u32,
        /// The text, whole lines.
        text: String,
        /// Items written so far.
        so_far: u64,
    },
    /// The export `id` is whole, or why it stopped.
    Exported {
        /// The export's id.
        id: u32,
        /// How it ended.
        outcome: Result<Exported, EngineError>,
    },
    /// The cut asked for under `id` is made: the position of its
    /// `LogRecovered`, or why nothing was cut.
    Recovered {
        /// The command's id.
        id: u32,
        /// The head after it, or why not.
        outcome: Result<u64, EngineError>,
    },
    /// The simulator committed: `produced` source events so far in this
    /// run, the log's head after the commit.
    Simulated {
        /// Source events the run produced.
        produced: u64,
        /// The log's head.
        head: u64,
    },
    /// The log refused the simulator's commit (a full disk, a read-only
    /// log): the run is paused; why, in words.
    SimulatorHalted(String),
    /// How the import `id` goes ([`super::imports`]: imports are ordered
    /// beside the commands, with their file).
    Import {
        /// The order's id.
        id: u32,
        /// What happened.
        news: super::imports::ImportNews,
    },
    /// How the long request `id` goes (a training by hand, a backtest, an
    /// integrity check), in words.
    Progress {
        /// The command's id.
        id: u32,
        /// What the worker doing it says.
        message: String,
    },
    /// The training by hand `id` ended: the record as registered and a line
    /// for the page, or why not.
    TrainedByHand {
        /// The command's id.
        id: u32,
        /// The record and what to say of it, or why not.
        outcome: Result<(Box<ModelTrained>, String), EngineError>,
    },
    /// The backtest `id` ended: its report, or why not.
    Backtested {
        /// The command's id.
        id: u32,
        /// The report, or why there is none.
        outcome: Result<Box<crate::ml::backtest::Report>, EngineError>,
    },
    /// The integrity check `id` ended: what it found, or why it did not run.
    Checked {
        /// The command's id.
        id: u32,
        /// What reading every record found, or why it could not.
        outcome: Result<crate::store::verify::LogReport, EngineError>,
    },
    /// The loop's own training (a model the engine asked for): whether one
    /// is under way, and what to say of it.
    LoopTraining {
        /// A model is being trained for the loop.
        busy: bool,
        /// In words.
        message: String,
    },
}

impl Reply {
    /// The id of the request this answers (or is a piece of), if it
    /// answers one.
    pub fn id(&self) -> Option<u32> {
        match self {
            Reply::Cases { id, .. }
            | Reply::Registered { id, .. }
            | Reply::PackApplied { id, .. }
            | Reply::PackMade { id, .. }
            | Reply::Import { id, .. }
            | Reply::ExportPart { id, .. }
            | Reply::Exported { id, .. }
            | Reply::Recovered { id, .. }
            | Reply::Progress { id, .. }
            | Reply::TrainedByHand { id, .. }
            | Reply::Backtested { id, .. }
            | Reply::Checked { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// Whether this is the last reply to the request it answers: a piece
    /// (an export's text, how a long request goes, an import's progress) is
    /// followed by more.
    pub fn ends_request(&self) -> bool {
        match self {
            Reply::ExportPart { .. } | Reply::Progress { .. } => false,
            Reply::Import { news, .. } => news.ends(),
            _ => true,
        }
    }
}

/// What went wrong with a request, in words the user can act on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EngineError {
    /// The log did not open in this tab's engine (the page said why when
    /// it failed).
    NotOpen,
    /// The engine's worker went away before it answered: the log has what
    /// was committed; try again.
    Gone,
    /// The log could not be read or written: what the store said.
    Store(String),
    /// A trained model could not be registered: why.
    Model(String),
    /// There is nothing to cut: why (no salvage ran, or it found no
    /// problem).
    NothingToCut(String),
    /// No model was trained: why (too few closed cases, the training
    /// worker failed).
    Training(String),
    /// A backtest or integrity check did not run to its end: why (too
    /// few closed cases, the checks' worker failed).
    Check(String),
    /// The user cancelled the training (nothing of it was registered) or
    /// the check.
    Cancelled,
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::NotOpen => write!(
                f,
                "the log is not open in this tab's engine (see the message above; reload to try again)"
            ),
            EngineError::Gone => write!(
                f,
                "the log engine stopped before it answered; the log keeps what was committed — try again"
            ),
            EngineError::Store(why) => write!(f, "{why}"),
            EngineError::Model(why) => write!(f, "the model was not registered: {why}"),
            EngineError::NothingToCut(why) => write!(f, "nothing was cut: {why}"),
            EngineError::Training(why) | EngineError::Check(why) => write!(f, "{why}"),
            EngineError::Cancelled => write!(f, "training cancelled"),
        }
    }
}

/// The boot line: how the projections were rebuilt.
pub fn boot_line(restored_from: u64, seq: u64, ms: f64) -> String {
    let replayed = seq.saturating_sub(restored_from);
    if restored_from > 0 {
        format!("restored from snapshot at seq {restored_from}, replayed {replayed} events in {ms:.0} ms")
    } else {
        format!("no snapshot: replayed {replayed} events in {ms:.0} ms")
    }
}

/// Where the engine finds a registered model's bytes and record.
pub trait ModelSource {
    /// The model `id`, ready to predict, or why not.
    fn load(&self, id: &str) -> impl Future<Output = Result<Loaded, String>>;
    /// Delete the bytes of the models `ids` (their records stay), as the
    /// log's `ModelBytesReleased` say; ids without bytes here are no error.
    fn release(&self, ids: &[String]) -> impl Future<Output = Result<(), String>>;
}

/// A registered model from its record and bytes.
pub fn loaded(record: &ModelTrained, bytes: &[u8]) -> Result<Loaded, String> {
    Ok(Loaded {
        id: record.id.clone(),
        model: Model::from_bytes(bytes).map_err(|e| e.to_string())?,
        median_h: record.median_h,
    })
}

/// Models kept in memory by id (record and bytes): the native hosts'.
impl ModelSource
    for std::cell::RefCell<std::collections::BTreeMap<String, (ModelTrained, Vec<u8>)>>
{
    async fn load(&self, id: &str) -> Result<Loaded, String> {
        let found = self.borrow().get(id).cloned();
        let (record, bytes) = found.ok_or("it is not in the registry")?;
        if bytes.is_empty() {
            return Err("its bytes were released".into());
        }
        loaded(&record, &bytes)
    }

    async fn release(&self, ids: &[String]) -> Result<(), String> {
        for id in ids {
            if let Some((_, bytes)) = self.borrow_mut().get_mut(id) {
                *bytes = Vec::new();
            }
        }
        Ok(())
    }
}

/// The browser's registry: the record and the bytes the page stored.
#[cfg(target_arch = "wasm32")]
impl ModelSource for crate::store::idb::IdbStore {
    async fn load(&self, id: &str) -> Result<Loaded, String> {
        let record = self
            .list_models()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|(k, _)| k == id)
            .ok_or("it is not in this browser's registry (was the log imported from elsewhere?)")?
            .1?;
        let bytes = self
            .model_bytes(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("its bytes are missing from the registry")?;
        loaded(&record, &bytes)
    }

    async fn release(&self, ids: &[String]) -> Result<(), String> {
        self.delete_model_bytes(ids)
            .await
            .map_err(|e| e.to_string())
    }
}

impl<M: ModelSource> ModelSource for std::rc::Rc<M> {
    async fn load(&self, id: &str) -> Result<Loaded, String> {
        (**self).load(id).await
    }

    async fn release(&self, ids: &[String]) -> Result<(), String> {
        (**self).release(ids).await
    }
}

/// The engine answering commands over a store, with models from `M`.
pub struct Driver<S, M> {
    store: S,
    models: M,
    engine: Engine,
    /// Events per read.
    pub batch: usize,
    /// The position of the views last handed out.
    shown: Option<u64>,
    /// The simulator's run, if one was started.
    sim: Option<SimRun>,
    /// Models whose bytes were deleted here since the driver started.
    released_here: std::collections::BTreeSet<String>,
    /// The views last handed out, and the newest stream row with them.
    sent: Option<(Views, Option<u64>)>,
}

impl<S: EventStore, M: ModelSource> Driver<S, M> {
    /// Drive `engine` over `store`.
    pub fn new(store: S, models: M, engine: Engine) -> Self {
        Driver {
            store,
            models,
            engine,
            batch: 4096,
            shown: None,
            sim: None,
            released_here: Default::default(),
            sent: None,
        }
    }

    /// Fold the log for the views (the loop off) and fill the stream with
    /// its newest events. A record that cannot be read stops the fold
    /// there: the projections stand at the last event before it (the views
    /// show that much), and the error says where.
    pub async fn open(&mut self) -> Result<u64, String> {
        self.engine.predicting = false;
        let folded = self.engine.step(&self.store, self.batch).await;
        let filled = self.engine.fill_stream(&self.store).await;
        folded.map_err(|e| e.to_string())?;
        filled.map_err(|e| e.to_string())?;
        Ok(self.engine.set().seq())
    }

    /// What moved in the views, if the projections moved since they were
    /// last handed out: the panels that changed and the newer events.
    pub fn views(&mut self) -> Option<Reply> {
        let seq = self.engine.set().seq();
        if self.shown == Some(seq) {
            return None;
        }
        self.shown = Some(seq);
        let now = Views::of(self.engine.set());
        let update = now.since(self.sent.as_ref().map(|(v, _)| v));
        let rows = self.engine.stream();
        let top = rows.front().map(|r| r.seq);
        let (stream, whole_stream) = match self.sent.as_ref().and_then(|(_, top)| *top) {
            // Only what came after the newest row sent (a stream that went
            // back — a recovery cut the log — is sent whole).
            Some(sent) if top.is_some_and(|t| t >= sent) => (
                rows.iter().take_while(|r| r.seq > sent).cloned().collect(),
                false,
            ),
            _ => (rows.iter().cloned().collect(), true),
        };
        self.sent = Some((now, top));
        Some(Reply::Views {
            views: Box::new(update),
            stream,
            whole_stream,
        })
    }

    /// Everything the views show now.
    pub fn views_now(&self) -> Views {
        Views::of(self.engine.set())
    }

    /// The engine, to change.
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Answer one command; `now` is a clock in milliseconds.
    pub async fn handle(&mut self, command: Command, now: &dyn Fn() -> f64) -> Vec<Reply> {
        match command {
            // What the log holds already was predicted by whoever ran the
            // loop then (or by nobody): fold it, predict from here on.
            // Predicting it now would record predictions twice, or late.
            Command::Start { policy, driver } => {
                self.engine.set_policy(policy);
                self.engine.drive(driver);
                // A model that could not be loaded before may be here now.
                self.engine.forget_unloadable();
                self.engine.predicting = false;
                let mut replies = self.catch_up(now).await;
                self.engine.predicting = true;
                let seq = self.engine.set().seq();
                replies.retain(|r| !matches!(r, Reply::CaughtUp { .. }));
                replies.push(Reply::Started { seq });
                replies
            }
            Command::Lease { for_ms } => {
                self.engine.lease_until(now() + for_ms);
                self.catch_up(now).await
            }
            Command::Stop => {
                self.engine.predicting = false;
                self.engine.drive(None);
                self.engine.training_failed();
                Vec::new()
            }
            Command::Open { .. } => match self.open().await {
                Ok(_) => Vec::new(),
                Err(e) => vec![Reply::Failed(e)],
            },
            Command::Cases { id, window } => {
                let set = self.engine.set();
                vec![Reply::Cases {
                    id,
                    cases: training_cases(set, window, "manual"),
                    position: (set.seq(), crate::ml::feedback_loop::log_time(set)),
                    known_models: set.feedback.state.highest_model_number(),
                }]
            }
            Command::Enter { .. } | Command::Promote if !self.engine.may_decide() => {
                vec![Reply::Note(
                    "this browser does not drive the team's loop now: the browser that does decides".into(),
                )]
            }
            Command::Append {
                stream,
                expected,
                events,
            } => match self.store.append(&stream, expected, events).await {
                Ok(committed) => {
                    let mut replies = vec![Reply::Appended {
                        head: committed.last_seq,
                    }];
                    replies.extend(self.catch_up(now).await);
                    replies
                }
                Err(e) => vec![Reply::Failed(e.to_string())],
            },
            Command::Enter { record, reason } => {
                match self.engine.enter(&self.store, &record, &reason, None).await {
                    Ok(_) => self.catch_up(now).await,
                    Err(e) => vec![Reply::Failed(e.to_string())],
                }
            }
            Command::Promote => {
                let f = &self.engine.set().feedback.state;
                let mae = f.duel_mae();
                let decision = f.challenger.as_ref().map(|c| {
                    Decision::Promote(crate::domain::events::ModelPromoted {
                        model: c.clone(),
                        replaced: f.champion.clone(),
                        reason: "manual".into(),
                        champion_mae_d: mae.map(|m| m.0),
                        challenger_mae_d: mae.map(|m| m.1),
                        outcomes: mae.map_or(0, |m| m.2 as u64),
                        term: None,
                    })
                });
                let stamp = self.engine.current_stamp().unwrap_or_default();
                let Some(append) =
                    decision.and_then(|d| verdict_event(self.engine.set(), &d, &stamp))
                else {
                    return vec![Reply::Note("there is no challenger to promote".into())];
                };
                match self.store.append_batch(vec![append]).await {
                    Ok(_) => self.catch_up(now).await,
                    Err(e) => vec![Reply::Failed(e.to_string())],
                }
            }
            Command::Head(_) => self.catch_up(now).await,
            Command::Simulate(command) => {
                SimRun::apply(&mut self.sim, command);
                Vec::new()
            }
            Command::Policy(policy) => {
                self.engine.set_policy(policy);
                self.catch_up(now).await
            }
            // The loop stopped while the model trained: it stays registered.
            Command::Trained { .. } if !self.engine.predicting => Vec::new(),
            Command::Trained { record, reason } => {
                let model = match self.models.load(&record.id).await {
                    Ok(model) => Some(model),
                    Err(why) => {
                        self.engine.training_failed();
                        return vec![Reply::Failed(format!(
                            "{} was trained but cannot be loaded: {why}",
                            record.id
                        ))];
                    }
                };
                match self
                    .engine
                    .enter(&self.store, &record, &reason, model)
                    .await
                {
                    Ok(_) => self.catch_up(now).await,
                    Err(e) => vec![Reply::Failed(e.to_string())],
                }
            }
            Command::TrainingFailed => {
                self.engine.training_failed();
                self.catch_up(now).await
            }
        }
    }

    /// The worker's clock: `elapsed_ms` since the last tick. A running
    /// simulator commits what is due, and the engine folds it (and
    /// predicts, while the loop runs) at once.
    pub async fn tick(&mut self, elapsed_ms: f64, now: &dyn Fn() -> f64) -> Vec<Reply> {
        let Some(run) = self.sim.as_mut() else {
            return Vec::new();
        };
        let batch = run.tick(elapsed_ms);
        if batch.is_empty() {
            return Vec::new();
        }
        let produced = run.produced();
        match self.store.append_batch(batch).await {
            Ok(c) => {
                let mut replies = vec![Reply::Simulated {
                    produced,
                    head: c.last_seq,
                }];
                replies.extend(self.catch_up(now).await);
                replies
            }
            Err(e) => {
                if let Some(run) = self.sim.as_mut() {
                    run.pause();
                }
                vec![Reply::SimulatorHalted(format!(
                    "The simulator paused: the log refused its events ({e})."
                ))]
            }
        }
    }

    /// Delete here the bytes of every model the log let go (whoever
    /// decided it: this engine, or a shared log's driver). None, or why
    /// they could not be deleted (tried again after the next fold).
    async fn release_bytes(&mut self) -> Option<String> {
        let due: Vec<String> = self
            .engine
            .set()
            .feedback
            .state
            .released()
            .filter(|id| !self.released_here.contains(*id))
            .map(str::to_owned)
            .collect();
        if due.is_empty() {
            return None;
        }
        match self.models.release(&due).await {
            Ok(()) => {
                self.released_here.extend(due);
                None
            }
            Err(why) => Some(format!(
                "the released models' bytes are still stored: {why}"
            )),
        }
    }

    /// Step until everything is folded, the engine's own appends included.
    async fn catch_up(&mut self, now: &dyn Fn() -> f64) -> Vec<Reply> {
        let started = now();
        let mut replies = Vec::new();
        let (mut predictions, mut appended_to, mut appended_at) = (0, None, None);
        loop {
            // Models are loaded only to predict (off, their bytes may not
            // even be here yet: a shared log's arrive from the server).
            let wanted = if self.engine.predicting {
                self.engine.wanted_models()
            } else {
                Vec::new()
            };
            for id in wanted {
                // A model is trusted only through the log: one that a
                // promotion names but no `ModelTrained` registered (bytes
                // somebody put on a shared log's server, say) never predicts.
                let registered = self
                    .engine
                    .set()
                    .feedback
                    .state
                    .registered
                    .iter()
                    .any(|r| r.record.id == id);
                if !registered {
                    self.engine.cannot_load(&id);
                    replies.push(Reply::Note(format!(
                        "{id} is named champion or challenger, but the log never registered it (no ModelTrained): it is not used"
                    )));
                    continue;
                }
                match self.models.load(&id).await {
                    Ok(model) => self.engine.add_model(model),
                    Err(why) => {
                        self.engine.cannot_load(&id);
                        replies.push(Reply::Note(format!("{id} cannot predict here: {why}")));
                    }
                }
            }
            self.engine.set_clock(now());
            let step: Step = match self.engine.step(&self.store, self.batch).await {
                Ok(step) => step,
                Err(e) => {
                    replies.push(Reply::Failed(e.to_string()));
                    return replies;
                }
            };
            predictions += step.predictions;
            if step.appended_to.is_some() {
                appended_at = Some(now());
            }
            appended_to = step.appended_to.or(appended_to);
            if let Some(request) = step.train {
                replies.push(Reply::Train {
                    reason: request.reason.to_owned(),
                    cases: request.cases,
                    position: request.position,
                    known_models: request.known_models,
                });
            }
            if step.appended_to.is_none() {
                if let Some(why) = self.release_bytes().await {
                    replies.push(Reply::Note(why));
                }
                replies.push(Reply::CaughtUp {
                    seq: step.seq,
                    predictions,
                    appended_to,
                    ms: appended_at.unwrap_or_else(now) - started,
                });
                return replies;
            }
        }
    }
}
