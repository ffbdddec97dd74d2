//! The pipeline: parse → extract → graph → score → rules → actions, as plain
//! synchronous code over event time. [`Pipeline::process`] takes one event
//! and appends the actions it causes to a buffer; [`Pipeline::advance_to`]
//! moves event time forward (firing silence timers). No I/O, no wall clock.
//!
//! Out-of-order events: every account keeps its observations newer than the
//! watermark (the highest event time seen minus the allowed lateness) and the
//! state before them. An event that arrives out of order within the allowed
//! lateness is inserted in time order and the account's recent observations
//! are re-applied, so the state equals the in-order result; actions already
//! emitted are not emitted again (their ids are deterministic). An event
//! older than the watermark is still applied, and counted as late.

pub use crate::graph::pending::{Origin, Pending, CHECKPOINT_EVERY};

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHasher};
use serde::Serialize;

use crate::actions::{render, Action};
use crate::dedupe::IdDedupe;
use crate::event::Event;
use crate::extract::{Extractor, Observation};
use crate::graph::{account_json, AccountCore, AccountEntry, AccountIdx, IntentGraph};
use crate::ingest::{decode_with, DecodeError, Limits};
use crate::rules::{self, fire_silence, Context, Firing, SilenceTimer};
use crate::score::{self, Explanation};
use crate::signal_defs::{RuleIdx, RuleKind, SignalIdx, SignalSet};
use crate::time::{Timestamp, DAY_MS, MINUTE_MS};

/// Settings of the pipeline (runtime settings; signal definitions are separate).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Size limits applied when decoding events.
    pub limits: Limits,
    /// How far behind the newest event an event may arrive and still be
    /// placed exactly in time order.
    pub allowed_lateness_ms: i64,
    /// Event ids are remembered this long (event time) for idempotency...
    pub dedupe_horizon_ms: i64,
    /// ...and at most this many of them.
    pub dedupe_capacity: usize,
    /// Pending (not yet final) observations kept per account; beyond this the
    /// oldest become final early.
    pub max_pending_per_account: usize,
    /// How far ahead of the newest event time an event may be.
    pub max_time_jump_ms: i64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            limits: Limits::default(),
            allowed_lateness_ms: 10 * MINUTE_MS,
            dedupe_horizon_ms: 7 * DAY_MS,
            dedupe_capacity: 4_000_000,
            max_pending_per_account: 256,
            max_time_jump_ms: 366 * DAY_MS,
        }
    }
}

/// What happened to one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The event was applied to its account.
    Applied {
        /// Older than the watermark: applied, but possibly not in time order.
        late: bool,
        /// Arrived out of order within the lateness and was re-ordered.
        reordered: bool,
    },
    /// An event with this id was already applied; nothing changed.
    Duplicate,
}

/// Counters of the pipeline's work.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    /// Events offered, whatever became of them.
    pub events_in: u64,
    /// Events applied to their account (late or not).
    pub applied: u64,
    /// Events rejected: invalid, or too far ahead in time.
    pub rejected: u64,
    /// Rejections by [`DecodeError::reason_label`] (and `ts too far ahead`).
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Events ignored because their id was already seen.
    pub duplicates: u64,
    /// Events applied though older than the watermark.
    pub late: u64,
    /// Events that arrived out of order within the lateness and were re-ordered.
    pub reordered: u64,
    /// Actions emitted.
    pub actions: u64,
    /// Actions emitted, by rule id.
    pub actions_by_rule: BTreeMap<String, u64>,
    /// Actions emitted by silence timers.
    pub timers_fired: u64,
    /// Actions emitted that the in-order result turned out not to contain
    /// (a late event moved a firing; emitted actions cannot be taken back).
    pub superseded: u64,
}

/// The intent-scoring pipeline over one set of accounts.
pub struct Pipeline {
    defs: Arc<SignalSet>,
    config: PipelineConfig,
    graph: IntentGraph,
    extractor: Extractor,
    dedupe: IdDedupe,
    /// Pending silence timers: (deadline, account, rule), earliest first. A
    /// silence restarted later than a queued entry is not queued again: the
    /// entry, when due, is moved on to the silence's current deadline, so
    /// the heap holds about one entry per armed silence, not one per event.
    timers: BinaryHeap<Reverse<(i64, AccountIdx, RuleIdx)>>,
    /// The earliest queued deadline of each (account, silence rule).
    queued: FxHashMap<(AccountIdx, RuleIdx), i64>,
    /// Accounts with pending observations, by their newest observation time.
    pending: BinaryHeap<Reverse<(i64, AccountIdx)>>,
    /// Next account the background sweep prunes.
    sweep_cursor: usize,
    max_ts: i64,
    watermark: i64,
    seq: u64,
    stats: Stats,
    has_threshold_rule: bool,
    firings: Vec<Firing>,
    new_timers: Vec<SilenceTimer>,
}

