//! From a validated [`Event`] to an [`Observation`]: run the analyzer and the
//! phrase matcher over each text field, evaluate every signal's condition, and
//! pick open keywords. This is the only stage that looks at text.

use std::sync::Arc;

use super::analyzer::{Analyzed, View};
use super::keywords::DocFreq;
use super::keywords::TopicName;
use super::matcher::{LibraryIdx, MatchScratch, PhraseHit};
use crate::event::{
    Body, Contact, CrmEvent, CrmType, Direction, EmailEvent, Event, Kind, SpeakerRole,
    TranscriptEvent, WebEvent,
};
use crate::signal_defs::{
    action_bit, crm_bit, kind_bit, Condition, FieldSet, SignalIdx, SignalSet,
};
use crate::time::Timestamp;

/// Open keywords taken from each e-mail or transcript.
pub const OPEN_KEYWORDS_PER_DOC: usize = 5;
/// Matched phrases kept per signal hit.
const MAX_KEYWORDS_PER_HIT: usize = 8;

/// A signal the event is an occurrence of, with the phrases that made it so.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalHit {
    /// The signal, as an index into the definitions' signals.
    pub signal: SignalIdx,
    /// Phrases of the condition's libraries found in its fields (at most 8,
    /// without repeats); empty when the condition names no library.
    pub keywords: Vec<Arc<str>>,
    /// Occurrences this event adds: 1, or for a `count = "phrase"` signal
    /// every phrase occurrence of its libraries in its fields.
    pub count: u32,
}

/// A phrase of a library found in the event.
#[derive(Debug, Clone, PartialEq)]
pub struct LibraryHit {
    /// The library the phrase belongs to.
    pub library: LibraryIdx,
    /// The phrase as the analyst wrote it (shared with the matcher).
    pub phrase: Arc<str>,
}

/// An open keyword raised by the event.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicObs {
    /// The topic's key and display form, shared across accounts.
    pub name: Arc<TopicName>,
    /// The keyword's TF-IDF score in this document.
    pub weight: f32,
}

/// What the event says about its contact.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactObs {
    /// How the contact is known: its id, else e-mail, else name.
    pub key: Arc<str>,
    /// The name the event gives.
    pub name: Option<Arc<str>>,
    /// The title the event gives; on `contact_title_changed`, the new title.
    pub title: Option<Arc<str>>,
    /// Whether `title` matches the decision-roles library.
    pub is_decision_role: bool,
}

/// The CRM part of an observation.
#[derive(Debug, Clone, PartialEq)]
pub struct CrmObs {
    /// What changed.
    pub crm_type: CrmType,
    /// The contact's previous title, on `contact_title_changed`.
    pub old_title: Option<Arc<str>>,
    /// The contact's new title, on `contact_title_changed`.
    pub new_title: Option<Arc<str>>,
    /// Whether `old_title` matches the decision-roles library.
    pub old_title_decision: bool,
    /// Whether `new_title` matches the decision-roles library.
    pub new_title_decision: bool,
    /// The account's industry as the CRM states it.
    pub industry: Option<Box<str>>,
    /// The deal stage reached, on `stage_changed`.
    pub stage: Option<Box<str>>,
}

/// Everything the intent graph and the rules need from one event, owned and
/// independent of the input buffer (the pipeline keeps recent observations
/// to re-apply them when an earlier event arrives late).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Arrival order, the tie-break between events with the same time.
    pub seq: u64,
    /// The event's id.
    pub id: Arc<str>,
    /// Event time, in Unix milliseconds.
    pub ts: Timestamp,
    /// The event's kind.
    pub kind: Kind,
    /// A web visit, an inbound e-mail or a customer utterance.
    pub inbound: bool,
    /// The contact, when the event names one with a key.
    pub contact: Option<ContactObs>,
    /// Signals the event is an occurrence of, in definition order.
    pub signals: Vec<SignalHit>,
    /// Each (library, phrase) found in any text field, once.
    pub phrases: Vec<LibraryHit>,
    /// Open keywords of an e-mail or transcript (at most
    /// [`OPEN_KEYWORDS_PER_DOC`]); empty for other kinds.
    pub topics: Vec<TopicObs>,
    /// The event's numeric attributes, names unique.
    pub attrs: Vec<(Box<str>, f64)>,
    /// The CRM part; `Some` exactly for CRM events.
    pub crm: Option<Box<CrmObs>>,
}

