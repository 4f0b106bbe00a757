//! One connection to the shared log's server, as the sync uses it: the
//! sans-I/O client ([`Conn`]) fed from one queue that carries the bytes the
//! server sends and everything else that wakes the sync (events put in the
//! outbox, the user's answer to a conflict, a second passing). Where the
//! bytes travel is a [`Wire`]: the browser's WebSocket at the edge
//! (`host`), a TCP stream in native tests.

use super::client::{Conn, Event};
use super::env::Env;
use super::proto::{Connect, Message};
use futures::channel::mpsc;
use futures::StreamExt;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// What wakes the sync: the wire's news and the others'.
pub enum Incoming {
    /// Bytes from the server.
    Bytes(Vec<u8>),
    /// The wire is open.
    Open,
    /// The wire closed, and why.
    Closed(String),
    /// Events were put in the outbox.
    Outbox,
    /// The user settled a conflict: keep (true) or drop this stream's events.
    Choice(String, bool),
    /// A second passed (the lease is renewed, the models looked at).
    Tick,
}

/// Where wake-ups go: the current connection's queue.
pub type Wakes = Rc<RefCell<Option<mpsc::UnboundedSender<Incoming>>>>;

/// Wake the sync, if it runs.
pub fn wake(wakes: &Wakes, what: Incoming) {
    if let Some(tx) = wakes.borrow().as_ref() {
        let _ = tx.unbounded_send(what);
    }
}

/// What the sync hears next.
pub enum Wake {
    Net(Event),
    Outbox,
    Choice(String, bool),
    Tick,
}

/// Where the bytes go. What comes back arrives in the connection's queue,
/// as [`Incoming::Bytes`] and, at the end, [`Incoming::Closed`].
pub trait Wire {
    /// Send `bytes` (the wire cuts them into pieces as it must).
    fn send(&mut self, bytes: &[u8]);
    /// Whether the server compresses what it sends (known once open).
    fn compressed(&self) -> bool;
}

/// How long the server may take to answer, unless a caller asks for less.
pub const ANSWER_MS: f64 = 10_000.0;

/// A connection over a [`Wire`].
pub struct Socket<W> {
    wire: W,
    pub conn: Conn,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    events: VecDeque<Event>,
    page: VecDeque<Wake>,
    env: Rc<dyn Env>,
    /// How long an answer (or an awaited message) may take before the
    /// connection is given up: a request never waits for ever.
    pub answer_ms: f64,
    /// Where this user's replies and deliveries come: `_INBOX`, or
    /// `_INBOX_<user>` for a server with users.
    pub inbox_prefix: String,
}

impl<W: Wire> Socket<W> {
    /// A connection over `wire`, whose news (and the others' wake-ups)
    /// arrive in `incoming`; `token` is `user:password` for a server with
    /// users, else a token (or nothing).
    pub fn new(
        wire: W,
        incoming: mpsc::UnboundedReceiver<Incoming>,
        token: &str,
        env: Rc<dyn Env>,
    ) -> Socket<W> {
        let mut connect = Connect::retrace("retrace-browser");
        // A user's replies come to inboxes under a prefix of their own, so
        // a server can let each user read only their own (README: roles).
        let inbox_prefix = match token.split_once(':') {
            Some((user, _)) => format!("_INBOX_{}", super::jetstream::subject_token(user)),
            None => "_INBOX".to_owned(),
        };
        match token.split_once(':') {
            Some((user, pass)) => {
                connect.user = Some(user.to_owned());
                connect.pass = Some(pass.to_owned());
            }
            None if !token.is_empty() => connect.auth_token = Some(token.to_owned()),
            None => {}
        }
        let inbox = format!("{inbox_prefix}.{}", env.random_token());
        Socket {
            wire,
            conn: Conn::new(connect, &inbox),
            incoming,
            events: VecDeque::new(),
            page: VecDeque::new(),
            env,
            answer_ms: ANSWER_MS,
            inbox_prefix,
        }
    }

    /// Whether the server compresses what it sends.
    pub fn compressed(&self) -> bool {
        self.wire.compressed()
    }

    /// Send what the client has written.
    pub fn flush(&mut self) {
        let out = self.conn.take_output();
        if !out.is_empty() {
            self.wire.send(&out);
        }
    }

