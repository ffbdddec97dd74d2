//! Backtesting signal definitions on labeled history: replay events through
//! the pipeline, join the accounts' outcomes (won or lost, and when), and
//! measure how well each rule and signal, and the score itself, foretold
//! them. Pure: readers in, a [`Report`] out.
//!
//! Definitions used throughout:
//! - an account's *decision time* is its outcome time minus `at_days`;
//!   the score and the signals present are taken there, from the events
//!   before it (history is expected in time order);
//! - a rule *fired for* an account when it fired before the outcome;
//!   precision = won among those, recall = those among the won, false alarms
//!   = lost among those per 100 accounts with an outcome, lead time = outcome
//!   time minus the first firing (won accounts);
//! - a signal's *lift* = win rate of accounts that had it at decision time
//!   over the win rate of those that did not.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead};
use std::sync::Arc;

use serde::Serialize;

pub use crate::metrics::CalibrationBin;
use crate::metrics::{calibration, precision_at_top, ratio, roc_auc, round3};

use intent_core::actions::Action;
use intent_core::event::Event;
use intent_core::extract::Observation;
use intent_core::ingest::decode_with;
use intent_core::time::{Timestamp, DAY_MS};
use intent_core::{Pipeline, PipelineConfig, SignalSet};

/// How an account's sale ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub account: String,
    pub won: bool,
    pub ts: Timestamp,
}

/// A bad line of an outcomes file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct OutcomeError {
    /// Where the text came from (a path, `-`).
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// What is wrong, naming the field.
    pub message: String,
}

/// Every bad line of an outcomes file, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct OutcomeErrors(pub Vec<OutcomeError>);

/// Reads outcomes, JSON lines `{"account", "outcome": "won"|"lost", "ts"}`;
/// every bad line is reported with its file and line. An account listed
/// twice keeps its last outcome.
pub fn parse_outcomes(text: &str, source: &str) -> Result<Vec<Outcome>, OutcomeErrors> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        account: String,
        outcome: String,
        ts: serde_json::Value,
    }
    let mut by_account: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |message: String| OutcomeError {
            file: source.to_string(),
            line: i + 1,
            message,
        };
        let parsed: Line = match serde_json::from_str(line) {
            Ok(parsed) => parsed,
            Err(e) => {
                errors.push(at(e.to_string()));
                continue;
            }
        };
        let won = match parsed.outcome.as_str() {
            "won" => true,
            "lost" => false,
            other => {
                errors.push(at(format!("outcome: '{other}' is not won or lost")));
                continue;
            }
        };
        let ts = match &parsed.ts {
            serde_json::Value::String(s) => Timestamp::parse_rfc3339(s),
            serde_json::Value::Number(n) => n.as_i64().and_then(Timestamp::from_millis),
            _ => None,
        };
        let Some(ts) = ts else {
            errors.push(at(format!(
                "ts: {} is not RFC 3339 nor integer ms",
                parsed.ts
            )));
            continue;
        };
        if parsed.account.is_empty() {
            errors.push(at("account: empty".into()));
            continue;
        }
        by_account.insert(
            parsed.account.clone(),
            Outcome {
                account: parsed.account,
                won,
                ts,
            },
        );
    }
    if errors.is_empty() {
        Ok(by_account.into_values().collect())
    } else {
        Err(OutcomeErrors(errors))
    }
}

/// Per rule.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RuleStats {
    pub rule: String,
    /// Accounts (with an outcome) it fired for before their outcome.
    pub fired: u64,
    pub won: u64,
    /// won / fired (null when it never fired).
    pub precision: Option<f64>,
    /// won / all won accounts.
    pub recall: Option<f64>,
    /// Median days between the first firing and a won outcome.
    pub median_lead_days: Option<f64>,
    /// Lost accounts it fired for, per 100 accounts with an outcome.
    pub false_alarms_per_100: f64,
}

/// Per signal.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SignalLift {
    pub signal: String,
    /// Accounts that had it at decision time.
    pub with: u64,
    pub win_rate_with: Option<f64>,
    pub win_rate_without: Option<f64>,
    /// win_rate_with / win_rate_without.
    pub lift: Option<f64>,
}

