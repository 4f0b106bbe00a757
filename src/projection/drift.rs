//! Drift detection on the stream of absolute errors: the Page-Hinkley test,
//! kept by the feedback projection for each model.
//!
//! It accumulates how far each error lies above the running mean (less a
//! tolerance `delta`) and raises an alarm when that sum has risen more than
//! `lambda` above its lowest point — a sustained rise in error, not a spike.
//! Both are measured in units of the running mean error, so one setting
//! fits a log whose errors are hours and one whose errors are weeks.

use serde::{Deserialize, Serialize};

/// Page-Hinkley settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PageHinkleySettings {
    /// Tolerated rise of the error, as a fraction of the running mean error.
    pub delta: f64,
    /// Alarm threshold, in running mean errors.
    pub lambda: f64,
    /// Samples before any alarm.
    pub min_samples: u64,
}

impl Default for PageHinkleySettings {
    /// Fed one value per closed case (the mean error of its predictions),
    /// not one per prediction: a case's predictions err together, so
    /// counting each would multiply the evidence. A tripling of the error is
    /// found within a few dozen cases. On the simulator (20 seeds of 3,000
    /// cases, `tests/feedback_loop.rs`): without a change 2 alarms in 60,000
    /// closed cases (λ 30 gave 7, λ 20 gave 22); the demo's change (repairs
    /// wait a week for parts) found 45–100 closed cases after it.
    fn default() -> Self {
        PageHinkleySettings {
            delta: 0.1,
            lambda: 40.0,
            min_samples: 30,
        }
    }
}

/// The detector's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PageHinkley {
    /// Settings.
    pub settings: PageHinkleySettings,
    n: u64,
    mean: f64,
    cumulative: f64,
    minimum: f64,
}

impl PageHinkley {
    /// A detector with `settings`.
    pub fn new(settings: PageHinkleySettings) -> Self {
        PageHinkley {
            settings,
            ..Default::default()
        }
    }

    /// The current statistic: how far the cumulative sum is above its
    /// minimum, in running mean errors.
    pub fn statistic(&self) -> f64 {
        if self.mean > 0.0 {
            (self.cumulative - self.minimum) / self.mean
        } else {
            0.0
        }
    }

    /// Take one error; returns the statistic when it crosses the threshold
    /// (and starts afresh, so the next alarm needs new evidence).
    pub fn update(&mut self, error: f64) -> Option<f64> {
        self.step(error).alarm
    }

    /// [`PageHinkley::update`], also saying whether this error left the
    /// cumulative sum at its lowest: the newest such point is where the rise
    /// began — the detector's estimate of when the change happened.
    pub fn step(&mut self, error: f64) -> Step {
        self.n += 1;
        self.mean += (error - self.mean) / self.n as f64;
        self.cumulative += error - self.mean * (1.0 + self.settings.delta);
        let at_minimum = self.cumulative <= self.minimum;
        self.minimum = self.minimum.min(self.cumulative);
        let statistic = self.statistic();
        if self.n >= self.settings.min_samples && statistic > self.settings.lambda {
            *self = PageHinkley::new(self.settings);
            return Step {
                at_minimum,
                alarm: Some(statistic),
            };
        }
        Step {
            at_minimum,
            alarm: None,
        }
    }
}

/// What one error did to the detector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// The cumulative sum is at its lowest: a change would start after here.
    pub at_minimum: bool,
    /// The statistic, when it crossed the threshold.
    pub alarm: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Rng;

    fn noise(rng: &mut Rng, mean: f64) -> f64 {
        // What the detector is fed: one closed case's mean error over its
        // predictions (about four here), each exponential — skewed like
        // real absolute errors.
        (0..4).map(|_| rng.exponential(mean)).sum::<f64>() / 4.0
    }

    #[test]
    fn a_step_in_the_error_is_detected_within_a_bounded_delay() {
        let mut delays = Vec::new();
        for seed in 0..20 {
            let mut rng = Rng::new(seed);
            let mut ph = PageHinkley::new(PageHinkleySettings::default());
            for _ in 0..300 {
                assert_eq!(
                    ph.update(noise(&mut rng, 5.0)),
                    None,
                    "no alarm before the step (seed {seed})"
                );
            }
            let delay = (1..=1000).find(|_| ph.update(noise(&mut rng, 15.0)).is_some());
            delays.push(delay.unwrap_or(usize::MAX));
        }
        let worst = *delays.iter().max().unwrap();
        assert!(
            worst <= 160,
            "a tripling of the error is found within 160 outcomes; delays {delays:?}"
        );
    }

    #[test]
    fn a_stationary_stream_raises_no_alarm() {
        for seed in 100..120 {
            let mut rng = Rng::new(seed);
            let mut ph = PageHinkley::new(PageHinkleySettings::default());
            let alarms = (0..3000)
                .filter(|_| ph.update(noise(&mut rng, 5.0)).is_some())
                .count();
            assert_eq!(alarms, 0, "3,000 stationary outcomes, seed {seed}");
        }
    }
}
