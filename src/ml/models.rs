//! The models: smartcore regressors (always seeded) and the median
//! baseline, trained on a transformed target and serialised to compact
//! bytes with their feature schema.
//!
//! Remaining times are heavily skewed: most cases end soon, a few take
//! weeks. Trained on raw hours, squared-error learners chase the long tail
//! and miss the typical case; trained on `ln(1 + hours)` they predict a
//! geometric mean, which sits near the median — what minimises absolute
//! error. The backtest shows both, beside the median baseline.

use super::features::FeatureSchema;
use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::linear_regression::{
    LinearRegression, LinearRegressionParameters, LinearRegressionSolverName,
};
use smartcore::linear::ridge_regression::{
    RidgeRegression, RidgeRegressionParameters, RidgeRegressionSolverName,
};
use smartcore::metrics::distance::euclidian::Euclidian;
use smartcore::neighbors::knn_regressor::{KNNRegressor, KNNRegressorParameters};
use thiserror::Error;

pub use crate::domain::model::{Algorithm, Spec, Target, MODEL_FORMAT, OLDEST_MODEL_FORMAT};
use crate::projection::feedback::{stage_of, STAGES};

/// Model bytes before intervals by stage.
const FORMAT_WITHOUT_STAGES: u8 = 4;
use crate::store::snapshot::checksum;

type Matrix = DenseMatrix<f64>;

#[derive(Debug, Serialize, Deserialize)]
enum Fitted {
    Median(f64),
    Linear(LinearRegression<f64, f64, Matrix, Vec<f64>>),
    Ridge(RidgeRegression<f64, f64, Matrix, Vec<f64>>),
    Forest(RandomForestRegressor<f64, f64, Matrix, Vec<f64>>),
    Knn(KNNRegressor<f64, f64, Matrix, Vec<f64>, Euclidian<f64>>),
    Boosted(super::boosting::Boosted),
    /// Members trained on the same rows; their mean on the target's scale.
    Ensemble(Vec<Fitted>),
}

/// The members of [`Algorithm::Ensemble`]: ridge, the forest, and boosting
/// deep-and-few and shallow-and-many, each as it would be served alone.
pub fn ensemble_members() -> Vec<Spec> {
    vec![
        Spec::new(Algorithm::Ridge),
        Spec::new(Algorithm::RandomForest),
        Spec::new(Algorithm::Boosted),
        Spec {
            trees: 400,
            max_depth: 4,
            ..Spec::new(Algorithm::Boosted)
        },
    ]
}

/// Why training or prediction failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// Nothing to learn from.
    #[error("there are no training rows yet: import or simulate closed cases first")]
    NoRows,
    /// smartcore refused.
    #[error("{algorithm} could not be trained: {reason}")]
    Training {
        /// Which.
        algorithm: String,
        /// smartcore's words.
        reason: String,
    },
    /// Bytes that are not a model of this version.
    #[error(
        "the stored model cannot be read by this version of Retrace ({0}); retrain it from the log"
    )]
    Incompatible(String),
    /// Bytes of this version that do not check out.
    #[error("the stored model's bytes are damaged ({0}); the log still names it — train a new model (Models → Train)")]
    Damaged(String),
}

/// A trained model with everything needed to use it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Model {
    /// How it was trained.
    pub spec: Spec,
    /// How rows are made.
    pub schema: FeatureSchema,
    /// Standardisation (kNN): means and standard deviations per column.
    scale: Option<(Vec<f64>, Vec<f64>)>,
    /// The smallest and largest training target (after the transform):
    /// predictions are kept inside it, so a linear fit cannot extrapolate
    /// to absurd times.
    target_range: (f64, f64),
    fitted: Fitted,
    /// Offsets (in the target's scale) from a prediction to the ends of its
    /// interval, calibrated on held-back residuals; None: not calibrated.
    interval: Option<(f64, f64)>,
    /// The same, by stage of the case (activities done, see
    /// [`crate::projection::feedback::stage_of`]), where held-back rows of
    /// that stage were enough to calibrate on; the others use `interval`.
    /// Written after the rest (model format 5), so older bytes still load.
    #[serde(skip)]
    by_stage: Vec<Option<(f64, f64)>>,
}