/// The score as a classifier of the outcome, `at_days` before it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Classifier {
    pub at_days: f64,
    pub accounts: u64,
    /// Area under the ROC curve (null without both outcomes).
    pub roc_auc: Option<f64>,
    /// Win rate among the top 10 % by the raw sum `S` (the score's order).
    pub precision_top_10pct: Option<f64>,
    pub calibration: Vec<CalibrationBin>,
}

/// Everything a backtest measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub signals_version: String,
    pub events_read: u64,
    pub events_rejected: u64,
    pub accounts_with_outcome: u64,
    pub won: u64,
    pub lost: u64,
    /// Accounts with an outcome and no event at all.
    pub accounts_without_events: u64,
    pub rules: Vec<RuleStats>,
    pub signals: Vec<SignalLift>,
    pub classifier: Classifier,
}

/// What is known of an account at its decision time.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub score: f64,
    /// The raw sum `S` behind the score. Accounts are ranked by it: it
    /// orders them as the score does where the score is above 0, and keeps
    /// their order where negative weights take `S` below 0 (score 0).
    pub raw: f64,
    /// Signals contributing to the score.
    pub signals: Vec<String>,
    /// Each signal's capped decayed occurrences (indexed by signal).
    pub features: Vec<f64>,
}

/// History replayed against outcomes: what each account looked like at its
/// decision time, and when each rule first fired for it.
pub struct History {
    pub defs: Arc<SignalSet>,
    pub outcomes: Vec<Outcome>,
    pub snapshots: Vec<Snapshot>,
    first_firing: HashMap<(String, String), i64>,
    pub events_read: u64,
    pub events_rejected: u64,
    pub accounts_without_events: u64,
    pub at_days: f64,
}

impl History {
    /// The accounts as training examples for `tune`.
    pub fn examples(&self) -> Vec<crate::tune::Example> {
        self.outcomes
            .iter()
            .zip(&self.snapshots)
            .map(|(o, s)| crate::tune::Example {
                account: o.account.clone(),
                features: if s.features.is_empty() {
                    vec![0.0; self.defs.signals.len()]
                } else {
                    s.features.clone()
                },
                won: o.won,
            })
            .collect()
    }
}

/// Runs the backtest over event readers (in order), against the outcomes.
pub fn run(
    defs: Arc<SignalSet>,
    config: PipelineConfig,
    inputs: Vec<Box<dyn BufRead + '_>>,
    outcomes: &[Outcome],
    at_days: f64,
    on_progress: impl FnMut(u64),
) -> io::Result<Report> {
    let history = replay_history(defs, config, inputs, outcomes, at_days, on_progress)?;
    Ok(report(&history))
}

/// Replays the events, taking each account's snapshot at its decision time.
pub fn replay_history(
    defs: Arc<SignalSet>,
    config: PipelineConfig,
    inputs: Vec<Box<dyn BufRead + '_>>,
    outcomes: &[Outcome],
    at_days: f64,
    on_progress: impl FnMut(u64),
) -> io::Result<History> {
    replay_history_observed(
        defs,
        config,
        inputs,
        outcomes,
        at_days,
        on_progress,
        &mut (),
    )
}