/// Contact titles remembered with the libraries they match.
const TITLE_CACHE_CAPACITY: usize = 20_000;

/// A string-keyed cache of derived values, emptied when full: bounded memory,
/// and repeated keys (page URLs, page titles) stay cheap.
pub struct BoundedCache<V> {
    map: rustc_hash::FxHashMap<Box<str>, V>,
    capacity: usize,
}

impl<V> Default for BoundedCache<V> {
    fn default() -> Self {
        BoundedCache {
            map: rustc_hash::FxHashMap::default(),
            capacity: 20_000,
        }
    }
}

impl<V> BoundedCache<V> {
    /// The value cached for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key)
    }

    /// Caches `value` for `key`, first emptying the cache when full; keys over
    /// 512 bytes are not cached.
    pub fn insert(&mut self, key: &str, value: V) {
        if key.len() > 512 {
            return;
        }
        if self.map.len() >= self.capacity {
            self.map.clear();
        }
        self.map.insert(key.into(), value);
    }

    /// Forgets every entry.
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

impl<T> BoundedCache<Arc<T>> {
    /// The shared value for `key`, made by `make` the first time.
    pub fn intern_with(&mut self, key: &str, make: impl FnOnce() -> T) -> Arc<T> {
        if let Some(shared) = self.map.get(key) {
            return shared.clone();
        }
        let shared = Arc::new(make());
        self.insert(key, shared.clone());
        shared
    }
}

impl BoundedCache<Arc<str>> {
    /// A shared copy of `text`.
    pub fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.map.get(text) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        self.insert(text, shared.clone());
        shared
    }
}

/// Reusable buffers for extraction, plus the running document frequencies.
#[derive(Default)]
pub struct Extractor {
    /// Signals whose `url` regex matched the current event's URL.
    url_matched: Vec<SignalIdx>,
    /// Contact title → libraries it matches, for the definitions of `title_cache_version`.
    title_cache: rustc_hash::FxHashMap<Box<str>, Vec<LibraryIdx>>,
    title_cache_version: Option<Arc<str>>,
    /// Web URL → signals whose `url` regex matches it.
    url_cache: BoundedCache<Vec<SignalIdx>>,
    /// Recent contact keys, names and titles, shared rather than copied.
    strings: BoundedCache<Arc<str>>,
    /// Topic names, shared by every observation and account that raises them.
    topic_names: BoundedCache<Arc<TopicName>>,
    /// The last observation of each recent contact.
    contacts: BoundedCache<ContactObs>,
    /// Web page title → its phrase hits.
    page_title_cache: BoundedCache<Vec<(LibraryIdx, FieldSet, u32)>>,
    analyzed: Analyzed,
    words: Analyzed,
    scratch: MatchScratch,
    hits: Vec<PhraseHit>,
    /// Phrase hits of this event: (library, field, phrase index).
    field_hits: Vec<(LibraryIdx, FieldSet, u32)>,
    /// Running document frequencies that score open keywords.
    pub doc_freq: DocFreq,
}

impl Extractor {
    /// An extractor with empty buffers, caches and document frequencies.
    pub fn new() -> Extractor {
        Extractor::default()
    }

