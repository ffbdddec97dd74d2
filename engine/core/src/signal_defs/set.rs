//! The compiled definitions: [`SignalSet`] and what it holds (libraries,
//! signals with their conditions, rules with their kinds, score settings).
//! Built only by [`compile_sources`](super::compile_sources); immutable once
//! built.

use std::path::PathBuf;
use std::sync::Arc;

use regex::Regex;

use super::error::DefError;

use crate::event::{CrmType, Direction, Kind, SpeakerRole, WebAction};
use crate::extract::analyzer::Analyzer;
use crate::extract::matcher::{LibraryIdx, PhraseMatcher};

/// Index of a signal within its [`SignalSet`].
pub type SignalIdx = u16;
/// Index of a rule within its [`SignalSet`].
pub type RuleIdx = u16;

/// A phrase library: a named list of phrases, optionally an industry's.
#[derive(Debug, Clone)]
pub struct Library {
    /// The library's id (`signal:<id>` for a signal's inline phrases).
    pub id: Arc<str>,
    /// The industry whose vocabulary it is, if any.
    pub industry: Option<Arc<str>>,
    /// For people.
    pub description: String,
    /// How many phrases it lists.
    pub n_phrases: usize,
    /// Whether a match right after a negation is dropped.
    pub negation: bool,
    /// The file it is defined in.
    pub file: PathBuf,
}

/// Which text fields of an event a phrase condition looks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FieldSet(
    /// One bit per field.
    pub u8,
);

impl FieldSet {
    /// A web page's title.
    pub const TITLE: FieldSet = FieldSet(1);
    /// A web page's or transcript's text.
    pub const TEXT: FieldSet = FieldSet(2);
    /// An e-mail's subject.
    pub const SUBJECT: FieldSet = FieldSet(4);
    /// An e-mail's body.
    pub const BODY: FieldSet = FieldSet(8);
    /// Every text field.
    pub const ALL: FieldSet = FieldSet(15);
    /// Each field by its name in the definitions.
    pub const NAMES: [(&'static str, FieldSet); 4] = [
        ("title", FieldSet::TITLE),
        ("text", FieldSet::TEXT),
        ("subject", FieldSet::SUBJECT),
        ("body", FieldSet::BODY),
    ];

    /// Whether any field of `other` is in the set.
    pub fn contains(self, other: FieldSet) -> bool {
        self.0 & other.0 != 0
    }
}

/// A small set of enum values as a bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mask(
    /// Bit `i` stands for the value of index `i`.
    pub u16,
);

impl Mask {
    /// The mask with `bit` set too.
    pub fn with(self, bit: usize) -> Mask {
        Mask(self.0 | (1 << bit))
    }
    /// Whether `bit` is set.
    pub fn has(self, bit: usize) -> bool {
        self.0 & (1 << bit) != 0
    }
}

/// The [`Mask`] bit of an event kind.
pub fn kind_bit(kind: Kind) -> usize {
    kind as usize
}
/// The [`Mask`] bit of a web action.
pub fn action_bit(action: WebAction) -> usize {
    action as usize
}
/// The [`Mask`] bit of a CRM event type.
pub fn crm_bit(crm: CrmType) -> usize {
    crm as usize
}

/// When an event counts as an occurrence of a signal: all given conditions
/// must hold.
#[derive(Debug, Clone)]
pub struct Condition {
    /// The event kinds it applies to.
    pub kinds: Mask,
    /// A web event's URL matches.
    pub url: Option<Regex>,
    /// A web event's title matches.
    pub title: Option<Regex>,
    /// A web event's action is one of these.
    pub actions: Option<Mask>,
    /// A web event's dwell time is at least this.
    pub min_dwell_ms: Option<u64>,
    /// An e-mail's direction (a missing one counts as inbound).
    pub direction: Option<Direction>,
    /// A transcript's speaker (a missing one counts as customer).
    pub speaker_role: Option<SpeakerRole>,
    /// A CRM event's type is one of these.
    pub crm_types: Option<Mask>,
    /// Any phrase of these libraries in the text fields below.
    pub libraries: Vec<LibraryIdx>,
    /// Where the phrases of `libraries` are looked for.
    pub fields: FieldSet,
    /// The contact's title matches a phrase of one of these libraries.
    pub contact_title: Vec<LibraryIdx>,
    /// Bounds on the event's numeric attributes; an event without the
    /// attribute does not satisfy its bound.
    pub attrs: Vec<AttrTest>,
}

