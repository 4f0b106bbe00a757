//! The shared log's sync driver (`share::sync`), run natively against a
//! real nats-server over TCP: the same code the engine's worker runs over
//! its WebSocket, with the log in memory instead of IndexedDB. Browsers
//! here are `Sync`s on one thread, each with its own store, as tabs in
//! different browsers would be.
#![cfg(not(target_arch = "wasm32"))]

#[path = "support/nats.rs"]
mod nats;

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
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::rc::Rc;
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

/// A TCP stream to the server; a thread reads it into the connection's queue.
struct TcpWire(TcpStream);

impl Wire for TcpWire {
    fn send(&mut self, bytes: &[u8]) {
        let _ = self.0.write_all(bytes);
    }
    fn compressed(&self) -> bool {
        true
    }
}

impl Drop for TcpWire {
    fn drop(&mut self) {
        // Ends the reading thread too.
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

/// Dials the server's client port; a refused connection closes at once,
/// as a WebSocket's does.
struct TcpDial(u16);

impl Dial for TcpDial {
    type Wire = TcpWire;
    fn dial(
        &self,
        _server: &str,
        token: &str,
        wakes: &Wakes,
        env: Rc<dyn Env>,
    ) -> Result<Socket<TcpWire>, String> {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        *wakes.borrow_mut() = Some(tx.clone());
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
                return Ok(Socket::new(TcpWire(dead), rx, token, env));
            }
        };
        let mut reader = stream.try_clone().expect("a TCP stream clones");
        let bytes = tx.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => {
                        let _ = bytes.unbounded_send(Incoming::Closed("the server closed".into()));
                        break;
                    }
                    Ok(n) => {
                        if bytes
                            .unbounded_send(Incoming::Bytes(buf[..n].to_vec()))
                            .is_err()
                        {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = bytes.unbounded_send(Incoming::Closed(e.to_string()));
                        break;
                    }
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
        Ok(Socket::new(TcpWire(stream), rx, token, env))
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
}

impl Browser {
    fn new() -> Browser {
        let store = Rc::new(MemoryStore::new());
        block_on(store.use_outbox()).unwrap();
        Browser {
            store,
            engine: Rc::new(Engine::default()),
            wakes: Rc::new(RefCell::new(None)),
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
            .spawn_local(sync.drive(TcpDial(port), self.wakes.clone()))
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
