//! The live state of this tab: the projection set, kept current with the
//! log (boot from snapshots, then follow every commit, from this tab and
//! others), snapshots every N events and when the tab is hidden, and time
//! travel to any past position.

use super::Log;
use crate::domain::events::{DriftDetected, PredictionRecorded};
use crate::domain::{Fact, Recorded};
use crate::log::NewEvent;
use crate::ml::models::Model;
use crate::projection::snapshot::{self, snapshots_of};
use crate::projection::{read_decoded, replay, ProjectionSet};
use crate::store::{EventStore, ExpectedVersion, StreamAppend};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::VecDeque;

/// Events between snapshots, by default.
pub const SNAPSHOT_EVERY: u64 = 5_000;
/// Rows the live event stream shows.
pub const STREAM_ROWS: usize = 40;
/// Events read per batch while replaying.
const BATCH: usize = 4_096;

/// One row of the live event stream.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamRow {
    /// Position.
    pub seq: u64,
    /// Domain time.
    pub at: i64,
    /// Event type.
    pub event_type: String,
    /// The case, if any.
    pub case: String,
    /// What it says, briefly.
    pub detail: String,
}

impl StreamRow {
    fn of(e: &Recorded) -> StreamRow {
        let (case, detail) = match &e.fact {
            Fact::CaseOpened(c) => (
                c.case.clone(),
                c.attributes
                    .get("category")
                    .map(|v| v.to_string().replace('"', ""))
                    .unwrap_or_default(),
            ),
            Fact::ActivityRecorded(a) => (
                a.case.clone(),
                match (&a.resource, a.hours) {
                    (Some(r), Some(h)) => format!("{} by {r}, {h:.1} h", a.activity),
                    (Some(r), None) => format!("{} by {r}", a.activity),
                    _ => a.activity.to_string(),
                },
            ),
            Fact::CaseClosed(c) => (c.case.clone(), c.outcome.clone().unwrap_or_default()),
            Fact::ProcessChanged(p) => (String::new(), p.description.clone()),
            Fact::DriftDetected(d) => (
                String::new(),
                format!(
                    "{}: errors drifted (Page-Hinkley {:.0} > {:.0})",
                    d.model, d.statistic, d.threshold
                ),
            ),
            Fact::PredictionRecorded(p) => (
                p.case.clone(),
                format!("{}: {:.1} h remaining", p.model, p.predicted_h),
            ),
            Fact::Other(_) => (String::new(), String::new()),
        };
        StreamRow {
            seq: e.seq,
            at: e.occurred_at,
            event_type: e.fact.type_name().to_owned(),
            case,
            detail,
        }
    }
}

/// The model that predicts live, with its baseline.
pub struct Champion {
    /// Registry id.
    pub id: String,
    /// The model.
    pub model: Model,
    /// The median baseline's prediction, hours.
    pub median_h: f64,
}

/// The live state, shared by the panels through context.
#[derive(Clone, Copy)]
pub struct Live {
    set: StoredValue<ProjectionSet, LocalStorage>,
    past_set: StoredValue<Option<ProjectionSet>, LocalStorage>,
    /// Bumps whenever what the panels show changed.
    pub tick: RwSignal<u64>,
    /// Position of the live projections.
    pub seq: RwSignal<u64>,
    /// Newest events first.
    pub stream: RwSignal<VecDeque<StreamRow>>,
    /// "restored from snapshot at seq N, replayed M events in X ms".
    pub boot: RwSignal<Option<String>>,
    /// Snapshots ignored at boot, and why.
    pub notes: RwSignal<Vec<String>>,
    /// The position being viewed in the past (None: live).
    pub past: RwSignal<Option<u64>>,
    /// Snapshot every this many events.
    pub snapshot_every: RwSignal<u64>,
    /// Whether this tab records the champion's predictions as events arrive.
    pub predicting: RwSignal<bool>,
    /// The champion's id, when one is loaded.
    pub champion_id: RwSignal<Option<String>>,
    champion: StoredValue<Option<Champion>, LocalStorage>,
    last_snapshot: StoredValue<u64, LocalStorage>,
    following: StoredValue<bool, LocalStorage>,
    again: StoredValue<bool, LocalStorage>,
}

impl Live {
    /// Read the projections the panels should show: the past ones while
    /// time travelling, the live ones otherwise.
    pub fn with_view<R>(&self, f: impl FnOnce(&ProjectionSet) -> R) -> R {
        self.tick.track();
        let past = self.past_set.with_value(|p| p.is_some());
        if past {
            self.past_set
                .with_value(|p| f(p.as_ref().expect("checked")))
        } else {
            self.set.with_value(f)
        }
    }

