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
mod firing;
mod role_change;
mod silence;
mod threshold;

use crate::graph::AccountCore;
use crate::signal_defs::{RuleDef, RuleIdx, RuleKind};

pub use firing::{Context, Firing, Vars};
pub use silence::{fire_silence, SilenceTimer};

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
            RuleKind::Threshold { score, on_sum } => {
                threshold::evaluate(cx, core, idx, *score, *on_sum)
            }
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
            RuleKind::Silence { .. } => {
                let settings = silence::Silence::of(&rule.kind).expect("a silence rule");
                silence::observe(cx, core, idx, settings, timers)
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