/// Held-back rows a stage needs before it gets intervals of its own.
pub const STAGE_ROWS_MIN: usize = 100;

fn matrix(rows: &[Vec<f64>]) -> Result<Matrix, String> {
    DenseMatrix::from_2d_vec(&rows.to_vec()).map_err(|e| e.to_string())
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Model {
    /// Train on `rows` (made with `schema`) and remaining `hours`.
    pub fn train(
        spec: &Spec,
        schema: FeatureSchema,
        rows: &[Vec<f64>],
        hours: &[f64],
    ) -> Result<Model, ModelError> {
        if rows.is_empty() {
            return Err(ModelError::NoRows);
        }
        let y: Vec<f64> = match spec.target {
            Target::Hours => hours.to_vec(),
            Target::LogHours => hours.iter().map(|h| h.max(0.0).ln_1p()).collect(),
        };
        let mut scale = None;
        let fitted = match spec.algorithm {
            Algorithm::Ensemble => Fitted::Ensemble(
                ensemble_members()
                    .iter()
                    .map(|m| fit(m, rows, &y, &mut None))
                    .collect::<Result<_, _>>()?,
            ),
            _ => fit(spec, rows, &y, &mut scale)?,
        };
        let target_range = y
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        Ok(Model {
            spec: spec.clone(),
            schema,
            scale,
            target_range,
            fitted,
            interval: None,
            by_stage: Vec::new(),
        })
    }

    /// Predicted remaining hours for each row.
    pub fn predict(&self, rows: &[Vec<f64>]) -> Result<Vec<f64>, ModelError> {
        Ok(self
            .predict_target(rows)?
            .into_iter()
            .map(|v| self.hours_of(v))
            .collect())
    }

    /// Remaining hours and, once calibrated, the interval around them:
    /// `(predicted, low, high)` per row (low = high = predicted without one).
    pub fn predict_interval(&self, rows: &[Vec<f64>]) -> Result<Vec<(f64, f64, f64)>, ModelError> {
        self.predict_interval_scaled(rows, &[1.0; STAGES], 0.0)
    }

    /// [`Model::predict_interval`] with the calibrated offsets stretched by
    /// each row's stage's factor in `scales` (the loop's live
    /// recalibration, see
    /// [`crate::projection::feedback::ModelScore::stage_scales`]).
    /// No upper end passes the longer of the longest remaining time the
    /// model saw and `ceiling_h` (the loop passes the longest case the log
    /// has seen close, so cases longer than any the model learnt from can
    /// still be covered).
    pub fn predict_interval_scaled(
        &self,
        rows: &[Vec<f64>],
        scales: &[f64; STAGES],
        ceiling_h: f64,
    ) -> Result<Vec<(f64, f64, f64)>, ModelError> {
        // On the log scale a stretched offset would otherwise reach absurd
        // times (a width of billions of days), which says nothing.
        let top = self.hours_of(self.target_range.1).max(ceiling_h);
        Ok(self
            .predict_target(rows)?
            .into_iter()
            .zip(rows)
            .map(|(v, row)| {
                let (lo, hi) = self.offsets_for(row).unwrap_or((0.0, 0.0));
                let scale = scales[stage_of_row(row)];
                // Stretched about the interval's middle, so that a factor
                // above 1 always widens it, whichever side of the
                // prediction its ends lie.
                let mid = (lo + hi) / 2.0;
                let (lo, hi) = (mid + (lo - mid) * scale, mid + (hi - mid) * scale);
                let predicted = self.hours_of(v);
                (
                    predicted,
                    self.hours_of(v + lo).min(predicted),
                    self.hours_of(v + hi).min(top).max(predicted),
                )
            })
            .collect())
    }

    /// The target's value of `hours` (its log for a log-target model).
    pub fn target_of(&self, hours: f64) -> f64 {
        match self.spec.target {
            Target::Hours => hours,
            Target::LogHours => hours.max(0.0).ln_1p(),
        }
    }

    /// Hours from a value in the target's scale.
    pub fn hours_of(&self, v: f64) -> f64 {
        match self.spec.target {
            Target::Hours => v.max(0.0),
            Target::LogHours => v.max(0.0).exp_m1(),
        }
    }

    /// Calibrate the interval: `residuals` are (truth − prediction) in the
    /// target's scale on cases the model (or its twin) did not train on;
    /// the interval covers `coverage` of such cases (split conformal).
    pub fn calibrate(&mut self, residuals: &[f64], coverage: f64) {
        self.interval = conformal_offsets(residuals, coverage);
        self.by_stage.clear();
    }

    /// Calibrate the narrowest interval: of the split-conformal intervals
    /// that leave `1 − coverage` of the `residuals` outside, split between
    /// the tails in steps of 1 %, the one whose mean width in hours over
    /// `predictions` (the same rows' predictions, target scale) is least.
    /// Remaining times are skewed — many cases end at once, a few run for
    /// weeks — so the equal-tailed interval spends most of its width on a
    /// lower end nobody needs; "done any moment, at most X" is as honest
    /// and far narrower.
    pub fn calibrate_narrowest(&mut self, residuals: &[f64], predictions: &[f64], coverage: f64) {
        self.interval = self.narrowest(residuals, predictions, coverage);
        self.by_stage.clear();
    }

    /// [`Model::calibrate_narrowest`] on all rows, and again on each stage
    /// of the case (Mondrian conformal) that has [`STAGE_ROWS_MIN`] rows:
    /// a case just opened is far less certain than one four steps in, and
    /// one interval for both covers the first too rarely and the second
    /// too often. `stages` are the stages of the rows the residuals
    /// belong to.
    pub fn calibrate_by_stage(
        &mut self,
        residuals: &[f64],
        predictions: &[f64],
        stages: &[u8],
        coverage: f64,
    ) {
        self.interval = self.narrowest(residuals, predictions, coverage);
        self.by_stage = (0..STAGES)
            .map(|stage| {
                let (r, p): (Vec<f64>, Vec<f64>) = residuals
                    .iter()
                    .zip(predictions)
                    .zip(stages)
                    .filter(|(_, s)| **s as usize == stage)
                    .map(|((r, p), _)| (*r, *p))
                    .unzip();
                (r.len() >= STAGE_ROWS_MIN)
                    .then(|| self.narrowest(&r, &p, coverage))
                    .flatten()
            })
            .collect();
    }

    fn narrowest(
        &self,
        residuals: &[f64],
        predictions: &[f64],
        coverage: f64,
    ) -> Option<(f64, f64)> {
        let top = self.hours_of(self.target_range.1);
        let width = |(lo, hi): (f64, f64)| {
            let sum: f64 = predictions
                .iter()
                .map(|v| {
                    let p = self.hours_of(*v);
                    self.hours_of(v + hi).min(top).max(p) - self.hours_of(v + lo).min(p)
                })
                .sum();
            sum / predictions.len().max(1) as f64
        };
        narrowest_offsets(residuals, coverage, width)
    }

    /// The offsets a row's interval uses: its stage's, else the model's.
    fn offsets_for(&self, row: &[f64]) -> Option<(f64, f64)> {
        self.by_stage
            .get(stage_of_row(row))
            .copied()
            .flatten()
            .or(self.interval)
    }

    /// The calibrated offsets of each stage (None: it uses the model's).
    pub fn stage_intervals(&self) -> &[Option<(f64, f64)>] {
        &self.by_stage
    }

    /// The calibrated offsets, if any.
    pub fn interval(&self) -> Option<(f64, f64)> {
        self.interval
    }

    /// Predictions in the target's scale, kept inside the training range.
    pub fn predict_target(&self, rows: &[Vec<f64>]) -> Result<Vec<f64>, ModelError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let raw = predict_fitted(&self.fitted, rows, self.scale.as_ref(), &self.spec.label())?;
        let (lo, hi) = self.target_range;
        Ok(raw
            .into_iter()
            .map(|v| if v.is_finite() { v.clamp(lo, hi) } else { lo })
            .collect())
    }

    /// The model as bytes: a format byte, postcard, and the FNV-1a 64 of
    /// the postcard bytes (little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = postcard::to_allocvec(self).expect("models serialise");
        body.extend(postcard::to_allocvec(&self.by_stage).expect("offsets serialise"));
        let mut out = Vec::with_capacity(body.len() + 9);
        out.push(MODEL_FORMAT);
        out.extend_from_slice(&body);
        out.extend_from_slice(&checksum(&body).to_le_bytes());
        out
    }

    /// A model from [`Model::to_bytes`] (or format 4, the same without
    /// intervals by stage, or 3, without a checksum either), or why it
    /// cannot be used.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
        let damaged = |e: postcard::Error| ModelError::Damaged(e.to_string());
        match bytes.first() {
            Some(&MODEL_FORMAT) => {
                let (mut model, rest) =
                    postcard::take_from_bytes::<Model>(summed(bytes)?).map_err(damaged)?;
                model.by_stage = postcard::from_bytes(rest).map_err(damaged)?;
                if model.by_stage.len() > STAGES {
                    return Err(ModelError::Damaged("too many stages".into()));
                }
                model.checked()
            }
            Some(&FORMAT_WITHOUT_STAGES) => postcard::from_bytes::<Model>(summed(bytes)?)
                .map_err(damaged)?
                .checked(),
            Some(&OLDEST_MODEL_FORMAT) => postcard::from_bytes::<Model>(&bytes[1..])
                .map_err(damaged)?
                .checked(),
            Some(other) => Err(ModelError::Incompatible(format!(
                "model format {other}, this version reads {OLDEST_MODEL_FORMAT} to {MODEL_FORMAT}"
            ))),
            None => Err(ModelError::Damaged("no bytes".into())),
        }
    }
}

