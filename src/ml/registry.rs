//! The model registry's records: what is known about a trained model — its
//! lineage (trained on events up to `seq` N, on which rows), its holdout
//! metrics, its size — stored beside its bytes, and recorded in the log as
//! a `ModelTrained` event.

use super::features::training_rows;
use super::features::FeatureSchema;
use super::models::{Model, ModelError, Spec, MODEL_FORMAT};
use crate::domain::calendar::HOUR;
use crate::projection::feedback::stage_of;
use crate::projection::training_set::Finished;
use sha2::{Digest, Sha256};

pub use crate::domain::model::ModelTrained;

/// A model trained with its holdout evaluation, ready for the registry.
pub struct Trained {
    /// The record (its `id` and `trained_to_seq` are the caller's to set).
    pub record: ModelTrained,
    /// The model's bytes.
    pub bytes: Vec<u8>,
    /// A few holdout rows and the model's predictions for them, so the page
    /// can check that the bytes it stores predict the same.
    pub sample: Vec<(Vec<f64>, f64)>,
}

fn hash_rows(rows: &[Vec<f64>], hours: &[f64]) -> String {
    let mut h = Sha256::new();
    for (r, y) in rows.iter().zip(hours) {
        for v in r {
            h.update(v.to_le_bytes());
        }
        h.update(y.to_le_bytes());
    }
    crate::util::hex(&h.finalize()[..8])
}

/// Train `spec` on closed `cases` (in log order), holding out the newest
/// `holdout` fraction for evaluation. `clock` gives milliseconds.
pub fn train_with_holdout(
    spec: &Spec,
    cases: &[Finished],
    holdout: f64,
    clock: &dyn Fn() -> f64,
) -> Result<Trained, ModelError> {
    train_with_progress(spec, cases, holdout, clock, &mut |_| {})
}

/// [`train_with_holdout`], saying what it is doing.
pub fn train_with_progress(
    spec: &Spec,
    cases: &[Finished],
    holdout: f64,
    clock: &dyn Fn() -> f64,
    progress: &mut dyn FnMut(&str),
) -> Result<Trained, ModelError> {
    let split = ((cases.len() as f64) * (1.0 - holdout.clamp(0.05, 0.5))).round() as usize;
    let (train, test) = cases.split_at(split.min(cases.len()));
    let train: Vec<&Finished> = train.iter().collect();
    let test: Vec<&Finished> = test.iter().collect();
    let schema = FeatureSchema::build(train.iter().map(|f| &f.trace));
    let (rows, hours) = training_rows(&schema, &train);
    progress(&format!(
        "training {} on {} rows from {} cases",
        spec.label(),
        rows.len(),
        train.len()
    ));
    let t0 = clock();
    let model = Model::train(spec, schema.clone(), &rows, &hours)?;
    let seconds = (clock() - t0) / 1000.0;
    let baseline = Model::train(
        &Spec::new(super::models::Algorithm::Median),
        schema.clone(),
        &rows,
        &hours,
    )?;
    progress(&format!("evaluating on {} held-out cases", test.len()));
    let (test_rows, test_hours) = training_rows(&schema, &test);
    let predicted = model.predict(&test_rows)?;
    let base = baseline.predict(&test_rows)?;
    let mae = |p: &[f64]| {
        p.iter()
            .zip(&test_hours)
            .map(|(p, t)| (p - t).abs())
            .sum::<f64>()
            / test_hours.len().max(1) as f64
            / 24.0
    };
    // The holdout's residuals calibrate the interval.
    let test_predictions = model.predict_target(&test_rows)?;
    let residuals: Vec<f64> = test_predictions
        .iter()
        .zip(&test_hours)
        .map(|(p, t)| model.target_of(*t) - p)
        .collect();
    let mut model = model;
    let stages: Vec<u8> = test_rows
        .iter()
        .map(|r| stage_of(r[0].max(0.0) as usize))
        .collect();
    model.calibrate_by_stage(
        &residuals,
        &test_predictions,
        &stages,
        super::selection::COVERAGE,
    );
    progress("saving the model");
    let bytes = model.to_bytes();
    let sample = test_rows
        .iter()
        .cloned()
        .zip(predicted.iter().copied())
        .take(50)
        .collect();
    let record = ModelTrained {
        id: String::new(),
        algorithm: spec.label(),
        spec: spec.clone(),
        features: schema.names(),
        versions: vec![
            ("retrace".into(), env!("CARGO_PKG_VERSION").into()),
            ("smartcore".into(), "0.7".into()),
        ],
        format: MODEL_FORMAT,
        trained_to_seq: 0,
        train_cases: train.len(),
        rows: rows.len(),
        rows_hash: hash_rows(&rows, &hours),
        holdout_cases: test.len(),
        holdout_rows: test_rows.len(),
        holdout_mae_days: mae(&predicted),
        baseline_mae_days: mae(&base),
        seconds,
        size_bytes: bytes.len(),
        median_h: baseline
            .predict(&[vec![0.0; schema.width()]])?
            .first()
            .copied()
            .unwrap_or(0.0),
        validation: Vec::new(),
        choice: String::new(),
        sha256: crate::util::hex(&sha2::Sha256::digest(&bytes)),
    };
    let _ = HOUR;
    Ok(Trained {
        record,
        bytes,
        sample,
    })
}

