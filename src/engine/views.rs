//! What the page's views show, taken from the projections: the newest rows
//! of a table, a chart's series, a count — never the projections themselves.
//! [`Views::of`] is computed where the projections are folded (the engine's
//! worker) and crosses to the page as plain data; the page only formats and
//! draws it.

use crate::domain::model::ModelTrained;
use crate::projection::feedback::{
    CaseTrace, Marker, MarkerKind, ModelScore, Role, ROLLING, STAGES,
};
use crate::projection::stats::{Change, DURATION_BUCKETS_H};
use crate::projection::ProjectionSet;
use serde::{Deserialize, Serialize};

/// Open cases listed (oldest first).
pub const OPEN_ROWS: usize = 15;
/// Days of the cases-per-day chart.
pub const PER_DAY: usize = 30;
/// Cases offered in the prediction-history chart (newest first).
pub const TRACES_SHOWN: usize = 30;

/// Everything the page's views show, at one position of the log.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Views {
    /// The position the projections stand at.
    pub seq: u64,
    /// Domain time of the newest event (None: nothing yet).
    pub newest_at: Option<i64>,
    /// Open cases.
    pub open: OpenCasesView,
    /// Cases each person works on now, by name.
    pub workload: Vec<(String, u32)>,
    /// The log's statistics.
    pub stats: StatsView,
    /// The feedback loop.
    pub feedback: FeedbackView,
    /// Every model the log registered, newest first, with its part now.
    pub registered: Vec<(ModelTrained, Role)>,
    /// The registered models whose bytes the log let go.
    pub released: Vec<String>,
}

/// The open cases table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenCasesView {
    /// How many cases are open.
    pub count: usize,
    /// The oldest [`OPEN_ROWS`] of them.
    pub rows: Vec<OpenRow>,
}

/// One open case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenRow {
    /// The case.
    pub case: String,
    /// When it opened (domain time).
    pub opened_at: i64,
    /// Its newest activity (None: only opened).
    pub last: Option<String>,
    /// Activities so far.
    pub steps: usize,
    /// Category and priority, when it has them.
    pub kind: String,
    /// The newest served prediction for it.
    pub predicted: Option<Left>,
}

/// A served prediction of the time a case has left.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Left {
    /// When it was made (domain time).
    pub made_at: i64,
    /// Hours left, as predicted then.
    pub hours: f64,
    /// Its 80 % interval, hours.
    pub interval: Option<(f64, f64)>,
}

/// The log's statistics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsView {
    /// Events.
    pub events: u64,
    /// Cases closed.
    pub closed: u64,
    /// Mean case duration, hours.
    pub mean_hours: Option<f64>,
    /// Events per type.
    pub types: Vec<(String, u64)>,
    /// (day, opened, closed) of the newest [`PER_DAY`] days up to the newest
    /// event, days without cases included.
    pub per_day: Vec<(i64, u32, u32)>,
    /// Cases per duration bucket (every bucket of [`DURATION_BUCKETS_H`] and
    /// the overflow).
    pub durations: Vec<u64>,
    /// Process changes.
    pub changes: Vec<Change>,
    /// A shared log's messages refused at their place: (seq, why), newest last.
    pub refused: Vec<(u64, String)>,
    /// How many were refused in all.
    pub refused_total: u64,
}

/// The feedback loop.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedbackView {
    /// On a shared log: who drives the loop in its current term (the name
    /// its `LoopTaken` gives), and where that term began.
    pub term: Option<(u64, String)>,
    /// The loop's decisions set aside (not of the term in force when they
    /// arrived): how many in all, and the newest (seq, what, why).
    pub set_aside: (u64, Vec<(u64, String)>),
    /// The champion, if any.
    pub champion: Option<String>,
    /// The challenger, if any.
    pub challenger: Option<String>,
    /// The duel so far: (champion's MAE, challenger's MAE, outcomes).
    pub duel: Option<(f64, f64, usize)>,
    /// Duel cases closed so far.
    pub duel_closed: usize,
    /// The story since the newest process change.
    pub since_change: Option<SinceChange>,
    /// The score table: what was served, then each model, newest first.
    pub rows: Vec<ScoreRow>,
    /// Served rolling MAE over domain time.
    pub served: Vec<(i64, f64)>,
    /// The challenger's rolling MAE over domain time.
    pub challenger_series: Option<(String, Vec<(i64, f64)>)>,
    /// What happened, to mark on the chart.
    pub markers: Vec<Marker>,
    /// (actual, predicted) remaining days of the newest served outcomes.
    pub recent: Vec<(f64, f64)>,
    /// Closed cases with their prediction histories, newest first.
    pub traces: Vec<CaseTrace>,
    /// The intervals of what was served by stage of the case: (activities
    /// done — `0`, `1`, … `4+` —, outcomes, share inside, mean width in days).
    #[serde(default)]
    pub stages: Vec<(String, u64, Option<f64>, Option<f64>)>,
}

