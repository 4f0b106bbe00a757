//! Given waiting events and what the log and the server say, then these
//! are sent, done, or in conflict.

use super::*;
use crate::store::contract::event;

fn waiting(stream: &str, after: u64, n: u64) -> Waiting {
    Waiting {
        stream: stream.into(),
        after,
        checked: true,
        unit: None,
        closes: false,
        event: event(n),
    }
}

fn seen(version: u64, seq: u64, id: &str) -> Seen {
    Seen {
        version,
        seq,
        id: id.into(),
    }
}

fn given(entries: &[(u64, Waiting)]) -> Outbox {
    let mut o = Outbox::default();
    for (k, w) in entries {
        o.add(*k, w.clone());
    }
    o
}

#[test]
fn each_stream_sends_one_event_at_a_time_each_after_the_last_one_stored() {
    let mut o = given(&[
        (1, waiting("case-a", 0, 1)),
        (2, waiting("case-a", 1, 2)),
        (3, waiting("case-b", 3, 3)),
    ]);
    let look = o.plan();
    assert_eq!(
        look,
        [
            Action::Look {
                stream: "case-a".into(),
                after: 0
            },
            Action::Look {
                stream: "case-b".into(),
                after: 3
            },
        ]
    );
    assert_eq!(o.plan(), [], "nothing twice while a look is out");
    assert_eq!(o.looked("case-a", 0, &[]), Changes::default());
    o.looked("case-b", 3, &[seen(3, 7, "other")]);
    assert_eq!(
        o.plan(),
        [
            Action::Send {
                key: 1,
                expected: Some(0)
            },
            Action::Send {
                key: 3,
                expected: Some(7)
            }
        ]
    );
    assert_eq!(
        o.plan(),
        [],
        "case-a's second event waits for the first's answer"
    );
    assert_eq!(o.stored(1, 10).stored, [1]);
    assert_eq!(
        o.plan(),
        [Action::Send {
            key: 2,
            expected: Some(10)
        }]
    );
    o.stored(3, 11);
    o.stored(2, 12);
    assert!(o.is_empty());
    assert_eq!(o.sent, 3);
}

#[test]
fn an_event_already_on_the_server_is_done_not_sent_again() {
    // Sent, stored, and the page closed before the answer came.
    let mut o = given(&[(5, waiting("case-a", 2, 1)), (6, waiting("case-a", 3, 2))]);
    o.plan();
    let id = event(1).id;
    let changes = o.looked("case-a", 3, &[seen(2, 4, "x"), seen(3, 9, &id)]);
    assert_eq!(changes.stored, [5]);
    // The next one is looked at afresh: it follows the one just found.
    assert_eq!(
        o.plan(),
        [Action::Look {
            stream: "case-a".into(),
            after: 3
        }]
    );
    o.looked("case-a", 3, &[seen(3, 9, &id)]);
    assert_eq!(
        o.plan(),
        [Action::Send {
            key: 6,
            expected: Some(9)
        }]
    );
}

#[test]
fn somebody_elses_event_first_is_a_conflict_until_the_user_keeps_or_drops() {
    let mut o = given(&[
        (1, waiting("case-a", 3, 1)),
        (2, waiting("case-a", 4, 2)),
        (3, waiting("case-b", 0, 3)),
    ]);
    o.plan();
    o.looked("case-a", 4, &[seen(3, 7, "x"), seen(4, 8, "theirs")]);
    o.looked("case-b", 0, &[]);
    assert_eq!(
        o.conflicts().cloned().collect::<Vec<_>>(),
        [Conflict {
            stream: "case-a".into(),
            waiting: 2,
            after: 3,
            now: Some(4)
        }]
    );
    // The other stream goes on; the conflicting one waits.
    assert_eq!(
        o.plan(),
        [Action::Send {
            key: 3,
            expected: Some(0)
        }]
    );

    // Keep mine: after theirs.
    o.keep("case-a");
    assert_eq!(
        o.plan(),
        [Action::Look {
            stream: "case-a".into(),
            after: 3
        }]
    );
    let changes = o.looked("case-a", 4, &[seen(3, 7, "x"), seen(4, 8, "theirs")]);
    assert_eq!(
        changes
            .rewritten
            .iter()
            .map(|(k, w)| (*k, w.after))
            .collect::<Vec<_>>(),
        [(1, 4), (2, 5)]
    );
    assert_eq!(
        o.plan(),
        [Action::Send {
            key: 1,
            expected: Some(8)
        }]
    );
    assert_eq!(o.conflicts().count(), 0);
}

