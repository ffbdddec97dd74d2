//! One account's node of the intent graph: its contacts (with roles and title
//! history), open topics, signal instances with evidence, and the rule state
//! that triggers need. [`AccountCore::apply`] folds one observation in.
//!
//! Every list here is capped, and decayed entries are pruned, so an account's
//! memory stays bounded however many events it receives.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thin_vec::ThinVec;

/// Heap bytes of a thin vector: nothing when empty, else header and items.
fn thin_bytes<T>(v: &ThinVec<T>) -> usize {
    if v.capacity() == 0 {
        0
    } else {
        16 + v.capacity() * std::mem::size_of::<T>()
    }
}

use crate::decay::Decayed;
use crate::event::{CrmType, Kind};
use crate::extract::{ContactObs, CrmObs, LibraryHit, Observation, SignalHit, TopicName, TopicObs};
use crate::signal_defs::{RuleIdx, SignalIdx, SignalSet};

/// Contacts kept per account (least recently seen are evicted).
pub const MAX_CONTACTS: usize = 16;
/// Earlier titles kept per contact.
pub const MAX_TITLE_HISTORY: usize = 4;
/// Open topics kept per account (weakest are evicted).
pub const MAX_TOPICS: usize = 24;
/// Evidence events kept per signal (oldest are dropped).
pub const MAX_EVIDENCE: usize = 6;
/// Matched phrases kept per signal.
pub const MAX_KEYWORDS: usize = 8;
/// Occurrence times kept per signal for windowed rules.
pub const MAX_OCCURRENCES: usize = 64;
/// Below this decayed value (in occurrences) a signal no longer counts.
pub const PRUNE_BELOW: f64 = 1e-3;

/// Earlier titles of a contact with the time each was replaced, oldest first.
pub type TitleHistory = ThinVec<(i64, Arc<str>)>;

/// A person at the account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactState {
    /// How the contact is known: its id, else e-mail, else name.
    pub key: Arc<str>,
    /// The latest name seen (a late event does not roll it back).
    pub name: Option<Arc<str>>,
    /// The current title, as last seen on activity or a CRM change.
    pub title: Option<Arc<str>>,
    /// Whether the current title matches the decision-roles library.
    pub is_decision_role: bool,
    /// Whether the CRM reported the contact gone; cleared by a new title.
    pub left: bool,
    /// Earlier titles with the time they were replaced, oldest first.
    /// Thin: most contacts never change title.
    pub title_history: TitleHistory,
    /// Time of the newest event naming the contact, in Unix ms.
    pub last_seen: i64,
}

impl ContactState {
    /// Folds in what an observation at `ts` says about this contact; returns
    /// the change of title or presence it makes, if any.
    fn observe(
        &mut self,
        obs: &Observation,
        observed: &ContactObs,
        ts: i64,
    ) -> Option<ContactChange> {
        let newest = ts >= self.last_seen;
        self.last_seen = self.last_seen.max(ts);
        if !newest {
            // An event older than what we know of this contact (a late one)
            // does not roll its name or title back.
            return None;
        }
        if observed.name.is_some() {
            self.name = observed.name.clone();
        }
        let crm = obs.crm.as_deref();
        let crm_type = crm.map(|c| c.crm_type);
        let was_decision_role = self.is_decision_role || crm.is_some_and(|c| c.old_title_decision);
        let old_title = self
            .title
            .clone()
            .or_else(|| crm.and_then(|c| c.old_title.clone()));
        if crm_type == Some(CrmType::ContactLeft) {
            let already_left = self.left;
            self.left = true;
            if already_left {
                return None;
            }
            return Some(ContactChange {
                contact: self.key.clone(),
                old_title,
                new_title: None,
                was_decision_role,
                is_decision_role: false,
                left: true,
            });
        }
        self.retitle(observed, crm_type, ts, old_title, was_decision_role)
    }

