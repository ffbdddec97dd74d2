//! What goes into the evidence index, decided from each applied event and
//! its observation: pure, no index involved.
//!
//! - Every e-mail and transcript utterance becomes an [`Evidence`] document:
//!   account, contact, kind, time, the signals it raised, its keywords
//!   (matched phrases and open topics) and its text.
//! - In transcripts, when a customer utterance raises the talk-track signal
//!   (`customer_confirmed_value` in the shipped definitions), the rep
//!   utterance just before it in the same meeting and the customer's answer
//!   become a [`Snippet`]: a talk track the team can reuse, tagged with the
//!   account's industry, the customer's role and the pain keywords.
//! - A CRM `deal_won` / `deal_lost` becomes an [`OutcomeDoc`], from which a
//!   talk track's win rate is computed once outcomes are known.
//!
//! Personal data (e-mail addresses, phone numbers, ID and card numbers) is
//! masked in every text, keyword, contact id and title, meeting id and tag
//! before it leaves this module. Event ids and account keys are kept as
//! given: they are the keys a CRM resolves results by, and the contract asks
//! that they carry no personal data.

use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use crate::mask::{MaskCounts, Masker};
use intent_core::event::{Body, CrmType, Event, Kind, SpeakerRole};
use intent_core::extract::analyzer::{Analyzed, View};
use intent_core::extract::Observation;
use intent_core::signal_defs::SignalSet;
use intent_core::time::Timestamp;

/// The signal whose customer utterances make talk-track snippets, unless
/// configured otherwise.
pub const DEFAULT_TALK_TRACK_SIGNAL: &str = "customer_confirmed_value";

/// How long a rep utterance stays "the one before" a customer answer when
/// the transcript carries no meeting id.
const NO_MEETING_WINDOW_MS: i64 = 30 * 60 * 1000;

/// An e-mail or utterance, masked.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub event_id: String,
    pub account: String,
    pub contact: Option<String>,
    pub contact_title: Option<String>,
    pub kind: Kind,
    pub ts: Timestamp,
    pub meeting_id: Option<String>,
    pub signals: Vec<String>,
    pub keywords: Vec<String>,
    pub text: String,
}

/// A rep question or statement and the customer's value-confirming answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Snippet {
    /// The customer utterance's event id.
    pub event_id: String,
    pub account: String,
    pub meeting_id: Option<String>,
    pub ts: Timestamp,
    pub rep_text: String,
    pub customer_text: String,
    pub contact_title: Option<String>,
    /// `industry:…`, `role:…` and `topic:…` tags.
    pub tags: Vec<String>,
    pub keywords: Vec<String>,
    /// Identifies the talk track: the rep utterance as the analyzer sees
    /// it, hashed. The same line, however cased or inflected, used with
    /// several accounts, has one key; its win rate is over those accounts.
    pub track: String,
}

/// A won or lost deal, as the CRM reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeDoc {
    pub account: String,
    pub won: bool,
    pub ts: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EvidenceDoc {
    Evidence(Evidence),
    Snippet(Snippet),
    Outcome(OutcomeDoc),
}

/// The last rep utterance of a meeting (masked), to pair with an answer.
struct RepLine {
    text: String,
    ts: i64,
}

/// Builds the documents of each applied event.
pub struct EvidenceBuilder {
    masker: Masker,
    talk_track_signal: String,
    last_rep: FxHashMap<(String, String), RepLine>,
    industries: FxHashMap<String, String>,
    analyzed: Analyzed,
    /// Personal data masked so far, by kind.
    pub masked: MaskCounts,
}

impl Default for EvidenceBuilder {
    fn default() -> Self {
        EvidenceBuilder::new(DEFAULT_TALK_TRACK_SIGNAL)
    }
}

impl EvidenceBuilder {
    pub fn new(talk_track_signal: &str) -> EvidenceBuilder {
        EvidenceBuilder {
            masker: Masker::new(),
            talk_track_signal: talk_track_signal.to_string(),
            last_rep: FxHashMap::default(),
            industries: FxHashMap::default(),
            analyzed: Analyzed::default(),
            masked: MaskCounts::default(),
        }
    }

    fn mask(&mut self, text: &str) -> String {
        let (masked, counts) = self.masker.mask(text);
        self.masked.add(counts);
        masked.into_owned()
    }