    /// Take in one item from the queue.
    fn take(&mut self, item: Incoming) -> Result<(), String> {
        match item {
            Incoming::Bytes(b) => {
                let events = self.conn.receive(&b).map_err(|e| e.to_string())?;
                self.events.extend(events);
            }
            Incoming::Open => {}
            Incoming::Closed(why) => return Err(why),
            Incoming::Outbox => {
                if !self.page.iter().any(|w| matches!(w, Wake::Outbox)) {
                    self.page.push_back(Wake::Outbox)
                }
            }
            Incoming::Choice(s, keep) => self.page.push_back(Wake::Choice(s, keep)),
            Incoming::Tick => {
                if !self.page.iter().any(|w| matches!(w, Wake::Tick)) {
                    self.page.push_back(Wake::Tick)
                }
            }
        }
        self.flush();
        Ok(())
    }

    /// The next thing to act on, waiting as long as it takes.
    pub async fn wake(&mut self) -> Result<Wake, String> {
        self.pull(true).await
    }

    /// The server's next word (the other wake-ups wait meanwhile).
    pub async fn next(&mut self) -> Result<Event, String> {
        match self.pull(false).await? {
            Wake::Net(e) => Ok(e),
            _ => unreachable!("the other wake-ups wait while pulling the server's words"),
        }
    }

    async fn pull(&mut self, page_too: bool) -> Result<Wake, String> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(Wake::Net(e));
            }
            if page_too {
                if let Some(w) = self.page.pop_front() {
                    return Ok(w);
                }
            }
            self.flush();
            match self.incoming.next().await {
                Some(item) => self.take(item)?,
                None => return Err("closed".into()),
            }
        }
    }

    /// Whether more of the server's words are already here (read without
    /// waiting).
    pub fn more_waiting(&mut self) -> bool {
        while let Ok(item) = self.incoming.try_recv() {
            if let Err(why) = self.take(item) {
                self.events
                    .push_back(Event::ServerError(format!("closed: {why}")));
            }
        }
        !self.events.is_empty()
    }

    /// Ask and wait for the answer (deliveries meanwhile are kept).
    pub async fn request(
        &mut self,
        subject: &str,
        headers: Option<&super::proto::Headers>,
        body: &[u8],
    ) -> Result<Message, String> {
        let id = self.conn.request(subject, headers, body);
        self.answer(id).await
    }

    /// The server's next word, or an error once `deadline` (ms, the env's
    /// clock) has passed without one: the ticks (every second) keep the
    /// clock looked at while nothing arrives.
    async fn next_before(&mut self, deadline: f64) -> Result<Event, String> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(e);
            }
            if self.env.now_ms() > deadline {
                return Err(format!(
                    "no answer from the server within {:.0} s",
                    self.answer_ms / 1000.0
                ));
            }
            self.flush();
            match self.incoming.next().await {
                Some(item) => self.take(item)?,
                None => return Err("closed".into()),
            }
        }
    }

    /// Wait for the answer to request `id` (sent with `conn.request`);
    /// whatever else the server says meanwhile is kept for later.
    pub async fn answer(&mut self, id: u64) -> Result<Message, String> {
        let mut kept = Vec::new();
        let deadline = self.env.now_ms() + self.answer_ms;
        let answer = loop {
            match self.next_before(deadline).await? {
                Event::Answer { id: a, message } if a == id => break message,
                Event::ServerError(e) => return Err(refused(&e)),
                other => kept.push(other),
            }
        };
        self.keep(kept);
        Ok(answer)
    }

    /// Wait for the next message to subscription `sid`; whatever else the
    /// server says meanwhile is kept for later.
    pub async fn message_to(&mut self, sid: u64) -> Result<Message, String> {
        let mut kept = Vec::new();
        let deadline = self.env.now_ms() + self.answer_ms;
        let message = loop {
            match self.next_before(deadline).await? {
                Event::Message(m) if m.sid == sid => break m,
                Event::ServerError(e) => return Err(refused(&e)),
                other => kept.push(other),
            }
        };
        self.keep(kept);
        Ok(message)
    }

    fn keep(&mut self, kept: Vec<Event>) {
        for e in kept.into_iter().rev() {
            self.events.push_front(e);
        }
    }
}

/// Whether the server refused something this user may not do (a
/// read-only user's publish).
pub fn not_permitted(e: &str) -> bool {
    e.to_ascii_lowercase().contains("permissions violation")
}