impl Pipeline {
    /// A pipeline with no account yet, event time not started.
    pub fn new(defs: Arc<SignalSet>, config: PipelineConfig) -> Pipeline {
        Pipeline {
            has_threshold_rule: has_threshold(&defs),
            dedupe: IdDedupe::new(config.dedupe_horizon_ms, config.dedupe_capacity),
            defs,
            config,
            graph: IntentGraph::default(),
            extractor: Extractor::new(),
            timers: BinaryHeap::new(),
            queued: FxHashMap::default(),
            pending: BinaryHeap::new(),
            sweep_cursor: 0,
            max_ts: i64::MIN,
            watermark: i64::MIN,
            seq: 0,
            stats: Stats::default(),
            firings: Vec::new(),
            new_timers: Vec::new(),
        }
    }

    /// The signal definitions in use.
    pub fn defs(&self) -> &Arc<SignalSet> {
        &self.defs
    }

    /// The runtime settings.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// Counters of the work done so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The intent graph of every account seen.
    pub fn graph(&self) -> &IntentGraph {
        &self.graph
    }

    /// The newest event time seen (or advanced to).
    pub fn now(&self) -> Option<Timestamp> {
        (self.max_ts != i64::MIN).then_some(Timestamp(self.max_ts))
    }

    /// The newest event time minus the allowed lateness (or the time last
    /// advanced to); `None` before any event.
    pub fn watermark(&self) -> Option<Timestamp> {
        (self.watermark != i64::MIN).then_some(Timestamp(self.watermark))
    }

    /// Silence timers queued (about one per armed silence, however often
    /// each was restarted).
    pub fn queued_timers(&self) -> usize {
        self.timers.len()
    }

    /// The earliest pending silence-timer deadline, if any: an edge with a
    /// wall clock advances event time when this comes due without events.
    pub fn next_timer_deadline(&self) -> Option<Timestamp> {
        self.timers
            .peek()
            .map(|Reverse((deadline, _, _))| Timestamp(*deadline))
    }

    /// Decodes, validates and processes one encoded event. A rejected event
    /// is counted by reason and changes nothing.
    pub fn process_bytes(
        &mut self,
        bytes: &[u8],
        out: &mut Vec<Action>,
    ) -> Result<Outcome, DecodeError> {
        match decode_with(bytes, &self.config.limits) {
            Ok(event) => self.process(&event, out),
            Err(err) => {
                self.count_rejected(&err);
                Err(err)
            }
        }
    }

    /// Counts an event rejected before it reached the pipeline (for example
    /// a line too long to read).
    pub fn count_rejected(&mut self, err: &DecodeError) {
        self.stats.events_in += 1;
        self.stats.rejected += 1;
        *self
            .stats
            .rejected_by_reason
            .entry(err.reason_label())
            .or_default() += 1;
    }

    /// Processes one validated event, appending the actions it causes.
    ///
    /// An event further ahead of the newest event time than
    /// `max_time_jump_ms` is rejected (a mistyped year would otherwise move
    /// event time years ahead: every silence timer would fire, every later
    /// event would be late).
    pub fn process(
        &mut self,
        event: &Event<'_>,
        out: &mut Vec<Action>,
    ) -> Result<Outcome, DecodeError> {
        self.process_observed(event, out, |_, _| {})
    }

