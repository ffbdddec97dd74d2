//! What every rule kind produces and reads: the [`Firing`] (a rule that
//! fired, before it becomes an action), its template [`Vars`], the
//! evaluation [`Context`], and the evidence helpers the kinds share.

use std::sync::Arc;

use crate::extract::Observation;
use crate::graph::{AccountCore, ContactChange};
use crate::signal_defs::{RuleIdx, SignalSet};

/// Values a rule's templates can refer to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vars {
    /// `{count}`: occurrences counted in the window (count rules).
    pub count: Option<u32>,
    /// `{within}`: the rule's window, in ms (count and co-occurrence rules).
    pub within_ms: Option<i64>,
    /// `{silence}`: the silence duration, in ms (silence rules).
    pub silence_ms: Option<i64>,
    /// `{attr}`: the attribute tested (attribute-and-keyword rules).
    pub attr: Option<String>,
    /// `{value}`: the attribute's value on the event (attribute-and-keyword rules).
    pub value: Option<f64>,
    /// `{old_title}`: the contact's previous title (role-change rules).
    pub old_title: Option<Arc<str>>,
    /// `{new_title}`: the contact's new title, or "(left the company)"
    /// (role-change rules).
    pub new_title: Option<Arc<str>>,
}

/// A rule that fired, before it is rendered into an action.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    /// The rule that fired.
    pub rule: RuleIdx,
    /// Identifies the firing window; with rule and account it makes the
    /// action id, so a re-evaluation yields the same id.
    pub window_key: String,
    /// Event time of the firing, in Unix ms: the triggering observation's
    /// time, or the deadline of a silence timer.
    pub event_ts: i64,
    /// Id of the triggering event; `None` for silence timers.
    pub trigger_event: Option<Arc<str>>,
    /// Key of the contact concerned, if any.
    pub contact: Option<Arc<str>>,
    /// Ids of the events behind the firing, without repeats.
    pub evidence_events: Vec<Arc<str>>,
    /// Ids of the signals behind the firing.
    pub signals: Vec<Arc<str>>,
    /// Matched phrases behind the firing, without repeats.
    pub keywords: Vec<Arc<str>>,
    /// Values for the rule's templates.
    pub vars: Vars,
}

impl Firing {
    pub(super) fn new(rule: RuleIdx, obs: &Observation, window_key: String) -> Firing {
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
    /// The compiled signal definitions.
    pub defs: &'a SignalSet,
    /// The observation just folded into the account.
    pub obs: &'a Observation,
    /// The contact change the observation carried, if any.
    pub change: Option<&'a ContactChange>,
    /// Score (0–100) at the observation's time before it was applied; 0 when
    /// not computed (no threshold rule, or the observation hits no signal).
    pub score_before: f64,
    /// Score at the same time after it was applied; equals `score_before`
    /// when not computed.
    pub score_after: f64,
    /// The raw weighted sum `S` at the observation's time, before it.
    pub sum_before: f64,
    /// The raw weighted sum `S` at the observation's time, after it.
    pub sum_after: f64,
}

/// Evidence of the most contributing signals: their ids, latest events and
/// keywords.
pub(super) fn top_evidence(
    cx: &Context<'_>,
    core: &AccountCore,
    firing: &mut Firing,
    n_signals: usize,
) {
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

pub(super) fn push_unique(list: &mut Vec<Arc<str>>, id: Arc<str>) {
    if !list.contains(&id) {
        list.push(id);
    }
}
