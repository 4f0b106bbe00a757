//! The shared log's server over the browser's WebSocket: the [`Wire`] a
//! window's or a worker's socket gives the sync's connection, and the
//! connection's one-second ticks.

use crate::share::env::Env;
use crate::share::socket::{Incoming, Socket, Wakes, Wire};
use futures::channel::mpsc;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, MessageEvent, WebSocket};

/// The largest WebSocket message sent. The NATS protocol is a byte stream,
/// so a message may end anywhere; nats-server's default maximum payload is
/// 1 MB.
const SEND_PIECE: usize = 64 * 1024;

/// A WebSocket, and the handlers that put what it hears in the queue.
pub struct WsWire {
    ws: WebSocket,
    _handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    _ticks: gloo_timers::callback::Interval,
}

impl Wire for WsWire {
    /// In WebSocket messages of at most [`SEND_PIECE`] bytes: a server with
    /// WebSocket compression inflates each message whole and refuses one
    /// larger than its maximum payload.
    fn send(&mut self, bytes: &[u8]) {
        if self.ws.ready_state() == WebSocket::OPEN {
            for piece in bytes.chunks(SEND_PIECE) {
                let _ = self.ws.send_with_u8_array(piece);
            }
        }
    }

    fn compressed(&self) -> bool {
        self.ws.extensions().contains("permessage-deflate")
    }
}

/// Open a connection to `server` (a `ws://` or `wss://` address); the
/// others' wake-ups reach it through `wakes` until the next one opens.
pub fn open(
    server: &str,
    token: &str,
    wakes: &Wakes,
    env: Rc<dyn Env>,
) -> Result<Socket<WsWire>, String> {
    let ws = WebSocket::new(server).map_err(|e| {
        format!("{server} is not a WebSocket address ({e:?}): use ws://host:port or wss://host")
    })?;
    ws.set_binary_type(BinaryType::Arraybuffer);
    let (tx, incoming) = mpsc::unbounded();
    let on = |tx: mpsc::UnboundedSender<Incoming>, f: fn(JsValue) -> Incoming| {
        Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
            let _ = tx.unbounded_send(f(ev));
        })
    };
    let message = on(tx.clone(), |ev| {
        let data = ev.unchecked_into::<MessageEvent>().data();
        Incoming::Bytes(js_sys::Uint8Array::new(&data).to_vec())
    });
    let opened = on(tx.clone(), |_| Incoming::Open);
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
    ws.set_onopen(Some(opened.as_ref().unchecked_ref()));
    ws.set_onclose(Some(close.as_ref().unchecked_ref()));
    let tick_tx = tx.clone();
    *wakes.borrow_mut() = Some(tx);
    // Dropped with the wire, which stops it.
    let ticks = gloo_timers::callback::Interval::new(1_000, move || {
        let _ = tick_tx.unbounded_send(Incoming::Tick);
    });
    let wire = WsWire {
        ws,
        _handlers: vec![message, opened, close],
        _ticks: ticks,
    };
    Ok(Socket::new(wire, incoming, token, env))
}

impl Drop for WsWire {
    fn drop(&mut self) {
        // The handlers go with this value: unhook them first, or the
        // socket's close event would call a closure already freed.
        self.ws.set_onmessage(None);
        self.ws.set_onopen(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}
