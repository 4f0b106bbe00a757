//! What the views show, held to the log read on its own.

use super::*;
use crate::domain::calendar::DAY;
use crate::domain::model::Spec;
use crate::domain::simulator::{Settings, Simulator};
use crate::engine::Harness;
use crate::ml::feedback_loop::Policy;
use crate::ml::models::Algorithm;
use crate::store::{by_stream, EventStore};
use std::collections::{BTreeMap, BTreeSet};

/// Given a simulated desk with the loop on, fed until a model serves and
/// cases have closed under it.
fn desk() -> Harness {
    let spec = Spec {
        trees: 10,
        ..Spec::new(Algorithm::RandomForest)
    };
    let policy = Policy {
        first_after: 40,
        ..Policy::demo()
    };
    let mut h = Harness::new(policy, Some(spec));
    let mut sim = Simulator::new(Settings {
        seed: 3,
        ..Settings::default()
    });
    while h.set().feedback.state.served.outcomes < 200 {
        h.feed(by_stream(sim.next_events(50))).unwrap();
    }
    h
}

#[test]
fn the_views_agree_with_the_log_read_on_its_own() {
    let h = desk();
    let views = Views::of(h.set());
    let events = futures::executor::block_on(h.store.read_all(1, usize::MAX)).unwrap();

    assert_eq!(views.seq, events.len() as u64);
    assert_eq!(views.stats.events, events.len() as u64);
    let typed = |t: &str| events.iter().filter(|e| e.event_type == t).count();
    let by_type: BTreeMap<&str, u64> = views
        .stats
        .types
        .iter()
        .map(|(t, n)| (t.as_str(), *n))
        .collect();
    assert_eq!(by_type["CaseOpened"], typed("CaseOpened") as u64);
    assert_eq!(views.stats.closed, typed("CaseClosed") as u64);

    // Open cases: opened and not closed, the oldest first.
    let mut decoded = Vec::new();
    futures::executor::block_on(crate::projection::read_decoded(
        &h.store,
        1,
        u64::MAX,
        4096,
        |b| decoded.extend(b),
    ))
    .unwrap();
    let mut open = BTreeSet::new();
    for e in &decoded {
        match &e.fact {
            crate::domain::Fact::CaseOpened(c) => open.insert(c.case.clone()),
            crate::domain::Fact::CaseClosed(c) => open.remove(&c.case),
            _ => false,
        };
    }
    assert_eq!(views.open.count, open.len());
    assert_eq!(views.open.rows.len(), open.len().min(OPEN_ROWS));
    assert!(views
        .open
        .rows
        .windows(2)
        .all(|w| w[0].opened_at <= w[1].opened_at));
    assert!(views.open.rows.iter().all(|r| open.contains(&r.case)));
    // Served predictions are shown for open cases the loop predicted.
    assert!(views.open.rows.iter().any(|r| r.predicted.is_some()));

    // The registry: every ModelTrained in the log, newest first, with its part.
    let champion = views.feedback.champion.clone().unwrap();
    assert!(views.registered.is_empty(), "the harness registers nothing");
    let mut h = h;
    let cases = crate::ml::feedback_loop::training_cases(h.set(), 0, "manual");
    let spec = Spec {
        trees: 5,
        ..Spec::new(Algorithm::RandomForest)
    };
    for id in ["model-7", "model-8"] {
        let mut record = crate::ml::registry::train_with_holdout(&spec, &cases, 0.2, &|| 0.0)
            .unwrap()
            .record;
        record.id = id.into();
        let event = crate::log::NewEvent::new(
            format!("{id}-trained"),
            ModelTrained::TYPE,
            ModelTrained::SCHEMA,
            0,
            &record,
        );
        h.feed(vec![crate::store::StreamAppend {
            stream: id.into(),
            expected: crate::store::ExpectedVersion::NoStream,
            events: vec![event],
        }])
        .unwrap();
    }
    let views = Views::of(h.set());
    let listed: Vec<(&str, Role)> = views
        .registered
        .iter()
        .map(|(r, role)| (r.id.as_str(), *role))
        .collect();
    assert_eq!(
        listed,
        vec![("model-8", Role::Registered), ("model-7", Role::Registered)]
    );
    assert_eq!(views.feedback.champion.as_deref(), Some(champion.as_str()));

    // The score table starts with what was served, then every model.
    let f = &h.set().feedback.state;
    assert_eq!(views.feedback.rows[0].id, "served");
    assert_eq!(views.feedback.rows[0].outcomes, f.served.outcomes);
    assert_eq!(views.feedback.rows.len(), 1 + f.models.len());
    assert_eq!(views.feedback.recent.len(), f.served.recent.len());
    assert!(views.feedback.traces.len() <= TRACES_SHOWN);
}

