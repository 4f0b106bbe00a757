//! The standard offline evaluation of predictive process monitoring:
//! cases in log order, the first two thirds train and the last third test;
//! every test prefix of length 2 … n−1 (n = the case's activities) is
//! predicted; the target is the time that remained; MAE in days.

use super::features::FeatureSchema;
use super::models::{Algorithm, Model, ModelError, Spec};
use crate::domain::calendar::HOUR;
use crate::domain::decode;
use crate::io::parsed::{Completion, ParsedLog};
use crate::io::staged::to_appends;
use crate::projection::training_set::{Finished, TrainingSet};
use crate::projection::Projection;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One model's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Model name (algorithm and target).
    pub name: String,
    /// Mean absolute error over all evaluated prefixes, in days.
    pub mae_days: f64,
    /// Training rows.
    pub train_rows: usize,
    /// Training time, seconds.
    pub train_seconds: f64,
    /// (prefix length, MAE in days, prefixes) per length.
    pub by_prefix_len: Vec<(usize, f64, usize)>,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Closed cases in the log.
    pub cases: usize,
    /// Cases used for training.
    pub train_cases: usize,
    /// Cases used for testing.
    pub test_cases: usize,
    /// Evaluated prefixes.
    pub prefixes: usize,
    /// The median baseline's MAE, days.
    pub baseline_mae_days: f64,
    /// Every model, baseline included.
    pub models: Vec<Score>,
    /// The model the app would serve: chosen on the newest training cases
    /// (never the test cases), retrained on all of them, scored on the test.
    #[serde(default)]
    pub selected: Option<Selected>,
    /// Share of test prefixes whose remaining time fell inside the selected
    /// model's 80 % interval.
    #[serde(default)]
    pub interval_coverage: Option<f64>,
    /// Mean width of those intervals, days.
    #[serde(default)]
    pub interval_width_days: Option<f64>,
    /// Every candidate's validation MAE when the selected model was chosen.
    #[serde(default)]
    pub validation: Vec<crate::domain::model::Candidate>,
}

/// The model a backtest selected, as the app would.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Selected {
    /// Its name.
    pub name: String,
    /// Its MAE on the test prefixes, days.
    pub mae_days: f64,
    /// Its MAE on the validation cases it was chosen on, days.
    pub validation_mae_days: f64,
    /// Why it was chosen (the selection rule's words).
    #[serde(default)]
    pub reason: String,
}

impl Report {
    /// The best model other than the baseline.
    pub fn best(&self) -> Option<&Score> {
        self.models
            .iter()
            .filter(|m| m.name != "median baseline")
            .min_by(|a, b| a.mae_days.total_cmp(&b.mae_days))
    }
}

/// The models a backtest compares by default: the baseline, the linear
/// family, a forest and kNN on the log target, and the forest on raw hours
/// (to show what the target transform buys).
pub fn default_specs() -> Vec<Spec> {
    vec![
        Spec::new(Algorithm::Median),
        Spec::new(Algorithm::Linear),
        Spec::new(Algorithm::Ridge),
        Spec::new(Algorithm::RandomForest),
        Spec::new(Algorithm::RandomForest).on_hours(),
        Spec::new(Algorithm::Knn),
        Spec::new(Algorithm::Boosted),
    ]
}

pub use super::features::training_rows;

/// Run the protocol on `cases` (in log order) for every spec. `clock`
/// returns milliseconds (training time is measured with it).
pub fn run(
    cases: &[Finished],
    specs: &[Spec],
    clock: &dyn Fn() -> f64,
) -> Result<Report, ModelError> {
    run_with_progress(cases, specs, clock, &mut |_| {})
}