/// Since the newest process change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SinceChange {
    /// When it changed (domain time).
    pub at: i64,
    /// The highest served rolling MAE since, days.
    pub peak: f64,
    /// The served rolling MAE now, days.
    pub now: f64,
    /// Models promoted since.
    pub promoted: usize,
}

/// One line of the score table (errors in days).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreRow {
    /// `served` or a model id.
    pub id: String,
    /// Its part, in words.
    pub role: String,
    /// Outcomes scored.
    pub outcomes: u64,
    /// Cumulative MAE.
    pub mae: Option<f64>,
    /// MAE over the last [`ROLLING`] outcomes (None for a retired model).
    pub rolling: Option<f64>,
    /// MAE over the last days of domain time (None for a retired model).
    pub window: Option<f64>,
    /// The median baseline on the same predictions.
    pub baseline: Option<f64>,
    /// 1 − MAE / median MAE.
    pub skill: Option<f64>,
    /// Mean of predicted − actual.
    pub bias: Option<f64>,
    /// Predictions waiting, and their mean prediction in days.
    pub waiting: (u64, Option<f64>),
    /// Mean time until the outcome arrived.
    pub delay: Option<f64>,
    /// `DriftDetected` events recorded for it.
    pub alarms: u64,
    /// Share of outcomes inside their 80 % interval.
    pub coverage: Option<f64>,
    /// Mean width of the interval.
    pub width: Option<f64>,
    /// The widest interval scored, days.
    pub width_max: Option<f64>,
    /// The interval's live width factor sits at a bound.
    pub scale_at_bound: bool,
    /// For a retired model: why (its retirement or the promotion that
    /// replaced it, as the chart marks it).
    #[serde(default)]
    pub why: Option<String>,
}

impl ScoreRow {
    fn of(id: String, role: Role, m: &ModelScore) -> ScoreRow {
        let retired = role == Role::Retired;
        ScoreRow {
            id,
            role: role.label().to_owned(),
            outcomes: m.outcomes,
            mae: m.mae(),
            rolling: (!retired).then(|| m.rolling_mae(ROLLING)).flatten(),
            window: (!retired).then(|| m.window_mae()).flatten(),
            baseline: m.baseline_mae(),
            skill: m.skill(),
            bias: m.bias(),
            waiting: (
                m.pending,
                (m.pending > 0).then(|| m.pending_sum_h / m.pending as f64 / 24.0),
            ),
            delay: m.label_delay(),
            alarms: m.recorded_drifts,
            coverage: m.coverage(),
            width: m.mean_width(),
            width_max: (m.interval_outcomes > 0).then_some(m.max_width_d),
            scale_at_bound: m.scale_at_bound(),
            why: None,
        }
    }

    /// Whether the model is retired (its recent errors are not shown).
    pub fn retired(&self) -> bool {
        self.role == Role::Retired.label()
    }
}

/// What moved in the views since they were last handed out: each panel's
/// view when it changed (None: the page keeps what it has). The first
/// update of an engine carries every panel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ViewsUpdate {
    /// The position the projections stand at.
    pub seq: u64,
    /// Domain time of the newest event.
    pub newest_at: Option<i64>,
    /// Open cases, if they changed.
    pub open: Option<OpenCasesView>,
    /// Workload, if it changed.
    pub workload: Option<Vec<(String, u32)>>,
    /// Statistics, if they changed.
    pub stats: Option<StatsView>,
    /// The feedback loop's figures, if they changed (its two biggest
    /// parts, which change more seldom, apart: `served` and `traces` are
    /// left empty here).
    pub feedback: Option<FeedbackView>,
    /// The served error's series, if it changed.
    pub served: Option<Vec<(i64, f64)>>,
    /// The prediction histories of closed cases, if they changed.
    pub traces: Option<Vec<CaseTrace>>,
    /// The registry and the released models, if either changed.
    pub registered: Option<Registry>,
}

/// Every registered model with its part, and those whose bytes went.
pub type Registry = (Vec<(ModelTrained, Role)>, Vec<String>);

