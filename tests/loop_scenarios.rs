//! The feedback loop on logs shaped like the public logs it must serve
//! well: seeded scenarios (`retrace::io::scenario`) with long tails, a slow
//! trend, a shifting mix, cases that run for months, and many cases that
//! end at once — each replayed as a stream through the loop the page runs
//! (`examples/prequential.rs` prints the same report). Run in release by
//! `make test` (`cargo test --release --test loop_scenarios`): a replay
//! trains a dozen models.
#![cfg(all(not(target_arch = "wasm32"), not(debug_assertions)))]

use retrace::engine::Harness;
use retrace::io::parsed::Completion;
use retrace::io::scenario::{generate, Kind};
use retrace::io::staged::to_appends;
use retrace::ml::feedback_loop::Policy;
use retrace::ml::prequential::{longest_case_days, Report};

fn replay(kind: Kind, seed: u64) -> Report {
    let log = generate(kind, seed, 2_500);
    let (appends, counts) = to_appends(&log, "s", &Completion::AllComplete, "s");
    let mut h = Harness::new(Policy::prequential(), None);
    h.stream(appends, 20).unwrap();
    Report::of(
        &format!("scenario:{}:{seed}", kind.name()),
        &h.set().feedback.state,
        &h.journal,
        counts.cases as usize,
        longest_case_days(&log),
        0.0,
    )
}

fn check(kind: Kind) {
    for seed in [1, 2, 3] {
        let r = replay(kind, seed);
        let (skill, coverage) = (r.skill.unwrap(), r.interval_coverage.unwrap());
        let widest = r.interval_width_max_days.unwrap();
        eprintln!(
            "{}: served {:.2} d, median {:.2} d, skill {:+.1} %, coverage {:.1} %, width {:.1} d (widest {widest:.1} d, longest case {:.1} d); {} trained, {} promoted",
            r.source,
            r.served_mae_days.unwrap(),
            r.median_mae_days.unwrap(),
            skill * 100.0,
            coverage * 100.0,
            r.interval_width_days.unwrap(),
            r.longest_case_days,
            r.models_trained,
            r.promoted
        );
        assert!(r.outcomes > 5_000, "{}: most prefixes scored", r.source);
        assert!(
            skill >= 0.10,
            "{}: what was served beats the median by 10 % or more: {:+.1} %\n{:#?}",
            r.source,
            skill * 100.0,
            r.journal
        );
        assert!(
            (0.75..=0.85).contains(&coverage),
            "{}: the 80 % intervals hold {:.1} %",
            r.source,
            coverage * 100.0
        );
        stages_hold(&r);
        assert!(
            widest <= 10.0 * r.longest_case_days,
            "{}: an interval {widest:.0} d wide, the longest case {:.0} d",
            r.source,
            r.longest_case_days
        );
    }
}

#[test]
fn a_log_with_heavy_tails() {
    check(Kind::Tail);
}

#[test]
fn a_log_that_slowly_gets_slower() {
    check(Kind::Trend);
}

#[test]
fn a_log_whose_mix_shifts() {
    check(Kind::Mix);
}

#[test]
fn a_log_whose_cases_run_for_months() {
    check(Kind::Months);
}

#[test]
fn a_log_where_half_the_cases_end_at_once() {
    check(Kind::Instant);
}

/// helpdesk.csv, a real log, through the same loop: what was served beats
/// the median, and the intervals hold about 80 % while staying narrow
/// enough to say something (the longest case lasts 56 days).
#[test]
fn helpdesk_through_the_loop() {
    use retrace::io::csv::{read_all, sniff};
    let bytes =
        std::fs::read("../shared/data/helpdesk.csv").expect("helpdesk.csv beside the project");
    let log = read_all(&bytes, sniff(&bytes).unwrap().mapping, false).unwrap();
    let (appends, counts) = to_appends(&log, "helpdesk", &Completion::AllComplete, "hd");
    let mut h = Harness::new(Policy::prequential(), None);
    h.stream(appends, 20).unwrap();
    let r = Report::of(
        "helpdesk",
        &h.set().feedback.state,
        &h.journal,
        counts.cases as usize,
        longest_case_days(&log),
        0.0,
    );
    let (skill, coverage) = (r.skill.unwrap(), r.interval_coverage.unwrap());
    let width = r.interval_width_days.unwrap();
    eprintln!(
        "helpdesk: skill {:+.1} %, coverage {:.1} %, width {width:.1} d (widest {:.1} d)",
        skill * 100.0,
        coverage * 100.0,
        r.interval_width_max_days.unwrap()
    );
    assert!(skill >= 0.08, "skill {:+.1} %", skill * 100.0);
    assert!(
        (0.77..=0.83).contains(&coverage),
        "coverage {:.1} %",
        coverage * 100.0
    );
    assert!(width <= 20.0, "mean width {width:.1} d");
    stages_hold(&r);
    assert!(r.interval_width_max_days.unwrap() <= r.longest_case_days * 1.001);
}

/// Intervals are calibrated and stretched by stage of the case (activities
/// done): no stage with 500 outcomes or more is left far from 80 %, as one
/// interval for all stages left the first (52–64 % on these logs).
fn stages_hold(r: &Report) {
    for stage in &r.interval_by_stage {
        eprintln!(
            "  after {} activities: {} outcomes, {:.1} % inside, {:.1} d wide",
            stage.activities_done,
            stage.outcomes,
            stage.interval_coverage.unwrap_or(0.0) * 100.0,
            stage.interval_width_days.unwrap_or(0.0)
        );
        if stage.outcomes >= 500 {
            let c = stage.interval_coverage.unwrap();
            assert!(
                (0.65..=0.95).contains(&c),
                "{}: after {} activities {:.1} % inside",
                r.source,
                stage.activities_done,
                c * 100.0
            );
        }
    }
}
