//! Signal definitions: the analyst-edited `signal-defs/` directory, loaded in
//! two phases ([`raw`] → [`compile`]) into one immutable [`SignalSet`].
//!
//! A `SignalSet` is all the core knows of signals, rules and phrase
//! libraries. It is shared as `Arc<SignalSet>`; a reload builds a new one and
//! swaps the `Arc`, so a refused change leaves the running set in force.

mod compile;
pub mod raw;
#[cfg(test)]
pub(crate) mod shipped;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use regex::Regex;

use crate::event::{CrmType, Direction, Kind, SpeakerRole, WebAction};
use crate::extract::analyzer::Analyzer;
use crate::extract::matcher::{LibraryIdx, PhraseMatcher};

pub use compile::{compile_sources, Source};

/// Index of a signal within its [`SignalSet`].
pub type SignalIdx = u16;
/// Index of a rule within its [`SignalSet`].
pub type RuleIdx = u16;

/// One problem found in the definitions, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for DefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Every problem found in one load, all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefErrors(pub Vec<DefError>);

impl fmt::Display for DefErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DefErrors {}

/// A phrase library: a named list of phrases, optionally an industry's.
#[derive(Debug, Clone)]
pub struct Library {
    pub id: Arc<str>,
    pub industry: Option<Arc<str>>,
    pub description: String,
    pub n_phrases: usize,
    pub file: PathBuf,
}

/// Which text fields of an event a phrase condition looks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FieldSet(pub u8);

impl FieldSet {
    pub const TITLE: FieldSet = FieldSet(1);
    pub const TEXT: FieldSet = FieldSet(2);
    pub const SUBJECT: FieldSet = FieldSet(4);
    pub const BODY: FieldSet = FieldSet(8);
    pub const ALL: FieldSet = FieldSet(15);
    pub const NAMES: [(&'static str, FieldSet); 4] = [
        ("title", FieldSet::TITLE),
        ("text", FieldSet::TEXT),
        ("subject", FieldSet::SUBJECT),
        ("body", FieldSet::BODY),
    ];

    pub fn contains(self, other: FieldSet) -> bool {
        self.0 & other.0 != 0
    }
}

/// A small set of enum values as a bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mask(pub u16);

impl Mask {
    pub fn with(self, bit: usize) -> Mask {
        Mask(self.0 | (1 << bit))
    }
    pub fn has(self, bit: usize) -> bool {
        self.0 & (1 << bit) != 0
    }
}

pub fn kind_bit(kind: Kind) -> usize {
    kind as usize
}
pub fn action_bit(action: WebAction) -> usize {
    action as usize
}
pub fn crm_bit(crm: CrmType) -> usize {
    crm as usize
}

/// When an event counts as an occurrence of a signal: all given conditions
/// must hold.
#[derive(Debug, Clone)]
pub struct Condition {
    pub kinds: Mask,
    pub url: Option<Regex>,
    pub title: Option<Regex>,
    pub actions: Option<Mask>,
    pub min_dwell_ms: Option<u64>,
    pub direction: Option<Direction>,
    pub speaker_role: Option<SpeakerRole>,
    pub crm_types: Option<Mask>,
    /// Any phrase of these libraries in the text fields below.
    pub libraries: Vec<LibraryIdx>,
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
    pub name: Box<str>,
    pub min: f64,
    pub max: f64,
}

impl AttrTest {
    pub fn holds(&self, value: Option<f64>) -> bool {
        value.is_some_and(|v| v >= self.min && v <= self.max)
    }
}

/// A signal: a kind of evidence of intent, with its weight and half-life.
#[derive(Debug, Clone)]
pub struct SignalDef {
    pub id: Arc<str>,
    pub description: String,
    pub weight: f64,
    pub half_life_ms: f64,
    pub cap: f64,
    pub when: Condition,
    /// How long occurrence times must be kept for the rules that count them.
    pub retain_ms: i64,
}

/// The condition of a trigger rule.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// The score crosses `score` upward.
    Threshold { score: f64 },
    /// At least `at_least` occurrences of `signal` within `within_ms`.
    Count {
        signal: SignalIdx,
        at_least: u32,
        within_ms: i64,
    },
    /// Each of `signals` occurred within `within_ms`; with `distinct_kinds`,
    /// from at least two event kinds.
    Cooccurrence {
        signals: Vec<SignalIdx>,
        within_ms: i64,
        distinct_kinds: bool,
    },
    /// After a CRM event of type `start`, no inbound customer activity for
    /// `silence_ms`.
    Silence { start: CrmType, silence_ms: i64 },
    /// A contact in a decision role (before or after, per the
    /// `[contacts] decision_roles` library) changes title or leaves.
    RoleChange,
    /// A numeric attribute above `above` and a phrase of `libraries` in the
    /// same event.
    AttrKeyword {
        attr: String,
        above: f64,
        libraries: Vec<LibraryIdx>,
    },
}

impl RuleKind {
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

/// A trigger rule and the action it recommends.
#[derive(Debug, Clone)]
pub struct RuleDef {
    pub id: Arc<str>,
    pub description: String,
    pub kind: RuleKind,
    pub cooldown_ms: i64,
    pub recommendation: String,
    pub recommendations: Vec<(Arc<str>, String)>,
    pub reason: String,
}

/// How the score is computed (see README "Score").
#[derive(Debug, Clone)]
pub struct ScoreConfig {
    pub scale: f64,
    pub topic_half_life_ms: f64,
}

/// The compiled, validated definitions the core runs on.
#[derive(Debug, Clone)]
pub struct SignalSet {
    /// Content hash of the source files, carried by every action.
    pub version: Arc<str>,
    pub analyzer: Analyzer,
    pub matcher: PhraseMatcher,
    pub libraries: Vec<Library>,
    pub signals: Vec<SignalDef>,
    pub rules: Vec<RuleDef>,
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
    pub fn signal_idx(&self, id: &str) -> Option<SignalIdx> {
        self.signals
            .iter()
            .position(|s| &*s.id == id)
            .map(|i| i as SignalIdx)
    }

    pub fn rule_idx(&self, id: &str) -> Option<RuleIdx> {
        self.rules
            .iter()
            .position(|r| &*r.id == id)
            .map(|i| i as RuleIdx)
    }

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
