//! A shared log in the page: the settings card (server, log name, token),
//! and, while connected, a replica of the shared log in a local database of
//! its own beside this browser's own log — downloaded from the server on
//! joining, then followed live. The page switches to the replica when it
//! connects and back to its own log when it disconnects (a reload each
//! time: every view, the loop's worker and the snapshots follow the
//! database the page opened). The replica is written only by the sync, in
//! the server's order, so `seq` is the stream's sequence in every browser.
//!
//! This step reads: writes from a browser into a shared log (the outbox)
//! come next, and until then the replica refuses local appends in words.

use super::Log;
use crate::share::client::{Conn, Event};
use crate::share::consumer::{self, delivery, Delivery};
use crate::share::jetstream::{self, answer, StreamConfig, StreamInfo};
use crate::share::proto::{Connect, Message};
use crate::store::{by_stream, EventStore};
use futures::channel::mpsc;
use futures::StreamExt;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, MessageEvent, WebSocket};

const SETTINGS: &str = "retrace.shared";
const TOKEN: &str = "retrace.shared.token";
/// JetStream's code for a stream that does not exist.
const STREAM_NOT_FOUND: u32 = 10059;
/// Events appended locally per commit, at most.
const COMMIT_EVENTS: usize = 2_000;

/// Where the shared log is and whether this browser is connected to it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// `ws://…` or `wss://…`.
    pub server: String,
    /// The shared log's name.
    pub log: String,
    /// Connected: the page opens the replica.
    pub on: bool,
}

fn local() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn session() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

/// The saved settings (the token is kept apart, for this browser session
/// only: it is never written into the log, an export or localStorage).
pub fn settings() -> Settings {
    local()
        .and_then(|s| s.get_item(SETTINGS).ok().flatten())
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default()
}

fn save(settings: &Settings, token: &str) {
    if let Some(s) = local() {
        let _ = s.set_item(
            SETTINGS,
            &serde_json::to_string(settings).unwrap_or_default(),
        );
    }
    if let Some(s) = session() {
        let _ = s.set_item(TOKEN, token);
    }
}

fn token() -> String {
    session()
        .and_then(|s| s.get_item(TOKEN).ok().flatten())
        .unwrap_or_default()
}

/// The database this page opens: this browser's own log, or the replica
/// of the shared log it is connected to.
pub fn database() -> String {
    let s = settings();
    if s.on && !s.log.is_empty() {
        format!("retrace-shared-{}", jetstream::subject_token(&s.log))
    } else {
        super::DATABASE.to_owned()
    }
}

/// Whether the page shows a shared log.
pub fn connected() -> bool {
    settings().on
}

/// The sync's state, for the card and the header.
#[derive(Clone, Copy)]
pub struct Shared {
    /// `connected …` while live; otherwise what happened and what to do.
    pub status: RwSignal<String>,
}

impl Shared {
    /// The state, provided once by the app.
    pub fn new() -> Shared {
        Shared {
            status: RwSignal::new(if connected() {
                "connecting…".into()
            } else {
                "not connected: this page shows this browser's own log".into()
            }),
        }
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new()
    }
}

/// Connect (save, switch to the replica) or disconnect (back to the own
/// log): a reload either way.
fn switch(settings: Settings, token: &str) {
    save(&settings, token);
    if let Some(w) = web_sys::window() {
        let _ = w.location().reload();
    }
}

/// What the socket said.
enum Incoming {
    Bytes(Vec<u8>),
    Open,
    Closed(String),
}

