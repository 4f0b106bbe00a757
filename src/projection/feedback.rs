//! Prequential feedback: every recorded prediction is scored when its case
//! closes, against the time that really remained — per model, beside the
//! median baseline's prediction for the same prefix.

use super::Projection;
use crate::domain::calendar::{DAY, HOUR};
use crate::domain::events::PredictionRecorded;
use crate::domain::{Fact, Recorded};
use crate::ml::drift::PageHinkley;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Outcomes in the rolling window.
pub const ROLLING: usize = 50;
/// Points kept in each model's rolling-MAE series.
pub const SERIES: usize = 600;

/// A prediction waiting for its outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The prediction.
    pub prediction: PredictionRecorded,
    /// When it was made (domain time).
    pub made_at: i64,
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
    /// (closed at, rolling MAE over the last [`ROLLING`] outcomes), thinned.
    pub series: Vec<(i64, f64)>,
    /// Predictions waiting for their outcome, and the sum of their predicted hours.
    pub pending: u64,
    /// Sum of pending predictions, hours (their mean is the distribution's centre).
    pub pending_sum_h: f64,
    /// Page-Hinkley on this model's absolute errors (days).
    pub detector: PageHinkley,
    /// When the detector fired: (closed at, statistic, outcomes so far).
    pub alarms: Vec<(i64, f64, u64)>,
    /// `DriftDetected` events already in the log for this model.
    pub recorded_drifts: u64,
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

    /// MAE of the outcomes kept that closed within `days` before `now`.
    pub fn rolling_mae_over(&self, days: f64, now: i64) -> Option<f64> {
        let since = now - (days * DAY as f64) as i64;
        let errors: Vec<f64> = self
            .recent
            .iter()
            .filter(|o| o.closed_at >= since)
            .map(|o| o.abs_error_d)
            .collect();
        (!errors.is_empty()).then(|| errors.iter().sum::<f64>() / errors.len() as f64)
    }

    fn score(&mut self, o: Outcome) {
        if let Some(statistic) = self.detector.update(o.abs_error_d) {
            self.alarms
                .push((o.closed_at, statistic, self.outcomes + 1));
        }
        self.outcomes += 1;
        self.abs_sum += o.abs_error_d;
        self.signed_sum += o.signed_error_d;
        self.baseline_abs_sum += o.baseline_abs_error_d;
        self.recent.push_back(o);
        if self.recent.len() > ROLLING {
            self.recent.pop_front();
        }
        let rolling = self.rolling_mae(ROLLING).unwrap_or(0.0);
        self.series.push((o.closed_at, rolling));
        if self.series.len() > SERIES {
            // Thin the older half: every other point.
            let keep_from = SERIES / 2;
            let mut thinned: Vec<(i64, f64)> = self.series[..keep_from]
                .iter()
                .step_by(2)
                .copied()
                .collect();
            thinned.extend_from_slice(&self.series[keep_from..]);
            self.series = thinned;
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
}

impl Feedback {
    /// Alarms the detector raised that the log does not hold yet, as
    /// `DriftDetected` payloads (the tab that predicts records them).
    pub fn unrecorded_drifts(&self) -> Vec<crate::domain::events::DriftDetected> {
        self.models
            .iter()
            .flat_map(|(model, s)| {
                s.alarms.iter().skip(s.recorded_drifts as usize).map(
                    move |(_, statistic, outcomes)| crate::domain::events::DriftDetected {
                        model: model.clone(),
                        statistic: *statistic,
                        threshold: s.detector.settings.lambda,
                        outcomes: *outcomes,
                    },
                )
            })
            .collect()
    }
}

impl Projection for Feedback {
    const NAME: &'static str = "feedback";
    const VERSION: u32 = 2;

    fn apply(&mut self, event: &Recorded) {
        match &event.fact {
            Fact::PredictionRecorded(p) => {
                let score = self.models.entry(p.model.clone()).or_default();
                score.pending += 1;
                score.pending_sum_h += p.predicted_h;
                self.pending
                    .entry(p.case.clone())
                    .or_default()
                    .push(Pending {
                        prediction: p.clone(),
                        made_at: event.occurred_at,
                    });
            }
            Fact::DriftDetected(d) => {
                self.models
                    .entry(d.model.clone())
                    .or_default()
                    .recorded_drifts += 1
            }
            Fact::CaseClosed(c) => {
                let Some(waiting) = self.pending.remove(&c.case) else {
                    return;
                };
                for w in waiting {
                    let actual_h = (event.occurred_at - w.made_at) as f64 / HOUR as f64;
                    let score = self.models.entry(w.prediction.model.clone()).or_default();
                    score.pending = score.pending.saturating_sub(1);
                    score.pending_sum_h -= w.prediction.predicted_h;
                    score.score(Outcome {
                        closed_at: event.occurred_at,
                        abs_error_d: (w.prediction.predicted_h - actual_h).abs() / 24.0,
                        signed_error_d: (w.prediction.predicted_h - actual_h) / 24.0,
                        baseline_abs_error_d: (w.prediction.baseline_h - actual_h).abs() / 24.0,
                        label_delay_d: actual_h / 24.0,
                    });
                }
            }
            _ => {}
        }
    }
}
