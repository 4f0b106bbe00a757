//! The engine's message API on the memory store: commands in, replies out.

use super::messages::{Command, Driver, Reply};
use super::scenario::{given, register as train, Desk, Models};
use super::simulation::SimCommand;
use super::Engine;
use crate::domain::model::Spec;
use crate::domain::simulator::{Settings, Simulator};
use crate::ml::feedback_loop::Policy;
use crate::ml::models::Algorithm;
use crate::projection::ProjectionSet;
use crate::store::memory::MemoryStore;
use crate::store::{by_stream, EventStore};
use std::cell::Cell;
use std::cell::RefCell;
use std::rc::Rc;

fn block<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

fn driver(policy: Policy) -> (Driver<MemoryStore, Models>, Models) {
    let models: Models = Default::default();
    let engine = Engine::new(ProjectionSet::default(), policy);
    (
        Driver::new(MemoryStore::new(), models.clone(), engine),
        models,
    )
}

/// What moved in the views since the driver last handed them out.
fn moved<M: super::messages::ModelSource>(
    d: &mut Driver<MemoryStore, M>,
) -> (
    Box<super::views::ViewsUpdate>,
    Vec<super::stream_row::StreamRow>,
    bool,
) {
    match d.views() {
        Some(Reply::Views {
            views,
            stream,
            whole_stream,
        }) => (views, stream, whole_stream),
        other => panic!("the views did not move: {other:?}"),
    }
}

fn count(store: &MemoryStore, event_type: &str) -> usize {
    block(store.read_all(1, usize::MAX))
        .unwrap()
        .iter()
        .filter(|e| e.event_type == event_type)
        .count()
}

fn a_desk(first_after: u64, seed: u64) -> Desk {
    given(
        Policy {
            first_after,
            ..Policy::demo()
        },
        seed,
    )
}

#[test]
fn the_loop_started_on_an_empty_log_says_so_and_stands_at_zero() {
    let mut desk = a_desk(30, 3);
    let policy = desk.d.engine().policy.clone();
    let then = desk.when(Command::Start {
        policy,
        driver: None,
    });
    assert_eq!(then.replies, vec![Reply::Started { seq: 0 }]);
    assert!(then.appended.is_empty());
}

#[test]
fn given_enough_closed_cases_when_the_head_moves_then_a_first_model_is_asked_for() {
    let mut desk = a_desk(30, 3).started();
    let then = desk.events_until_asked();
    let (reason, cases) = then.asked().unwrap();
    assert_eq!(reason, "first model");
    assert!(cases.len() >= 30, "{} cases", cases.len());
    assert!(then.appended.is_empty(), "no model: nothing predicted");
    assert_eq!(
        then.replies.last(),
        Some(&Reply::CaughtUp {
            seq: desk.head(),
            predictions: 0,
            appended_to: None,
            ms: 0.0
        }),
        "caught up with the head"
    );
}

#[test]
fn while_the_model_asked_for_trains_more_events_do_not_ask_again() {
    let mut desk = a_desk(30, 3).started();
    desk.events_until_asked();
    let then = desk.events(50).when(Command::Head(0));
    assert!(then.asked().is_none(), "{:?}", then.replies);
}

#[test]
fn the_first_model_trained_enters_as_champion_and_every_open_case_is_predicted_once() {
    let mut desk = a_desk(30, 3).started();
    let asked = desk.events_until_asked();
    let entered = desk.trained(&asked, "model-1");
    assert_eq!(entered.appended_of("ModelPromoted"), 1);
    assert_eq!(desk.feedback().champion.as_deref(), Some("model-1"));
    let then = desk.events(200).when(Command::Head(0));
    let predicted = entered.predictions() + then.predictions();
    assert!(predicted > 0);
    assert_eq!(
        desk.count("PredictionRecorded"),
        predicted,
        "every prediction said is recorded, once"
    );
    let Some(Reply::CaughtUp {
        seq, appended_to, ..
    }) = then.replies.last()
    else {
        panic!("{:?}", then.replies)
    };
    assert_eq!(Some(*seq), *appended_to, "its own appends folded too");
    assert_eq!(*seq, desk.head());
}

#[test]
fn a_failed_training_is_asked_again_at_once() {
    let mut desk = a_desk(20, 4).started();
    let first = desk.events_until_asked();
    let again = desk.when(Command::TrainingFailed);
    assert_eq!(
        again.asked().map(|(r, c)| (r, c.len())),
        first.asked().map(|(r, c)| (r, c.len()))
    );
}

#[test]
fn a_model_whose_bytes_are_nowhere_is_said_nothing_is_appended_and_a_model_is_asked_again() {
    let mut desk = a_desk(20, 4).started();
    let asked = desk.events_until_asked();
    let record = desk.train(&asked, "model-9");
    desk.models.borrow_mut().remove("model-9");
    let then = desk.when(Command::Trained {
        record: Box::new(record),
        reason: asked.asked().unwrap().0.to_string(),
    });
    assert!(
        matches!(&then.said()[..], [m] if m.contains("model-9") && m.contains("cannot be loaded")),
        "{:?}",
        then.replies
    );
    assert!(then.appended.is_empty(), "nothing appended");
    assert!(desk.when(Command::Head(0)).asked().is_some());
}

