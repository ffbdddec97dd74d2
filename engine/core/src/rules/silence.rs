//! Silence rules: after a start event (a CRM `first_touch`), no inbound
//! customer activity — a web visit, an inbound e-mail, a customer utterance —
//! for a duration. Outbound e-mails from our side do not break the silence.
//!
//! The start arms a timer; inbound activity within the window disarms it; the
//! pipeline fires due timers when the event-time watermark passes them (the
//! core never reads a wall clock).

use super::firing::{Context, Firing, Vars};
use crate::event::CrmType;
use crate::graph::{AccountCore, SilenceState};
use crate::signal_defs::{RuleIdx, SignalSet};

/// A timer to schedule: fire `rule` for the account at `deadline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceTimer {
    /// The silence rule, as an index into the definitions' rules.
    pub rule: RuleIdx,
    /// When it fires if the silence holds, in event time (Unix ms).
    pub deadline: i64,
}

pub(super) fn observe(
    cx: &Context<'_>,
    core: &mut AccountCore,
    rule: RuleIdx,
    start: CrmType,
    silence_ms: i64,
    timers: &mut Vec<SilenceTimer>,
) {
    let ts = cx.obs.ts.millis();
    if cx.obs.crm.as_ref().is_some_and(|c| c.crm_type == start) {
        let state = core.rule_state(rule);
        if state.silence.as_ref().is_some_and(|s| ts < s.start_ts) {
            // A late start older than the running one does not replace it.
            return;
        }
        let deadline = ts.saturating_add(silence_ms);
        state.silence = Some(SilenceState {
            start_ts: ts,
            deadline,
            start_event: cx.obs.id.clone(),
            contact: cx.obs.contact.as_ref().map(|c| c.key.clone()),
            done: false,
        });
        timers.push(SilenceTimer { rule, deadline });
    } else if cx.obs.inbound {
        let Some(state) = core.existing_rule_state(rule) else {
            return;
        };
        if let Some(silence) = &mut state.silence {
            if !silence.done && ts >= silence.start_ts && ts < silence.deadline {
                silence.done = true;
            }
        }
    }
}

/// Fires a due silence timer if the account is still silent; `None` when
/// inbound activity broke the silence, the timer was superseded by a later
/// start, or it already fired.
pub fn fire_silence(
    defs: &SignalSet,
    core: &mut AccountCore,
    timer: SilenceTimer,
) -> Option<Firing> {
    let rule = &defs.rules[timer.rule as usize];
    let crate::signal_defs::RuleKind::Silence { silence_ms, .. } = rule.kind else {
        return None;
    };
    let state = core.rule_state(timer.rule);
    let silence = state.silence.as_mut()?;
    if silence.done || silence.deadline != timer.deadline {
        return None;
    }
    silence.done = true;
    let firing = Firing {
        rule: timer.rule,
        window_key: silence.start_ts.to_string(),
        event_ts: silence.deadline,
        trigger_event: None,
        contact: silence.contact.clone(),
        evidence_events: vec![silence.start_event.clone()],
        signals: Vec::new(),
        keywords: Vec::new(),
        vars: Vars {
            silence_ms: Some(silence_ms),
            ..Vars::default()
        },
    };
    if let Some(last) = state.last_fired {
        if timer.deadline.abs_diff(last) < rule.cooldown_ms.unsigned_abs() {
            return None;
        }
    }
    state.last_fired = Some(timer.deadline);
    Some(firing)
}
