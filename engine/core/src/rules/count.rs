//! Count rules: at least N occurrences of a signal within a window, counted
//! when the observation is itself an occurrence.

use super::firing::{push_unique, Context, Firing, Vars};
use crate::graph::AccountCore;
use crate::signal_defs::{RuleIdx, SignalIdx};

pub(super) fn evaluate(
    cx: &Context<'_>,
    core: &AccountCore,
    rule: RuleIdx,
    signal: SignalIdx,
    at_least: u32,
    within_ms: i64,
) -> Option<Firing> {
    if !cx.obs.signals.iter().any(|h| h.signal == signal) {
        return None;
    }
    let state = core.signal(signal)?;
    let ts = cx.obs.ts.millis();
    let from = ts - within_ms;
    let in_window: Vec<i64> = state
        .occurrences()
        .iter()
        .map(|o| o.ts())
        .filter(|t| *t > from && *t <= ts)
        .collect();
    if (in_window.len() as u32) < at_least {
        return None;
    }
    let first = in_window[0];
    let mut firing = Firing::new(rule, cx.obs, format!("{first}-{ts}"));
    for (id, t) in &state.evidence {
        if *t > from && *t <= ts {
            push_unique(&mut firing.evidence_events, id.clone());
        }
    }
    firing
        .signals
        .push(cx.defs.signals[signal as usize].id.clone());
    firing.keywords = state.keywords().to_vec();
    firing.vars = Vars {
        count: Some(in_window.len() as u32),
        within_ms: Some(within_ms),
        ..Vars::default()
    };
    Some(firing)
}
