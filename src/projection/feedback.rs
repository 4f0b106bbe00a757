//! Prequential feedback: every recorded prediction is scored when its case
//! closes, against the time that really remained — per model, beside the
//! median baseline's prediction for the same prefix.

use super::drift::PageHinkley;
use super::Projection;
use crate::domain::calendar::{DAY, HOUR};
use crate::domain::events::PredictionRecorded;
use crate::domain::model::ModelTrained;
use crate::domain::{Fact, Recorded};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Outcomes in the rolling window.
pub const ROLLING: usize = 50;
/// Points kept in each model's rolling-MAE series.
pub const SERIES: usize = 600;
/// Domain time the windowed MAE covers, days.
pub const WINDOW_DAYS: f64 = 7.0;
/// Markers kept for the chart.
pub const MARKERS: usize = 400;
/// Duel halves kept waiting at most.
const DUEL_OPEN: usize = 10_000;
/// Closed cases remembered for late predictions: more than a replay batch.
pub const RECENTLY_CLOSED: usize = 5_000;
/// Closed cases whose prediction history is kept.
pub const TRACES: usize = 30;

/// Something the error chart marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MarkerKind {
    /// The process changed (the simulator's injected drift).
    ProcessChanged,
    /// The drift detector fired.
    Drift,
    /// A retrained model entered as challenger.
    Challenger,
    /// A model became champion.
    Promoted,
    /// A challenger was retired.
    Retired,
}

impl MarkerKind {
    /// In words, for legends.
    pub fn label(self) -> &'static str {
        match self {
            MarkerKind::ProcessChanged => "process changed",
            MarkerKind::Drift => "drift detected",
            MarkerKind::Challenger => "challenger trained",
            MarkerKind::Promoted => "promoted",
            MarkerKind::Retired => "retired",
        }
    }
}

/// A marker on the error chart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    /// Domain time.
    pub at: i64,
    /// Position in the log.
    pub seq: u64,
    /// What happened.
    pub kind: MarkerKind,
    /// In words.
    pub text: String,
}

/// One prediction in a case's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TracePoint {
    /// When it was made (domain time).
    pub made_at: i64,
    /// By which model.
    pub model: String,
    /// Predicted remaining time, hours.
    pub predicted_h: f64,
    /// Activities in the prefix.
    pub prefix_len: u32,
}

impl TracePoint {
    fn of(w: &Pending) -> TracePoint {
        TracePoint {
            made_at: w.made_at,
            model: w.prediction.model.clone(),
            predicted_h: w.prediction.predicted_h,
            prefix_len: w.prediction.prefix_len,
        }
    }
}

/// How a closed case's predicted remaining time evolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseTrace {
    /// The case.
    pub case: String,
    /// When it closed: the truth every prediction is measured against.
    pub closed_at: i64,
    /// Its predictions in the order they were made.
    pub points: Vec<TracePoint>,
}

/// A prediction waiting for its outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The prediction.
    pub prediction: PredictionRecorded,
    /// When it was made (domain time).
    pub made_at: i64,
    /// The case outlived the interval's upper end before it closed: the
    /// miss was known, and counted by the width factors, then.
    #[serde(default)]
    pub outlived: bool,
    /// The case was still open at the point's moment: the truth fell
    /// after it, and the point factors learnt so then.
    #[serde(default)]
    pub point_passed: bool,
}

/// One scored prediction.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// When the case closed.
    pub closed_at: i64,
    /// |predicted − actual|, days.
    pub abs_error_d: f64,
    /// predicted − actual, days (positive: too pessimistic).
    pub signed_error_d: f64,
    /// The baseline's |predicted − actual|, days.
    pub baseline_abs_error_d: f64,
    /// How long the label took to arrive, days.
    pub label_delay_d: f64,
    /// Whether the truth fell inside the prediction's interval, and the
    /// interval's width in days (None: the prediction had no interval).
    pub interval: Option<(bool, f64)>,
    /// The prediction's stage: activities done when it was made, the last
    /// stage taking every longer prefix (see [`stage_of`]).
    #[serde(default)]
    pub stage: u8,
}

/// Stages a case's predictions are grouped by: after 0, 1, 2, 3 and 4 or
/// more activities. Intervals are calibrated and reported per stage.
pub const STAGES: usize = 5;

/// The stage of a prediction made after `prefix_len` activities.
/// Take every deadline in `deadlines` before `now` whose prediction is
/// still pending and not yet marked by `mark`: mark it, and hand `then` its
/// stage, whether it was a shadow's, and its model.
fn passed(
    deadlines: &mut BTreeSet<(i64, String, i64, String)>,
    pending: &mut BTreeMap<String, Vec<Pending>>,
    now: i64,
    mark: fn(&mut Pending) -> &mut bool,
    mut then: impl FnMut(u8, bool, String),
) {
    while deadlines.first().is_some_and(|first| first.0 < now) {
        let (_, case, made_at, model) = deadlines.pop_first().expect("a first");
        let Some(w) = pending.get_mut(&case).and_then(|ws| {
            ws.iter_mut().find_map(|w| {
                let due = w.made_at == made_at && w.prediction.model == model && !*mark(w);
                due.then_some(w)
            })
        }) else {
            continue;
        };
        *mark(w) = true;
        then(
            stage_of(w.prediction.prefix_len as usize),
            w.prediction.shadow,
            model,
        );
    }
}

pub fn stage_of(prefix_len: usize) -> u8 {
    prefix_len.min(STAGES - 1) as u8
}

/// Interval figures of one stage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageScore {
    /// Outcomes whose prediction carried an interval.
    pub outcomes: u64,
    /// Of those, how many fell inside it.
    pub covered: u64,
    /// Sum of their widths, days.
    pub width_sum_d: f64,
    /// Log of the factor this stage's intervals are stretched by, learnt
    /// from its own outcomes as [`ModelScore::interval_scale`] is.
    #[serde(default)]
    pub scale_log: f64,
    /// Log of the factor this stage's point predictions are moved by,
    /// learnt from which side of them the truth fell (see
    /// [`ModelScore::point_shifts`]).
    #[serde(default)]
    pub point_log: f64,
}

impl StageScore {
    /// Share inside.
    pub fn coverage(&self) -> Option<f64> {
        (self.outcomes > 0).then(|| self.covered as f64 / self.outcomes as f64)
    }