#[test]
fn started_over_a_log_it_folds_what_is_there_and_predicts_only_what_comes_after() {
    // A log whose loop ran elsewhere: a champion and its predictions.
    let (mut first, models) = driver(Policy {
        first_after: 20,
        ..Policy::demo()
    });
    let now = || 0.0;
    let mut sim = Simulator::new(Settings {
        seed: 5,
        ..Settings::default()
    });
    let mut trained = false;
    while !trained {
        block(first.store().append_batch(by_stream(sim.next_events(50)))).unwrap();
        for reply in block(first.handle(Command::Head(0), &now)) {
            if let Reply::Train { cases, reason, .. } = reply {
                let record = train(&models, first.store(), &cases, "model-1");
                block(first.handle(
                    Command::Trained {
                        record: Box::new(record),
                        reason,
                    },
                    &now,
                ));
                trained = true;
            }
        }
    }
    block(first.store().append_batch(by_stream(sim.next_events(100)))).unwrap();
    block(first.handle(Command::Head(0), &now));
    let events = block(first.store().read_all(1, usize::MAX)).unwrap();
    let before = count(first.store(), "PredictionRecorded");
    assert!(before > 0);

    // A second engine (another tab taking over) over a copy of that log.
    let copy = MemoryStore::new();
    for e in &events {
        let new = crate::log::NewEvent::new(
            e.id.clone(),
            &e.event_type,
            e.schema,
            e.occurred_at,
            &serde_json::from_str::<serde_json::Value>(&e.data).unwrap(),
        );
        block(copy.append(&e.stream, crate::store::ExpectedVersion::Any, vec![new])).unwrap();
    }
    let mut second = Driver::new(
        copy,
        models.clone(),
        Engine::new(
            ProjectionSet::default(),
            Policy {
                first_after: 20,
                ..Policy::demo()
            },
        ),
    );
    let replies = block(second.handle(
        Command::Start {
            policy: Policy {
                first_after: 20,
                ..Policy::demo()
            },
            driver: None,
        },
        &now,
    ));
    assert_eq!(
        replies,
        vec![Reply::Started {
            seq: events.len() as u64
        }]
    );
    assert_eq!(
        count(second.store(), "PredictionRecorded"),
        before,
        "nothing predicted twice"
    );
    // New events: predicted by the new engine, each once.
    block(second.store().append_batch(by_stream(sim.next_events(100)))).unwrap();
    block(second.handle(Command::Head(0), &now));
    let all = block(second.store().read_all(1, usize::MAX)).unwrap();
    let mut ids: Vec<&str> = all
        .iter()
        .filter(|e| e.event_type == "PredictionRecorded")
        .map(|e| e.id.as_str())
        .collect();
    let n = ids.len();
    assert!(n > before, "the new engine predicts what comes after");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no prediction recorded twice");
}

/// A shared log's copy as the engine sees it: its appends wait in an
/// outbox (the commit is empty) and reach the log only when `arrive` says
/// the server has sent them back.
#[derive(Default)]
struct Outboxed {
    log: Rc<MemoryStore>,
    waiting: RefCell<Vec<crate::store::StreamAppend>>,
}

impl Outboxed {
    fn arrive(&self) {
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        block(self.log.append_batch(waiting)).unwrap();
    }
}

