//! Threshold rules: the score (or the raw weighted sum) crosses a value
//! upward with this observation.

use super::firing::{top_evidence, Context, Firing};
use crate::graph::AccountCore;
use crate::signal_defs::RuleIdx;

pub(super) fn evaluate(
    cx: &Context<'_>,
    core: &AccountCore,
    rule: RuleIdx,
    threshold: f64,
    on_sum: bool,
) -> Option<Firing> {
    let (before, after) = if on_sum {
        (cx.sum_before, cx.sum_after)
    } else {
        (cx.score_before, cx.score_after)
    };
    if !(before < threshold && after >= threshold) {
        return None;
    }
    let mut firing = Firing::new(rule, cx.obs, cx.obs.ts.millis().to_string());
    top_evidence(cx, core, &mut firing, 3);
    Some(firing)
}
