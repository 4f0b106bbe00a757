//! The NATS client protocol, both directions, as bytes: what a client
//! writes (`CONNECT`, `PUB`, `HPUB`, `SUB`, `UNSUB`, `PING`, `PONG`) and an
//! incremental parser for what the server sends (`INFO`, `MSG`, `HMSG`,
//! `PING`, `PONG`, `+OK`, `-ERR`). No I/O: the same code serves a TCP
//! socket in native tests and a WebSocket in the browser (nats-server's
//! WebSocket listener carries the very same protocol).

use serde::{Deserialize, Serialize};

/// What the server says about itself when a client connects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The server's id.
    #[serde(default)]
    pub server_id: String,
    /// nats-server's version, e.g. `2.15.1`.
    #[serde(default)]
    pub version: String,
    /// Headers (`HPUB`/`HMSG`) are supported.
    #[serde(default)]
    pub headers: bool,
    /// The largest payload the server takes, bytes.
    #[serde(default)]
    pub max_payload: u64,
    /// JetStream is enabled on this server.
    #[serde(default)]
    pub jetstream: bool,
    /// The server wants credentials.
    #[serde(default)]
    pub auth_required: bool,
}

/// How a client introduces itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connect {
    /// Acknowledge every command with `+OK` (off: errors only).
    pub verbose: bool,
    /// Strict subject checking.
    pub pedantic: bool,
    /// Whether TLS is required (the WebSocket's `wss://` does TLS itself).
    pub tls_required: bool,
    /// The client's name, shown in the server's monitoring.
    pub name: String,
    /// Client language.
    pub lang: String,
    /// Client version.
    pub version: String,
    /// Protocol level: 1 understands `INFO` updates.
    pub protocol: u8,
    /// The client sends and receives headers.
    pub headers: bool,
    /// A request nobody listens to is answered with a 503 status at once.
    pub no_responders: bool,
    /// A token, if the server wants one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    /// A user name, if the server wants one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Its password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
}

impl Connect {
    /// Retrace's introduction, with no credentials.
    pub fn retrace(name: &str) -> Connect {
        Connect {
            verbose: false,
            pedantic: false,
            tls_required: false,
            name: name.to_owned(),
            lang: "rust".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: 1,
            headers: true,
            no_responders: true,
            auth_token: None,
            user: None,
            pass: None,
        }
    }
}

/// Message headers, in order (a name may repeat), with the status line's
/// code and description if the server put one there (`503`: no responders).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    /// `NATS/1.0 <code> <description>`: the code.
    pub status: Option<u16>,
    /// The status line's description.
    pub description: String,
    /// Name and value pairs.
    pub pairs: Vec<(String, String)>,
}

impl Headers {
    /// Headers with these pairs.
    pub fn of(pairs: &[(&str, &str)]) -> Headers {
        Headers {
            status: None,
            description: String::new(),
            pairs: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The first value of `name` (names compare case-insensitively).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The header block as sent on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = b"NATS/1.0\r\n".to_vec();
        for (k, v) in &self.pairs {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// Read a header block.
    pub fn decode(bytes: &[u8]) -> Result<Headers, ProtoError> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| ProtoError::bad("headers are not UTF-8"))?;
        let mut lines = text.split("\r\n");
        let first = lines.next().unwrap_or_default();
        let rest = first
            .strip_prefix("NATS/1.0")
            .ok_or_else(|| ProtoError::bad("headers do not start with NATS/1.0"))?
            .trim();
        let mut headers = Headers::default();
        if !rest.is_empty() {
            let (code, description) = rest.split_once(' ').unwrap_or((rest, ""));
            headers.status = code.parse().ok();
            headers.description = description.trim().to_owned();
        }
        for line in lines.filter(|l| !l.is_empty()) {
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| ProtoError::bad("a header line without a colon"))?;
            headers
                .pairs
                .push((k.trim().to_owned(), v.trim().to_owned()));
        }
        Ok(headers)
    }
}

/// A message delivered to a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its subject.
    pub subject: String,
    /// The subscription it was delivered to.
    pub sid: u64,
    /// Where to answer, if anywhere.
    pub reply: Option<String>,
    /// Its headers (`HMSG`), if any.
    pub headers: Option<Headers>,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// One thing the server said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerOp {
    /// `INFO {json}`: at connect, and again when the cluster changes.
    Info(Box<ServerInfo>),
    /// `MSG` or `HMSG`.
    Msg(Message),
    /// The server checks the client is alive: answer `PONG`.
    Ping,
    /// The answer to our `PING`.
    Pong,
    /// `+OK` (verbose mode only).
    Ok,
    /// `-ERR '<text>'`: most close the connection (bad credentials, ...).
    Err(String),
}