/// The connection over a WebSocket.
struct Socket {
    ws: WebSocket,
    conn: Conn,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    events: std::collections::VecDeque<Event>,
    _handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Socket {
    fn open(server: &str, token: &str) -> Result<Socket, String> {
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
        let mut connect = Connect::retrace("retrace-browser");
        if !token.is_empty() {
            connect.auth_token = Some(token.to_owned());
        }
        let inbox = format!("_INBOX.{}", random_token());
        Ok(Socket {
            ws,
            conn: Conn::new(connect, &inbox),
            incoming,
            events: Default::default(),
            _handlers: handlers,
        })
    }

    fn flush(&mut self) {
        let out = self.conn.take_output();
        if !out.is_empty() && self.ws.ready_state() == WebSocket::OPEN {
            let _ = self.ws.send_with_u8_array(&out);
        }
    }

    /// The next event, waiting for the server as long as it takes.
    async fn next(&mut self) -> Result<Event, String> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(e);
            }
            self.flush();
            match self.incoming.next().await {
                Some(Incoming::Bytes(b)) => {
                    let events = self.conn.receive(&b).map_err(|e| e.to_string())?;
                    self.events.extend(events);
                    self.flush();
                }
                Some(Incoming::Open) => self.flush(),
                Some(Incoming::Closed(why)) => return Err(why),
                None => return Err("closed".into()),
            }
        }
    }

    /// Whether more of the server's words are already here (read without
    /// waiting).
    fn more_waiting(&mut self) -> bool {
        while let Ok(item) = self.incoming.try_recv() {
            match item {
                Incoming::Bytes(b) => match self.conn.receive(&b) {
                    Ok(events) => self.events.extend(events),
                    Err(_) => return true, // next() reports it
                },
                Incoming::Open => {}
                Incoming::Closed(why) => {
                    self.events
                        .push_back(Event::ServerError(format!("closed: {why}")));
                }
            }
        }
        !self.events.is_empty()
    }

    /// Ask and wait for the answer (deliveries meanwhile are kept).
    async fn request(&mut self, subject: &str, body: &[u8]) -> Result<Message, String> {
        let id = self.conn.request(subject, None, body);
        let mut kept = Vec::new();
        let answer = loop {
            match self.next().await? {
                Event::Answer { id: a, message } if a == id => break message,
                Event::ServerError(e) => return Err(refused(&e)),
                other => kept.push(other),
            }
        };
        for e in kept.into_iter().rev() {
            self.events.push_front(e);
        }
        Ok(answer)
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

fn random_token() -> String {
    let mut bytes = [0u8; 8];
    if let Some(c) = web_sys::window().and_then(|w| w.crypto().ok()) {
        let _ = c.get_random_values_with_u8_array(&mut bytes);
    }
    crate::util::hex(&bytes)
}

fn refused(e: &str) -> String {
    if e.to_ascii_lowercase().contains("authorization") {
        "the server refused this browser: the token is wrong or missing (Settings → Shared log → Token). The local log is untouched.".into()
    } else if e.to_ascii_lowercase().contains("permissions violation") {
        format!("the server does not allow this ({e}): this user may only read this log")
    } else {
        format!("the server said: {e}")
    }
}

/// Follow the shared log the page is connected to, into the replica.
pub async fn run(log: Log, shared: Shared) {
    let settings = settings();
    let Some(store) = log.get() else { return };
    store.set_read_only(Some(format!(
        "This page shows the shared log “{}”; writing to a shared log from the browser comes in the next version. Disconnect (Settings → Shared log) to write to this browser's own log.",
        settings.log
    )));
    let status = shared.status;
    if let Err(why) = follow(&settings, &store, log, status).await {
        status.set(format!("not connected: {why}"));
    }
}

async fn follow(
    settings: &Settings,
    store: &crate::store::idb::IdbStore,
    log: Log,
    status: RwSignal<String>,
) -> Result<(), String> {
    let server = &settings.server;
    let unreachable = |why: String| {
        format!("could not reach {server} ({why}): is nats-server running there with WebSocket and JetStream on? The local log is untouched.")
    };
    let mut socket = Socket::open(server, &token())?;
    let info = loop {
        match socket.next().await.map_err(unreachable)? {
            Event::Connected(info) => break info,
            Event::ServerError(e) => return Err(refused(&e)),
            _ => {}
        }
    };
    if !info.jetstream {
        return Err(format!(
            "{server} has no JetStream (nats-server {}): start it with -js (or `make shared-server`). The local log is untouched.",
            info.version
        ));
    }
    let config = StreamConfig::for_log(&settings.log, 1);
    let asked = socket
        .request(&jetstream::info_subject(&config.name), b"{}")
        .await?;
    let stream: StreamInfo = match answer::<StreamInfo>(&asked.payload)? {
        Ok(info) => info,
        Err(e) if e.err_code == STREAM_NOT_FOUND => {
            let body = serde_json::to_vec(&config).map_err(|e| e.to_string())?;
            let created = socket
                .request(&jetstream::create_subject(&config.name), &body)
                .await?;
            answer::<StreamInfo>(&created.payload)?
                .map_err(|e| format!("the server would not create the shared log: {e}"))?
        }
        Err(e) => return Err(format!("the server would not describe the shared log: {e}")),
    };
    let mut on_server = stream.state.last_seq;
    let mut head = store.head().await.map_err(|e| e.to_string())?;
    if head > on_server {
        return Err(format!(
            "this browser's copy of “{}” holds {head} events, the server {on_server}: the server's log was replaced. Disconnect, delete this browser's copy (Settings), and connect again.",
            settings.log
        ));
    }
    let inbox = format!("_INBOX.{}.deliver", random_token());
    let sid = socket.conn.subscribe(&inbox);
    let body = serde_json::to_vec(&consumer::ordered(&config.name, &inbox, head + 1))
        .map_err(|e| e.to_string())?;
    let created = socket
        .request(&consumer::create_subject(&config.name), &body)
        .await?;
    answer::<serde_json::Value>(&created.payload)?
        .map_err(|e| format!("the server would not deliver the shared log: {e}"))?;
    let received_from = head;
    let say = |head: u64, on_server: u64| {
        let waiting = on_server.saturating_sub(head);
        format!(
            "connected to {server}: shared log “{}”, {on_server} events on the server; {} received, 0 sent, {waiting} waiting",
            settings.log,
            head - received_from,
        )
    };
    status.set(say(head, on_server));
    let mut batch = Vec::new();
    loop {
        let event = socket.next().await.map_err(|why| format!("the connection to {server} closed ({why}); reload to connect again. The local copy keeps what it received."))?;
        match event {
            Event::Message(m) if m.sid == sid => match delivery(&m)? {
                Delivery::Event {
                    seq,
                    stored_at,
                    shared,
                } => {
                    let expected = head + batch.len() as u64 + 1;
                    if seq != expected {
                        return Err(format!(
                            "the server skipped from event {} to {seq}; reload to fetch again",
                            expected - 1
                        ));
                    }
                    let mut event = shared.event;
                    event.recorded_at.get_or_insert(stored_at);
                    batch.push((shared.stream, event));
                    on_server = on_server.max(seq);
                }
                Delivery::FlowControl(reply) => socket.conn.publish(&reply, b""),
                Delivery::Heartbeat => {}
            },
            Event::ServerError(e) => return Err(refused(&e)),
            _ => {}
        }
        // Commit once nothing more is already here (or the batch is full).
        if !batch.is_empty() && (batch.len() >= COMMIT_EVENTS || !socket.more_waiting()) {
            let n = batch.len() as u64;
            let committed = store
                .append_replicated(by_stream(std::mem::take(&mut batch)))
                .await
                .map_err(|e| e.to_string())?;
            if committed.last_seq != head + n {
                return Err(format!(
                    "this browser's copy is out of step with the server (event {} here, {} there): disconnect, delete the copy, connect again",
                    committed.last_seq,
                    head + n
                ));
            }
            head = committed.last_seq;
            log.head.update(|h| *h = (*h).max(head));
            status.set(say(head, on_server));
        }
    }
}

/// The settings card.
#[component]
pub fn SharedLogCard() -> impl IntoView {
    let shared = expect_context::<Shared>();
    let saved = settings();
    let server = RwSignal::new(if saved.server.is_empty() {
        "ws://127.0.0.1:4223".to_string()
    } else {
        saved.server.clone()
    });
    let name = RwSignal::new(if saved.log.is_empty() {
        "team".to_string()
    } else {
        saved.log.clone()
    });
    let token_value = RwSignal::new(token());
    let on = saved.on;
    let connect = move |_| {
        let s = Settings {
            server: server.get_untracked().trim().to_owned(),
            log: name.get_untracked().trim().to_owned(),
            on: true,
        };
        if !(s.server.starts_with("ws://") || s.server.starts_with("wss://")) {
            shared
                .status
                .set("not connected: the server's address starts with ws:// or wss://".into());
            return;
        }
        if s.log.is_empty() {
            shared
                .status
                .set("not connected: give the shared log a name".into());
            return;
        }
        switch(s, &token_value.get_untracked());
    };
    let disconnect = move |_| {
        let s = Settings {
            on: false,
            ..settings()
        };
        switch(s, &token_value.get_untracked());
    };
    view! {
        <section class="card" aria-labelledby="shared-heading">
            <h2 id="shared-heading">"Shared log"</h2>
            <p class="hint">"Work on one log with your team through a NATS JetStream server (`make shared-server` starts one here). Each shared log is a copy in this browser beside its own log, which stays as it is."</p>
            <div class="form-row">
                <label>"Server " <input type="url" data-testid="shared-server" prop:value=move || server.get() on:input=move |ev| server.set(event_target_value(&ev)) disabled=on /></label>
                <label>"Log name " <input type="text" data-testid="shared-log" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) disabled=on /></label>
                <label>"Token " <input type="password" data-testid="shared-token" autocomplete="off" prop:value=move || token_value.get() on:input=move |ev| token_value.set(event_target_value(&ev)) disabled=on /></label>
            </div>
            <div class="actions">
                <button data-testid="shared-connect" on:click=connect disabled=on>"Connect"</button>
                <button data-testid="shared-disconnect" on:click=disconnect disabled=!on>"Disconnect"</button>
            </div>
            <p data-testid="sync-status" aria-live="polite">{move || shared.status.get()}</p>
        </section>
    }
}
