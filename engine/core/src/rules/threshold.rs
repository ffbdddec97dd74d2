//! Threshold rules: the score crosses a value upward with this observation.

use super::firing::{top_evidence, Context, Firing};
use crate::graph::AccountCore;
use crate::signal_defs::RuleIdx;

pub(super) fn evaluate(
    cx: &Context<'_>,
    core: &AccountCore,
    rule: RuleIdx,
    threshold: f64,
) -> Option<Firing> {
    if !(cx.score_before < threshold && cx.score_after >= threshold) {
        return None;
    }
    let mut firing = Firing::new(rule, cx.obs, cx.obs.ts.millis().to_string());
    top_evidence(cx, core, &mut firing, 3);
    Some(firing)
}
