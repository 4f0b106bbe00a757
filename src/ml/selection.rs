//! Which model to serve, chosen on data: every candidate (the median
//! baseline among them) trains on the older part of the training cases and
//! is scored on the newest part, in time order; the best on that validation
//! wins, and its validation residuals calibrate the served model's interval.
//! The test cases of a backtest are never looked at.

use super::features::training_rows;
use super::features::FeatureSchema;
use super::models::{Algorithm, Model, ModelError, Spec};
use crate::domain::model::Candidate;
use crate::projection::training_set::Finished;

/// The newest share of the training cases that validates.
pub const VALIDATION: f64 = 0.2;
/// What the served interval covers.
pub const COVERAGE: f64 = crate::projection::feedback::INTERVAL_COVERAGE;

/// The candidates "choose for me" compares: the baseline, a linear model, a
/// forest, and boosting deep-and-few and shallow-and-many.
pub fn candidates() -> Vec<Spec> {
    let shallow = Spec {
        trees: 400,
        max_depth: 4,
        ..Spec::new(Algorithm::Boosted)
    };
    vec![
        Spec::new(Algorithm::Median),
        Spec::new(Algorithm::Ridge),
        Spec::new(Algorithm::RandomForest),
        Spec::new(Algorithm::Boosted),
        shallow,
    ]
}

/// A candidate's name: its algorithm, and its size where two share one.
pub fn name_of(spec: &Spec) -> String {
    match spec.algorithm {
        Algorithm::Boosted => format!(
            "{} ({} trees, depth {})",
            spec.label(),
            spec.trees,
            spec.max_depth
        ),
        _ => spec.label(),
    }
}

/// What the validation decided.
#[derive(Clone, Debug)]
pub struct Selection {
    /// The winner.
    pub spec: Spec,
    /// Every candidate's validation MAE, in the order tried.
    pub table: Vec<Candidate>,
    /// The winner's validation MAE, days.
    pub validation_mae_days: f64,
    /// The median baseline's validation MAE, days.
    pub baseline_mae_days: f64,
    /// The winner's residuals (truth − prediction, target scale) on the
    /// validation rows: what calibrates its interval.
    pub residuals: Vec<f64>,
    /// Validation cases.
    pub validation_cases: usize,
}

/// Split `cases` (in log order) into older and newest, train every spec on
/// the older, score on the newest, keep the best.
pub fn select(
    specs: &[Spec],
    cases: &[&Finished],
    progress: &mut dyn FnMut(&str),
) -> Result<Selection, ModelError> {
    let split = ((cases.len() as f64) * (1.0 - VALIDATION)).round() as usize;
    let split = split.clamp(1, cases.len().saturating_sub(1).max(1));
    let (older, newer) = cases.split_at(split.min(cases.len()));
    let schema = FeatureSchema::build(older.iter().map(|f| &f.trace));
    let (rows, hours) = training_rows(&schema, older);
    let (val_rows, val_hours) = training_rows(&schema, newer);
    if rows.is_empty() || val_rows.is_empty() {
        return Err(ModelError::NoRows);
    }
    let mut table = Vec::new();
    let mut best: Option<(f64, usize, Vec<f64>)> = None;
    let mut baseline = f64::NAN;
    for (i, spec) in specs.iter().enumerate() {
        progress(&format!(
            "validating {} ({} of {}) on {} newer cases",
            name_of(spec),
            i + 1,
            specs.len(),
            newer.len()
        ));
        let model = Model::train(spec, schema.clone(), &rows, &hours)?;
        let predicted = model.predict_target(&val_rows)?;
        let truth: Vec<f64> = val_hours.iter().map(|h| model.target_of(*h)).collect();
        let mae = predicted
            .iter()
            .map(|v| model.hours_of(*v))
            .zip(&val_hours)
            .map(|(p, t)| (p - t).abs())
            .sum::<f64>()
            / val_hours.len() as f64
            / 24.0;
        if spec.algorithm == Algorithm::Median {
            baseline = mae;
        }
        table.push(Candidate {
            name: name_of(spec),
            validation_mae_days: mae,
        });
        // Ties go to the earlier (simpler) candidate.
        if best.as_ref().is_none_or(|(m, _, _)| mae < *m) {
            let residuals = truth.iter().zip(&predicted).map(|(t, p)| t - p).collect();
            best = Some((mae, i, residuals));
        }
    }
    let (validation_mae_days, winner, residuals) = best.ok_or(ModelError::NoRows)?;
    Ok(Selection {
        spec: specs[winner].clone(),
        table,
        validation_mae_days,
        baseline_mae_days: baseline,
        residuals,
        validation_cases: newer.len(),
    })
}
