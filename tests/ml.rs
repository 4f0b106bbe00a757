//! Features, models and the backtest on helpdesk.csv.
#![cfg(not(target_arch = "wasm32"))]

use retrace::domain::fact::AttrValue;
use retrace::ml::backtest::{cases_in_file_order, default_specs, run};
use retrace::ml::features::{FeatureSchema, Vocab};
use retrace::ml::models::{Algorithm, Model, ModelError, Spec};
use retrace::projection::open_cases::{CaseTrace, Step};

const H: i64 = 3_600_000;
const MONDAY_8: i64 = 1_704_096_000_000;

fn step(activity: &str, resource: &str, hours_after_open: i64, wip: u32) -> Step {
    Step {
        activity: activity.into(),
        resource: Some(resource.into()),
        at: MONDAY_8 + hours_after_open * H,
        hours: None,
        wip_total: wip,
        wip_resource: 1,
    }
}

fn case(id: &str, category: &str, steps: Vec<Step>) -> CaseTrace {
    CaseTrace {
        case: id.into(),
        opened_at: MONDAY_8,
        attributes: vec![
            ("category".into(), AttrValue::Text(category.into())),
            ("estimate_hours".into(), AttrValue::Number(6.0)),
        ],
        opened_wip: 3,
        last_seq: 0,
        steps,
    }
}

fn sample() -> Vec<CaseTrace> {
    vec![
        case(
            "a",
            "repair",
            vec![
                step("Triage", "Ana", 1, 4),
                step("Repair", "Ben", 5, 6),
                step("Test", "Ben", 7, 5),
            ],
        ),
        case(
            "b",
            "install",
            vec![step("Plan", "Chen", 2, 2), step("Install", "Chen", 30, 3)],
        ),
    ]
}

