//! The shared log's sync driver (`share::sync`), run natively against a
//! real nats-server over TCP: the same code the engine's worker runs over
//! its WebSocket, with the log in memory instead of IndexedDB. Browsers
//! here are `Sync`s on one thread, each with its own store, as tabs in
//! different browsers would be.
#![cfg(not(target_arch = "wasm32"))]

#[path = "support/nats.rs"]
mod nats;

use futures::channel::mpsc;
use futures::executor::{block_on, LocalPool, LocalSpawner};
use futures::future::LocalBoxFuture;
use futures::task::LocalSpawnExt;
use nats::{serial, Server};
use retrace::domain::model::ModelTrained;
use retrace::log::{Envelope, NewEvent};
use retrace::share::env::Env;
use retrace::share::lease::Holder;
use retrace::share::packs::{PackMade, Packed};
use retrace::share::socket::{wake, Incoming, Socket, Wakes, Wire};
use retrace::share::status::{Connect, Counts, News, Settings};
use retrace::share::sync::{Dial, Replica, Sync};
use retrace::store::memory::MemoryStore;
use retrace::store::replica::ReplicaStore;
use retrace::store::{EventStore, ExpectedVersion, StreamAppend};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Real time, threads for timers, a seeded generator, and the test's pool
/// to run spawned work on.
struct StdEnv {
    start: Instant,
    seed: Cell<u64>,
    spawner: LocalSpawner,
}

impl StdEnv {
    fn next(&self) -> u64 {
        // xorshift64*
        let mut x = self.seed.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.seed.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl Env for StdEnv {
    fn now_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }
    fn wall_ms(&self) -> f64 {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
            * 1000.0
    }
    fn random_token(&self) -> String {
        format!("{:016x}", self.next())
    }
    fn random(&self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn sleep(&self, ms: u32) -> LocalBoxFuture<'static, ()> {
        let (tx, rx) = futures::channel::oneshot::channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms as u64));
            let _ = tx.send(());
        });
        Box::pin(async move {
            let _ = rx.await;
        })
    }
    fn yield_now(&self) -> LocalBoxFuture<'static, ()> {
        let mut yielded = false;
        Box::pin(futures::future::poll_fn(move |cx| {
            if yielded {
                std::task::Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        }))
    }
    fn online(&self) -> bool {
        true
    }
    fn spawn(&self, work: LocalBoxFuture<'static, ()>) {
        self.spawner.spawn_local(work).expect("the pool runs");
    }
}

/// A TCP stream to the server; a thread reads it into the connection's
/// queue. Both ways pass through [`Faults`].
struct TcpWire {
    stream: TcpStream,
    faults: Arc<Mutex<Faults>>,
    /// The connection's queue, where refusals made up here are answered.
    queue: mpsc::UnboundedSender<Incoming>,
}

impl Wire for TcpWire {
    fn send(&mut self, bytes: &[u8]) {
        let mut pending = bytes.to_vec();
        let mut forward = Vec::new();
        let mut faults = self.faults.lock().unwrap();
        for frame in frames(&mut pending) {
            let push = frame.verb == "HPUB" && frame.args[0].starts_with("retrace.");
            let pull = frame.verb == "PUB" && frame.args[0].starts_with("$JS.API.CONSUMER.CREATE.");
            let reply = frame.reply().map(str::to_owned);
            match reply {
                Some(reply) if push && faults.refuse_pushes > 0 => {
                    faults.refuse_pushes -= 1;
                    faults.pushes_refused += 1;
                    let _ = self.queue.unbounded_send(Incoming::Bytes(api_error(
                        &reply,
                        503,
                        10077,
                        "refused on purpose by the test",
                    )));
                }
                Some(reply) if pull && faults.refuse_pulls > 0 => {
                    faults.refuse_pulls -= 1;
                    faults.pulls_refused += 1;
                    let _ = self.queue.unbounded_send(Incoming::Bytes(api_error(
                        &reply,
                        500,
                        10012,
                        "refused on purpose by the test",
                    )));
                }
                Some(reply) if push => {
                    if faults.lose_answers > 0 {
                        faults.lose_answers -= 1;
                        faults.swallow.insert(reply);
                    } else if faults.reverse {
                        faults.answers.insert(reply);
                    }
                    forward.extend_from_slice(&frame.bytes);
                }
                _ => forward.extend_from_slice(&frame.bytes),
            }
        }
        drop(faults);
        let _ = self.stream.write_all(&forward);
    }
    fn compressed(&self) -> bool {
        true
    }
}