impl ViewsUpdate {
    /// Every panel of `views`.
    pub fn whole(views: &Views) -> ViewsUpdate {
        views.since(None)
    }
}

impl Views {
    /// What changed from `before` to these views (everything, without it).
    pub fn since(&self, before: Option<&Views>) -> ViewsUpdate {
        fn moved<T: Clone + PartialEq>(now: &T, before: Option<&T>) -> Option<T> {
            (before != Some(now)).then(|| now.clone())
        }
        let registry = |v: &Views| (v.registered.clone(), v.released.clone());
        let parts = |v: &Views| {
            let mut figures = v.feedback.clone();
            let served = std::mem::take(&mut figures.served);
            let traces = std::mem::take(&mut figures.traces);
            (figures, served, traces)
        };
        let (figures, served, traces) = parts(self);
        let earlier = before.map(parts);
        let earlier = earlier.as_ref();
        ViewsUpdate {
            seq: self.seq,
            newest_at: self.newest_at,
            open: moved(&self.open, before.map(|b| &b.open)),
            workload: moved(&self.workload, before.map(|b| &b.workload)),
            stats: moved(&self.stats, before.map(|b| &b.stats)),
            feedback: moved(&figures, earlier.map(|p| &p.0)),
            served: moved(&served, earlier.map(|p| &p.1)),
            traces: moved(&traces, earlier.map(|p| &p.2)),
            registered: moved(&registry(self), before.map(registry).as_ref()),
        }
    }

    /// Take in what moved.
    pub fn apply(&mut self, update: ViewsUpdate) {
        self.seq = update.seq;
        self.newest_at = update.newest_at;
        if let Some(open) = update.open {
            self.open = open;
        }
        if let Some(workload) = update.workload {
            self.workload = workload;
        }
        if let Some(stats) = update.stats {
            self.stats = stats;
        }
        if let Some(feedback) = update.feedback {
            let served = std::mem::take(&mut self.feedback.served);
            let traces = std::mem::take(&mut self.feedback.traces);
            self.feedback = FeedbackView {
                served,
                traces,
                ..feedback
            };
        }
        if let Some(served) = update.served {
            self.feedback.served = served;
        }
        if let Some(traces) = update.traces {
            self.feedback.traces = traces;
        }
        if let Some((registered, released)) = update.registered {
            self.registered = registered;
            self.released = released;
        }
    }

    /// What the views show of `set`.
    pub fn of(set: &ProjectionSet) -> Views {
        let stats = &set.stats.state;
        Views {
            seq: set.seq(),
            newest_at: stats.span.map(|(_, b)| b),
            open: open_cases(set),
            workload: set
                .workload
                .state
                .now
                .by_resource
                .iter()
                .map(|(r, n)| (r.to_string(), *n))
                .collect(),
            stats: StatsView {
                events: stats.events,
                closed: stats.closed(),
                mean_hours: stats.mean_duration_h(),
                types: stats.by_type.iter().map(|(t, n)| (t.clone(), *n)).collect(),
                per_day: per_day(set),
                // Every bucket, before the first case closes too.
                durations: {
                    let mut d = stats.durations.clone();
                    d.resize(d.len().max(DURATION_BUCKETS_H.len() + 1), 0);
                    d
                },
                changes: stats.changes.clone(),
                refused: stats.refused.clone(),
                refused_total: stats.refused_total,
            },
            feedback: feedback(set),
            registered: {
                let f = &set.feedback.state;
                f.registered
                    .iter()
                    .rev()
                    .map(|r| (r.record.clone(), f.role(&r.record.id)))
                    .collect()
            },
            released: set.feedback.state.released().map(str::to_owned).collect(),
        }
    }
}

fn open_cases(set: &ProjectionSet) -> OpenCasesView {
    let open = &set.open_cases.state;
    let feedback = &set.feedback.state;
    let mut cases: Vec<_> = open.cases.values().collect();
    cases.sort_by_key(|c| c.opened_at);
    let rows = cases
        .into_iter()
        .take(OPEN_ROWS)
        .map(|c| OpenRow {
            case: c.case.clone(),
            opened_at: c.opened_at,
            last: c.steps.last().map(|s| s.activity.to_string()),
            steps: c.steps.len(),
            kind: ["category", "priority"]
                .iter()
                .filter_map(|k| c.attribute(k).map(|v| v.as_text()))
                .collect::<Vec<_>>()
                .join(", "),
            // The newest prediction of the model that was champion when it was made.
            predicted: feedback
                .pending
                .get(&c.case)
                .and_then(|p| p.iter().rev().find(|w| !w.prediction.shadow))
                .map(|w| Left {
                    made_at: w.made_at,
                    hours: w.prediction.predicted_h,
                    interval: w.prediction.low_h.zip(w.prediction.high_h),
                }),
        })
        .collect();
    OpenCasesView {
        count: open.cases.len(),
        rows,
    }
}

