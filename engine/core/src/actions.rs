//! Actions: what the engine tells a CRM to do. A [`Firing`] of a rule becomes
//! an [`Action`] with a deterministic id, the rule's recommendation for the
//! account's industry, and a one-sentence reason, both rendered from the
//! rule's templates.

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::graph::AccountCore;
use crate::rules::Firing;
use crate::signal_defs::SignalSet;
use crate::time::{format_duration_ms, Timestamp};

/// The contact an action is about.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ActionContact {
    /// The contact's key in the intent graph: its id, else e-mail, else name.
    pub id: String,
    /// The contact's latest known name, if the account's graph has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The contact's latest known title, if the account's graph has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// What made the rule fire.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Evidence {
    /// Ids of the events behind the firing: recent evidence of its signals (at
    /// most [`MAX_EVIDENCE`](crate::graph::account::MAX_EVIDENCE) per signal),
    /// the event itself, or a silence rule's start event.
    pub events: Vec<String>,
    /// Ids of the signals behind the firing.
    pub signals: Vec<Arc<str>>,
    /// Phrases matched by those signals, as the analyst wrote them.
    pub keywords: Vec<Arc<str>>,
}

/// A trigger action (see README "Action contract").
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Action {
    /// Deterministic from rule, account and firing window: consumers can
    /// de-duplicate on it.
    pub id: String,
    /// Id of the rule that fired.
    pub rule: Arc<str>,
    /// The account it fired for.
    pub account: String,
    /// The contact concerned, when the firing names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<ActionContact>,
    /// The account's score (0–100, one decimal) at `event_ts`.
    pub score: f64,
    /// Time of the triggering event, or of the timer for silence rules.
    pub event_ts: Timestamp,
    /// The event that triggered it; absent for timers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_event: Option<String>,
    /// What made the rule fire.
    pub evidence: Evidence,
    /// What to do: the rule's recommendation for the account's industry (or
    /// its default), rendered.
    pub recommendation: String,
    /// One human sentence saying why, rendered from the rule's template.
    pub reason: String,
    /// Content hash of the signal definitions that produced the action.
    pub signals_version: Arc<str>,
}

impl Action {
    /// The action as one JSON line (no trailing newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("actions always serialize")
    }
}

/// The deterministic action id.
pub fn action_id(rule: &str, account: &str, window_key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(rule.as_bytes());
    hasher.update([0]);
    hasher.update(account.as_bytes());
    hasher.update([0]);
    hasher.update(window_key.as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    format!("act-{hex}")
}

/// Renders a firing into an action.
pub fn render(
    defs: &SignalSet,
    account: &str,
    core: &AccountCore,
    firing: &Firing,
    score: f64,
) -> Action {
    let rule = &defs.rules[firing.rule as usize];
    let contact = firing.contact.as_deref().map(|key| {
        let known = core.contact(key);
        ActionContact {
            id: key.to_string(),
            name: known.and_then(|c| c.name.as_deref()).map(str::to_string),
            title: known.and_then(|c| c.title.as_deref()).map(str::to_string),
        }
    });
    let industry = core.industry();
    let template = industry
        .and_then(|i| rule.recommendations.iter().find(|(name, _)| &**name == i))
        .map_or(&rule.recommendation, |(_, text)| text);
    let vars = TemplateVars {
        account,
        contact: contact.as_ref(),
        industry,
        score,
        firing,
        core,
        defs,
    };
    let recommendation = vars.render(template);
    let reason = vars.render(&rule.reason);
    Action {
        id: action_id(&rule.id, account, &firing.window_key),
        rule: rule.id.clone(),
        account: account.to_string(),
        contact,
        score: crate::score::rounded(score),
        event_ts: Timestamp(firing.event_ts),
        trigger_event: firing.trigger_event.as_deref().map(str::to_string),
        evidence: Evidence {
            events: firing
                .evidence_events
                .iter()
                .map(|e| e.to_string())
                .collect(),
            signals: firing.signals.clone(),
            keywords: firing.keywords.clone(),
        },
        recommendation,
        reason,
        signals_version: defs.version.clone(),
    }
}

struct TemplateVars<'a> {
    account: &'a str,
    contact: Option<&'a ActionContact>,
    industry: Option<&'a str>,
    score: f64,
    firing: &'a Firing,
    core: &'a AccountCore,
    defs: &'a SignalSet,
}

impl TemplateVars<'_> {
    /// Replaces `{name}` placeholders (checked at load time) with values.
    fn render(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) => {
                    out.push_str(&self.value(&after[..close]));
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str(&rest[open..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn value(&self, name: &str) -> String {
        let vars = &self.firing.vars;
        let or_unknown = |v: Option<String>| v.unwrap_or_else(|| "?".to_string());
        match name {
            "account" => self.account.to_string(),
            "contact" => or_unknown(
                self.contact
                    .map(|c| c.name.clone().unwrap_or_else(|| c.id.clone())),
            ),
            "contact_title" => or_unknown(self.contact.and_then(|c| c.title.clone())),
            "industry" => self.industry.unwrap_or("unknown").to_string(),
            "count" => or_unknown(vars.count.map(|c| c.to_string())),
            "within" => or_unknown(vars.within_ms.map(format_duration_ms)),
            "silence" => or_unknown(vars.silence_ms.map(format_duration_ms)),
            "score" => format!("{:.0}", self.score),
            "keywords" => {
                let list: Vec<&str> = self.firing.keywords.iter().take(5).map(|k| &**k).collect();
                if list.is_empty() {
                    "-".to_string()
                } else {
                    list.join(", ")
                }
            }
            "signals" => {
                let list: Vec<&str> = self.firing.signals.iter().map(|s| &**s).collect();
                if list.is_empty() {
                    "-".to_string()
                } else {
                    list.join(", ")
                }
            }
            "topics" => {
                let half_life = self.defs.score.topic_half_life_ms;
                let now = self.firing.event_ts;
                let mut topics: Vec<_> = self.core.topics.iter().collect();
                topics.sort_by(|a, b| {
                    b.weight
                        .value_at(now, half_life)
                        .total_cmp(&a.weight.value_at(now, half_life))
                        .then_with(|| a.name.key.cmp(&b.name.key))
                });
                let list: Vec<&str> = topics.iter().take(3).map(|t| &*t.name.display).collect();
                if list.is_empty() {
                    "-".to_string()
                } else {
                    list.join(", ")
                }
            }
            "attr" => or_unknown(vars.attr.clone()),
            "value" => or_unknown(vars.value.map(|v| format!("{v}"))),
            "old_title" => or_unknown(vars.old_title.as_deref().map(str::to_string)),
            "new_title" => or_unknown(vars.new_title.as_deref().map(str::to_string)),
            _ => format!("{{{name}}}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let a = action_id("budget_confirmed", "acme", "1700000000000");
        assert_eq!(a, action_id("budget_confirmed", "acme", "1700000000000"));
        assert_ne!(a, action_id("budget_confirmed", "acme", "1700000000001"));
        assert_ne!(a, action_id("budget_confirmed", "acme2", "1700000000000"));
        assert!(a.starts_with("act-") && a.len() == 24);
    }
}
