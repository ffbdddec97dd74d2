//! Co-occurrence rules: every listed signal occurred within a window,
//! optionally from at least two event kinds (e.g. a demo request on the web
//! and procurement language in an e-mail).

use super::firing::{push_unique, Context, Firing, Vars};
use crate::event::Kind;
use crate::graph::AccountCore;
use crate::signal_defs::{RuleIdx, SignalIdx};

pub(super) fn evaluate(
    cx: &Context<'_>,
    core: &AccountCore,
    rule: RuleIdx,
    signals: &[SignalIdx],
    within_ms: i64,
    distinct_kinds: bool,
) -> Option<Firing> {
    if !cx.obs.signals.iter().any(|h| signals.contains(&h.signal)) {
        return None;
    }
    let ts = cx.obs.ts.millis();
    let from = ts - within_ms;
    let mut kinds: Vec<Kind> = Vec::new();
    let mut earliest = ts;
    for signal in signals {
        let state = core.signal(*signal)?;
        let mut any = false;
        for occurrence in state.occurrences() {
            let (t, kind) = (&occurrence.ts(), &occurrence.kind());
            if *t > from && *t <= ts {
                any = true;
                earliest = earliest.min(*t);
                if !kinds.contains(kind) {
                    kinds.push(*kind);
                }
            }
        }
        if !any {
            return None;
        }
    }
    if distinct_kinds && kinds.len() < 2 {
        return None;
    }
    let mut firing = Firing::new(rule, cx.obs, format!("{earliest}-{ts}"));
    for signal in signals {
        let state = core.signal(*signal)?;
        firing
            .signals
            .push(cx.defs.signals[*signal as usize].id.clone());
        for (id, t) in &state.evidence {
            if *t > from && *t <= ts {
                push_unique(&mut firing.evidence_events, id.clone());
            }
        }
        for keyword in state.keywords() {
            if !firing.keywords.contains(keyword) {
                firing.keywords.push(keyword.clone());
            }
        }
    }
    firing.vars = Vars {
        within_ms: Some(within_ms),
        ..Vars::default()
    };
    Some(firing)
}