/// What a replay shows along the way, besides the history it returns.
pub trait ReplayObserver {
    /// An event was decoded and is about to be processed; `pipeline` holds
    /// the state before it.
    fn before(&mut self, _pipeline: &Pipeline, _event: &Event<'_>) {}
    /// An event was decoded and extracted, about to be applied.
    fn observed(&mut self, _defs: &SignalSet, _event: &Event<'_>, _obs: &Observation) {}
    /// An event was applied (not a duplicate, not rejected); `actions` are
    /// the ones it caused.
    fn applied(&mut self, _pipeline: &Pipeline, _event: &Event<'_>, _actions: &[Action]) {}
    /// The input is exhausted; `pipeline` holds the final state.
    fn finished(&mut self, _pipeline: &Pipeline) {}
}

impl ReplayObserver for () {}

/// The evidence index hangs off a replay: each applied event's documents.
impl ReplayObserver for intent_search::EvidenceSink {
    fn observed(&mut self, defs: &SignalSet, event: &Event<'_>, obs: &Observation) {
        self.observe(defs, event, obs);
    }
}

/// Two observers, each shown everything, the first one first.
impl<A: ReplayObserver + ?Sized, B: ReplayObserver + ?Sized> ReplayObserver for (&mut A, &mut B) {
    fn before(&mut self, pipeline: &Pipeline, event: &Event<'_>) {
        self.0.before(pipeline, event);
        self.1.before(pipeline, event);
    }
    fn observed(&mut self, defs: &SignalSet, event: &Event<'_>, obs: &Observation) {
        self.0.observed(defs, event, obs);
        self.1.observed(defs, event, obs);
    }
    fn applied(&mut self, pipeline: &Pipeline, event: &Event<'_>, actions: &[Action]) {
        self.0.applied(pipeline, event, actions);
        self.1.applied(pipeline, event, actions);
    }
    fn finished(&mut self, pipeline: &Pipeline) {
        self.0.finished(pipeline);
        self.1.finished(pipeline);
    }
}

/// [`replay_history`], showing `observer` each event.
pub fn replay_history_observed(
    defs: Arc<SignalSet>,
    config: PipelineConfig,
    inputs: Vec<Box<dyn BufRead + '_>>,
    outcomes: &[Outcome],
    at_days: f64,
    mut on_progress: impl FnMut(u64),
    observer: &mut dyn ReplayObserver,
) -> io::Result<History> {
    let mut pipeline = Pipeline::new(Arc::clone(&defs), config);
    let limits = pipeline.config().limits.clone();
    let at_ms = (at_days * DAY_MS as f64) as i64;
    // Decision points, earliest first.
    let mut decisions: Vec<(i64, usize)> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| (o.ts.millis().saturating_sub(at_ms), i))
        .collect();
    decisions.sort_unstable();
    let mut next_decision = 0;
    let mut snapshots: Vec<Option<Snapshot>> = vec![None; outcomes.len()];
    let take = |pipeline: &Pipeline,
                upto: i64,
                next: &mut usize,
                snapshots: &mut Vec<Option<Snapshot>>| {
        while *next < decisions.len() && decisions[*next].0 < upto {
            let (at, i) = decisions[*next];
            let account = &outcomes[i].account;
            snapshots[i] = Some(
                pipeline
                    .explain_at(account, Timestamp(at))
                    .map(|e| Snapshot {
                        score: e.score,
                        raw: e.raw,
                        signals: e.signals.iter().map(|s| s.signal.to_string()).collect(),
                        features: pipeline
                            .signal_features_at(account, Timestamp(at))
                            .unwrap_or_default(),
                    })
                    .unwrap_or_default(),
            );
            *next += 1;
        }
    };
    // First firing of each (rule, account).
    let mut first_firing: HashMap<(String, String), i64> = HashMap::new();
    let mut actions = Vec::new();
    let mut line = Vec::new();
    let (mut read, mut bytes) = (0u64, 0u64);
    for mut input in inputs {
        loop {
            line.clear();
            let n = input.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            read += 1;
            actions.clear();
            match decode_with(&line, &limits) {
                Ok(event) => {
                    take(
                        &pipeline,
                        event.ts.millis(),
                        &mut next_decision,
                        &mut snapshots,
                    );
                    observer.before(&pipeline, &event);
                    let result = pipeline.process_observed(&event, &mut actions, |defs, obs| {
                        observer.observed(defs, &event, obs)
                    });
                    // Duplicates and rejected events (a mistyped year) are
                    // not shown as applied.
                    if let Ok(intent_core::pipeline::Outcome::Applied { .. }) = result {
                        observer.applied(&pipeline, &event, &actions);
                    }
                }
                Err(err) => pipeline.count_rejected(&err),
            }
            for action in &actions {
                first_firing
                    .entry((action.rule.to_string(), action.account.clone()))
                    .and_modify(|t| *t = (*t).min(action.event_ts.millis()))
                    .or_insert(action.event_ts.millis());
            }
            if read % 8192 == 0 {
                on_progress(bytes);
            }
        }
    }
    on_progress(bytes);
    observer.finished(&pipeline);
    take(&pipeline, i64::MAX, &mut next_decision, &mut snapshots);
    let snapshots: Vec<Snapshot> = snapshots
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect();
    let accounts_without_events = outcomes
        .iter()
        .filter(|o| pipeline.graph().with_account(&o.account, |_| ()).is_none())
        .count() as u64;
    Ok(History {
        events_rejected: pipeline.stats().rejected,
        defs,
        outcomes: outcomes.to_vec(),
        snapshots,
        first_firing,
        events_read: read,
        accounts_without_events,
        at_days,
    })
}

/// The measures of a replayed history.
pub fn report(history: &History) -> Report {
    let defs = &history.defs;
    let outcomes = &history.outcomes;
    let snapshots = &history.snapshots;
    let first_firing = &history.first_firing;
    let n = outcomes.len() as u64;
    let won_total = outcomes.iter().filter(|o| o.won).count() as u64;
    let rules = defs
        .rules
        .iter()
        .map(|rule| {
            let mut fired = 0u64;
            let mut won = 0u64;
            let mut lost = 0u64;
            let mut leads = Vec::new();
            for outcome in outcomes {
                let key = (rule.id.to_string(), outcome.account.clone());
                let Some(&first) = first_firing.get(&key) else {
                    continue;
                };
                if first >= outcome.ts.millis() {
                    continue;
                }
                fired += 1;
                if outcome.won {
                    won += 1;
                    leads.push((outcome.ts.millis() - first) as f64 / DAY_MS as f64);
                } else {
                    lost += 1;
                }
            }
            RuleStats {
                rule: rule.id.to_string(),
                fired,
                won,
                precision: ratio(won, fired),
                recall: ratio(won, won_total),
                median_lead_days: median(&mut leads).map(round3),
                false_alarms_per_100: if n == 0 {
                    0.0
                } else {
                    round3(lost as f64 * 100.0 / n as f64)
                },
            }
        })
        .collect();
    let signals = defs
        .signals
        .iter()
        .map(|signal| {
            let (mut with, mut with_won, mut without, mut without_won) = (0u64, 0u64, 0u64, 0u64);
            for (outcome, snapshot) in outcomes.iter().zip(snapshots) {
                if snapshot.signals.iter().any(|s| *s == *signal.id) {
                    with += 1;
                    with_won += outcome.won as u64;
                } else {
                    without += 1;
                    without_won += outcome.won as u64;
                }
            }
            // The lift from the exact rates; the rates are rounded for show.
            let lift = (with > 0 && without_won > 0).then(|| {
                round3((with_won as f64 / with as f64) / (without_won as f64 / without as f64))
            });
            SignalLift {
                signal: signal.id.to_string(),
                with,
                win_rate_with: ratio(with_won, with),
                win_rate_without: ratio(without_won, without),
                lift,
            }
        })
        .collect();
    let ranked: Vec<(f64, bool)> = outcomes
        .iter()
        .zip(snapshots)
        .map(|(o, s)| (s.raw, o.won))
        .collect();
    let scored: Vec<(f64, bool)> = outcomes
        .iter()
        .zip(snapshots)
        .map(|(o, s)| (s.score, o.won))
        .collect();
    let at_days = history.at_days;
    Report {
        signals_version: defs.version.to_string(),
        events_read: history.events_read,
        events_rejected: history.events_rejected,
        accounts_with_outcome: n,
        won: won_total,
        lost: n - won_total,
        accounts_without_events: history.accounts_without_events,
        rules,
        signals,
        classifier: Classifier {
            at_days,
            accounts: n,
            roc_auc: roc_auc(&ranked).map(round3),
            precision_top_10pct: precision_at_top(&ranked, 0.10).map(round3),
            calibration: calibration(&scored),
        },
    }
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// The report as text for a terminal; with a baseline, both side by side
/// with the difference.
pub fn to_text(report: &Report, baseline: Option<&Report>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let f = |x: Option<f64>| x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
    let diff = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:+.3}", a - b),
        _ => "-".into(),
    };
    let _ = writeln!(
        out,
        "backtest: signals {}{}; {} events ({} rejected); {} accounts with an outcome ({} won, {} lost, {} without events)",
        report.signals_version,
        baseline.map(|b| format!(" (baseline {})", b.signals_version)).unwrap_or_default(),
        report.events_read,
        report.events_rejected,
        report.accounts_with_outcome,
        report.won,
        report.lost,
        report.accounts_without_events
    );
    let c = &report.classifier;
    let _ = writeln!(out, "\nscore {} days before the outcome:", c.at_days);
    match baseline.map(|b| &b.classifier) {
        Some(b) => {
            let _ = writeln!(
                out,
                "  ROC AUC            {}  baseline {}  ({})",
                f(c.roc_auc),
                f(b.roc_auc),
                diff(c.roc_auc, b.roc_auc)
            );
            let _ = writeln!(
                out,
                "  precision top 10%  {}  baseline {}  ({})",
                f(c.precision_top_10pct),
                f(b.precision_top_10pct),
                diff(c.precision_top_10pct, b.precision_top_10pct)
            );
        }
        None => {
            let _ = writeln!(out, "  ROC AUC            {}", f(c.roc_auc));
            let _ = writeln!(out, "  precision top 10%  {}", f(c.precision_top_10pct));
        }
    }
    let _ = writeln!(
        out,
        "  calibration: score bin, accounts, mean score, win rate"
    );
    for bin in c.calibration.iter().filter(|b| b.accounts > 0) {
        let _ = writeln!(
            out,
            "    {:>3.0}-{:<3.0} {:>6} {:>8} {:>8}",
            bin.from,
            bin.to,
            bin.accounts,
            f(bin.mean_score),
            f(bin.win_rate)
        );
    }
    let _ = writeln!(
        out,
        "\n{:<28} {:>6} {:>9} {:>7} {:>10} {:>12}{}",
        "rule",
        "fired",
        "precision",
        "recall",
        "lead days",
        "false/100",
        if baseline.is_some() {
            "   Δprecision Δrecall"
        } else {
            ""
        }
    );
    for rule in &report.rules {
        let base = baseline.and_then(|b| b.rules.iter().find(|r| r.rule == rule.rule));
        let _ = writeln!(
            out,
            "{:<28} {:>6} {:>9} {:>7} {:>10} {:>12.2}{}",
            rule.rule,
            rule.fired,
            f(rule.precision),
            f(rule.recall),
            f(rule.median_lead_days),
            rule.false_alarms_per_100,
            match (baseline.is_some(), base) {
                (true, Some(b)) => format!(
                    "   {:>10} {:>7}",
                    diff(rule.precision, b.precision),
                    diff(rule.recall, b.recall)
                ),
                (true, None) => "   (new rule)".into(),
                _ => String::new(),
            }
        );
    }
    let _ = writeln!(
        out,
        "\n{:<28} {:>6} {:>9} {:>9} {:>7}",
        "signal", "with", "won with", "without", "lift"
    );
    for signal in &report.signals {
        let _ = writeln!(
            out,
            "{:<28} {:>6} {:>9} {:>9} {:>7}",
            signal.signal,
            signal.with,
            f(signal.win_rate_with),
            f(signal.win_rate_without),
            f(signal.lift)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_parse_and_every_bad_line_is_named() {
        let text = "{\"account\":\"a\",\"outcome\":\"won\",\"ts\":\"2026-03-01T00:00:00Z\"}\n\n{\"account\":\"b\",\"outcome\":\"lost\",\"ts\":1772323200000}\n";
        let outcomes = parse_outcomes(text, "o.jsonl").unwrap();
        assert_eq!(outcomes.len(), 2);
        assert!(outcomes[0].won && !outcomes[1].won);
        let bad = "{\"account\":\"a\",\"outcome\":\"maybe\",\"ts\":1}\nnot json\n{\"account\":\"c\",\"outcome\":\"won\",\"ts\":\"yesterday\"}\n";
        let errors: Vec<String> = parse_outcomes(bad, "o.jsonl")
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("o.jsonl:1: outcome"), "{errors:?}");
        assert!(errors[1].starts_with("o.jsonl:2:"), "{errors:?}");
        assert!(errors[2].starts_with("o.jsonl:3: ts"), "{errors:?}");
    }
}
