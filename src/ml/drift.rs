//! Decisions on the loop's models: when a challenger has beaten the
//! champion. The drift statistic itself lives beside the feedback
//! projection that keeps it.

use serde::{Deserialize, Serialize};

pub use crate::projection::drift::{PageHinkley, PageHinkleySettings, Step};

/// What to do with a challenger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Not enough shared outcomes yet.
    Wait,
    /// It beat the champion by the margin: promote it.
    Promote,
    /// It did not: retire it.
    Retire,
}

/// The promotion rule: after `k` outcomes scored for both, promote the
/// challenger when its MAE is below the champion's by at least `margin`
/// (a fraction: 0.05 = 5 % better); otherwise retire it.
pub fn verdict(
    champion_errors: &[f64],
    challenger_errors: &[f64],
    k: usize,
    margin: f64,
) -> Verdict {
    let n = champion_errors.len().min(challenger_errors.len());
    if n < k.max(1) {
        return Verdict::Wait;
    }
    let mae = |e: &[f64]| e[e.len() - n..].iter().sum::<f64>() / n as f64;
    if mae(challenger_errors) <= mae(champion_errors) * (1.0 - margin) {
        Verdict::Promote
    } else {
        Verdict::Retire
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_promotion_rule_waits_then_promotes_or_retires() {
        let champion = vec![10.0; 50];
        assert_eq!(verdict(&champion, &[5.0; 10], 20, 0.05), Verdict::Wait);
        assert_eq!(
            verdict(&champion, &[9.0; 30], 20, 0.05),
            Verdict::Promote,
            "10 % better"
        );
        assert_eq!(
            verdict(&champion, &[9.8; 30], 20, 0.05),
            Verdict::Retire,
            "only 2 % better"
        );
        assert_eq!(verdict(&champion, &[12.0; 30], 20, 0.05), Verdict::Retire);
    }
}
