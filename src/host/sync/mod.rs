//! The browser's edge of the shared log's sync ([`crate::share::sync`],
//! which makes every decision): one context per browser runs it, under a
//! Web Lock per replica; this wires it to IndexedDB, the WebSocket, the
//! browser's clock and its online and offline events, and uploads a
//! browser's own log into a new shared log.

mod env;
mod socket;

use crate::log::Envelope;
use crate::share::env::Env;
use crate::share::socket::Socket;
pub use crate::share::socket::{wake, Incoming, Wakes};
use crate::share::status::{Connect, News};
pub use crate::share::sync::Replica;
use crate::share::sync::{Dial, Sync};
use crate::store::idb::IdbStore;
use crate::store::{by_stream, EventStore, StoreError};
use std::rc::Rc;

/// The browser's way to the server: its WebSocket.
struct WebDial;

impl Dial for WebDial {
    type Wire = socket::WsWire;
    fn dial(
        &self,
        server: &str,
        token: &str,
        wakes: &Wakes,
        env: Rc<dyn Env>,
    ) -> Result<Socket<socket::WsWire>, String> {
        socket::open(server, token, wakes, env)
    }
}

/// Follow and write the shared log in `store` (the replica), connected as
/// `connect` says; `wakes` is how the outbox, the user's answers to
/// conflicts and the browser going offline reach the sync. Returns when
/// the sync stops for good (said in a [`News::Status`]).
pub async fn run(store: Rc<IdbStore>, connect: Connect, replica: Rc<dyn Replica>, wakes: Wakes) {
    let say = |text: String| replica.tell(News::Status(text));
    // Every context writes into the outbox; one per browser sends it.
    if let Err(e) = store.use_outbox().await {
        say(format!("not connected: {e}"));
        return;
    }
    let lock = format!("retrace-sync:{}", store.name());
    let held = match crate::web::lock::try_take(&lock).await {
        Some(held) => held,
        None => {
            say("connected through another tab of this browser: it sends and receives this log's events, this tab shows them".into());
            match crate::web::lock::take_in_line(&lock).await {
                Some(held) => held,
                None => return,
            }
        }
    };
    // Held for this context's life: the browser lets it go when it closes.
    std::mem::forget(held);
    replica.tell(News::Syncing);
    {
        let wakes = wakes.clone();
        store.on_outbox(move || wake(&wakes, Incoming::Outbox));
    }
    {
        // The browser going offline ends the connection at once (a socket
        // may otherwise linger, half-open, until the server's next ping).
        let wakes = wakes.clone();
        crate::web::on_offline(move || {
            wake(&wakes, Incoming::Closed("this browser went offline".into()))
        });
    }
    let env: Rc<dyn Env> = Rc::new(env::WebEnv);
    Sync::new(store, connect, replica, env)
        .drive(WebDial, wakes)
        .await
}

/// Upload the log in database `from` (this browser's own) into the shared
/// log `replica` copies, which must be empty: every event keeps its id and
/// the time its log learnt of it, and all of them wait in the outbox as one
/// unit. `say` hears how it goes.
pub async fn upload(
    replica: &IdbStore,
    from: &str,
    say: &dyn Fn(String),
) -> Result<String, String> {
    let err = |e: StoreError| e.to_string();
    let empty = replica.head().await.map_err(err)? == 0
        && replica.waiting(None).await.map_err(err)?.is_empty();
    if !empty {
        return Err("only into a new, empty shared log: this one already holds events".into());
    }
    let own = IdbStore::open(from).await.map_err(err)?;
    let mut events = Vec::new();
    let mut from = 1;
    loop {
        let page = own.read_all(from, 10_000).await.map_err(err)?;
        let Some(last) = page.last().map(|e| e.seq) else {
            break;
        };
        from = last + 1;
        events.extend(page.into_iter().map(Envelope::into_new_event));
        say(format!(
            "reading this browser's own log: {} events…",
            events.len()
        ));
    }
    own.close();
    if events.is_empty() {
        return Err("this browser's own log is empty".into());
    }
    let n = events.len();
    replica.append_unit(by_stream(events)).await.map_err(err)?;
    Ok(format!(
        "{n} events of this browser's own log are in the outbox as one unit: the others see them once all are on the server"
    ))
}