impl Drop for TcpWire {
    fn drop(&mut self) {
        // Ends the reading thread too.
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// What the wire does to the conversation, as a test sets it; and what it did.
#[derive(Default)]
struct Faults {
    /// The next pushes to the log are refused (a JetStream error answers
    /// them; the server never sees them).
    refuse_pushes: usize,
    /// The next consumers asked for (a pull of the log) are refused.
    refuse_pulls: usize,
    /// The next pushes are stored, but their answers never arrive: the
    /// connection drops once they would all have.
    lose_answers: usize,
    /// The connection drops after this many more deliveries of the log.
    drop_after_deliveries: Option<usize>,
    /// Answers to pushes come after the deliveries read with them, and in
    /// reverse order.
    reverse: bool,
    pushes_refused: usize,
    pulls_refused: usize,
    answers_lost: usize,
    drops: usize,
    reordered: usize,
    swallow: HashSet<String>,
    answers: HashSet<String>,
}

/// One operation of the NATS protocol, whole: its line and any body.
struct Frame {
    bytes: Vec<u8>,
    verb: String,
    args: Vec<String>,
}

impl Frame {
    /// The reply subject of a publish (`PUB subject reply n`).
    fn reply(&self) -> Option<&str> {
        let n = match self.verb.as_str() {
            "PUB" => 3,
            "HPUB" => 4,
            _ => return None,
        };
        (self.args.len() == n).then(|| self.args[1].as_str())
    }
    /// Whether it is a message (`MSG`/`HMSG`) to `subject`s in `set`.
    fn to<'a>(&self, set: &'a HashSet<String>) -> Option<&'a String> {
        matches!(self.verb.as_str(), "MSG" | "HMSG")
            .then(|| set.get(&self.args[0]))
            .flatten()
    }
}

/// The whole operations at the front of `buf` (a partial one stays).
fn frames(buf: &mut Vec<u8>) -> Vec<Frame> {
    let mut out = Vec::new();
    while let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&buf[..eol]).into_owned();
        let mut words = line.split_whitespace().map(str::to_owned);
        let verb = words.next().unwrap_or_default().to_ascii_uppercase();
        let args: Vec<String> = words.collect();
        let body = match verb.as_str() {
            "MSG" | "PUB" | "HMSG" | "HPUB" => args.last().and_then(|n| n.parse::<usize>().ok()),
            _ => None,
        };
        let whole = eol + 2 + body.map_or(0, |n| n + 2);
        if buf.len() < whole {
            break;
        }
        let bytes = buf.drain(..whole).collect();
        out.push(Frame { bytes, verb, args });
    }
    out
}

/// A JetStream error answering `reply` (on the client's inbox, sid 1).
fn api_error(reply: &str, code: u32, err_code: u32, description: &str) -> Vec<u8> {
    let body = serde_json::json!({ "error": { "code": code, "err_code": err_code, "description": description } }).to_string();
    format!("MSG {reply} 1 {}\r\n{body}\r\n", body.len()).into_bytes()
}

/// Dials the server's client port; a refused connection closes at once,
/// as a WebSocket's does.
struct TcpDial(u16, Arc<Mutex<Faults>>);