    /// Appends the documents `event` (with its observation `obs`) makes.
    pub fn observe(
        &mut self,
        defs: &SignalSet,
        event: &Event<'_>,
        obs: &Observation,
        out: &mut Vec<EvidenceDoc>,
    ) {
        let (text, meeting_id, rep) = match &event.body {
            Body::Crm(crm) => {
                if let Some(industry) = &crm.industry {
                    let industry = self.mask(industry);
                    self.industries.insert(event.account.to_string(), industry);
                }
                let won = match crm.crm_type {
                    CrmType::DealWon => true,
                    CrmType::DealLost => false,
                    _ => return,
                };
                out.push(EvidenceDoc::Outcome(OutcomeDoc {
                    account: event.account.to_string(),
                    won,
                    ts: event.ts,
                }));
                return;
            }
            Body::Web(_) => return,
            Body::Email(email) => {
                let mut text = String::new();
                for part in [&email.subject, &email.body].into_iter().flatten() {
                    if !text.is_empty() {
                        text.push_str("\n\n");
                    }
                    text.push_str(part);
                }
                (text, None, false)
            }
            Body::Transcript(t) => (
                t.text.to_string(),
                t.meeting_id.as_deref().map(|m| self.mask(m)),
                t.speaker_role == Some(SpeakerRole::Rep),
            ),
        };
        let text = self.mask(&text);
        let signals: Vec<String> = obs
            .signals
            .iter()
            .map(|hit| defs.signals[hit.signal as usize].id.to_string())
            .collect();
        let mut keywords: Vec<String> = Vec::new();
        let phrases = obs.phrases.iter().map(|p| p.phrase.as_ref());
        let topics = obs.topics.iter().map(|t| t.name.display.as_ref());
        for keyword in phrases.chain(topics) {
            let keyword = self.mask(keyword);
            if !keywords.contains(&keyword) {
                keywords.push(keyword);
            }
        }
        let contact = obs.contact.as_ref().map(|c| self.mask(&c.key));
        let contact_title = obs
            .contact
            .as_ref()
            .and_then(|c| c.title.as_deref())
            .map(|t| self.mask(t));
        let meeting_key = (
            event.account.to_string(),
            meeting_id.clone().unwrap_or_default(),
        );
        let ts = event.ts.millis();
        if rep {
            self.last_rep.insert(
                meeting_key,
                RepLine {
                    text: text.clone(),
                    ts,
                },
            );
        } else if event.kind() == Kind::Transcript && signals.contains(&self.talk_track_signal) {
            let rep_line = self
                .last_rep
                .get(&meeting_key)
                .filter(|line| {
                    ts >= line.ts && (meeting_id.is_some() || ts - line.ts <= NO_MEETING_WINDOW_MS)
                })
                .map(|line| line.text.clone());
            if let Some(rep_text) = rep_line {
                let mut tags = Vec::new();
                if let Some(industry) = self.industries.get(event.account.as_ref()) {
                    tags.push(format!("industry:{industry}"));
                }
                if let Some(title) = &contact_title {
                    tags.push(format!("role:{title}"));
                }
                tags.extend(keywords.iter().map(|k| format!("topic:{k}")));
                let track = self.track_key(defs, &rep_text);
                out.push(EvidenceDoc::Snippet(Snippet {
                    event_id: event.id.to_string(),
                    account: event.account.to_string(),
                    meeting_id: meeting_id.clone(),
                    ts: event.ts,
                    rep_text,
                    customer_text: text.clone(),
                    contact_title: contact_title.clone(),
                    tags,
                    keywords: keywords.clone(),
                    track,
                }));
            }
        }
        out.push(EvidenceDoc::Evidence(Evidence {
            event_id: event.id.to_string(),
            account: event.account.to_string(),
            contact,
            contact_title,
            kind: event.kind(),
            ts: event.ts,
            meeting_id,
            signals,
            keywords,
            text,
        }));
    }