/// The server sent something this client cannot read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the server sent something unreadable: {0}")]
pub struct ProtoError(pub String);

impl ProtoError {
    fn bad(why: &str) -> ProtoError {
        ProtoError(why.to_owned())
    }
}

/// The longest control line accepted (`INFO` carries the most: cluster URLs).
const MAX_LINE: usize = 64 * 1024;

/// Reads server operations out of bytes as they arrive, in pieces of any
/// size.
#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
    start: usize,
}

impl Parser {
    /// Take more bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete operation, or None until more bytes arrive.
    pub fn next_op(&mut self) -> Result<Option<ServerOp>, ProtoError> {
        let pending = &self.buf[self.start..];
        let Some(end) = pending.windows(2).position(|w| w == b"\r\n") else {
            if pending.len() > MAX_LINE {
                return Err(ProtoError::bad("a control line longer than 64 KiB"));
            }
            return Ok(None);
        };
        let line = std::str::from_utf8(&pending[..end])
            .map_err(|_| ProtoError::bad("a control line that is not UTF-8"))?;
        let (verb, args) = line.split_once([' ', '\t']).unwrap_or((line, ""));
        let args = args.trim();
        let after_line = self.start + end + 2;
        let op = match verb.to_ascii_uppercase().as_str() {
            "PING" => ServerOp::Ping,
            "PONG" => ServerOp::Pong,
            "+OK" => ServerOp::Ok,
            "-ERR" => ServerOp::Err(args.trim_matches('\'').to_owned()),
            "INFO" => ServerOp::Info(Box::new(
                serde_json::from_str(args).map_err(|e| ProtoError(format!("INFO: {e}")))?,
            )),
            "MSG" | "HMSG" => {
                let with_headers = verb.eq_ignore_ascii_case("HMSG");
                let parts: Vec<&str> = args.split_ascii_whitespace().collect();
                let sizes = if with_headers { 2 } else { 1 };
                if parts.len() != 2 + sizes && parts.len() != 3 + sizes {
                    return Err(ProtoError(format!("{verb} with {} arguments", parts.len())));
                }
                let number = |s: &str| {
                    s.parse::<usize>()
                        .map_err(|_| ProtoError(format!("{verb}: {s} is not a number")))
                };
                let total = number(parts[parts.len() - 1])?;
                let header_len = if with_headers {
                    number(parts[parts.len() - 2])?
                } else {
                    0
                };
                if header_len > total {
                    return Err(ProtoError(format!(
                        "{verb}: headers longer than the message"
                    )));
                }
                // The payload and its CRLF must be here too.
                if self.buf.len() < after_line + total + 2 {
                    return Ok(None);
                }
                let body = &self.buf[after_line..after_line + total];
                if &self.buf[after_line + total..after_line + total + 2] != b"\r\n" {
                    return Err(ProtoError(format!(
                        "{verb}: the payload is not followed by CRLF"
                    )));
                }
                let message = Message {
                    subject: parts[0].to_owned(),
                    sid: number(parts[1])? as u64,
                    reply: (parts.len() == 3 + sizes).then(|| parts[2].to_owned()),
                    headers: if with_headers {
                        Some(Headers::decode(&body[..header_len])?)
                    } else {
                        None
                    },
                    payload: body[header_len..].to_vec(),
                };
                self.start = after_line + total + 2;
                return Ok(Some(ServerOp::Msg(message)));
            }
            other => return Err(ProtoError(format!("unknown operation {other:?}"))),
        };
        self.start = after_line;
        Ok(Some(op))
    }
}

/// `CONNECT {json}`.
pub fn connect(options: &Connect) -> Vec<u8> {
    let mut out = b"CONNECT ".to_vec();
    out.extend_from_slice(&serde_json::to_vec(options).expect("plain data serialises"));
    out.extend_from_slice(b"\r\n");
    out
}

/// `PUB` (no headers) or `HPUB`.
pub fn publish(
    subject: &str,
    reply: Option<&str>,
    headers: Option<&Headers>,
    payload: &[u8],
) -> Vec<u8> {
    let reply = reply.map(|r| format!(" {r}")).unwrap_or_default();
    let mut out = match headers {
        None => format!("PUB {subject}{reply} {}\r\n", payload.len()).into_bytes(),
        Some(h) => {
            let block = h.encode();
            let mut out = format!(
                "HPUB {subject}{reply} {} {}\r\n",
                block.len(),
                block.len() + payload.len()
            )
            .into_bytes();
            out.extend_from_slice(&block);
            out
        }
    };
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    out
}

/// `SUB <subject> <sid>`.
pub fn subscribe(subject: &str, sid: u64) -> Vec<u8> {
    format!("SUB {subject} {sid}\r\n").into_bytes()
}

