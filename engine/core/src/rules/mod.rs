//! Trigger rules: after an observation is folded into its account, each rule
//! looks at the account and the observation and may produce a [`Firing`];
//! silence rules also fire from timers as event time advances.
//!
//! One file per rule kind; this module dispatches and applies the per-account
//! cooldown. Everything here is a function of the account state and the
//! observation, so re-applying observations in time order (the pipeline does
//! so when an event arrives late) fires the same rules with the same ids.

mod attr_keyword;
mod cooccurrence;
mod count;
mod role_change;
mod silence;
mod threshold;

use std::sync::Arc;

use crate::extract::Observation;
use crate::graph::{AccountCore, ContactChange};
use crate::signal_defs::{RuleDef, RuleIdx, RuleKind, SignalSet};

pub use silence::{fire_silence, SilenceTimer};

/// Values a rule's templates can refer to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vars {
    pub count: Option<u32>,
    pub within_ms: Option<i64>,
    pub silence_ms: Option<i64>,
    pub attr: Option<String>,
    pub value: Option<f64>,
    pub old_title: Option<Arc<str>>,
    pub new_title: Option<Arc<str>>,
}

/// A rule that fired, before it is rendered into an action.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    pub rule: RuleIdx,
    /// Identifies the firing window; with rule and account it makes the
    /// action id, so a re-evaluation yields the same id.
    pub window_key: String,
    pub event_ts: i64,
    pub trigger_event: Option<Arc<str>>,
    pub contact: Option<Arc<str>>,
    pub evidence_events: Vec<Arc<str>>,
    pub signals: Vec<Arc<str>>,
    pub keywords: Vec<Arc<str>>,
    pub vars: Vars,
}

impl Firing {
    fn new(rule: RuleIdx, obs: &Observation, window_key: String) -> Firing {
        Firing {
            rule,
            window_key,
            event_ts: obs.ts.millis(),
            trigger_event: Some(obs.id.clone()),
            contact: obs.contact.as_ref().map(|c| c.key.clone()),
            evidence_events: Vec::new(),
            signals: Vec::new(),
            keywords: Vec::new(),
            vars: Vars::default(),
        }
    }
}

/// What rule evaluation needs besides the account state.
pub struct Context<'a> {
    pub defs: &'a SignalSet,
    pub obs: &'a Observation,
    pub change: Option<&'a ContactChange>,
    /// Score at the observation's time without and with it.
    pub score_before: f64,
    pub score_after: f64,
}

/// Evaluates every rule for one observation just folded into `core`.
/// Firings go to `out`; new silence timers to `timers`.
pub fn evaluate(
    cx: &Context<'_>,
    core: &mut AccountCore,
    out: &mut Vec<Firing>,
    timers: &mut Vec<SilenceTimer>,
) {
    for (idx, rule) in cx.defs.rules.iter().enumerate() {
        let idx = idx as RuleIdx;
        let firing = match &rule.kind {
            RuleKind::Threshold { score } => threshold::evaluate(cx, core, idx, *score),
            RuleKind::Count {
                signal,
                at_least,
                within_ms,
            } => count::evaluate(cx, core, idx, *signal, *at_least, *within_ms),
            RuleKind::Cooccurrence {
                signals,
                within_ms,
                distinct_kinds,
            } => cooccurrence::evaluate(cx, core, idx, signals, *within_ms, *distinct_kinds),
            RuleKind::Silence { start, silence_ms } => {
                silence::observe(cx, core, idx, *start, *silence_ms, timers);
                None
            }
            RuleKind::RoleChange => role_change::evaluate(cx, idx),
            RuleKind::AttrKeyword {
                attr,
                above,
                libraries,
            } => attr_keyword::evaluate(cx, idx, attr, *above, libraries),
        };
        if let Some(firing) = firing {
            if cooled_down(rule, core, idx, firing.event_ts) {
                out.push(firing);
            }
        }
    }
}

/// Applies the per-account cooldown; records the firing when it passes.
fn cooled_down(rule: &RuleDef, core: &mut AccountCore, idx: RuleIdx, ts: i64) -> bool {
    let state = core.rule_state(idx);
    if let Some(last) = state.last_fired {
        // Either side: a late firing just before the last one is as much
        // within the cooldown as one just after it.
        if ts.abs_diff(last) < rule.cooldown_ms.unsigned_abs() {
            return false;
        }
    }
    state.last_fired = Some(state.last_fired.map_or(ts, |last| last.max(ts)));
    true
}

/// Evidence of the most contributing signals: their ids, latest events and
/// keywords.
fn top_evidence(cx: &Context<'_>, core: &AccountCore, firing: &mut Firing, n_signals: usize) {
    let now = cx.obs.ts.millis();
    let mut ranked: Vec<(f64, usize)> = core
        .signals
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let def = &cx.defs.signals[s.signal as usize];
            (
                crate::score::contribution(def, s.value.value_at(now, def.half_life_ms)),
                i,
            )
        })
        .filter(|(c, _)| *c > 0.0)
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in ranked.into_iter().take(n_signals) {
        let state = &core.signals[i];
        firing
            .signals
            .push(cx.defs.signals[state.signal as usize].id.clone());
        for (id, _) in state.evidence.iter().rev().take(3) {
            push_unique(&mut firing.evidence_events, id.clone());
        }
        for keyword in state.keywords() {
            if !firing.keywords.contains(keyword) {
                firing.keywords.push(keyword.clone());
            }
        }
    }
}

fn push_unique(list: &mut Vec<Arc<str>>, id: Arc<str>) {
    if !list.contains(&id) {
        list.push(id);
    }
}