/// The newest [`PER_DAY`] calendar days up to the newest day with cases,
/// counting days without any as zero (the projection keeps only days that
/// had some, and thirty of those can span far more than thirty days).
fn per_day(set: &ProjectionSet) -> Vec<(i64, u32, u32)> {
    let days = &set.stats.state.per_day;
    let (Some((&first, _)), Some((&last, _))) = (days.iter().next(), days.iter().next_back())
    else {
        return Vec::new();
    };
    let day = crate::domain::calendar::DAY;
    let mut out = Vec::with_capacity(PER_DAY);
    let mut at = first.max(last - (PER_DAY as i64 - 1) * day);
    while at <= last {
        let (o, c) = days.get(&at).copied().unwrap_or((0, 0));
        out.push((at, o, c));
        at += day;
    }
    out
}

fn feedback(set: &ProjectionSet) -> FeedbackView {
    let f = &set.feedback.state;
    let since_change = (|| {
        let changed = f
            .markers
            .iter()
            .rev()
            .find(|m| m.kind == MarkerKind::ProcessChanged)?;
        let after: Vec<f64> = f
            .served
            .series
            .iter()
            .filter(|(t, _)| *t > changed.at)
            .map(|(_, m)| *m)
            .collect();
        Some(SinceChange {
            at: changed.at,
            peak: after.iter().copied().fold(f64::NAN, f64::max),
            now: *after.last()?,
            promoted: f
                .markers
                .iter()
                .filter(|m| m.kind == MarkerKind::Promoted && m.at > changed.at)
                .count(),
        })
    })();
    let mut rows = Vec::new();
    if f.served.outcomes > 0 {
        let mut served = ScoreRow::of("served".into(), Role::Champion, &f.served);
        served.role = "what the loop served".into();
        rows.push(served);
    }
    for (id, m) in f.models.iter().rev() {
        let mut row = ScoreRow::of(id.clone(), f.role(id), m);
        if row.retired() {
            // Why, in a few words: the newest of its retirement ("model-3
            // retired (reason)") or the promotion that replaced it
            // ("model-4 replaces model-3 (reason)"), as the chart marks them.
            let (retired, replaced) = (format!("{id} retired ("), format!(" replaces {id} ("));
            row.why = f.markers.iter().rev().find_map(|k| {
                if let Some(reason) = k.text.strip_prefix(&retired) {
                    return Some(reason.trim_end_matches(')').to_owned());
                }
                let (by, _) = k.text.split_once(&replaced)?;
                Some(format!("replaced by {by}"))
            });
        }
        rows.push(row);
    }
    FeedbackView {
        term: f.term.as_ref().map(|t| (t.seq, t.name.clone())),
        set_aside: (
            f.set_aside,
            f.set_aside_recent
                .iter()
                .map(|a| {
                    let said =
                        |t: Option<u64>| t.map_or("none".to_owned(), |t| format!("event {t}"));
                    (
                        a.seq,
                        format!(
                            "{}: made in term {}, while the loop's term was {}",
                            a.what,
                            said(a.terms.0),
                            said(a.terms.1)
                        ),
                    )
                })
                .collect(),
        ),
        champion: f.champion.clone(),
        challenger: f.challenger.clone(),
        duel: f.duel_mae(),
        duel_closed: f.duel_closed(),
        since_change,
        rows,
        served: f.served.series.clone(),
        challenger_series: f
            .challenger
            .as_ref()
            .and_then(|c| f.models.get(c).map(|m| (c.clone(), m.series.clone()))),
        markers: f.markers.iter().cloned().collect(),
        recent: f
            .served
            .recent
            .iter()
            .map(|o| (o.label_delay_d, o.signed_error_d + o.label_delay_d))
            .collect(),
        traces: f.traces.iter().rev().take(TRACES_SHOWN).cloned().collect(),
        stages: f
            .served
            .by_stage
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let name = if i + 1 == STAGES {
                    format!("{i}+")
                } else {
                    i.to_string()
                };
                (name, b.outcomes, b.coverage(), b.mean_width())
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