/// Fit one learner (not an ensemble) to `y`, the target's values; kNN
/// leaves its standardisation in `scale`.
fn fit(
    spec: &Spec,
    rows: &[Vec<f64>],
    y: &[f64],
    scale: &mut Option<(Vec<f64>, Vec<f64>)>,
) -> Result<Fitted, ModelError> {
    let fail = |reason: String| ModelError::Training {
        algorithm: spec.label(),
        reason,
    };
    let y = y.to_vec();
    Ok(match spec.algorithm {
        Algorithm::Ensemble => return Err(fail("an ensemble is not its own member".into())),
        Algorithm::Median => Fitted::Median(median(&y)),
        Algorithm::Linear => Fitted::Linear(
            LinearRegression::fit(
                &matrix(rows).map_err(fail)?,
                &y,
                LinearRegressionParameters::default().with_solver(LinearRegressionSolverName::SVD),
            )
            .map_err(|e| fail(e.to_string()))?,
        ),
        Algorithm::Ridge => Fitted::Ridge(
            RidgeRegression::fit(
                &matrix(rows).map_err(fail)?,
                &y,
                RidgeRegressionParameters::default()
                    .with_alpha(spec.alpha)
                    .with_solver(RidgeRegressionSolverName::SVD)
                    .with_normalize(false),
            )
            .map_err(|e| fail(e.to_string()))?,
        ),
        Algorithm::RandomForest => {
            let mut params = RandomForestRegressorParameters::default()
                .with_n_trees(spec.trees)
                .with_max_depth(spec.max_depth)
                .with_min_samples_leaf(spec.min_leaf)
                .with_seed(spec.seed);
            if spec.features_per_split > 0 {
                params = params.with_m(spec.features_per_split);
            }
            Fitted::Forest(
                RandomForestRegressor::fit(&matrix(rows).map_err(fail)?, &y, params)
                    .map_err(|e| fail(e.to_string()))?,
            )
        }
        Algorithm::Boosted => Fitted::Boosted(
            super::boosting::train(
                rows,
                &y,
                &super::boosting::BoostSettings {
                    rounds: spec.trees,
                    max_depth: spec.max_depth,
                    min_leaf: spec.min_leaf,
                    ..Default::default()
                },
            )
            .map_err(fail)?,
        ),
        Algorithm::Knn => {
            let (means, stds) = standardisation(rows);
            let scaled: Vec<Vec<f64>> =
                rows.iter().map(|r| apply_scale(r, &means, &stds)).collect();
            *scale = Some((means, stds));
            Fitted::Knn(
                KNNRegressor::fit(
                    &matrix(&scaled).map_err(fail)?,
                    &y,
                    KNNRegressorParameters::default().with_k(spec.k),
                )
                .map_err(|e| fail(e.to_string()))?,
            )
        }
    })
}

