//! What the log says about a model: how it was specified (algorithm,
//! target, hyperparameters) and what its training produced. Pure data: the
//! learners that read a [`Spec`] live in `ml`, the bytes in the store.

use serde::{Deserialize, Serialize};

/// Format version of model bytes this build writes (2: models carry their
/// target range; 3: and their calibrated interval; 4: and a checksum, so
/// damaged bytes are found instead of predicting wrongly; 5: and intervals
/// by stage of the case).
pub const MODEL_FORMAT: u8 = 5;
/// The oldest format this build still reads (3 is 4 without the checksum).
/// A [`ModelTrained`] of another format cannot be loaded.
pub const OLDEST_MODEL_FORMAT: u8 = 3;

/// The learning algorithms on offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    /// The median of the training targets: the baseline.
    Median,
    /// Ordinary least squares.
    Linear,
    /// Least squares with an L2 penalty.
    Ridge,
    /// A random forest of depth-capped trees.
    RandomForest,
    /// k nearest neighbours on standardised features.
    Knn,
    /// Gradient-boosted trees with an absolute-error loss.
    Boosted,
    /// The mean, on the log scale, of ridge, the forest and two boostings.
    Ensemble,
}

impl Algorithm {
    /// Name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Median => "median baseline",
            Algorithm::Linear => "linear regression",
            Algorithm::Ridge => "ridge regression",
            Algorithm::RandomForest => "random forest",
            Algorithm::Knn => "k nearest neighbours",
            Algorithm::Boosted => "boosted trees (absolute loss)",
            Algorithm::Ensemble => "ensemble (ridge, forest, boosting)",
        }
    }
}

/// What the learner is trained to predict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// Remaining hours as they are.
    Hours,
    /// `ln(1 + remaining hours)`.
    LogHours,
}

/// Hyperparameters (the ones that matter here), stored with the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Target transform.
    pub target: Target,
    /// Trees (forest).
    pub trees: usize,
    /// Depth cap (forest).
    pub max_depth: u16,
    /// Smallest leaf (forest).
    pub min_leaf: usize,
    /// Features tried per split (forest; 0 = all).
    pub features_per_split: usize,
    /// Neighbours (kNN).
    pub k: usize,
    /// L2 penalty (ridge).
    pub alpha: f64,
    /// Seed.
    pub seed: u64,
}

impl Spec {
    /// Sensible defaults for an algorithm, on the log target.
    pub fn new(algorithm: Algorithm) -> Spec {
        // Boosting grows many shallow trees (`trees` are its rounds, at a
        // learning rate of 0.1); the forest few deep ones.
        let boosted = algorithm == Algorithm::Boosted;
        Spec {
            algorithm,
            target: Target::LogHours,
            trees: if boosted { 200 } else { 100 },
            max_depth: if boosted { 6 } else { 20 },
            min_leaf: if boosted { 20 } else { 2 },
            features_per_split: 0,
            k: 25,
            alpha: 1.0,
            seed: 7,
        }
    }

    /// The same on raw hours.
    pub fn on_hours(mut self) -> Spec {
        self.target = Target::Hours;
        self
    }

    /// Name for tables: algorithm and target.
    pub fn label(&self) -> String {
        match (self.algorithm, self.target) {
            (Algorithm::Median, _) => "median baseline".into(),
            (a, Target::LogHours) => format!("{} (log target)", a.name()),
            (a, Target::Hours) => format!("{} (hours, squared loss)", a.name()),
        }
    }
}

/// One candidate's score when the model to serve was chosen: trained on the
/// older training cases, scored on the newest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Algorithm and settings, in words.
    pub name: String,
    /// Its MAE on the validation cases, days (the mean over the folds).
    pub validation_mae_days: f64,
    /// Its MAE on each rolling-origin fold, oldest first, days.
    #[serde(default)]
    pub folds: Vec<f64>,
}

/// Everything about a trained model but its bytes (the `ModelTrained`
/// payload, and the registry row).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelTrained {
    /// Registry id, e.g. `model-3`.
    pub id: String,
    /// Algorithm and target, in words.
    pub algorithm: String,
    /// Hyperparameters and seed.
    pub spec: Spec,
    /// Feature columns, in order.
    pub features: Vec<String>,
    /// Crate versions that made it.
    pub versions: Vec<(String, String)>,
    /// Model bytes format.
    pub format: u8,
    /// Trained on the log up to this `seq`.
    pub trained_to_seq: u64,
    /// Closed cases used for training.
    pub train_cases: usize,
    /// Training rows.
    pub rows: usize,
    /// SHA-256 of the training rows (hex, first 16 digits).
    pub rows_hash: String,
    /// Holdout: the newest cases, not trained on.
    pub holdout_cases: usize,
    /// Holdout prefixes evaluated.
    pub holdout_rows: usize,
    /// Mean absolute error on the holdout, days.
    pub holdout_mae_days: f64,
    /// The median baseline's MAE on the same holdout, days.
    pub baseline_mae_days: f64,
    /// Training time, seconds.
    pub seconds: f64,
    /// Size of the model bytes.
    pub size_bytes: usize,
    /// The median of the training targets, hours: the baseline's prediction.
    #[serde(default)]
    pub median_h: f64,
    /// When it was chosen among candidates: every candidate's validation
    /// score (empty for a model trained as asked).
    #[serde(default)]
    pub validation: Vec<Candidate>,
    /// Why the served model was chosen, in words (empty for a model
    /// trained as asked).
    #[serde(default)]
    pub choice: String,
    /// SHA-256 of the model bytes, hex (empty in records written before
    /// it was kept): a browser of a shared log stores bytes from the server
    /// only if they are exactly these.
    #[serde(default)]
    pub sha256: String,
}

impl ModelTrained {
    /// Type name in the log.
    pub const TYPE: &'static str = "ModelTrained";
    /// Current payload schema.
    pub const SCHEMA: u32 = 1;

    /// Whether this build can load the model.
    pub fn compatible(&self) -> bool {
        (OLDEST_MODEL_FORMAT..=MODEL_FORMAT).contains(&self.format)
    }
}