    /// [`Self::process`], showing `observe` what was extracted from the
    /// event (its signals, phrases, topics and contact) before it is
    /// applied. Duplicates and rejected events are not shown. The evidence
    /// index is built from this.
    pub fn process_observed(
        &mut self,
        event: &Event<'_>,
        out: &mut Vec<Action>,
        observe: impl FnOnce(&SignalSet, &Observation),
    ) -> Result<Outcome, DecodeError> {
        self.stats.events_in += 1;
        let ts = event.ts.millis();
        if self.max_ts != i64::MIN && ts - self.max_ts > self.config.max_time_jump_ms {
            let err = DecodeError::Invalid {
                field: "ts".into(),
                reason: format!(
                    "{} is {} ahead of the newest event time {} (limit {})",
                    event.ts,
                    crate::time::format_duration_ms(ts - self.max_ts),
                    Timestamp(self.max_ts),
                    crate::time::format_duration_ms(self.config.max_time_jump_ms)
                ),
            };
            self.stats.rejected += 1;
            *self
                .stats
                .rejected_by_reason
                .entry("ts too far ahead".into())
                .or_default() += 1;
            return Err(err);
        }
        let id_digest = IdDedupe::digest(&event.id);
        if self.dedupe.contains_digest(id_digest) {
            self.stats.duplicates += 1;
            return Ok(Outcome::Duplicate);
        }
        self.seq += 1;
        let obs = self.extractor.extract(&self.defs, event, self.seq);
        observe(&self.defs, &obs);
        let ts = obs.ts.millis();
        if ts > self.max_ts {
            self.max_ts = ts;
            let watermark = ts.saturating_sub(self.config.allowed_lateness_ms);
            if watermark > self.watermark {
                self.advance_watermark(watermark, out);
            }
        }
        self.dedupe.insert_digest(id_digest, ts, self.max_ts);
        self.stats.applied += 1;
        let outcome = self.apply(&event.account, obs, out);
        if let Outcome::Applied { late, reordered } = outcome {
            self.stats.late += late as u64;
            self.stats.reordered += reordered as u64;
        }
        Ok(outcome)
    }

    /// Moves event time forward to `now` without an event (end of input, or a
    /// wall clock at the edge): fires every silence timer due by then and
    /// makes all pending observations final.
    pub fn advance_to(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        self.max_ts = self.max_ts.max(now.millis());
        if now.millis() > self.watermark {
            self.advance_watermark(now.millis(), out);
        }
    }

    /// Advances event time to the newest event seen: the end of a finite input.
    pub fn finish(&mut self, out: &mut Vec<Action>) {
        if self.max_ts != i64::MIN {
            self.advance_to(Timestamp(self.max_ts), out);
        }
    }

    fn apply(&mut self, account: &str, obs: Observation, out: &mut Vec<Action>) -> Outcome {
        let idx = self.graph.get_or_insert(account);
        let late = obs.ts.millis() < self.watermark;
        let defs = Arc::clone(&self.defs);
        let entry = self.graph.entry_mut(idx);
        // What the watermark made final goes first, so the log holds only
        // observations a late event may still precede.
        if self.watermark != i64::MIN && entry.pending.compact(self.watermark) {
            entry.core.prune(&defs, self.max_ts);
        }
        self.new_timers.clear();
        if entry.pending.is_in_order(&obs) || entry.pending.is_empty() {
            // A late event is logged too while the account has pending
            // observations: a replay from a checkpoint must re-apply it.
            let track = self.config.allowed_lateness_ms > 0 && (!late || !entry.pending.is_empty());
            self.apply_in_order(&defs, idx, obs, track, out);
            Outcome::Applied {
                late,
                reordered: false,
            }
        } else {
            self.apply_reordered(&defs, idx, obs, out);
            Outcome::Applied {
                late,
                reordered: true,
            }
        }
    }

    /// Applies an observation that comes after every pending one of its
    /// account; with `track`, logs it (after a checkpoint if one is due) so
    /// that a later replay can re-apply it.
    fn apply_in_order(
        &mut self,
        defs: &SignalSet,
        idx: AccountIdx,
        obs: Observation,
        track: bool,
        out: &mut Vec<Action>,
    ) {
        let ts = obs.ts.millis();
        let entry = self.graph.entry_mut(idx);
        if track {
            if entry.pending.is_empty() {
                self.pending.push(Reverse((ts, idx)));
            }
            entry.pending.checkpoint_if_due(&entry.core);
        }
        let mut actions = Vec::new();
        step(
            defs,
            &entry.id,
            &mut entry.core,
            &obs,
            self.has_threshold_rule,
            &mut self.firings,
            &mut self.new_timers,
            &mut actions,
        );
        let trigger = (ts, obs.seq);
        emit_all(entry, actions, track, trigger, &mut self.stats, out);
        if track {
            entry.pending.push(obs);
            entry
                .pending
                .enforce_cap(&entry.core, self.config.max_pending_per_account);
        }
        self.schedule(idx);
    }