    /// Mean width, days.
    pub fn mean_width(&self) -> Option<f64> {
        (self.outcomes > 0).then(|| self.width_sum_d / self.outcomes as f64)
    }
}

/// The detector fired.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    /// When (the close that tipped it).
    pub at: i64,
    /// The statistic, in mean errors.
    pub statistic: f64,
    /// Outcomes scored by then.
    pub outcomes: u64,
    /// Where the rise began, by the detector's estimate.
    pub since: i64,
}

/// One model's live score.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelScore {
    /// Outcomes scored.
    pub outcomes: u64,
    /// Sum of absolute errors, days.
    pub abs_sum: f64,
    /// Sum of signed errors, days.
    pub signed_sum: f64,
    /// Sum of the baseline's absolute errors on the same predictions, days.
    pub baseline_abs_sum: f64,
    /// The newest outcomes, oldest first.
    pub recent: VecDeque<Outcome>,
    /// (closed at, rolling MAE over the last [`ROLLING`] outcomes), one
    /// point every `stride` outcomes: at most [`SERIES`] points, evenly spread.
    pub series: Vec<(i64, f64)>,
    /// Outcomes per point of `series`.
    pub stride: u64,
    /// (closed at, absolute error) of the last [`WINDOW_DAYS`] of outcomes.
    pub window: VecDeque<(i64, f64)>,
    /// The newest close scored (the window ends there).
    pub newest: i64,
    /// Sum of label delays, days.
    pub delay_sum: f64,
    /// Predictions waiting for their outcome, and the sum of their predicted hours.
    pub pending: u64,
    /// Sum of pending predictions, hours (their mean is the distribution's centre).
    pub pending_sum_h: f64,
    /// Page-Hinkley on this model's absolute errors (days).
    pub detector: PageHinkley,
    /// When the detector fired.
    pub alarms: Vec<Alarm>,
    /// When the errors were last at their lowest, by the detector: where a
    /// rise would have begun.
    pub onset_at: i64,
    /// `DriftDetected` events already in the log for this model.
    pub recorded_drifts: u64,
    /// Outcomes whose prediction carried an interval.
    pub interval_outcomes: u64,
    /// Of those, how many fell inside it.
    pub covered: u64,
    /// Sum of those intervals' widths, days.
    pub width_sum_d: f64,
    /// The widest of those intervals, days.
    #[serde(default)]
    pub max_width_d: f64,
    /// The detector fired and waits for a new term before it watches again.
    pub disarmed: bool,
    /// Log of the factor the loop stretches this model's interval by,
    /// learnt from its scored predictions (see [`ModelScore::interval_scale`]).
    pub interval_scale_log: f64,
    /// Closed cases the detector has seen.
    pub cases_watched: u64,
    /// Interval figures by stage (see [`STAGES`]).
    #[serde(default)]
    pub by_stage: [StageScore; STAGES],
}

impl ModelScore {
    /// Cumulative MAE, days.
    pub fn mae(&self) -> Option<f64> {
        (self.outcomes > 0).then(|| self.abs_sum / self.outcomes as f64)
    }

    /// The baseline's MAE on the same predictions, days.
    pub fn baseline_mae(&self) -> Option<f64> {
        (self.outcomes > 0).then(|| self.baseline_abs_sum / self.outcomes as f64)
    }

    /// Skill: 1 − MAE / baseline MAE.
    pub fn skill(&self) -> Option<f64> {
        match (self.mae(), self.baseline_mae()) {
            (Some(m), Some(b)) if b > 0.0 => Some(1.0 - m / b),
            _ => None,
        }
    }

    /// Mean signed error, days.
    pub fn bias(&self) -> Option<f64> {
        (self.outcomes > 0).then(|| self.signed_sum / self.outcomes as f64)
    }

    /// MAE over the last `n` outcomes (at most [`ROLLING`]).
    pub fn rolling_mae(&self, n: usize) -> Option<f64> {
        let k = n.min(self.recent.len());
        (k > 0).then(|| {
            self.recent
                .iter()
                .rev()
                .take(k)
                .map(|o| o.abs_error_d)
                .sum::<f64>()
                / k as f64
        })
    }

    /// MAE of the outcomes of the last [`WINDOW_DAYS`] of domain time (up
    /// to the newest outcome), days.
    pub fn window_mae(&self) -> Option<f64> {
        // A prediction scored late may sit behind newer ones: filter, not just trim.
        let since = self.newest - (WINDOW_DAYS * DAY as f64) as i64;
        let (sum, n) = self
            .window
            .iter()
            .filter(|(t, _)| *t >= since)
            .fold((0.0, 0usize), |(s, n), (_, e)| (s + e, n + 1));
        (n > 0).then(|| sum / n as f64)
    }

    /// Mean label delay — how long outcomes took to arrive — days.
    pub fn label_delay(&self) -> Option<f64> {
        (self.outcomes > 0).then(|| self.delay_sum / self.outcomes as f64)
    }

    /// Feed one closed case's error (the mean of this model's predictions
    /// for it) to the drift detector. Errors of one case's predictions rise
    /// and fall together, so the detector sees a case once, not each of its
    /// predictions; and after an alarm it stays quiet until the model is
    /// promoted again or its challenger is retired — one alarm per change.
    fn watch(&mut self, error_d: f64, closed_at: i64) {
        if self.disarmed {
            return;
        }
        self.cases_watched += 1;
        let step = self.detector.step(error_d);
        if step.at_minimum {
            self.onset_at = closed_at;
        }
        if let Some(statistic) = step.alarm {
            self.alarms.push(Alarm {
                at: closed_at,
                statistic,
                outcomes: self.outcomes,
                since: self.onset_at,
            });
            self.disarmed = true;
        }
    }

    /// Watch again, from scratch (a new term as champion).
    fn rearm(&mut self) {
        self.detector = PageHinkley::new(self.detector.settings);
        self.disarmed = false;
    }

    /// How much to stretch this model's calibrated interval: adaptive
    /// conformal inference (Gibbs & Candès, 2021) on the log of a width
    /// factor. Each scored interval moves it — up by `STEP × 0.8` on a miss,
    /// down by `STEP × 0.2` on a hit — so it settles where 80 % are hit,
    /// whatever the calibration on held-back training cases assumed. It
    /// matters in the loop, where models learn from the cases that closed
    /// first and so miss most on the long ones still open.
    pub fn interval_scale(&self) -> f64 {
        self.interval_scale_log.exp()
    }