impl EventStore for Outboxed {
    async fn append_batch(
        &self,
        batch: Vec<crate::store::StreamAppend>,
    ) -> Result<crate::store::Committed, crate::store::StoreError> {
        self.waiting.borrow_mut().extend(batch);
        let head = self.log.head().await?;
        Ok(crate::store::Committed {
            first_seq: head + 1,
            last_seq: head,
        })
    }
    async fn read_all(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<crate::log::Envelope>, crate::store::StoreError> {
        self.log.read_all(from_seq, limit).await
    }
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<crate::log::Envelope>, crate::store::StoreError> {
        self.log.read_stream(stream, from_version, limit).await
    }
    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, crate::store::StoreError> {
        self.log.stream_version(stream).await
    }
    async fn head(&self) -> Result<u64, crate::store::StoreError> {
        self.log.head().await
    }
}

#[test]
fn on_a_shared_log_a_decision_waits_until_the_engines_earlier_one_has_come_back() {
    // Given an engine over a shared log's copy, whose first model was
    // trained and entered: its promotion waits in the outbox.
    let models: Models = Default::default();
    let engine = Engine::new(
        ProjectionSet::default(),
        Policy {
            first_after: 30,
            ..Policy::demo()
        },
    );
    let mut d = Driver::new(Outboxed::default(), models.clone(), engine);
    let now = || 0.0;
    let mut sim = Simulator::new(Settings {
        seed: 5,
        ..Settings::default()
    });
    let asked = loop {
        block(d.store().log.append_batch(by_stream(sim.next_events(50)))).unwrap();
        let asked = block(d.handle(Command::Head(0), &now))
            .into_iter()
            .find_map(|r| match r {
                Reply::Train { reason, cases, .. } => Some((reason, cases)),
                _ => None,
            });
        if let Some(asked) = asked {
            break asked;
        }
    };
    let record = train(&models, &d.store().log, &asked.1, "model-1");
    let mut replies = block(d.handle(
        Command::Trained {
            record: Box::new(record),
            reason: asked.0,
        },
        &now,
    ));
    assert_eq!(
        count(&d.store().log, "ModelPromoted"),
        0,
        "still on its way"
    );

    // When more cases close before it has come back,
    block(d.store().log.append_batch(by_stream(sim.next_events(300)))).unwrap();
    replies.extend(block(d.handle(Command::Head(0), &now)));
    // then the engine does not ask for a first model again.
    assert!(
        !replies.iter().any(|r| matches!(r, Reply::Train { .. })),
        "{replies:?}"
    );

    // When it comes back, the champion is in force, recorded once, and
    // the engine predicts with it.
    d.store().arrive();
    block(d.store().log.append_batch(by_stream(sim.next_events(100)))).unwrap();
    let replies = block(d.handle(Command::Head(0), &now));
    assert_eq!(
        d.engine().set().feedback.state.champion.as_deref(),
        Some("model-1")
    );
    assert!(
        !replies.iter().any(|r| matches!(r, Reply::Train { .. })),
        "{replies:?}"
    );
    d.store().arrive();
    assert_eq!(count(&d.store().log, "ModelPromoted"), 1);
    assert!(count(&d.store().log, "PredictionRecorded") > 0);
}

/// An engine over a shared log's copy (its own outbox, `log` shared with
/// the other browsers), driving with the lease taken at `lease`.
fn shared_driver(
    log: &Rc<MemoryStore>,
    models: &Models,
    browser: &str,
    lease: u64,
) -> (Driver<Outboxed, Models>, super::Driver) {
    let mut engine = Engine::new(
        ProjectionSet::default(),
        Policy {
            first_after: 30,
            ..Policy::demo()
        },
    );
    engine.set_shared(true);
    let d = Driver::new(
        Outboxed {
            log: log.clone(),
            waiting: Default::default(),
        },
        models.clone(),
        engine,
    );
    let me = super::Driver {
        browser: browser.into(),
        name: format!("browser {browser}"),
        lease,
        secret: browser.bytes().cycle().take(32).collect(),
    };
    (d, me)
}

fn waiting_types(d: &Driver<Outboxed, Models>) -> Vec<String> {
    d.store()
        .waiting
        .borrow()
        .iter()
        .flat_map(|a| a.events.iter().map(|e| e.event_type.clone()))
        .collect()
}

#[test]
fn on_a_shared_log_only_the_driver_in_the_logs_term_decides_with_ids_nobody_can_guess() {
    let log = Rc::new(MemoryStore::new());
    let models: Models = Default::default();
    let mut sim = Simulator::new(Settings {
        seed: 6,
        ..Settings::default()
    });
    let clock = Cell::new(0.0);
    let now = || clock.get();
    // Given browser A takes the loop (its lease, taken at revision 4).
    let (mut a, me_a) = shared_driver(&log, &models, "a", 4);
    let policy = a.engine().policy.clone();
    block(a.handle(
        Command::Start {
            policy: policy.clone(),
            driver: Some(me_a),
        },
        &now,
    ));
    block(a.handle(Command::Lease { for_ms: 5_000.0 }, &now));
    // When cases close before its announcement is back, then it announces
    // itself and nothing else: no predictions, no model asked for.
    block(log.append_batch(by_stream(sim.next_events(600)))).unwrap();
    let replies = block(a.handle(Command::Head(0), &now));
    assert!(
        !replies.iter().any(|r| matches!(r, Reply::Train { .. })),
        "{replies:?}"
    );
    assert_eq!(waiting_types(&a), vec!["LoopTaken"]);
    assert_eq!(a.engine().standing(), super::Standing::Fenced);

    // When it is back, A's term is the log's: it asks for a first model,
    // and the promotion carries the term and an id with a keyed part.
    a.store().arrive();
    let asked = block(a.handle(Command::Head(0), &now))
        .into_iter()
        .find_map(|r| match r {
            Reply::Train { reason, cases, .. } => Some((reason, cases)),
            _ => None,
        })
        .expect("in its term, A asks for a first model");
    let term_a = a
        .engine()
        .set()
        .feedback
        .state
        .term
        .clone()
        .expect("a term");
    assert_eq!(a.engine().standing(), super::Standing::InTerm(term_a.seq));
    let record = train(&models, &log, &asked.1, "model-1");
    block(a.handle(
        Command::Trained {
            record: Box::new(record.clone()),
            reason: asked.0.to_string(),
        },
        &now,
    ));
    a.store().arrive();
    let events = block(log.read_all(1, usize::MAX)).unwrap();
    let promoted = events
        .iter()
        .find(|e| e.event_type == "ModelPromoted")
        .expect("model-1 promoted");
    let payload: crate::domain::events::ModelPromoted =
        serde_json::from_str(&promoted.data).unwrap();
    assert_eq!(payload.term, Some(term_a.seq));
    let plain = format!("model-1-promoted-t{}", term_a.seq);
    assert!(promoted.id.starts_with(&plain), "{}", promoted.id);
    assert_ne!(
        promoted.id,
        crate::ml::feedback_loop::Stamp::driving(term_a.seq, b"guess")
            .id("model-1-promoted".into()),
        "another secret gives another id"
    );
    assert_eq!(promoted.id.len(), plain.len() + 17, "64 bits of keyed hash");

    // Given A's page hangs: its lease is not renewed and runs out on its
    // clock. When B takes the loop (lease revision 9) while a decision of
    // A's is still on its way, then B's term starts before it lands and
    // every copy sets A's decision aside.
    block(log.append_batch(by_stream(sim.next_events(400)))).unwrap();
    block(a.handle(Command::Head(0), &now));
    a.store().arrive();
    let late = crate::ml::feedback_loop::lifecycle(
        a.engine().set(),
        a.engine()
            .current_stamp()
            .expect("A still in term")
            .id("model-1-retired".into()),
        (
            crate::domain::events::ModelRetired::TYPE,
            crate::domain::events::ModelRetired::SCHEMA,
        ),
        &crate::domain::events::ModelRetired {
            model: "model-1".into(),
            reason: "late".into(),
            champion_mae_d: None,
            challenger_mae_d: None,
            outcomes: 0,
            term: Some(term_a.seq),
        },
    );
    block(a.store().append_batch(vec![late])).unwrap();
    clock.set(6_000.0);
    let predicted_before = count(&log, "PredictionRecorded");
    block(log.append_batch(by_stream(sim.next_events(200)))).unwrap();
    block(a.handle(Command::Head(0), &now));
    assert_eq!(
        a.engine().standing(),
        super::Standing::Fenced,
        "past its lease"
    );
    assert_eq!(
        waiting_types(&a),
        vec!["ModelRetired"],
        "nothing more once fenced"
    );

    let (mut b, me_b) = shared_driver(&log, &models, "b", 9);
    block(b.handle(
        Command::Open {
            database: "x".into(),
            shared: true,
        },
        &now,
    ));
    block(b.handle(
        Command::Start {
            policy,
            driver: Some(me_b),
        },
        &now,
    ));
    block(b.handle(Command::Lease { for_ms: 5_000.0 }, &now));
    b.store().arrive();
    a.store().arrive();
    block(b.handle(Command::Head(0), &now));
    block(a.handle(Command::Head(0), &now));
    for d in [&a.engine(), &b.engine()] {
        let f = &d.set().feedback.state;
        assert_eq!(f.term.as_ref().map(|t| t.browser.as_str()), Some("b"));
        assert_eq!(
            f.champion.as_deref(),
            Some("model-1"),
            "A's late retirement set aside"
        );
        assert_eq!(f.set_aside, 1);
    }
    assert!(matches!(b.engine().standing(), super::Standing::InTerm(_)));
    assert_eq!(
        count(&log, "LoopTaken"),
        2,
        "A, fenced, does not announce again"
    );
    // B predicts from its term on; A no longer does.
    block(log.append_batch(by_stream(sim.next_events(200)))).unwrap();
    block(a.handle(Command::Head(0), &now));
    block(b.handle(Command::Head(0), &now));
    assert!(waiting_types(&a).is_empty());
    b.store().arrive();
    let by_b = block(log.read_all(1, usize::MAX))
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "PredictionRecorded")
        .count();
    assert!(
        by_b > predicted_before,
        "B predicts ({predicted_before} → {by_b})"
    );
}

