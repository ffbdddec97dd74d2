//! Phase one of loading signal definitions: the TOML files as written, with
//! spans, refusing unknown fields. Nothing here is validated beyond its shape;
//! [`super::compile`] turns these into the types the core uses.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// One `.toml` file of a signal-defs directory. Any file may hold any of the
/// sections; `[analyzer]`, `[score]` and `[contacts]` may appear in one file only.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    /// `[analyzer]`: how text is analysed.
    pub analyzer: Option<Spanned<RawAnalyzer>>,
    /// `[score]`: how the score is computed.
    pub score: Option<Spanned<RawScore>>,
    /// `[contacts]`: which library marks decision roles.
    pub contacts: Option<Spanned<RawContacts>>,
    #[serde(default)]
    /// `[[library]]` tables: phrase libraries.
    pub library: Vec<Spanned<RawLibrary>>,
    #[serde(default)]
    /// `[[signal]]` tables: the evidence of intent.
    pub signal: Vec<Spanned<RawSignal>>,
    #[serde(default)]
    /// `[[rule]]` tables: when to emit an action.
    pub rule: Vec<Spanned<RawRule>>,
}

/// `[analyzer]`: how text is analysed for phrase matching.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAnalyzer {
    /// Snowball stemming language (default english).
    pub language: Option<Spanned<String>>,
    /// Stems are cut to this many characters (0 = off, default 7).
    pub prefix_fold: Option<Spanned<i64>>,
}

/// `[score]`: how the score is computed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScore {
    /// S at which the score reaches 63 (default 40).
    pub scale: Option<Spanned<f64>>,
    /// Half-life of open topics' weight (default 30d).
    pub topic_half_life: Option<Spanned<String>>,
    /// Whether e-mails and transcripts raise open topics (TF-IDF keywords
    /// nobody listed); default true. Off, no document statistics are kept.
    pub open_topics: Option<Spanned<bool>>,
}

/// `[contacts]`: how contacts are judged.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContacts {
    /// The library whose phrases in a contact's title mark a decision maker.
    pub decision_roles: Option<Spanned<String>>,
}

/// A `[[library]]` table: a named list of phrases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLibrary {
    /// The library's id, as signals and rules name it.
    pub id: Spanned<String>,
    /// The industry the library is the vocabulary of, if any.
    pub industry: Option<Spanned<String>>,
    /// For people.
    pub description: Option<String>,
    /// The phrases, matched after analysis.
    pub phrases: Spanned<Vec<Spanned<String>>>,
    /// Whether a match right after a negation ("not", "no", 不 …) is
    /// dropped; default true.
    pub negation: Option<bool>,
}

/// A `[[signal]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSignal {
    /// The signal's id, as rules and evidence name it.
    pub id: Spanned<String>,
    /// For people.
    pub description: Option<String>,
    /// Points added to the raw score per (decayed) occurrence.
    pub weight: Spanned<f64>,
    /// How fast an occurrence fades, e.g. `7d`.
    pub half_life: Spanned<String>,
    /// Occurrences beyond which the signal adds no more to the score.
    pub cap: Option<Spanned<f64>>,
    /// What one occurrence is: `event` (default: an event meeting the
    /// condition counts once) or `phrase` (each phrase occurrence of the
    /// condition's libraries counts, overlapping and nested ones included).
    pub count: Option<Spanned<String>>,
    /// The conditions an event must meet.
    pub when: Spanned<RawCondition>,
}

/// A signal's `when`: conditions an event must all meet.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    /// The event kinds the signal looks at (required).
    pub kinds: Spanned<Vec<Spanned<String>>>,
    /// Regex on a web event's URL.
    pub url: Option<Spanned<String>>,
    /// Regex on a web event's page title.
    pub title: Option<Spanned<String>>,
    /// Web actions (view, download, ...).
    pub actions: Option<Vec<Spanned<String>>>,
    /// Least web dwell time, e.g. `3m`.
    pub min_dwell: Option<Spanned<String>>,
    /// E-mail direction: inbound or outbound.
    pub direction: Option<Spanned<String>>,
    /// Transcript speaker: customer or rep.
    pub speaker_role: Option<Spanned<String>>,
    /// CRM event types.
    pub crm_types: Option<Vec<Spanned<String>>>,
    /// Libraries any phrase of which must be in the event's text.
    pub libraries: Option<Vec<Spanned<String>>>,
    /// Inline phrases, as a library of the signal's own.
    pub phrases: Option<Vec<Spanned<String>>>,
    /// Where phrases are looked for (default all text fields).
    pub fields: Option<Vec<Spanned<String>>>,
    /// Libraries matched against the contact's title.
    pub contact_title: Option<Vec<Spanned<String>>>,
    /// Bounds on numeric attributes, all of which must hold.
    pub attrs: Option<Vec<Spanned<RawAttrTest>>>,
}

/// `{ name = "call_duration_s", min = 300 }`: a bound on a numeric attribute.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAttrTest {
    /// The attribute's name.
    pub name: Spanned<String>,
    /// Inclusive lower bound.
    pub min: Option<Spanned<f64>>,
    /// Inclusive upper bound.
    pub max: Option<Spanned<f64>>,
}

/// A `[[rule]]` table; which kind-specific fields it may have depends on `kind`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// The rule's id (a NATS subject token).
    pub id: Spanned<String>,
    /// threshold, count, cooccurrence, silence, role_change or attr_keyword.
    pub kind: Spanned<String>,
    /// For people.
    pub description: Option<String>,
    /// After firing for an account, the rule stays quiet this long.
    pub cooldown: Option<Spanned<String>>,
    /// What to do (a template).
    pub recommendation: Spanned<String>,
    /// Per-industry recommendations, keyed by industry; fall back to `recommendation`.
    pub recommendations: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    /// One sentence for people (a template).
    pub reason: Spanned<String>,
    /// threshold: the score it fires on crossing upward.
    pub score_above: Option<Spanned<f64>>,
    /// threshold: instead of the 0–100 score, the raw weighted sum `S` it
    /// fires on crossing upward.
    pub sum_above: Option<Spanned<f64>>,
    /// count: the signal counted.
    pub signal: Option<Spanned<String>>,
    /// count: occurrences needed.
    pub at_least: Option<Spanned<i64>>,
    /// count, cooccurrence: the window looked back over.
    pub within: Option<Spanned<String>>,
    /// cooccurrence: the signals that must all occur.
    pub signals: Option<Spanned<Vec<Spanned<String>>>>,
    /// cooccurrence: from at least two event kinds.
    pub distinct_kinds: Option<Spanned<bool>>,
    /// silence: the CRM event type the silence is counted from.
    pub start: Option<Spanned<String>>,
    /// silence: how long without inbound activity.
    pub silence: Option<Spanned<String>>,
    /// silence: instead of `start`, any event raising this signal starts
    /// (and restarts) the count.
    pub start_signal: Option<Spanned<String>>,
    /// silence: fire only for accounts with at least this many events.
    pub min_events: Option<Spanned<i64>>,
    /// attr_keyword: the numeric attribute.
    pub attr: Option<Spanned<String>>,
    /// attr_keyword: the value the attribute must exceed.
    pub above: Option<Spanned<f64>>,
    /// attr_keyword: libraries a phrase of which must be in the event.
    pub libraries: Option<Spanned<Vec<Spanned<String>>>>,
}