#[test]
fn a_refused_send_is_a_conflict_and_dropping_deletes_the_streams_events() {
    let mut o = given(&[(1, waiting("case-a", 0, 1)), (2, waiting("case-a", 1, 2))]);
    o.plan();
    o.looked("case-a", 0, &[]);
    assert_eq!(
        o.plan(),
        [Action::Send {
            key: 1,
            expected: Some(0)
        }]
    );
    o.refused(1);
    assert_eq!(o.conflicts().next().map(|c| c.waiting), Some(2));
    assert_eq!(o.plan(), []);
    assert_eq!(o.drop_stream("case-a"), [1, 2]);
    assert!(o.is_empty() && o.conflicts().next().is_none());
}

#[test]
fn arrivals_settle_waiting_copies_and_move_the_streams_on() {
    let mut o = given(&[(1, waiting("case-a", 0, 1)), (2, waiting("case-b", 2, 2))]);
    o.plan();
    o.looked("case-a", 0, &[]);
    o.looked("case-b", 2, &[seen(2, 5, "x")]);
    assert_eq!(o.plan().len(), 2);
    // Ours came back before its answer; the answer then finds nothing.
    // An impostor first: its id, another stream or other content.
    let mut forged = event(1);
    forged.data = r#"{"case":"forged"}"#.into();
    assert_eq!(o.arrived("case-a", 5, &forged), None, "other content");
    assert_eq!(o.arrived("case-z", 5, &event(1)), None, "another stream");
    assert_eq!(o.arrived("case-a", 6, &event(1)), Some(1));
    assert_eq!(o.stored(1, 6), Changes::default());
    assert_eq!(o.sent, 1);
    // Somebody else's event to case-b while ours was out: the server
    // refuses ours, and the stream's state is looked up again.
    let mut theirs = event(9);
    theirs.id = "theirs".into();
    assert_eq!(o.arrived("case-b", 7, &theirs), None);
    o.refused(2);
    assert_eq!(
        o.conflicts().next().map(|c| c.stream.as_str()),
        Some("case-b")
    );
}

#[test]
fn an_event_written_without_a_check_goes_after_theirs_without_asking() {
    let mut o = given(&[(
        1,
        Waiting {
            checked: false,
            ..waiting("imports", 2, 1)
        },
    )]);
    o.plan();
    o.looked("imports", 3, &[seen(2, 5, "x"), seen(3, 6, "theirs")]);
    assert_eq!(o.conflicts().count(), 0);
    assert_eq!(
        o.plan(),
        [Action::Look {
            stream: "imports".into(),
            after: 2
        }]
    );
    let changes = o.looked("imports", 3, &[seen(3, 6, "theirs")]);
    assert_eq!(changes.rewritten.len(), 1);
    assert_eq!(
        o.plan(),
        [Action::Send {
            key: 1,
            expected: None
        }]
    );
    assert_eq!(o.stored(1, 7).stored, [1]);
    assert!(o.is_empty());
}

#[test]
fn a_streams_unchecked_events_go_out_at_once_and_the_next_run_after_all_are_answered() {
    let unchecked = |after: u64, n: u64| Waiting {
        checked: false,
        ..waiting("predictions-model-1", after, n)
    };
    let mut o = given(&[
        (1, unchecked(0, 1)),
        (2, unchecked(1, 2)),
        (3, unchecked(2, 3)),
    ]);
    o.plan();
    o.looked("predictions-model-1", 0, &[]);
    let sent = o.plan();
    assert_eq!(
        sent,
        [1, 2, 3].map(|key| Action::Send {
            key,
            expected: None
        })
    );
    o.add(4, unchecked(3, 4));
    o.stored(1, 10);
    o.stored(2, 11);
    assert_eq!(
        o.plan(),
        [],
        "the next run waits for the answers of this one"
    );
    // One came back before its answer: it counts as answered.
    assert_eq!(o.arrived("predictions-model-1", 12, &event(3)), Some(3));
    assert_eq!(
        o.plan(),
        [Action::Send {
            key: 4,
            expected: None
        }]
    );
    o.stored(4, 13);
    assert_eq!(
        o.stored(3, 12),
        Changes::default(),
        "a late answer finds nothing"
    );
    assert!(o.is_empty());
    assert_eq!(o.sent, 4);
}