    /// The width factor of each stage of the case: what the loop stretches
    /// the intervals of predictions at that stage by. Two factors learn
    /// from the same misses and multiply: the model's from all of them (a
    /// shift common to every stage is caught fast), the stage's from its
    /// own (what sets that stage apart).
    pub fn stage_scales(&self) -> [f64; STAGES] {
        self.by_stage.map(|s| {
            (self.interval_scale_log + s.scale_log)
                .clamp(SCALE_LOG_BOUNDS.0, SCALE_LOG_BOUNDS.1)
                .exp()
        })
    }

    /// Whether the width factor sits at one of its bounds: the intervals
    /// no longer adapt that way, and the view says so.
    pub fn scale_at_bound(&self) -> bool {
        let (lo, hi) = SCALE_LOG_BOUNDS;
        self.interval_scale_log <= lo || self.interval_scale_log >= hi
    }

    /// The factor each stage's point predictions are moved by (on the
    /// scale of `1 + hours`): a median tracked online. Once the point's
    /// moment has passed, which side the truth fell on is known — the case
    /// closed before it, or it is still open — for long cases as for
    /// short ones, so the factor settles where half the cases end before
    /// the point, which is where the absolute error is least. A model
    /// trained on older cases drifts from that as the process moves; this
    /// follows it.
    pub fn point_shifts(&self) -> [f64; STAGES] {
        self.by_stage.map(|s| s.point_log.exp())
    }

    /// Move a stage's point factor: the truth fell `after` the point.
    fn nudge_point(&mut self, stage: u8, after: bool) {
        let stage = &mut self.by_stage[(stage as usize).min(STAGES - 1)];
        let step = if after { POINT_STEP } else { -POINT_STEP };
        stage.point_log = (stage.point_log + step).clamp(-POINT_LOG_BOUND, POINT_LOG_BOUND);
    }

    /// Share of outcomes inside their prediction's interval.
    pub fn coverage(&self) -> Option<f64> {
        (self.interval_outcomes > 0).then(|| self.covered as f64 / self.interval_outcomes as f64)
    }

    /// Mean interval width, days.
    pub fn mean_width(&self) -> Option<f64> {
        (self.interval_outcomes > 0).then(|| self.width_sum_d / self.interval_outcomes as f64)
    }

    /// Move the width factors by one interval's verdict.
    fn adapt(&mut self, stage: u8, inside: bool) {
        let miss = if inside { 0.0 } else { 1.0 };
        self.interval_scale_log = (self.interval_scale_log
            + ACI_STEP * (miss - (1.0 - INTERVAL_COVERAGE)))
            .clamp(SCALE_LOG_BOUNDS.0, SCALE_LOG_BOUNDS.1);
        let stage = &mut self.by_stage[(stage as usize).min(STAGES - 1)];
        stage.scale_log = (stage.scale_log + STAGE_ACI_STEP * (miss - (1.0 - INTERVAL_COVERAGE)))
            .clamp(SCALE_LOG_BOUNDS.0, SCALE_LOG_BOUNDS.1);
    }

    /// Score one outcome (`adapted`: its miss already moved the factors,
    /// when the case outlived the interval).
    fn score(&mut self, o: Outcome, adapted: bool) {
        if let Some((inside, width)) = o.interval {
            if !adapted {
                self.adapt(o.stage, inside);
            }
            self.interval_outcomes += 1;
            self.covered += inside as u64;
            self.width_sum_d += width;
            self.max_width_d = self.max_width_d.max(width);
            let stage = &mut self.by_stage[(o.stage as usize).min(STAGES - 1)];
            stage.outcomes += 1;
            stage.covered += inside as u64;
            stage.width_sum_d += width;
        }
        self.outcomes += 1;
        self.abs_sum += o.abs_error_d;
        self.signed_sum += o.signed_error_d;
        self.baseline_abs_sum += o.baseline_abs_error_d;
        self.delay_sum += o.label_delay_d;
        self.window.push_back((o.closed_at, o.abs_error_d));
        self.newest = self.newest.max(o.closed_at);
        let since = self.newest - (WINDOW_DAYS * DAY as f64) as i64;
        while self.window.front().is_some_and(|w| w.0 < since) {
            self.window.pop_front();
        }
        self.recent.push_back(o);
        if self.recent.len() > ROLLING {
            self.recent.pop_front();
        }
        if self.outcomes.is_multiple_of(self.stride.max(1)) {
            let rolling = self.rolling_mae(ROLLING).unwrap_or(0.0);
            // Scored in log order: a prediction recorded just after its case
            // closed is scored then, so time never runs backwards here.
            let at = self
                .series
                .last()
                .map_or(o.closed_at, |(t, _)| (*t).max(o.closed_at));
            self.series.push((at, rolling));
        }
        if self.series.len() > SERIES {
            // Halve the resolution everywhere: one point every `stride` outcomes.
            self.series = self.series.iter().step_by(2).copied().collect();
            self.stride = self.stride.max(1) * 2;
        }
    }
}

