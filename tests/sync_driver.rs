//! The shared log's sync driver (`share::sync`), run natively against a
//! real nats-server over TCP: the same code the engine's worker runs over
//! its WebSocket, with the log in memory instead of IndexedDB. Browsers
//! here are `Sync`s on one thread, each with its own store, as tabs in
//! different browsers would be.
#![cfg(not(target_arch = "wasm32"))]

#[path = "support/driver.rs"]
mod driver;
#[path = "support/nats.rs"]
mod nats;

use driver::{events, run_until, Browser};
use futures::executor::LocalPool;
use nats::{serial, Server};
use retrace::share::socket::{wake, Incoming};
use retrace::share::status::News;
use retrace::store::{ExpectedVersion, StreamAppend};
use std::time::{Duration, Instant};

#[test]
fn two_browsers_writing_at_once_end_with_the_same_log_in_the_servers_order() {
    let _one = serial();
    let server = Server::start(true);
    let mut pool = LocalPool::new();
    let (a, b) = (Browser::new(), Browser::new());
    a.write("c1", ExpectedVersion::NoStream, events(1..4, "c1"));
    b.write("c2", ExpectedVersion::NoStream, events(101..103, "c2"));
    a.connect(&pool, server.port, "team", "a");
    b.connect(&pool, server.port, "team", "b");
    run_until(&mut pool, 30, "both hold all five events", || {
        a.log().len() == 5 && b.log().len() == 5 && a.waiting() == 0 && b.waiting() == 0
    });
    // More while connected, on both sides, to the same case.
    a.write("c2", ExpectedVersion::Any, events(4..6, "c2"));
    b.write("c1", ExpectedVersion::Any, events(103..104, "c1"));
    run_until(&mut pool, 30, "both hold all eight events", || {
        a.log().len() == 8 && b.log().len() == 8 && a.waiting() == 0 && b.waiting() == 0
    });
    assert_eq!(a.entries(), b.entries(), "one log, in the server's order");
    let seqs: Vec<u64> = a.log().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    let mut ids: Vec<String> = a.log().into_iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8, "each event once");
    // Each stream's versions count up without a gap.
    for stream in ["c1", "c2"] {
        let versions: Vec<u64> = a
            .log()
            .into_iter()
            .filter(|e| e.stream == stream)
            .map(|e| e.version)
            .collect();
        assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
    }
    assert_eq!(
        a.engine.head.get(),
        8,
        "the engine heard where the log ends"
    );
    let counts = a.engine.counts();
    assert!(counts.connected);
    assert_eq!(
        (counts.sent, counts.outbox, counts.on_server),
        (5, 0, Some(8))
    );
}

#[test]
fn a_conflicting_write_waits_for_the_user_who_keeps_one_case_and_drops_another() {
    let _one = serial();
    let server = Server::start(true);
    let mut pool = LocalPool::new();
    let (a, b) = (Browser::new(), Browser::new());
    // Both start the same two cases, each unaware of the other.
    a.write("c1", ExpectedVersion::NoStream, events(1..3, "c1"));
    a.write("c2", ExpectedVersion::NoStream, events(3..4, "c2"));
    b.write("c1", ExpectedVersion::NoStream, events(101..102, "c1"));
    b.write("c2", ExpectedVersion::NoStream, events(102..104, "c2"));
    a.connect(&pool, server.port, "team", "a");
    run_until(&mut pool, 30, "a's events are on the server", || {
        a.log().len() == 3 && a.waiting() == 0
    });
    b.connect(&pool, server.port, "team", "b");
    run_until(&mut pool, 30, "b says both cases are in conflict", || {
        b.log().len() == 3 && b.engine.conflicts().len() == 2
    });
    assert_eq!(
        b.waiting(),
        3,
        "nothing of b's is sent or lost while the user decides"
    );
    assert_eq!(b.engine.counts().conflicts, 2);
    wake(&b.wakes, Incoming::Choice("c1".into(), true));
    wake(&b.wakes, Incoming::Choice("c2".into(), false));
    run_until(&mut pool, 30, "b's kept event reaches both logs", || {
        a.log().len() == 4 && b.log().len() == 4 && b.waiting() == 0
    });
    assert_eq!(a.entries(), b.entries());
    let c1: Vec<String> = b
        .log()
        .into_iter()
        .filter(|e| e.stream == "c1")
        .map(|e| e.id)
        .collect();
    assert_eq!(
        c1,
        ["ev-1", "ev-2", "ev-101"],
        "kept: after the others' events"
    );
    assert!(
        !b.log().iter().any(|e| e.id == "ev-102" || e.id == "ev-103"),
        "dropped: never sent"
    );
    assert!(b.engine.conflicts().is_empty());
}

