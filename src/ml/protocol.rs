//! What the engine's worker and its training workers say to each other,
//! and what a training worker does with it — pure, so native tests cover
//! it; the worker binary only moves bytes. Messages travel as postcard
//! bytes.

use super::backtest::{run_with_progress, Report};
use super::features::FeatureSchema;
use super::models::{Model, Spec};
use super::registry::{train_served, train_with_progress, ModelTrained};
use crate::projection::training_set::Finished;
use crate::store::verify::LogReport;
use serde::{Deserialize, Serialize};

/// A request to the worker.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToWorker {
    /// Check the whole log in IndexedDB database `database` (the
    /// integrity check, off the engine's thread). The worker binary answers
    /// this one itself: it needs the browser's IndexedDB, [`handle`] does not.
    VerifyLog {
        /// Request id.
        id: u32,
        /// The database to open.
        database: String,
    },
    /// Train one model on ready rows.
    Train {
        /// Request id.
        id: u32,
        /// What to train.
        spec: Spec,
        /// How the rows were made.
        schema: FeatureSchema,
        /// Feature rows.
        rows: Vec<Vec<f64>>,
        /// Remaining hours per row.
        hours: Vec<f64>,
    },
    /// Train on closed cases (in log order) with a holdout of the newest.
    TrainCases {
        /// Request id.
        id: u32,
        /// What to train; None: choose on validation among the candidates.
        spec: Option<Spec>,
        /// The cases.
        cases: Vec<Finished>,
        /// Fraction held out (with a given spec).
        holdout: f64,
    },
    /// Run the backtest protocol on closed cases (in log order).
    Backtest {
        /// Request id.
        id: u32,
        /// The cases.
        cases: Vec<Finished>,
        /// The models to compare.
        specs: Vec<Spec>,
    },
}

/// A message from the worker.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromWorker {
    /// Loaded and listening.
    Ready,
    /// Still working.
    Progress {
        /// Request id.
        id: u32,
        /// What it is doing.
        message: String,
    },
    /// A trained model.
    Trained {
        /// Request id.
        id: u32,
        /// The model's bytes.
        model: Vec<u8>,
        /// Training time.
        seconds: f64,
    },
    /// A model trained on cases, with its record and a check sample.
    TrainedCases {
        /// Request id.
        id: u32,
        /// The registry record.
        record: Box<ModelTrained>,
        /// The model's bytes.
        model: Vec<u8>,
        /// Holdout rows and the worker's predictions for them.
        sample: Vec<(Vec<f64>, f64)>,
    },
    /// A finished backtest.
    BacktestDone {
        /// Request id.
        id: u32,
        /// The report.
        report: Box<Report>,
    },
    /// The integrity check's report.
    Verified {
        /// Request id.
        id: u32,
        /// What it found.
        report: LogReport,
    },
    /// The request failed.
    Failed {
        /// Request id.
        id: u32,
        /// Why, in words.
        message: String,
    },
}

/// Encode a message.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    postcard::to_allocvec(message).expect("messages encode")
}

/// Decode a message.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| {
        format!("a message between the engine and its training worker was unreadable: {e}")
    })
}

/// Do what a request asks; `progress` may be called along the way.
pub fn handle(
    request: ToWorker,
    clock: &dyn Fn() -> f64,
    progress: &mut dyn FnMut(u32, &str),
) -> FromWorker {
    match request {
        ToWorker::VerifyLog { id, .. } => FromWorker::Failed {
            id,
            message: "the integrity check runs where IndexedDB is (the worker binary)".into(),
        },
        ToWorker::Train {
            id,
            spec,
            schema,
            rows,
            hours,
        } => {
            progress(
                id,
                &format!("training {} on {} rows", spec.label(), rows.len()),
            );
            let t0 = clock();
            match Model::train(&spec, schema, &rows, &hours) {
                Ok(model) => FromWorker::Trained {
                    id,
                    model: model.to_bytes(),
                    seconds: (clock() - t0) / 1000.0,
                },
                Err(e) => FromWorker::Failed {
                    id,
                    message: e.to_string(),
                },
            }
        }
        ToWorker::TrainCases {
            id,
            spec,
            cases,
            holdout,
        } => {
            if cases.len() < 10 {
                return FromWorker::Failed {
                    id,
                    message: format!(
                        "training needs closed cases: the log has {} (import or simulate more)",
                        cases.len()
                    ),
                };
            }
            let trained = match &spec {
                Some(spec) => {
                    progress(
                        id,
                        &format!("training {} on {} closed cases", spec.label(), cases.len()),
                    );
                    train_with_progress(spec, &cases, holdout, clock, &mut |m| progress(id, m))
                }
                None => train_served(&cases, clock, &mut |m| progress(id, m)),
            };
            match trained {
                Ok(t) => FromWorker::TrainedCases {
                    id,
                    record: Box::new(t.record),
                    model: t.bytes,
                    sample: t.sample,
                },
                Err(e) => FromWorker::Failed {
                    id,
                    message: e.to_string(),
                },
            }
        }
        ToWorker::Backtest { id, cases, specs } => {
            if cases.len() < 6 {
                return FromWorker::Failed {
                    id,
                    message: format!(
                        "a backtest needs closed cases: the log has {} (import or simulate more)",
                        cases.len()
                    ),
                };
            }
            match run_with_progress(&cases, &specs, clock, &mut |m| progress(id, m)) {
                Ok(report) => FromWorker::BacktestDone {
                    id,
                    report: Box::new(report),
                },
                Err(e) => FromWorker::Failed {
                    id,
                    message: e.to_string(),
                },
            }
        }
    }
}