/// Predictions in flight and every model's score.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// Predictions per open case.
    pub pending: BTreeMap<String, Vec<Pending>>,
    /// Scores per model.
    pub models: BTreeMap<String, ModelScore>,
    /// The score of what the loop served: every champion prediction,
    /// whichever model was champion when it was made.
    pub served: ModelScore,
    /// The model whose predictions count (from `ModelPromoted`).
    pub champion: Option<String>,
    /// The model predicting in shadow (from `ChallengerStarted`).
    pub challenger: Option<String>,
    /// Why the challenger was trained (`drift`, `schedule`, …).
    #[serde(default)]
    pub challenger_reason: String,
    /// (champion's, challenger's) absolute errors, days, on every
    /// prediction both made since the challenger started, of any case (what
    /// users would have been served), scored as the cases closed.
    pub duel: Vec<(f64, f64)>,
    /// The same, summed per case: (champion's, challenger's, predictions).
    /// A case's predictions err together, so the duel's noise is counted
    /// in cases, not in predictions.
    #[serde(default)]
    pub duel_by_case: BTreeMap<String, (f64, f64, u32)>,
    /// The duel's cases: those opened since the challenger started, in the
    /// order they opened, each with its error pairs once it has closed.
    /// Judging on whole cases from their first step, not on the outcomes
    /// that happen to arrive first, keeps the duel fair: the first outcomes
    /// after a change come from the quickest cases, where both models err
    /// little, and the slow cases the change made are the ones that matter.
    pub duel_cases: Vec<DuelCase>,
    /// Where each of `duel_cases` stands in it.
    pub duel_index: BTreeMap<String, usize>,
    /// Halves of duel pairs waiting for the other model's error.
    pub duel_open: BTreeMap<(String, u32, i64), [Option<f64>; 2]>,
    /// Cases closed lately, with when: predictions recorded in the same
    /// commit as the close arrive after it and are scored on arrival.
    pub recently_closed: BTreeMap<String, i64>,
    /// The same cases, oldest first (to forget them).
    pub closed_order: VecDeque<String>,
    /// Cases closed.
    pub closed: u64,
    /// `closed` when the newest model started.
    pub closed_at_last_model: u64,
    /// The champion drifted and no challenger has been trained since.
    pub champion_drifted: bool,
    /// Cases closed since the champion's newest alarm.
    pub closed_since_alarm: u64,
    /// Markers for the error chart, oldest first.
    pub markers: VecDeque<Marker>,
    /// Prediction histories of the newest closed cases, oldest first.
    pub traces: VecDeque<CaseTrace>,
    /// Every model the log registered (`ModelTrained`), in log order.
    pub registered: Vec<Registered>,
    /// The newest domain time folded.
    #[serde(default)]
    pub now: i64,
    /// (upper end's moment, case, made at, model) of every pending
    /// prediction with an interval, soonest first: a case still open then
    /// has missed it, and the width factors learn so at once rather than
    /// when the case closes, months later perhaps.
    #[serde(default)]
    pub deadlines: BTreeSet<(i64, String, i64, String)>,
    /// (the point's moment, case, made at, model) of every pending
    /// prediction, soonest first: a case still open then ended after it.
    #[serde(default)]
    pub point_deadlines: BTreeSet<(i64, String, i64, String)>,
    /// On a shared log: the loop's term, the newest `LoopTaken` in the log
    /// (its position, its id, the browser it names). None: nobody ever took
    /// the loop, and decisions without a term count.
    #[serde(default)]
    pub term: Option<Term>,
    /// Decisions set aside because they were not of the loop's term (a
    /// driver that had lost its lease, or a teammate's replay), and the
    /// newest few of them.
    #[serde(default)]
    pub set_aside: u64,
    /// The newest decisions set aside, oldest first.
    #[serde(default)]
    pub set_aside_recent: VecDeque<SetAside>,
}

/// The loop's term on a shared log: who took it, where.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Term {
    /// The position of its `LoopTaken` (what decisions carry as `term`).
    pub seq: u64,
    /// That event's id.
    pub id: String,
    /// The browser's lasting id.
    pub browser: String,
    /// Its name.
    pub name: String,
}

/// A decision the fold did not count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetAside {
    /// Its position.
    pub seq: u64,
    /// What it was, in words.
    pub what: String,
    /// The term it carried, and the loop's term when it arrived.
    pub terms: (Option<u64>, Option<u64>),
}

/// Decisions set aside that the fold remembers.
pub const SET_ASIDE_KEPT: usize = 20;

/// One case of a duel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DuelCase {
    /// It has closed.
    pub closed: bool,
    /// (champion's, challenger's) absolute errors, days, on its prefixes.
    pub pairs: Vec<(f64, f64)>,
}

/// The share of outcomes a prediction's interval is meant to hold.
pub const INTERVAL_COVERAGE: f64 = 0.8;
/// The log of the interval's width factor stays between these: past them
/// the adaptation would only chase a model that no longer fits.
pub const SCALE_LOG_BOUNDS: (f64, f64) = (-2.0, 3.0);
/// How far one scored interval moves the log of its model's width factor.
const ACI_STEP: f64 = 0.01;
/// How far one verdict moves a stage's point factor (log scale): up on a
/// case that ended after the point, down on one that ended before.
pub const POINT_STEP: f64 = 0.005;
/// The point factor stays within e^±this.
const POINT_LOG_BOUND: f64 = 1.0;
/// The step of a stage's own factor.
const STAGE_ACI_STEP: f64 = 0.01;

/// Cases a duel follows at most.
const DUEL_CASES: usize = 2_000;

/// A model the log registered, as the registry lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    /// Where its `ModelTrained` stands in the log.
    pub seq: u64,
    /// What was recorded about it.
    pub record: ModelTrained,
    /// It has served or predicted in shadow (promoted or started as challenger).
    pub entered: bool,
    /// Where it left the loop (retired as challenger, or replaced as
    /// champion): the newest leavers keep their bytes longest.
    #[serde(default)]
    pub left_at: Option<u64>,
    /// Its bytes were let go (`ModelBytesReleased`): lineage and scores
    /// stay, it cannot predict again.
    #[serde(default)]
    pub released: bool,
}

/// A registered model's part in the loop now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Its predictions are served.
    Champion,
    /// It predicts in shadow, to be judged.
    Challenger,
    /// It served or competed once and no longer does.
    Retired,
    /// Trained, never entered the loop.
    Registered,
}

impl Role {
    /// In words, for tables.
    pub fn label(self) -> &'static str {
        match self {
            Role::Champion => "champion",
            Role::Challenger => "challenger",
            Role::Retired => "retired",
            Role::Registered => "registered",
        }
    }
}

impl Feedback {
    /// What `model` does in the loop now.
    pub fn role(&self, model: &str) -> Role {
        if self.champion.as_deref() == Some(model) {
            Role::Champion
        } else if self.challenger.as_deref() == Some(model) {
            Role::Challenger
        } else if self
            .registered
            .iter()
            .any(|r| r.record.id == model && !r.entered)
        {
            Role::Registered
        } else {
            Role::Retired
        }
    }

    /// The highest `model-N` number the log has registered (0: none).
    pub fn highest_model_number(&self) -> u64 {
        self.registered
            .iter()
            .filter_map(|r| r.record.id.strip_prefix("model-")?.parse().ok())
            .max()
            .unwrap_or(0)
    }

    fn entered(&mut self, model: &str) {
        if let Some(r) = self.registered.iter_mut().find(|r| r.record.id == model) {
            r.entered = true;
            r.left_at = None;
        }
    }