#[test]
fn a_server_killed_mid_push_comes_back_and_every_event_is_stored_once() {
    let _one = serial();
    let mut server = Server::start(true);
    let mut pool = LocalPool::new();
    let a = Browser::new();
    // An import's worth: 20,000 events over 1,000 cases.
    for case in 0..1_000u64 {
        let c = format!("c{case}");
        a.write(
            &c,
            ExpectedVersion::NoStream,
            events(case * 20 + 1..case * 20 + 21, &c),
        );
    }
    a.connect(&pool, server.port, "team", "a");
    run_until(&mut pool, 60, "part of the push is stored", || {
        a.engine.counts().sent > 0
    });
    server.kill();
    run_until(&mut pool, 30, "a says it is offline", || {
        !a.engine.counts().connected
    });
    let in_before = a.log().len();
    assert!(
        in_before < 20_000,
        "killed mid-push: {in_before} of 20,000 in"
    );
    // Written while the server is down: waits in the outbox.
    a.write(
        "late",
        ExpectedVersion::NoStream,
        events(50_001..50_011, "late"),
    );
    server.restart();
    run_until(
        &mut pool,
        90,
        "every event is on the server and back",
        || a.engine.head.get() == 20_010 && a.waiting() == 0,
    );
    let mut ids: Vec<String> = a.log().into_iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20_010, "each event stored once");
    // A browser joining now reads the same log.
    let b = Browser::new();
    b.connect(&pool, server.port, "team", "b");
    run_until(&mut pool, 60, "the newcomer has the log", || {
        b.engine.head.get() == 20_010
    });
    assert_eq!(a.entries(), b.entries());
}

/// The log's events in `store`, by id: each must be there once.
fn once_each(b: &Browser, n: usize) {
    let log = b.log();
    let mut ids: Vec<&str> = log.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), n);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "each event once");
    let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=n as u64).collect::<Vec<_>>(), "no gap");
}

