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
    pub analyzer: Option<Spanned<RawAnalyzer>>,
    pub score: Option<Spanned<RawScore>>,
    pub contacts: Option<Spanned<RawContacts>>,
    #[serde(default)]
    pub library: Vec<Spanned<RawLibrary>>,
    #[serde(default)]
    pub signal: Vec<Spanned<RawSignal>>,
    #[serde(default)]
    pub rule: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAnalyzer {
    pub language: Option<Spanned<String>>,
    pub prefix_fold: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScore {
    pub scale: Option<Spanned<f64>>,
    pub topic_half_life: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContacts {
    pub decision_roles: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLibrary {
    pub id: Spanned<String>,
    pub industry: Option<Spanned<String>>,
    pub description: Option<String>,
    pub phrases: Spanned<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSignal {
    pub id: Spanned<String>,
    pub description: Option<String>,
    pub weight: Spanned<f64>,
    pub half_life: Spanned<String>,
    /// Occurrences beyond which the signal adds no more to the score.
    pub cap: Option<Spanned<f64>>,
    pub when: Spanned<RawCondition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    pub kinds: Spanned<Vec<Spanned<String>>>,
    pub url: Option<Spanned<String>>,
    pub title: Option<Spanned<String>>,
    pub actions: Option<Vec<Spanned<String>>>,
    pub min_dwell: Option<Spanned<String>>,
    pub direction: Option<Spanned<String>>,
    pub speaker_role: Option<Spanned<String>>,
    pub crm_types: Option<Vec<Spanned<String>>>,
    pub libraries: Option<Vec<Spanned<String>>>,
    pub phrases: Option<Vec<Spanned<String>>>,
    pub fields: Option<Vec<Spanned<String>>>,
    pub contact_title: Option<Vec<Spanned<String>>>,
    pub attrs: Option<Vec<Spanned<RawAttrTest>>>,
}

/// `{ name = "call_duration_s", min = 300 }`: a bound on a numeric attribute.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAttrTest {
    pub name: Spanned<String>,
    pub min: Option<Spanned<f64>>,
    pub max: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: Spanned<String>,
    pub kind: Spanned<String>,
    pub description: Option<String>,
    pub cooldown: Option<Spanned<String>>,
    pub recommendation: Spanned<String>,
    /// Per-industry recommendations, keyed by industry; fall back to `recommendation`.
    pub recommendations: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub reason: Spanned<String>,
    // threshold
    pub score_above: Option<Spanned<f64>>,
    // count
    pub signal: Option<Spanned<String>>,
    pub at_least: Option<Spanned<i64>>,
    pub within: Option<Spanned<String>>,
    // co-occurrence
    pub signals: Option<Spanned<Vec<Spanned<String>>>>,
    pub distinct_kinds: Option<Spanned<bool>>,
    // silence
    pub start: Option<Spanned<String>>,
    pub silence: Option<Spanned<String>>,
    // attribute + keyword
    pub attr: Option<Spanned<String>>,
    pub above: Option<Spanned<f64>>,
    pub libraries: Option<Spanned<Vec<Spanned<String>>>>,
}
