//! The NATS connection over the browser's WebSocket: the sans-I/O client
//! ([`Conn`]) fed by the socket's events, and woken as well from outside
//! (events put in the outbox, the user's answer to a conflict, the browser
//! going offline). A window's or a worker's WebSocket alike.

use crate::share::client::{Conn, Event};
use crate::share::proto::{Connect, Message};
use futures::channel::mpsc;
use futures::StreamExt;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, MessageEvent, WebSocket};

/// The largest WebSocket message sent. The NATS protocol is a byte stream,
/// so a message may end anywhere; nats-server's default maximum payload is
/// 1 MB.
const SEND_PIECE: usize = 64 * 1024;

/// What wakes the sync.
pub enum Incoming {
    Bytes(Vec<u8>),
    Open,
    Closed(String),
    /// Events were put in the outbox.
    Outbox,
    /// The user settled a conflict: keep (true) or drop this stream's events.
    Choice(String, bool),
    /// A second passed (the lease is renewed, the models looked at).
    Tick,
}

/// Where the page's wake-ups go: the current connection's queue.
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

/// The connection over a WebSocket.
pub struct Socket {
    ws: WebSocket,
    pub conn: Conn,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    events: std::collections::VecDeque<Event>,
    page: std::collections::VecDeque<Wake>,
    _handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    _ticks: gloo_timers::callback::Interval,
    /// How long an answer (or an awaited message) may take before the
    /// connection is given up: a request never waits for ever.
    pub answer_ms: f64,
    /// Where this user's replies and deliveries come: `_INBOX`, or
    /// `_INBOX_<user>` for a server with users.
    pub inbox_prefix: String,
}

/// How long the server may take to answer, unless a caller asks for less.
pub const ANSWER_MS: f64 = 10_000.0;

impl Socket {
    pub fn open(server: &str, token: &str, wakes: &Wakes) -> Result<Socket, String> {
        let ws = WebSocket::new(server).map_err(|e| {
            format!("{server} is not a WebSocket address ({e:?}): use ws://host:port or wss://host")
        })?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let (tx, incoming) = mpsc::unbounded();
        let mut handlers = Vec::new();
        let on = |tx: mpsc::UnboundedSender<Incoming>, f: fn(JsValue) -> Incoming| {
            Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
                let _ = tx.unbounded_send(f(ev));
            })
        };
        let message = on(tx.clone(), |ev| {
            let data = ev.unchecked_into::<MessageEvent>().data();
            Incoming::Bytes(js_sys::Uint8Array::new(&data).to_vec())
        });
        let open = on(tx.clone(), |_| Incoming::Open);
        let close = on(tx.clone(), |ev| {
            let ev = ev.unchecked_into::<web_sys::CloseEvent>();
            Incoming::Closed(format!(
                "code {}{}",
                ev.code(),
                if ev.reason().is_empty() {
                    String::new()
                } else {
                    format!(", {}", ev.reason())
                }
            ))
        });
        ws.set_onmessage(Some(message.as_ref().unchecked_ref()));
        ws.set_onopen(Some(open.as_ref().unchecked_ref()));
        ws.set_onclose(Some(close.as_ref().unchecked_ref()));
        handlers.extend([message, open, close]);
        let tick_tx = tx.clone();
        *wakes.borrow_mut() = Some(tx);
        let mut connect = Connect::retrace("retrace-browser");
        // `user:password` for a server with users, else a token. A user's
        // replies come to inboxes under a prefix of their own, so a server
        // can let each user read only their own (README: roles).
        let inbox_prefix = match token.split_once(':') {
            Some((user, _)) => format!("_INBOX_{}", crate::share::jetstream::subject_token(user)),
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
        let inbox = format!("{inbox_prefix}.{}", random_token());
        // Dropped with the socket, which stops it.
        let ticks = gloo_timers::callback::Interval::new(1_000, move || {
            let _ = tick_tx.unbounded_send(Incoming::Tick);
        });
        Ok(Socket {
            ws,
            conn: Conn::new(connect, &inbox),
            incoming,
            events: Default::default(),
            page: Default::default(),
            _handlers: handlers,
            _ticks: ticks,
            answer_ms: ANSWER_MS,
            inbox_prefix,
        })
    }

    /// Whether the server compresses its WebSocket messages (known once
    /// the socket is open).
    pub fn compressed(&self) -> bool {
        self.ws.extensions().contains("permessage-deflate")
    }

    /// Send what the client has written, in WebSocket messages of at most
    /// [`SEND_PIECE`] bytes: a server with WebSocket compression inflates
    /// each message whole and refuses one larger than its maximum payload.
    pub fn flush(&mut self) {
        let out = self.conn.take_output();
        if !out.is_empty() && self.ws.ready_state() == WebSocket::OPEN {
            for piece in out.chunks(SEND_PIECE) {
                let _ = self.ws.send_with_u8_array(piece);
            }
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

    /// The server's next word (the page's wake-ups wait meanwhile).
    pub async fn next(&mut self) -> Result<Event, String> {
        match self.pull(false).await? {
            Wake::Net(e) => Ok(e),
            _ => unreachable!("the page's wake-ups wait while pulling the server's words"),
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
        headers: Option<&crate::share::proto::Headers>,
        body: &[u8],
    ) -> Result<Message, String> {
        let id = self.conn.request(subject, headers, body);
        self.answer(id).await
    }

    /// The server's next word, or an error once `deadline` (ms, this
    /// clock) has passed without one: the page's ticks (every second) keep
    /// the clock looked at while nothing arrives.
    async fn next_before(&mut self, deadline: f64) -> Result<Event, String> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(e);
            }
            if js_sys::Date::now() > deadline {
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
        let deadline = js_sys::Date::now() + self.answer_ms;
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
        let deadline = js_sys::Date::now() + self.answer_ms;
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

impl Drop for Socket {
    fn drop(&mut self) {
        // The handlers go with this value: unhook them first, or the
        // socket's close event would call a closure already freed.
        self.ws.set_onmessage(None);
        self.ws.set_onopen(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

pub use crate::web::random_token;

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