    /// The talk-track key of a rep line: its analyzed tokens, hashed.
    fn track_key(&mut self, defs: &SignalSet, rep_text: &str) -> String {
        defs.analyzer
            .analyze(rep_text, View::Match, &mut self.analyzed);
        let digest = Sha256::digest(self.analyzed.keys.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use intent_core::{Pipeline, PipelineConfig};

    fn docs(events: &[&str]) -> Vec<EvidenceDoc> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../signal-defs");
        let defs = Arc::new(intent_files::load_dir(dir.as_ref()).unwrap());
        let mut pipeline = Pipeline::new(defs, PipelineConfig::default());
        let mut builder = EvidenceBuilder::default();
        let mut out = Vec::new();
        for line in events {
            let event = intent_core::ingest::decode(line.as_bytes()).unwrap();
            pipeline
                .process_observed(&event, &mut Vec::new(), |defs, obs| {
                    builder.observe(defs, &event, obs, &mut out)
                })
                .unwrap();
        }
        out
    }

    fn snippets(docs: &[EvidenceDoc]) -> Vec<(&str, &str)> {
        docs.iter()
            .filter_map(|d| match d {
                EvidenceDoc::Snippet(s) => Some((s.rep_text.as_str(), s.customer_text.as_str())),
                _ => None,
            })
            .collect()
    }

    const ANSWER: &str = "this feature solved our downtime pain";

    #[test]
    fn an_answer_pairs_with_the_last_rep_line_of_its_own_meeting() {
        let out = docs(&[
            r#"{"id":"1","ts":1000,"account":"a","kind":"transcript","speaker_role":"rep","meeting_id":"m1","text":"first question"}"#,
            r#"{"id":"2","ts":2000,"account":"a","kind":"transcript","speaker_role":"rep","meeting_id":"m1","text":"What hurts most?"}"#,
            r#"{"id":"3","ts":3000,"account":"a","kind":"transcript","speaker_role":"rep","meeting_id":"m2","text":"other meeting"}"#,
            &format!(
                r#"{{"id":"4","ts":4000,"account":"a","kind":"transcript","speaker_role":"customer","meeting_id":"m1","text":"{ANSWER}"}}"#
            ),
            // Another account's meeting of the same id does not count.
            &format!(
                r#"{{"id":"5","ts":5000,"account":"b","kind":"transcript","speaker_role":"customer","meeting_id":"m1","text":"{ANSWER}"}}"#
            ),
        ]);
        assert_eq!(snippets(&out), [("What hurts most?", ANSWER)]);
        // Every utterance is evidence, the snippet's answer included.
        let evidence = out
            .iter()
            .filter(|d| matches!(d, EvidenceDoc::Evidence(_)))
            .count();
        assert_eq!(evidence, 5);
    }

    #[test]
    fn without_a_meeting_id_the_rep_line_must_be_recent() {
        let minute = 60_000;
        let line = |id: &str, ts: i64, role: &str, text: &str| {
            format!(
                r#"{{"id":"{id}","ts":{ts},"account":"a","kind":"transcript","speaker_role":"{role}","text":"{text}"}}"#
            )
        };
        let out = docs(&[
            &line("1", 0, "rep", "Why now?"),
            &line("2", 31 * minute, "customer", ANSWER),
            &line("3", 40 * minute, "rep", "And the costs?"),
            &line("4", 45 * minute, "customer", ANSWER),
        ]);
        assert_eq!(snippets(&out), [("And the costs?", ANSWER)]);
    }

    #[test]
    fn deals_won_and_lost_become_outcomes_and_masking_is_counted() {
        let mut builder_docs = docs(&[
            r#"{"id":"1","ts":1000,"account":"a","kind":"email","body":"reach me at +44 20 7946 0958"}"#,
            r#"{"id":"2","ts":2000,"account":"a","kind":"crm","type":"deal_won"}"#,
            r#"{"id":"3","ts":3000,"account":"b","kind":"crm","type":"deal_lost"}"#,
            r#"{"id":"4","ts":4000,"account":"b","kind":"web","url":"/pricing","text":"call 13812345678"}"#,
        ]);
        let outcomes: Vec<(String, bool)> = builder_docs
            .iter()
            .filter_map(|d| match d {
                EvidenceDoc::Outcome(o) => Some((o.account.clone(), o.won)),
                _ => None,
            })
            .collect();
        assert_eq!(
            outcomes,
            [("a".to_string(), true), ("b".to_string(), false)]
        );
        let EvidenceDoc::Evidence(email) = builder_docs.remove(0) else {
            panic!("the e-mail comes first")
        };
        assert_eq!(email.text, "reach me at [phone]");
        // Web text is not evidence.
        assert_eq!(builder_docs.len(), 2);
    }
}