    /// The live state; it fills once [`Live::boot`] has run.
    pub fn new(log: Log) -> Live {
        let live = Live {
            set: StoredValue::new_local(ProjectionSet::default()),
            past_set: StoredValue::new_local(None),
            tick: RwSignal::new(0),
            seq: RwSignal::new(0),
            stream: RwSignal::new(VecDeque::new()),
            boot: RwSignal::new(None),
            notes: RwSignal::new(Vec::new()),
            past: RwSignal::new(None),
            snapshot_every: RwSignal::new(SNAPSHOT_EVERY),
            predicting: RwSignal::new(false),
            champion_id: RwSignal::new(None),
            champion: StoredValue::new_local(None),
            last_snapshot: StoredValue::new_local(0),
            // Booting counts as following: commits meanwhile wait for it.
            following: StoredValue::new_local(true),
            again: StoredValue::new_local(false),
        };
        // Every new head (this tab's commits and other tabs') → catch up.
        Effect::new(move |_| {
            let head = log.head.get();
            if head > live.seq.get_untracked() {
                live.follow(log);
            }
        });
        live.snapshot_when_hidden(log);
        live
    }

    /// Restore from snapshots, replay the tail, then follow the log.
    pub async fn boot(self, log: Log) {
        let Some(store) = log.get() else {
            self.following.set_value(false);
            return;
        };
        let t0 = now();
        let (mut set, restored) = match snapshot::restore(&*store, u64::MAX).await {
            Ok(r) => r,
            Err(e) => {
                log.fail(e);
                Default::default()
            }
        };
        let from = set.seq() + 1;
        let result = read_decoded(&*store, from, u64::MAX, BATCH, |events| {
            for e in &events {
                set.apply(e);
            }
        })
        .await;
        // The stream shows the newest events, whether replayed or restored.
        let mut rows = VecDeque::new();
        let newest_from = set.seq().saturating_sub(STREAM_ROWS as u64 - 1);
        let _ = read_decoded(&*store, newest_from, set.seq(), STREAM_ROWS, |events| {
            keep_newest(&mut rows, &events)
        })
        .await;
        let replayed = set.seq().saturating_sub(restored.from_seq);
        let ms = now() - t0;
        self.last_snapshot.set_value(restored.from_seq);
        self.boot.set(Some(if restored.from_seq > 0 {
            format!(
                "restored from snapshot at seq {}, replayed {replayed} events in {ms:.0} ms",
                restored.from_seq
            )
        } else {
            format!("no snapshot: replayed {replayed} events in {ms:.0} ms")
        }));
        if !restored.notes.is_empty() {
            self.notes.set(restored.notes);
        }
        if let Err(e) = result {
            log.fail(e);
        }
        let seq = set.seq();
        self.set.set_value(set);
        self.stream.set(rows);
        self.seq.set(seq);
        self.tick.update(|t| *t += 1);
        self.following.set_value(false);
        // Anything committed while booting.
        if log.head.get_untracked() > seq {
            self.follow(log);
        }
    }

    /// Catch up with the log; one runner at a time, re-run if more arrived.
    fn follow(self, log: Log) {
        if self.following.get_value() {
            self.again.set_value(true);
            return;
        }
        self.following.set_value(true);
        spawn_local(async move {
            loop {
                self.again.set_value(false);
                let Some(store) = log.get() else { break };
                let from = self.set.with_value(|s| s.seq()) + 1;
                let mut predictions = Vec::new();
                let result = read_decoded(&*store, from, u64::MAX, BATCH, |events| {
                    self.set
                        .update_value(|set| events.iter().for_each(|e| set.apply(e)));
                    self.stream.update(|rows| keep_newest(rows, &events));
                    predictions.extend(self.predict(&events));
                })
                .await;
                // Alarms the detector raised that the log does not hold yet.
                if self.predicting.get_untracked() {
                    let drifts = self
                        .set
                        .with_value(|set| set.feedback.state.unrecorded_drifts());
                    if !drifts.is_empty() {
                        let events = drifts
                            .iter()
                            .map(|d| {
                                let id = format!("{}-drift-{}", d.model, d.outcomes);
                                NewEvent::new(
                                    id,
                                    DriftDetected::TYPE,
                                    DriftDetected::SCHEMA,
                                    self.set
                                        .with_value(|s| s.stats.state.span.map_or(0, |(_, b)| b)),
                                    d,
                                )
                            })
                            .collect();
                        predictions.push(StreamAppend::new("drift", ExpectedVersion::Any, events));
                    }
                }
                if !predictions.is_empty() {
                    // Recorded before the outcome is known; scored when the case closes.
                    match store.append_batch(predictions).await {
                        Ok(c) => log.head.update(|h| *h = (*h).max(c.last_seq)),
                        Err(e) => log.fail(e),
                    }
                }
                if let Err(e) = result {
                    log.fail(e);
                    break;
                }
                let seq = self.set.with_value(|s| s.seq());
                self.seq.set(seq);
                if self.past.get_untracked().is_none() {
                    self.tick.update(|t| *t += 1);
                }
                if seq >= self.last_snapshot.get_value() + self.snapshot_every.get_untracked() {
                    self.snapshot(log).await;
                }
                if !self.again.get_value() {
                    break;
                }
            }
            self.following.set_value(false);
        });
    }

