//! Phase two of loading signal definitions: validate the raw files, resolve
//! references, compile regexes and phrases, and report every problem at once
//! with its file and line.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use regex::Regex;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::raw::{RawAttrTest, RawCondition, RawFile, RawRule, RawSignal};
use super::{
    action_bit, crm_bit, kind_bit, AttrTest, Condition, DefError, DefErrors, FieldSet, Library,
    Mask, RuleDef, RuleKind, ScoreConfig, SignalDef, SignalIdx, SignalSet,
};
use crate::event::{CrmType, Direction, Kind, SpeakerRole, WebAction};
use crate::extract::analyzer::Analyzer;
use crate::extract::matcher::{LibraryIdx, PhraseMatcherBuilder, PhraseProblem};
use crate::time::parse_duration_ms;

/// One definitions file: where it came from and its text.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

/// Placeholders a rule's `reason` and `recommendation` may use.
pub const PLACEHOLDERS: &[&str] = &[
    "account",
    "contact",
    "contact_title",
    "industry",
    "count",
    "within",
    "score",
    "keywords",
    "signals",
    "topics",
    "silence",
    "attr",
    "value",
    "old_title",
    "new_title",
];

const DEFAULT_SCALE: f64 = 40.0;
const DEFAULT_TOPIC_HALF_LIFE: &str = "30d";
const DEFAULT_CAP: f64 = 3.0;
const DEFAULT_DECISION_ROLES: &str = "decision_roles";