    fn left(&mut self, model: &str, seq: u64) {
        if let Some(r) = self.registered.iter_mut().find(|r| r.record.id == model) {
            r.left_at = Some(seq);
        }
        // What only a model in the loop shows (its recent errors, their
        // chart) goes with it: a log that trains often would otherwise
        // carry every retired model's in memory and in every snapshot.
        if let Some(score) = self.models.get_mut(model) {
            score.recent = VecDeque::new();
            score.window = VecDeque::new();
            score.series = Vec::new();
        }
    }

    /// Retired models whose bytes may go, oldest leaver first: every
    /// retired model but the `keep` that left the loop last, and none whose
    /// bytes are gone already. The champion, the challenger and models that
    /// never entered the loop (trained by hand, say) keep theirs.
    pub fn bytes_to_release(&self, keep: usize) -> Vec<&Registered> {
        let mut retired: Vec<&Registered> = self
            .registered
            .iter()
            .filter(|r| r.entered && self.role(&r.record.id) == Role::Retired)
            .collect();
        retired.sort_by_key(|r| (r.left_at.unwrap_or(0), r.seq));
        let go = retired.len().saturating_sub(keep);
        retired.truncate(go);
        retired.retain(|r| !r.released);
        retired
    }

    /// Models whose bytes the log let go.
    pub fn released(&self) -> impl Iterator<Item = &str> {
        self.registered
            .iter()
            .filter(|r| r.released)
            .map(|r| r.record.id.as_str())
    }

    fn mark(&mut self, event: &Recorded, kind: MarkerKind, text: String) {
        self.markers.push_back(Marker {
            at: event.occurred_at,
            seq: event.seq,
            kind,
            text,
        });
        if self.markers.len() > MARKERS {
            self.markers.pop_front();
        }
    }

    /// The duel so far: (champion's MAE, challenger's MAE, outcomes).
    pub fn duel_mae(&self) -> Option<(f64, f64, usize)> {
        let n = self.duel.len();
        (n > 0).then(|| {
            let (a, b) = self
                .duel
                .iter()
                .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
            (a / n as f64, b / n as f64, n)
        })
    }

    /// The duel's evidence once it can be judged on `cases` cases: the
    /// error pairs of the first `cases` opened since the challenger started,
    /// when every one of them has closed — or, should some stay open long,
    /// of every duel case closed once three times as many have. None: wait.
    pub fn duel_sample(&self, cases: usize) -> Option<Vec<(f64, f64)>> {
        let cases = cases.max(1);
        let pairs = |c: &[DuelCase]| -> Vec<(f64, f64)> {
            c.iter()
                .filter(|c| c.closed)
                .flat_map(|c| c.pairs.iter().copied())
                .collect()
        };
        if self.duel_cases.len() >= cases && self.duel_cases[..cases].iter().all(|c| c.closed) {
            return Some(pairs(&self.duel_cases[..cases]));
        }
        let closed = self.duel_cases.iter().filter(|c| c.closed).count();
        (closed >= 3 * cases).then(|| pairs(&self.duel_cases))
    }

    /// Everything the duel knows once it is judged: every shared
    /// prediction scored so far, and those of cases still open as the least
    /// each model has already erred — a case now older than a prediction
    /// says has missed it by at least the difference. Without the open
    /// ones, a challenger that predicts every case short would be judged on
    /// the cases short enough to have closed, and win.
    pub fn duel_evidence(&self) -> Vec<(f64, f64, u32)> {
        let (Some(champion), Some(challenger)) = (&self.champion, &self.challenger) else {
            return Vec::new();
        };
        let mut cases: Vec<(f64, f64, u32)> = self.duel_by_case.values().copied().collect();
        for waiting in self.pending.values() {
            let mut open: BTreeMap<(u32, i64), [Option<f64>; 2]> = BTreeMap::new();
            for w in waiting {
                let p = &w.prediction;
                let side = if &p.model == champion {
                    0
                } else if &p.model == challenger {
                    1
                } else {
                    continue;
                };
                let age_h = (self.now - w.made_at) as f64 / HOUR as f64;
                open.entry((p.prefix_len, w.made_at)).or_default()[side] =
                    Some((age_h - p.predicted_h).max(0.0) / 24.0);
            }
            let sums = open.into_values().fold((0.0, 0.0, 0), |s, v| match v {
                [Some(a), Some(b)] => (s.0 + a, s.1 + b, s.2 + 1),
                _ => s,
            });
            if sums.2 > 0 {
                cases.push(sums);
            }
        }
        cases
    }

    /// Cases of the duel closed so far.
    pub fn duel_closed(&self) -> usize {
        self.duel_cases.iter().filter(|c| c.closed).count()
    }

    /// Alarms the detector raised that the log does not hold yet, as
    /// `DriftDetected` payloads (the tab that predicts records them).
    pub fn unrecorded_drifts(&self) -> Vec<crate::domain::events::DriftDetected> {
        self.models
            .iter()
            .flat_map(|(model, s)| {
                s.alarms
                    .iter()
                    .skip(s.recorded_drifts as usize)
                    .map(move |a| crate::domain::events::DriftDetected {
                        model: model.clone(),
                        statistic: a.statistic,
                        threshold: s.detector.settings.lambda,
                        outcomes: a.outcomes,
                        since: a.since,
                        term: None,
                    })
            })
            .collect()
    }
}

impl Feedback {
    /// The prediction history of a closed case, started if it has none.
    fn trace(&mut self, case: &str, closed_at: i64) -> &mut CaseTrace {
        let at = match self.traces.iter().rposition(|t| t.case == case) {
            Some(i) => i,
            None => {
                self.traces.push_back(CaseTrace {
                    case: case.to_string(),
                    closed_at,
                    points: Vec::new(),
                });
                if self.traces.len() > TRACES {
                    self.traces.pop_front();
                }
                self.traces.len() - 1
            }
        };
        &mut self.traces[at]
    }

    /// Every pending prediction whose upper end `now` has passed has missed:
    /// the width factors of its model (and of what was served) learn it now.
    fn outlive(&mut self, now: i64) {
        let (served, models) = (&mut self.served, &mut self.models);
        let pending = &mut self.pending;
        // A point passed with its case still open: the truth is later.
        passed(
            &mut self.point_deadlines,
            pending,
            now,
            |w| &mut w.point_passed,
            |stage, shadow, model| {
                if !shadow {
                    served.nudge_point(stage, true);
                }
                models.entry(model).or_default().nudge_point(stage, true);
            },
        );
        // An interval's end passed with its case still open: a miss.
        passed(
            &mut self.deadlines,
            pending,
            now,
            |w| &mut w.outlived,
            |stage, shadow, model| {
                if !shadow {
                    served.adapt(stage, false);
                }
                models.entry(model).or_default().adapt(stage, false);
            },
        );
    }

