//! The prediction feedback loop, as pure decisions over the projections:
//! which predictions to record for new events, which drift alarms to write
//! down, and when to train, promote or retire a model. The engine
//! (`crate::engine`) runs these steps over a store — IndexedDB in the
//! page's worker, the memory store in native tests and replays.

use super::drift::{verdict_by_case, Verdict};
use super::models::Model;
use super::registry::ModelTrained;
use crate::domain::events::{
    ChallengerStarted, DriftDetected, ModelBytesReleased, ModelPromoted, ModelRetired,
    PredictionRecorded, MODELS_STREAM,
};
use crate::domain::{Fact, Recorded};
use crate::log::NewEvent;
use crate::projection::feedback::STAGES;
use crate::projection::training_set::Finished;
use crate::projection::{Feedback, ProjectionSet};
use crate::store::{ExpectedVersion, StreamAppend};
use serde::{Deserialize, Serialize};

/// A model ready to predict.
pub struct Loaded {
    /// Registry id.
    pub id: String,
    /// The model.
    pub model: Model,
    /// The median of its training targets, hours: the baseline beside it.
    pub median_h: f64,
}

/// When to retrain and how to judge a challenger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Train the first model by itself once this many cases have closed (0: never).
    pub first_after: u64,
    /// Train a challenger when the champion's error drifts, on the cases
    /// closed since the alarm, once there are `min_new_cases` of them.
    pub retrain_on_drift: bool,
    /// Cases of the new regime a retrain after drift waits for.
    pub min_new_cases: u64,
    /// Train a challenger every this many newly closed cases (0: never).
    pub retrain_every: u64,
    /// Train on the newest this many closed cases (0: all the training set holds).
    pub window: usize,
    /// Cases a challenger is judged on: the first this many opened after it
    /// started, once all have closed (every prediction of theirs that both
    /// models made counts).
    pub duel_cases: usize,
    /// How much better (a fraction of the champion's MAE) a challenger must be.
    pub margin: f64,
    /// Closed cases the training set keeps, the newest (each with its
    /// events, in the engine's memory): what training, the loop and the
    /// backtest can draw on.
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// Retired models that keep their bytes, the newest to leave the loop;
    /// the others' bytes are let go (`ModelBytesReleased`), their record
    /// and scores stay.
    #[serde(default = "default_keep_retired")]
    pub keep_retired: usize,
    /// Move each served point where half the cases have lately ended (the
    /// point factors of `ModelScore::point_shifts`), learnt live from which
    /// side of the points the truth fell.
    #[serde(default = "yes")]
    pub track_point: bool,
}

fn yes() -> bool {
    true
}

fn default_keep() -> usize {
    crate::projection::training_set::DEFAULT_WINDOW
}

fn default_keep_retired() -> usize {
    KEEP_RETIRED
}

/// Retired models whose bytes are kept, by default.
pub const KEEP_RETIRED: usize = 3;

/// The loop as the page runs it, and as `examples/prequential.rs` and the
/// loop's replay tests measure it: the first model after 300 mature cases,
/// a retrain on drift and every 250 closed cases, on every case the
/// training set keeps.
impl Default for Policy {
    fn default() -> Self {
        Policy {
            first_after: 300,
            retrain_on_drift: true,
            min_new_cases: 200,
            retrain_every: 250,
            window: 0,
            duel_cases: 60,
            margin: 0.05,
            keep: default_keep(),
            keep_retired: KEEP_RETIRED,
            track_point: true,
        }
    }
}

impl Policy {
    /// The policy the prequential replays use: the page's default.
    pub fn prequential() -> Policy {
        Policy::default()
    }

    /// The demo's: the first model early and a retrain on drift only, so
    /// its story (a change, an alarm, one challenger) fits in a minute.
    ///
    /// It does not move its points: a champion whose point follows the
    /// change absorbs part of it, and the retrained challenger's win — the
    /// story the demo tells in a minute — would not come every time.
    pub fn demo() -> Policy {
        Policy {
            first_after: 150,
            retrain_every: 0,
            window: 400,
            track_point: false,
            ..Policy::default()
        }
    }
}