/// Content hash of the sources: the version every action carries.
fn version_of(sources: &[Source]) -> String {
    let mut sorted: Vec<&Source> = sources.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut hasher = Sha256::new();
    for source in sorted {
        let name = source
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(source.text.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Validates and compiles definitions given as text (the directory loader
/// and the NATS KV watcher both end here).
pub fn compile_sources(sources: &[Source]) -> Result<SignalSet, DefErrors> {
    let mut cx = Compiler::default();
    let mut files = Vec::new();
    for source in sources {
        match toml::from_str::<RawFile>(&source.text) {
            Ok(raw) => files.push((source, raw)),
            Err(e) => {
                // Signals of a file refused for its shape are still known by
                // id, so rules naming them do not add a cascade of errors.
                if let Ok(table) = toml::from_str::<toml::Table>(&source.text) {
                    if let Some(toml::Value::Array(signals)) = table.get("signal") {
                        for signal in signals {
                            if let Some(id) = signal.get("id").and_then(|v| v.as_str()) {
                                cx.broken_signals.push(id.to_string());
                            }
                        }
                    }
                }
                let line = e.span().map_or(0, |span| line_of(&source.text, span.start));
                cx.errors.push(DefError {
                    file: source.path.clone(),
                    line,
                    message: e.message().trim().to_string(),
                });
            }
        }
    }
    let set = cx.compile(&files, version_of(sources));
    if cx.errors.is_empty() {
        let mut set = set.expect("a set is built whenever there are no errors");
        set.warnings = cx.warnings;
        Ok(set)
    } else {
        Err(DefErrors(cx.errors))
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[derive(Default)]
struct Compiler {
    errors: Vec<DefError>,
    warnings: Vec<DefError>,
    /// Ids of signals refused for their own errors (already reported).
    broken_signals: Vec<String>,
}

/// Where we are while checking one file.
struct At<'a> {
    source: &'a Source,
}

impl At<'_> {
    fn err<T>(&self, cx: &mut Compiler, spanned: &Spanned<T>, message: impl Into<String>) {
        cx.errors.push(DefError {
            file: self.source.path.clone(),
            line: line_of(&self.source.text, spanned.span().start),
            message: message.into(),
        });
    }
    fn warn<T>(&self, cx: &mut Compiler, spanned: &Spanned<T>, message: impl Into<String>) {
        cx.warnings.push(DefError {
            file: self.source.path.clone(),
            line: line_of(&self.source.text, spanned.span().start),
            message: message.into(),
        });
    }
    fn line<T>(&self, spanned: &Spanned<T>) -> String {
        format!(
            "{}:{}",
            self.source.path.display(),
            line_of(&self.source.text, spanned.span().start)
        )
    }
}

impl Compiler {
    fn compile(&mut self, files: &[(&Source, RawFile)], version: String) -> Option<SignalSet> {
        // Settings sections, at most once each.
        let mut analyzer_cfg = None;
        let mut score_cfg = None;
        let mut contacts_cfg = None;
        for (source, raw) in files {
            let at = At { source };
            if let Some(a) = &raw.analyzer {
                if analyzer_cfg.is_some() {
                    at.err(self, a, "[analyzer] is defined in more than one file");
                }
                analyzer_cfg = Some((at.source, a));
            }
            if let Some(s) = &raw.score {
                if score_cfg.is_some() {
                    at.err(self, s, "[score] is defined in more than one file");
                }
                score_cfg = Some((at.source, s));
            }
            if let Some(c) = &raw.contacts {
                if contacts_cfg.is_some() {
                    at.err(self, c, "[contacts] is defined in more than one file");
                }
                contacts_cfg = Some((at.source, c));
            }
        }

        let analyzer = match analyzer_cfg {
            None => Analyzer::default(),
            Some((source, a)) => {
                let at = At { source };
                let language = a.get_ref().language.as_ref();
                let prefix_fold = match &a.get_ref().prefix_fold {
                    Some(p) if !(0..=64).contains(p.get_ref()) => {
                        at.err(self, p, "prefix_fold: must be between 0 (off) and 64");
                        7
                    }
                    Some(p) => *p.get_ref() as usize,
                    None => 7,
                };
                let name = language.map_or("english", |l| l.get_ref().as_str());
                match Analyzer::new(name, prefix_fold) {
                    Some(analyzer) => analyzer,
                    None => {
                        let known: Vec<&str> = crate::extract::analyzer::LANGUAGES
                            .iter()
                            .map(|(n, _)| *n)
                            .collect();
                        if let Some(l) = language {
                            at.err(
                                self,
                                l,
                                format!(
                                    "language: unknown stemming language '{name}' (known: {})",
                                    known.join(", ")
                                ),
                            );
                        }
                        Analyzer::default()
                    }
                }
            }
        };

        let mut score = ScoreConfig {
            scale: DEFAULT_SCALE,
            topic_half_life_ms: parse_duration_ms(DEFAULT_TOPIC_HALF_LIFE).unwrap() as f64,
        };
        if let Some((source, s)) = score_cfg {
            let at = At { source };
            if let Some(scale) = &s.get_ref().scale {
                if !(scale.get_ref().is_finite() && *scale.get_ref() > 0.0) {
                    at.err(self, scale, "scale: must be a positive number");
                } else {
                    score.scale = *scale.get_ref();
                }
            }
            if let Some(h) = &s.get_ref().topic_half_life {
                if let Some(ms) = self.positive_duration(&at, h, "topic_half_life") {
                    score.topic_half_life_ms = ms as f64;
                }
            }
        }

        // Libraries, then the phrases of all of them into one matcher.
        let mut builder = PhraseMatcherBuilder::new(&analyzer);
        let mut libraries: Vec<Library> = Vec::new();
        let mut library_where: HashMap<String, String> = HashMap::new();
        for (source, raw) in files {
            let at = At { source };
            for lib in &raw.library {
                let lib_ref = lib.get_ref();
                let id = lib_ref.id.get_ref();
                if !self.claim_id(&at, "library", &lib_ref.id, &mut library_where) {
                    continue;
                }
                let idx = libraries.len() as LibraryIdx;
                if lib_ref.phrases.get_ref().is_empty() {
                    at.err(
                        self,
                        &lib_ref.phrases,
                        format!("library '{id}' has no phrases"),
                    );
                }
                let mut seen = HashMap::new();
                for phrase in lib_ref.phrases.get_ref() {
                    let text = phrase.get_ref();
                    let analysed = builder.analysed(text);
                    if let Some(previous) = seen.insert(analysed.clone(), text.clone()) {
                        at.warn(self, phrase, format!("phrase '{text}' matches the same as '{previous}' in library '{id}'"));
                        continue;
                    }
                    match builder.add(idx, text) {
                        Ok(_) => {
                            let n_words = text.split_whitespace().count();
                            let n_keys = analysed.split(' ').count();
                            if n_words > 1
                                && n_keys == 1
                                && !analysed.chars().any(crate::extract::analyzer::is_han)
                            {
                                at.warn(self, phrase, format!("phrase '{text}' is reduced by stopwords to the single word '{analysed}'"));
                            }
                        }
                        Err(PhraseProblem::EmptyAfterAnalysis) => {
                            at.err(self, phrase, format!("phrase '{text}' is empty after analysis (only stopwords or punctuation)"));
                        }
                    }
                }
                libraries.push(Library {
                    id: id.as_str().into(),
                    industry: lib_ref
                        .industry
                        .as_ref()
                        .map(|i| i.get_ref().as_str().into()),
                    description: lib_ref.description.clone().unwrap_or_default(),
                    n_phrases: lib_ref.phrases.get_ref().len(),
                    file: source.path.clone(),
                });
            }
        }

        // Signals: ids first, so that inline phrases get libraries of their own.
        let mut signal_where: HashMap<String, String> = HashMap::new();
        let mut signals: Vec<SignalDef> = Vec::new();
        for (source, raw) in files {
            let at = At { source };
            for signal in &raw.signal {
                let s = signal.get_ref();
                let id = s.id.get_ref();
                if !self.claim_id(&at, "signal", &s.id, &mut signal_where) {
                    continue;
                }
                match self.signal(&at, s, &mut libraries, &mut builder) {
                    Some(def) => signals.push(def),
                    None => self.broken_signals.push(id.clone()),
                }
            }
        }

        let library_of = |id: &str| {
            libraries
                .iter()
                .position(|l| &*l.id == id)
                .map(|i| i as LibraryIdx)
        };
        let decision_roles = match contacts_cfg {
            Some((source, c)) => match &c.get_ref().decision_roles {
                Some(name) => {
                    let found = library_of(name.get_ref());
                    if found.is_none() {
                        At { source }.err(
                            self,
                            name,
                            format!("decision_roles: unknown library '{}'", name.get_ref()),
                        );
                    }
                    found
                }
                None => None,
            },
            None => library_of(DEFAULT_DECISION_ROLES),
        };

        // Rules.
        let decision_roles_id: String = decision_roles
            .map(|idx| libraries[idx as usize].id.to_string())
            .unwrap_or_else(|| DEFAULT_DECISION_ROLES.to_string());
        let mut rules: Vec<RuleDef> = Vec::new();
        let mut rule_where: HashMap<String, String> = HashMap::new();
        let industries: Vec<Arc<str>> = libraries
            .iter()
            .filter_map(|l| l.industry.clone())
            .collect();
        for (source, raw) in files {
            let at = At { source };
            for rule in &raw.rule {
                let r = rule.get_ref();
                if !self.claim_id(&at, "rule", &r.id, &mut rule_where) {
                    continue;
                }
                if let Some(def) = self.rule(
                    &at,
                    rule,
                    &signals,
                    &libraries,
                    &industries,
                    &decision_roles_id,
                ) {
                    rules.push(def);
                }
            }
        }
        if signals.len() > SignalIdx::MAX as usize || rules.len() > u16::MAX as usize {
            self.errors.push(DefError {
                file: PathBuf::new(),
                line: 0,
                message: "too many signals or rules (at most 65535 each)".into(),
            });
        }

        // How long each signal's occurrence times must be kept.
        for rule in &rules {
            match &rule.kind {
                RuleKind::Count {
                    signal, within_ms, ..
                } => {
                    let s = &mut signals[*signal as usize];
                    s.retain_ms = s.retain_ms.max(*within_ms);
                }
                RuleKind::Cooccurrence {
                    signals: ids,
                    within_ms,
                    ..
                } => {
                    for signal in ids {
                        let s = &mut signals[*signal as usize];
                        s.retain_ms = s.retain_ms.max(*within_ms);
                    }
                }
                _ => {}
            }
        }

        if !self.errors.is_empty() {
            return None;
        }
        let url_signals: Vec<(SignalIdx, &str)> = signals
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.when.url.as_ref().map(|re| (i as SignalIdx, re.as_str())))
            .collect();
        let url_set = regex::RegexSet::new(url_signals.iter().map(|(_, re)| *re))
            .expect("each pattern compiled on its own");
        Some(SignalSet {
            url_set,
            url_set_signals: url_signals.iter().map(|(i, _)| *i).collect(),
            version: version.into(),
            matcher: builder.build(),
            analyzer,
            libraries,
            signals,
            rules,
            score,
            decision_roles,
            warnings: Vec::new(),
        })
    }

    fn signal(
        &mut self,
        at: &At<'_>,
        s: &RawSignal,
        libraries: &mut Vec<Library>,
        builder: &mut PhraseMatcherBuilder<'_>,
    ) -> Option<SignalDef> {
        let errors_before = self.errors.len();
        let id = s.id.get_ref();
        let weight = *s.weight.get_ref();
        if !weight.is_finite() {
            at.err(self, &s.weight, "weight: must be a finite number");
        }
        let half_life_ms = self
            .positive_duration(at, &s.half_life, "half_life")
            .unwrap_or(1);
        let cap = match &s.cap {
            Some(c) if !(c.get_ref().is_finite() && *c.get_ref() > 0.0) => {
                at.err(self, c, "cap: must be a positive number");
                DEFAULT_CAP
            }
            Some(c) => *c.get_ref(),
            None => DEFAULT_CAP,
        };
        let when = self.condition(at, id, s.when.get_ref(), libraries, builder);
        if self.errors.len() > errors_before {
            return None;
        }
        Some(SignalDef {
            id: id.as_str().into(),
            description: s.description.clone().unwrap_or_default(),
            weight,
            half_life_ms: half_life_ms as f64,
            cap,
            when: when?,
            retain_ms: 0,
        })
    }

    fn condition(
        &mut self,
        at: &At<'_>,
        signal_id: &str,
        c: &RawCondition,
        libraries: &mut Vec<Library>,
        builder: &mut PhraseMatcherBuilder<'_>,
    ) -> Option<Condition> {
        let mut kinds = Mask::default();
        for k in c.kinds.get_ref() {
            match Kind::parse(k.get_ref()) {
                Some(kind) => kinds = kinds.with(kind_bit(kind)),
                None => at.err(
                    self,
                    k,
                    format!(
                        "kinds: '{}' is not one of web, email, transcript, crm",
                        k.get_ref()
                    ),
                ),
            }
        }
        if c.kinds.get_ref().is_empty() {
            at.err(self, &c.kinds, "kinds: name at least one event kind");
        }
        let only = |cx: &mut Compiler, field: &str, kind: Kind, span: &Spanned<String>| {
            if !kinds.has(kind_bit(kind)) {
                at.err(
                    cx,
                    span,
                    format!(
                        "{field}: applies to {} events, which `kinds` does not include",
                        kind.as_str()
                    ),
                );
            }
        };
        let url = c.url.as_ref().and_then(|u| {
            only(self, "url", Kind::Web, u);
            self.regex(at, u, "url")
        });
        let title = c.title.as_ref().and_then(|t| {
            only(self, "title", Kind::Web, t);
            self.regex(at, t, "title")
        });
        let actions = c.actions.as_ref().map(|list| {
            let mut mask = Mask::default();
            for a in list {
                only(self, "actions", Kind::Web, a);
                match WebAction::parse(a.get_ref()) {
                    Some(action) => mask = mask.with(action_bit(action)),
                    None => at.err(self, a, format!("actions: '{}' is not one of view, download, register, qa, search, form", a.get_ref())),
                }
            }
            mask
        });
        let min_dwell_ms = c.min_dwell.as_ref().and_then(|d| {
            only(self, "min_dwell", Kind::Web, d);
            self.positive_duration(at, d, "min_dwell")
                .map(|ms| ms as u64)
        });
        let direction = c.direction.as_ref().and_then(|d| {
            only(self, "direction", Kind::Email, d);
            let parsed = Direction::parse(d.get_ref());
            if parsed.is_none() {
                at.err(
                    self,
                    d,
                    format!(
                        "direction: '{}' is not one of inbound, outbound",
                        d.get_ref()
                    ),
                );
            }
            parsed
        });
        let speaker_role = c.speaker_role.as_ref().and_then(|r| {
            only(self, "speaker_role", Kind::Transcript, r);
            let parsed = SpeakerRole::parse(r.get_ref());
            if parsed.is_none() {
                at.err(
                    self,
                    r,
                    format!(
                        "speaker_role: '{}' is not one of customer, rep",
                        r.get_ref()
                    ),
                );
            }
            parsed
        });
        let crm_types = c.crm_types.as_ref().map(|list| {
            let mut mask = Mask::default();
            for t in list {
                only(self, "crm_types", Kind::Crm, t);
                match CrmType::parse(t.get_ref()) {
                    Some(crm) => mask = mask.with(crm_bit(crm)),
                    None => at.err(
                        self,
                        t,
                        format!("crm_types: unknown CRM event type '{}'", t.get_ref()),
                    ),
                }
            }
            mask
        });
        let mut library_ids =
            self.library_refs(at, "libraries", c.libraries.iter().flatten(), libraries);
        if let Some(phrases) = &c.phrases {
            // Inline phrases become a library of their own, named after the signal.
            let idx = libraries.len() as LibraryIdx;
            for phrase in phrases {
                if builder.add(idx, phrase.get_ref()).is_err() {
                    at.err(
                        self,
                        phrase,
                        format!(
                            "phrase '{}' is empty after analysis (only stopwords or punctuation)",
                            phrase.get_ref()
                        ),
                    );
                }
            }
            libraries.push(Library {
                id: format!("signal:{signal_id}").into(),
                industry: None,
                description: format!("inline phrases of signal {signal_id}"),
                n_phrases: phrases.len(),
                file: at.source.path.clone(),
            });
            library_ids.push(idx);
        }
        let mut fields = FieldSet::default();
        match &c.fields {
            None => fields = FieldSet::ALL,
            Some(list) => {
                for f in list {
                    match FieldSet::NAMES
                        .iter()
                        .find(|(n, _)| *n == f.get_ref().as_str())
                    {
                        Some((_, bit)) => fields.0 |= bit.0,
                        None => at.err(
                            self,
                            f,
                            format!(
                                "fields: '{}' is not one of title, text, subject, body",
                                f.get_ref()
                            ),
                        ),
                    }
                }
                if library_ids.is_empty() {
                    if let Some(first) = list.first() {
                        at.err(
                            self,
                            first,
                            "fields: only meaningful with libraries or phrases",
                        );
                    }
                }
            }
        }
        let contact_title = self.library_refs(
            at,
            "contact_title",
            c.contact_title.iter().flatten(),
            libraries,
        );
        let attrs = c
            .attrs
            .iter()
            .flatten()
            .filter_map(|t| self.attr_test(at, t))
            .collect();
        Some(Condition {
            kinds,
            url,
            title,
            actions,
            min_dwell_ms,
            direction,
            speaker_role,
            crm_types,
            libraries: library_ids,
            fields,
            contact_title,
            attrs,
        })
    }

    fn attr_test(&mut self, at: &At<'_>, test: &Spanned<RawAttrTest>) -> Option<AttrTest> {
        let t = test.get_ref();
        let name = t.name.get_ref();
        if name.is_empty() || name.len() > 64 {
            at.err(self, &t.name, "attrs: attribute names are 1-64 bytes");
            return None;
        }
        let bound = |cx: &mut Compiler, b: &Option<Spanned<f64>>, which: &str, open: f64| match b {
            None => Some(open),
            Some(v) if v.get_ref().is_finite() => Some(*v.get_ref()),
            Some(v) => {
                at.err(
                    cx,
                    v,
                    format!("attrs: {which} of '{name}' must be a finite number"),
                );
                None
            }
        };
        let min = bound(self, &t.min, "min", f64::NEG_INFINITY)?;
        let max = bound(self, &t.max, "max", f64::INFINITY)?;
        if t.min.is_none() && t.max.is_none() {
            at.err(
                self,
                test,
                format!("attrs: give '{name}' a min, a max or both"),
            );
            return None;
        }
        if min > max {
            at.err(
                self,
                test,
                format!("attrs: min {min} of '{name}' is above its max {max}"),
            );
            return None;
        }
        Some(AttrTest {
            name: name.as_str().into(),
            min,
            max,
        })
    }

    fn rule(
        &mut self,
        at: &At<'_>,
        rule: &Spanned<RawRule>,
        signals: &[SignalDef],
        libraries: &[Library],
        industries: &[Arc<str>],
        decision_roles_id: &str,
    ) -> Option<RuleDef> {
        let r = rule.get_ref();
        let errors_before = self.errors.len();
        let kind_name = r.kind.get_ref().as_str();
        // Which kind-specific fields are set, to refuse the ones a kind does not use.
        let set_fields: Vec<(&str, usize)> = [
            (
                "score_above",
                r.score_above.as_ref().map(|s| s.span().start),
            ),
            ("signal", r.signal.as_ref().map(|s| s.span().start)),
            ("at_least", r.at_least.as_ref().map(|s| s.span().start)),
            ("within", r.within.as_ref().map(|s| s.span().start)),
            ("signals", r.signals.as_ref().map(|s| s.span().start)),
            (
                "distinct_kinds",
                r.distinct_kinds.as_ref().map(|s| s.span().start),
            ),
            ("start", r.start.as_ref().map(|s| s.span().start)),
            ("silence", r.silence.as_ref().map(|s| s.span().start)),
            ("attr", r.attr.as_ref().map(|s| s.span().start)),
            ("above", r.above.as_ref().map(|s| s.span().start)),
            ("libraries", r.libraries.as_ref().map(|s| s.span().start)),
        ]
        .into_iter()
        .filter_map(|(name, span)| span.map(|s| (name, s)))
        .collect();
        let allowed: &[&str] = match kind_name {
            "threshold" => &["score_above"],
            "count" => &["signal", "at_least", "within"],
            "cooccurrence" => &["signals", "within", "distinct_kinds"],
            "silence" => &["start", "silence"],
            "role_change" => &[],
            "attr_keyword" => &["attr", "above", "libraries"],
            other => {
                at.err(self, &r.kind, format!(
                    "kind: '{other}' is not one of threshold, count, cooccurrence, silence, role_change, attr_keyword"
                ));
                return None;
            }
        };
        for (name, offset) in &set_fields {
            if !allowed.contains(name) {
                self.errors.push(DefError {
                    file: at.source.path.clone(),
                    line: line_of(&at.source.text, *offset),
                    message: format!(
                        "{name}: not used by rules of kind {kind_name} (it takes {})",
                        allowed.join(", ")
                    ),
                });
            }
        }
        let missing = |cx: &mut Compiler, field: &str| {
            at.err(
                cx,
                &r.id,
                format!(
                    "rule '{}': kind {kind_name} needs `{field}`",
                    r.id.get_ref()
                ),
            );
        };
        let signal_ref = |cx: &mut Compiler, name: &Spanned<String>| -> Option<SignalIdx> {
            let found = signals
                .iter()
                .position(|s| &*s.id == name.get_ref().as_str());
            if found.is_none() && !cx.broken_signals.contains(name.get_ref()) {
                at.err(cx, name, format!("unknown signal '{}'", name.get_ref()));
            }
            found.map(|i| i as SignalIdx)
        };
        let library_ref = |cx: &mut Compiler, name: &Spanned<String>| -> Option<LibraryIdx> {
            let found = libraries
                .iter()
                .position(|l| &*l.id == name.get_ref().as_str());
            if found.is_none() {
                at.err(cx, name, format!("unknown library '{}'", name.get_ref()));
            }
            found.map(|i| i as LibraryIdx)
        };
        let within_ms = match &r.within {
            Some(w) => self.positive_duration(at, w, "within"),
            None => None,
        };
        let kind = match kind_name {
            "threshold" => match &r.score_above {
                Some(s) if (0.0..100.0).contains(s.get_ref()) => Some(RuleKind::Threshold {
                    score: *s.get_ref(),
                }),
                Some(s) => {
                    at.err(self, s, "score_above: must be in [0, 100)");
                    None
                }
                None => {
                    missing(self, "score_above");
                    None
                }
            },
            "count" => {
                let signal = r.signal.as_ref().and_then(|s| signal_ref(self, s));
                let at_least = match &r.at_least {
                    Some(n)
                        if *n.get_ref() >= 1
                            && *n.get_ref() <= crate::graph::account::MAX_OCCURRENCES as i64 =>
                    {
                        Some(*n.get_ref() as u32)
                    }
                    Some(n) => {
                        at.err(
                            self,
                            n,
                            format!(
                                "at_least: must be between 1 and {} (occurrences kept per signal)",
                                crate::graph::account::MAX_OCCURRENCES
                            ),
                        );
                        None
                    }
                    None => {
                        missing(self, "at_least");
                        None
                    }
                };
                if r.signal.is_none() {
                    missing(self, "signal");
                }
                if r.within.is_none() {
                    missing(self, "within");
                }
                match (signal, at_least, within_ms) {
                    (Some(signal), Some(at_least), Some(within_ms)) => Some(RuleKind::Count {
                        signal,
                        at_least,
                        within_ms,
                    }),
                    _ => None,
                }
            }
            "cooccurrence" => {
                let mut ids = Vec::new();
                match &r.signals {
                    Some(list) if list.get_ref().len() >= 2 => {
                        for s in list.get_ref() {
                            if let Some(idx) = signal_ref(self, s) {
                                ids.push(idx);
                            }
                        }
                    }
                    Some(list) => at.err(
                        self,
                        list,
                        "signals: a co-occurrence needs at least two signals",
                    ),
                    None => missing(self, "signals"),
                }
                if r.within.is_none() {
                    missing(self, "within");
                }
                within_ms.map(|within_ms| RuleKind::Cooccurrence {
                    signals: ids,
                    within_ms,
                    distinct_kinds: r.distinct_kinds.as_ref().is_some_and(|d| *d.get_ref()),
                })
            }
            "silence" => {
                let start = match &r.start {
                    Some(s) => {
                        let parsed = CrmType::parse(s.get_ref());
                        if parsed.is_none() {
                            at.err(
                                self,
                                s,
                                format!("start: unknown CRM event type '{}'", s.get_ref()),
                            );
                        }
                        parsed
                    }
                    None => {
                        missing(self, "start");
                        None
                    }
                };
                let silence_ms = match &r.silence {
                    Some(s) => self.positive_duration(at, s, "silence"),
                    None => {
                        missing(self, "silence");
                        None
                    }
                };
                match (start, silence_ms) {
                    (Some(start), Some(silence_ms)) => {
                        Some(RuleKind::Silence { start, silence_ms })
                    }
                    _ => None,
                }
            }
            "role_change" => {
                if !libraries.iter().any(|l| &*l.id == decision_roles_id) {
                    at.err(self, &r.kind, format!(
                        "kind role_change needs a decision-role library ('{decision_roles_id}', see [contacts] decision_roles)"
                    ));
                }
                Some(RuleKind::RoleChange)
            }
            "attr_keyword" => {
                let attr = r.attr.as_ref().map(|a| a.get_ref().clone());
                if attr.is_none() {
                    missing(self, "attr");
                }
                let above = match &r.above {
                    Some(a) if a.get_ref().is_finite() => Some(*a.get_ref()),
                    Some(a) => {
                        at.err(self, a, "above: must be a finite number");
                        None
                    }
                    None => {
                        missing(self, "above");
                        None
                    }
                };
                let mut libs = Vec::new();
                match &r.libraries {
                    Some(list) if !list.get_ref().is_empty() => {
                        for name in list.get_ref() {
                            if let Some(idx) = library_ref(self, name) {
                                libs.push(idx);
                            }
                        }
                    }
                    Some(list) => at.err(self, list, "libraries: name at least one library"),
                    None => missing(self, "libraries"),
                }
                match (attr, above) {
                    (Some(attr), Some(above)) => Some(RuleKind::AttrKeyword {
                        attr,
                        above,
                        libraries: libs,
                    }),
                    _ => None,
                }
            }
            _ => unreachable!("kind names were checked above"),
        };
        let cooldown_ms = match &r.cooldown {
            Some(c) => match parse_duration_ms(c.get_ref()) {
                Ok(ms) => ms,
                Err(e) => {
                    at.err(
                        self,
                        c,
                        format!("cooldown: '{}' is not a duration ({e})", c.get_ref()),
                    );
                    0
                }
            },
            None => 0,
        };
        self.template(at, &r.reason, "reason");
        self.template(at, &r.recommendation, "recommendation");
        let mut recommendations = Vec::new();
        if let Some(map) = &r.recommendations {
            for (industry, text) in map.get_ref() {
                if !industries.iter().any(|i| &**i == industry.as_str()) {
                    at.err(self, text, format!("recommendations: unknown industry '{industry}' (industries come from libraries with `industry = ...`)"));
                }
                self.template(at, text, "recommendations");
                recommendations.push((Arc::from(industry.as_str()), text.get_ref().clone()));
            }
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(RuleDef {
            id: r.id.get_ref().as_str().into(),
            description: r.description.clone().unwrap_or_default(),
            kind: kind?,
            cooldown_ms,
            recommendation: r.recommendation.get_ref().clone(),
            recommendations,
            reason: r.reason.get_ref().clone(),
        })
    }

    /// Checks an id's form and that it is new among `seen` (id → where first
    /// defined); records it. False (with the error reported) when refused.
    fn claim_id(
        &mut self,
        at: &At<'_>,
        what: &str,
        id: &Spanned<String>,
        seen: &mut HashMap<String, String>,
    ) -> bool {
        let text = id.get_ref();
        if !valid_id(text) {
            at.err(self, id, format!("{what} id '{text}': use letters, digits, '_' and '-' (ids become NATS subject tokens)"));
            return false;
        }
        if let Some(first) = seen.get(text) {
            at.err(
                self,
                id,
                format!("{what} '{text}' is already defined at {first}"),
            );
            return false;
        }
        seen.insert(text.clone(), at.line(id));
        true
    }

    /// Resolves library names; unknown ones are reported against `field`.
    fn library_refs<'n>(
        &mut self,
        at: &At<'_>,
        field: &str,
        names: impl Iterator<Item = &'n Spanned<String>>,
        libraries: &[Library],
    ) -> Vec<LibraryIdx> {
        let mut found = Vec::new();
        for name in names {
            match libraries
                .iter()
                .position(|l| &*l.id == name.get_ref().as_str())
            {
                Some(idx) => found.push(idx as LibraryIdx),
                None => at.err(
                    self,
                    name,
                    format!("{field}: unknown library '{}'", name.get_ref()),
                ),
            }
        }
        found
    }

    fn template(&mut self, at: &At<'_>, text: &Spanned<String>, field: &str) {
        let mut rest = text.get_ref().as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                at.err(self, text, format!("{field}: unclosed '{{'"));
                return;
            };
            let name = &after[..close];
            if !PLACEHOLDERS.contains(&name) {
                at.err(
                    self,
                    text,
                    format!(
                        "{field}: unknown placeholder {{{name}}} (known: {})",
                        PLACEHOLDERS.join(", ")
                    ),
                );
            }
            rest = &after[close + 1..];
        }
    }

    fn regex(&mut self, at: &At<'_>, pattern: &Spanned<String>, field: &str) -> Option<Regex> {
        match Regex::new(pattern.get_ref()) {
            Ok(re) => Some(re),
            Err(e) => {
                let detail = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                at.err(
                    self,
                    pattern,
                    format!("{field}: bad regex '{}': {detail}", pattern.get_ref()),
                );
                None
            }
        }
    }

    fn positive_duration(
        &mut self,
        at: &At<'_>,
        text: &Spanned<String>,
        field: &str,
    ) -> Option<i64> {
        let raw = text.get_ref().trim();
        if raw.starts_with('-') {
            at.err(
                self,
                text,
                format!("{field}: must be positive, got '{raw}'"),
            );
            return None;
        }
        match parse_duration_ms(raw) {
            Ok(0) => {
                at.err(
                    self,
                    text,
                    format!("{field}: must be positive, got '{raw}'"),
                );
                None
            }
            Ok(ms) => Some(ms),
            Err(e) => {
                at.err(
                    self,
                    text,
                    format!("{field}: '{raw}' is not a duration like 14d, 48h, 3m ({e})"),
                );
                None
            }
        }
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