/// One fitted learner's raw predictions (the target's scale), kNN's rows
/// standardised with `scale`.
fn predict_fitted(
    fitted: &Fitted,
    rows: &[Vec<f64>],
    scale: Option<&(Vec<f64>, Vec<f64>)>,
    label: &str,
) -> Result<Vec<f64>, ModelError> {
    let fail = |reason: String| ModelError::Training {
        algorithm: label.to_string(),
        reason,
    };
    Ok(match fitted {
        Fitted::Median(m) => vec![*m; rows.len()],
        Fitted::Linear(m) => m
            .predict(&matrix(rows).map_err(fail)?)
            .map_err(|e| fail(e.to_string()))?,
        Fitted::Ridge(m) => m
            .predict(&matrix(rows).map_err(fail)?)
            .map_err(|e| fail(e.to_string()))?,
        Fitted::Forest(m) => m
            .predict(&matrix(rows).map_err(fail)?)
            .map_err(|e| fail(e.to_string()))?,
        Fitted::Boosted(m) => rows.iter().map(|r| m.predict_row(r)).collect(),
        Fitted::Knn(m) => {
            let (means, stds) = scale.ok_or_else(|| fail("kNN without its scale".into()))?;
            let scaled: Vec<Vec<f64>> = rows.iter().map(|r| apply_scale(r, means, stds)).collect();
            m.predict(&matrix(&scaled).map_err(fail)?)
                .map_err(|e| fail(e.to_string()))?
        }
        Fitted::Ensemble(members) => {
            let mut sum = vec![0.0; rows.len()];
            for member in members {
                // Each member kept to its own sane range: one that fails
                // to a non-finite value must not poison the mean.
                for (s, v) in sum
                    .iter_mut()
                    .zip(predict_fitted(member, rows, scale, label)?)
                {
                    *s += if v.is_finite() { v } else { 0.0 };
                }
            }
            let n = members.len().max(1) as f64;
            sum.into_iter().map(|s| s / n).collect()
        }
    })
}

