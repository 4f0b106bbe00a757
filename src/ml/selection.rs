//! Which model to serve, chosen on data by rolling-origin validation: the
//! training cases in time order are cut into folds — train on everything
//! before a block of newer cases, validate on that block — and every
//! candidate is scored on every fold. The test cases of a backtest are
//! never looked at.
//!
//! One split ranks candidates by noise as often as by merit: on a log where
//! five candidates lie within 2 % of each other on one validation block,
//! the "winner" can be 35 % worse than another on the cases that follow.
//! So the rule starts from a robust default — the ensemble, the mean of
//! ridge, the forest and both boostings on the log scale — and lets a
//! single candidate replace it only when it is better on every fold and by
//! at least [`MARGIN`] on their mean. Whatever is chosen must beat the
//! median baseline on the folds; otherwise the median itself is served,
//! and the choice says so. The chosen model's residuals on every fold
//! calibrate its interval.

use super::features::training_rows;
use super::features::FeatureSchema;
use super::models::{ensemble_members, Algorithm, Model, ModelError, Spec};
use crate::domain::model::Candidate;
use crate::projection::training_set::Finished;

/// Validation blocks, newest last.
pub const FOLDS: usize = 3;
/// The share of the training cases each block holds.
pub const FOLD_SHARE: f64 = 0.1;
/// How much better on the folds' mean a single candidate must be to
/// replace the ensemble (and be better on every fold too).
pub const MARGIN: f64 = 0.02;
/// The fewest cases a fold must validate on for its verdict to replace the
/// ensemble: on a few dozen cases, "better on every fold" is chance.
pub const FOLD_CASES_TO_REPLACE: usize = 50;
/// What the served interval covers.
pub const COVERAGE: f64 = crate::projection::feedback::INTERVAL_COVERAGE;

/// The candidates "choose for me" compares: the baseline, a linear model, a
/// forest, boosting deep-and-few and shallow-and-many, and the ensemble of
/// those four (scored from their own predictions, at no extra training).
pub fn candidates() -> Vec<Spec> {
    let mut specs = vec![Spec::new(Algorithm::Median)];
    specs.extend(ensemble_members());
    specs.push(Spec::new(Algorithm::Ensemble));
    specs
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
    /// Every candidate's mean validation MAE and its folds, in the order tried.
    pub table: Vec<Candidate>,
    /// The winner's validation MAE (mean over the folds), days.
    pub validation_mae_days: f64,
    /// The median baseline's, days.
    pub baseline_mae_days: f64,
    /// The winner's residuals (truth − prediction, target scale) on every
    /// fold's validation rows: what calibrates its interval.
    pub residuals: Vec<f64>,
    /// The winner's predictions (target scale) for the same rows, in the
    /// same order: what the interval's width is measured on.
    pub predictions: Vec<f64>,
    /// The stage of each of those rows (activities done, see
    /// [`crate::projection::feedback::stage_of`]).
    pub stages: Vec<u8>,
    /// Validation cases (the newest, counted once).
    pub validation_cases: usize,
    /// Why the winner, in words.
    pub reason: String,
}

/// (train end, validation end) of each fold over `n` cases; fewer folds
/// where there are too few cases for three blocks of five.
fn folds(n: usize) -> Vec<(usize, usize)> {
    let k = if n >= 50 { FOLDS } else { 1 };
    let share = if k == 1 { 0.2 } else { FOLD_SHARE };
    let block = ((n as f64 * share).round() as usize).max(1);
    (0..k)
        .map(|j| {
            let end = n - (k - 1 - j) * block;
            (end.saturating_sub(block).max(1), end)
        })
        .filter(|(a, b)| a < b)
        .collect()
}