#[test]
fn a_log_of_ones_own_that_holds_a_shared_logs_term_decides_in_that_term() {
    // Given a log of one's own that begins with a shared log's LoopTaken
    // (an export of a shared log, imported),
    let (mut d, models) = driver(Policy {
        first_after: 30,
        ..Policy::demo()
    });
    let taken = crate::log::NewEvent::new(
        "loop-x",
        crate::domain::events::LoopTaken::TYPE,
        crate::domain::events::LoopTaken::SCHEMA,
        0,
        &crate::domain::events::LoopTaken {
            browser: "elsewhere".into(),
            name: "a teammate".into(),
            lease: 3,
        },
    );
    block(
        d.store()
            .append("models", crate::store::ExpectedVersion::Any, vec![taken]),
    )
    .unwrap();
    let now = || 0.0;
    let policy = d.engine().policy.clone();
    block(d.handle(
        Command::Start {
            policy,
            driver: None,
        },
        &now,
    ));
    let mut sim = Simulator::new(Settings {
        seed: 8,
        ..Settings::default()
    });
    let asked = loop {
        block(d.store().append_batch(by_stream(sim.next_events(50)))).unwrap();
        let asked = block(d.handle(Command::Head(0), &now))
            .into_iter()
            .find_map(|r| match r {
                Reply::Train { reason, cases, .. } => Some((reason, cases)),
                _ => None,
            });
        if let Some(asked) = asked {
            break asked;
        }
    };
    // when its engine promotes a first model, then the promotion counts
    // (in the log's term) and nothing is set aside.
    let record = train(&models, d.store(), &asked.1, "model-1");
    block(d.handle(
        Command::Trained {
            record: Box::new(record),
            reason: asked.0.to_string(),
        },
        &now,
    ));
    let f = &d.engine().set().feedback.state;
    assert_eq!(f.champion.as_deref(), Some("model-1"));
    assert_eq!(f.set_aside, 0);
    assert_eq!(count(d.store(), "ModelPromoted"), 1, "decided once");
}

/// The views' side of the API: given a log, when a tab opens it, then the
/// engine folds it with the loop off and hands out what the views show,
/// again only when the projections moved.
#[test]
fn an_opened_log_is_folded_for_the_views_without_predicting() {
    let (mut d, _) = driver(Policy {
        first_after: 5,
        ..Policy::demo()
    });
    let mut sim = Simulator::new(Settings {
        seed: 4,
        ..Settings::default()
    });
    block(d.store().append_batch(by_stream(sim.next_events(500)))).unwrap();
    let now = || 0.0;
    let replies = block(d.handle(
        Command::Open {
            database: "x".into(),
            shared: false,
        },
        &now,
    ));
    assert!(replies.is_empty(), "{replies:?}");
    let (views, stream, whole_stream) = moved(&mut d);
    assert!(whole_stream, "the first views carry the whole stream");
    assert_eq!(views.seq, 500);
    assert_eq!(views.stats.as_ref().map(|s| s.events), Some(500));
    let seqs: Vec<u64> = stream.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (461..=500).rev().collect::<Vec<_>>(),
        "the newest 40, newest first"
    );
    assert_eq!(d.views(), None, "nothing moved");

    // When more is committed, the loop off: folded, nothing asked, nothing written.
    block(d.store().append_batch(by_stream(sim.next_events(100)))).unwrap();
    let replies = block(d.handle(Command::Head(600), &now));
    assert!(
        matches!(
            &replies[..],
            [Reply::CaughtUp {
                seq: 600,
                predictions: 0,
                appended_to: None,
                ..
            }]
        ),
        "{replies:?}"
    );
    assert_eq!(
        block(d.store().head()).unwrap(),
        600,
        "the engine wrote nothing"
    );
    let (views, stream, whole_stream) = moved(&mut d);
    assert_eq!((views.seq, stream[0].seq), (600, 600));
    assert!(
        !whole_stream && stream.iter().all(|r| r.seq > 500),
        "only the newer events"
    );
}

