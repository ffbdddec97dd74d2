//! Fitting signal weights on labeled history (`intent tune`): each
//! account's features are its signals' capped decayed occurrences at the
//! decision time (what the weights multiply in the score); the model is
//! L2-regularised logistic regression fitted by Newton's method; accounts
//! are split into training and held-out sets by a seeded hash of their id.
//! The learned coefficients are rescaled so that their sum of absolute
//! values equals the current weights' (the score's `scale` keeps its
//! meaning); the held-out ROC AUC of the current and the learned weights is
//! measured side by side.

use std::hash::{Hash, Hasher};

use serde::Serialize;

use crate::metrics::roc_auc;

/// One account's training example.
#[derive(Debug, Clone)]
pub struct Example {
    pub account: String,
    pub features: Vec<f64>,
    pub won: bool,
}

/// Settings of a fit.
#[derive(Debug, Clone)]
pub struct TuneConfig {
    /// L2 penalty on the coefficients (not on the intercept).
    pub l2: f64,
    /// Share of accounts held out.
    pub holdout: f64,
    pub seed: u64,
}

impl Default for TuneConfig {
    fn default() -> Self {
        TuneConfig {
            l2: 1.0,
            holdout: 0.3,
            seed: 7,
        }
    }
}

/// What a fit found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Fit {
    pub signals: Vec<String>,
    pub current: Vec<f64>,
    /// Learned weights, on the current weights' scale.
    pub learned: Vec<f64>,
    /// The raw logistic coefficients and intercept.
    pub coefficients: Vec<f64>,
    pub intercept: f64,
    pub train_accounts: usize,
    pub holdout_accounts: usize,
    pub holdout_auc_current: Option<f64>,
    pub holdout_auc_learned: Option<f64>,
    pub train_auc_learned: Option<f64>,
}

/// Whether an account is held out (deterministic in seed and id).
pub fn held_out(account: &str, seed: u64, share: f64) -> bool {
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new_with_keys(seed, 0x74756e65);
    account.hash(&mut hasher);
    (hasher.finish() as f64 / u64::MAX as f64) < share
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Fits the logistic regression on (features, label) by Newton's method
/// with an L2 penalty; returns (coefficients, intercept).
pub fn fit_logistic(xs: &[Vec<f64>], ys: &[bool], l2: f64) -> (Vec<f64>, f64) {
    let d = xs.first().map_or(0, Vec::len);
    // Parameters: [intercept, w_1 .. w_d].
    let mut beta = vec![0.0; d + 1];
    for _ in 0..50 {
        let mut grad = vec![0.0; d + 1];
        let mut hess = vec![vec![0.0; d + 1]; d + 1];
        for (x, &y) in xs.iter().zip(ys) {
            let z = beta[0] + x.iter().zip(&beta[1..]).map(|(a, b)| a * b).sum::<f64>();
            let p = sigmoid(z);
            let r = p - y as u8 as f64;
            let w = (p * (1.0 - p)).max(1e-9);
            let row: Vec<f64> = std::iter::once(1.0).chain(x.iter().copied()).collect();
            for i in 0..=d {
                grad[i] += r * row[i];
                for j in 0..=d {
                    hess[i][j] += w * row[i] * row[j];
                }
            }
        }
        for i in 1..=d {
            grad[i] += l2 * beta[i];
            hess[i][i] += l2;
        }
        // A tiny ridge on the intercept keeps the system solvable when all
        // labels agree.
        hess[0][0] += 1e-9;
        let Some(step) = solve(hess, grad) else { break };
        let mut largest: f64 = 0.0;
        for i in 0..=d {
            beta[i] -= step[i];
            largest = largest.max(step[i].abs());
        }
        if largest < 1e-9 {
            break;
        }
    }
    (beta[1..].to_vec(), beta[0])
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (upper, lower) = a.split_at_mut(col + 1);
        let pivot_row = &upper[col];
        for (offset, row) in lower.iter_mut().enumerate() {
            let factor = row[col] / pivot_row[col];
            for (cell, &p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *cell -= factor * p;
            }
            b[col + 1 + offset] -= factor * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let sum: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - sum) / a[row][row];
    }
    Some(x)
}

