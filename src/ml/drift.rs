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

/// The promotion rule on evidence grouped by case — `(champion's summed
/// error, challenger's, predictions)` per case: the challenger is promoted
/// when its MAE over every prediction is below the champion's by at least
/// `margin` (a fraction of the champion's) *and* by `z` standard errors of
/// the difference, the standard error counted over cases (a case's
/// predictions err together; counted per prediction, a few long cases
/// look like a thousand independent wins). `z = 0` and `margin = 0`:
/// promoted unless it did worse.
pub fn verdict_by_case(cases: &[(f64, f64, u32)], margin: f64, z: f64) -> Verdict {
    let n: u32 = cases.iter().map(|c| c.2).sum();
    if n == 0 {
        return Verdict::Wait;
    }
    let n = n as f64;
    let champion = cases.iter().map(|c| c.0).sum::<f64>() / n;
    let challenger = cases.iter().map(|c| c.1).sum::<f64>() / n;
    let gain = champion - challenger;
    let spread = cases
        .iter()
        .map(|(a, b, k)| {
            let d = a - b - *k as f64 * gain;
            d * d
        })
        .sum::<f64>()
        .sqrt()
        / n;
    if gain >= margin * champion && gain >= z * spread {
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

    #[test]
    fn a_win_carried_by_one_case_is_noise_and_a_win_on_every_case_is_not() {
        assert_eq!(verdict_by_case(&[], 0.05, 2.0), Verdict::Wait);
        // Ten cases of ten predictions: the challenger 20 % better on each.
        let steady: Vec<_> = (0..10).map(|_| (10.0, 8.0, 10)).collect();
        assert_eq!(verdict_by_case(&steady, 0.05, 2.0), Verdict::Promote);
        // The same total gain, all of it from one case out of ten.
        let mut lucky: Vec<_> = (0..9).map(|_| (10.0, 10.0, 10)).collect();
        lucky.push((10.0, -10.0, 10));
        assert_eq!(verdict_by_case(&lucky, 0.05, 2.0), Verdict::Retire);
        // Without a margin or a noise bar: promoted unless worse.
        assert_eq!(verdict_by_case(&lucky, 0.0, 0.0), Verdict::Promote);
        let worse: Vec<_> = (0..10).map(|_| (10.0, 10.5, 10)).collect();
        assert_eq!(verdict_by_case(&worse, 0.0, 0.0), Verdict::Retire);
    }
}
