//! A NATS connection without I/O: give it the server's bytes as they
//! arrive, take the bytes to send, and read what happened. Requests share
//! one wildcard inbox subscription and are told apart by the inbox's last
//! token, so many can be in flight at once (a push pipelines its publishes
//! and reads the acknowledgements as they come). The TCP socket of the
//! native tests and the browser's WebSocket drive the same code.

use super::proto::{self, Connect, Headers, Message, Parser, ProtoError, ServerInfo, ServerOp};
use std::collections::BTreeSet;

/// What the connection saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The server accepted the connection (its `PONG` to our first `PING`).
    Connected(Box<ServerInfo>),
    /// The answer to request `id`.
    Answer {
        /// The request's id.
        id: u64,
        /// The answer.
        message: Message,
    },
    /// A message on one of our own subscriptions.
    Message(Message),
    /// The server refused something (`-ERR`), e.g. the credentials.
    ServerError(String),
}

/// Where the connection is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for the server's `INFO`.
    Greeting,
    /// `CONNECT` and `PING` sent; waiting for `PONG`.
    Introduced,
    /// Ready.
    Ready,
}

/// The subscription id of the shared inbox.
const INBOX_SID: u64 = 1;

/// A connection's state.
pub struct Conn {
    connect: Connect,
    parser: Parser,
    out: Vec<u8>,
    state: State,
    info: Option<ServerInfo>,
    inbox: String,
    next_id: u64,
    next_sid: u64,
    in_flight: BTreeSet<u64>,
}

impl Conn {
    /// A connection that will introduce itself with `connect`; `inbox` is a
    /// prefix no other client uses (e.g. `_INBOX.` and random letters).
    pub fn new(connect: Connect, inbox: &str) -> Conn {
        Conn {
            connect,
            parser: Parser::default(),
            out: Vec::new(),
            state: State::Greeting,
            info: None,
            inbox: inbox.to_owned(),
            next_id: 0,
            next_sid: INBOX_SID,
            in_flight: BTreeSet::new(),
        }
    }

    /// The server's `INFO`, once it has been read.
    pub fn info(&self) -> Option<&ServerInfo> {
        self.info.as_ref()
    }

    /// Whether the server has accepted the connection.
    pub fn ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Requests sent and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The bytes to send now.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Send a request: a publish whose answer comes back to our inbox.
    /// Returns its id (see [`Event::Answer`]). Sent once the connection is
    /// ready; before, it waits in the output.
    pub fn request(&mut self, subject: &str, headers: Option<&Headers>, payload: &[u8]) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let reply = format!("{}.{id}", self.inbox);
        self.out
            .extend_from_slice(&proto::publish(subject, Some(&reply), headers, payload));
        self.in_flight.insert(id);
        id
    }

    /// Forget a request (its answer will be dropped if it comes).
    pub fn forget(&mut self, id: u64) {
        self.in_flight.remove(&id);
    }

    /// Publish with no answer expected.
    pub fn publish(&mut self, subject: &str, payload: &[u8]) {
        self.out
            .extend_from_slice(&proto::publish(subject, None, None, payload));
    }

    /// Subscribe to `subject`; its messages come as [`Event::Message`].
    pub fn subscribe(&mut self, subject: &str) -> u64 {
        self.next_sid += 1;
        self.out
            .extend_from_slice(&proto::subscribe(subject, self.next_sid));
        self.next_sid
    }

    /// End subscription `sid`.
    pub fn unsubscribe(&mut self, sid: u64) {
        self.out.extend_from_slice(&proto::unsubscribe(sid));
    }

    /// Take bytes from the server.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Vec<Event>, ProtoError> {
        self.parser.push(bytes);
        let mut events = Vec::new();
        while let Some(op) = self.parser.next_op()? {
            match op {
                ServerOp::Info(info) => {
                    if self.state == State::Greeting {
                        // Introduce ourselves and subscribe to our inbox
                        // ahead of anything queued meanwhile.
                        let mut first = proto::connect(&self.connect);
                        first.extend_from_slice(&proto::subscribe(
                            &format!("{}.*", self.inbox),
                            INBOX_SID,
                        ));
                        first.extend_from_slice(proto::PING);
                        first.append(&mut self.out);
                        self.out = first;
                        self.state = State::Introduced;
                    }
                    self.info = Some(*info);
                }
                ServerOp::Ping => self.out.extend_from_slice(proto::PONG),
                ServerOp::Pong => {
                    if self.state == State::Introduced {
                        self.state = State::Ready;
                        events.push(Event::Connected(Box::new(
                            self.info.clone().unwrap_or_default(),
                        )));
                    }
                }
                ServerOp::Ok => {}
                ServerOp::Err(e) => events.push(Event::ServerError(e)),
                ServerOp::Msg(message) => {
                    if message.sid == INBOX_SID {
                        let id = message
                            .subject
                            .rsplit('.')
                            .next()
                            .and_then(|t| t.parse::<u64>().ok());
                        if let Some(id) = id.filter(|id| self.in_flight.remove(id)) {
                            events.push(Event::Answer { id, message });
                        }
                    } else {
                        events.push(Event::Message(message));
                    }
                }
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_introduces_itself_then_matches_answers_to_requests_in_any_order() {
        let mut c = Conn::new(Connect::retrace("t"), "_INBOX.abc");
        let a = c.request("$JS.API.STREAM.INFO.X", None, b"{}");
        assert!(!c.ready());
        let events = c
            .receive(b"INFO {\"server_id\":\"S\",\"version\":\"2.15.1\",\"jetstream\":true,\"headers\":true}\r\n")
            .unwrap();
        assert!(events.is_empty());
        let out = String::from_utf8(c.take_output()).unwrap();
        let order: Vec<&str> = out
            .split("\r\n")
            .filter(|l| !l.is_empty() && !l.starts_with('{'))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            order,
            ["CONNECT", "SUB", "PING", "PUB"],
            "introduced before the queued request: {out}"
        );
        assert!(out.contains("SUB _INBOX.abc.* 1\r\n"));
        let b = c.request("x", None, b"");
        let events = c
            .receive(format!("PONG\r\nPING\r\nMSG _INBOX.abc.{b} 1 2\r\nhi\r\nMSG _INBOX.abc.{a} 1 2\r\nyo\r\nMSG _INBOX.abc.{a} 1 0\r\n\r\n").as_bytes())
            .unwrap();
        assert!(matches!(&events[0], Event::Connected(info) if info.jetstream));
        assert!(
            matches!(&events[1], Event::Answer { id, message } if *id == b && message.payload == b"hi")
        );
        assert!(
            matches!(&events[2], Event::Answer { id, message } if *id == a && message.payload == b"yo")
        );
        assert_eq!(events.len(), 3, "a second answer to one request is dropped");
        assert_eq!(c.in_flight(), 0);
        assert!(
            String::from_utf8(c.take_output())
                .unwrap()
                .ends_with("PONG\r\n"),
            "the server's PING answered"
        );
    }
}
