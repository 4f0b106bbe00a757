//! The sync between a shared log's server and a replica of it: one context
//! per browser runs it. It downloads the log, follows it live in the
//! server's order, and sends the outbox — the events written here — each
//! with the server sequence its stream is expected at, so that two browsers
//! writing to one case conflict instead of interleaving. A lost connection
//! is retried; what was written meanwhile waits in the outbox and goes out
//! on reconnecting.
//!
//! It is pure in this project's sense: every way out goes through a trait.
//! The store is a [`ReplicaStore`] (IndexedDB in the app, memory in native
//! tests), the server is reached through a [`Dial`] (the browser's
//! WebSocket, a TCP stream in tests), time and randomness through an
//! [`Env`], and the engine through [`Replica`], which also hears what the
//! sync says ([`News`]). The browser's edge (`host::sync`) only wires these.

mod packs_io;
mod team;

use self::team::Team;
use super::client::Event;
use super::consumer::{self, delivery, Delivery, SharedEvent, Units};
use super::env::{Env, Pace};
use super::gate::{self, Admitted, MessageRefused};
use super::jetstream::{
    self, answer, publish_headers, GetAnswer, GetRequest, PubAck, StreamConfig, StreamInfo,
    STREAM_NOT_FOUND, WRONG_LAST_SEQUENCE,
};
use super::lease::Standing;
use super::outbox::{Action, Conflict, Outbox, Seen};
use super::packs;
use super::packs::PackMade;
use super::seal::{self, Keyring, Seal};
use super::socket::{not_permitted, refused, Socket, Wake, Wakes, Wire};
use super::status::{Connect, Counts, Link, News, Settings};
use crate::domain::model::ModelTrained;
use crate::store::outbox::record_keys;
use crate::store::replica::{ModelStore, ReplicaStore};
use crate::store::{by_stream, EventStore, StoreError};
use futures::future::LocalBoxFuture;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

/// What the sync needs of the engine beside the log's store, and where it
/// reports. The page implements it over its engine's channel today; the
/// engine's worker will over the engine itself.
pub trait Replica {
    /// Events up to `head` are in the log (the sync committed them).
    fn head_moved(&self, head: u64);
    /// Check a pack from the server and commit its events after `after`:
    /// the log's head after it, or why not (nothing of it is then in). The
    /// work is under way once this returns; the future only hears its end.
    fn apply_pack(
        &self,
        range: (u64, u64),
        after: u64,
        digest: (String, Vec<crate::share::packs::Packed>),
        bytes: Vec<u8>,
    ) -> LocalBoxFuture<'static, Result<u64, String>>;
    /// A pack of the log's events `from..=to`, to put on the server.
    fn make_pack(&self, from: u64, to: u64) -> LocalBoxFuture<'static, Result<PackMade, String>>;
    /// The models the log registered.
    fn logged_models(&self) -> BTreeMap<String, ModelTrained>;
    /// The models whose bytes the log let go.
    fn released_models(&self) -> BTreeSet<String>;
    /// The user wants the feedback loop to run in this browser.
    fn loop_wanted(&self) -> bool;
    /// What the sync says.
    fn tell(&self, news: News);
}

/// Events appended locally per commit, at most.
const COMMIT_EVENTS: usize = 8_000;

/// Outbox keys the server stored, settled together while a push goes on.
const SETTLE_EVENTS: usize = 10_000;

/// While the log is read, the status line is redrawn at most this often.
const SAY_EVERY_MS: f64 = 100.0;

/// A commit under way: the next batch is read from the socket meanwhile.
struct Flight {
    /// Its events.
    n: u64,
    /// The log's head after it, or why it failed (the commit runs whether
    /// or not this is polled).
    done: LocalBoxFuture<'static, Result<u64, String>>,
    /// A pack from the server: if it fails its checks, the log's stream is
    /// read instead (nothing of it was committed).
    pack: bool,
}

/// Why a connection ended.
struct Stop {
    why: String,
    /// Worth trying again (the server or the network went away).
    retry: bool,
}

impl Stop {
    fn fatal(why: impl Into<String>) -> Stop {
        Stop {
            why: why.into(),
            retry: false,
        }
    }
    fn retry(why: impl Into<String>) -> Stop {
        Stop {
            why: why.into(),
            retry: true,
        }
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        Stop::fatal(e.to_string())
    }
}