/// How many standard errors (counted over cases) a drift challenger's
/// gain must exceed.
pub const NOISE_Z: f64 = 2.0;

/// What the loop should do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Train a model on the current log.
    Train {
        /// `first model`, `drift` or `schedule`.
        reason: &'static str,
        /// Train on the newest this many closed cases (0: all kept).
        window: usize,
    },
    /// The challenger won.
    Promote(ModelPromoted),
    /// The challenger lost.
    Retire(ModelRetired),
}

/// The next step of the loop for the state `f`, if any. Pure: the same log
/// gives the same decision, in any tab and on any replay.
pub fn decide(f: &Feedback, policy: &Policy) -> Option<Decision> {
    if let Some(challenger) = &f.challenger {
        // Judged once its own cases have closed, on everything both
        // models predicted meanwhile (see `Feedback::duel_evidence`).
        f.duel_sample(policy.duel_cases)?;
        let cases = f.duel_evidence();
        let outcomes: u64 = cases.iter().map(|c| c.2 as u64).sum();
        let mae = (outcomes > 0).then(|| {
            let n = outcomes as f64;
            (
                cases.iter().map(|c| c.0).sum::<f64>() / n,
                cases.iter().map(|c| c.1).sum::<f64>() / n,
            )
        });
        // A scheduled challenger is the champion's own recipe on more and
        // newer cases: it takes over unless it serves worse. One trained on
        // a drift alarm learnt from few cases and must win by the margin
        // and beyond the noise (an alarm can be false).
        let (margin, z) = if f.challenger_reason == "schedule" {
            (0.0, 0.0)
        } else {
            (policy.margin, NOISE_Z)
        };
        return match verdict_by_case(&cases, margin, z) {
            Verdict::Wait => Some(Decision::Retire(ModelRetired {
                model: challenger.clone(),
                reason: "no predictions shared with the champion".into(),
                champion_mae_d: None,
                challenger_mae_d: None,
                outcomes: 0,
                term: None,
            })),
            Verdict::Promote => Some(Decision::Promote(ModelPromoted {
                model: challenger.clone(),
                replaced: f.champion.clone(),
                reason: "beat the champion".into(),
                champion_mae_d: mae.map(|m| m.0),
                challenger_mae_d: mae.map(|m| m.1),
                outcomes,
                term: None,
            })),
            Verdict::Retire => Some(Decision::Retire(ModelRetired {
                model: challenger.clone(),
                reason: if margin > 0.0 {
                    format!(
                        "not {:.0} % better than the champion beyond the noise",
                        margin * 100.0
                    )
                } else {
                    "not better than the champion".into()
                },
                champion_mae_d: mae.map(|m| m.0),
                challenger_mae_d: mae.map(|m| m.1),
                outcomes,
                term: None,
            })),
        };
    }
    if f.champion.is_none() {
        return (policy.first_after > 0 && f.closed >= policy.first_after).then_some(
            Decision::Train {
                reason: "first model",
                window: policy.window,
            },
        );
    }
    if policy.retrain_on_drift && f.champion_drifted && f.closed_since_alarm >= policy.min_new_cases
    {
        return Some(Decision::Train {
            reason: "drift",
            window: f.closed_since_alarm as usize,
        });
    }
    if policy.retrain_every > 0 && f.closed - f.closed_at_last_model >= policy.retrain_every {
        return Some(Decision::Train {
            reason: "schedule",
            window: policy.window,
        });
    }
    None
}

/// The share of the cases known that may still be open among those a
/// training set is drawn from: the slowest few, left out rather than
/// waited for.
pub const STRAGGLERS: f64 = 0.02;