impl Dial for TcpDial {
    type Wire = TcpWire;
    fn dial(
        &self,
        _server: &str,
        token: &str,
        wakes: &Wakes,
        env: Rc<dyn Env>,
    ) -> Result<Socket<TcpWire>, String> {
        let (tx, rx) = mpsc::unbounded();
        *wakes.borrow_mut() = Some(tx.clone());
        let tx_wire = tx.clone();
        let stream = match TcpStream::connect(("127.0.0.1", self.0)) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.unbounded_send(Incoming::Closed(e.to_string()));
                // A wire to nowhere: the queue already says it closed.
                let dead = TcpStream::connect(("127.0.0.1", self.0))
                    .or_else(|_| {
                        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
                        TcpStream::connect(l.local_addr()?)
                    })
                    .expect("a loopback socket");
                let wire = TcpWire {
                    stream: dead,
                    faults: self.1.clone(),
                    queue: tx,
                };
                return Ok(Socket::new(wire, rx, token, env));
            }
        };
        let mut reader = stream.try_clone().expect("a TCP stream clones");
        let bytes = tx.clone();
        let faults = self.1.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut pending = Vec::new();
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => {
                        let _ = bytes.unbounded_send(Incoming::Closed("the server closed".into()));
                        break;
                    }
                    Ok(n) => n,
                    Err(e) => {
                        let _ = bytes.unbounded_send(Incoming::Closed(e.to_string()));
                        break;
                    }
                };
                pending.extend_from_slice(&buf[..n]);
                let (passed, close) = faults.lock().unwrap().hear(frames(&mut pending));
                if bytes.unbounded_send(Incoming::Bytes(passed)).is_err() {
                    break;
                }
                if close {
                    let _ = bytes.unbounded_send(Incoming::Closed("dropped by the test".into()));
                    let _ = reader.shutdown(Shutdown::Both);
                    break;
                }
            }
        });
        // The second's ticks, while the connection's queue is there.
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            if tx.unbounded_send(Incoming::Tick).is_err() {
                break;
            }
        });
        let wire = TcpWire {
            stream,
            faults: self.1.clone(),
            queue: tx_wire,
        };
        Ok(Socket::new(wire, rx, token, env))
    }
}

impl Faults {
    /// What of `frames` from the server reaches the client, and whether
    /// the connection drops after it.
    fn hear(&mut self, frames: Vec<Frame>) -> (Vec<u8>, bool) {
        let mut passed = Vec::new();
        let mut held = Vec::new();
        let mut close = false;
        for frame in frames {
            if let Some(reply) = frame.to(&self.swallow).cloned() {
                self.swallow.remove(&reply);
                self.answers_lost += 1;
                close |= self.swallow.is_empty();
                continue;
            }
            if let Some(reply) = frame.to(&self.answers).cloned() {
                self.answers.remove(&reply);
                held.push(frame.bytes);
                continue;
            }
            // The log's deliveries come on their own subjects, with an
            // acknowledgement subject as the reply.
            let delivery = matches!(frame.verb.as_str(), "HMSG" | "MSG")
                && frame.args.len() >= 4
                && frame.args[2].starts_with("$JS.ACK.");
            if delivery {
                if let Some(left) = self.drop_after_deliveries.as_mut() {
                    if *left == 0 {
                        self.drop_after_deliveries = None;
                        close = true;
                        break;
                    }
                    *left -= 1;
                }
            }
            passed.extend_from_slice(&frame.bytes);
        }
        if held.len() > 1 {
            self.reordered += 1;
        }
        for answer in held.into_iter().rev() {
            passed.extend_from_slice(&answer);
        }
        if close {
            self.drops += 1;
        }
        (passed, close)
    }
}

/// The engine's side, as the sync sees it: what it was told. Packs are not
/// made or read here (the logs are far below a pack's size, and no pack is
/// on the server), nor is the loop driven.
#[derive(Default)]
struct Engine {
    news: RefCell<Vec<News>>,
    head: Cell<u64>,
}