    /// Extracts the observation of one event.
    pub fn extract(&mut self, defs: &SignalSet, event: &Event<'_>, seq: u64) -> Observation {
        self.start_event(defs);
        let attrs = event
            .attrs
            .iter()
            .map(|(k, v)| (Box::from(k.as_ref()), *v))
            .collect();
        let mut topics = Vec::new();
        let mut crm = None;
        match &event.body {
            Body::Web(web) => self.match_web(defs, web),
            Body::Email(email) => topics = self.match_email(defs, email),
            Body::Transcript(t) => topics = self.match_transcript(defs, t),
            Body::Crm(c) => crm = Some(self.observe_crm(defs, c)),
        }
        let contact = event
            .contact
            .as_ref()
            .and_then(|c| self.observe_contact(defs, c, crm.as_deref()));
        let signals = self.signal_hits(defs, event, contact.as_ref());
        let phrases = self.library_hits(defs);
        Observation {
            seq,
            id: Arc::from(event.id.as_ref()),
            ts: event.ts,
            kind: event.kind(),
            inbound: event.is_inbound_customer_activity(),
            contact,
            signals,
            phrases,
            topics,
            attrs,
            crm,
        }
    }

    /// Clears the per-event buffers, and the caches when the definitions
    /// changed since the last event.
    fn start_event(&mut self, defs: &SignalSet) {
        self.field_hits.clear();
        self.url_matched.clear();
        if self.title_cache_version.as_ref() != Some(&defs.version) {
            self.title_cache.clear();
            self.url_cache.clear();
            self.page_title_cache.clear();
            self.contacts.clear();
            self.title_cache_version = Some(defs.version.clone());
        }
    }

    /// A web event: its URL against the signals' `url` regexes, its title and
    /// text against the phrase libraries.
    fn match_web(&mut self, defs: &SignalSet, web: &WebEvent<'_>) {
        if !defs.url_set_signals.is_empty() {
            self.match_url(defs, &web.url);
        }
        if let Some(title) = &web.title {
            self.match_page_title(defs, title);
        }
        if let Some(text) = &web.text {
            self.match_field(defs, text, FieldSet::TEXT);
        }
    }

    /// Fills `url_matched` with the signals whose `url` regex matches `url`
    /// (URLs repeat: the matches are cached).
    fn match_url(&mut self, defs: &SignalSet, url: &str) {
        match self.url_cache.get(url) {
            Some(signals) => self.url_matched.extend_from_slice(signals),
            None => {
                for pattern in defs.url_set.matches(url).iter() {
                    self.url_matched.push(defs.url_set_signals[pattern]);
                }
                self.url_cache.insert(url, self.url_matched.clone());
            }
        }
    }

    /// Matches a web page title (page titles repeat: their phrase hits are
    /// cached).
    fn match_page_title(&mut self, defs: &SignalSet, title: &str) {
        match self.page_title_cache.get(title) {
            Some(hits) => self.field_hits.extend_from_slice(hits),
            None => {
                let before = self.field_hits.len();
                self.match_field(defs, title, FieldSet::TITLE);
                let hits = self.field_hits[before..].to_vec();
                self.page_title_cache.insert(title, hits);
            }
        }
    }

    /// An e-mail: subject and body against the phrase libraries; returns the
    /// open keywords of both together.
    fn match_email(&mut self, defs: &SignalSet, email: &EmailEvent<'_>) -> Vec<TopicObs> {
        if let Some(subject) = &email.subject {
            self.match_field(defs, subject, FieldSet::SUBJECT);
        }
        if let Some(body) = &email.body {
            self.match_field(defs, body, FieldSet::BODY);
        }
        let mut doc = String::new();
        for part in [&email.subject, &email.body].into_iter().flatten() {
            doc.push_str(part);
            doc.push('\n');
        }
        self.open_keywords(defs, &doc)
    }

    /// A transcript utterance: its text against the phrase libraries;
    /// returns its open keywords.
    fn match_transcript(&mut self, defs: &SignalSet, t: &TranscriptEvent<'_>) -> Vec<TopicObs> {
        self.match_field(defs, &t.text, FieldSet::TEXT);
        self.open_keywords(defs, &t.text)
    }