    /// Takes the observed title, if any and new, keeping the one it replaces
    /// in the history. The change, except for the first title seen on
    /// activity (which replaces none).
    fn retitle(
        &mut self,
        observed: &ContactObs,
        crm_type: Option<CrmType>,
        ts: i64,
        old_title: Option<Arc<str>>,
        was_decision_role: bool,
    ) -> Option<ContactChange> {
        let new_title = observed.title.clone()?;
        if self.title.as_deref() == Some(&*new_title) {
            self.is_decision_role = observed.is_decision_role;
            return None;
        }
        // A known title replaced by another, from a CRM change event or seen on activity.
        let first_sighting = self.title.is_none() && crm_type != Some(CrmType::ContactTitleChanged);
        if let Some(previous) = self.title.take() {
            let history = &mut self.title_history;
            if history.len() >= MAX_TITLE_HISTORY {
                history.remove(0);
            }
            history.push((ts, previous));
        }
        self.title = Some(new_title.clone());
        self.is_decision_role = observed.is_decision_role;
        self.left = false;
        if first_sighting {
            return None;
        }
        Some(ContactChange {
            contact: self.key.clone(),
            old_title,
            new_title: Some(new_title),
            was_decision_role,
            is_decision_role: observed.is_decision_role,
            left: false,
        })
    }
}

/// An open topic raised by the account's e-mails and calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicState {
    /// The topic's key and display form, shared across accounts.
    pub name: Arc<TopicName>,
    /// Summed TF-IDF weight of the topic's mentions, decaying with the
    /// topic half-life of the definitions.
    pub weight: Decayed,
}

/// When and from which kind of event a signal occurred, packed in 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Occurrence(i64);

impl Occurrence {
    /// Packs `ts` (Unix ms; any valid event time fits the 62 bits) with `kind`.
    pub fn new(ts: i64, kind: Kind) -> Occurrence {
        Occurrence((ts << 2) | kind as i64)
    }

    /// The occurrence's event time, in Unix ms.
    pub fn ts(self) -> i64 {
        self.0 >> 2
    }

    /// The kind of event it came from.
    pub fn kind(self) -> Kind {
        Kind::ALL[(self.0 & 3) as usize]
    }
}

/// The instances of one signal at this account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalState {
    /// The signal, as an index into the current [`SignalSet`]'s signals.
    pub signal: SignalIdx,
    /// Decayed count of occurrences.
    pub value: Decayed,
    /// Times and kinds of recent occurrences, ascending, kept only for
    /// signals that windowed rules count (boxed: most signals need none).
    occurrences: ThinVec<Occurrence>,
    /// Most recent evidence events, ascending: (event id, time). Never
    /// empty: the occurrence that created the state is its first evidence.
    pub evidence: Vec<(Arc<str>, i64)>,
    /// Matched phrases (boxed: many signals match no phrase).
    keywords: ThinVec<Arc<str>>,
    /// Occurrences counted since this state was created (saturating).
    pub total: u32,
}

impl SignalState {
    /// Recent occurrences, ascending (only for signals that rules count).
    pub fn occurrences(&self) -> &[Occurrence] {
        &self.occurrences
    }

    /// Matched phrases, most recent last.
    pub fn keywords(&self) -> &[Arc<str>] {
        &self.keywords
    }

    /// Time of the latest occurrence.
    pub fn last_ts(&self) -> i64 {
        self.evidence.last().map_or(i64::MIN, |(_, t)| *t)
    }

    /// Inserts an occurrence at `ts` in time order, then drops those more
    /// than `retain_ms` older than the newest and any beyond
    /// [`MAX_OCCURRENCES`].
    fn record_occurrence(&mut self, ts: i64, kind: Kind, retain_ms: i64) {
        let newest = self.last_ts().max(ts);
        let occurrences = &mut self.occurrences;
        let at = occurrences.partition_point(|o| o.ts() <= ts);
        occurrences.insert(at, Occurrence::new(ts, kind));
        let horizon = newest - retain_ms;
        let stale = occurrences.partition_point(|o| o.ts() <= horizon);
        let excess = occurrences.len().saturating_sub(MAX_OCCURRENCES);
        occurrences.drain(..stale.max(excess));
    }