/// `min <= attrs[name] <= max` (either bound may be open).
#[derive(Debug, Clone, PartialEq)]
pub struct AttrTest {
    /// The attribute.
    pub name: Box<str>,
    /// Inclusive lower bound (`-inf` when open).
    pub min: f64,
    /// Inclusive upper bound (`inf` when open).
    pub max: f64,
}

impl AttrTest {
    /// Whether an attribute value (`None` when the event lacks it) is within
    /// the bounds.
    pub fn holds(&self, value: Option<f64>) -> bool {
        value.is_some_and(|v| v >= self.min && v <= self.max)
    }
}

/// A signal: a kind of evidence of intent, with its weight and half-life.
#[derive(Debug, Clone)]
pub struct SignalDef {
    /// The signal's id.
    pub id: Arc<str>,
    /// For people.
    pub description: String,
    /// Points added to the raw score per (decayed) occurrence.
    pub weight: f64,
    /// Half-life of an occurrence's weight.
    pub half_life_ms: f64,
    /// Decayed occurrences beyond this add nothing.
    pub cap: f64,
    /// When an event is an occurrence.
    pub when: Condition,
    /// Each phrase occurrence counts (`count = "phrase"`), not each event.
    pub per_phrase: bool,
    /// How long occurrence times must be kept for the rules that count them.
    pub retain_ms: i64,
}

/// The condition of a trigger rule.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// The score (or, with `on_sum`, the raw weighted sum) crosses `score`
    /// upward.
    Threshold {
        /// The value to cross.
        score: f64,
        /// Whether `score` is a raw sum `S` (`sum_above`) rather than a 0–100
        /// score (`score_above`).
        on_sum: bool,
    },
    /// At least `at_least` occurrences of `signal` within `within_ms`.
    Count {
        /// The signal counted.
        signal: SignalIdx,
        /// Occurrences needed.
        at_least: u32,
        /// The window looked back over.
        within_ms: i64,
    },
    /// Each of `signals` occurred within `within_ms`; with `distinct_kinds`,
    /// from at least two event kinds.
    Cooccurrence {
        /// The signals that must all occur.
        signals: Vec<SignalIdx>,
        /// The window looked back over.
        within_ms: i64,
        /// Whether the occurrences must come from at least two event kinds.
        distinct_kinds: bool,
    },
    /// After a CRM event of type `start`, no inbound customer activity for
    /// `silence_ms`.
    Silence {
        /// What starts (or restarts) the silence.
        start: SilenceStart,
        /// How long without inbound customer activity.
        silence_ms: i64,
        /// Fires only for accounts with at least this many events by the
        /// start (0: any).
        min_events: u32,
    },
    /// A contact in a decision role (before or after, per the
    /// `[contacts] decision_roles` library) changes title or leaves.
    RoleChange,
    /// A numeric attribute above `above` and a phrase of `libraries` in the
    /// same event.
    AttrKeyword {
        /// The numeric attribute.
        attr: String,
        /// The value it must exceed.
        above: f64,
        /// Libraries a phrase of which must be in the event.
        libraries: Vec<LibraryIdx>,
    },
}

impl RuleKind {
    /// The kind's name, as `kind = ...` gives it.
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Threshold { .. } => "threshold",
            RuleKind::Count { .. } => "count",
            RuleKind::Cooccurrence { .. } => "cooccurrence",
            RuleKind::Silence { .. } => "silence",
            RuleKind::RoleChange => "role_change",
            RuleKind::AttrKeyword { .. } => "attr_keyword",
        }
    }
}