#[test]
fn a_unit_is_closed_only_once_the_rest_of_it_is_stored() {
    let member = |stream: &str, n: u64| Waiting {
        unit: Some("import-1".into()),
        ..waiting(stream, 0, n)
    };
    let closing = Waiting {
        unit: Some("import-1".into()),
        closes: true,
        checked: false,
        ..waiting("imports", 0, 9)
    };
    let mut o = given(&[
        (1, member("case-a", 1)),
        (2, member("case-b", 2)),
        (3, closing),
    ]);
    for s in ["case-a", "case-b", "imports"] {
        o.looked(s, 0, &[]);
    }
    // Looked at, but the closing event is not planned while members wait.
    o.plan();
    for s in ["case-a", "case-b", "imports"] {
        o.looked(s, 0, &[]);
    }
    let sent: Vec<Action> = o.plan();
    assert_eq!(
        sent,
        [
            Action::Send {
                key: 1,
                expected: Some(0)
            },
            Action::Send {
                key: 2,
                expected: Some(0)
            }
        ]
    );
    o.stored(1, 1);
    assert_eq!(o.plan(), []);
    o.stored(2, 2);
    assert_eq!(
        o.plan(),
        [Action::Send {
            key: 3,
            expected: None
        }]
    );
}

#[test]
fn an_imports_later_events_to_a_case_follow_its_first_without_a_round_trip_each() {
    let member = |stream: &str, after: u64, n: u64| Waiting {
        unit: Some("import-1".into()),
        ..waiting(stream, after, n)
    };
    let closing = Waiting {
        unit: Some("import-1".into()),
        closes: true,
        checked: false,
        ..waiting("imports", 0, 9)
    };
    let mut o = given(&[
        (1, member("case-a", 0, 1)),
        (2, member("case-a", 1, 2)),
        (3, member("case-a", 2, 3)),
        (4, closing),
    ]);
    o.plan();
    o.looked("case-a", 0, &[]);
    o.looked("imports", 0, &[]);
    // The case's first event claims it, checked.
    assert_eq!(
        o.plan(),
        [Action::Send {
            key: 1,
            expected: Some(0)
        }]
    );
    o.stored(1, 10);
    // Nobody can have written after it (readers hold the import back
    // until it is whole): the rest go out at once.
    assert_eq!(
        o.plan(),
        [2, 3].map(|key| Action::Send {
            key,
            expected: None
        })
    );
    o.stored(2, 11);
    assert_eq!(o.plan(), [], "the closing event waits for the last member");
    o.stored(3, 12);
    assert_eq!(
        o.plan(),
        [Action::Send {
            key: 4,
            expected: None
        }]
    );
    o.stored(4, 13);
    assert!(o.is_empty());
    // A later write to the case, outside the import, is checked again.
    o.add(5, waiting("case-a", 3, 5));
    assert_eq!(
        o.plan(),
        [Action::Send {
            key: 5,
            expected: Some(12)
        }]
    );
}

#[test]
fn a_range_of_keys_waits_until_its_last_event_is_stored() {
    let mut o = given(&[
        (10, waiting("case-a", 0, 1)),
        (11, waiting("case-b", 0, 2)),
        (20, waiting("case-c", 0, 3)),
    ]);
    assert!(o.waits_in(10..20));
    assert!(!o.waits_in(12..20), "no key there");
    o.plan();
    for (stream, key) in [("case-a", 10), ("case-b", 11)] {
        o.looked(stream, 0, &[]);
        o.plan();
        assert_eq!(o.stored(key, key).stored, [key]);
    }
    assert!(
        !o.waits_in(10..20),
        "both of the first range's events are stored"
    );
    assert!(o.waits_in(20..30));
}

#[test]
fn an_event_no_server_takes_leaves_the_outbox_and_the_next_goes_out() {
    let mut o = given(&[(1, waiting("case-a", 0, 1)), (2, waiting("case-a", 1, 2))]);
    o.plan();
    o.looked("case-a", 0, &[]);
    assert_eq!(
        o.plan(),
        [Action::Send {
            key: 1,
            expected: Some(0)
        }]
    );
    let gone = o.unsendable(1).expect("it was waiting");
    assert_eq!(gone.event.id, event(1).id);
    assert_eq!(o.len(), 1);
    assert!(o.unsendable(1).is_none(), "once");
    // The stream is free again: its next event is looked at and sent.
    let next = o.plan();
    assert!(!next.is_empty(), "the stream goes on: {next:?}");
}