/// The training set keeps as many closed cases as the policy says: fewer
/// at once when the policy shrinks it, more from then on when it grows.
#[test]
fn the_training_set_keeps_what_the_policy_says() {
    let (mut d, _) = driver(Policy {
        first_after: 100_000,
        keep: 40,
        ..Policy::demo()
    });
    let mut sim = Simulator::new(Settings {
        seed: 4,
        ..Settings::default()
    });
    let now = || 0.0;
    block(d.store().append_batch(by_stream(sim.next_events(3_000)))).unwrap();
    block(d.handle(
        Command::Open {
            database: "x".into(),
            shared: false,
        },
        &now,
    ));
    let kept = |d: &Driver<MemoryStore, Models>| d.engine().set().training.state.closed.len();
    let closed = d.engine().set().stats.state.closed();
    assert!(closed > 100, "the log has closed {closed} cases");
    assert_eq!(kept(&d), 40, "the newest 40 of {closed}");
    let newest = |d: &Driver<MemoryStore, Models>| {
        d.engine()
            .set()
            .training
            .state
            .closed
            .back()
            .map(|f| f.closed_seq)
    };
    let last = newest(&d);
    // Shrunk: the oldest go at once, the newest stays.
    block(d.handle(
        Command::Policy(Policy {
            keep: 10,
            ..d.engine().policy.clone()
        }),
        &now,
    ));
    assert_eq!((kept(&d), newest(&d)), (10, last));
    // Grown: kept from now on.
    block(d.handle(
        Command::Policy(Policy {
            keep: 1_000,
            ..d.engine().policy.clone()
        }),
        &now,
    ));
    block(d.store().append_batch(by_stream(sim.next_events(3_000)))).unwrap();
    let head = block(d.store().head()).unwrap();
    block(d.handle(Command::Head(head), &now));
    let after = d.engine().set().stats.state.closed();
    assert_eq!(
        kept(&d) as u64,
        10 + (after - closed),
        "every case closed since is kept"
    );
}

/// A log of 1,500 simulated events under an engine whose loop would not
/// train a model by itself (models come by hand).
fn a_desk_whose_loop_never_trains(seed: u64) -> (Driver<MemoryStore, Models>, Models, Simulator) {
    let (d, models) = driver(Policy {
        first_after: 100_000,
        ..Policy::demo()
    });
    let mut sim = Simulator::new(Settings {
        seed,
        ..Settings::default()
    });
    block(d.store().append_batch(by_stream(sim.next_events(1500)))).unwrap();
    (d, models, sim)
}

/// Given the loop running with a champion and a challenger trained by
/// hand, when the page asks to promote it, then `ModelPromoted` is recorded
/// and the views name the new champion; when the loop stops, then new
/// events are folded but no longer predicted.
#[test]
fn models_trained_by_hand_enter_and_are_promoted_through_the_engine() {
    let (mut d, models, mut sim) = a_desk_whose_loop_never_trains(5);
    let now = || 0.0;
    block(d.handle(
        Command::Start {
            policy: d.engine().policy.clone(),
            driver: None,
        },
        &now,
    ));
    let replies = block(d.handle(Command::Cases { id: 7, window: 0 }, &now));
    let [Reply::Cases {
        id: 7,
        cases,
        position,
        known_models: 0,
    }] = &replies[..]
    else {
        panic!("{replies:?}")
    };
    assert_eq!(position.0, 1500);
    assert!(cases.len() > 20);
    for id in ["model-1", "model-2"] {
        train_by_hand(&mut d, &models, cases, id);
    }
    let f = &d.engine().set().feedback.state;
    assert_eq!(
        (f.champion.as_deref(), f.challenger.as_deref()),
        (Some("model-1"), Some("model-2"))
    );
    block(d.handle(Command::Promote, &now));
    assert_eq!(
        count(d.store(), "ModelPromoted"),
        2,
        "model-1's entry and the promotion"
    );
    let views = d.views_now();
    assert_eq!(views.feedback.champion.as_deref(), Some("model-2"));
    assert_eq!(views.feedback.challenger, None);
    let replies = block(d.handle(Command::Promote, &now));
    assert!(matches!(&replies[..], [Reply::Note(_)]), "{replies:?}");

    // Predicting while on; not once stopped.
    block(d.store().append_batch(by_stream(sim.next_events(50)))).unwrap();
    block(d.handle(Command::Head(0), &now));
    let predicted = count(d.store(), "PredictionRecorded");
    assert!(predicted > 0);
    assert!(block(d.handle(Command::Stop, &now)).is_empty());
    block(d.store().append_batch(by_stream(sim.next_events(50)))).unwrap();
    block(d.handle(Command::Head(0), &now));
    assert_eq!(count(d.store(), "PredictionRecorded"), predicted);
    assert_eq!(d.engine().set().seq(), block(d.store().head()).unwrap());
}