    /// Make `champion` the model that predicts live.
    pub fn set_champion(&self, champion: Champion) {
        self.champion_id.set(Some(champion.id.clone()));
        self.champion.set_value(Some(champion));
    }

    /// The champion's predictions for the open cases these new events
    /// touched (one per case, after its newest event), as appends.
    fn predict(&self, events: &[Recorded]) -> Vec<StreamAppend> {
        if !self.predicting.get_untracked() {
            return Vec::new();
        }
        let mut latest: std::collections::BTreeMap<&str, &Recorded> = Default::default();
        for e in events {
            match &e.fact {
                Fact::CaseOpened(c) => {
                    latest.insert(&c.case, e);
                }
                Fact::ActivityRecorded(a) => {
                    latest.insert(&a.case, e);
                }
                _ => {}
            }
        }
        self.champion.with_value(|champion| {
            let Some(champion) = champion else {
                return Vec::new();
            };
            self.set.with_value(|set| {
                let open = &set.open_cases.state.cases;
                let chosen: Vec<(&str, &Recorded)> = latest
                    .into_iter()
                    .filter(|(case, _)| open.contains_key(*case))
                    .collect();
                let rows: Vec<Vec<f64>> = chosen
                    .iter()
                    .map(|(case, _)| {
                        champion
                            .model
                            .schema
                            .row(&open[*case], open[*case].steps.len())
                    })
                    .collect();
                let Ok(predicted) = champion.model.predict(&rows) else {
                    return Vec::new();
                };
                let events: Vec<NewEvent> = chosen
                    .iter()
                    .zip(predicted)
                    .map(|((case, cause), hours)| {
                        let payload = PredictionRecorded {
                            case: case.to_string(),
                            model: champion.id.clone(),
                            predicted_h: hours,
                            baseline_h: champion.median_h,
                            prefix_len: open[*case].steps.len() as u32,
                        };
                        NewEvent::new(
                            format!("{}-p{}", cause.id, champion.id),
                            PredictionRecorded::TYPE,
                            PredictionRecorded::SCHEMA,
                            cause.occurred_at,
                            &payload,
                        )
                        .correlated(case.to_string())
                        .caused_by(cause.id.clone())
                    })
                    .collect();
                if events.is_empty() {
                    return Vec::new();
                }
                vec![StreamAppend::new(
                    format!("predictions-{}", champion.id),
                    ExpectedVersion::Any,
                    events,
                )]
            })
        })
    }

    /// Write snapshots of the live set now.
    pub async fn snapshot(self, log: Log) {
        let Some(store) = log.get() else { return };
        let (seq, snaps) = self.set.with_value(|s| (s.seq(), snapshots_of(s)));
        if seq == 0 || seq == self.last_snapshot.get_value() {
            return;
        }
        match snapshot::save_snapshots(&*store, snaps).await {
            Ok(()) => self.last_snapshot.set_value(seq),
            Err(e) => log.fail(e),
        }
    }

    fn snapshot_when_hidden(self, log: Log) {
        use wasm_bindgen::closure::Closure;
        use wasm_bindgen::JsCast;
        let Some(document) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        let handler = Closure::<dyn FnMut()>::new(move || {
            let hidden = web_sys::window()
                .and_then(|w| w.document())
                .is_some_and(|d| d.visibility_state() == web_sys::VisibilityState::Hidden);
            if hidden {
                spawn_local(self.snapshot(log));
            }
        });
        let _ = document
            .add_event_listener_with_callback("visibilitychange", handler.as_ref().unchecked_ref());
        handler.forget();
    }

    /// Show the state as of `seq` (None: back to live).
    pub fn travel(self, log: Log, seq: Option<u64>) {
        let Some(at) = seq else {
            self.past.set(None);
            self.past_set.set_value(None);
            self.tick.update(|t| *t += 1);
            return;
        };
        self.past.set(Some(at));
        let Some(store) = log.get() else { return };
        spawn_local(async move {
            let (mut set, _) = match snapshot::restore(&*store, at).await {
                Ok(r) => r,
                Err(e) => return log.fail(e),
            };
            if let Err(e) = replay(&mut set, &*store, at, BATCH, |_| {}).await {
                return log.fail(e);
            }
            // The slider may have moved on meanwhile: keep only the latest.
            if self.past.get_untracked() == Some(at) {
                self.past_set.set_value(Some(set));
                self.tick.update(|t| *t += 1);
            }
        });
    }
}

fn keep_newest(rows: &mut VecDeque<StreamRow>, events: &[Recorded]) {
    for e in events.iter().rev().take(STREAM_ROWS).rev() {
        rows.push_front(StreamRow::of(e));
    }
    rows.truncate(STREAM_ROWS);
}

fn now() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}