/// Score every spec on every fold of `cases` (in log order) and choose.
pub fn select(
    specs: &[Spec],
    cases: &[&Finished],
    progress: &mut dyn FnMut(&str),
) -> Result<Selection, ModelError> {
    let folds = folds(cases.len());
    if folds.is_empty() {
        return Err(ModelError::NoRows);
    }
    // maes[spec][fold] (days); residuals[spec] pooled over the folds.
    let mut maes = vec![Vec::new(); specs.len()];
    let mut residuals = vec![Vec::new(); specs.len()];
    let mut predictions = vec![Vec::new(); specs.len()];
    let mut stages: Vec<u8> = Vec::new();
    let members: Vec<usize> = ensemble_members()
        .iter()
        .filter_map(|m| specs.iter().position(|s| s == m))
        .collect();
    for (f, (train_end, val_end)) in folds.iter().copied().enumerate() {
        let (older, newer) = (&cases[..train_end], &cases[train_end..val_end]);
        let schema = FeatureSchema::build(older.iter().map(|c| &c.trace));
        let (rows, hours) = training_rows(&schema, older);
        let (val_rows, val_hours) = training_rows(&schema, newer);
        if rows.is_empty() || val_rows.is_empty() {
            continue;
        }
        stages.extend(
            val_rows
                .iter()
                .map(|r| crate::projection::feedback::stage_of(r[0].max(0.0) as usize)),
        );
        let mut predicted: Vec<Option<(Vec<f64>, Model)>> = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            if spec.algorithm == Algorithm::Ensemble && members.len() == 4 {
                predicted.push(None);
                continue;
            }
            progress(&format!(
                "validating {} ({} of {}) on fold {} of {}: {} newer cases",
                name_of(spec),
                i + 1,
                specs.len(),
                f + 1,
                folds.len(),
                newer.len()
            ));
            let model = Model::train(spec, schema.clone(), &rows, &hours)?;
            predicted.push(Some((model.predict_target(&val_rows)?, model)));
        }
        for i in 0..specs.len() {
            let (values, model): (Vec<f64>, &Model) = match &predicted[i] {
                Some((v, m)) => (v.clone(), m),
                None => {
                    // The ensemble: its members' mean, as it would predict.
                    let mut sum = vec![0.0; val_rows.len()];
                    for m in &members {
                        let (v, _) = predicted[*m].as_ref().expect("members are trained");
                        sum.iter_mut().zip(v).for_each(|(s, v)| *s += v);
                    }
                    let (_, like) = predicted[members[0]].as_ref().expect("trained");
                    let n = members.len() as f64;
                    (sum.into_iter().map(|s| s / n).collect(), like)
                }
            };
            let mae = values
                .iter()
                .zip(&val_hours)
                .map(|(v, t)| (model.hours_of(*v) - t).abs())
                .sum::<f64>()
                / val_hours.len() as f64
                / 24.0;
            maes[i].push(mae);
            residuals[i].extend(
                values
                    .iter()
                    .zip(&val_hours)
                    .map(|(v, t)| model.target_of(*t) - v),
            );
            predictions[i].extend(values.iter().copied());
        }
    }
    if maes.iter().all(Vec::is_empty) {
        return Err(ModelError::NoRows);
    }
    let mean = |m: &[f64]| m.iter().sum::<f64>() / m.len().max(1) as f64;
    let median = specs.iter().position(|s| s.algorithm == Algorithm::Median);
    let ensemble = specs
        .iter()
        .position(|s| s.algorithm == Algorithm::Ensemble);
    let smallest = folds.iter().map(|(a, b)| b - a).min().unwrap_or(0);
    let (winner, mut reason) = if smallest < FOLD_CASES_TO_REPLACE && ensemble.is_some() {
        let e = ensemble.unwrap_or(0);
        (
            e,
            format!("folds of {smallest} cases are too few to replace it: ensemble"),
        )
    } else {
        choose(specs, &maes, ensemble)
    };
    let (winner, reason) = match median {
        Some(m) if winner != m => {
            let better = maes[winner]
                .iter()
                .zip(&maes[m])
                .filter(|(w, b)| w < b)
                .count();
            if mean(&maes[winner]) < mean(&maes[m]) && 2 * better > maes[m].len() {
                (winner, reason)
            } else {
                reason = format!(
                    "nothing beat the median on the folds ({} {:.3} d, median {:.3} d): median",
                    name_of(&specs[winner]),
                    mean(&maes[winner]),
                    mean(&maes[m])
                );
                (m, reason)
            }
        }
        _ => (winner, reason),
    };
    let table = specs
        .iter()
        .zip(&maes)
        .map(|(spec, m)| Candidate {
            name: name_of(spec),
            validation_mae_days: mean(m),
            folds: m.clone(),
        })
        .collect();
    let newest = folds.last().map_or(0, |(a, b)| b - a);
    Ok(Selection {
        spec: specs[winner].clone(),
        table,
        validation_mae_days: mean(&maes[winner]),
        baseline_mae_days: median.map_or(f64::NAN, |m| mean(&maes[m])),
        residuals: std::mem::take(&mut residuals[winner]),
        predictions: std::mem::take(&mut predictions[winner]),
        stages,
        validation_cases: newest,
        reason,
    })
}

/// The rule: the ensemble (or, without one in `specs`, the best on the
/// folds' mean), unless a single candidate is better on every fold and by
/// [`MARGIN`] on the mean.
fn choose(specs: &[Spec], maes: &[Vec<f64>], ensemble: Option<usize>) -> (usize, String) {
    let mean = |m: &[f64]| m.iter().sum::<f64>() / m.len().max(1) as f64;
    let best = (0..specs.len())
        .filter(|i| Some(*i) != ensemble && !maes[*i].is_empty())
        .min_by(|a, b| mean(&maes[*a]).total_cmp(&mean(&maes[*b])))
        .unwrap_or(0);
    let Some(e) = ensemble.filter(|e| !maes[*e].is_empty()) else {
        return (
            best,
            format!("best on the folds: {}", name_of(&specs[best])),
        );
    };
    let every = maes[best].iter().zip(&maes[e]).all(|(b, e)| b < e);
    if every && mean(&maes[best]) <= mean(&maes[e]) * (1.0 - MARGIN) {
        (
            best,
            format!(
                "{} better than the ensemble on every fold and by {:.1} %",
                name_of(&specs[best]),
                (1.0 - mean(&maes[best]) / mean(&maes[e])) * 100.0
            ),
        )
    } else {
        (e, "tie within noise: ensemble".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_newest_last_and_contiguous() {
        assert_eq!(folds(100), vec![(70, 80), (80, 90), (90, 100)]);
        assert_eq!(folds(20), vec![(16, 20)]);
    }

    #[test]
    fn a_single_candidate_replaces_the_ensemble_only_when_better_on_every_fold() {
        let specs = candidates();
        let e = specs.len() - 1;
        let mut maes = vec![vec![10.0, 10.0, 10.0]; specs.len()];
        maes[e] = vec![8.0, 8.0, 8.0];
        // Ridge a little better on average, worse on one fold: a tie.
        maes[1] = vec![6.0, 6.5, 8.5];
        assert_eq!(choose(&specs, &maes, Some(e)).0, e);
        // Better on every fold and by 10 %: it replaces the ensemble.
        maes[1] = vec![7.0, 7.2, 7.4];
        assert_eq!(choose(&specs, &maes, Some(e)).0, 1);
        // Better on every fold by 1 % only: within the margin.
        maes[1] = vec![7.92, 7.92, 7.92];
        assert_eq!(choose(&specs, &maes, Some(e)).0, e);
    }
}
