//! Attribute-and-keyword rules: one event with a numeric attribute over a
//! threshold and a phrase of given libraries (e.g. a video past 500,000 views
//! whose comments ask for the purchase link).

use super::firing::{Context, Firing, Vars};
use crate::extract::matcher::LibraryIdx;
use crate::signal_defs::RuleIdx;

pub(super) fn evaluate(
    cx: &Context<'_>,
    rule: RuleIdx,
    attr: &str,
    above: f64,
    libraries: &[LibraryIdx],
) -> Option<Firing> {
    let value = cx
        .obs
        .attrs
        .iter()
        .find(|(name, _)| &**name == attr)
        .map(|(_, v)| *v)?;
    if value <= above {
        return None;
    }
    let keywords: Vec<_> = cx
        .obs
        .phrases
        .iter()
        .filter(|p| libraries.contains(&p.library))
        .map(|p| p.phrase.clone())
        .collect();
    if keywords.is_empty() {
        return None;
    }
    let mut firing = Firing::new(rule, cx.obs, cx.obs.id.to_string());
    firing.evidence_events.push(cx.obs.id.clone());
    firing.keywords = keywords;
    firing.vars = Vars {
        attr: Some(attr.to_string()),
        value: Some(value),
        ..Vars::default()
    };
    Some(firing)
}