/// What the sync keeps between connections, over the replica's store `S`.
pub struct Sync<S> {
    settings: Settings,
    token: String,
    passphrase: String,
    store: Rc<S>,
    /// The clock, timers and randomness.
    env: Rc<dyn Env>,
    /// The engine, which folds, checks and makes packs, and hears the news.
    replica: Rc<dyn Replica>,
    /// What was last said, so the same is not said twice.
    told: Told,
    outbox: Outbox,
    /// The highest outbox key read.
    loaded: Option<u64>,
    /// The events received since the page opened.
    received: u64,
    /// The messages refused since the page opened.
    refused: u64,
    /// The last write this browser could not send, in words.
    problem: String,
    /// Why the last pack read from the server was not used.
    pack_refused: Option<String>,
    /// A connection reached the server at least once.
    reached: bool,
    /// Outbox keys the server stored, deleted in one go when the sync
    /// catches its breath (a key left after a crash is found stored again).
    stored: Vec<u64>,
    /// The team's key, on an encrypted log (set on connecting).
    seal: Option<std::rc::Rc<Seal>>,
    /// The loop's lease and the models' bytes.
    team: Team,
    /// The server compresses what it sends (else a join is slower).
    compressed: bool,
    /// The commit under way.
    flight: Option<Flight>,
    /// Settle again once this many keys were stored.
    settle_at: usize,
    /// Where commits of received events ended (ascending): places no
    /// import is half in, where a pack may end.
    safe: Vec<u64>,
    /// Where the packs on the server end, as last seen.
    packed_to: u64,
    /// Events per pack.
    pack_events: u64,
    /// This browser may put packs on the server (not after a refusal).
    packing: bool,
    /// The head when this page began receiving: every safe place after it
    /// is in `safe`.
    known_from: Option<u64>,
    /// Events read from packs since the page opened.
    from_packs: u64,
    /// Events held back until an import being received is complete.
    held_back: u64,
}

/// What the sync last said of each kind.
#[derive(Default)]
struct Told {
    status: String,
    counts: Counts,
    on_server: Option<u64>,
    conflicts: Vec<Conflict>,
    standing: Option<Standing>,
}

/// How the sync reaches the server: a new connection each time it (re)connects.
pub trait Dial {
    /// What the connection's bytes travel over.
    type Wire: Wire;
    /// Open a connection to `server` with `token`; the others' wake-ups
    /// reach it through `wakes` until the next one opens.
    fn dial(
        &self,
        server: &str,
        token: &str,
        wakes: &Wakes,
        env: Rc<dyn Env>,
    ) -> Result<Socket<Self::Wire>, String>;
}

impl<S: ReplicaStore + ModelStore + 'static> Sync<S> {
    /// A sync of the replica in `store`, connected as `connect` says,
    /// reaching the engine through `replica`.
    pub fn new(
        store: Rc<S>,
        connect: Connect,
        replica: Rc<dyn Replica>,
        env: Rc<dyn Env>,
    ) -> Sync<S> {
        let Connect {
            settings,
            token,
            passphrase,
            pack_events,
            holder,
        } = connect;
        Sync {
            settings,
            token,
            passphrase,
            store,
            env: env.clone(),
            replica: replica.clone(),
            told: Told::default(),
            outbox: Outbox::default(),
            loaded: None,
            received: 0,
            refused: 0,
            problem: String::new(),
            pack_refused: None,
            reached: false,
            stored: Vec::new(),
            seal: None,
            team: Team::new(holder, env),
            compressed: true,
            flight: None,
            settle_at: SETTLE_EVENTS,
            safe: Vec::new(),
            packed_to: 0,
            pack_events,
            packing: true,
            known_from: None,
            from_packs: 0,
            held_back: 0,
        }
    }

    /// Follow and write the shared log until the sync stops for good (said
    /// in a [`News::Status`]); lost connections are dialled again, sooner
    /// when the machine comes back online. The store must already use its
    /// outbox ([`ReplicaStore::use_outbox`]).
    pub async fn drive(self, dial: impl Dial, wakes: Wakes) {
        let mut sync = self;
        let mut delay_ms = 1_000;
        loop {
            sync.outbox.reconnected();
            let stop = match sync.session(&dial, &wakes).await {
                Ok(()) => continue,
                Err(stop) => stop,
            };
            *wakes.borrow_mut() = None;
            let standing = sync.team.disconnected();
            sync.tell_standing(standing);
            sync.replica.tell(News::Lease(None));
            let mut counts = sync.told.counts;
            counts.connected = false;
            counts.link = if stop.retry {
                Link::Offline
            } else {
                Link::Stopped
            };
            sync.tell_counts(counts);
            if !stop.retry {
                sync.tell_status(format!("not connected: {}", stop.why));
                return;
            }
            if sync.reached {
                delay_ms = 1_000;
                sync.reached = false;
            }
            // Sooner when the browser comes back online; meanwhile the count
            // of what waits here follows what this browser writes.
            let mut waited = 0;
            let was_online = sync.env.online();
            loop {
                let _ = sync.load_outbox().await;
                let mut counts = sync.told.counts;
                counts.connected = false;
                counts.link = Link::Offline;
                counts.outbox = sync.outbox.len() as u64;
                sync.tell_counts(counts);
                sync.tell_status(format!(
                    "offline: {}. {} events wait here and go out on reconnecting; trying again in {} s",
                    stop.why,
                    sync.outbox.len(),
                    (delay_ms - waited + 999) / 1000
                ));
                if waited >= delay_ms || (sync.env.online() && !was_online) {
                    break;
                }
                sync.env.sleep(250).await;
                waited += 250;
            }
            delay_ms = (delay_ms * 2).min(16_000);
        }
    }
}