#[test]
fn a_prefix_row_says_what_is_known_at_that_moment() {
    let cases = sample();
    let schema = FeatureSchema::build(cases.iter());
    let names = schema.names();
    assert_eq!(names.len(), schema.width());
    let row = schema.row(&cases[0], 2);
    let col = |name: &str| {
        row[names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no column {name}"))]
    };
    assert_eq!(col("prefix_len"), 2.0);
    assert_eq!(col("elapsed_h"), 5.0);
    assert_eq!(col("since_last_h"), 4.0);
    assert_eq!(col("hour"), 13.0, "08:00 + 5 h");
    assert_eq!(col("weekday"), 0.0, "a Monday");
    assert_eq!(col("wip_total"), 6.0);
    assert_eq!(col("estimate_h"), 6.0);
    assert_eq!(col("last=Repair"), 1.0);
    assert_eq!(col("last=Triage"), 0.0);
    assert_eq!(
        col("count=Triage") + col("count=Repair") + col("count=Test"),
        2.0,
        "only the prefix is counted"
    );
    assert_eq!(col("resource=Ben"), 1.0);
    assert_eq!(col("category=repair"), 1.0);
    let opened = schema.row(&cases[0], 0);
    assert_eq!(
        opened[names.iter().position(|n| n == "wip_total").unwrap()],
        3.0,
        "just opened: the WIP at opening"
    );
}

#[test]
fn values_never_seen_in_training_map_to_other() {
    let vocab = Vocab::build(["x", "y", "x"].into_iter(), 5);
    assert_eq!(vocab.values(), ["x", "y"], "most frequent first");
    assert_eq!(vocab.slot("y"), 1);
    assert_eq!(vocab.slot("never seen"), 2, "the other slot");
    let schema = FeatureSchema::build(sample().iter());
    let stranger = case("z", "audit", vec![step("Escalate", "Zoe", 1, 1)]);
    let row = schema.row(&stranger, 1);
    let names = schema.names();
    for other in [
        "last=other",
        "count=other",
        "resource=other",
        "category=other",
    ] {
        assert_eq!(
            row[names.iter().position(|n| n == other).unwrap()],
            1.0,
            "{other}"
        );
    }
}

/// Rows where the remaining time halves with each step, with noise-free structure.
fn toy() -> (FeatureSchema, Vec<Vec<f64>>, Vec<f64>) {
    let cases: Vec<CaseTrace> = (0..60)
        .map(|i| {
            let cat = if i % 2 == 0 { "repair" } else { "install" };
            case(
                &format!("c{i}"),
                cat,
                (1..=4)
                    .map(|k| step("Work", "Ana", k * (1 + i % 3), (i % 5) as u32))
                    .collect(),
            )
        })
        .collect();
    let schema = FeatureSchema::build(cases.iter());
    let mut rows = Vec::new();
    let mut hours = Vec::new();
    for c in &cases {
        for len in 1..4 {
            rows.push(schema.row(c, len));
            let factor = if c.attribute("category").unwrap().as_text() == "repair" {
                10.0
            } else {
                40.0
            };
            hours.push(factor * (4 - len) as f64);
        }
    }
    (schema, rows, hours)
}

#[test]
fn every_model_trains_predicts_and_round_trips_through_bytes() {
    let (schema, rows, hours) = toy();
    for algorithm in [
        Algorithm::Median,
        Algorithm::Linear,
        Algorithm::Ridge,
        Algorithm::RandomForest,
        Algorithm::Knn,
        Algorithm::Ensemble,
    ] {
        let spec = Spec {
            trees: 20,
            ..Spec::new(algorithm)
        };
        let model = Model::train(&spec, schema.clone(), &rows, &hours).unwrap();
        let predicted = model.predict(&rows).unwrap();
        assert_eq!(predicted.len(), rows.len());
        assert!(
            predicted.iter().all(|p| p.is_finite() && *p >= 0.0),
            "{algorithm:?}: {predicted:?}"
        );
        let mae = predicted
            .iter()
            .zip(&hours)
            .map(|(p, h)| (p - h).abs())
            .sum::<f64>()
            / hours.len() as f64;
        let baseline =
            40.0_f64.min(hours.iter().map(|h| (h - 30.0).abs()).sum::<f64>() / hours.len() as f64);
        if algorithm != Algorithm::Median {
            assert!(
                mae < baseline,
                "{algorithm:?} learns the structure: MAE {mae:.1} h vs {baseline:.1} h"
            );
        }
        let restored = Model::from_bytes(&model.to_bytes()).unwrap();
        assert_eq!(
            restored.predict(&rows).unwrap(),
            predicted,
            "{algorithm:?} predicts the same after a round trip"
        );
    }
}

#[test]
fn the_same_seed_trains_the_same_forest() {
    let (schema, rows, hours) = toy();
    let spec = Spec {
        trees: 15,
        ..Spec::new(Algorithm::RandomForest)
    };
    let a = Model::train(&spec, schema.clone(), &rows, &hours)
        .unwrap()
        .to_bytes();
    let b = Model::train(&spec, schema, &rows, &hours)
        .unwrap()
        .to_bytes();
    assert_eq!(a, b);
}

#[test]
fn damaged_model_bytes_are_found_and_old_format_3_bytes_still_load() {
    let (schema, rows, hours) = toy();
    let model = Model::train(&Spec::new(Algorithm::Ridge), schema, &rows, &hours).unwrap();
    let bytes = model.to_bytes();
    let want = model.predict(&rows).unwrap();
    // Every single flipped bit in the body or the checksum is caught.
    for i in 1..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x10;
        let err = Model::from_bytes(&bad).expect_err("a flipped bit is found");
        assert!(matches!(err, ModelError::Damaged(_)), "byte {i}: {err}");
    }
    let cut = Model::from_bytes(&bytes[..bytes.len() / 2]).unwrap_err();
    assert!(cut.to_string().contains("damaged"), "{cut}");
    // Format 3 was the same body with no checksum.
    let mut v3 = vec![retrace::ml::models::OLDEST_MODEL_FORMAT];
    v3.extend_from_slice(&bytes[1..bytes.len() - 8]);
    let old = Model::from_bytes(&v3).unwrap();
    assert_eq!(old.predict(&rows).unwrap(), want);
}

#[test]
fn bytes_from_another_version_are_refused_in_words() {
    let (schema, rows, hours) = toy();
    let mut bytes = Model::train(&Spec::new(Algorithm::Ridge), schema, &rows, &hours)
        .unwrap()
        .to_bytes();
    bytes[0] = 99;
    let err = Model::from_bytes(&bytes).unwrap_err();
    assert!(matches!(err, ModelError::Incompatible(_)));
    assert!(err.to_string().contains("retrain"), "{err}");
    assert!(matches!(
        Model::train(
            &Spec::new(Algorithm::Linear),
            FeatureSchema::build(sample().iter()),
            &[],
            &[]
        ),
        Err(ModelError::NoRows)
    ));
}