    /// Applies an observation that arrived out of order within the lateness:
    /// re-applies the account's pending observations in time order from the
    /// last checkpoint before it, and emits what the replay fires that was
    /// not emitted yet.
    fn apply_reordered(
        &mut self,
        defs: &SignalSet,
        idx: AccountIdx,
        obs: Observation,
        out: &mut Vec<Action>,
    ) {
        let has_threshold_rule = self.has_threshold_rule;
        let entry = self.graph.entry_mut(idx);
        let firings = &mut self.firings;
        let new_timers = &mut self.new_timers;
        let id = entry.id.clone();
        let mut actions = Vec::new();
        let mut triggers = Vec::new();
        let replay_from = entry
            .pending
            .insert_and_replay(obs, &mut entry.core, |core, pending| {
                let before = actions.len();
                step(
                    defs,
                    &id,
                    core,
                    pending,
                    has_threshold_rule,
                    firings,
                    new_timers,
                    &mut actions,
                );
                triggers.extend(std::iter::repeat_n(
                    (pending.ts.millis(), pending.seq),
                    actions.len() - before,
                ));
            });
        let replayed: Vec<u64> = actions.iter().map(|a| digest(&a.id)).collect();
        self.stats.superseded += entry.pending.mark_superseded(replay_from, &replayed);
        for (action, trigger) in actions.into_iter().zip(triggers) {
            emit_one(
                entry,
                action,
                true,
                Origin::Event,
                trigger,
                &mut self.stats,
                out,
            );
        }
        entry
            .pending
            .enforce_cap(&entry.core, self.config.max_pending_per_account);
        self.schedule(idx);
        // Timers the replay re-armed that were already due fire now (an
        // already emitted one is recognised by its id).
        if self.watermark != i64::MIN {
            let watermark = self.watermark;
            self.fire_due_timers(watermark, out);
        }
    }

    fn schedule(&mut self, idx: AccountIdx) {
        for timer in std::mem::take(&mut self.new_timers) {
            self.queue_timer(idx, timer);
        }
    }

    /// Queues a silence timer unless an entry no later is queued already
    /// (that entry moves on to the current deadline when it comes due).
    fn queue_timer(&mut self, idx: AccountIdx, timer: SilenceTimer) {
        let key = (idx, timer.rule);
        if self.queued.get(&key).is_some_and(|&q| q <= timer.deadline) {
            return;
        }
        self.queued.insert(key, timer.deadline);
        self.timers.push(Reverse((timer.deadline, idx, timer.rule)));
    }

    fn advance_watermark(&mut self, watermark: i64, out: &mut Vec<Action>) {
        self.watermark = watermark;
        self.fire_due_timers(watermark, out);
        // Accounts whose pending observations are all final drop their replay state.
        let defs = Arc::clone(&self.defs);
        let now = self.max_ts;
        while let Some(&Reverse((newest, idx))) = self.pending.peek() {
            if newest >= watermark {
                break;
            }
            self.pending.pop();
            let entry = self.graph.entry_mut(idx);
            if entry.pending.compact(watermark) {
                entry.core.prune(&defs, now);
            } else if let Some(newest) = entry.pending.newest_ts() {
                self.pending.push(Reverse((newest, idx)));
            }
        }
        self.sweep(now);
    }

    /// Prunes a few accounts round-robin, so that accounts which stopped
    /// receiving events still drop what has fully decayed.
    fn sweep(&mut self, now: i64) {
        const ACCOUNTS_PER_SWEEP: usize = 2;
        let n = self.graph.len();
        if n == 0 {
            return;
        }
        let defs = Arc::clone(&self.defs);
        for _ in 0..ACCOUNTS_PER_SWEEP.min(n) {
            self.sweep_cursor = (self.sweep_cursor + 1) % n;
            let entry = self.graph.entry_mut(self.sweep_cursor as AccountIdx);
            if entry.pending.is_empty() && entry.core.last_ts < now {
                entry.core.prune(&defs, now);
                // Spare capacity goes back only here, on idle accounts, so
                // busy ones do not shrink and regrow with every event.
                entry.core.shrink();
            }
        }
    }