impl<S: ReplicaStore + ModelStore + 'static> Sync<S> {
    async fn session(&mut self, dial: &impl Dial, wakes: &Wakes) -> Result<(), Stop> {
        let server = self.settings.server.clone();
        let unreachable = |why: String| {
            Stop::retry(format!(
                "could not reach {server} ({why}): is nats-server running there with WebSocket and JetStream on? The local log is untouched"
            ))
        };
        let mut socket = dial
            .dial(&server, &self.token, wakes, self.env.clone())
            .map_err(Stop::fatal)?;
        let info = loop {
            match socket.next().await.map_err(unreachable)? {
                Event::Connected(info) => break info,
                Event::ServerError(e) => return Err(Stop::fatal(refused(&e))),
                _ => {}
            }
        };
        if !info.jetstream {
            return Err(Stop::fatal(format!(
                "{server} has no JetStream (nats-server {}): start it with -js (or `make shared-server`). The local log is untouched.",
                info.version
            )));
        }
        self.reached = true;
        self.compressed = socket.compressed();
        let lost = |why: String| Stop::retry(format!("the connection to {server} closed ({why})"));
        let mut config = StreamConfig::for_log(&self.settings.log, 1);
        let passphrase = self.passphrase.clone();
        if !passphrase.is_empty() {
            // Used only if this browser creates the log: it is then
            // encrypted, with a salt of its own.
            let salt = seal::new_salt(
                &self.settings.log,
                self.env.wall_ms(),
                &self.env.random_token(),
            );
            config.metadata = seal::metadata_for(&passphrase, &salt).0;
        }
        let asked = socket
            .request(&jetstream::info_subject(&config.name), None, b"{}")
            .await
            .map_err(lost)?;
        let stream: StreamInfo = match answer::<StreamInfo>(&asked.payload).map_err(Stop::fatal)? {
            Ok(info) => info,
            Err(e) if e.err_code == STREAM_NOT_FOUND => {
                let body = serde_json::to_vec(&config).map_err(|e| Stop::fatal(e.to_string()))?;
                let created = socket
                    .request(&jetstream::create_subject(&config.name), None, &body)
                    .await
                    .map_err(lost)?;
                answer::<StreamInfo>(&created.payload)
                    .map_err(Stop::fatal)?
                    .map_err(|e| {
                        Stop::fatal(format!("the server would not create the shared log: {e}"))
                    })?
            }
            Err(e) => {
                return Err(Stop::fatal(format!(
                    "the server would not describe the shared log: {e}"
                )))
            }
        };
        // The passphrase opens the log, or nothing is read or written.
        self.seal = match seal::keyring(&stream.config.metadata, &passphrase) {
            Ok(Keyring::Plain) => None,
            Ok(Keyring::Sealed(key)) => Some(std::rc::Rc::from(key)),
            Err(why) => return Err(Stop::fatal(why)),
        };
        let mut on_server = stream.state.last_seq;
        // A commit still under way from the last connection goes in first.
        if let Some(f) = self.flight.take() {
            if f.done.await.is_ok() {
                self.received += f.n;
            }
        }
        let mut head = self.store.head().await?;
        if head > on_server {
            return Err(Stop::fatal(format!(
                "this browser's copy of “{}” holds {head} events, the server {on_server}: the server's log was replaced. Disconnect, delete this browser's copy (Settings), and connect again.",
                self.settings.log
            )));
        }
        self.known_from.get_or_insert(head);
        // What the packs on the server hold is read in big pieces first.
        if head < on_server {
            self.read_packs(&mut socket, &mut head, on_server).await?;
        }
        let inbox = format!(
            "{}.{}.deliver",
            socket.inbox_prefix,
            self.env.random_token()
        );
        let sid = socket.conn.subscribe(&inbox);
        let body = serde_json::to_vec(&consumer::ordered(&config.name, &inbox, head + 1))
            .map_err(|e| Stop::fatal(e.to_string()))?;
        let created = socket
            .request(&consumer::create_subject(&config.name), None, &body)
            .await
            .map_err(lost)?;
        // A refusal here is the server's trouble of the moment (a cluster
        // choosing the stream's leader, a consumer limit reached while
        // others go away): tried again like a lost connection, not given up
        // — and with pauses that grow, as if the server had not been
        // reached, since a refusal that lasts would otherwise be asked again
        // every second.
        if let Err(e) = answer::<serde_json::Value>(&created.payload).map_err(Stop::fatal)? {
            self.reached = false;
            return Err(Stop::retry(format!(
                "the server would not deliver the shared log ({e})"
            )));
        }
        self.load_outbox().await?;
        let mut sends: HashMap<u64, u64> = HashMap::new();
        // Received, not yet in the log: events from `head + flying + 1` on.
        let mut batch: Vec<(String, crate::log::NewEvent)> = Vec::new();
        let mut said_at = f64::NEG_INFINITY;
        let mut note = String::new();
        // Imports under way: their events are held until each is whole.
        let mut units = Units::default();
        // The outbox is judged against the log as received: only once this
        // browser has what the server held when it connected.
        let connected_at = on_server;
        // Whether nothing more is already here: then act and report, once
        // for everything that came in together (one frame of publishes).
        let mut idle = true;
        let mut pace = Pace::new(self.env.clone());
        loop {
            let caught_up = head + self.flying() + batch.len() as u64 >= connected_at;
            if idle && caught_up {
                // What the outbox looks up must be in the log first.
                self.land(&mut head).await?;
                self.act(&mut socket, &mut sends, head, &batch).await?;
            }
            let now = self.env.now_ms();
            if idle && (caught_up || now - said_at >= SAY_EVERY_MS) {
                said_at = now;
                let holding = units.holding(batch.len(), now);
                self.held_back = if holding { batch.len() as u64 } else { 0 };
                if holding {
                    self.say(
                        head,
                        on_server,
                        &format!(
                            "holding {} events back until an import is complete",
                            batch.len()
                        ),
                    );
                } else if let Some(unit) = units.abandoned().last() {
                    self.say(
                        head,
                        on_server,
                        &format!(
                            "an import ({unit}) stayed open over {} minutes or {} events: its events are shown as they arrive{}",
                            consumer::HOLD_MAX_MS / 60_000.0,
                            consumer::HOLD_MAX_EVENTS,
                            if note.is_empty() { String::new() } else { format!("; {note}") }
                        ),
                    );
                } else {
                    self.say(head, on_server, &note);
                }
            }
            // Thousands of messages already here (answers to a burst of
            // sends, a join) are taken in slices, the page drawing between.
            pace.step().await;
            match socket.wake().await.map_err(lost)? {
                Wake::Net(Event::Message(m)) if m.sid == sid => {
                    match delivery(&m).map_err(Stop::retry)? {
                        // Delivered before (a repeat after a reconnect): here already.
                        Delivery::Event { seq, .. }
                            if seq < head + self.flying() + batch.len() as u64 + 1 => {}
                        Delivery::Event { seq, stored_at } => {
                            let expected = head + self.flying() + batch.len() as u64 + 1;
                            // Every message takes its place: the event it is,
                            // or a refusal saying why not; a sequence the
                            // server no longer holds, a refusal too.
                            let mut refusals = gate::gap(expected, seq);
                            match gate::admit_with(
                                &self.settings.log,
                                seq,
                                &m,
                                self.seal.as_deref(),
                            ) {
                                Admitted::Event(shared) => {
                                    for r in refusals.drain(..) {
                                        batch.push(self.refuse(r, stored_at));
                                    }
                                    units.see(&shared, self.env.now_ms());
                                    let SharedEvent {
                                        stream, mut event, ..
                                    } = *shared;
                                    if event.event_type == crate::domain::model::ModelTrained::TYPE
                                    {
                                        self.team.models_changed();
                                    }
                                    event.recorded_at.get_or_insert(stored_at);
                                    self.stored
                                        .extend(self.outbox.arrived(&stream, seq, &event));
                                    batch.push((stream, event));
                                }
                                Admitted::Refused(r) => {
                                    refusals.push(r);
                                    for r in refusals {
                                        batch.push(self.refuse(r, stored_at));
                                    }
                                }
                            }
                            on_server = on_server.max(seq);
                        }
                        Delivery::FlowControl(reply) => socket.conn.publish(&reply, b""),
                        Delivery::Heartbeat => {}
                    }
                }
                Wake::Net(Event::Answer { id, message }) => {
                    let Some(key) = sends.remove(&id) else {
                        continue;
                    };
                    note = self.answered(&mut socket, key, &message.payload).await?;
                }
                Wake::Net(Event::ServerError(raw)) => {
                    let e = refused(&raw);
                    if not_permitted(&raw) {
                        // A read-only user: follow on, write nothing.
                        self.read_only(format!(
                            "This browser may only read the shared log “{}” ({e}). Disconnect (Settings → Shared log) to write to this browser's own log.",
                            self.settings.log
                        ));
                        note = format!("read only: {e}");
                        sends.clear();
                    } else {
                        return Err(Stop::retry(e));
                    }
                }
                Wake::Net(_) => {}
                Wake::Outbox => self.load_outbox().await?,
                Wake::Tick => {
                    if let Some(n) = self.team_round(&mut socket).await? {
                        note = n;
                    }
                    if let Some(n) = self.pack_round(&mut socket, head).await? {
                        note = n;
                    }
                }
                Wake::Choice(stream, keep) => {
                    if keep {
                        self.outbox.keep(&stream);
                    } else {
                        let keys = self.outbox.drop_stream(&stream);
                        self.store.settle(&keys, &[]).await?;
                        self.store.use_outbox().await?;
                    }
                    self.show_conflicts();
                }
            }
            // Commit once nothing more is already here (or the batch is
            // full), one commit at a time: the next batch is read while the
            // last is written.
            idle = !socket.more_waiting();
            if !batch.is_empty()
                && !units.holding(batch.len(), self.env.now_ms())
                && (batch.len() >= COMMIT_EVENTS || idle)
            {
                self.land(&mut head).await?;
                let n = batch.len() as u64;
                let (tx, rx) = futures::channel::oneshot::channel();
                let store = self.store.clone();
                let parts = by_stream(std::mem::take(&mut batch));
                self.env.spawn(Box::pin(async move {
                    let committed = store.append_replicated(parts).await;
                    let _ = tx.send(committed.map(|c| c.last_seq).map_err(|e| e.to_string()));
                }));
                self.flight = Some(Flight {
                    n,
                    done: Box::pin(async move {
                        rx.await.unwrap_or_else(|_| {
                            Err("a commit to this browser's copy was dropped".into())
                        })
                    }),
                    pack: false,
                });
                if idle {
                    // Nothing more to read: show it as soon as it is in.
                    self.land(&mut head).await?;
                }
            }
            self.settle(idle && sends.is_empty()).await?;
        }
    }

    /// Settle the outbox keys the server stored. An outbox record holds a
    /// thousand events and is rewritten whole to mark some of them done, so
    /// while a push goes on only records with nothing left waiting are
    /// settled (deleted); the others once the push has drained (`all`). A
    /// key a crash leaves unsettled is found stored when it is next sent.
    async fn settle(&mut self, all: bool) -> Result<(), Stop> {
        if self.stored.is_empty() || (!all && self.stored.len() < self.settle_at) {
            return Ok(());
        }
        let keys = if all {
            std::mem::take(&mut self.stored)
        } else {
            let outbox = &self.outbox;
            let (whole, partial): (Vec<u64>, Vec<u64>) = self
                .stored
                .iter()
                .partition(|k| !outbox.waits_in(record_keys(**k)));
            self.stored = partial;
            whole
        };
        self.settle_at = self.stored.len() + SETTLE_EVENTS;
        if !keys.is_empty() {
            self.store.settle(&keys, &[]).await?;
        }
        Ok(())
    }

    /// The events of the commit under way.
    fn flying(&self) -> u64 {
        self.flight.as_ref().map_or(0, |f| f.n)
    }

    /// Wait for the commit under way, if any, and check it came out where
    /// the server put its events.
    async fn land(&mut self, head: &mut u64) -> Result<(), Stop> {
        let Some(Flight { n, done, pack }) = self.flight.take() else {
            return Ok(());
        };
        let last_seq = match done.await {
            Ok(seq) => seq,
            Err(why) if pack => {
                // Nothing of the pack went in: the stream is read from the
                // log's head on instead.
                self.pack_refused = Some(why);
                *head = self.store.head().await?;
                self.from_packs = self.from_packs.saturating_sub(n);
                return Ok(());
            }
            Err(why) => return Err(Stop::fatal(why)),
        };
        if last_seq != *head + n {
            return Err(Stop::fatal(format!(
                "this browser's copy is out of step with the server (event {last_seq} here, {} there): disconnect, delete the copy, connect again",
                *head + n
            )));
        }
        *head = last_seq;
        if self.safe.last().is_none_or(|s| *s < *head) {
            self.safe.push(*head);
        }
        self.received += n;
        self.replica.head_moved(*head);
        Ok(())
    }

    /// Read the packs on the server that go on from `head`, committing
    /// each while the next downloads; stop at the first that cannot be used
    /// (the stream is read from there on).
    async fn read_packs(
        &mut self,
        socket: &mut Socket<impl Wire>,
        head: &mut u64,
        on_server: u64,
    ) -> Result<(), Stop> {
        let server = self.settings.server.clone();
        let lost = |why: String| Stop::retry(format!("the connection to {server} closed ({why})"));
        let log = self.settings.log.clone();
        let ranges = packs_io::listed(socket, &log).await.map_err(lost)?;
        self.packed_to = self.packed_to.max(packs::packed_to(&ranges));
        let chain = packs::chain(&ranges, *head);
        let mut at = *head;
        for (i, &range) in chain.iter().enumerate() {
            self.say(
                *head,
                on_server,
                &format!("reading pack {} of {} from the server", i + 1, chain.len()),
            );
            let (digest, bytes) =
                match packs_io::fetch(socket, &*self.env, &log, range, self.seal.as_deref())
                    .await
                    .map_err(lost)?
                {
                    Ok(pack) => pack,
                    Err(why) => {
                        self.say(
                            *head,
                            on_server,
                            &format!("{why}; reading the log's events one by one instead"),
                        );
                        break;
                    }
                };
            // The last pack's commit first: one at a time. The engine checks
            // and commits this one while the next downloads.
            self.land(head).await?;
            if self.pack_refused.is_some() {
                break;
            }
            let n = range.1 - at;
            let done = self.replica.apply_pack(range, at, digest, bytes);
            self.flight = Some(Flight {
                n,
                done,
                pack: true,
            });
            self.from_packs += n;
            at = range.1;
        }
        self.land(head).await?;
        if let Some(why) = self.pack_refused.take() {
            self.say(
                *head,
                on_server,
                &format!("{why}; reading the log's events one by one instead"),
            );
        }
        Ok(())
    }

    /// Put the next pack on the server when one is due: this browser has
    /// the events, and they end where no import is half in.
    async fn pack_round(
        &mut self,
        socket: &mut Socket<impl Wire>,
        head: u64,
    ) -> Result<Option<String>, Stop> {
        if !self.packing || self.store.is_read_only() {
            return Ok(None);
        }
        if packs::due(
            self.packed_to,
            &self.safe,
            head,
            self.pack_events,
            self.known_from.unwrap_or(u64::MAX),
        )
        .is_none()
        {
            return Ok(None);
        }
        let server = self.settings.server.clone();
        let lost = |why: String| Stop::retry(format!("the connection to {server} closed ({why})"));
        let log = self.settings.log.clone();
        let refused = |this: &mut Sync<S>, why: String| {
            this.packing = false;
            Ok(Some(format!("the log is not packed on the server ({why})")))
        };
        // Another browser may have packed them meanwhile.
        let ranges = match packs_io::listed(socket, &log).await {
            Ok(r) => r,
            Err(e) if not_permitted(&e) => return refused(self, e),
            Err(e) => return Err(lost(e)),
        };
        self.packed_to = self.packed_to.max(packs::packed_to(&ranges));
        let Some(to) = packs::due(
            self.packed_to,
            &self.safe,
            head,
            self.pack_events,
            self.known_from.unwrap_or(u64::MAX),
        ) else {
            return Ok(None);
        };
        let from = self.packed_to + 1;
        let made = match self.replica.make_pack(from, to).await {
            Ok(made) => made,
            Err(why) => return refused(self, why),
        };
        match packs_io::upload(
            socket,
            &*self.env,
            &log,
            (from, to),
            &made,
            self.seal.as_deref(),
        )
        .await
        {
            Ok(Ok(_)) => {
                self.packed_to = to;
                Ok(None)
            }
            Ok(Err(why)) => refused(self, why),
            Err(e) if not_permitted(&e) => refused(self, e),
            Err(e) => Err(lost(e)),
        }
    }

    /// The loop's lease and the models, once a second.
    async fn team_round(&mut self, socket: &mut Socket<impl Wire>) -> Result<Option<String>, Stop> {
        let wanted = self.replica.loop_wanted() && !self.store.is_read_only();
        let logged = self.replica.logged_models();
        let released = self.replica.released_models();
        let said = self
            .team
            .round(
                socket,
                &self.settings.log,
                &*self.store,
                wanted,
                (&logged, &released),
                self.seal.as_deref(),
            )
            .await;
        let note = match said {
            Ok(note) => note,
            Err(e) if not_permitted(&e) => {
                self.read_only(format!(
                    "This browser may only read the shared log “{}” ({e}). Disconnect (Settings → Shared log) to write to this browser's own log.",
                    self.settings.log
                ));
                Some(format!("read only: {e}"))
            }
            Err(e) => {
                return Err(Stop::retry(format!(
                    "the connection to {} closed ({e})",
                    self.settings.server
                )))
            }
        };
        self.tell_standing(self.team.standing());
        // Every round: the engine learns how long the lease is surely held.
        self.replica.tell(News::Lease(self.team.held()));
        Ok(note)
    }

    /// Read what was put in the outbox since the last read.
    async fn load_outbox(&mut self) -> Result<(), Stop> {
        for (key, w) in self.store.waiting(self.loaded).await? {
            self.loaded = Some(self.loaded.map_or(key, |k| k.max(key)));
            self.outbox.add(key, w);
        }
        Ok(())
    }

    /// Look up and send what the outbox plans, until only answers are awaited.
    /// `held`: the events received but not yet in the log (an import under
    /// way), the first of them at `head + 1`.
    async fn act(
        &mut self,
        socket: &mut Socket<impl Wire>,
        sends: &mut HashMap<u64, u64>,
        head: u64,
        held: &[(String, crate::log::NewEvent)],
    ) -> Result<(), Stop> {
        if self.store.is_read_only() {
            return Ok(());
        }
        loop {
            let actions = self.outbox.plan();
            // One read of the stream table for every stream looked at, and
            // the held events by stream.
            let looked_at: Vec<&str> = actions
                .iter()
                .filter_map(|a| match a {
                    Action::Look { stream, .. } => Some(stream.as_str()),
                    _ => None,
                })
                .collect();
            let versions = if looked_at.is_empty() {
                Vec::new()
            } else {
                self.store.stream_versions(&looked_at).await?
            };
            let mut held_by_stream: HashMap<&str, Vec<(u64, &str)>> = HashMap::new();
            if !looked_at.is_empty() {
                for (i, (s, event)) in held.iter().enumerate() {
                    held_by_stream
                        .entry(s.as_str())
                        .or_default()
                        .push((head + 1 + i as u64, event.id.as_str()));
                }
            }
            let mut versions = versions.into_iter();
            let mut looked = false;
            let mut pace = Pace::new(self.env.clone());
            for action in actions {
                match action {
                    Action::Look { stream, after } => {
                        let in_log = versions.next().flatten().unwrap_or(0);
                        let from = after.max(1);
                        let mut seen = if in_log >= from {
                            self.store.read_stream(&stream, from, 2).await?
                        } else {
                            Vec::new()
                        };
                        if in_log > from + 1 {
                            seen.extend(self.store.read_stream(&stream, in_log, 1).await?);
                        }
                        let mut seen: Vec<Seen> = seen
                            .into_iter()
                            .map(|e| Seen {
                                version: e.version,
                                seq: e.seq,
                                id: e.id,
                            })
                            .collect();
                        // Then what was received and is held back.
                        let mut version = in_log;
                        for (seq, id) in held_by_stream.get(stream.as_str()).into_iter().flatten() {
                            version += 1;
                            seen.push(Seen {
                                version,
                                seq: *seq,
                                id: (*id).to_owned(),
                            });
                        }
                        let changes = self.outbox.looked(&stream, version, &seen);
                        self.stored.extend(changes.stored);
                        self.store.settle(&[], &changes.rewritten).await?;
                        looked = true;
                    }
                    Action::Send { key, expected } => {
                        let Some(w) = self.outbox.get(key) else {
                            continue;
                        };
                        let payload = self.wire(w).map_err(Stop::fatal)?;
                        // Said before sending: the server would close the
                        // connection over it, and every browser's gate
                        // would refuse it.
                        if payload.len() > gate::MAX_MESSAGE_BYTES {
                            if let Some(w) = self.outbox.unsendable(key) {
                                self.store.settle(&[key], &[]).await?;
                                self.problem = format!(
                                    "event {} of {} is {} bytes, more than the {} a shared log takes: not sent, and removed from the outbox",
                                    w.event.id,
                                    w.stream,
                                    payload.len(),
                                    gate::MAX_MESSAGE_BYTES
                                );
                            }
                            continue;
                        }
                        let id = socket.conn.request(
                            &jetstream::subject(&self.settings.log, &w.stream),
                            Some(&publish_headers(&w.event.id, expected)),
                            &payload,
                        );
                        sends.insert(id, key);
                        // A big plan (an import: one event per case) goes
                        // out in slices, the page drawing in between.
                        if pace.due() {
                            socket.flush();
                            pace.give_way().await;
                        }
                    }
                }
            }
            if !looked {
                break;
            }
        }
        socket.flush();
        self.show_conflicts();
        Ok(())
    }

    /// The server's answer to sending waiting event `key`: a note for the
    /// status line when it was refused for another reason than a conflict.
    async fn answered(
        &mut self,
        socket: &mut Socket<impl Wire>,
        key: u64,
        payload: &[u8],
    ) -> Result<String, Stop> {
        match answer::<PubAck>(payload) {
            Ok(Ok(ack)) if ack.duplicate => {
                // The server had the id already: stored by this browser
                // before (its answer lost), or taken by another message?
                let Some(w) = self.outbox.get(key).cloned() else {
                    return Ok(String::new());
                };
                let ask = GetRequest {
                    seq: Some(ack.seq),
                    ..Default::default()
                };
                let held = self.held(socket, &ask).await?;
                let subject = jetstream::subject(&self.settings.log, &w.stream);
                let bytes = self.wire(&w).map_err(Stop::fatal)?;
                if held.is_some_and(|m| m.is(&subject, &w.event.id, &bytes)) {
                    let changes = self.outbox.stored(key, ack.seq);
                    self.stored.extend(changes.stored);
                    return Ok(String::new());
                }
                self.outbox.unsendable(key);
                self.store.settle(&[key], &[]).await?;
                self.problem = format!(
                    "event {} of {} was not stored: another message on the server (event {}) took its id first",
                    w.event.id, w.stream, ack.seq
                );
                Ok(String::new())
            }
            Ok(Ok(ack)) => {
                let changes = self.outbox.stored(key, ack.seq);
                self.stored.extend(changes.stored);
                Ok(String::new())
            }
            Ok(Err(e)) if e.err_code == WRONG_LAST_SEQUENCE => {
                let Some(w) = self.outbox.get(key).cloned() else {
                    return Ok(String::new());
                };
                // Sent before and stored, its answer lost? Then it is the
                // stream's newest message on the server.
                let subject = jetstream::subject(&self.settings.log, &w.stream);
                let ask = GetRequest {
                    last_by_subj: Some(subject),
                    ..Default::default()
                };
                let newest = self.held(socket, &ask).await?;
                let bytes = self.wire(&w).map_err(Stop::fatal)?;
                let subject = jetstream::subject(&self.settings.log, &w.stream);
                let ours = newest
                    .filter(|m| m.is(&subject, &w.event.id, &bytes))
                    .map(|m| m.seq);
                match ours {
                    Some(seq) => {
                        let changes = self.outbox.stored(key, seq);
                        self.stored.extend(changes.stored);
                    }
                    None => self.outbox.refused(key),
                }
                Ok(String::new())
            }
            Ok(Err(e)) => {
                self.outbox.failed(key);
                Ok(format!(
                    "the server refused an event ({e}); it stays in the outbox"
                ))
            }
            Err(e) => {
                self.outbox.failed(key);
                Ok(format!(
                    "an event could not be sent ({e}); it stays in the outbox"
                ))
            }
        }
    }

    /// The message of the log's stream that `ask` names, if the server
    /// holds it.
    async fn held(
        &self,
        socket: &mut Socket<impl Wire>,
        ask: &GetRequest,
    ) -> Result<Option<jetstream::StoredMessage>, Stop> {
        let got = socket
            .request(
                &jetstream::get_subject(&jetstream::stream_name(&self.settings.log)),
                None,
                &serde_json::to_vec(ask).map_err(|e| Stop::fatal(e.to_string()))?,
            )
            .await
            .map_err(Stop::retry)?;
        Ok(answer::<GetAnswer>(&got.payload)
            .ok()
            .and_then(|a| a.ok())
            .map(|g| g.message))
    }

    /// What goes on the wire for waiting event `w`: its JSON, sealed with
    /// the team's key on an encrypted log (the same bytes every time it is
    /// sent, so the server's de-duplication still sees a re-send).
    fn wire(&self, w: &crate::store::outbox::Waiting) -> Result<Vec<u8>, String> {
        let json = serde_json::to_vec(&SharedEvent {
            stream: w.stream.clone(),
            event: w.event.clone(),
            unit: w.unit.clone(),
            closes: w.closes,
        })
        .map_err(|e| e.to_string())?;
        Ok(match &self.seal {
            None => json,
            Some(key) => key.seal(
                &seal::event_context(
                    &jetstream::subject(&self.settings.log, &w.stream),
                    &w.event.id,
                ),
                &json,
            ),
        })
    }

    /// A refusal into the log at its place (the card lists it from the
    /// log's statistics once it is in).
    fn refuse(&mut self, r: MessageRefused, stored_at: i64) -> (String, crate::log::NewEvent) {
        self.refused += 1;
        gate::into_event(r, stored_at)
    }

    fn show_conflicts(&mut self) {
        let now: Vec<_> = self.outbox.conflicts().cloned().collect();
        if self.told.conflicts != now {
            self.told.conflicts = now.clone();
            self.replica.tell(News::Conflicts(now));
        }
    }

    /// The server lets this user only read: the log takes no more writes
    /// here, and the page is told why.
    fn read_only(&mut self, why: String) {
        self.store.set_read_only(Some(why.clone()));
        self.replica.tell(News::ReadOnly(why));
    }

    fn tell_status(&mut self, text: String) {
        if self.told.status != text {
            self.told.status = text.clone();
            self.replica.tell(News::Status(text));
        }
    }

    fn tell_counts(&mut self, counts: Counts) {
        if self.told.counts != counts {
            self.told.counts = counts;
            self.replica.tell(News::Counts(counts));
        }
    }

    fn tell_standing(&mut self, standing: Standing) {
        if self.told.standing.as_ref() != Some(&standing) {
            self.told.standing = Some(standing.clone());
            self.replica.tell(News::Standing(standing));
        }
    }

    fn say(&mut self, head: u64, on_server: u64, note: &str) {
        if self.told.on_server != Some(on_server) {
            self.told.on_server = Some(on_server);
            self.replica.tell(News::OnServer(on_server));
        }
        let waiting = on_server.saturating_sub(head);
        let conflicts = self.outbox.conflicts().count();
        let mut text = format!(
            "connected to {}: shared log “{}”, {on_server} events on the server; {} received, {} sent, {waiting} waiting, {} in the outbox",
            self.settings.server,
            self.settings.log,
            self.received,
            self.outbox.sent,
            self.outbox.len(),
        );
        if conflicts > 0 {
            text.push_str(&format!(
                "; {conflicts} case{} in conflict (below)",
                if conflicts == 1 { "" } else { "s" }
            ));
        }
        if !self.problem.is_empty() {
            text.push_str("; ");
            text.push_str(&self.problem);
        }
        if self.refused > 0 {
            text.push_str(&format!(
                "; {} message{} refused here (below)",
                self.refused,
                if self.refused == 1 { "" } else { "s" }
            ));
        }
        if self.packed_to > 0 {
            text.push_str(&format!("; {} events packed on the server", self.packed_to));
            if self.from_packs > 0 {
                text.push_str(&format!(", {} read from packs here", self.from_packs));
            }
        }
        if !note.is_empty() {
            text.push_str("; ");
            text.push_str(note);
        }
        if !self.compressed {
            text.push_str("; the server does not compress its WebSocket messages, which makes downloading the log about half as fast (README: turn on compression)");
        }
        let counts = Counts {
            link: Link::Connected,
            connected: true,
            read_only: self.store.is_read_only(),
            held_back: self.held_back,
            packed: self.packed_to,
            from_packs: self.from_packs,
            on_server: Some(on_server),
            received: self.received,
            sent: self.outbox.sent,
            waiting,
            outbox: self.outbox.len() as u64,
            conflicts: conflicts as u64,
            refused: self.refused,
        };
        self.tell_counts(counts);
        self.tell_status(text);
    }
}