#[test]
fn cases_per_day_counts_the_last_thirty_calendar_days_quiet_ones_as_zero() {
    let mut set = crate::projection::ProjectionSet::default();
    let days = &mut set.stats.state.per_day;
    days.insert(0, (2, 1));
    days.insert(20 * DAY, (4, 0));
    days.insert(40 * DAY, (1, 3));
    let shown = Views::of(&set).stats.per_day;
    assert_eq!(shown.len(), PER_DAY);
    assert_eq!(shown.first().unwrap().0, 11 * DAY);
    assert_eq!(shown.last().unwrap(), &(40 * DAY, 1, 3));
    assert!(shown.windows(2).all(|w| w[1].0 - w[0].0 == DAY));
    assert_eq!(shown.iter().map(|d| d.1).sum::<u32>(), 5);

    // A log of fewer days starts at its first.
    let mut short = crate::projection::ProjectionSet::default();
    short.stats.state.per_day.insert(3 * DAY, (1, 0));
    short.stats.state.per_day.insert(5 * DAY, (0, 1));
    let shown = Views::of(&short).stats.per_day;
    assert_eq!(
        shown,
        vec![(3 * DAY, 1, 0), (4 * DAY, 0, 0), (5 * DAY, 0, 1)]
    );
}

#[test]
fn how_long_cases_take_shows_every_bucket_before_the_first_case_closes() {
    let buckets = crate::projection::stats::DURATION_BUCKETS_H.len() + 1;
    let empty = Views::of(&crate::projection::ProjectionSet::default());
    assert_eq!(empty.stats.durations, vec![0; buckets]);
    let views = Views::of(desk().set());
    assert_eq!(views.stats.durations.len(), buckets);
    assert_eq!(
        views.stats.durations.iter().sum::<u64>(),
        views.stats.closed
    );
}

#[test]
fn a_retired_models_recent_error_is_not_shown_but_its_record_is() {
    let mut set = desk().set().clone();
    // A model scored once and gone from the loop: a challenger that lost.
    let f = &mut set.feedback.state;
    let champion = f.champion.clone().unwrap();
    let score = f.models[&champion].clone();
    f.models.insert("model-0".into(), score);
    let views = Views::of(&set);
    let row = views
        .feedback
        .rows
        .iter()
        .find(|r| r.id == "model-0")
        .unwrap();
    assert!(row.retired());
    assert_eq!((row.rolling, row.window), (None, None));
    assert!(row.mae.is_some());
    let live = views
        .feedback
        .rows
        .iter()
        .find(|r| r.id == champion)
        .unwrap();
    assert!(live.rolling.is_some());
}

#[test]
fn a_retired_model_says_why_it_left() {
    use crate::domain::events::{ChallengerStarted, ModelPromoted, ModelRetired};
    use crate::domain::{Fact, Recorded};
    let mut set = desk().set().clone();
    let champion = set.feedback.state.champion.clone().unwrap();
    let mut seq = set.seq();
    let mut fold = |fact: Fact| {
        seq += 1;
        set.apply(&Recorded {
            seq,
            id: format!("e{seq}"),
            occurred_at: 0,
            stream: "models".into(),
            fact,
        });
    };
    let started = |model: &str| {
        Fact::ChallengerStarted(ChallengerStarted {
            model: model.into(),
            reason: "drift".into(),
            median_h: 1.0,
            train_cases: 10,
            term: None,
        })
    };
    // A challenger that lost, then one that took over.
    fold(started("model-8"));
    fold(Fact::ModelRetired(ModelRetired {
        model: "model-8".into(),
        reason: "not better than the champion".into(),
        champion_mae_d: None,
        challenger_mae_d: None,
        outcomes: 0,
        term: None,
    }));
    fold(started("model-9"));
    fold(Fact::ModelPromoted(ModelPromoted {
        model: "model-9".into(),
        replaced: Some(champion.clone()),
        reason: "beat the champion".into(),
        champion_mae_d: None,
        challenger_mae_d: None,
        outcomes: 0,
        term: None,
    }));
    let views = Views::of(&set);
    let why = |id: &str| {
        let row = views.feedback.rows.iter().find(|r| r.id == id);
        row.and_then(|r| r.why.clone())
    };
    assert_eq!(why(&champion).as_deref(), Some("replaced by model-9"));
    assert_eq!(why("model-9"), None, "the champion has nothing to explain");
    if views.feedback.rows.iter().any(|r| r.id == "model-8") {
        assert_eq!(
            why("model-8").as_deref(),
            Some("not better than the champion")
        );
    }
}

#[test]
fn the_views_cross_the_worker_boundary_unchanged() {
    let views = Views::of(desk().set());
    let bytes = crate::ml::protocol::encode(&views);
    let back: Views = crate::ml::protocol::decode(&bytes).unwrap();
    assert_eq!(back, views);
}