    fn fire_due_timers(&mut self, watermark: i64, out: &mut Vec<Action>) {
        let defs = Arc::clone(&self.defs);
        while let Some(&Reverse((deadline, idx, rule))) = self.timers.peek() {
            if deadline > watermark {
                break;
            }
            self.timers.pop();
            if self.queued.get(&(idx, rule)) == Some(&deadline) {
                self.queued.remove(&(idx, rule));
            }
            let entry = self.graph.entry_mut(idx);
            let current = entry
                .core
                .existing_rule_state(rule)
                .and_then(|s| s.silence.as_ref())
                .filter(|s| !s.done)
                .map(|s| s.deadline);
            if let Some(later) = current.filter(|&d| d > deadline) {
                // Restarted since this entry was queued: move it on.
                self.queue_timer(
                    idx,
                    SilenceTimer {
                        rule,
                        deadline: later,
                    },
                );
                continue;
            }
            let timer = SilenceTimer { rule, deadline };
            if let Some(firing) = fire_silence(&defs, &mut entry.core, timer) {
                // Keep the checkpoints in step, so a replay does not re-arm it.
                entry.pending.for_each_checkpoint(|state| {
                    let _ = fire_silence(&defs, state, timer);
                });
                let track = !entry.pending.is_empty();
                let score = score::score(&defs, &entry.core, firing.event_ts);
                let action = render(&defs, &entry.id, &entry.core, &firing, score);
                let trigger = (deadline, u64::MAX);
                if emit_one(
                    entry,
                    action,
                    track,
                    Origin::Timer,
                    trigger,
                    &mut self.stats,
                    out,
                ) {
                    self.stats.timers_fired += 1;
                }
            }
        }
    }

    /// The score of an account now (the newest event time), if known.
    pub fn score(&self, account: &str) -> Option<f64> {
        let now = self.max_ts;
        self.graph.with_account(account, |core| {
            score::rounded(score::score(&self.defs, core, now))
        })
    }

    /// The unrounded score of an account at a given instant (decay applied to
    /// that instant; the state is as of now).
    pub fn score_at(&self, account: &str, at: Timestamp) -> Option<f64> {
        self.graph
            .with_account(account, |core| score::score(&self.defs, core, at.millis()))
    }

    /// Why an account scores what it does, now.
    pub fn explain(&self, account: &str) -> Option<Explanation> {
        let now = self.max_ts;
        self.graph.with_account(account, |core| {
            Explanation::build(&self.defs, account, core, now)
        })
    }

    /// Why an account scores what it does at a given instant (decay applied
    /// to that instant; the state is as of now).
    pub fn explain_at(&self, account: &str, at: Timestamp) -> Option<Explanation> {
        self.graph.with_account(account, |core| {
            Explanation::build(&self.defs, account, core, at.millis())
        })
    }

    /// Each signal's capped decayed occurrences for an account at an instant
    /// (indexed by signal; what the weights multiply in the score).
    pub fn signal_features_at(&self, account: &str, at: Timestamp) -> Option<Vec<f64>> {
        self.graph.with_account(account, |core| {
            let mut features = vec![0.0; self.defs.signals.len()];
            for s in &core.signals {
                let def = &self.defs.signals[s.signal as usize];
                features[s.signal as usize] =
                    s.value.value_at(at.millis(), def.half_life_ms).min(def.cap);
            }
            features
        })
    }

    /// An account's whole intent graph as JSON, now.
    pub fn account_graph(&self, account: &str) -> Option<serde_json::Value> {
        let now = self.max_ts;
        self.graph
            .with_account(account, |core| account_json(&self.defs, account, core, now))
    }