/// Splits, fits on the training accounts and compares current and learned
/// weights on the held-out ones.
pub fn tune(signals: &[String], current: &[f64], examples: &[Example], config: &TuneConfig) -> Fit {
    let (train, holdout): (Vec<&Example>, Vec<&Example>) = examples
        .iter()
        .partition(|e| !held_out(&e.account, config.seed, config.holdout));
    let xs: Vec<Vec<f64>> = train.iter().map(|e| e.features.clone()).collect();
    let ys: Vec<bool> = train.iter().map(|e| e.won).collect();
    let (coefficients, intercept) = fit_logistic(&xs, &ys, config.l2);
    let current_mass: f64 = current.iter().map(|w| w.abs()).sum();
    let learned_mass: f64 = coefficients.iter().map(|w| w.abs()).sum();
    let factor = if learned_mass > 0.0 {
        current_mass / learned_mass
    } else {
        0.0
    };
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    let learned: Vec<f64> = coefficients.iter().map(|c| round2(c * factor)).collect();
    let auc = |set: &[&Example], weights: &[f64]| {
        let scored: Vec<(f64, bool)> = set
            .iter()
            .map(|e| {
                (
                    e.features
                        .iter()
                        .zip(weights)
                        .map(|(x, w)| x * w)
                        .sum::<f64>(),
                    e.won,
                )
            })
            .collect();
        roc_auc(&scored).map(|a| (a * 1000.0).round() / 1000.0)
    };
    Fit {
        signals: signals.to_vec(),
        current: current.to_vec(),
        holdout_auc_current: auc(&holdout, current),
        holdout_auc_learned: auc(&holdout, &learned),
        train_auc_learned: auc(&train, &learned),
        learned,
        coefficients,
        intercept,
        train_accounts: train.len(),
        holdout_accounts: holdout.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_split_is_deterministic_and_near_its_share() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("acct-{i}")).collect();
        let held: Vec<bool> = ids.iter().map(|id| held_out(id, 7, 0.3)).collect();
        let again: Vec<bool> = ids.iter().map(|id| held_out(id, 7, 0.3)).collect();
        assert_eq!(held, again);
        let share = held.iter().filter(|&&h| h).count() as f64 / ids.len() as f64;
        assert!((0.28..0.32).contains(&share), "{share}");
        let other_seed = ids
            .iter()
            .filter(|id| held_out(id, 8, 0.3) != held_out(id, 7, 0.3))
            .count();
        assert!(other_seed > 1000, "a seed changes the split");
    }

    #[test]
    fn logistic_regression_recovers_a_known_model() {
        // y ~ Bernoulli(sigmoid(-1 + 2 x1 - 1 x2)), x3 noise.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for _ in 0..20_000 {
            let x: Vec<f64> = (0..3).map(|_| rng.gen_range(0.0..2.0)).collect();
            let p = sigmoid(-1.0 + 2.0 * x[0] - 1.0 * x[1]);
            ys.push(rng.gen_bool(p));
            xs.push(x);
        }
        let (w, b) = fit_logistic(&xs, &ys, 1e-6);
        assert!((b + 1.0).abs() < 0.1, "intercept {b}");
        assert!((w[0] - 2.0).abs() < 0.1, "{w:?}");
        assert!((w[1] + 1.0).abs() < 0.1, "{w:?}");
        assert!(w[2].abs() < 0.1, "{w:?}");
        // The penalty shrinks the coefficients.
        let (shrunk, _) = fit_logistic(&xs, &ys, 5_000.0);
        assert!(shrunk[0].abs() < w[0].abs() && shrunk[1].abs() < w[1].abs());
    }

    #[test]
    fn a_useless_current_weight_is_corrected_on_held_out_accounts() {
        // Signal 0 predicts winning, signal 1 is noise but weighted highly now.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let examples: Vec<Example> = (0..4_000)
            .map(|i| {
                let won = rng.gen_bool(0.3);
                let s0 = if won {
                    rng.gen_range(0.5..2.0)
                } else {
                    rng.gen_range(0.0..1.0)
                };
                let s1 = rng.gen_range(0.0..2.0);
                Example {
                    account: format!("a-{i}"),
                    features: vec![s0, s1],
                    won,
                }
            })
            .collect();
        let fit = tune(
            &["good".into(), "noise".into()],
            &[1.0, 10.0],
            &examples,
            &TuneConfig::default(),
        );
        assert!(fit.learned[0] > fit.learned[1].abs() * 5.0, "{fit:?}");
        assert!(
            fit.holdout_auc_learned.unwrap() > fit.holdout_auc_current.unwrap() + 0.1,
            "{fit:?}"
        );
        assert!((fit.learned.iter().map(|w| w.abs()).sum::<f64>() - 11.0).abs() < 0.05);
        assert_eq!(fit.train_accounts + fit.holdout_accounts, 4_000);
    }
}
