//! What the page and the sync say to each other, as data: where the shared
//! log is ([`Settings`]), what the sync needs to connect ([`Connect`]), and
//! what it reports ([`News`]) — the status in words, its state as numbers,
//! the cases in conflict, where this browser stands on the loop's lease.
//! Pure, so the sync can run on the page or in the engine's worker alike.

use super::lease::{Holder, Standing};
use super::outbox::Conflict;
use serde::{Deserialize, Serialize};

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

/// Everything the sync is given to connect: the settings and what the
/// browser session keeps beside them (the token and passphrase, never
/// written into the log, an export or localStorage).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connect {
    /// Where.
    pub settings: Settings,
    /// A token, or `user:password`, or nothing.
    pub token: String,
    /// The team's passphrase, or nothing (a plain log).
    pub passphrase: String,
    /// Events per pack this browser puts on the server.
    pub pack_events: u64,
    /// This browser, as the loop's lease names it.
    pub holder: Holder,
}

/// Where the sync's connection stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Link {
    /// Reaching the server for the first time.
    #[default]
    Connecting,
    /// Connected and following the log.
    Connected,
    /// The connection failed or closed: it tries again by itself.
    Offline,
    /// The server refused for a reason trying again does not mend (a
    /// wrong token, no JetStream, a passphrase that does not open the
    /// log): the status line says what to do.
    Stopped,
}

impl Link {
    /// Its name in the page's `data-link` attribute.
    pub fn name(self) -> &'static str {
        match self {
            Link::Connecting => "connecting",
            Link::Connected => "connected",
            Link::Offline => "offline",
            Link::Stopped => "stopped",
        }
    }
}

/// The sync's state as numbers, for the page's `data-*` attributes (what
/// the tests and any script read; the status line says it in words).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Where the connection stands.
    pub link: Link,
    /// Connected to the server now.
    pub connected: bool,
    /// The server lets this user only read.
    pub read_only: bool,
    /// Events this browser holds back until an import it receives is
    /// complete.
    pub held_back: u64,
    /// Events packed on the server, as last heard.
    pub packed: u64,
    /// Events this copy read from packs rather than the stream.
    pub from_packs: u64,
    /// Events on the server, as last heard.
    pub on_server: Option<u64>,
    /// Events received since the page opened.
    pub received: u64,
    /// Events this browser sent since the page opened.
    pub sent: u64,
    /// Events on the server not yet in this copy.
    pub waiting: u64,
    /// Events in the outbox, not yet stored on the server.
    pub outbox: u64,
    /// Cases in conflict.
    pub conflicts: u64,
    /// Messages refused here since the page opened.
    pub refused: u64,
}

/// The loop's lease while this browser holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// This browser.
    pub holder: Holder,
    /// The lease's revision when it was taken: its term's name.
    pub taken: u64,
    /// How long it is surely held from when this was said, ms.
    pub left_ms: f64,
}

/// What the sync reports, each when it changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum News {
    /// This context runs the sync (one per browser does).
    Syncing,
    /// The status in words: `connected …` while live; otherwise what
    /// happened and what to do.
    Status(String),
    /// The state as numbers.
    Counts(Counts),
    /// Events on the server, as last heard.
    OnServer(u64),
    /// The cases in conflict now.
    Conflicts(Vec<Conflict>),
    /// Where this browser stands on the loop's lease.
    Standing(Standing),
    /// The lease while this browser holds it (said every round).
    Lease(Option<Held>),
    /// The server lets this user only read: nothing written here can be
    /// sent, so nothing more is written (why, for the user).
    ReadOnly(String),
    /// How an upload of this browser's own log goes, in words.
    Upload(String),
}
