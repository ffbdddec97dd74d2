//! The account score and its explanation.
//!
//! Each signal contributes `weight × min(decayed occurrences, cap)`, where the
//! decayed occurrences are `Σ 2^(−age/half_life)` over its instances. The
//! contributions add up to `S`, and the score is
//! `100 × (1 − e^(−max(S, 0)/scale))`: 0 with no evidence, rising steeply at
//! first and saturating towards 100, so that no single signal can pin an
//! account at the top. With positive weights, more evidence never lowers it.

use std::sync::Arc;

use serde::Serialize;

use crate::graph::AccountCore;
use crate::signal_defs::{SignalDef, SignalSet};
use crate::time::Timestamp;

/// One signal's decayed contribution.
pub fn contribution(def: &SignalDef, decayed_occurrences: f64) -> f64 {
    def.weight * decayed_occurrences.min(def.cap)
}

/// The raw sum `S` of contributions at `now`.
pub fn raw_score(defs: &SignalSet, core: &AccountCore, now: i64) -> f64 {
    core.signals
        .iter()
        .map(|s| {
            let def = &defs.signals[s.signal as usize];
            contribution(def, s.value.value_at(now, def.half_life_ms))
        })
        .sum()
}

/// Maps `S` to the 0–100 scale.
pub fn scale(defs: &SignalSet, raw: f64) -> f64 {
    100.0 * (1.0 - (-raw.max(0.0) / defs.score.scale).exp())
}

/// The 0–100 score at `now`.
pub fn score(defs: &SignalSet, core: &AccountCore, now: i64) -> f64 {
    scale(defs, raw_score(defs, core, now))
}

/// Rounds a score for output (one decimal).
pub fn rounded(score: f64) -> f64 {
    (score * 10.0).round() / 10.0
}

/// One signal's part in an explanation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SignalContribution {
    /// The signal's id in the definitions.
    pub signal: Arc<str>,
    /// The signal's description from its definition.
    pub description: String,
    /// Points of the raw sum `S` this signal adds now.
    pub contribution: f64,
    /// Decayed count of occurrences at the explanation's instant, before the
    /// signal's cap; rounded to 3 decimals.
    pub decayed_occurrences: f64,
    /// Points per decayed occurrence, from the definition.
    pub weight: f64,
    /// Occurrences counted since the signal's state at this account was
    /// created (the state is pruned once fully decayed).
    pub total_occurrences: u32,
    /// Time of the latest occurrence.
    pub last_seen: Timestamp,
    /// Ids of the most recent evidence events (at most
    /// [`MAX_EVIDENCE`](crate::graph::account::MAX_EVIDENCE)), oldest first.
    pub evidence: Vec<String>,
    /// Matched phrases, most recent last.
    pub keywords: Vec<Arc<str>>,
}

/// Why an account scores what it scores.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Explanation {
    /// The account explained.
    pub account: String,
    /// The instant the score and decay are computed for.
    pub at: Timestamp,
    /// The 0–100 score, rounded to one decimal.
    pub score: f64,
    /// The raw sum `S` of contributions, rounded to 3 decimals.
    pub raw: f64,
    /// The account's industry (the CRM's, else inferred from phrases), if known.
    pub industry: Option<String>,
    /// Contributing signals, largest first.
    pub signals: Vec<SignalContribution>,
}

impl Explanation {
    /// Explains the score of `account` (state `core`) at `now` (Unix ms).
    pub fn build(defs: &SignalSet, account: &str, core: &AccountCore, now: i64) -> Explanation {
        let mut signals: Vec<SignalContribution> = core
            .signals
            .iter()
            .map(|s| {
                let def = &defs.signals[s.signal as usize];
                let decayed = s.value.value_at(now, def.half_life_ms);
                SignalContribution {
                    signal: def.id.clone(),
                    description: def.description.clone(),
                    contribution: round3(contribution(def, decayed)),
                    decayed_occurrences: round3(decayed),
                    weight: def.weight,
                    total_occurrences: s.total,
                    last_seen: Timestamp(s.last_ts()),
                    evidence: s.evidence.iter().map(|(id, _)| id.to_string()).collect(),
                    keywords: s.keywords().to_vec(),
                }
            })
            .filter(|c| c.contribution != 0.0)
            .collect();
        signals.sort_by(|a, b| {
            b.contribution
                .total_cmp(&a.contribution)
                .then_with(|| a.signal.cmp(&b.signal))
        });
        let raw = raw_score(defs, core, now);
        Explanation {
            account: account.to_string(),
            at: Timestamp(now),
            score: rounded(scale(defs, raw)),
            raw: round3(raw),
            industry: core.industry().map(str::to_string),
            signals,
        }
    }

    /// The explanation as sentences for a person.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "Account {} scores {:.1}/100 at {}",
            self.account, self.score, self.at
        );
        if let Some(industry) = &self.industry {
            out.push_str(&format!(" (industry: {industry})"));
        }
        out.push('.');
        if self.signals.is_empty() {
            out.push_str(" No signal contributes.");
        }
        for s in &self.signals {
            out.push_str(&format!(
                "\n- {}: +{:.2} ({:.2} decayed occurrences × weight {}; {} in all, last {})",
                s.signal,
                s.contribution,
                s.decayed_occurrences,
                s.weight,
                s.total_occurrences,
                s.last_seen
            ));
            if !s.keywords.is_empty() {
                let keywords: Vec<&str> = s.keywords.iter().map(|k| &**k).collect();
                out.push_str(&format!("; keywords: {}", keywords.join(", ")));
            }
            if !s.evidence.is_empty() {
                out.push_str(&format!("; evidence: {}", s.evidence.join(", ")));
            }
        }
        out
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