    /// Inserts event `id` at `ts` into the evidence in time order, dropping
    /// the oldest beyond [`MAX_EVIDENCE`].
    fn record_evidence(&mut self, id: &Arc<str>, ts: i64) {
        let at = self.evidence.partition_point(|(_, t)| *t <= ts);
        self.evidence.insert(at, (id.clone(), ts));
        if self.evidence.len() > MAX_EVIDENCE {
            self.evidence.remove(0);
        }
    }

    /// Adds the phrases not yet kept, dropping the oldest beyond
    /// [`MAX_KEYWORDS`].
    fn record_keywords(&mut self, matched: &[Arc<str>]) {
        let keywords = &mut self.keywords;
        for keyword in matched {
            if !keywords.iter().any(|k| k == keyword) {
                if keywords.len() >= MAX_KEYWORDS {
                    keywords.remove(0);
                }
                keywords.push(keyword.clone());
            }
        }
    }
}

/// Per-rule trigger state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    /// The rule, as an index into the current [`SignalSet`]'s rules.
    pub rule: RuleIdx,
    /// Event time (Unix ms) of the latest firing that passed the cooldown.
    pub last_fired: Option<i64>,
    /// The latest silence timer armed here (silence rules only).
    pub silence: Option<SilenceState>,
}

/// A running silence timer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceState {
    /// Time of the start event, in Unix ms.
    pub start_ts: i64,
    /// When the silence fires if unbroken: `start_ts` plus the rule's silence, in ms.
    pub deadline: i64,
    /// Id of the start event, the firing's evidence.
    pub start_event: Arc<str>,
    /// Key of the start event's contact, if any.
    pub contact: Option<Arc<str>>,
    /// Broken by inbound activity, or already fired.
    pub done: bool,
    /// The account's events up to and including the start (for the rule's
    /// `min_events`).
    #[serde(default)]
    pub events: u32,
}

/// A contact's title or presence changed with this observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactChange {
    /// Key of the contact.
    pub contact: Arc<str>,
    /// Title before the change: the known one, else the CRM event's `old_title`.
    pub old_title: Option<Arc<str>>,
    /// Title after the change; `None` when the contact left.
    pub new_title: Option<Arc<str>>,
    /// Whether the contact held a decision role before the change.
    pub was_decision_role: bool,
    /// Whether the contact holds a decision role after it (false once left).
    pub is_decision_role: bool,
    /// Whether the change is the contact leaving.
    pub left: bool,
}

/// The state of one account.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AccountCore {
    /// Known contacts, at most [`MAX_CONTACTS`].
    pub contacts: Vec<ContactState>,
    /// Open topics, at most [`MAX_TOPICS`].
    pub topics: Vec<TopicState>,
    /// One state per signal that occurred here and has not decayed away.
    pub signals: Vec<SignalState>,
    /// Earliest event time applied, in Unix ms (0 before any).
    pub first_ts: i64,
    /// Newest event time applied, in Unix ms (0 before any).
    pub last_ts: i64,
    /// Observations applied (saturating).
    pub n_events: u32,
    /// What many accounts never have, boxed to keep the common account small.
    pub extra: Option<Box<AccountExtra>>,
}

/// The less common parts of an account's state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AccountExtra {
    /// Phrase hits per industry, the account's inferred industry.
    pub industry_votes: Vec<(Arc<str>, u32)>,
    /// The industry as the CRM states it, which wins over inference.
    pub industry: Option<Box<str>>,
    /// The deal stage of the latest CRM event that named one.
    pub stage: Option<Box<str>>,
    /// Trigger state of the rules that fired or armed a timer here.
    pub rules: Vec<RuleState>,
}