impl Model {
    /// The model if its trees can be walked safely (see
    /// [`super::boosting::Boosted::check`]); the checksum only says the bytes
    /// are those written, not that whoever wrote them meant well.
    fn checked(self) -> Result<Model, ModelError> {
        fn check(f: &Fitted) -> Result<(), String> {
            match f {
                Fitted::Boosted(b) => b.check(),
                Fitted::Ensemble(members) => members.iter().try_for_each(check),
                _ => Ok(()),
            }
        }
        check(&self.fitted).map_err(ModelError::Damaged)?;
        Ok(self)
    }
}

/// The body of model bytes that end in their checksum (formats 4 and 5),
/// once the checksum holds.
fn summed(bytes: &[u8]) -> Result<&[u8], ModelError> {
    let rest = &bytes[1..];
    if rest.len() < 8 {
        return Err(ModelError::Damaged("cut short".into()));
    }
    let (body, sum) = rest.split_at(rest.len() - 8);
    let stored = u64::from_le_bytes(sum.try_into().expect("eight bytes"));
    if checksum(body) != stored {
        return Err(ModelError::Damaged("checksum mismatch".into()));
    }
    Ok(body)
}

/// The stage of a feature row (its first column is the activities done).
fn stage_of_row(row: &[f64]) -> usize {
    stage_of(row.first().copied().unwrap_or(0.0).max(0.0) as usize) as usize
}

