//! `intent report`: one self-contained HTML page about a history replayed
//! under a set of signal definitions: score trajectories of chosen or top
//! accounts with their rule firings, firings per rule over time, and, with
//! outcomes, the backtest's ROC curve, calibration, rule and signal tables,
//! and `tune`'s learned weights beside the current ones.
//!
//! [`collect`] replays the history twice through the same core (once to
//! measure and choose the accounts, once to trace their scores); [`charts`]
//! draws SVG with plotters; [`html`] assembles the page, which needs no
//! network to be viewed.

pub mod charts;
pub mod html;

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::sync::Arc;

use crate::backtest::{self, Outcome, ReplayObserver};
use crate::tune::{self, Fit, TuneConfig};
use intent_core::actions::Action;
use intent_core::event::Event;
use intent_core::time::{Timestamp, DAY_MS};
use intent_core::{Pipeline, PipelineConfig, SignalSet};

/// Points a trajectory is sampled at, besides each of the account's events.
const GRID_POINTS: i64 = 160;
/// Firings are counted per day over spans up to this long, else per week.
const DAILY_BINS_UP_TO_DAYS: i64 = 90;

/// What to report on.
pub struct ReportInput<'a> {
    pub defs: Arc<SignalSet>,
    pub config: PipelineConfig,
    pub outcomes: &'a [Outcome],
    pub at_days: f64,
    /// Accounts whose trajectories to draw; empty = the `top` highest-scoring.
    pub accounts: Vec<String>,
    pub top: usize,
    pub tune: TuneConfig,
    /// Where the definitions came from, for the page.
    pub signals_source: String,
}

/// One account's score over time, and its rule firings.
#[derive(Debug, Clone)]
pub struct Trajectory {
    pub account: String,
    pub outcome: Option<bool>,
    /// The time span drawn (ms): the account's activity and a tail after it.
    pub span: (i64, i64),
    /// (event time ms, score) in time order.
    pub points: Vec<(i64, f64)>,
    /// (event time ms, rule, score) of each firing.
    pub firings: Vec<(i64, String, f64)>,
}

/// The tune comparison: the fit, and ROC curves of the held-out accounts
/// under the current and the learned weights.
#[derive(Debug, Clone)]
pub struct TuneView {
    pub fit: Fit,
    pub roc_current: Vec<(f64, f64)>,
    pub roc_learned: Vec<(f64, f64)>,
}

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct ReportData {
    pub signals_version: String,
    pub signals_source: String,
    pub events_read: u64,
    pub events_rejected: u64,
    pub first_event: Option<Timestamp>,
    pub last_event: Option<Timestamp>,
    /// Rule firings by rule: (bin start ms, firings) for every bin of the span.
    pub firings_over_time: FiringBins,
    pub trajectories: Vec<Trajectory>,
    /// With outcomes: the backtest, its ROC curve over all accounts, and tune.
    pub backtest: Option<backtest::Report>,
    pub roc: Vec<(f64, f64)>,
    pub tune: Option<TuneView>,
}

/// Pass one: firings of every rule, the time span, the final top accounts.
#[derive(Default)]
struct Survey {
    firings: Vec<(i64, Arc<str>)>,
    first: Option<i64>,
    last: Option<i64>,
    top: Vec<(String, f64)>,
    want_top: usize,
    /// Each account's first and last event time.
    active: std::collections::HashMap<String, (i64, i64)>,
}

impl ReplayObserver for Survey {
    fn applied(&mut self, _pipeline: &Pipeline, event: &Event<'_>, actions: &[Action]) {
        let ts = event.ts.millis();
        self.first = Some(self.first.map_or(ts, |f| f.min(ts)));
        self.last = Some(self.last.map_or(ts, |l| l.max(ts)));
        let active = self
            .active
            .entry(event.account.to_string())
            .or_insert((ts, ts));
        *active = (active.0.min(ts), active.1.max(ts));
        self.firings.extend(
            actions
                .iter()
                .map(|a| (a.event_ts.millis(), a.rule.clone())),
        );
    }

    fn finished(&mut self, pipeline: &Pipeline) {
        self.top = pipeline.top(self.want_top, None);
    }
}

/// Pass two: the chosen accounts' scores on a time grid over each one's
/// span, and at their events.
struct Tracer {
    accounts: Vec<String>,
    /// Per account: its grid and the next grid point to sample.
    grids: Vec<(Vec<i64>, usize)>,
    trajectories: Vec<Trajectory>,
}