impl Replica for Engine {
    fn head_moved(&self, head: u64) {
        self.head.set(head);
    }
    fn apply_pack(
        &self,
        _range: (u64, u64),
        _after: u64,
        _digest: (String, Vec<Packed>),
        _bytes: Vec<u8>,
    ) -> LocalBoxFuture<'static, Result<u64, String>> {
        Box::pin(async { Err("no packs in these tests".into()) })
    }
    fn make_pack(&self, _from: u64, _to: u64) -> LocalBoxFuture<'static, Result<PackMade, String>> {
        Box::pin(async { Err("no packs in these tests".into()) })
    }
    fn logged_models(&self) -> BTreeMap<String, ModelTrained> {
        BTreeMap::new()
    }
    fn released_models(&self) -> BTreeSet<String> {
        BTreeSet::new()
    }
    fn loop_wanted(&self) -> bool {
        false
    }
    fn tell(&self, news: News) {
        self.news.borrow_mut().push(news);
    }
}

impl Engine {
    fn counts(&self) -> Counts {
        self.news
            .borrow()
            .iter()
            .rev()
            .find_map(|n| match n {
                News::Counts(c) => Some(*c),
                _ => None,
            })
            .unwrap_or_default()
    }
    fn conflicts(&self) -> Vec<String> {
        self.news
            .borrow()
            .iter()
            .rev()
            .find_map(|n| match n {
                News::Conflicts(c) => Some(c.iter().map(|c| c.stream.clone()).collect()),
                _ => None,
            })
            .unwrap_or_default()
    }
}

/// One browser: its log, its engine, its wake-ups.
struct Browser {
    store: Rc<MemoryStore>,
    engine: Rc<Engine>,
    wakes: Wakes,
    /// What its wire does to its connections.
    faults: Arc<Mutex<Faults>>,
}

impl Browser {
    fn new() -> Browser {
        let store = Rc::new(MemoryStore::new());
        block_on(store.use_outbox()).unwrap();
        Browser {
            store,
            engine: Rc::new(Engine::default()),
            wakes: Rc::new(RefCell::new(None)),
            faults: Arc::default(),
        }
    }

    /// Start its sync of log `log` on `port`, on `pool`.
    fn connect(&self, pool: &LocalPool, port: u16, log: &str, name: &str) {
        let env = Rc::new(StdEnv {
            start: Instant::now(),
            seed: Cell::new(seed(name, port)),
            spawner: pool.spawner(),
        });
        let connect = Connect {
            settings: Settings {
                server: format!("nats://127.0.0.1:{port}"),
                log: log.into(),
                on: true,
            },
            token: String::new(),
            passphrase: String::new(),
            pack_events: u64::MAX / 4,
            holder: Holder {
                browser: name.into(),
                name: name.into(),
            },
        };
        let sync = Sync::new(self.store.clone(), connect, self.engine.clone(), env);
        pool.spawner()
            .spawn_local(sync.drive(TcpDial(port, self.faults.clone()), self.wakes.clone()))
            .unwrap();
    }

    /// Write events as the app does: into the outbox, then a wake-up.
    fn write(&self, stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) {
        block_on(self.store.append_batch(vec![StreamAppend {
            stream: stream.into(),
            expected,
            events,
        }]))
        .unwrap();
        wake(&self.wakes, Incoming::Outbox);
    }

    fn log(&self) -> Vec<Envelope> {
        block_on(self.store.read_all(1, usize::MAX)).unwrap()
    }

    fn waiting(&self) -> usize {
        block_on(self.store.waiting(None)).unwrap().len()
    }

    /// Its log, as (seq, stream, version, id).
    fn entries(&self) -> Vec<(u64, String, u64, String)> {
        self.log()
            .into_iter()
            .map(|e| (e.seq, e.stream, e.version, e.id))
            .collect()
    }
}

/// A different seed for every browser of every test (its inboxes' names
/// come from it).
fn seed(name: &str, port: u16) -> u64 {
    static BROWSERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = BROWSERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    name.bytes()
        .fold(0x9E37_79B9_7F4A_7C15 ^ u64::from(port), |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
        })
        ^ (n << 32)
}