/// `UNSUB <sid>`.
pub fn unsubscribe(sid: u64) -> Vec<u8> {
    format!("UNSUB {sid}\r\n").into_bytes()
}

/// `PING`.
pub const PING: &[u8] = b"PING\r\n";
/// `PONG`.
pub const PONG: &[u8] = b"PONG\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    const WIRE: &[u8] = b"INFO {\"server_id\":\"S1\",\"version\":\"2.15.1\",\"headers\":true,\"max_payload\":1048576,\"jetstream\":true}\r\n\
PING\r\n\
MSG log.a 7 5\r\nhello\r\n\
MSG log.b 8 _INBOX.x 0\r\n\r\n\
HMSG log.c 9 _INBOX.y 30 33\r\nNATS/1.0\r\nNats-Msg-Id: e-1\r\n\r\nabc\r\n\
HMSG _INBOX.z 3 30 30\r\nNATS/1.0 503 No Responders\r\n\r\n\r\n\
+OK\r\n\
-ERR 'Authorization Violation'\r\n";

    fn all(parser: &mut Parser) -> Vec<ServerOp> {
        let mut out = Vec::new();
        while let Some(op) = parser.next_op().unwrap() {
            out.push(op);
        }
        out
    }

    #[test]
    fn every_server_operation_is_read_whatever_the_pieces_it_arrives_in() {
        let mut whole = Parser::default();
        whole.push(WIRE);
        let ops = all(&mut whole);
        assert_eq!(ops.len(), 8);
        let ServerOp::Info(info) = &ops[0] else {
            panic!("{ops:?}")
        };
        assert!(info.jetstream && info.headers);
        assert_eq!(info.max_payload, 1_048_576);
        assert_eq!(ops[1], ServerOp::Ping);
        let ServerOp::Msg(m) = &ops[2] else { panic!() };
        assert_eq!(
            (m.subject.as_str(), m.sid, m.payload.as_slice()),
            ("log.a", 7, &b"hello"[..])
        );
        let ServerOp::Msg(m) = &ops[3] else { panic!() };
        assert_eq!((m.reply.as_deref(), m.payload.len()), (Some("_INBOX.x"), 0));
        let ServerOp::Msg(m) = &ops[4] else { panic!() };
        assert_eq!(m.headers.as_ref().unwrap().get("nats-msg-id"), Some("e-1"));
        assert_eq!(m.payload, b"abc");
        let ServerOp::Msg(m) = &ops[5] else { panic!() };
        let h = m.headers.as_ref().unwrap();
        assert_eq!(
            (h.status, h.description.as_str()),
            (Some(503), "No Responders")
        );
        assert_eq!(ops[6], ServerOp::Ok);
        assert_eq!(ops[7], ServerOp::Err("Authorization Violation".into()));
        // Cut at every place, fed in two pieces: the same operations.
        for cut in 0..WIRE.len() {
            let mut p = Parser::default();
            p.push(&WIRE[..cut]);
            let mut got = all(&mut p);
            p.push(&WIRE[cut..]);
            got.extend(all(&mut p));
            assert_eq!(got, ops, "cut at {cut}");
        }
        // And a byte at a time.
        let mut p = Parser::default();
        let mut got = Vec::new();
        for b in WIRE {
            p.push(&[*b]);
            got.extend(all(&mut p));
        }
        assert_eq!(got, ops);
    }

    #[test]
    fn what_the_client_writes_is_what_the_parser_reads() {
        let h = Headers::of(&[
            ("Nats-Msg-Id", "e-9"),
            ("Nats-Expected-Last-Subject-Sequence", "4"),
        ]);
        let wire = publish("log.s", Some("_INBOX.r"), Some(&h), b"{\"x\":1}");
        // The server echoes a publish as HMSG to a subscriber: same shape but with a sid.
        let echoed = String::from_utf8(wire)
            .unwrap()
            .replacen("HPUB log.s", "HMSG log.s 1", 1);
        let mut p = Parser::default();
        p.push(echoed.as_bytes());
        let Some(ServerOp::Msg(m)) = p.next_op().unwrap() else {
            panic!()
        };
        assert_eq!(m.headers, Some(h));
        assert_eq!(m.payload, b"{\"x\":1}");
        assert_eq!(publish("a", None, None, b"xy"), b"PUB a 2\r\nxy\r\n");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b"WHAT\r\n"[..],
            b"MSG a\r\n",
            b"HMSG a 1 9 3\r\nabc\r\n",
            b"MSG a 1 3\r\nabcXY",
            b"INFO {\r\n",
        ] {
            let mut p = Parser::default();
            p.push(bad);
            assert!(p.next_op().is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut p = Parser::default();
        p.push(&vec![b'x'; MAX_LINE + 1]);
        assert!(p.next_op().is_err(), "an endless line");
    }
}
