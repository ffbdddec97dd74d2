//! Silence rules: after a start, no inbound customer activity — a web visit,
//! an inbound e-mail, a customer utterance — for a duration. Outbound
//! e-mails from our side do not break the silence.
//!
//! The start is a CRM event of a type (`start`), or any event raising a
//! signal (`start_signal`), each of which restarts the count. The start arms
//! a timer; inbound activity within the window disarms it; the pipeline
//! fires due timers when the event-time watermark passes them (the core
//! never reads a wall clock). A start at or after the deadline of a silence
//! that was never broken first fires that silence: it did elapse, even if
//! the watermark had not reached its deadline yet.

use super::firing::{Context, Firing, Vars};
use crate::graph::{AccountCore, SilenceState};
use crate::signal_defs::{RuleIdx, RuleKind, SignalSet, SilenceStart};

/// A timer to schedule: fire `rule` for the account at `deadline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceTimer {
    /// The silence rule, as an index into the definitions' rules.
    pub rule: RuleIdx,
    /// When it fires if the silence holds, in event time (Unix ms).
    pub deadline: i64,
}

/// A silence rule's settings, as compiled.
#[derive(Debug, Clone, Copy)]
pub(super) struct Silence {
    pub(super) start: SilenceStart,
    pub(super) silence_ms: i64,
    pub(super) min_events: u32,
}

impl Silence {
    /// The settings of a silence rule; `None` for another kind.
    pub(super) fn of(kind: &RuleKind) -> Option<Silence> {
        match *kind {
            RuleKind::Silence {
                start,
                silence_ms,
                min_events,
            } => Some(Silence {
                start,
                silence_ms,
                min_events,
            }),
            _ => None,
        }
    }
}

/// Whether the observation starts the rule's silence.
fn starts(cx: &Context<'_>, start: SilenceStart) -> bool {
    match start {
        SilenceStart::Crm(crm_type) => cx.obs.crm.as_ref().is_some_and(|c| c.crm_type == crm_type),
        SilenceStart::Signal(signal) => cx.obs.signals.iter().any(|s| s.signal == signal),
    }
}

/// Arms, re-arms or breaks the silence; returns the firing of a silence
/// that elapsed before this start.
pub(super) fn observe(
    cx: &Context<'_>,
    core: &mut AccountCore,
    rule: RuleIdx,
    silence: Silence,
    timers: &mut Vec<SilenceTimer>,
) -> Option<Firing> {
    let ts = cx.obs.ts.millis();
    if starts(cx, silence.start) {
        // The account's events up to and including this one.
        let events = core.n_events;
        let state = core.rule_state(rule);
        if state.silence.as_ref().is_some_and(|s| ts < s.start_ts) {
            // A late start older than the running one does not replace it.
            return None;
        }
        let elapsed = state
            .silence
            .as_mut()
            .filter(|s| !s.done && ts >= s.deadline)
            .and_then(|s| {
                s.done = true;
                firing(rule, s, silence)
            });
        let deadline = ts.saturating_add(silence.silence_ms);
        state.silence = Some(SilenceState {
            start_ts: ts,
            deadline,
            start_event: cx.obs.id.clone(),
            contact: cx.obs.contact.as_ref().map(|c| c.key.clone()),
            done: false,
            events,
        });
        timers.push(SilenceTimer { rule, deadline });
        return elapsed;
    }
    if cx.obs.inbound {
        if let Some(state) = core.existing_rule_state(rule) {
            if let Some(s) = &mut state.silence {
                if !s.done && ts >= s.start_ts && ts < s.deadline {
                    s.done = true;
                }
            }
        }
    }
    None
}

/// The firing of an elapsed silence, unless the account has too few events.
fn firing(rule: RuleIdx, s: &SilenceState, silence: Silence) -> Option<Firing> {
    if s.events < silence.min_events {
        return None;
    }
    Some(Firing {
        rule,
        window_key: s.start_ts.to_string(),
        event_ts: s.deadline,
        trigger_event: None,
        contact: s.contact.clone(),
        evidence_events: vec![s.start_event.clone()],
        signals: Vec::new(),
        keywords: Vec::new(),
        vars: Vars {
            silence_ms: Some(silence.silence_ms),
            ..Vars::default()
        },
    })
}

/// Fires a due silence timer if the account is still silent; `None` when
/// inbound activity broke the silence, the timer was superseded by a later
/// start, it already fired, or the account has fewer events than the rule's
/// `min_events`.
pub fn fire_silence(
    defs: &SignalSet,
    core: &mut AccountCore,
    timer: SilenceTimer,
) -> Option<Firing> {
    let rule = &defs.rules[timer.rule as usize];
    let settings = Silence::of(&rule.kind)?;
    let state = core.rule_state(timer.rule);
    let silence = state.silence.as_mut()?;
    if silence.done || silence.deadline != timer.deadline {
        return None;
    }
    silence.done = true;
    let firing = firing(timer.rule, silence, settings)?;
    if let Some(last) = state.last_fired {
        if timer.deadline.abs_diff(last) < rule.cooldown_ms.unsigned_abs() {
            return None;
        }
    }
    state.last_fired = Some(timer.deadline);
    Some(firing)
}
