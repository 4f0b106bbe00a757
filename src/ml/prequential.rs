//! The prequential report: what the feedback loop served over a replayed
//! log, beside the median baseline on exactly the same predictions, as
//! `examples/prequential.rs` prints it and the loop's tests check it.

use crate::projection::feedback::{ModelScore, STAGES};
use crate::projection::Feedback;
use serde::{Deserialize, Serialize};

/// One model's figures (or what was served, under `"served"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Registry id, or `served`.
    pub model: String,
    /// Predictions scored.
    pub outcomes: u64,
    /// MAE, days.
    pub mae_days: Option<f64>,
    /// The median baseline's MAE on the same predictions, days.
    pub median_mae_days: Option<f64>,
    /// 1 − MAE / median MAE.
    pub skill: Option<f64>,
    /// Mean signed error (predicted − actual), days.
    pub bias_days: Option<f64>,
    /// Share of outcomes inside the 80 % interval.
    pub interval_coverage: Option<f64>,
    /// Mean interval width, days.
    pub interval_width_days: Option<f64>,
    /// Widest interval scored, days.
    pub interval_width_max_days: Option<f64>,
    /// Coverage and width by stage of the case.
    pub by_stage: Vec<Stage>,
}

impl Figures {
    fn of(model: &str, s: &ModelScore) -> Figures {
        Figures {
            model: model.to_string(),
            outcomes: s.outcomes,
            mae_days: s.mae(),
            median_mae_days: s.baseline_mae(),
            skill: s.skill(),
            bias_days: s.bias(),
            interval_coverage: s.coverage(),
            interval_width_days: s.mean_width(),
            interval_width_max_days: (s.interval_outcomes > 0).then_some(s.max_width_d),
            by_stage: s
                .by_stage
                .iter()
                .enumerate()
                .map(|(i, b)| Stage {
                    activities_done: if i + 1 == STAGES {
                        format!("{i}+")
                    } else {
                        i.to_string()
                    },
                    outcomes: b.outcomes,
                    interval_coverage: b.coverage(),
                    interval_width_days: b.mean_width(),
                })
                .collect(),
        }
    }
}

/// The intervals of one stage of the cases (activities done when the
/// prediction was made).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// `0`, `1`, … or `4+`.
    pub activities_done: String,
    /// Outcomes scored.
    pub outcomes: u64,
    /// Share inside the 80 % interval.
    pub interval_coverage: Option<f64>,
    /// Mean width, days.
    pub interval_width_days: Option<f64>,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The file or scenario replayed.
    pub source: String,
    /// Cases in it.
    pub cases: usize,
    /// The longest case, days (what "no width over 10 × the longest case"
    /// is measured against).
    pub longest_case_days: f64,
    /// Seconds the replay took.
    pub seconds: f64,
    /// What was served: MAE, days.
    pub served_mae_days: Option<f64>,
    /// The median baseline on the same predictions, days.
    pub median_mae_days: Option<f64>,
    /// 1 − served / median.
    pub skill: Option<f64>,
    /// Mean signed error of what was served, days.
    pub bias_days: Option<f64>,
    /// Share of served outcomes inside their 80 % interval.
    pub interval_coverage: Option<f64>,
    /// Mean served interval width, days.
    pub interval_width_days: Option<f64>,
    /// Widest served interval, days.
    pub interval_width_max_days: Option<f64>,
    /// What was served, by stage of the case: coverage and width.
    pub interval_by_stage: Vec<Stage>,
    /// Served predictions scored.
    pub outcomes: u64,
    /// Models the loop trained.
    pub models_trained: usize,
    /// Challengers promoted.
    pub promoted: usize,
    /// Challengers retired.
    pub retired: usize,
    /// The champion at the end.
    pub champion: Option<String>,
    /// Each model's own figures (its shadow predictions included).
    pub models: Vec<Figures>,
    /// What the loop did, in order.
    pub journal: Vec<String>,
}

impl Report {
    /// The report of a replay whose loop ended in `f`, having done what
    /// `journal` says (the harness's words).
    pub fn of(
        source: &str,
        f: &Feedback,
        journal: &[String],
        cases: usize,
        longest_case_days: f64,
        seconds: f64,
    ) -> Report {
        let served = Figures::of("served", &f.served);
        let count = |p: &str| journal.iter().filter(|l| l.starts_with(p)).count();
        Report {
            source: source.to_string(),
            cases,
            longest_case_days,
            seconds,
            served_mae_days: served.mae_days,
            median_mae_days: served.median_mae_days,
            skill: served.skill,
            bias_days: served.bias_days,
            interval_coverage: served.interval_coverage,
            interval_width_days: served.interval_width_days,
            interval_width_max_days: served.interval_width_max_days,
            interval_by_stage: served.by_stage.clone(),
            outcomes: served.outcomes,
            models_trained: journal.iter().filter(|l| l.contains(" trained (")).count(),
            promoted: count("Promote("),
            retired: count("Retire("),
            champion: f.champion.clone(),
            models: f.models.iter().map(|(id, s)| Figures::of(id, s)).collect(),
            journal: journal.to_vec(),
        }
    }
}

/// The longest case of a parsed log, days.
pub fn longest_case_days(log: &crate::io::parsed::ParsedLog) -> f64 {
    let mut span: std::collections::HashMap<&str, (i64, i64)> = Default::default();
    for e in &log.events {
        let s = span.entry(&e.case).or_insert((e.time, e.time));
        s.0 = s.0.min(e.time);
        s.1 = s.1.max(e.time);
    }
    span.values()
        .map(|(a, b)| (b - a) as f64 / crate::domain::calendar::DAY as f64)
        .fold(0.0, f64::max)
}