    /// The CRM part of an observation, with the titles' decision roles.
    fn observe_crm(&mut self, defs: &SignalSet, c: &CrmEvent<'_>) -> Box<CrmObs> {
        Box::new(CrmObs {
            crm_type: c.crm_type,
            old_title_decision: c
                .old_title
                .as_deref()
                .is_some_and(|t| self.is_decision_role(defs, t)),
            new_title_decision: c
                .new_title
                .as_deref()
                .is_some_and(|t| self.is_decision_role(defs, t)),
            old_title: c.old_title.as_deref().map(|t| self.strings.intern(t)),
            new_title: c.new_title.as_deref().map(|t| self.strings.intern(t)),
            industry: c.industry.as_deref().map(Box::from),
            stage: c.stage.as_deref().map(Box::from),
        })
    }

    /// What the event says about its contact; `None` when the contact has
    /// no key.
    fn observe_contact(
        &mut self,
        defs: &SignalSet,
        c: &Contact<'_>,
        crm: Option<&CrmObs>,
    ) -> Option<ContactObs> {
        let key = c.key()?;
        // A title change event carries the new title.
        let changed_to = crm
            .filter(|c| c.crm_type == CrmType::ContactTitleChanged)
            .and_then(|c| c.new_title.clone());
        // Contacts recur: reuse the last observation of this one when
        // name and title are unchanged (one lookup instead of three).
        let title_text = changed_to.as_deref().or(c.title.as_deref());
        if let Some(known) = self.contacts.get(key) {
            if known.name.as_deref() == c.name.as_deref() && known.title.as_deref() == title_text {
                return Some(known.clone());
            }
        }
        let title = changed_to.or_else(|| c.title.as_deref().map(|t| self.strings.intern(t)));
        let observed = ContactObs {
            key: self.strings.intern(key),
            name: c.name.as_deref().map(|n| self.strings.intern(n)),
            is_decision_role: title
                .as_deref()
                .is_some_and(|t| self.is_decision_role(defs, t)),
            title,
        };
        self.contacts.insert(key, observed.clone());
        Some(observed)
    }

    /// The signals whose condition the event satisfies, in definition order.
    fn signal_hits(
        &mut self,
        defs: &SignalSet,
        event: &Event<'_>,
        contact: Option<&ContactObs>,
    ) -> Vec<SignalHit> {
        let mut signals = Vec::new();
        for (idx, signal) in defs.signals.iter().enumerate() {
            if let Some((keywords, phrases)) =
                self.condition_holds(defs, idx as SignalIdx, &signal.when, event, contact)
            {
                signals.push(SignalHit {
                    signal: idx as SignalIdx,
                    keywords,
                    count: if signal.per_phrase { phrases } else { 1 },
                });
            }
        }
        signals
    }

    /// Each (library, phrase) of this event's phrase hits, once.
    fn library_hits(&self, defs: &SignalSet) -> Vec<LibraryHit> {
        let mut phrases: Vec<LibraryHit> = Vec::new();
        for (library, _, phrase) in &self.field_hits {
            let text = &defs.matcher.phrase(*phrase).text;
            if !phrases
                .iter()
                .any(|p| p.library == *library && Arc::ptr_eq(&p.phrase, text))
            {
                phrases.push(LibraryHit {
                    library: *library,
                    phrase: text.clone(),
                });
            }
        }
        phrases
    }

    fn match_field(&mut self, defs: &SignalSet, text: &str, field: FieldSet) {
        defs.analyzer.analyze(text, View::Match, &mut self.analyzed);
        self.hits.clear();
        defs.matcher
            .find(&self.analyzed, &mut self.scratch, &mut self.hits);
        for hit in &self.hits {
            let library = defs.matcher.phrase(hit.phrase).library;
            self.field_hits.push((library, field, hit.phrase));
        }
    }

    /// Whether a contact title matches a phrase of any of `libraries`
    /// (titles repeat, so their library matches are cached).
    fn titles_match(&mut self, defs: &SignalSet, title: &str, libraries: &[LibraryIdx]) -> bool {
        if let Some(matched) = self.title_cache.get(title) {
            return matched.iter().any(|l| libraries.contains(l));
        }
        defs.analyzer
            .analyze(title, View::Match, &mut self.analyzed);
        self.hits.clear();
        defs.matcher
            .find(&self.analyzed, &mut self.scratch, &mut self.hits);
        let mut matched: Vec<LibraryIdx> = self
            .hits
            .iter()
            .map(|h| defs.matcher.phrase(h.phrase).library)
            .collect();
        matched.sort_unstable();
        matched.dedup();
        let result = matched.iter().any(|l| libraries.contains(l));
        if self.title_cache.len() >= TITLE_CACHE_CAPACITY {
            self.title_cache.clear();
        }
        self.title_cache.insert(title.into(), matched);
        result
    }