/// Given a tab whose engine only folds (another browser drives the loop)
/// while the champion's bytes have not reached it yet, when the bytes
/// arrive and this tab takes the loop over, then it predicts with that
/// champion — the engine did not give up on a model it had no need of.
#[test]
fn a_champion_whose_bytes_arrive_later_predicts_once_the_loop_starts() {
    let (mut d, models, mut sim) = a_desk_whose_loop_never_trains(8);
    let now = || 0.0;
    block(d.handle(
        Command::Open {
            database: "x".into(),
            shared: false,
        },
        &now,
    ));
    let replies = block(d.handle(Command::Cases { id: 1, window: 0 }, &now));
    let [Reply::Cases { cases, .. }] = &replies[..] else {
        panic!("{replies:?}")
    };
    let record = train(&models, d.store(), cases, "model-1");
    let bytes = models.borrow_mut().remove("model-1").unwrap();
    block(d.handle(
        Command::Enter {
            record: Box::new(record),
            reason: "manual".into(),
        },
        &now,
    ));
    block(d.store().append_batch(by_stream(sim.next_events(100)))).unwrap();
    let replies = block(d.handle(Command::Head(0), &now));
    assert!(
        !replies.iter().any(|r| matches!(r, Reply::Note(_))),
        "nothing to load while the loop is off: {replies:?}"
    );
    assert_eq!(
        d.engine().set().feedback.state.champion.as_deref(),
        Some("model-1")
    );

    models.borrow_mut().insert("model-1".into(), bytes);
    block(d.handle(
        Command::Start {
            policy: d.engine().policy.clone(),
            driver: None,
        },
        &now,
    ));
    block(d.store().append_batch(by_stream(sim.next_events(100)))).unwrap();
    block(d.handle(Command::Head(0), &now));
    assert!(count(d.store(), "PredictionRecorded") > 0);
}

/// Given the loop running with a champion, when the page starts the
/// simulator and the worker's clock ticks, then the engine commits the
/// events due, folds them and predicts them in the same answer — the page
/// only hears the new head; paused, a tick writes nothing; stopped, the run
/// is gone.
#[test]
fn the_simulator_runs_in_the_engine_its_events_folded_and_predicted_at_once() {
    let (mut d, models, _) = a_desk_whose_loop_never_trains(6);
    let now = || 0.0;
    block(d.handle(
        Command::Start {
            policy: d.engine().policy.clone(),
            driver: None,
        },
        &now,
    ));
    let cases = training_cases_of(&mut d);
    train_by_hand(&mut d, &models, &cases, "model-1");
    let head = block(d.store().head()).unwrap();
    let predicted = count(d.store(), "PredictionRecorded");
    let settings = Settings {
        seed: 11,
        run: "t".into(),
        start_ms: d.engine().set().stats.state.span.map_or(0, |s| s.1 + 1),
        ..Settings::default()
    };
    block(d.handle(
        Command::Simulate(SimCommand::Start {
            settings: Box::new(settings),
            rate: 500.0,
        }),
        &now,
    ));
    let replies = block(d.tick(200.0, &now));
    let [Reply::Simulated {
        produced: 100,
        head: simulated,
    }, .., Reply::CaughtUp {
        seq,
        predictions,
        appended_to: Some(_),
        ..
    }] = &replies[..]
    else {
        panic!("{replies:?}")
    };
    assert_eq!(*simulated, head + 100, "100 source events committed");
    assert!(*predictions > 0, "the simulator's cases were predicted");
    assert_eq!(*seq, block(d.store().head()).unwrap(), "folded to the head");
    assert_eq!(
        count(d.store(), "PredictionRecorded"),
        predicted + predictions
    );

    block(d.handle(Command::Simulate(SimCommand::Pause), &now));
    let before = block(d.store().head()).unwrap();
    assert!(block(d.tick(200.0, &now)).is_empty());
    assert_eq!(block(d.store().head()).unwrap(), before, "paused: nothing");
    block(d.handle(Command::Simulate(SimCommand::Resume), &now));
    block(d.handle(Command::Simulate(SimCommand::Rate(50.0)), &now));
    let replies = block(d.tick(200.0, &now));
    assert!(
        matches!(
            replies.first(),
            Some(Reply::Simulated { produced: 110, .. })
        ),
        "{replies:?}"
    );
    block(d.handle(Command::Simulate(SimCommand::Stop), &now));
    let before = block(d.store().head()).unwrap();
    assert!(block(d.tick(200.0, &now)).is_empty());
    assert_eq!(block(d.store().head()).unwrap(), before, "stopped: nothing");
}

/// The closed cases the engine would hand a model trained by hand.
fn training_cases_of(
    d: &mut Driver<MemoryStore, Models>,
) -> Vec<crate::projection::training_set::Finished> {
    let replies = block(d.handle(Command::Cases { id: 1, window: 0 }, &|| 0.0));
    match replies.into_iter().next() {
        Some(Reply::Cases { cases, .. }) => cases,
        other => panic!("{other:?}"),
    }
}

/// A model trained by hand on `cases` as `id`, registered, and let into
/// the loop through the engine (as the page's *Train* button does).
fn train_by_hand(
    d: &mut Driver<MemoryStore, Models>,
    models: &Models,
    cases: &[crate::projection::training_set::Finished],
    id: &str,
) {
    let record = train(models, d.store(), cases, id);
    let now = || 0.0;
    block(d.handle(Command::Head(0), &now));
    block(d.handle(
        Command::Enter {
            record: Box::new(record),
            reason: "manual".into(),
        },
        &now,
    ));
}

