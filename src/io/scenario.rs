//! Seeded logs of an administrative process, shaped like the public logs the
//! loop must serve well and the service simulator does not resemble: many
//! cases that end at once, long and heavy tails, cases that run for months,
//! a workload that slowly gets slower, a mix that shifts. The loop's tests
//! and `examples/prequential.rs` (`scenario:KIND:SEED`) replay them; nothing
//! is tuned on the held-out public logs themselves.
//!
//! A case is registered, checked, assessed, may ask for more information
//! (and wait for it, perhaps again), and is decided and closed. Its kind —
//! quick, standard, complex or stalled — sets how long each wait is, and is
//! not written in the log: a model has to read it from the activities.

use super::parsed::{ParsedEvent, ParsedLog};
use crate::domain::calendar::{DAY, HOUR};
use crate::util::Rng;
use std::collections::HashMap;

/// Which shape of log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Heavy tails: widely spread waits and a few cases stalled for months.
    Tail,
    /// Every wait grows slowly: the last cases take twice as long as the first.
    Trend,
    /// The share of complex cases grows from a fifth to three fifths halfway.
    Mix,
    /// Cases run for months (a permit process).
    Months,
    /// Nearly half the cases end with their first event; the rest take weeks.
    Instant,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] = [
        Kind::Tail,
        Kind::Trend,
        Kind::Mix,
        Kind::Months,
        Kind::Instant,
    ];

    /// Its name in `scenario:NAME:SEED`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Tail => "tail",
            Kind::Trend => "trend",
            Kind::Mix => "mix",
            Kind::Months => "months",
            Kind::Instant => "instant",
        }
    }

    /// The kind called `name`.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum CaseKind {
    Quick,
    Standard,
    Complex,
    Stalled,
}

const STAFF: [&str; 8] = ["Ada", "Bo", "Cruz", "Dee", "Eun", "Femi", "Gus", "Hal"];

/// A log of `cases` cases of `kind`, the same for the same seed.
pub fn generate(kind: Kind, seed: u64, cases: usize) -> ParsedLog {
    let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9) ^ kind as u64);
    // Monday 2022-01-03 09:00 UTC.
    let start: i64 = 1_641_200_400_000;
    let per_day = match kind {
        Kind::Months => 6.0,
        _ => 12.0,
    };
    let mut events = Vec::new();
    let mut case_attributes = HashMap::new();
    let mut t = start as f64;
    for n in 0..cases {
        t += rng.exponential(DAY as f64 / per_day);
        let progress = n as f64 / cases.max(1) as f64;
        let case_kind = pick_kind(kind, progress, &mut rng);
        let slow = match kind {
            Kind::Trend => 1.0 + progress,
            Kind::Months => 8.0,
            _ => 1.0,
        };
        let sigma = if kind == Kind::Tail { 1.2 } else { 0.7 };
        let id = format!("c{n:05}");
        let priority = match (case_kind, rng.unit()) {
            (CaseKind::Quick, u) if u < 0.6 => "low",
            (CaseKind::Complex | CaseKind::Stalled, u) if u < 0.5 => "high",
            (_, u) if u < 0.3 => "low",
            (_, u) if u < 0.6 => "high",
            _ => "normal",
        };
        let mut attrs = crate::domain::events::Attributes::new();
        attrs.insert("priority".into(), priority.into());
        case_attributes.insert(id.clone(), attrs);
        let mut at = t;
        let mut push = |activity: &str, at: f64, rng: &mut Rng| {
            events.push(ParsedEvent {
                case: id.clone(),
                activity: activity.to_string(),
                time: at as i64,
                resource: Some(STAFF[rng.below(STAFF.len())].to_string()),
                attributes: Default::default(),
            });
        };
        // Waits in hours: median × log-normal noise × the log's slowness.
        let wait = |median_h: f64, rng: &mut Rng| -> f64 {
            median_h * rng.lognormal(sigma) * slow * HOUR as f64
        };
        push("Register", at, &mut rng);
        if case_kind == CaseKind::Quick {
            if kind == Kind::Instant {
                continue;
            }
            at += wait(3.0, &mut rng);
            push("Reject", at, &mut rng);
            continue;
        }
        let scale = if case_kind == CaseKind::Complex {
            3.0
        } else {
            1.0
        };
        at += wait(20.0 * scale, &mut rng);
        push("Check", at, &mut rng);
        at += wait(40.0 * scale, &mut rng);
        push("Assess", at, &mut rng);
        let mut asks = 0;
        while asks < 4
            && rng.unit()
                < if case_kind == CaseKind::Complex {
                    0.55
                } else {
                    0.25
                }
        {
            asks += 1;
            push("Request information", at + HOUR as f64, &mut rng);
            at += wait(100.0, &mut rng);
            push("Receive information", at, &mut rng);
        }
        if case_kind == CaseKind::Stalled {
            push("Put on hold", at + HOUR as f64, &mut rng);
            at += (30.0 + rng.exponential(60.0)) * DAY as f64 * slow.sqrt();
            push("Resume", at, &mut rng);
        }
        at += wait(24.0 * scale, &mut rng);
        push(
            if rng.unit() < 0.8 { "Approve" } else { "Deny" },
            at,
            &mut rng,
        );
        at += wait(8.0, &mut rng);
        push("Notify", at, &mut rng);
    }
    events.sort_by_key(|e| e.time);
    ParsedLog {
        rows: events.len() as u64,
        events,
        case_attributes,
        skipped: Vec::new(),
    }
}