/// What starts a silence rule's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceStart {
    /// A CRM event of this type (`start`).
    Crm(CrmType),
    /// Any event that raises this signal (`start_signal`); each one restarts
    /// the count from its time.
    Signal(SignalIdx),
}

/// A trigger rule and the action it recommends.
#[derive(Debug, Clone)]
pub struct RuleDef {
    /// The rule's id.
    pub id: Arc<str>,
    /// For people.
    pub description: String,
    /// When it fires.
    pub kind: RuleKind,
    /// After firing for an account, it stays quiet this long.
    pub cooldown_ms: i64,
    /// What to do (a template of [`PLACEHOLDERS`](super::PLACEHOLDERS)).
    pub recommendation: String,
    /// Per-industry recommendations, overriding `recommendation`.
    pub recommendations: Vec<(Arc<str>, String)>,
    /// One sentence for people (a template).
    pub reason: String,
}

/// How the score is computed (see README "Score").
#[derive(Debug, Clone)]
pub struct ScoreConfig {
    /// `score = 100 * (1 - exp(-S / scale))`.
    pub scale: f64,
    /// Half-life of the weight of open topics in the graph.
    pub topic_half_life_ms: f64,
    /// Whether open topics are extracted at all (`[score] open_topics`).
    pub open_topics: bool,
}

/// The compiled, validated definitions the core runs on.
#[derive(Debug, Clone)]
pub struct SignalSet {
    /// Content hash of the source files, carried by every action.
    pub version: Arc<str>,
    /// How text is analysed, for phrases and for events alike.
    pub analyzer: Analyzer,
    /// Every library's phrases, compiled into one matcher.
    pub matcher: PhraseMatcher,
    /// The phrase libraries, indexed by [`LibraryIdx`].
    pub libraries: Vec<Library>,
    /// The signals, indexed by [`SignalIdx`].
    pub signals: Vec<SignalDef>,
    /// The rules, indexed by [`RuleIdx`].
    pub rules: Vec<RuleDef>,
    /// How the score is computed.
    pub score: ScoreConfig,
    /// The library whose phrases mark a contact title as a decision role.
    pub decision_roles: Option<LibraryIdx>,
    /// Non-fatal remarks (e.g. a phrase that stopwords reduce to one word).
    pub warnings: Vec<DefError>,
    /// Every signal's `url` regex in one set, so a URL is scanned once.
    pub url_set: regex::RegexSet,
    /// The signal of each pattern of `url_set`.
    pub url_set_signals: Vec<SignalIdx>,
}

impl SignalSet {
    /// The index of the signal `id`.
    pub fn signal_idx(&self, id: &str) -> Option<SignalIdx> {
        self.signals
            .iter()
            .position(|s| &*s.id == id)
            .map(|i| i as SignalIdx)
    }

    /// The index of the rule `id`.
    pub fn rule_idx(&self, id: &str) -> Option<RuleIdx> {
        self.rules
            .iter()
            .position(|r| &*r.id == id)
            .map(|i| i as RuleIdx)
    }

    /// The index of the library `id`.
    pub fn library_idx(&self, id: &str) -> Option<LibraryIdx> {
        self.libraries
            .iter()
            .position(|l| &*l.id == id)
            .map(|i| i as LibraryIdx)
    }

    /// A one-paragraph summary, as `intent check` prints it.
    pub fn summary(&self) -> String {
        let n_phrases: usize = self.libraries.iter().map(|l| l.n_phrases).sum();
        let industries: Vec<&str> = self
            .libraries
            .iter()
            .filter_map(|l| l.industry.as_deref())
            .collect();
        format!(
            "signals version {}: {} signals, {} rules, {} libraries ({} phrases; industries: {}), analyzer {} (prefix fold {})",
            self.version,
            self.signals.len(),
            self.rules.len(),
            self.libraries.len(),
            n_phrases,
            if industries.is_empty() { "none".to_string() } else { industries.join(", ") },
            self.analyzer.language(),
            self.analyzer.prefix_fold(),
        )
    }
}