/// Given bytes in the registry and a `ModelPromoted` naming them, but no
/// `ModelTrained` in the log (what a teammate could put on a shared log's
/// server), when the loop runs, then the model is not used: the engine says
/// so, and records no prediction of it.
#[test]
fn a_promoted_model_the_log_never_registered_does_not_predict() {
    let (mut d, models, mut sim) = a_desk_whose_loop_never_trains(9);
    let now = || 0.0;
    block(d.handle(
        Command::Open {
            database: "x".into(),
            shared: false,
        },
        &now,
    ));
    let replies = block(d.handle(Command::Cases { id: 1, window: 0 }, &now));
    let [Reply::Cases { cases, .. }] = &replies[..] else {
        panic!("{replies:?}")
    };
    // Trained and its bytes stored, but its ModelTrained left out of the log.
    let spec = Spec {
        trees: 5,
        ..Spec::new(Algorithm::RandomForest)
    };
    let trained = crate::ml::registry::train_with_holdout(&spec, cases, 0.2, &|| 0.0).unwrap();
    let mut record = trained.record;
    record.id = "model-7".into();
    models
        .borrow_mut()
        .insert("model-7".into(), (record, trained.bytes));
    let promoted = crate::domain::events::ModelPromoted {
        model: "model-7".into(),
        replaced: None,
        reason: "forged".into(),
        champion_mae_d: None,
        challenger_mae_d: None,
        outcomes: 0,
        term: None,
    };
    block(d.store().append_batch(vec![crate::store::StreamAppend::new(
        crate::domain::events::MODELS_STREAM,
        crate::store::ExpectedVersion::Any,
        vec![crate::log::NewEvent::new(
            "forged-promotion",
            crate::domain::events::ModelPromoted::TYPE,
            crate::domain::events::ModelPromoted::SCHEMA,
            0,
            &promoted,
        )],
    )]))
    .unwrap();
    block(d.handle(
        Command::Start {
            policy: d.engine().policy.clone(),
            driver: None,
        },
        &now,
    ));
    block(d.store().append_batch(by_stream(sim.next_events(200)))).unwrap();
    let replies = block(d.handle(Command::Head(0), &now));
    let said = replies.iter().any(
        |r| matches!(r, Reply::Note(n) if n.contains("model-7") && n.contains("never registered")),
    );
    assert!(said, "{replies:?}");
    assert_eq!(count(d.store(), "PredictionRecorded"), 0);
}

/// Append a lifecycle event from outside the engine (another tab, an
/// older run of the loop).
fn decided<T: serde::Serialize>(desk: &Desk, id: &str, kind: (&str, u32), payload: &T) {
    let append =
        crate::ml::feedback_loop::lifecycle(desk.d.engine().set(), id.into(), kind, payload);
    block(desk.d.store().append_batch(vec![append])).unwrap();
}

fn started(model: &str) -> crate::domain::events::ChallengerStarted {
    crate::domain::events::ChallengerStarted {
        model: model.into(),
        reason: "schedule".into(),
        median_h: 1.0,
        train_cases: 10,
        term: None,
    }
}

fn retired(model: &str) -> crate::domain::events::ModelRetired {
    crate::domain::events::ModelRetired {
        model: model.into(),
        reason: "not better".into(),
        champion_mae_d: None,
        challenger_mae_d: None,
        outcomes: 0,
        term: None,
    }
}

fn bytes_of(desk: &Desk, id: &str) -> usize {
    desk.models.borrow().get(id).map_or(0, |(_, b)| b.len())
}