    /// The `n` highest-scoring accounts now, optionally of one industry.
    pub fn top(&self, n: usize, industry: Option<&str>) -> Vec<(String, f64)> {
        let now = self.max_ts;
        let mut scored: Vec<(String, f64)> = self
            .graph
            .entries()
            .filter(|e| industry.is_none() || e.core.industry() == industry)
            .map(|e| {
                (
                    e.id.to_string(),
                    score::rounded(score::score(&self.defs, &e.core, now)),
                )
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        scored.truncate(n);
        scored
    }

    /// Swaps in new signal definitions. Account state is carried over by
    /// signal and rule id; state of removed signals and rules is dropped.
    pub fn set_signals(&mut self, defs: Arc<SignalSet>) {
        let signal_map: Vec<Option<SignalIdx>> = self
            .defs
            .signals
            .iter()
            .map(|s| defs.signal_idx(&s.id))
            .collect();
        let rule_map: Vec<Option<RuleIdx>> = self
            .defs
            .rules
            .iter()
            .map(|r| defs.rule_idx(&r.id))
            .collect();
        for entry in self.graph.entries_mut() {
            entry.core.remap(&signal_map, &rule_map);
            // Pending observations were extracted with the old definitions;
            // they become final now rather than be replayed under new ones.
            entry.pending.clear();
        }
        self.pending.clear();
        let timers: Vec<_> = std::mem::take(&mut self.timers).into_vec();
        self.queued.clear();
        for Reverse((deadline, idx, rule)) in timers {
            if let Some(new_rule) = rule_map.get(rule as usize).copied().flatten() {
                self.queue_timer(
                    idx,
                    SilenceTimer {
                        rule: new_rule,
                        deadline,
                    },
                );
            }
        }
        self.has_threshold_rule = has_threshold(&defs);
        self.defs = defs;
    }

    /// Approximate heap bytes of the graph and the id memory.
    pub fn heap_bytes(&self) -> usize {
        self.graph.heap_bytes() + self.dedupe.len() * 24
    }
}

fn has_threshold(defs: &SignalSet) -> bool {
    defs.rules
        .iter()
        .any(|r| matches!(r.kind, RuleKind::Threshold { .. }))
}

/// Folds one observation into an account, evaluates the rules on it and
/// renders what fired (with the state as of that observation).
#[allow(clippy::too_many_arguments)]
fn step(
    defs: &SignalSet,
    account: &str,
    core: &mut AccountCore,
    obs: &Observation,
    has_threshold_rule: bool,
    firings: &mut Vec<Firing>,
    timers: &mut Vec<SilenceTimer>,
    actions: &mut Vec<Action>,
) {
    let ts = obs.ts.millis();
    let scored = has_threshold_rule && !obs.signals.is_empty();
    let sum_before = if scored {
        score::raw_score(defs, core, ts)
    } else {
        0.0
    };
    let change = core.apply(defs, obs);
    // The sums and scores only matter to threshold rules; 0 when not scored.
    let (sum_after, score_before, score_after) = if scored {
        let sum_after = score::raw_score(defs, core, ts);
        (
            sum_after,
            score::scale(defs, sum_before),
            score::scale(defs, sum_after),
        )
    } else {
        (sum_before, 0.0, 0.0)
    };
    let cx = Context {
        defs,
        obs,
        change: change.as_ref(),
        score_before,
        score_after,
        sum_before,
        sum_after,
    };
    firings.clear();
    rules::evaluate(&cx, core, firings, timers);
    for firing in firings.iter() {
        let score = if scored {
            score_after
        } else {
            score::score(defs, core, ts)
        };
        actions.push(render(defs, account, core, firing, score));
    }
}

fn emit_all(
    entry: &mut AccountEntry,
    actions: Vec<Action>,
    track: bool,
    trigger: (i64, u64),
    stats: &mut Stats,
    out: &mut Vec<Action>,
) {
    for action in actions {
        emit_one(entry, action, track, Origin::Event, trigger, stats, out);
    }
}

fn digest(action_id: &str) -> u64 {
    let mut hasher = FxHasher::default();
    action_id.hash(&mut hasher);
    hasher.finish()
}

/// Emits an action unless one with its id was already emitted while the
/// account had pending observations. Returns whether it was emitted.
fn emit_one(
    entry: &mut AccountEntry,
    action: Action,
    track: bool,
    origin: Origin,
    trigger: (i64, u64),
    stats: &mut Stats,
    out: &mut Vec<Action>,
) -> bool {
    let digest = digest(&action.id);
    if entry.pending.was_emitted(digest) {
        return false;
    }
    if track {
        entry.pending.record_emitted(digest, origin, trigger);
    }
    stats.actions += 1;
    *stats
        .actions_by_rule
        .entry(action.rule.to_string())
        .or_default() += 1;
    out.push(action);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline() -> Pipeline {
        Pipeline::new(
            Arc::new(crate::signal_defs::shipped::signal_set()),
            PipelineConfig::default(),
        )
    }

    fn web(id: &str, account: &str, ts_ms: i64, url: &str) -> Vec<u8> {
        format!(r#"{{"id":"{id}","ts":{ts_ms},"account":"{account}","kind":"web","url":"{url}","action":"view"}}"#)
            .into_bytes()
    }

    #[test]
    fn idle_accounts_are_pruned_by_the_sweep() {
        let mut p = pipeline();
        let mut out = Vec::new();
        let t0 = 1_800_000_000_000;
        p.process_bytes(&web("a1", "idle", t0, "https://v.test/pricing"), &mut out)
            .unwrap();
        assert_eq!(p.graph().with_account("idle", |c| c.signals.len()), Some(1));
        // A year of other traffic: the idle account's pricing visit decays away.
        for i in 0..200 {
            let ts = t0 + 365 * DAY_MS + i * MINUTE_MS;
            p.process_bytes(
                &web(
                    &format!("b{i}"),
                    &format!("busy{}", i % 7),
                    ts,
                    "https://v.test/about",
                ),
                &mut out,
            )
            .unwrap();
        }
        assert_eq!(p.graph().with_account("idle", |c| c.signals.len()), Some(0));
        assert_eq!(p.score("idle"), Some(0.0));
    }

    #[test]
    fn a_timestamp_far_ahead_is_rejected_and_changes_nothing() {
        let mut p = pipeline();
        let mut out = Vec::new();
        let t0 = 1_800_000_000_000;
        p.process_bytes(&web("a", "acct", t0, "https://v.test/pricing"), &mut out)
            .unwrap();
        let typo = web(
            "b",
            "acct",
            t0 + 200 * 365 * DAY_MS,
            "https://v.test/pricing",
        );
        let err = p.process_bytes(&typo, &mut out).unwrap_err();
        assert_eq!(err.field(), Some("ts"));
        assert!(
            err.to_string().contains("ahead of the newest event time"),
            "{err}"
        );
        assert_eq!(p.now(), Some(Timestamp(t0)));
        assert_eq!(p.stats().rejected, 1);
    }

    #[test]
    fn a_late_first_touch_does_not_replace_the_running_silence() {
        let mut p = pipeline();
        let mut out = Vec::new();
        let crm = |id: &str, ts: i64| {
            format!(
                r#"{{"id":"{id}","ts":{ts},"account":"lead","kind":"crm","type":"first_touch"}}"#
            )
            .into_bytes()
        };
        let t0 = 1_800_000_000_000;
        p.process_bytes(&crm("f2", t0 + 10 * DAY_MS), &mut out)
            .unwrap();
        p.process_bytes(
            &web("w", "other", t0 + 11 * DAY_MS, "https://v.test/about"),
            &mut out,
        )
        .unwrap();
        p.process_bytes(&crm("f1", t0), &mut out).unwrap(); // late: days behind
        p.advance_to(Timestamp(t0 + 20 * DAY_MS), &mut out);
        let fired: Vec<_> = out
            .iter()
            .filter(|a| &*a.rule == "silent_after_first_touch")
            .collect();
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].event_ts, Timestamp(t0 + 12 * DAY_MS));
    }

    #[test]
    fn duplicates_change_nothing_and_late_events_are_counted() {
        let mut p = pipeline();
        let mut out = Vec::new();
        let t0 = 1_800_000_000_000;
        let first = web("x", "acct", t0, "https://v.test/pricing");
        assert_eq!(
            p.process_bytes(&first, &mut out).unwrap(),
            Outcome::Applied {
                late: false,
                reordered: false
            }
        );
        let score = p.score("acct");
        assert_eq!(
            p.process_bytes(&first, &mut out).unwrap(),
            Outcome::Duplicate
        );
        assert_eq!(p.score("acct"), score);
        p.process_bytes(
            &web("y", "acct", t0 + 60 * MINUTE_MS, "https://v.test/about"),
            &mut out,
        )
        .unwrap();
        // Older than the watermark: late, yet still placed before `y`, which is not final.
        let late = p
            .process_bytes(
                &web("z", "acct", t0 + MINUTE_MS, "https://v.test/about"),
                &mut out,
            )
            .unwrap();
        assert_eq!(
            late,
            Outcome::Applied {
                late: true,
                reordered: true
            }
        );
        let stats = p.stats();
        assert_eq!((stats.applied, stats.duplicates, stats.late), (3, 1, 1));
    }
}