#[test]
fn the_helpdesk_backtest_follows_the_protocol_and_beats_the_median() {
    let bytes = std::fs::read("../shared/data/helpdesk.csv").expect("../shared/data/helpdesk.csv");
    let mapping = retrace::io::csv::sniff(&bytes).unwrap().mapping;
    let log = retrace::io::csv::read_all(&bytes, mapping, false).unwrap();
    let cases = cases_in_file_order(&log);
    let start = std::time::Instant::now();
    let report = run(&cases, &default_specs(), &move || {
        start.elapsed().as_secs_f64() * 1000.0
    })
    .unwrap();
    assert_eq!(
        (report.cases, report.train_cases, report.test_cases),
        (3_804, 2_536, 1_268)
    );
    assert_eq!(report.prefixes, 1_993, "the protocol's evaluated prefixes");
    assert!(
        (report.baseline_mae_days - 6.53).abs() < 0.01,
        "median baseline {:.3} days (reference 6.53)",
        report.baseline_mae_days
    );
    let best = report.best().unwrap();
    assert!(
        best.mae_days <= 6.2,
        "best model {} at {:.3} days; the target is 6.2",
        best.name,
        best.mae_days
    );
    assert!(best.mae_days < report.baseline_mae_days);
    let raw_forest = report
        .models
        .iter()
        .find(|m| m.name.contains("hours, squared loss"))
        .unwrap();
    assert!(
        raw_forest.mae_days > report.baseline_mae_days,
        "on raw hours the forest is worse than the median, as the literature says"
    );
    // What the app would serve, chosen on the newest training cases only.
    let selected = report.selected.as_ref().expect("a model is selected");
    let forest = report
        .models
        .iter()
        .find(|m| m.name == "random forest (log target)")
        .unwrap();
    eprintln!(
        "selected {} at {:.3} days (validation {:.3}); forest {:.3}; 80 % interval coverage {:.3}, width {:.2} days",
        selected.name,
        selected.mae_days,
        selected.validation_mae_days,
        forest.mae_days,
        report.interval_coverage.unwrap(),
        report.interval_width_days.unwrap()
    );
    // Five candidates lie within 4 % of each other on the folds: a tie,
    // so the ensemble is served — and no single candidate is better on
    // every fold by the margin.
    assert_eq!(
        selected.reason, "tie within noise: ensemble",
        "{:?}",
        report.validation
    );
    assert!(
        report.validation.iter().all(|c| c.folds.len() == 3),
        "every candidate scored on three folds: {:?}",
        report.validation
    );
    assert!(
        selected.mae_days < forest.mae_days,
        "the selected model beats the forest"
    );
    assert!(
        selected.mae_days <= 6.15,
        "selected {:.3} days (target 6.15)",
        selected.mae_days
    );
    assert_eq!(
        report.validation.len(),
        retrace::ml::selection::candidates().len()
    );
    let coverage = report.interval_coverage.unwrap();
    assert!(
        (0.77..=0.83).contains(&coverage),
        "80 % intervals cover {coverage:.3} of the test prefixes"
    );
    let width = report.interval_width_days.unwrap();
    assert!(width <= 20.0, "80 % intervals {width:.1} d wide on average");
}

#[test]
fn conformal_offsets_cover_what_they_promise() {
    use retrace::ml::models::conformal_offsets;
    let residuals: Vec<f64> = (0..1000).map(|i| i as f64 / 999.0 - 0.5).collect();
    let (lo, hi) = conformal_offsets(&residuals, 0.8).unwrap();
    let inside = residuals.iter().filter(|r| lo <= **r && **r <= hi).count();
    assert!(
        (800..=803).contains(&inside),
        "{inside} of 1000 inside [{lo}, {hi}]"
    );
    assert_eq!(
        conformal_offsets(&residuals[..5], 0.8),
        None,
        "too few to calibrate"
    );
}

