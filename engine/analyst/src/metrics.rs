//! How well a score ranks outcomes: ROC AUC and curve, precision at the
//! top, calibration bins. Plain functions of `(score, won)` pairs, shared by
//! the backtest, the tuner and the report.

use serde::Serialize;

/// One bin of the calibration table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CalibrationBin {
    pub from: f64,
    pub to: f64,
    pub accounts: u64,
    pub mean_score: Option<f64>,
    pub win_rate: Option<f64>,
}

/// ROC AUC by the rank-sum (Mann-Whitney) statistic, ties counted half.
pub fn roc_auc(scored: &[(f64, bool)]) -> Option<f64> {
    let positives = scored.iter().filter(|s| s.1).count();
    let negatives = scored.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut sorted: Vec<(f64, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j share their average.
        let average = (i + 1 + j) as f64 / 2.0;
        rank_sum += average * sorted[i..j].iter().filter(|s| s.1).count() as f64;
        i = j;
    }
    let p = positives as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// The ROC curve: (false-positive rate, true-positive rate) from (0, 0)
/// to (1, 1), one point per distinct score (ties move diagonally).
pub fn roc_curve(scored: &[(f64, bool)]) -> Vec<(f64, f64)> {
    let positives = scored.iter().filter(|s| s.1).count() as f64;
    let negatives = scored.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return Vec::new();
    }
    let mut sorted = scored.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            if sorted[j].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            j += 1;
        }
        points.push((fp / negatives, tp / positives));
        i = j;
    }
    points
}

/// Win rate among the top `share` of accounts by score (at least one).
pub fn precision_at_top(scored: &[(f64, bool)], share: f64) -> Option<f64> {
    if scored.is_empty() {
        return None;
    }
    let mut sorted: Vec<(f64, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let k = ((scored.len() as f64 * share).ceil() as usize).max(1);
    Some(sorted[..k].iter().filter(|s| s.1).count() as f64 / k as f64)
}

/// Ten bins of score (0–10, …, 90–100): accounts, mean score, win rate.
pub fn calibration(scored: &[(f64, bool)]) -> Vec<CalibrationBin> {
    (0..10)
        .map(|b| {
            let (from, to) = (b as f64 * 10.0, b as f64 * 10.0 + 10.0);
            let inside: Vec<&(f64, bool)> = scored
                .iter()
                .filter(|s| s.0 >= from && (s.0 < to || (b == 9 && s.0 <= to)))
                .collect();
            let count = inside.len() as u64;
            CalibrationBin {
                from,
                to,
                accounts: count,
                mean_score: (count > 0)
                    .then(|| round3(inside.iter().map(|s| s.0).sum::<f64>() / count as f64)),
                win_rate: ratio(inside.iter().filter(|s| s.1).count() as u64, count),
            }
        })
        .collect()
}

pub(crate) fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| round3(a as f64 / b as f64))
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn auc_of_known_orders() {
        assert_eq!(roc_auc(&[(1.0, false), (2.0, true)]), Some(1.0));
        assert_eq!(roc_auc(&[(2.0, false), (1.0, true)]), Some(0.0));
        assert_eq!(roc_auc(&[(1.0, false), (1.0, true)]), Some(0.5));
        assert_eq!(roc_auc(&[(1.0, true)]), None);
    }

    #[test]
    fn top_share_and_calibration_bins() {
        let scored: Vec<(f64, bool)> = (0..20).map(|i| (i as f64 * 5.0, i >= 15)).collect();
        // Top 10 % of 20 = 2 accounts, both won.
        assert_eq!(precision_at_top(&scored, 0.10), Some(1.0));
        let bins = calibration(&scored);
        assert_eq!(bins.len(), 10);
        assert_eq!(bins.iter().map(|b| b.accounts).sum::<u64>(), 20);
        assert_eq!(bins[9].accounts, 2, "90 and 95");
        assert_eq!(bins[9].win_rate, Some(1.0));
        assert_eq!(bins[0].win_rate, Some(0.0));
    }

    proptest! {
        /// The rank-sum AUC equals the share of (won, lost) pairs ordered
        /// right, ties counting half.
        #[test]
        fn auc_equals_pairwise_count(scores in proptest::collection::vec((0u8..20, any::<bool>()), 1..60)) {
            let scored: Vec<(f64, bool)> = scores.iter().map(|&(s, w)| (s as f64, w)).collect();
            let (mut good, mut pairs) = (0.0, 0.0);
            for a in scored.iter().filter(|s| s.1) {
                for b in scored.iter().filter(|s| !s.1) {
                    pairs += 1.0;
                    good += if a.0 > b.0 { 1.0 } else if a.0 == b.0 { 0.5 } else { 0.0 };
                }
            }
            match roc_auc(&scored) {
                Some(auc) => prop_assert!((auc - good / pairs).abs() < 1e-9),
                None => prop_assert_eq!(pairs, 0.0),
            }
        }

        /// The ROC curve runs from (0, 0) to (1, 1), never backwards, and
        /// the area under it (trapezoids) is the AUC.
        #[test]
        fn roc_curve_area_is_the_auc(scores in proptest::collection::vec((0u8..20, any::<bool>()), 1..60)) {
            let scored: Vec<(f64, bool)> = scores.iter().map(|&(s, w)| (s as f64, w)).collect();
            let curve = roc_curve(&scored);
            let Some(auc) = roc_auc(&scored) else {
                prop_assert!(curve.is_empty());
                return Ok(());
            };
            prop_assert_eq!(curve.first().copied(), Some((0.0, 0.0)));
            prop_assert_eq!(curve.last().copied(), Some((1.0, 1.0)));
            let mut area = 0.0;
            for w in curve.windows(2) {
                prop_assert!(w[1].0 >= w[0].0 && w[1].1 >= w[0].1);
                area += (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0;
            }
            prop_assert!((area - auc).abs() < 1e-9, "area {} auc {}", area, auc);
        }
    }
}