/// Split-conformal offsets: the residual quantiles at (1 − coverage)/2 and
/// (1 + coverage)/2, with the finite-sample correction (the ⌈(n+1)·q⌉-th
/// smallest), so that a new case falls inside with at least `coverage`.
pub fn conformal_offsets(residuals: &[f64], coverage: f64) -> Option<(f64, f64)> {
    let r = sorted_finite(residuals)?;
    let coverage = coverage.clamp(0.0, 1.0);
    Some(offsets_at(&r, (1.0 - coverage) / 2.0, coverage))
}

/// The finite residuals, sorted; None when fewer than ten are left.
fn sorted_finite(residuals: &[f64]) -> Option<Vec<f64>> {
    let mut r: Vec<f64> = residuals
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if r.len() < 10 {
        return None;
    }
    r.sort_by(f64::total_cmp);
    Some(r)
}

/// The offsets leaving `low_tail` of the sorted residuals `r` below and
/// `coverage` between, with the finite-sample correction.
fn offsets_at(r: &[f64], low_tail: f64, coverage: f64) -> (f64, f64) {
    let n = r.len();
    let low = (((n + 1) as f64 * low_tail).floor() as usize).clamp(1, n);
    let high = (((n + 1) as f64 * (low_tail + coverage)).ceil() as usize).clamp(1, n);
    (r[low - 1], r[high - 1])
}

/// The split-conformal offsets with `coverage` of `residuals` between them
/// whose `width` is least, the lower tail taking 0 %, 1 %, … of the
/// `1 − coverage` left out (ties go to the more equal split).
pub fn narrowest_offsets(
    residuals: &[f64],
    coverage: f64,
    width: impl Fn((f64, f64)) -> f64,
) -> Option<(f64, f64)> {
    let r = sorted_finite(residuals)?;
    let coverage = coverage.clamp(0.0, 1.0);
    let left_out = 1.0 - coverage;
    let steps = (left_out * 100.0).round() as usize;
    let pair = |low_tail: f64| offsets_at(&r, low_tail, coverage);
    let equal = pair(left_out / 2.0);
    let mut best = (width(equal), equal);
    for step in 0..=steps {
        let offsets = pair(step as f64 / 100.0);
        let w = width(offsets);
        if w.is_finite() && w < best.0 * (1.0 - 1e-9) {
            best = (w, offsets);
        }
    }
    Some(best.1)
}

fn standardisation(rows: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
    let n = rows.len() as f64;
    let width = rows[0].len();
    let mut means = vec![0.0; width];
    for r in rows {
        for (m, v) in means.iter_mut().zip(r) {
            *m += v / n;
        }
    }
    let mut stds = vec![0.0; width];
    for r in rows {
        for ((s, v), m) in stds.iter_mut().zip(r).zip(&means) {
            *s += (v - m) * (v - m) / n;
        }
    }
    let stds = stds
        .into_iter()
        .map(|v| if v > 1e-12 { v.sqrt() } else { 1.0 })
        .collect();
    (means, stds)
}

fn apply_scale(row: &[f64], means: &[f64], stds: &[f64]) -> Vec<f64> {
    row.iter()
        .zip(means)
        .zip(stds)
        .map(|((v, m), s)| (v - m) / s)
        .collect()
}