impl AccountCore {
    /// The state of `signal` here; `None` if it never occurred or was pruned.
    pub fn signal(&self, signal: SignalIdx) -> Option<&SignalState> {
        self.signals.iter().find(|s| s.signal == signal)
    }

    /// The less common parts, created when missing.
    pub fn extra_mut(&mut self) -> &mut AccountExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Rule states (of rules that fired or armed a timer here).
    pub fn rules(&self) -> &[RuleState] {
        self.extra.as_ref().map_or(&[], |e| &e.rules)
    }

    /// The deal stage as the CRM last reported it, if ever.
    pub fn stage(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.stage.as_deref())
    }

    /// The rule's state, if the rule ever fired or armed a timer here.
    pub fn existing_rule_state(&mut self, rule: RuleIdx) -> Option<&mut RuleState> {
        self.extra
            .as_mut()?
            .rules
            .iter_mut()
            .find(|r| r.rule == rule)
    }

    /// The rule's state, created when missing.
    pub fn rule_state(&mut self, rule: RuleIdx) -> &mut RuleState {
        let rules = &mut self.extra_mut().rules;
        match rules.iter().position(|r| r.rule == rule) {
            Some(idx) => &mut rules[idx],
            None => {
                rules.push(RuleState {
                    rule,
                    last_fired: None,
                    silence: None,
                });
                rules.last_mut().expect("just pushed")
            }
        }
    }

    /// The contact known by `key`, if it is kept.
    pub fn contact(&self, key: &str) -> Option<&ContactState> {
        self.contacts.iter().find(|c| &*c.key == key)
    }

    /// The account's industry: the CRM's word, else the industry whose
    /// phrases it used most (ties go to the first seen).
    pub fn industry(&self) -> Option<&str> {
        let extra = self.extra.as_ref()?;
        if let Some(industry) = &extra.industry {
            return Some(industry);
        }
        let mut best: Option<&(Arc<str>, u32)> = None;
        for vote in &extra.industry_votes {
            if best.is_none_or(|b| vote.1 > b.1) {
                best = Some(vote);
            }
        }
        best.map(|(name, _)| &**name)
    }

    /// Folds one observation into the account; returns the contact change
    /// it carries, if any.
    pub fn apply(&mut self, defs: &SignalSet, obs: &Observation) -> Option<ContactChange> {
        let ts = obs.ts.millis();
        self.count_event(ts);
        let change = self.apply_contact(obs);
        if let Some(crm) = &obs.crm {
            self.apply_crm(crm);
        }
        for hit in &obs.signals {
            self.apply_signal(defs, hit, obs);
        }
        self.vote_industries(defs, &obs.phrases);
        self.apply_topics(defs, &obs.topics, ts);
        change
    }

    /// Counts an event at `ts` into the account's first and last times.
    #[inline]
    fn count_event(&mut self, ts: i64) {
        if self.n_events == 0 || ts < self.first_ts {
            self.first_ts = ts;
        }
        self.last_ts = self.last_ts.max(ts);
        self.n_events = self.n_events.saturating_add(1);
    }

    /// What the CRM states about the account: its industry and deal stage.
    fn apply_crm(&mut self, crm: &CrmObs) {
        if let Some(industry) = &crm.industry {
            self.extra_mut().industry = Some(industry.clone());
        }
        if let Some(stage) = &crm.stage {
            self.extra_mut().stage = Some(stage.clone());
        }
    }

    /// One occurrence of a signal: its decayed count, total, occurrence
    /// times (for windowed rules), evidence and keywords.
    fn apply_signal(&mut self, defs: &SignalSet, hit: &SignalHit, obs: &Observation) {
        let ts = obs.ts.millis();
        let def = &defs.signals[hit.signal as usize];
        let state = self.signal_state_mut(hit.signal);
        state.value.add(ts, f64::from(hit.count), def.half_life_ms);
        state.total = state.total.saturating_add(hit.count);
        if def.retain_ms > 0 {
            state.record_occurrence(ts, obs.kind, def.retain_ms);
        }
        state.record_evidence(&obs.id, ts);
        state.record_keywords(&hit.keywords);
    }

    /// The state of `signal` here, created empty when missing.
    fn signal_state_mut(&mut self, signal: SignalIdx) -> &mut SignalState {
        match self.signals.iter().position(|s| s.signal == signal) {
            Some(idx) => &mut self.signals[idx],
            None => {
                self.signals.push(SignalState {
                    signal,
                    value: Decayed::default(),
                    occurrences: ThinVec::new(),
                    evidence: Vec::new(),
                    keywords: ThinVec::new(),
                    total: 0,
                });
                self.signals.last_mut().expect("just pushed")
            }
        }
    }

    /// One vote per phrase of an industry's library towards the account's
    /// inferred industry.
    fn vote_industries(&mut self, defs: &SignalSet, phrases: &[LibraryHit]) {
        for phrase in phrases {
            if let Some(industry) = &defs.libraries[phrase.library as usize].industry {
                let votes = &mut self.extra_mut().industry_votes;
                match votes.iter_mut().find(|(name, _)| name == industry) {
                    Some(vote) => vote.1 = vote.1.saturating_add(1),
                    None => votes.push((industry.clone(), 1)),
                }
            }
        }
    }

    /// Adds the open keywords raised at `ts` to the account's topics, the
    /// weakest making way for a new one when [`MAX_TOPICS`] are kept.
    fn apply_topics(&mut self, defs: &SignalSet, topics: &[TopicObs], ts: i64) {
        let topic_half_life = defs.score.topic_half_life_ms;
        for topic in topics {
            match self
                .topics
                .iter_mut()
                .find(|t| t.name.key == topic.name.key)
            {
                Some(existing) => existing
                    .weight
                    .add(ts, topic.weight as f64, topic_half_life),
                None => {
                    if self.topics.len() >= MAX_TOPICS {
                        self.evict_weakest_topic(ts, topic_half_life);
                    }
                    self.topics.push(TopicState {
                        name: topic.name.clone(),
                        weight: Decayed::new(topic.weight as f64, ts),
                    });
                }
            }
        }
    }

    /// Drops the topic of least weight at `ts` (of equal weights, the one
    /// with the greatest key). Needs at least one topic.
    fn evict_weakest_topic(&mut self, ts: i64, topic_half_life: f64) {
        let weakest = self
            .topics
            .iter()
            .enumerate()
            .min_by(|a, b| {
                a.1.weight
                    .value_at(ts, topic_half_life)
                    .total_cmp(&b.1.weight.value_at(ts, topic_half_life))
                    .then_with(|| b.1.name.key.cmp(&a.1.name.key))
            })
            .map(|(i, _)| i)
            .expect("topics is full, so not empty");
        self.topics.swap_remove(weakest);
    }

    /// What the observation says about its contact; the change of title or
    /// presence it makes, if any.
    fn apply_contact(&mut self, obs: &Observation) -> Option<ContactChange> {
        let ts = obs.ts.millis();
        let observed = obs.contact.as_ref()?;
        let idx = self.contact_index(&observed.key, ts);
        self.contacts[idx].observe(obs, observed, ts)
    }

    /// Index of the contact known by `key`; a new one (seen at `ts`) is
    /// added, the least recently seen making way when [`MAX_CONTACTS`] are
    /// kept.
    fn contact_index(&mut self, key: &Arc<str>, ts: i64) -> usize {
        if let Some(idx) = self.contacts.iter().position(|c| c.key == *key) {
            return idx;
        }
        if self.contacts.len() >= MAX_CONTACTS {
            let stalest = self
                .contacts
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| (c.last_seen, c.key.clone()))
                .map(|(i, _)| i)
                .expect("contacts is full, so not empty");
            self.contacts.swap_remove(stalest);
        }
        self.contacts.push(ContactState {
            key: key.clone(),
            name: None,
            title: None,
            is_decision_role: false,
            left: false,
            title_history: ThinVec::new(),
            last_seen: ts,
        });
        self.contacts.len() - 1
    }

    /// Drops what has fully decayed by `now` and no rule still needs.
    pub fn prune(&mut self, defs: &SignalSet, now: i64) {
        self.signals.retain(|s| {
            let def = &defs.signals[s.signal as usize];
            let alive = s.value.value_at(now, def.half_life_ms) >= PRUNE_BELOW;
            let needed = s
                .occurrences()
                .last()
                .is_some_and(|o| o.ts() > now - def.retain_ms);
            alive || needed
        });
        let topic_half_life = defs.score.topic_half_life_ms;
        self.topics
            .retain(|t| t.weight.value_at(now, topic_half_life) >= PRUNE_BELOW);
    }

    /// Re-indexes signal and rule references after the definitions changed;
    /// state of signals and rules that no longer exist is dropped.
    pub fn remap(&mut self, signal_map: &[Option<SignalIdx>], rule_map: &[Option<RuleIdx>]) {
        self.signals.retain_mut(
            |s| match signal_map.get(s.signal as usize).copied().flatten() {
                Some(new) => {
                    s.signal = new;
                    true
                }
                None => false,
            },
        );
        if let Some(extra) = self.extra.as_mut() {
            extra
                .rules
                .retain_mut(|r| match rule_map.get(r.rule as usize).copied().flatten() {
                    Some(new) => {
                        r.rule = new;
                        true
                    }
                    None => false,
                });
        }
    }

    /// Approximate heap bytes held by this account (for memory reports).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let mut bytes = self.contacts.capacity() * size_of::<ContactState>()
            + self.topics.capacity() * size_of::<TopicState>()
            + self.signals.capacity() * size_of::<SignalState>()
            + self.extra.as_ref().map_or(0, |e| {
                size_of::<AccountExtra>()
                    + e.rules.capacity() * size_of::<RuleState>()
                    + e.industry_votes.capacity() * size_of::<(Arc<str>, u32)>()
            });
        for c in &self.contacts {
            bytes += c.key.len()
                + c.name.as_ref().map_or(0, |n| n.len())
                + c.title.as_ref().map_or(0, |t| t.len());
            bytes += thin_bytes(&c.title_history);
        }
        // Topic strings are shared across accounts (interned), so not counted here.
        for s in &self.signals {
            bytes += thin_bytes(&s.occurrences)
                + s.evidence.capacity() * size_of::<(Arc<str>, i64)>()
                + s.evidence.iter().map(|(id, _)| id.len()).sum::<usize>()
                + thin_bytes(&s.keywords);
        }
        bytes
    }

    /// The state as one compact byte string (for checkpoints: one allocation
    /// instead of a deep copy's many).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("account state always encodes")
    }

    /// The inverse of [`AccountCore::encode`].
    pub fn decode(bytes: &[u8]) -> AccountCore {
        postcard::from_bytes(bytes).expect("checkpoints are written by encode")
    }

    /// Gives back spare capacity (when an account goes quiet).
    pub fn shrink(&mut self) {
        self.contacts.shrink_to_fit();
        self.topics.shrink_to_fit();
        if let Some(extra) = self.extra.as_mut() {
            extra.rules.shrink_to_fit();
            extra.industry_votes.shrink_to_fit();
        }
        self.signals.shrink_to_fit();
        for s in &mut self.signals {
            s.occurrences.shrink_to_fit();
            s.evidence.shrink_to_fit();
            s.keywords.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurrences_pack_time_and_kind() {
        for kind in Kind::ALL {
            for ts in [0, 1, 1_767_225_600_123, 253_402_300_799_999] {
                let o = Occurrence::new(ts, kind);
                assert_eq!((o.ts(), o.kind()), (ts, kind));
            }
        }
        assert!(Occurrence::new(5, Kind::Crm) < Occurrence::new(6, Kind::Web));
    }
}