/// Choose the model to serve on validation (see [`super::selection`]),
/// retrain the winner on every case, and calibrate its interval on the
/// winner's validation residuals. `clock` gives milliseconds.
pub fn train_served(
    cases: &[Finished],
    clock: &dyn Fn() -> f64,
    progress: &mut dyn FnMut(&str),
) -> Result<Trained, ModelError> {
    use super::selection::{candidates, name_of, select, COVERAGE};
    let all: Vec<&Finished> = cases.iter().collect();
    let t0 = clock();
    let chosen = select(&candidates(), &all, progress)?;
    let schema = FeatureSchema::build(all.iter().map(|f| &f.trace));
    let (rows, hours) = training_rows(&schema, &all);
    progress(&format!(
        "training {} on all {} cases",
        name_of(&chosen.spec),
        all.len()
    ));
    let mut model = Model::train(&chosen.spec, schema.clone(), &rows, &hours)?;
    model.calibrate_by_stage(
        &chosen.residuals,
        &chosen.predictions,
        &chosen.stages,
        COVERAGE,
    );
    let seconds = (clock() - t0) / 1000.0;
    let newest = &all[all.len() - chosen.validation_cases.min(all.len())..];
    let (sample_rows, _) = training_rows(&schema, newest);
    let sample_rows: Vec<Vec<f64>> = sample_rows.into_iter().take(50).collect();
    let predicted = model.predict(&sample_rows)?;
    let bytes = model.to_bytes();
    let mut sorted = hours.clone();
    let median_h = super::boosting::quantile(&mut sorted, 0.5);
    let record = ModelTrained {
        id: String::new(),
        algorithm: name_of(&chosen.spec),
        spec: chosen.spec.clone(),
        features: schema.names(),
        versions: vec![("retrace".into(), env!("CARGO_PKG_VERSION").into())],
        format: MODEL_FORMAT,
        trained_to_seq: 0,
        train_cases: all.len() - chosen.validation_cases,
        rows: rows.len(),
        rows_hash: hash_rows(&rows, &hours),
        holdout_cases: chosen.validation_cases,
        holdout_rows: 0,
        holdout_mae_days: chosen.validation_mae_days,
        baseline_mae_days: chosen.baseline_mae_days,
        seconds,
        size_bytes: bytes.len(),
        median_h,
        validation: chosen.table,
        choice: chosen.reason.clone(),
        sha256: crate::util::hex(&sha2::Sha256::digest(&bytes)),
    };
    Ok(Trained {
        record,
        bytes,
        sample: sample_rows.into_iter().zip(predicted).collect(),
    })
}