/// The server's refusal in words.
pub fn refused(e: &str) -> String {
    if e.to_ascii_lowercase().contains("authorization") {
        "the server refused this browser: the token (or user:password) is wrong or missing (Settings → Shared log → Token). The local log is untouched.".into()
    } else if not_permitted(e) {
        format!("the server does not allow this ({e}): this user may only read this log")
    } else {
        format!("the server said: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::env::testing::Manual;
    use futures::executor::block_on;

    /// A wire that keeps what is sent.
    struct Kept(Rc<RefCell<Vec<u8>>>);

    impl Wire for Kept {
        fn send(&mut self, bytes: &[u8]) {
            self.0.borrow_mut().extend_from_slice(bytes);
        }
        fn compressed(&self) -> bool {
            false
        }
    }

    const HELLO: &[u8] = b"INFO {\"server_id\":\"S\",\"version\":\"2.12.0\",\"jetstream\":true,\"headers\":true}\r\nPONG\r\n";

    fn connected(
        env: Rc<Manual>,
    ) -> (
        Socket<Kept>,
        mpsc::UnboundedSender<Incoming>,
        Rc<RefCell<Vec<u8>>>,
    ) {
        let sent = Rc::new(RefCell::new(Vec::new()));
        let (tx, rx) = mpsc::unbounded();
        let mut socket = Socket::new(Kept(sent.clone()), rx, "alice:secret", env);
        tx.unbounded_send(Incoming::Bytes(HELLO.to_vec())).unwrap();
        assert!(matches!(block_on(socket.next()), Ok(Event::Connected(_))));
        (socket, tx, sent)
    }

    #[test]
    fn a_user_introduces_itself_with_its_password_and_gets_inboxes_of_its_own() {
        let (socket, _tx, sent) = connected(Rc::new(Manual::default()));
        let said = String::from_utf8(sent.borrow().clone()).unwrap();
        assert!(said.contains("\"user\":\"alice\""), "{said}");
        assert!(said.contains("\"pass\":\"secret\""), "{said}");
        assert!(said.contains("SUB _INBOX_alice.token.* 1\r\n"), "{said}");
        assert_eq!(socket.inbox_prefix, "_INBOX_alice");
    }

    #[test]
    fn an_awaited_answer_keeps_what_came_before_it_in_order_and_the_wake_ups_wait() {
        let (mut socket, tx, _) = connected(Rc::new(Manual::default()));
        tx.unbounded_send(Incoming::Tick).unwrap();
        tx.unbounded_send(Incoming::Outbox).unwrap();
        tx.unbounded_send(Incoming::Outbox).unwrap();
        tx.unbounded_send(Incoming::Bytes(
            b"MSG deliver.x 2 3\r\none\r\nMSG deliver.x 2 3\r\ntwo\r\nMSG _INBOX_alice.token.1 1 2\r\nok\r\n"
                .to_vec(),
        ))
        .unwrap();
        let answer = block_on(socket.request("$JS.API.INFO", None, b"")).unwrap();
        assert_eq!(answer.payload, b"ok");
        let mut heard = Vec::new();
        while socket.more_waiting() || heard.len() < 4 {
            heard.push(match block_on(socket.wake()).unwrap() {
                Wake::Net(Event::Message(m)) => String::from_utf8(m.payload).unwrap(),
                Wake::Tick => "tick".into(),
                Wake::Outbox => "outbox".into(),
                _ => "other".into(),
            });
        }
        assert_eq!(
            heard,
            ["one", "two", "tick", "outbox"],
            "the server's words first, then the wake-ups"
        );
        assert!(
            socket.page.is_empty(),
            "a repeated outbox wake-up counts once"
        );
    }

    #[test]
    fn an_answer_that_does_not_come_in_time_ends_the_wait_and_the_ticks_are_kept() {
        let env = Rc::new(Manual::default());
        let (mut socket, tx, _) = connected(env.clone());
        // Each reading of the clock is a second later; the server says nothing.
        env.step.set(1_000.0);
        for _ in 0..30 {
            tx.unbounded_send(Incoming::Tick).unwrap();
        }
        let waited = block_on(socket.request("$JS.API.INFO", None, b""));
        assert_eq!(waited.unwrap_err(), "no answer from the server within 10 s");
        assert!(matches!(block_on(socket.wake()), Ok(Wake::Tick)));
    }

    #[test]
    fn a_closed_wire_ends_a_wait_with_why_and_a_refusal_says_what_to_do() {
        let (mut socket, tx, _) = connected(Rc::new(Manual::default()));
        tx.unbounded_send(Incoming::Closed("code 1006".into()))
            .unwrap();
        assert_eq!(
            block_on(socket.request("x", None, b"")).unwrap_err(),
            "code 1006"
        );
        let (mut socket, tx, _) = connected(Rc::new(Manual::default()));
        tx.unbounded_send(Incoming::Bytes(
            b"-ERR 'Permissions Violation for Publish to \"x\"'\r\n".to_vec(),
        ))
        .unwrap();
        let refusal = block_on(socket.request("x", None, b"")).unwrap_err();
        assert!(refusal.contains("may only read"), "{refusal}");
        drop(tx);
        assert_eq!(block_on(socket.wake()).err().unwrap(), "closed");
    }
}