/// Run `pool` until `done` holds, or fail saying `what` after `secs`.
fn run_until(pool: &mut LocalPool, secs: u64, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        pool.run_until_stalled();
        if done() {
            return;
        }
        assert!(Instant::now() < deadline, "not within {secs} s: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// An event `n` of case `case`.
fn event(n: u64, case: &str) -> NewEvent {
    NewEvent::new(
        format!("ev-{n}"),
        "ActivityRecorded",
        3,
        1_700_000_000_000 + n as i64 * 1000,
        &serde_json::json!({ "case": case, "activity": "Work", "resource": null, "hours": null, "attributes": {} }),
    )
}

fn events(ids: std::ops::Range<u64>, case: &str) -> Vec<NewEvent> {
    ids.map(|n| event(n, case)).collect()
}

#[test]
fn two_browsers_writing_at_once_end_with_the_same_log_in_the_servers_order() {
    let _one = serial();
    let server = Server::start(true);
    let mut pool = LocalPool::new();
    let (a, b) = (Browser::new(), Browser::new());
    a.write("c1", ExpectedVersion::NoStream, events(1..4, "c1"));
    b.write("c2", ExpectedVersion::NoStream, events(101..103, "c2"));
    a.connect(&pool, server.port, "team", "a");
    b.connect(&pool, server.port, "team", "b");
    run_until(&mut pool, 30, "both hold all five events", || {
        a.log().len() == 5 && b.log().len() == 5 && a.waiting() == 0 && b.waiting() == 0
    });
    // More while connected, on both sides, to the same case.
    a.write("c2", ExpectedVersion::Any, events(4..6, "c2"));
    b.write("c1", ExpectedVersion::Any, events(103..104, "c1"));
    run_until(&mut pool, 30, "both hold all eight events", || {
        a.log().len() == 8 && b.log().len() == 8 && a.waiting() == 0 && b.waiting() == 0
    });
    assert_eq!(a.entries(), b.entries(), "one log, in the server's order");
    let seqs: Vec<u64> = a.log().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    let mut ids: Vec<String> = a.log().into_iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8, "each event once");
    // Each stream's versions count up without a gap.
    for stream in ["c1", "c2"] {
        let versions: Vec<u64> = a
            .log()
            .into_iter()
            .filter(|e| e.stream == stream)
            .map(|e| e.version)
            .collect();
        assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
    }
    assert_eq!(
        a.engine.head.get(),
        8,
        "the engine heard where the log ends"
    );
    let counts = a.engine.counts();
    assert!(counts.connected);
    assert_eq!(
        (counts.sent, counts.outbox, counts.on_server),
        (5, 0, Some(8))
    );
}

#[test]
fn a_conflicting_write_waits_for_the_user_who_keeps_one_case_and_drops_another() {
    let _one = serial();
    let server = Server::start(true);
    let mut pool = LocalPool::new();
    let (a, b) = (Browser::new(), Browser::new());
    // Both start the same two cases, each unaware of the other.
    a.write("c1", ExpectedVersion::NoStream, events(1..3, "c1"));
    a.write("c2", ExpectedVersion::NoStream, events(3..4, "c2"));
    b.write("c1", ExpectedVersion::NoStream, events(101..102, "c1"));
    b.write("c2", ExpectedVersion::NoStream, events(102..104, "c2"));
    a.connect(&pool, server.port, "team", "a");
    run_until(&mut pool, 30, "a's events are on the server", || {
        a.log().len() == 3 && a.waiting() == 0
    });
    b.connect(&pool, server.port, "team", "b");
    run_until(&mut pool, 30, "b says both cases are in conflict", || {
        b.log().len() == 3 && b.engine.conflicts().len() == 2
    });
    assert_eq!(
        b.waiting(),
        3,
        "nothing of b's is sent or lost while the user decides"
    );
    assert_eq!(b.engine.counts().conflicts, 2);
    wake(&b.wakes, Incoming::Choice("c1".into(), true));
    wake(&b.wakes, Incoming::Choice("c2".into(), false));
    run_until(&mut pool, 30, "b's kept event reaches both logs", || {
        a.log().len() == 4 && b.log().len() == 4 && b.waiting() == 0
    });
    assert_eq!(a.entries(), b.entries());
    let c1: Vec<String> = b
        .log()
        .into_iter()
        .filter(|e| e.stream == "c1")
        .map(|e| e.id)
        .collect();
    assert_eq!(
        c1,
        ["ev-1", "ev-2", "ev-101"],
        "kept: after the others' events"
    );
    assert!(
        !b.log().iter().any(|e| e.id == "ev-102" || e.id == "ev-103"),
        "dropped: never sent"
    );
    assert!(b.engine.conflicts().is_empty());
}

#[test]
fn a_server_killed_mid_push_comes_back_and_every_event_is_stored_once() {
    let _one = serial();
    let mut server = Server::start(true);
    let mut pool = LocalPool::new();
    let a = Browser::new();
    // An import's worth: 20,000 events over 1,000 cases.
    for case in 0..1_000u64 {
        let c = format!("c{case}");
        a.write(
            &c,
            ExpectedVersion::NoStream,
            events(case * 20 + 1..case * 20 + 21, &c),
        );
    }
    a.connect(&pool, server.port, "team", "a");
    run_until(&mut pool, 60, "part of the push is stored", || {
        a.engine.counts().sent > 0
    });
    server.kill();
    run_until(&mut pool, 30, "a says it is offline", || {
        !a.engine.counts().connected
    });
    let in_before = a.log().len();
    assert!(
        in_before < 20_000,
        "killed mid-push: {in_before} of 20,000 in"
    );
    // Written while the server is down: waits in the outbox.
    a.write(
        "late",
        ExpectedVersion::NoStream,
        events(50_001..50_011, "late"),
    );
    server.restart();
    run_until(
        &mut pool,
        90,
        "every event is on the server and back",
        || a.engine.head.get() == 20_010 && a.waiting() == 0,
    );
    let mut ids: Vec<String> = a.log().into_iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20_010, "each event stored once");
    // A browser joining now reads the same log.
    let b = Browser::new();
    b.connect(&pool, server.port, "team", "b");
    run_until(&mut pool, 60, "the newcomer has the log", || {
        b.engine.head.get() == 20_010
    });
    assert_eq!(a.entries(), b.entries());
}