fn pick_kind(kind: Kind, progress: f64, rng: &mut Rng) -> CaseKind {
    let (quick, complex, stalled) = match kind {
        Kind::Tail => (0.2, 0.25, 0.06),
        Kind::Trend => (0.2, 0.25, 0.02),
        Kind::Mix if progress < 0.5 => (0.3, 0.2, 0.02),
        Kind::Mix => (0.1, 0.6, 0.02),
        Kind::Months => (0.05, 0.35, 0.05),
        Kind::Instant => (0.45, 0.25, 0.03),
    };
    let u = rng.unit();
    if u < quick {
        CaseKind::Quick
    } else if u < quick + stalled {
        CaseKind::Stalled
    } else if u < quick + stalled + complex {
        CaseKind::Complex
    } else {
        CaseKind::Standard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_log_and_kinds_differ() {
        let a = generate(Kind::Tail, 1, 200);
        let b = generate(Kind::Tail, 1, 200);
        assert_eq!(a.events, b.events);
        let c = generate(Kind::Tail, 2, 200);
        assert_ne!(a.events, c.events);
        assert!(a.events.windows(2).all(|w| w[0].time <= w[1].time));
    }

    fn durations_days(log: &ParsedLog) -> Vec<f64> {
        let mut span: HashMap<&str, (i64, i64)> = HashMap::new();
        for e in &log.events {
            let s = span.entry(&e.case).or_insert((e.time, e.time));
            s.0 = s.0.min(e.time);
            s.1 = s.1.max(e.time);
        }
        let mut d: Vec<f64> = span
            .values()
            .map(|(a, b)| (b - a) as f64 / DAY as f64)
            .collect();
        d.sort_by(f64::total_cmp);
        d
    }

    #[test]
    fn each_kind_has_its_shape() {
        let median = |d: &[f64]| d[d.len() / 2];
        let months = durations_days(&generate(Kind::Months, 1, 1_000));
        assert!(median(&months) > 20.0, "months: {}", median(&months));
        let instant = durations_days(&generate(Kind::Instant, 1, 1_000));
        let zero = instant.iter().filter(|d| **d == 0.0).count();
        assert!(
            (350..550).contains(&zero),
            "instant: {zero} of 1000 end at once"
        );
        let tail = durations_days(&generate(Kind::Tail, 1, 1_000));
        assert!(
            tail[tail.len() - 1] > 10.0 * median(&tail),
            "tail: {tail:?}"
        );
    }
}