    fn is_decision_role(&mut self, defs: &SignalSet, title: &str) -> bool {
        match defs.decision_roles {
            Some(library) => self.titles_match(defs, title, &[library]),
            None => false,
        }
    }

    fn open_keywords(&mut self, defs: &SignalSet, text: &str) -> Vec<TopicObs> {
        if !defs.score.open_topics {
            // Nothing asked for topics: no second analysis, no statistics.
            return Vec::new();
        }
        defs.analyzer.analyze(text, View::Words, &mut self.words);
        let keywords = self
            .doc_freq
            .observe_top(text, &self.words, OPEN_KEYWORDS_PER_DOC);
        // Topics recur across accounts: share their strings.
        keywords
            .into_iter()
            .map(|k| TopicObs {
                name: self.topic_names.intern_with(&k.key, || TopicName {
                    key: k.key.clone(),
                    display: k.display.clone(),
                }),
                weight: k.score,
            })
            .collect()
    }

    /// `Some(matched keywords)` when the event satisfies the condition.
    fn condition_holds(
        &mut self,
        defs: &SignalSet,
        signal: SignalIdx,
        when: &Condition,
        event: &Event<'_>,
        contact: Option<&ContactObs>,
    ) -> Option<(Vec<Arc<str>>, u32)> {
        if !when.kinds.has(kind_bit(event.kind())) {
            return None;
        }
        match &event.body {
            Body::Web(web) => {
                if when.url.is_some() && !self.url_matched.contains(&signal) {
                    return None;
                }
                if let Some(re) = &when.title {
                    if !web.title.as_deref().is_some_and(|t| re.is_match(t)) {
                        return None;
                    }
                }
                if let Some(actions) = when.actions {
                    if !web.action.is_some_and(|a| actions.has(action_bit(a))) {
                        return None;
                    }
                }
                if let Some(min) = when.min_dwell_ms {
                    if web.dwell_ms.unwrap_or(0) < min {
                        return None;
                    }
                }
            }
            Body::Email(email) => {
                if let Some(direction) = when.direction {
                    if email.direction.unwrap_or(Direction::Inbound) != direction {
                        return None;
                    }
                }
            }
            Body::Transcript(t) => {
                if let Some(role) = when.speaker_role {
                    if t.speaker_role.unwrap_or(SpeakerRole::Customer) != role {
                        return None;
                    }
                }
            }
            Body::Crm(c) => {
                if let Some(types) = when.crm_types {
                    if !types.has(crm_bit(c.crm_type)) {
                        return None;
                    }
                }
            }
        }
        if !when.attrs.iter().all(|t| t.holds(event.attr(&t.name))) {
            return None;
        }
        if !when.contact_title.is_empty() {
            let title = contact.and_then(|c| c.title.as_deref());
            if !title.is_some_and(|t| self.titles_match(defs, t, &when.contact_title)) {
                return None;
            }
        }
        let mut keywords: Vec<Arc<str>> = Vec::new();
        let mut phrases = 0u32;
        if !when.libraries.is_empty() {
            for (library, field, phrase) in &self.field_hits {
                if when.libraries.contains(library) && when.fields.contains(*field) {
                    phrases += 1;
                    let text = &defs.matcher.phrase(*phrase).text;
                    if keywords.len() < MAX_KEYWORDS_PER_HIT
                        && !keywords.iter().any(|k| Arc::ptr_eq(k, text))
                    {
                        keywords.push(text.clone());
                    }
                }
            }
            if keywords.is_empty() {
                return None;
            }
        }
        Some((keywords, phrases))
    }
}