/// The log's events in `store`, by id: each must be there once.
fn once_each(b: &Browser, n: usize) {
    let log = b.log();
    let mut ids: Vec<&str> = log.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), n);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "each event once");
    let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=n as u64).collect::<Vec<_>>(), "no gap");
}

/// What the sync said in words, all of it.
fn said(b: &Browser) -> String {
    b.engine
        .news
        .borrow()
        .iter()
        .filter_map(|n| match n {
            News::Status(s) => Some(s.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// 200 events over 20 cases, from event `from` on.
fn import(b: &Browser, from: u64) {
    for case in 0..20 {
        let c = format!("c{}", from + case);
        let first = from + case * 10;
        b.write(&c, ExpectedVersion::NoStream, events(first..first + 10, &c));
    }
}

#[test]
fn pushes_the_server_refuses_stay_in_the_outbox_and_go_again() {
    let _one = serial();
    let server = Server::start(true);
    let mut pool = LocalPool::new();
    let a = Browser::new();
    a.faults.lock().unwrap().refuse_pushes = 25;
    import(&a, 1);
    a.connect(&pool, server.port, "team", "a");
    run_until(
        &mut pool,
        60,
        "every refused event is sent again and stored",
        || a.engine.head.get() == 200 && a.waiting() == 0,
    );
    assert_eq!(a.faults.lock().unwrap().pushes_refused, 25);
    once_each(&a, 200);
    assert!(
        said(&a).contains(
            "refused on purpose by the test (JetStream error 10077)); it stays in the outbox"
        ),
        "the user was told: {}",
        said(&a)
    );
}

#[test]
fn a_refused_pull_is_tried_again_like_a_lost_connection() {
    let _one = serial();
    let server = Server::start(true);
    let mut pool = LocalPool::new();
    let (a, b) = (Browser::new(), Browser::new());
    import(&a, 1);
    a.connect(&pool, server.port, "team", "a");
    run_until(&mut pool, 30, "a's events are stored", || {
        a.engine.head.get() == 200 && a.waiting() == 0
    });
    b.faults.lock().unwrap().refuse_pulls = 2;
    b.connect(&pool, server.port, "team", "b");
    run_until(&mut pool, 60, "b reads the log after two refusals", || {
        b.engine.head.get() == 200
    });
    assert_eq!(b.faults.lock().unwrap().pulls_refused, 2);
    assert!(
        said(&b).contains(
            "offline: the server would not deliver the shared log (refused on purpose by the test"
        ),
        "the user was told: {}",
        said(&b)
    );
    assert_eq!(a.entries(), b.entries());
}

#[test]
fn answers_lost_with_the_connection_do_not_store_an_event_twice() {
    let _one = serial();
    let server = Server::start(true);
    let mut pool = LocalPool::new();
    let a = Browser::new();
    // Ten pushes reach the server, their answers never come back, and the
    // connection drops: on the next, the outbox still holds all ten.
    a.faults.lock().unwrap().lose_answers = 10;
    import(&a, 1);
    a.connect(&pool, server.port, "team", "a");
    run_until(
        &mut pool,
        60,
        "everything is stored and the outbox empty",
        || a.engine.head.get() == 200 && a.waiting() == 0,
    );
    let faults = a.faults.lock().unwrap();
    assert_eq!((faults.answers_lost, faults.drops), (10, 1));
    drop(faults);
    once_each(&a, 200);
}

#[test]
fn a_connection_dropped_in_the_middle_of_a_download_resumes_where_the_log_ends() {
    let _one = serial();
    let server = Server::start(true);
    let mut pool = LocalPool::new();
    let (a, b) = (Browser::new(), Browser::new());
    for from in (1..5_000).step_by(200) {
        import(&a, from);
    }
    a.connect(&pool, server.port, "team", "a");
    run_until(&mut pool, 60, "a's 5,000 events are stored", || {
        a.engine.head.get() == 5_000 && a.waiting() == 0
    });
    // b joins, and its connection drops twice while the log comes down
    // (commits of what came before each drop are under way).
    b.faults.lock().unwrap().drop_after_deliveries = Some(1_700);
    b.connect(&pool, server.port, "team", "b");
    run_until(&mut pool, 30, "the first drop", || {
        b.faults.lock().unwrap().drops == 1
    });
    b.faults.lock().unwrap().drop_after_deliveries = Some(1_300);
    run_until(&mut pool, 60, "b has the whole log", || {
        b.engine.head.get() == 5_000
    });
    assert_eq!(b.faults.lock().unwrap().drops, 2);
    once_each(&b, 5_000);
    assert_eq!(a.entries(), b.entries());
}

#[test]
fn answers_out_of_order_and_after_the_events_they_answer_settle_the_same_outbox() {
    let _one = serial();
    let server = Server::start(true);
    let mut pool = LocalPool::new();
    let (a, b) = (Browser::new(), Browser::new());
    a.faults.lock().unwrap().reverse = true;
    b.faults.lock().unwrap().reverse = true;
    a.connect(&pool, server.port, "team", "a");
    b.connect(&pool, server.port, "team", "b");
    for from in (1..2_000).step_by(200) {
        import(&a, from);
        import(&b, 10_000 + from);
        // And both to one case, without a check: theirs go in the server's order.
        a.write(
            "shared",
            ExpectedVersion::Any,
            events(50_000 + from..50_003 + from, "shared"),
        );
        b.write(
            "shared",
            ExpectedVersion::Any,
            events(60_000 + from..60_003 + from, "shared"),
        );
    }
    run_until(&mut pool, 90, "both hold everything", || {
        a.engine.head.get() == 4_060
            && b.engine.head.get() == 4_060
            && a.waiting() == 0
            && b.waiting() == 0
    });
    assert!(
        a.faults.lock().unwrap().reordered > 0,
        "answers did come out of order"
    );
    once_each(&a, 4_060);
    assert_eq!(a.entries(), b.entries());
    assert!(a.engine.conflicts().is_empty() && b.engine.conflicts().is_empty());
}