    /// Score one prediction of a case that closed at `closed_at`.
    fn settle(&mut self, w: &Pending, closed_at: i64, was_pending: bool) {
        let p = &w.prediction;
        let actual_h = (closed_at - w.made_at) as f64 / HOUR as f64;
        let outcome = Outcome {
            closed_at,
            abs_error_d: (p.predicted_h - actual_h).abs() / 24.0,
            signed_error_d: (p.predicted_h - actual_h) / 24.0,
            baseline_abs_error_d: (p.baseline_h - actual_h).abs() / 24.0,
            label_delay_d: actual_h / 24.0,
            interval: match (p.low_h, p.high_h) {
                (Some(lo), Some(hi)) => Some((lo <= actual_h && actual_h <= hi, (hi - lo) / 24.0)),
                _ => None,
            },
            stage: stage_of(p.prefix_len as usize),
        };
        if !p.shadow {
            if was_pending {
                self.served.pending = self.served.pending.saturating_sub(1);
                self.served.pending_sum_h -= p.predicted_h;
            }
            self.served.score(outcome, w.outlived);
        }
        let score = self.models.entry(p.model.clone()).or_default();
        if was_pending {
            score.pending = score.pending.saturating_sub(1);
            score.pending_sum_h -= p.predicted_h;
        }
        score.score(outcome, w.outlived);
        if !w.point_passed {
            // Which side of the point the truth fell, known now.
            let after = actual_h > p.predicted_h;
            if !p.shadow {
                self.served.nudge_point(outcome.stage, after);
            }
            self.models
                .entry(p.model.clone())
                .or_default()
                .nudge_point(outcome.stage, after);
            if was_pending {
                let due = w.made_at + (p.predicted_h.clamp(0.0, 1e9) * HOUR as f64) as i64;
                self.point_deadlines
                    .remove(&(due, p.case.clone(), w.made_at, p.model.clone()));
            }
        }
        if let (Some(high), false) = (p.high_h.filter(|h| h.is_finite()), w.outlived) {
            let due = w.made_at + (high.min(1e9) * HOUR as f64) as i64;
            self.deadlines
                .remove(&(due, p.case.clone(), w.made_at, p.model.clone()));
        }

        self.join_duel(w, outcome.abs_error_d);
    }

    /// Pair the champion's and the challenger's errors on the same prefix.
    fn join_duel(&mut self, w: &Pending, error: f64) {
        let p = &w.prediction;
        let side = if self.champion.as_ref() == Some(&p.model) {
            0
        } else if self.challenger.as_ref() == Some(&p.model) {
            1
        } else {
            return;
        };
        if self.challenger.is_none() {
            return;
        }
        let key = (p.case.clone(), p.prefix_len, w.made_at);
        let entry = self.duel_open.entry(key.clone()).or_default();
        entry[side] = Some(error);
        if let [Some(a), Some(b)] = *entry {
            self.duel.push((a, b));
            let sums = self.duel_by_case.entry(p.case.clone()).or_default();
            *sums = (sums.0 + a, sums.1 + b, sums.2 + 1);
            if let Some(&at) = self.duel_index.get(&p.case) {
                self.duel_cases[at].pairs.push((a, b));
            }
            self.duel_open.remove(&key);
        } else if self.duel_open.len() > DUEL_OPEN {
            // A partner that never comes (a failed prediction) must not pile up.
            self.duel_open.remove(&key);
        }
    }

    fn reset_duel(&mut self) {
        self.duel.clear();
        self.duel_by_case.clear();
        self.duel_open.clear();
        self.duel_cases.clear();
        self.duel_index.clear();
    }
}

impl Feedback {
    /// Whether `event` counts: anything but a loop decision does; a
    /// decision counts when it carries the loop's term (both none on a log
    /// nobody took over). A `LoopTaken` starts a new term. Every copy of a
    /// shared log folds the same events in the same order, so every copy
    /// sets the same decisions aside.
    fn of_the_term(&mut self, event: &Recorded) -> bool {
        let (term, what) = match &event.fact {
            Fact::LoopTaken(t) => {
                self.term = Some(Term {
                    seq: event.seq,
                    id: event.id.clone(),
                    browser: t.browser.clone(),
                    name: t.name.clone(),
                });
                return true;
            }
            Fact::DriftDetected(d) => (d.term, format!("an alarm on {}", d.model)),
            Fact::ChallengerStarted(c) => (c.term, format!("{} entering as challenger", c.model)),
            Fact::ModelPromoted(p) => (p.term, format!("the promotion of {}", p.model)),
            Fact::ModelRetired(r) => (r.term, format!("the retirement of {}", r.model)),
            Fact::ModelBytesReleased(r) => (r.term, format!("the release of {}'s bytes", r.model)),
            _ => return true,
        };
        let current = self.term.as_ref().map(|t| t.seq);
        if term == current {
            return true;
        }
        self.set_aside += 1;
        self.set_aside_recent.push_back(SetAside {
            seq: event.seq,
            what,
            terms: (term, current),
        });
        if self.set_aside_recent.len() > SET_ASIDE_KEPT {
            self.set_aside_recent.pop_front();
        }
        false
    }
}

impl Projection for Feedback {
    const NAME: &'static str = "feedback";
    const VERSION: u32 = 12;