impl Tracer {
    fn sample_until(&mut self, pipeline: &Pipeline, until: i64) {
        for (t, (grid, next)) in self.trajectories.iter_mut().zip(&mut self.grids) {
            while *next < grid.len() && grid[*next] < until {
                if let Some(score) = pipeline.score_at(&t.account, Timestamp(grid[*next])) {
                    t.points.push((grid[*next], score));
                }
                *next += 1;
            }
        }
    }
}

/// The span drawn for an account active from `first` to `last`: a little
/// before, and a tail after to show the decay (within the history's span).
fn account_span(first: i64, last: i64, history_end: i64) -> (i64, i64) {
    let active = last - first;
    let pad = (active / 20).max(3_600_000);
    let tail = (active / 2).max(7 * DAY_MS);
    (first - pad, (last + tail).min(history_end.max(last + pad)))
}

impl ReplayObserver for Tracer {
    fn before(&mut self, pipeline: &Pipeline, event: &Event<'_>) {
        self.sample_until(pipeline, event.ts.millis());
    }

    fn applied(&mut self, pipeline: &Pipeline, event: &Event<'_>, actions: &[Action]) {
        if let Some(i) = self.accounts.iter().position(|a| **a == *event.account) {
            if let Some(score) = pipeline.score_at(&event.account, event.ts) {
                self.trajectories[i].points.push((event.ts.millis(), score));
            }
        }
        // Timers fire for other accounts than the event's.
        for action in actions {
            if let Some(i) = self.accounts.iter().position(|a| *a == action.account) {
                self.trajectories[i].firings.push((
                    action.event_ts.millis(),
                    action.rule.to_string(),
                    action.score,
                ));
            }
        }
    }

    fn finished(&mut self, pipeline: &Pipeline) {
        self.sample_until(pipeline, i64::MAX);
    }
}

/// Replays the history (opened twice through `open`) and gathers the page's
/// data; `observer` is shown the first replay (the CLI builds the evidence
/// index from it).
pub fn collect<'r>(
    input: &ReportInput<'_>,
    mut open: impl FnMut() -> io::Result<Vec<Box<dyn BufRead + 'r>>>,
    observer: &mut dyn ReplayObserver,
) -> io::Result<ReportData> {
    let mut survey = Survey {
        want_top: input.top,
        ..Survey::default()
    };
    let history = backtest::replay_history_observed(
        Arc::clone(&input.defs),
        input.config.clone(),
        open()?,
        input.outcomes,
        input.at_days,
        |_| {},
        &mut (&mut survey, observer),
    )?;
    let with_outcomes = !input.outcomes.is_empty();
    let outcome_of: BTreeMap<&str, bool> = input
        .outcomes
        .iter()
        .map(|o| (o.account.as_str(), o.won))
        .collect();

    let accounts: Vec<String> = if !input.accounts.is_empty() {
        input.accounts.clone()
    } else if with_outcomes {
        // The highest scores at decision time: the accounts the score bet on.
        let mut ranked: Vec<(&Outcome, f64)> = history
            .outcomes
            .iter()
            .zip(&history.snapshots)
            .map(|(o, s)| (o, s.raw))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.account.cmp(&b.0.account)));
        ranked
            .iter()
            .take(input.top)
            .map(|(o, _)| o.account.clone())
            .collect()
    } else {
        survey.top.iter().map(|(a, _)| a.clone()).collect()
    };

    let (first, last) = (survey.first, survey.last);
    let history_end = last.unwrap_or(0);
    let trajectories: Vec<Trajectory> = accounts
        .iter()
        .map(|a| {
            let (f, l) = survey.active.get(a).copied().unwrap_or((0, 0));
            Trajectory {
                account: a.clone(),
                outcome: outcome_of.get(a.as_str()).copied(),
                span: account_span(f, l, history_end),
                points: Vec::new(),
                firings: Vec::new(),
            }
        })
        .collect();
    let grids = trajectories
        .iter()
        .map(|t| {
            let (f, l) = t.span;
            let grid = (0..=GRID_POINTS)
                .map(|i| f + (l - f) * i / GRID_POINTS)
                .collect();
            (grid, 0)
        })
        .collect();
    let mut tracer = Tracer {
        trajectories,
        accounts,
        grids,
    };
    backtest::replay_history_observed(
        Arc::clone(&input.defs),
        input.config.clone(),
        open()?,
        &[],
        input.at_days,
        |_| {},
        &mut tracer,
    )?;
    for t in &mut tracer.trajectories {
        t.points.sort_by_key(|p| p.0);
    }

    let (backtest, roc, tune) = if with_outcomes {
        let report = backtest::report(&history);
        let ranked: Vec<(f64, bool)> = history
            .outcomes
            .iter()
            .zip(&history.snapshots)
            .map(|(o, s)| (s.raw, o.won))
            .collect();
        let examples = history.examples();
        let names: Vec<String> = input
            .defs
            .signals
            .iter()
            .map(|s| s.id.to_string())
            .collect();
        let current: Vec<f64> = input.defs.signals.iter().map(|s| s.weight).collect();
        let fit = tune::tune(&names, &current, &examples, &input.tune);
        let held: Vec<&tune::Example> = examples
            .iter()
            .filter(|e| tune::held_out(&e.account, input.tune.seed, input.tune.holdout))
            .collect();
        let roc_of = |weights: &[f64]| {
            let scored: Vec<(f64, bool)> = held
                .iter()
                .map(|e| {
                    let s: f64 = e.features.iter().zip(weights).map(|(x, w)| x * w).sum();
                    (s, e.won)
                })
                .collect();
            crate::metrics::roc_curve(&scored)
        };
        let view = TuneView {
            roc_current: roc_of(&fit.current),
            roc_learned: roc_of(&fit.learned),
            fit,
        };
        (Some(report), crate::metrics::roc_curve(&ranked), Some(view))
    } else {
        (None, Vec::new(), None)
    };

    Ok(ReportData {
        signals_version: input.defs.version.to_string(),
        signals_source: input.signals_source.clone(),
        events_read: history.events_read,
        events_rejected: history.events_rejected,
        first_event: first.map(Timestamp),
        last_event: last.map(Timestamp),
        firings_over_time: binned(&survey.firings, first, last),
        trajectories: tracer.trajectories,
        backtest,
        roc,
        tune,
    })
}