/// Cases opened before this moment have nearly all closed (all but the
/// [`STRAGGLERS`] share of the cases known): their durations are known
/// whatever their length, so a training set drawn from them is not biased
/// towards the cases that happen to close first. Early in a log, or in a
/// process whose cases run for months, the cases to have closed are the
/// short ones; a model trained on them predicts every case short.
/// `i64::MAX`: every open case is a straggler.
pub fn maturity_cutoff(set: &ProjectionSet) -> i64 {
    let mut open: Vec<i64> = set
        .open_cases
        .state
        .cases
        .values()
        .map(|c| c.opened_at)
        .collect();
    let known = open.len() + set.training.state.closed.len();
    let stragglers = (known as f64 * STRAGGLERS).floor() as usize;
    if open.len() <= stragglers {
        return i64::MAX;
    }
    open.select_nth_unstable(stragglers);
    open[stragglers]
}

/// How many closed cases the training set holds that opened before the
/// [`maturity_cutoff`].
pub fn mature_cases(set: &ProjectionSet) -> usize {
    let cut = maturity_cutoff(set);
    set.training
        .state
        .closed
        .iter()
        .filter(|f| f.trace.opened_at < cut)
        .count()
}

/// The closed cases to train on for `reason`: after a drift, the newest
/// `window` to close (the new regime, whatever its maturity); otherwise the
/// newest `window` of those opened before the [`maturity_cutoff`] (0: all
/// of them). In log order (the order they opened).
pub fn training_cases(set: &ProjectionSet, window: usize, reason: &str) -> Vec<Finished> {
    let closed = &set.training.state.closed;
    let cut = if reason == "drift" {
        i64::MAX
    } else {
        maturity_cutoff(set)
    };
    let eligible: Vec<&Finished> = closed.iter().filter(|f| f.trace.opened_at < cut).collect();
    let skip = if window == 0 {
        0
    } else {
        eligible.len().saturating_sub(window)
    };
    let mut cases: Vec<Finished> = eligible.into_iter().skip(skip).cloned().collect();
    cases.sort_by_key(|f| (f.trace.opened_at, f.closed_seq));
    cases
}

/// Apply `events` to `set` and predict, with the champion and (in shadow)
/// the challenger, the remaining time of every open case at every event it
/// gets — on the prefix that event completes — as appends to record. The
/// points follow the live median where `policy` says to.
pub fn apply_and_predict(
    set: &mut ProjectionSet,
    events: &[Recorded],
    champion: Option<&Loaded>,
    challenger: Option<&Loaded>,
    policy: &Policy,
) -> Vec<StreamAppend> {
    let models: Vec<(&Loaded, bool)> = [(champion, false), (challenger, true)]
        .into_iter()
        .filter_map(|(m, shadow)| Some((m?, shadow)))
        .collect();
    // (case, prefix length, cause) and one feature row per model.
    let mut due: Vec<(String, u32, &Recorded)> = Vec::new();
    let mut rows: Vec<Vec<Vec<f64>>> = vec![Vec::new(); models.len()];
    for e in events {
        set.apply(e);
        if models.is_empty() {
            continue;
        }
        let case = match &e.fact {
            Fact::CaseOpened(c) => &c.case,
            Fact::ActivityRecorded(a) => &a.case,
            _ => continue,
        };
        let Some(trace) = set.open_cases.state.cases.get(case) else {
            continue;
        };
        let len = trace.steps.len();
        for ((model, _), rows) in models.iter().zip(rows.iter_mut()) {
            rows.push(model.model.schema.row(trace, len));
        }
        due.push((case.clone(), len as u32, e));
    }
    let mut appends = Vec::new();
    for ((loaded, shadow), rows) in models.into_iter().zip(rows) {
        // The intervals' live recalibration: what the loop served carries
        // over from one champion to the next (they learn from the same
        // closed cases and miss the same long ones); a challenger in shadow
        // learns its own.
        let f = &set.feedback.state;
        let (scales, shifts) = if shadow {
            f.models
                .get(&loaded.id)
                .map_or(([1.0; STAGES], [1.0; STAGES]), |s| {
                    (s.stage_scales(), s.point_shifts())
                })
        } else {
            (f.served.stage_scales(), f.served.point_shifts())
        };
        let shifts = if policy.track_point {
            shifts
        } else {
            [1.0; STAGES]
        };
        let longest_h = set.training.state.longest_ms as f64 / crate::domain::calendar::HOUR as f64;
        let Ok(predicted) = loaded
            .model
            .predict_interval_scaled(&rows, &scales, longest_h)
        else {
            continue;
        };
        let calibrated = loaded.model.interval().is_some();
        let events: Vec<NewEvent> = due
            .iter()
            .zip(predicted)
            .map(|((case, len, cause), (hours, low, high))| {
                // The point, moved where half the cases have lately ended
                // (see `ModelScore::point_shifts`); the interval, calibrated
                // on its own, still holds it.
                let shift = shifts[crate::projection::feedback::stage_of(*len as usize) as usize];
                let hours = ((1.0 + hours.max(0.0)) * shift - 1.0).max(0.0);
                let (low, high) = (low.min(hours), high.max(hours));
                let payload = PredictionRecorded {
                    case: case.clone(),
                    model: loaded.id.clone(),
                    predicted_h: hours,
                    baseline_h: loaded.median_h,
                    prefix_len: *len,
                    shadow,
                    low_h: calibrated.then_some(low),
                    high_h: calibrated.then_some(high),
                };
                NewEvent::new(
                    format!("{}-p{}", cause.id, loaded.id),
                    PredictionRecorded::TYPE,
                    PredictionRecorded::SCHEMA,
                    cause.occurred_at,
                    &payload,
                )
                .correlated(case.clone())
                .caused_by(cause.id.clone())
            })
            .collect();
        if !events.is_empty() {
            appends.push(StreamAppend::new(
                format!("predictions-{}", loaded.id),
                ExpectedVersion::Any,
                events,
            ));
        }
    }
    appends
}