    fn apply(&mut self, event: &Recorded) {
        self.now = self.now.max(event.occurred_at);
        self.outlive(self.now);
        if !self.of_the_term(event) {
            return;
        }
        match &event.fact {
            Fact::PredictionRecorded(p) => {
                let w = Pending {
                    prediction: p.clone(),
                    made_at: event.occurred_at,
                    outlived: false,
                    point_passed: false,
                };
                // Predicted within the commit that closed the case: scored
                // at once (the prediction saw only the prefix before it).
                if let Some(closed_at) = self.recently_closed.get(&p.case).copied() {
                    self.trace(&p.case, closed_at)
                        .points
                        .push(TracePoint::of(&w));
                    self.settle(&w, closed_at, false);
                    return;
                }
                let score = self.models.entry(p.model.clone()).or_default();
                score.pending += 1;
                score.pending_sum_h += p.predicted_h;
                if !p.shadow {
                    self.served.pending += 1;
                    self.served.pending_sum_h += p.predicted_h;
                }
                if p.predicted_h.is_finite() {
                    let due =
                        event.occurred_at + (p.predicted_h.clamp(0.0, 1e9) * HOUR as f64) as i64;
                    self.point_deadlines.insert((
                        due,
                        p.case.clone(),
                        event.occurred_at,
                        p.model.clone(),
                    ));
                }
                if let Some(high) = p.high_h.filter(|h| h.is_finite()) {
                    let due = event.occurred_at + (high.min(1e9) * HOUR as f64) as i64;
                    self.deadlines.insert((
                        due,
                        p.case.clone(),
                        event.occurred_at,
                        p.model.clone(),
                    ));
                }
                self.pending.entry(p.case.clone()).or_default().push(w);
            }
            Fact::DriftDetected(d) => {
                self.models
                    .entry(d.model.clone())
                    .or_default()
                    .recorded_drifts += 1;
                if self.champion.as_deref() == Some(d.model.as_str()) {
                    self.champion_drifted = true;
                    // Cases closed since the rise began: the new regime's data.
                    // The new regime's data: the cases that close from now
                    // on. (The detector's estimate of where the rise began
                    // can fall before the change, and cases closed since
                    // then would teach a challenger the old process.)
                    self.closed_since_alarm = 0;
                }
                let text = format!(
                    "{}: error drifted ({:.0} > {:.0})",
                    d.model, d.statistic, d.threshold
                );
                self.mark(event, MarkerKind::Drift, text);
            }
            Fact::ProcessChanged(p) => {
                self.mark(event, MarkerKind::ProcessChanged, p.description.clone());
            }
            Fact::ChallengerStarted(c) => {
                self.challenger = Some(c.model.clone());
                self.challenger_reason = c.reason.clone();
                self.entered(&c.model);
                // One retrain per alarm: a new alarm or the schedule trains the next.
                self.champion_drifted = false;
                self.reset_duel();
                self.closed_at_last_model = self.closed;
                let text = format!(
                    "{} trained ({}, {} cases)",
                    c.model, c.reason, c.train_cases
                );
                self.mark(event, MarkerKind::Challenger, text);
            }
            Fact::ModelPromoted(p) => {
                if self.challenger.as_deref() == Some(p.model.as_str()) {
                    self.challenger = None;
                } else {
                    // A model promoted directly (the first, or by hand) is new too.
                    self.closed_at_last_model = self.closed;
                }
                if let Some(old) = self.champion.clone().filter(|old| *old != p.model) {
                    self.left(&old, event.seq);
                }
                // The detector watches the champion, from the day it starts.
                self.models.entry(p.model.clone()).or_default().rearm();
                self.champion = Some(p.model.clone());
                self.entered(&p.model);
                self.champion_drifted = false;
                self.reset_duel();
                let text = match &p.replaced {
                    Some(old) => format!("{} replaces {old} ({})", p.model, p.reason),
                    None => format!("{} is champion ({})", p.model, p.reason),
                };
                self.mark(event, MarkerKind::Promoted, text);
            }
            Fact::ModelTrained(m) => self.registered.push(Registered {
                seq: event.seq,
                record: (**m).clone(),
                entered: false,
                left_at: None,
                released: false,
            }),
            // Never the champion's or the challenger's: they predict.
            Fact::ModelBytesReleased(r)
                if self.champion.as_deref() != Some(r.model.as_str())
                    && self.challenger.as_deref() != Some(r.model.as_str()) =>
            {
                if let Some(m) = self.registered.iter_mut().find(|m| m.record.id == r.model) {
                    m.released = true;
                }
            }
            Fact::ModelRetired(r) => {
                if self.challenger.as_deref() == Some(r.model.as_str()) {
                    self.challenger = None;
                    self.reset_duel();
                    // The champion stays: watch it afresh for the next change.
                    if let Some(champion) = self.champion.clone() {
                        self.models.entry(champion).or_default().rearm();
                    }
                    self.left(&r.model, event.seq);
                }
                let text = format!("{} retired ({})", r.model, r.reason);
                self.mark(event, MarkerKind::Retired, text);
            }
            // A case opened while a challenger runs joins its duel.
            Fact::CaseOpened(c)
                if self.challenger.is_some() && self.duel_cases.len() < DUEL_CASES =>
            {
                self.duel_index
                    .insert(c.case.clone(), self.duel_cases.len());
                self.duel_cases.push(DuelCase::default());
            }
            Fact::CaseClosed(c) => {
                self.closed += 1;
                self.closed_since_alarm += 1;
                // Only a log with models in it can see late predictions (a
                // model's first predictions follow its ModelPromoted): a
                // log without any costs the fold nothing here.
                if self.champion.is_some() || !self.models.is_empty() {
                    self.recently_closed
                        .insert(c.case.clone(), event.occurred_at);
                    self.closed_order.push_back(c.case.clone());
                    if self.closed_order.len() > RECENTLY_CLOSED {
                        if let Some(old) = self.closed_order.pop_front() {
                            self.recently_closed.remove(&old);
                        }
                    }
                }
                if let Some(&at) = self.duel_index.get(&c.case) {
                    self.duel_cases[at].closed = true;
                }
                let Some(waiting) = self.pending.remove(&c.case) else {
                    return;
                };
                self.trace(&c.case, event.occurred_at).points =
                    waiting.iter().map(TracePoint::of).collect();
                for w in &waiting {
                    self.settle(w, event.occurred_at, true);
                }

                // The detector watches the champion (every model, while none
                // is on record: predictions made by hand), once per case.
                let mut per_model: BTreeMap<&str, (f64, u32)> = BTreeMap::new();
                for w in &waiting {
                    let p = &w.prediction;
                    if self.champion.as_ref().is_none_or(|c| *c == p.model) {
                        let actual_h = (event.occurred_at - w.made_at) as f64 / HOUR as f64;
                        let e = per_model.entry(p.model.as_str()).or_default();
                        e.0 += (p.predicted_h - actual_h).abs() / 24.0;
                        e.1 += 1;
                    }
                }
                for (model, (sum, n)) in per_model.into_iter() {
                    if let Some(score) = self.models.get_mut(model) {
                        score.watch(sum / n as f64, event.occurred_at);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(inside: bool) -> Outcome {
        Outcome {
            closed_at: 0,
            abs_error_d: 1.0,
            signed_error_d: 1.0,
            baseline_abs_error_d: 1.0,
            label_delay_d: 1.0,
            interval: Some((inside, 2.0)),
            stage: 0,
        }
    }

    fn at(seq: u64, fact: Fact) -> Recorded {
        Recorded {
            seq,
            id: format!("e{seq}"),
            occurred_at: seq as i64,
            stream: "models".into(),
            fact,
        }
    }

    fn promoted(model: &str, term: Option<u64>) -> Fact {
        Fact::ModelPromoted(crate::domain::events::ModelPromoted {
            model: model.into(),
            replaced: None,
            reason: "test".into(),
            champion_mae_d: None,
            challenger_mae_d: None,
            outcomes: 0,
            term,
        })
    }

    fn taken(browser: &str) -> Fact {
        Fact::LoopTaken(crate::domain::events::LoopTaken {
            browser: browser.into(),
            name: format!("browser {browser}"),
            lease: 1,
        })
    }

    #[test]
    fn once_a_browser_takes_the_loop_only_decisions_of_the_newest_term_count() {
        let mut f = Feedback::default();
        // A log nobody took over: decisions without a term count.
        f.apply(&at(1, promoted("model-1", None)));
        assert_eq!(f.champion.as_deref(), Some("model-1"));
        // A takes the loop at 2: from then on a decision needs term 2.
        f.apply(&at(2, taken("a")));
        f.apply(&at(3, promoted("model-2", None)));
        f.apply(&at(4, promoted("model-3", Some(7))));
        assert_eq!(
            f.champion.as_deref(),
            Some("model-1"),
            "no term, or a term never taken"
        );
        f.apply(&at(5, promoted("model-4", Some(2))));
        assert_eq!(f.champion.as_deref(), Some("model-4"));
        // B takes it at 6: A's late decisions are set aside, B's count.
        f.apply(&at(6, taken("b")));
        f.apply(&at(7, promoted("model-5", Some(2))));
        assert_eq!(f.champion.as_deref(), Some("model-4"));
        f.apply(&at(8, promoted("model-6", Some(6))));
        assert_eq!(f.champion.as_deref(), Some("model-6"));
        assert_eq!(
            f.term.as_ref().map(|t| (t.seq, t.browser.as_str())),
            Some((6, "b"))
        );
        assert_eq!(f.set_aside, 3);
        let seqs: Vec<u64> = f.set_aside_recent.iter().map(|a| a.seq).collect();
        assert_eq!(seqs, vec![3, 4, 7]);
        assert_eq!(f.set_aside_recent[2].terms, (Some(2), Some(6)));
        // Anything else is folded whatever the term.
        f.apply(&at(
            9,
            Fact::CaseClosed(crate::domain::events::CaseClosed {
                case: "c".into(),
                outcome: None,
            }),
        ));
        assert_eq!(f.closed, 1);
    }

    fn happened(seq: u64, hours: i64, fact: Fact) -> Recorded {
        Recorded {
            occurred_at: hours * HOUR,
            ..at(seq, fact)
        }
    }

    fn predicted(case: &str, hours: f64) -> Fact {
        Fact::PredictionRecorded(crate::domain::events::PredictionRecorded {
            case: case.into(),
            model: "model-1".into(),
            predicted_h: hours,
            baseline_h: hours,
            prefix_len: 0,
            shadow: false,
            low_h: None,
            high_h: None,
        })
    }

    fn closed(case: &str) -> Fact {
        Fact::CaseClosed(crate::domain::events::CaseClosed {
            case: case.into(),
            outcome: None,
        })
    }

    #[test]
    fn the_point_factor_learns_which_side_the_truth_fell_once_it_is_known() {
        let mut f = Feedback::default();
        let point = |f: &Feedback| f.served.by_stage[0].point_log;
        // Predicted to end in 1 h, still open at 2 h: it ends after the
        // point, known then — before the case closes.
        f.apply(&happened(1, 0, predicted("late", 1.0)));
        f.apply(&happened(2, 2, closed("other")));
        assert!((point(&f) - POINT_STEP).abs() < 1e-12, "{}", point(&f));
        // Its close (at 5 h) is not counted again.
        f.apply(&happened(3, 5, closed("late")));
        assert!((point(&f) - POINT_STEP).abs() < 1e-12, "{}", point(&f));
        // Predicted to end in 10 h, closed after 2: before the point.
        f.apply(&happened(4, 10, predicted("early", 10.0)));
        f.apply(&happened(5, 12, closed("early")));
        assert!(point(&f).abs() < 1e-12, "{}", point(&f));
        assert!(f.point_deadlines.is_empty(), "{:?}", f.point_deadlines);
        // Many late cases: the factor rises, bounded.
        for i in 0..1_000 {
            let case = format!("c{i}");
            f.apply(&happened(
                10 + 2 * i,
                100 + 3 * i as i64,
                predicted(&case, 0.5),
            ));
            f.apply(&happened(11 + 2 * i, 101 + 3 * i as i64, closed(&case)));
        }
        assert_eq!(point(&f), POINT_LOG_BOUND);
        assert!((f.served.point_shifts()[0] - POINT_LOG_BOUND.exp()).abs() < 1e-12);
    }

    #[test]
    fn intervals_that_miss_widen_and_intervals_that_always_hit_narrow() {
        let mut missing = ModelScore::default();
        (0..100).for_each(|_| missing.score(outcome(false), false));
        assert!(
            missing.interval_scale() > 2.0,
            "{}",
            missing.interval_scale()
        );
        let mut hitting = ModelScore::default();
        (0..100).for_each(|_| hitting.score(outcome(true), false));
        assert!(
            hitting.interval_scale() < 0.9,
            "{}",
            hitting.interval_scale()
        );
        // Four hits to a miss is what an 80 % interval should do: it stays.
        let mut right = ModelScore::default();
        (0..100).for_each(|i| right.score(outcome(i % 5 != 0), false));
        assert!(
            (right.interval_scale() - 1.0).abs() < 0.02,
            "{}",
            right.interval_scale()
        );
    }
}