#[test]
fn given_retired_models_the_oldest_let_their_bytes_go_once_and_the_champions_stay() {
    use crate::domain::events::{
        ChallengerStarted, ModelBytesReleased, ModelPromoted, ModelRetired,
    };
    let mut desk = given(
        Policy {
            first_after: 20,
            keep_retired: 1,
            ..Policy::demo()
        },
        6,
    )
    .started();
    let asked = desk.events_until_asked();
    desk.trained(&asked, "model-1");
    desk.events(600);
    desk.when(Command::Head(0));
    let cases = asked.asked().unwrap().1.to_vec();
    for id in ["model-2", "model-3", "model-4"] {
        train(&desk.models, desk.d.store(), &cases, id);
    }
    let (start, retire, promote) = (
        (ChallengerStarted::TYPE, ChallengerStarted::SCHEMA),
        (ModelRetired::TYPE, ModelRetired::SCHEMA),
        (ModelPromoted::TYPE, ModelPromoted::SCHEMA),
    );
    // model-2 retired; model-3 replaced model-1; model-4 retired last.
    decided(&desk, "m2-start", start, &started("model-2"));
    decided(&desk, "m2-retired", retire, &retired("model-2"));
    decided(&desk, "m3-start", start, &started("model-3"));
    decided(
        &desk,
        "m3-promoted",
        promote,
        &ModelPromoted {
            model: "model-3".into(),
            replaced: Some("model-1".into()),
            reason: "better".into(),
            champion_mae_d: None,
            challenger_mae_d: None,
            outcomes: 0,
            term: None,
        },
    );
    decided(&desk, "m4-start", start, &started("model-4"));
    decided(&desk, "m4-retired", retire, &retired("model-4"));

    let then = desk.when(Command::Head(0));
    let released: Vec<String> = then
        .appended
        .iter()
        .filter(|e| e.event_type == ModelBytesReleased::TYPE)
        .map(|e| {
            serde_json::from_str::<ModelBytesReleased>(&e.data)
                .unwrap()
                .model
        })
        .collect();
    assert_eq!(
        released,
        ["model-2", "model-1"],
        "the oldest leavers, in the order they left"
    );
    for id in ["model-1", "model-2"] {
        assert_eq!(bytes_of(&desk, id), 0, "{id}'s bytes are gone");
        assert!(desk.models.borrow().contains_key(id), "{id}'s record stays");
    }
    for id in ["model-3", "model-4"] {
        assert!(bytes_of(&desk, id) > 0, "{id} keeps its bytes");
    }
    assert_eq!(desk.feedback().registered.len(), 4, "the lineage stays");
    let m1 = &desk.feedback().models["model-1"];
    assert!(m1.outcomes > 0, "model-1 served before it was replaced");
    assert!(
        m1.recent.is_empty() && m1.window.is_empty() && m1.series.is_empty(),
        "a model that left the loop keeps its totals, not its recent errors"
    );
    let views = desk.d.views_now();
    assert_eq!(
        views.released,
        ["model-1", "model-2"],
        "the views say whose bytes went"
    );

    // Nothing is released twice.
    desk.events(200);
    assert_eq!(
        desk.when(Command::Head(0))
            .appended_of(ModelBytesReleased::TYPE),
        0
    );

    // A release that names the champion (a teammate's, a bug's) is not
    // counted: the champion keeps its bytes and predicts on.
    decided(
        &desk,
        "m3-released",
        (ModelBytesReleased::TYPE, ModelBytesReleased::SCHEMA),
        &ModelBytesReleased {
            model: "model-3".into(),
            size_bytes: 1,
            reason: "hostile".into(),
            term: None,
        },
    );
    desk.events(300);
    let then = desk.when(Command::Head(0));
    assert!(bytes_of(&desk, "model-3") > 0, "the champion's bytes stay");
    assert_eq!(desk.feedback().champion.as_deref(), Some("model-3"));
    assert!(
        then.predictions() > 0,
        "the champion predicts on: {:?}",
        then.said()
    );
}

#[test]
fn the_page_rebuilt_from_what_moved_shows_what_the_engine_folded() {
    use super::stream_row::STREAM_ROWS;
    let mut desk = a_desk(20, 3).started();
    let asked = desk.events_until_asked();
    desk.trained(&asked, "model-1");
    let (mut page, mut stream) = (
        super::views::Views::default(),
        std::collections::VecDeque::new(),
    );
    let (mut whole_bytes, mut sent_bytes, mut registry_sent) = (0, 0, 0);
    for round in 0..30 {
        desk.events(if round % 7 == 0 { 120 } else { 15 });
        desk.when(Command::Head(0));
        let (views, rows, whole_stream) = moved(&mut desk.d);
        sent_bytes += postcard::to_allocvec(&views).unwrap().len();
        registry_sent += views.registered.is_some() as usize;
        page.apply(*views);
        if whole_stream {
            stream = rows.into();
        } else {
            rows.into_iter().rev().for_each(|r| stream.push_front(r));
            stream.truncate(STREAM_ROWS);
        }
        let truth = desk.d.views_now();
        whole_bytes += postcard::to_allocvec(&truth).unwrap().len();
        assert_eq!(
            page, truth,
            "round {round}: the page's views are the engine's"
        );
        assert_eq!(
            stream,
            *desk.d.engine().stream(),
            "round {round}: and so is its stream"
        );
    }
    assert!(
        registry_sent <= 2,
        "the registry is sent when it changes: {registry_sent} times"
    );
    assert!(
        sent_bytes < whole_bytes,
        "{sent_bytes} B sent, {whole_bytes} B whole"
    );
    assert_eq!(desk.d.views(), None, "nothing moved, nothing sent");
}

#[test]
fn what_the_user_appends_is_written_and_folded_and_a_stale_expectation_writes_nothing() {
    use crate::domain::CaseOpened;
    use crate::log::NewEvent;
    use crate::store::ExpectedVersion;
    let (mut d, _) = driver(Policy::demo());
    let now = || 0.0;
    block(d.handle(
        Command::Open {
            database: "x".into(),
            shared: false,
        },
        &now,
    ));
    let _ = d.views();
    let opened = |id: &str| {
        NewEvent::new(
            id.to_owned(),
            CaseOpened::TYPE,
            CaseOpened::SCHEMA,
            1_700_000_000_000,
            &CaseOpened {
                case: "c1".into(),
                attributes: Default::default(),
            },
        )
    };
    let append = |id: &str| Command::Append {
        stream: "case-c1".into(),
        expected: ExpectedVersion::NoStream,
        events: vec![opened(id)],
    };
    let replies = block(d.handle(append("e1"), &now));
    assert!(
        matches!(replies.first(), Some(Reply::Appended { head: 1 })),
        "{replies:?}"
    );
    let (views, _, _) = moved(&mut d);
    assert_eq!((views.seq, views.open.map(|o| o.count)), (1, Some(1)));
    // The stream exists now: the same expectation is refused, in words,
    // and nothing is written.
    let replies = block(d.handle(append("e2"), &now));
    match &replies[..] {
        [Reply::Failed(why)] => assert!(why.contains("case-c1"), "{why}"),
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(block(d.store().head()).unwrap(), 1);
    assert_eq!(d.views(), None, "nothing moved");
}