/// The newest domain time the log has reached.
pub fn log_time(set: &ProjectionSet) -> i64 {
    set.stats.state.span.map_or(0, |(_, b)| b)
}

/// Who records the loop's decisions, and under which term. On a log of
/// one's own there is no term and the ids are the plain, deterministic ones
/// (`model-3-promoted`): replays and tests give the same log. On a shared
/// log the driver stamps each decision with its term (the position of its
/// `LoopTaken`) and gives it an id nobody else can guess: the plain id,
/// the term, and a keyed hash of both under a secret only this browser's
/// engine knows — so a teammate cannot publish the id first and make the
/// driver's real decision count as already stored.
#[derive(Clone, Default)]
pub struct Stamp {
    /// The term decisions are made in (None: a log of one's own).
    pub term: Option<u64>,
    secret: Vec<u8>,
}

impl std::fmt::Debug for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs and panics.
        f.debug_struct("Stamp").field("term", &self.term).finish()
    }
}

impl Stamp {
    /// A log of one's own: plain ids, no term.
    pub fn local() -> Stamp {
        Stamp::default()
    }

    /// A log of one's own that holds a term (a shared log's export
    /// imported, say): plain ids, the log's term — nobody else decides here.
    pub fn local_in(term: Option<u64>) -> Stamp {
        Stamp {
            term,
            secret: Vec::new(),
        }
    }

    /// Decisions of term `term`, ids keyed by `secret` (random bytes the
    /// host draws; at least 16).
    pub fn driving(term: u64, secret: &[u8]) -> Stamp {
        Stamp {
            term: Some(term),
            secret: secret.to_vec(),
        }
    }

    /// The id of a decision whose plain id is `plain`.
    pub fn id(&self, plain: String) -> String {
        match self.term {
            _ if self.secret.is_empty() => plain,
            None => plain,
            Some(term) => {
                let tag = unguessable(&self.secret, &format!("{plain}-t{term}"));
                format!("{plain}-t{term}-{tag}")
            }
        }
    }
}

