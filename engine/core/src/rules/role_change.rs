//! Role-change rules: a contact in a decision role changes title or leaves
//! (or a contact takes a decision role), which puts a deal at risk or opens
//! a door.

use super::firing::{Context, Firing, Vars};
use crate::signal_defs::RuleIdx;

pub(super) fn evaluate(cx: &Context<'_>, rule: RuleIdx) -> Option<Firing> {
    let change = cx.change?;
    if !(change.was_decision_role || change.is_decision_role) {
        return None;
    }
    let ts = cx.obs.ts.millis();
    let mut firing = Firing::new(rule, cx.obs, format!("{}-{ts}", change.contact));
    firing.contact = Some(change.contact.clone());
    firing.evidence_events.push(cx.obs.id.clone());
    firing.vars = Vars {
        old_title: change.old_title.clone(),
        new_title: change.new_title.clone().or_else(|| {
            change
                .left
                .then(|| std::sync::Arc::from("(left the company)"))
        }),
        ..Vars::default()
    };
    Some(firing)
}