/// [`run`], telling `progress` which model it is training.
pub fn run_with_progress(
    cases: &[Finished],
    specs: &[Spec],
    clock: &dyn Fn() -> f64,
    progress: &mut dyn FnMut(&str),
) -> Result<Report, ModelError> {
    let split = cases.len() * 2 / 3;
    let (train, test) = cases.split_at(split);
    let train: Vec<&Finished> = train.iter().collect();
    let schema = FeatureSchema::build(train.iter().map(|f| &f.trace));
    let (rows, hours) = training_rows(&schema, &train);
    // Test prefixes 2 … n−1.
    let mut test_rows = Vec::new();
    let mut truth = Vec::new();
    let mut lens = Vec::new();
    for f in test {
        let n = f.trace.steps.len();
        for len in 2..n {
            test_rows.push(schema.row(&f.trace, len));
            truth.push((f.closed_at - f.trace.steps[len - 1].at) as f64 / HOUR as f64);
            lens.push(len);
        }
    }
    let mut models = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        progress(&format!(
            "training {} ({} of {}) on {} rows",
            spec.label(),
            i + 1,
            specs.len(),
            rows.len()
        ));
        let t0 = clock();
        let model = Model::train(spec, schema.clone(), &rows, &hours)?;
        let train_seconds = (clock() - t0) / 1000.0;
        let predicted = model.predict(&test_rows)?;
        let errors: Vec<f64> = predicted
            .iter()
            .zip(&truth)
            .map(|(p, t)| (p - t).abs() / 24.0)
            .collect();
        let mae_days = errors.iter().sum::<f64>() / errors.len().max(1) as f64;
        let mut by_len: std::collections::BTreeMap<usize, (f64, usize)> = Default::default();
        for (e, len) in errors.iter().zip(&lens) {
            let slot = by_len.entry(*len).or_default();
            slot.0 += e;
            slot.1 += 1;
        }
        models.push(Score {
            name: spec.label(),
            mae_days,
            train_rows: rows.len(),
            train_seconds,
            by_prefix_len: by_len
                .into_iter()
                .map(|(l, (s, n))| (l, s / n as f64, n))
                .collect(),
        });
    }
    let baseline_mae_days = models
        .iter()
        .find(|m| m.name == "median baseline")
        .map_or(f64::NAN, |m| m.mae_days);
    // What the app would serve, chosen without looking at the test cases.
    let chosen = super::selection::select(&super::selection::candidates(), &train, progress)?;
    progress(&format!(
        "retraining the chosen {} on all training cases",
        super::selection::name_of(&chosen.spec)
    ));
    let mut served = Model::train(&chosen.spec, schema.clone(), &rows, &hours)?;
    served.calibrate_by_stage(
        &chosen.residuals,
        &chosen.predictions,
        &chosen.stages,
        super::selection::COVERAGE,
    );
    let intervals = served.predict_interval(&test_rows)?;
    let n = truth.len().max(1) as f64;
    let mae = intervals
        .iter()
        .zip(&truth)
        .map(|((p, _, _), t)| (p - t).abs())
        .sum::<f64>()
        / n
        / 24.0;
    let covered = intervals
        .iter()
        .zip(&truth)
        .filter(|((_, lo, hi), t)| lo <= *t && *t <= hi)
        .count();
    let width = intervals.iter().map(|(_, lo, hi)| hi - lo).sum::<f64>() / n / 24.0;
    let calibrated = served.interval().is_some();
    Ok(Report {
        selected: Some(Selected {
            name: super::selection::name_of(&chosen.spec),
            mae_days: mae,
            validation_mae_days: chosen.validation_mae_days,
            reason: chosen.reason.clone(),
        }),
        interval_coverage: calibrated.then(|| covered as f64 / n),
        interval_width_days: calibrated.then_some(width),
        validation: chosen.table,
        cases: cases.len(),
        train_cases: train.len(),
        test_cases: test.len(),
        prefixes: truth.len(),
        baseline_mae_days,
        models,
    })
}

/// The closed cases of a parsed file, in file order (the order each case
/// first appears), with everything the projections know about them.
pub fn cases_in_file_order(log: &ParsedLog) -> Vec<Finished> {
    let (appends, _) = to_appends(log, "", &Completion::AllComplete, "bt");
    let mut set = TrainingSet::with_window(usize::MAX);
    let mut seq = 0;
    for a in appends {
        for e in a.events {
            seq += 1;
            if let Ok(r) = decode(e.into_envelope(seq, &a.stream, 1, 0)) {
                set.apply(&r);
            }
        }
    }
    let mut order: HashMap<&str, usize> = HashMap::new();
    for e in &log.events {
        let next = order.len();
        order.entry(e.case.as_str()).or_insert(next);
    }
    let mut cases: Vec<Finished> = set.closed.into_iter().collect();
    cases.sort_by_key(|f| {
        order
            .get(f.trace.case.as_str())
            .copied()
            .unwrap_or(usize::MAX)
    });
    cases
}