/// 64 bits of SHA-256 over `secret` and `what`, in hex: without the secret,
/// no better than a guess.
pub fn unguessable(secret: &[u8], what: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update((secret.len() as u64).to_le_bytes());
    h.update(secret);
    h.update(what.as_bytes());
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Alarms the detector raised that the log does not hold yet, as an append.
pub fn drift_events(set: &ProjectionSet, stamp: &Stamp) -> Option<StreamAppend> {
    let drifts = set.feedback.state.unrecorded_drifts();
    if drifts.is_empty() {
        return None;
    }
    let at = log_time(set);
    let events = drifts
        .into_iter()
        .map(|d| {
            let d = DriftDetected {
                term: stamp.term,
                ..d
            };
            NewEvent::new(
                stamp.id(format!("{}-drift-{}", d.model, d.outcomes)),
                DriftDetected::TYPE,
                DriftDetected::SCHEMA,
                at,
                &d,
            )
        })
        .collect();
    Some(StreamAppend::new("drift", ExpectedVersion::Any, events))
}

/// A lifecycle event (`ChallengerStarted`, `ModelPromoted`, `ModelRetired`)
/// on the models stream.
pub fn lifecycle<T: Serialize>(
    set: &ProjectionSet,
    id: String,
    (kind, schema): (&str, u32),
    payload: &T,
) -> StreamAppend {
    let event = NewEvent::new(id, kind, schema, log_time(set), payload);
    StreamAppend::new(MODELS_STREAM, ExpectedVersion::Any, vec![event])
}

/// How a newly trained model enters: champion if there is none, else challenger.
pub fn entry_event(
    set: &ProjectionSet,
    record: &ModelTrained,
    reason: &str,
    stamp: &Stamp,
) -> StreamAppend {
    let f = &set.feedback.state;
    if f.champion.is_none() {
        lifecycle(
            set,
            stamp.id(format!("{}-promoted", record.id)),
            (ModelPromoted::TYPE, ModelPromoted::SCHEMA),
            &ModelPromoted {
                model: record.id.clone(),
                replaced: None,
                reason: reason.to_string(),
                champion_mae_d: None,
                challenger_mae_d: None,
                outcomes: 0,
                term: stamp.term,
            },
        )
    } else {
        lifecycle(
            set,
            stamp.id(format!("{}-challenger", record.id)),
            (ChallengerStarted::TYPE, ChallengerStarted::SCHEMA),
            &ChallengerStarted {
                model: record.id.clone(),
                reason: reason.to_string(),
                median_h: record.median_h,
                train_cases: record.train_cases as u64 + record.holdout_cases as u64,
                term: stamp.term,
            },
        )
    }
}

/// The bytes of retired models past the newest `keep` let go, as one
/// append on the models stream (None: nothing to release).
pub fn release_events(set: &ProjectionSet, keep: usize, stamp: &Stamp) -> Option<StreamAppend> {
    let f = &set.feedback.state;
    let events: Vec<NewEvent> = f
        .bytes_to_release(keep)
        .into_iter()
        .map(|r| {
            NewEvent::new(
                stamp.id(format!("{}-released", r.record.id)),
                ModelBytesReleased::TYPE,
                ModelBytesReleased::SCHEMA,
                log_time(set),
                &ModelBytesReleased {
                    model: r.record.id.clone(),
                    size_bytes: r.record.size_bytes as u64,
                    reason: format!(
                        "retired; only the {keep} newest retired models keep their bytes"
                    ),
                    term: stamp.term,
                },
            )
        })
        .collect();
    (!events.is_empty()).then(|| StreamAppend::new(MODELS_STREAM, ExpectedVersion::Any, events))
}

/// The append for a promotion or retirement decision.
pub fn verdict_event(
    set: &ProjectionSet,
    decision: &Decision,
    stamp: &Stamp,
) -> Option<StreamAppend> {
    match decision {
        Decision::Promote(p) => Some(lifecycle(
            set,
            stamp.id(format!("{}-promoted", p.model)),
            (ModelPromoted::TYPE, ModelPromoted::SCHEMA),
            &ModelPromoted {
                term: stamp.term,
                ..p.clone()
            },
        )),
        Decision::Retire(r) => Some(lifecycle(
            set,
            stamp.id(format!("{}-retired", r.model)),
            (ModelRetired::TYPE, ModelRetired::SCHEMA),
            &ModelRetired {
                term: stamp.term,
                ..r.clone()
            },
        )),
        Decision::Train { .. } => None,
    }
}