/// Firings per rule in bins of a day (short histories) or a week.
#[derive(Debug, Clone, Default)]
pub struct FiringBins {
    pub bin_days: i64,
    pub by_rule: BTreeMap<String, Vec<(i64, u64)>>,
}

/// Firings counted per rule and bin, every bin of the span present.
fn binned(firings: &[(i64, Arc<str>)], first: Option<i64>, last: Option<i64>) -> FiringBins {
    let (Some(first), Some(last)) = (first, last) else {
        return FiringBins::default();
    };
    let bin_days = if last - first <= DAILY_BINS_UP_TO_DAYS * DAY_MS {
        1
    } else {
        7
    };
    let bin = bin_days * DAY_MS;
    let start = first.div_euclid(bin) * bin;
    let bins = ((last.div_euclid(bin) * bin - start) / bin + 1) as usize;
    let mut by_rule: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    for (ts, rule) in firings {
        let counts = by_rule
            .entry(rule.to_string())
            .or_insert_with(|| (0..bins).map(|b| (start + b as i64 * bin, 0)).collect());
        let b = ((ts.div_euclid(bin) * bin - start) / bin).clamp(0, bins as i64 - 1);
        counts[b as usize].1 += 1;
    }
    FiringBins { bin_days, by_rule }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_the_span_and_count_each_firing_once() {
        let day = DAY_MS;
        let firings: Vec<(i64, Arc<str>)> = vec![
            (day + 5, "a".into()),
            (day + 9, "a".into()),
            (3 * day, "b".into()),
        ];
        let daily = binned(&firings, Some(0), Some(3 * day + 1));
        assert_eq!(daily.bin_days, 1);
        assert_eq!(
            daily.by_rule["a"],
            [(0, 0), (day, 2), (2 * day, 0), (3 * day, 0)]
        );
        assert_eq!(
            daily.by_rule["b"],
            [(0, 0), (day, 0), (2 * day, 0), (3 * day, 1)]
        );
        // Over 90 days: weeks (1970-01-01 is a Thursday, so weeks start on Thursdays).
        let weekly = binned(&firings, Some(0), Some(100 * day));
        assert_eq!(weekly.bin_days, 7);
        assert_eq!(weekly.by_rule["a"].len(), 15);
        assert_eq!(weekly.by_rule["a"][0], (0, 2));
        assert_eq!(weekly.by_rule["b"][0], (0, 1));
        assert!(binned(&firings, None, None).by_rule.is_empty());
    }

    #[test]
    fn an_account_span_shows_its_activity_and_a_decay_tail() {
        let day = DAY_MS;
        // Active 10 days: 7-day tail (more than half), within the history.
        assert_eq!(account_span(0, 10 * day, 100 * day), (-day / 2, 17 * day));
        // Near the end of the history the tail is cut there.
        assert_eq!(account_span(0, 10 * day, 12 * day), (-day / 2, 12 * day));
        // A single event: an hour before it.
        assert_eq!(
            account_span(5 * day, 5 * day, 100 * day),
            (5 * day - 3_600_000, 12 * day)
        );
    }
}