#[test]
fn the_narrowest_interval_keeps_its_coverage_and_spends_no_width_on_a_tail_nobody_needs() {
    use retrace::ml::models::{conformal_offsets, narrowest_offsets};
    // Skewed like remaining times: most residuals near 0, a long tail up.
    let residuals: Vec<f64> = (0..1000)
        .map(|i| {
            let u = i as f64 / 999.0;
            u * u * u * 10.0
        })
        .collect();
    let width = |(lo, hi): (f64, f64)| hi - lo;
    let equal = conformal_offsets(&residuals, 0.8).unwrap();
    let narrow = narrowest_offsets(&residuals, 0.8, width).unwrap();
    let inside = |(lo, hi): (f64, f64)| residuals.iter().filter(|r| lo <= **r && **r <= hi).count();
    assert!(
        inside(narrow) >= 800,
        "{} of 1000 inside {narrow:?}",
        inside(narrow)
    );
    assert!(
        width(narrow) < 0.75 * width(equal),
        "narrowest {narrow:?} against equal tails {equal:?}"
    );
    assert!(
        narrow.0 <= residuals[10],
        "it leaves out (almost) nothing below"
    );
    // Symmetric residuals: no split beats the equal one.
    let symmetric: Vec<f64> = (0..1000).map(|i| i as f64 / 999.0 - 0.5).collect();
    let n = narrowest_offsets(&symmetric, 0.8, width).unwrap();
    let e = conformal_offsets(&symmetric, 0.8).unwrap();
    assert!((width(n) - width(e)).abs() < 0.01, "{n:?} vs {e:?}");
    assert_eq!(narrowest_offsets(&residuals[..5], 0.8, width), None);
}

#[test]
fn a_stretched_interval_always_widens_even_when_both_ends_lie_below_the_prediction() {
    let (schema, rows, hours) = toy();
    let mut model = Model::train(&Spec::new(Algorithm::Ridge), schema, &rows, &hours).unwrap();
    // Residuals all below the prediction: both offsets negative.
    let residuals: Vec<f64> = (0..100).map(|i| -1.0 - i as f64 / 100.0).collect();
    model.calibrate(&residuals, 0.8);
    let (lo, hi) = model.interval().unwrap();
    assert!(lo < hi && hi < 0.0, "{lo} {hi}");
    let at = |scale: f64| {
        model
            .predict_interval_scaled(&rows[..1], &[scale; 5], 0.0)
            .unwrap()[0]
    };
    let (_, low1, high1) = at(1.0);
    let (_, low3, high3) = at(3.0);
    assert!(
        high3 - low3 > high1 - low1 && high3 >= high1,
        "×3: {low3:.2}–{high3:.2} h; ×1: {low1:.2}–{high1:.2} h"
    );
}

#[test]
fn a_model_trained_with_a_holdout_records_its_lineage_and_beats_the_median() {
    let bytes = std::fs::read("../shared/data/helpdesk.csv").unwrap();
    let log = retrace::io::csv::read_all(
        &bytes,
        retrace::io::csv::sniff(&bytes).unwrap().mapping,
        false,
    )
    .unwrap();
    let cases = cases_in_file_order(&log);
    let start = std::time::Instant::now();
    let t = retrace::ml::registry::train_with_holdout(
        &Spec::new(Algorithm::RandomForest),
        &cases,
        0.2,
        &move || start.elapsed().as_secs_f64() * 1000.0,
    )
    .unwrap();
    let r = &t.record;
    assert_eq!((r.train_cases, r.holdout_cases), (3_043, 761));
    assert!(
        r.rows > 5_000 && r.holdout_rows > 1_000,
        "{} rows, {} holdout rows",
        r.rows,
        r.holdout_rows
    );
    assert_eq!(r.size_bytes, t.bytes.len());
    assert!(
        r.holdout_mae_days < r.baseline_mae_days,
        "{:.2} vs {:.2}",
        r.holdout_mae_days,
        r.baseline_mae_days
    );
    assert_eq!(r.rows_hash.len(), 16);
    let model = Model::from_bytes(&t.bytes).unwrap();
    let rows: Vec<Vec<f64>> = t.sample.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(
        model.predict(&rows).unwrap(),
        t.sample.iter().map(|(_, p)| *p).collect::<Vec<_>>()
    );
    eprintln!("trained in {:.2} s, {} bytes", r.seconds, r.size_bytes);
}

#[test]
fn predictions_stay_within_the_range_the_model_was_trained_on() {
    let (schema, rows, hours) = toy();
    let max = hours.iter().cloned().fold(0.0, f64::max);
    let wild: Vec<f64> = rows[0].iter().map(|v| v * 1e6 + 1e6).collect();
    for algorithm in [Algorithm::Linear, Algorithm::Ridge, Algorithm::RandomForest] {
        let model = Model::train(
            &Spec {
                trees: 10,
                ..Spec::new(algorithm)
            },
            schema.clone(),
            &rows,
            &hours,
        )
        .unwrap();
        let p = model.predict(std::slice::from_ref(&wild)).unwrap()[0];
        assert!(
            p.is_finite() && p <= max * 1.000_001,
            "{algorithm:?} predicted {p:.0} h for an unseen extreme row; training max {max} h"
        );
    }
}
