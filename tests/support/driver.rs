//! A browser's sync, natively: the driver (`share::sync`) with its log in
//! memory, over TCP to a real nats-server, through a layer that can break
//! the conversation on purpose ([`Faults`]). Used by `tests/sync_driver.rs`
//! and `examples/sync_cpu.rs`.
#![allow(dead_code)]

use futures::channel::mpsc;
use futures::executor::{block_on, LocalPool, LocalSpawner};
use futures::future::LocalBoxFuture;
use futures::task::LocalSpawnExt;
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
pub struct StdEnv {
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
pub struct TcpWire {
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
        let mut closing = false;
        for frame in frames(&mut pending) {
            let push = frame.verb == "HPUB" && frame.args[0].starts_with("retrace.");
            if push {
                match faults.drop_after_pushes.as_mut() {
                    Some(0) => {
                        faults.drop_after_pushes = None;
                        faults.drops += 1;
                        closing = true;
                    }
                    Some(left) => *left -= 1,
                    None => {}
                }
            }
            if closing {
                break;
            }
            let pull = frame.verb == "PUB" && frame.args[0].starts_with("$JS.API.CONSUMER.CREATE.");
            let reply = frame.reply().map(str::to_owned);
            match reply {
                Some(reply) if push && faults.refuse_pushes > 0 => {
                    faults.refuse_pushes -= 1;
                    faults.pushes_refused += 1;
                    self.refuse(&reply, (503, 10077));
                }
                Some(reply) if pull && faults.refuse_pulls > 0 => {
                    faults.refuse_pulls -= 1;
                    faults.pulls_refused += 1;
                    self.refuse(&reply, (500, 10012));
                }
                Some(reply) if push => {
                    let id = msg_id(&frame.bytes);
                    if id.as_ref().is_some_and(|id| faults.lost_ids.contains(id)) {
                        faults.resent_lost += 1;
                    }
                    if faults.lose_answers > 0 {
                        faults.lose_answers -= 1;
                        faults.swallow.insert(reply);
                        faults.lost_ids.extend(id);
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
        if closing {
            let _ = self.stream.shutdown(Shutdown::Both);
            let _ = self
                .queue
                .unbounded_send(Incoming::Closed("dropped by the test".into()));
        }
    }
    fn compressed(&self) -> bool {
        true
    }
}

impl TcpWire {
    /// Answer `reply` with a JetStream error (`code`, `err_code`) made up here.
    fn refuse(&self, reply: &str, (code, err_code): (u32, u32)) {
        let error = api_error(reply, code, err_code, "refused on purpose by the test");
        let _ = self.queue.unbounded_send(Incoming::Bytes(error));
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
pub struct Faults {
    /// The next pushes to the log are refused (a JetStream error answers
    /// them; the server never sees them).
    pub refuse_pushes: usize,
    /// The next consumers asked for (a pull of the log) are refused.
    pub refuse_pulls: usize,
    /// The next pushes are stored, but their answers never arrive: the
    /// connection drops once they would all have.
    pub lose_answers: usize,
    /// The connection drops after this many more deliveries of the log.
    pub drop_after_deliveries: Option<usize>,
    /// Answers to pushes come after the deliveries read with them, and in
    /// reverse order.
    pub reverse: bool,
    /// The connection drops (as if the browser went offline) once this many
    /// more pushes have gone out; the rest of that write is lost with it.
    pub drop_after_pushes: Option<usize>,
    /// Nothing the server says arrives, and the connection stays open (a
    /// frozen server, a half-open socket).
    pub deaf: bool,
    pub pushes_refused: usize,
    /// Events whose answers were lost that were sent again.
    pub resent_lost: usize,
    lost_ids: HashSet<String>,
    pub pulls_refused: usize,
    pub answers_lost: usize,
    pub drops: usize,
    pub reordered: usize,
    swallow: HashSet<String>,
    answers: HashSet<String>,
}

/// One operation of the NATS protocol, whole: its line and any body.
pub struct Frame {
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
pub fn frames(buf: &mut Vec<u8>) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(eol) = buf[at..].windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&buf[at..at + eol]).into_owned();
        let mut words = line.split_whitespace().map(str::to_owned);
        let verb = words.next().unwrap_or_default().to_ascii_uppercase();
        let args: Vec<String> = words.collect();
        let body = match verb.as_str() {
            "MSG" | "PUB" | "HMSG" | "HPUB" => args.last().and_then(|n| n.parse::<usize>().ok()),
            _ => None,
        };
        let whole = eol + 2 + body.map_or(0, |n| n + 2);
        if buf.len() - at < whole {
            break;
        }
        let bytes = buf[at..at + whole].to_vec();
        at += whole;
        out.push(Frame { bytes, verb, args });
    }
    buf.drain(..at);
    out
}

/// The `Nats-Msg-Id` header of a publish (the event's id).
fn msg_id(frame: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(frame);
    let (_, rest) = text.split_once("Nats-Msg-Id: ")?;
    Some(rest.split("\r\n").next()?.to_owned())
}

/// A JetStream error answering `reply` (on the client's inbox, sid 1).
pub fn api_error(reply: &str, code: u32, err_code: u32, description: &str) -> Vec<u8> {
    let body = serde_json::json!({ "error": { "code": code, "err_code": err_code, "description": description } }).to_string();
    format!("MSG {reply} 1 {}\r\n{body}\r\n", body.len()).into_bytes()
}

/// Dials the server's client port; a refused connection closes at once,
/// as a WebSocket's does.
pub struct TcpDial(u16, Arc<Mutex<Faults>>);

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
        if self.deaf {
            return (Vec::new(), false);
        }
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
pub struct Engine {
    pub news: RefCell<Vec<News>>,
    pub head: Cell<u64>,
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
    pub fn counts(&self) -> Counts {
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
    pub fn conflicts(&self) -> Vec<String> {
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
pub struct Browser {
    pub store: Rc<MemoryStore>,
    pub engine: Rc<Engine>,
    pub wakes: Wakes,
    /// What its wire does to its connections.
    pub faults: Arc<Mutex<Faults>>,
}

impl Browser {
    pub fn new() -> Browser {
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
    pub fn connect(&self, pool: &LocalPool, port: u16, log: &str, name: &str) {
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
    pub fn write(&self, stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) {
        block_on(self.store.append_batch(vec![StreamAppend {
            stream: stream.into(),
            expected,
            events,
        }]))
        .unwrap();
        wake(&self.wakes, Incoming::Outbox);
    }

    /// Write an import: one unit, into the outbox, then a wake-up.
    pub fn write_unit(&self, batch: Vec<StreamAppend>) {
        block_on(self.store.append_unit(batch)).unwrap();
        wake(&self.wakes, Incoming::Outbox);
    }

    pub fn log(&self) -> Vec<Envelope> {
        block_on(self.store.read_all(1, usize::MAX)).unwrap()
    }

    pub fn waiting(&self) -> usize {
        block_on(self.store.waiting(None)).unwrap().len()
    }

    /// Its log, as (seq, stream, version, id).
    pub fn entries(&self) -> Vec<(u64, String, u64, String)> {
        self.log()
            .into_iter()
            .map(|e| (e.seq, e.stream, e.version, e.id))
            .collect()
    }
}

/// A different seed for every browser of every test (its inboxes' names
/// come from it).
pub fn seed(name: &str, port: u16) -> u64 {
    static BROWSERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = BROWSERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    name.bytes()
        .fold(0x9E37_79B9_7F4A_7C15 ^ u64::from(port), |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
        })
        ^ (n << 32)
}

/// Run `pool` until `done` holds, or fail saying `what` after `secs`.
pub fn run_until(pool: &mut LocalPool, secs: u64, what: &str, done: impl Fn() -> bool) {
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
pub fn event(n: u64, case: &str) -> NewEvent {
    NewEvent::new(
        format!("ev-{n}"),
        "ActivityRecorded",
        3,
        1_700_000_000_000 + n as i64 * 1000,
        &serde_json::json!({ "case": case, "activity": "Work", "resource": null, "hours": null, "attributes": {} }),
    )
}

pub fn events(ids: std::ops::Range<u64>, case: &str) -> Vec<NewEvent> {
    ids.map(|n| event(n, case)).collect()
}