/// What the sync said in words, all of it.
fn said(b: &Browser) -> String {
    b.engine
        .news
        .borrow()
        .iter()
        .filter_map(|n| match n {
            News::Status(s) => Some(s.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// 200 events over 20 cases, from event `from` on.
fn import(b: &Browser, from: u64) {
    for case in 0..20 {
        let c = format!("c{}", from + case);
        let first = from + case * 10;
        b.write(&c, ExpectedVersion::NoStream, events(first..first + 10, &c));
    }
}

#[test]
fn pushes_the_server_refuses_stay_in_the_outbox_and_go_again() {
    let _one = serial();
    let server = Server::start(true);
    let mut pool = LocalPool::new();
    let a = Browser::new();
    a.faults.lock().unwrap().refuse_pushes = 25;
    import(&a, 1);
    a.connect(&pool, server.port, "team", "a");
    run_until(
        &mut pool,
        60,
        "every refused event is sent again and stored",
        || a.engine.head.get() == 200 && a.waiting() == 0,
    );
    assert_eq!(a.faults.lock().unwrap().pushes_refused, 25);
    once_each(&a, 200);
    assert!(
        said(&a).contains(
            "refused on purpose by the test (JetStream error 10077)); it stays in the outbox"
        ),
        "the user was told: {}",
        said(&a)
    );
}

#[test]
fn a_refused_pull_is_tried_again_like_a_lost_connection() {
    let _one = serial();
    let server = Server::start(true);
    let mut pool = LocalPool::new();
    let (a, b) = (Browser::new(), Browser::new());
    import(&a, 1);
    a.connect(&pool, server.port, "team", "a");
    run_until(&mut pool, 30, "a's events are stored", || {
        a.engine.head.get() == 200 && a.waiting() == 0
    });
    b.faults.lock().unwrap().refuse_pulls = 3;
    b.connect(&pool, server.port, "team", "b");
    run_until(
        &mut pool,
        60,
        "b reads the log after three refusals",
        || b.engine.head.get() == 200,
    );
    assert_eq!(b.faults.lock().unwrap().pulls_refused, 3);
    // A refusal that lasts is not asked again every second.
    assert!(said(&b).contains("trying again in 4 s"), "{}", said(&b));
    assert!(
        said(&b).contains(
            "offline: the server would not deliver the shared log (refused on purpose by the test"
        ),
        "the user was told: {}",
        said(&b)
    );
    assert_eq!(a.entries(), b.entries());
}

#[test]
fn answers_lost_with_the_connection_do_not_store_an_event_twice() {
    let _one = serial();
    let server = Server::start(true);
    let mut pool = LocalPool::new();
    let a = Browser::new();
    // Ten pushes reach the server, their answers never come back, and the
    // connection drops: on the next, the ten are found in the log as it
    // comes down (read before anything is sent) and are not sent again.
    a.faults.lock().unwrap().lose_answers = 10;
    import(&a, 1);
    a.connect(&pool, server.port, "team", "a");
    run_until(
        &mut pool,
        60,
        "everything is stored and the outbox empty",
        || a.engine.head.get() == 200 && a.waiting() == 0,
    );
    let faults = a.faults.lock().unwrap();
    assert_eq!((faults.answers_lost, faults.drops), (10, 1));
    assert_eq!(
        faults.resent_lost, 0,
        "an event whose answer was lost went again"
    );
    drop(faults);
    once_each(&a, 200);
}

#[test]
fn a_connection_dropped_in_the_middle_of_a_download_resumes_where_the_log_ends() {
    let _one = serial();
    let server = Server::start(true);
    let mut pool = LocalPool::new();
    let (a, b) = (Browser::new(), Browser::new());
    for from in (1..5_000).step_by(200) {
        import(&a, from);
    }
    a.connect(&pool, server.port, "team", "a");
    run_until(&mut pool, 60, "a's 5,000 events are stored", || {
        a.engine.head.get() == 5_000 && a.waiting() == 0
    });
    // b joins, and its connection drops twice while the log comes down
    // (commits of what came before each drop are under way).
    b.faults.lock().unwrap().drop_after_deliveries = Some(1_700);
    b.connect(&pool, server.port, "team", "b");
    run_until(&mut pool, 30, "the first drop", || {
        b.faults.lock().unwrap().drops == 1
    });
    b.faults.lock().unwrap().drop_after_deliveries = Some(1_300);
    run_until(&mut pool, 60, "b has the whole log", || {
        b.engine.head.get() == 5_000
    });
    assert_eq!(b.faults.lock().unwrap().drops, 2);
    once_each(&b, 5_000);
    assert_eq!(a.entries(), b.entries());
}

#[test]
fn answers_out_of_order_and_after_the_events_they_answer_settle_the_same_outbox() {
    let _one = serial();
    let server = Server::start(true);
    let mut pool = LocalPool::new();
    let (a, b) = (Browser::new(), Browser::new());
    a.faults.lock().unwrap().reverse = true;
    b.faults.lock().unwrap().reverse = true;
    a.connect(&pool, server.port, "team", "a");
    b.connect(&pool, server.port, "team", "b");
    for from in (1..2_000).step_by(200) {
        import(&a, from);
        import(&b, 10_000 + from);
        // And both to one case, without a check: theirs go in the server's order.
        a.write(
            "shared",
            ExpectedVersion::Any,
            events(50_000 + from..50_003 + from, "shared"),
        );
        b.write(
            "shared",
            ExpectedVersion::Any,
            events(60_000 + from..60_003 + from, "shared"),
        );
    }
    run_until(&mut pool, 90, "both hold everything", || {
        a.engine.head.get() == 4_060
            && b.engine.head.get() == 4_060
            && a.waiting() == 0
            && b.waiting() == 0
    });
    assert!(
        a.faults.lock().unwrap().reordered > 0,
        "answers did come out of order"
    );
    once_each(&a, 4_060);
    assert_eq!(a.entries(), b.entries());
    assert!(a.engine.conflicts().is_empty() && b.engine.conflicts().is_empty());
}

#[test]
fn a_quiet_server_is_kept_and_one_that_stops_answering_is_left_and_dialled_again() {
    let _one = serial();
    let server = Server::start(true);
    let mut pool = LocalPool::new();
    let a = Browser::new();
    a.write("c1", ExpectedVersion::NoStream, events(1..11, "c1"));
    a.connect(&pool, server.port, "team", "a");
    run_until(&mut pool, 30, "the events are stored", || {
        a.engine.head.get() == 10 && a.waiting() == 0
    });
    // Nothing to say for half a minute: the server is asked, answers, and
    // the connection stays.
    let quiet = Instant::now() + Duration::from_secs(30);
    run_until(&mut pool, 40, "half a minute of quiet", || {
        Instant::now() > quiet
    });
    assert!(a.engine.counts().connected, "{}", said(&a));
    assert!(!said(&a).contains("offline"), "{}", said(&a));
    // Now the server's words stop arriving, the socket still open.
    a.faults.lock().unwrap().deaf = true;
    run_until(
        &mut pool,
        60,
        "the sync leaves the silent connection",
        || !a.engine.counts().connected,
    );
    // Found out by the next question it asks, within its deadline.
    assert!(
        said(&a).contains("closed (no answer from the server within 10 s)"),
        "{}",
        said(&a)
    );
    a.faults.lock().unwrap().deaf = false;
    a.write("c1", ExpectedVersion::Exact(10), events(11..13, "c1"));
    run_until(
        &mut pool,
        30,
        "a new connection sends what was written",
        || a.engine.head.get() == 12 && a.waiting() == 0,
    );
    once_each(&a, 12);
}

#[test]
fn an_import_whose_writer_drops_halfway_reaches_the_others_whole_or_not_at_all() {
    let _one = serial();
    let server = Server::start(true);
    let mut pool = LocalPool::new();
    let (a, b) = (Browser::new(), Browser::new());
    a.connect(&pool, server.port, "team", "a");
    b.connect(&pool, server.port, "team", "b");
    run_until(&mut pool, 30, "both are connected", || {
        a.engine.counts().connected && b.engine.counts().connected
    });
    // a's connection drops after 300 of the import's 1,000 events went out,
    // and the server will not deliver to a again until the test says so.
    {
        let mut faults = a.faults.lock().unwrap();
        faults.drop_after_pushes = Some(300);
        faults.refuse_pulls = usize::MAX;
    }
    let import: Vec<StreamAppend> = (0..100u64)
        .map(|c| StreamAppend {
            stream: format!("c{c}"),
            expected: ExpectedVersion::NoStream,
            events: events(c * 10 + 1..c * 10 + 11, &format!("c{c}")),
        })
        .collect();
    a.write_unit(import);
    run_until(
        &mut pool,
        30,
        "b holds back what came of the import",
        || b.engine.counts().held_back == 300,
    );
    assert!(b.log().is_empty(), "none of a half import is shown");
    assert!(said(&b).contains("holding 300 events back until an import is complete"));
    a.faults.lock().unwrap().refuse_pulls = 0;
    run_until(&mut pool, 60, "b shows the whole import", || {
        b.engine.head.get() == 1_000 && a.waiting() == 0
    });
    once_each(&b, 1_000);
    assert_eq!(a.entries(), b.entries());
    assert_eq!(b.engine.counts().held_back, 0);
}
