//! Rules: `[[rule]]` tables. The part every rule has (id, kind, cooldown,
//! reason and recommendation templates, per-industry recommendations) is
//! checked here once; each kind's own fields by one validator per kind
//! ([`KINDS`]), after refusing the fields the kind does not use.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use toml::Spanned;

use super::context::{library_idx, At, Compiler, Files};
use crate::event::CrmType;
use crate::extract::matcher::LibraryIdx;
use crate::graph::account::MAX_OCCURRENCES;
use crate::signal_defs::raw::RawRule;
use crate::signal_defs::{
    DefError, Library, RuleDef, RuleKind, SignalDef, SignalIdx, SilenceStart,
};
use crate::time::parse_duration_ms;

/// What rules may refer to, known once signals and libraries are compiled.
pub(super) struct Refs<'a> {
    /// The compiled signals, which `signal` and `signals` name.
    signals: &'a [SignalDef],
    /// Every library, which `libraries` names.
    libraries: &'a [Library],
    /// The industries of the libraries, which `recommendations` is keyed by.
    industries: Vec<Arc<str>>,
    /// The library id role-change rules need (see `[contacts]`).
    decision_roles_id: String,
}

impl<'a> Refs<'a> {
    /// The references of a compiled set of signals and libraries.
    pub(super) fn new(
        signals: &'a [SignalDef],
        libraries: &'a [Library],
        decision_roles_id: String,
    ) -> Self {
        let industries = libraries
            .iter()
            .filter_map(|l| l.industry.clone())
            .collect();
        Refs {
            signals,
            libraries,
            industries,
            decision_roles_id,
        }
    }
}

/// The `[[rule]]` tables of all files, in order; a rule with any error is
/// left out.
pub(super) fn rules(cx: &mut Compiler, files: &Files<'_>, refs: &Refs<'_>) -> Vec<RuleDef> {
    let mut rules: Vec<RuleDef> = Vec::new();
    let mut rule_where: HashMap<String, String> = HashMap::new();
    for (source, raw) in files {
        let at = At { source };
        for rule in &raw.rule {
            if !cx.claim_id(&at, "rule", &rule.get_ref().id, &mut rule_where) {
                continue;
            }
            if let Some(def) = rule_def(cx, &at, rule.get_ref(), refs) {
                rules.push(def);
            }
        }
    }
    rules
}

/// Refuses more signals or rules than their 16-bit indexes can name.
pub(super) fn check_limits(cx: &mut Compiler, n_signals: usize, n_rules: usize) {
    if n_signals > SignalIdx::MAX as usize || n_rules > u16::MAX as usize {
        cx.errors.push(DefError {
            file: PathBuf::new(),
            line: 0,
            message: "too many signals or rules (at most 65535 each)".into(),
        });
    }
}

/// Makes every signal keep its occurrence times as long as the count and
/// co-occurrence rules naming it look back.
pub(super) fn retain_occurrences(rules: &[RuleDef], signals: &mut [SignalDef]) {
    for rule in rules {
        let (ids, within_ms) = match &rule.kind {
            RuleKind::Count {
                signal, within_ms, ..
            } => (std::slice::from_ref(signal), *within_ms),
            RuleKind::Cooccurrence {
                signals, within_ms, ..
            } => (signals.as_slice(), *within_ms),
            _ => continue,
        };
        for signal in ids {
            let s = &mut signals[*signal as usize];
            s.retain_ms = s.retain_ms.max(within_ms);
        }
    }
}

/// Checks the fields of one kind of rule; `None` when they are refused.
type Validator = fn(&mut Compiler, &Rule<'_>) -> Option<RuleKind>;

/// Each kind of rule: its name, the kind-specific fields it uses, and its
/// validator.
const KINDS: [(&str, &[&str], Validator); 6] = [
    ("threshold", &["score_above", "sum_above"], threshold),
    ("count", &["signal", "at_least", "within"], count),
    (
        "cooccurrence",
        &["signals", "within", "distinct_kinds"],
        cooccurrence,
    ),
    (
        "silence",
        &["start", "start_signal", "silence", "min_events"],
        silence,
    ),
    ("role_change", &[], role_change),
    (
        "attr_keyword",
        &["attr", "above", "libraries"],
        attr_keyword,
    ),
];

/// A rule being checked, for its kind's validator.
struct Rule<'a> {
    at: &'a At<'a>,
    raw: &'a RawRule,
    refs: &'a Refs<'a>,
    /// `within`, if given and valid (it is checked whatever the kind).
    within_ms: Option<i64>,
}

impl Rule<'_> {
    /// Reports that the rule's kind needs `field`.
    fn missing(&self, cx: &mut Compiler, field: &str) {
        let (id, kind) = (self.raw.id.get_ref(), self.raw.kind.get_ref());
        let message = format!("rule '{id}': kind {kind} needs `{field}`");
        self.at.err(cx, &self.raw.id, message);
    }

    /// A signal by id; an unknown one is reported unless it was refused.
    fn signal_ref(&self, cx: &mut Compiler, name: &Spanned<String>) -> Option<SignalIdx> {
        let found = self
            .refs
            .signals
            .iter()
            .position(|s| &*s.id == name.get_ref().as_str());
        if found.is_none() && !cx.broken_signals.contains(name.get_ref()) {
            self.at
                .err(cx, name, format!("unknown signal '{}'", name.get_ref()));
        }
        found.map(|i| i as SignalIdx)
    }

    /// A library by id; an unknown one is reported.
    fn library_ref(&self, cx: &mut Compiler, name: &Spanned<String>) -> Option<LibraryIdx> {
        let found = library_idx(self.refs.libraries, name.get_ref());
        if found.is_none() {
            self.at
                .err(cx, name, format!("unknown library '{}'", name.get_ref()));
        }
        found
    }
}

/// One rule; `None` if anything about it was refused.
fn rule_def(cx: &mut Compiler, at: &At<'_>, r: &RawRule, refs: &Refs<'_>) -> Option<RuleDef> {
    let errors_before = cx.errors.len();
    let (allowed, validate) = kind_of(cx, at, r)?;
    refuse_unused_fields(cx, at, r, allowed);
    let within_ms = match &r.within {
        Some(w) => cx.positive_duration(at, w, "within"),
        None => None,
    };
    let rule = Rule {
        at,
        raw: r,
        refs,
        within_ms,
    };
    let kind = validate(cx, &rule);
    let cooldown_ms = cooldown(cx, at, r.cooldown.as_ref());
    cx.template(at, &r.reason, "reason");
    cx.template(at, &r.recommendation, "recommendation");
    let recommendations = recommendations(cx, at, r, &refs.industries);
    if cx.errors.len() > errors_before {
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

/// The fields and validator of the rule's `kind`; an unknown kind is
/// reported (and nothing else about the rule is checked).
fn kind_of(
    cx: &mut Compiler,
    at: &At<'_>,
    r: &RawRule,
) -> Option<(&'static [&'static str], Validator)> {
    let name = r.kind.get_ref().as_str();
    match KINDS.iter().find(|(kind, _, _)| *kind == name) {
        Some((_, allowed, validate)) => Some((allowed, *validate)),
        None => {
            let known: Vec<&str> = KINDS.iter().map(|(kind, _, _)| *kind).collect();
            at.err(
                cx,
                &r.kind,
                format!("kind: '{name}' is not one of {}", known.join(", ")),
            );
            None
        }
    }
}

/// The kind-specific fields that are set, with where.
fn set_fields(r: &RawRule) -> Vec<(&'static str, usize)> {
    fn at<T>(field: &Option<Spanned<T>>) -> Option<usize> {
        field.as_ref().map(|s| s.span().start)
    }
    [
        ("score_above", at(&r.score_above)),
        ("sum_above", at(&r.sum_above)),
        ("signal", at(&r.signal)),
        ("at_least", at(&r.at_least)),
        ("within", at(&r.within)),
        ("signals", at(&r.signals)),
        ("distinct_kinds", at(&r.distinct_kinds)),
        ("start", at(&r.start)),
        ("silence", at(&r.silence)),
        ("start_signal", at(&r.start_signal)),
        ("min_events", at(&r.min_events)),
        ("attr", at(&r.attr)),
        ("above", at(&r.above)),
        ("libraries", at(&r.libraries)),
    ]
    .into_iter()
    .filter_map(|(name, offset)| offset.map(|o| (name, o)))
    .collect()
}

/// Refuses each set kind-specific field that the rule's kind does not use.
fn refuse_unused_fields(cx: &mut Compiler, at: &At<'_>, r: &RawRule, allowed: &[&str]) {
    let kind = r.kind.get_ref();
    for (name, offset) in set_fields(r) {
        if !allowed.contains(&name) {
            let message = format!(
                "{name}: not used by rules of kind {kind} (it takes {})",
                allowed.join(", ")
            );
            at.err_at(cx, offset, message);
        }
    }
}

/// `threshold`: `score_above` in [0, 100), or `sum_above`, a raw sum.
fn threshold(cx: &mut Compiler, rule: &Rule<'_>) -> Option<RuleKind> {
    match (&rule.raw.score_above, &rule.raw.sum_above) {
        (Some(_), Some(s)) => {
            rule.at
                .err(cx, s, "sum_above: give score_above or sum_above, not both");
            None
        }
        (Some(s), None) if (0.0..100.0).contains(s.get_ref()) => Some(RuleKind::Threshold {
            score: *s.get_ref(),
            on_sum: false,
        }),
        (Some(s), None) => {
            rule.at.err(cx, s, "score_above: must be in [0, 100)");
            None
        }
        (None, Some(s)) if s.get_ref().is_finite() => Some(RuleKind::Threshold {
            score: *s.get_ref(),
            on_sum: true,
        }),
        (None, Some(s)) => {
            rule.at.err(cx, s, "sum_above: must be a finite number");
            None
        }
        (None, None) => {
            rule.missing(cx, "score_above");
            None
        }
    }
}

/// `count`: a known `signal`, `at_least` occurrences (no more than are
/// kept), `within` a window.
fn count(cx: &mut Compiler, rule: &Rule<'_>) -> Option<RuleKind> {
    let r = rule.raw;
    let signal = r.signal.as_ref().and_then(|s| rule.signal_ref(cx, s));
    let at_least = match &r.at_least {
        Some(n) if *n.get_ref() >= 1 && *n.get_ref() <= MAX_OCCURRENCES as i64 => {
            Some(*n.get_ref() as u32)
        }
        Some(n) => {
            let message = format!(
                "at_least: must be between 1 and {MAX_OCCURRENCES} (occurrences kept per signal)"
            );
            rule.at.err(cx, n, message);
            None
        }
        None => {
            rule.missing(cx, "at_least");
            None
        }
    };
    if r.signal.is_none() {
        rule.missing(cx, "signal");
    }
    if r.within.is_none() {
        rule.missing(cx, "within");
    }
    Some(RuleKind::Count {
        signal: signal?,
        at_least: at_least?,
        within_ms: rule.within_ms?,
    })
}

/// `cooccurrence`: at least two known `signals`, `within` a window.
fn cooccurrence(cx: &mut Compiler, rule: &Rule<'_>) -> Option<RuleKind> {
    let r = rule.raw;
    let mut ids = Vec::new();
    match &r.signals {
        Some(list) if list.get_ref().len() >= 2 => {
            ids.extend(list.get_ref().iter().filter_map(|s| rule.signal_ref(cx, s)));
        }
        Some(list) => rule.at.err(
            cx,
            list,
            "signals: a co-occurrence needs at least two signals",
        ),
        None => rule.missing(cx, "signals"),
    }
    if r.within.is_none() {
        rule.missing(cx, "within");
    }
    Some(RuleKind::Cooccurrence {
        signals: ids,
        within_ms: rule.within_ms?,
        distinct_kinds: r.distinct_kinds.as_ref().is_some_and(|d| *d.get_ref()),
    })
}

/// `silence`: a CRM event type to `start` from and a `silence` duration.
fn silence(cx: &mut Compiler, rule: &Rule<'_>) -> Option<RuleKind> {
    let r = rule.raw;
    let start = silence_start(cx, rule);
    let min_events = match &r.min_events {
        Some(n) if (0..=i64::from(u32::MAX)).contains(n.get_ref()) => Some(*n.get_ref() as u32),
        Some(n) => {
            rule.at
                .err(cx, n, "min_events: must be a count (0 or more)");
            None
        }
        None => Some(0),
    };
    let silence_ms = match &r.silence {
        Some(s) => cx.positive_duration(rule.at, s, "silence"),
        None => {
            rule.missing(cx, "silence");
            None
        }
    };
    Some(RuleKind::Silence {
        start: start?,
        silence_ms: silence_ms?,
        min_events: min_events?,
    })
}

/// A silence's `start` (a CRM event type) or `start_signal` (a known
/// signal): exactly one of them.
fn silence_start(cx: &mut Compiler, rule: &Rule<'_>) -> Option<SilenceStart> {
    let r = rule.raw;
    match (&r.start, &r.start_signal) {
        (Some(_), Some(s)) => {
            rule.at
                .err(cx, s, "start_signal: give start or start_signal, not both");
            None
        }
        (Some(s), None) => {
            let parsed = CrmType::parse(s.get_ref());
            if parsed.is_none() {
                let message = format!("start: unknown CRM event type '{}'", s.get_ref());
                rule.at.err(cx, s, message);
            }
            parsed.map(SilenceStart::Crm)
        }
        (None, Some(s)) => rule.signal_ref(cx, s).map(SilenceStart::Signal),
        (None, None) => {
            rule.missing(cx, "start");
            None
        }
    }
}

/// `role_change`: no fields, but a decision-role library must exist.
fn role_change(cx: &mut Compiler, rule: &Rule<'_>) -> Option<RuleKind> {
    let id = &rule.refs.decision_roles_id;
    if !rule.refs.libraries.iter().any(|l| &*l.id == id) {
        rule.at.err(
            cx,
            &rule.raw.kind,
            format!(
            "kind role_change needs a decision-role library ('{id}', see [contacts] decision_roles)"
        ),
        );
    }
    Some(RuleKind::RoleChange)
}

/// `attr_keyword`: an `attr`, a finite number it must be `above`, and at
/// least one known library of `libraries`.
fn attr_keyword(cx: &mut Compiler, rule: &Rule<'_>) -> Option<RuleKind> {
    let r = rule.raw;
    let attr = r.attr.as_ref().map(|a| a.get_ref().clone());
    if attr.is_none() {
        rule.missing(cx, "attr");
    }
    let above = match &r.above {
        Some(a) if a.get_ref().is_finite() => Some(*a.get_ref()),
        Some(a) => {
            rule.at.err(cx, a, "above: must be a finite number");
            None
        }
        None => {
            rule.missing(cx, "above");
            None
        }
    };
    let mut libraries = Vec::new();
    match &r.libraries {
        Some(list) if !list.get_ref().is_empty() => {
            libraries.extend(
                list.get_ref()
                    .iter()
                    .filter_map(|n| rule.library_ref(cx, n)),
            );
        }
        Some(list) => rule
            .at
            .err(cx, list, "libraries: name at least one library"),
        None => rule.missing(cx, "libraries"),
    }
    Some(RuleKind::AttrKeyword {
        attr: attr?,
        above: above?,
        libraries,
    })
}

/// `cooldown`: a duration, 0 when not given (or refused).
fn cooldown(cx: &mut Compiler, at: &At<'_>, cooldown: Option<&Spanned<String>>) -> i64 {
    let Some(c) = cooldown else {
        return 0;
    };
    match parse_duration_ms(c.get_ref()) {
        Ok(ms) => ms,
        Err(e) => {
            let message = format!("cooldown: '{}' is not a duration ({e})", c.get_ref());
            at.err(cx, c, message);
            0
        }
    }
}

/// `recommendations`: per known industry, a template.
fn recommendations(
    cx: &mut Compiler,
    at: &At<'_>,
    r: &RawRule,
    industries: &[Arc<str>],
) -> Vec<(Arc<str>, String)> {
    let mut recommendations = Vec::new();
    let Some(map) = &r.recommendations else {
        return recommendations;
    };
    for (industry, text) in map.get_ref() {
        if !industries.iter().any(|i| &**i == industry.as_str()) {
            at.err(cx, text, format!("recommendations: unknown industry '{industry}' (industries come from libraries with `industry = ...`)"));
        }
        cx.template(at, text, "recommendations");
        recommendations.push((Arc::from(industry.as_str()), text.get_ref().clone()));
    }
    recommendations
}

#[cfg(test)]
mod tests {
    use super::super::context::testing::{assert_errors, compiled, errors, line, Case};
    use super::super::context::Compiler;
    use super::check_limits;
    use crate::signal_defs::RuleDef;

    /// Two libraries (`decision_roles`, and `shops` of industry retail) and
    /// two signals (`a` on web events, `b` on e-mails) for rules to name.
    const BASE: &str = r#"[[library]]
id = "decision_roles"
phrases = ["ceo"]
[[library]]
id = "shops"
industry = "retail"
phrases = ["omnichannel"]
[[signal]]
id = "a"
weight = 1.0
half_life = "1d"
when = { kinds = ["web"] }
[[signal]]
id = "b"
weight = 1.0
half_life = "1d"
when = { kinds = ["email"] }
"#;

    /// [`BASE`] and a rule `r` with the common fields, then `body`.
    fn doc(body: &str) -> String {
        format!(
            "{BASE}\n[[rule]]\nid = \"r\"\nrecommendation = \"call {{contact}}\"\n\
             reason = \"{{account}} is hot\"\n{body}\n"
        )
    }

    /// The one rule of [`doc`]`(body)`, which must compile.
    fn check(body: &str) -> RuleDef {
        let set = compiled(&doc(body));
        assert_eq!(set.rules.len(), 1);
        set.rules[0].clone()
    }

    const KNOWN: &str = "(known: account, contact, contact_title, industry, count, within, \
                         score, keywords, signals, topics, silence, attr, value, old_title, new_title)";

    #[test]
    fn each_kind_compiles_to_its_values() {
        let cases: &[(&str, &str)] = &[
            ("kind = \"threshold\"\nscore_above = 70.0", "Threshold { score: 70.0, on_sum: false }"),
            ("kind = \"threshold\"\nscore_above = 0.0", "Threshold { score: 0.0, on_sum: false }"),
            ("kind = \"threshold\"\nsum_above = 10.0", "Threshold { score: 10.0, on_sum: true }"),
            (
                "kind = \"count\"\nsignal = \"b\"\nat_least = 64\nwithin = \"2h\"",
                "Count { signal: 1, at_least: 64, within_ms: 7200000 }",
            ),
            (
                "kind = \"cooccurrence\"\nsignals = [\"b\", \"a\"]\nwithin = \"1d\"\ndistinct_kinds = true",
                "Cooccurrence { signals: [1, 0], within_ms: 86400000, distinct_kinds: true }",
            ),
            (
                "kind = \"cooccurrence\"\nsignals = [\"a\", \"b\", \"a\"]\nwithin = \"1m\"",
                "Cooccurrence { signals: [0, 1, 0], within_ms: 60000, distinct_kinds: false }",
            ),
            (
                "kind = \"silence\"\nstart = \"first_touch\"\nsilence = \"48h\"",
                "Silence { start: Crm(FirstTouch), silence_ms: 172800000, min_events: 0 }",
            ),
            ("kind = \"role_change\"", "RoleChange"),
            (
                "kind = \"attr_keyword\"\nattr = \"video_views\"\nabove = 5e5\nlibraries = [\"shops\", \"decision_roles\"]",
                "AttrKeyword { attr: \"video_views\", above: 500000.0, libraries: [1, 0] }",
            ),
        ];
        for (body, kind) in cases {
            let rule = check(body);
            assert_eq!(format!("{:?}", rule.kind), *kind, "{body}");
            assert_eq!(rule.cooldown_ms, 0, "{body}");
        }
    }

    #[test]
    fn the_common_fields_compile_to_their_values() {
        let rule = check(
            "kind = \"role_change\"\ndescription = \"roles\"\ncooldown = \"7d\"\n\
             [rule.recommendations]\nretail = \"visit {account}'s stores\"",
        );
        assert_eq!(&*rule.id, "r");
        assert_eq!(rule.description, "roles");
        assert_eq!(rule.cooldown_ms, 7 * 86_400_000);
        assert_eq!(rule.recommendation, "call {contact}");
        assert_eq!(rule.reason, "{account} is hot");
        let recommendations: Vec<(&str, &str)> = rule
            .recommendations
            .iter()
            .map(|(i, t)| (&**i, t.as_str()))
            .collect();
        assert_eq!(recommendations, [("retail", "visit {account}'s stores")]);
        assert_eq!(check("kind = \"role_change\"").description, "");
    }

    #[test]
    fn signals_keep_occurrences_as_long_as_their_rules_look_back() {
        let rule = |id: &str, body: &str| {
            format!("[[rule]]\nid = \"{id}\"\n{body}\nrecommendation = \"x\"\nreason = \"y\"\n")
        };
        let text = [
            BASE,
            "[[signal]]\nid = \"c\"\nweight = 1.0\nhalf_life = \"1d\"\nwhen = { kinds = [\"crm\"] }\n",
            &rule("r1", "kind = \"count\"\nsignal = \"a\"\nat_least = 2\nwithin = \"3d\""),
            &rule("r2", "kind = \"cooccurrence\"\nsignals = [\"a\", \"b\"]\nwithin = \"5d\""),
            &rule("r3", "kind = \"count\"\nsignal = \"b\"\nat_least = 2\nwithin = \"1h\""),
            &rule("r4", "kind = \"count\"\nsignal = \"a\"\nat_least = 2\nwithin = \"7d\""),
            &rule("r5", "kind = \"silence\"\nstart = \"first_touch\"\nsilence = \"30d\""),
        ]
        .concat();
        let set = compiled(&text);
        let retain: Vec<i64> = set.signals.iter().map(|s| s.retain_ms).collect();
        assert_eq!(retain, [7 * 86_400_000, 5 * 86_400_000, 0]);
    }

    /// The line of the rule's id, where missing fields are reported.
    const R: &str = "id = \"r\"";

    /// Bad kind-specific fields: (case, rule body, problems as (needle, message start)).
    const KIND_ERRORS: &[Case] = &[
        ("threshold at 100", "kind = \"threshold\"\nscore_above = 100.0", &[
            ("score_above", "score_above: must be in [0, 100)"),
        ]),
        ("threshold below 0", "kind = \"threshold\"\nscore_above = -0.5", &[
            ("score_above", "score_above: must be in [0, 100)"),
        ]),
        ("threshold without score_above", "kind = \"threshold\"", &[
            (R, "rule 'r': kind threshold needs `score_above`"),
        ]),
        ("count with nothing, in check order", "kind = \"count\"", &[
            (R, "rule 'r': kind count needs `at_least`"),
            (R, "rule 'r': kind count needs `signal`"),
            (R, "rule 'r': kind count needs `within`"),
        ]),
        (
            "count of an unknown signal, too often, too briefly",
            "kind = \"count\"\nwithin = \"0s\"\nat_least = 65\nsignal = \"ghost\"",
            &[
                ("within", "within: must be positive, got '0s'"),
                ("signal =", "unknown signal 'ghost'"),
                ("at_least", "at_least: must be between 1 and 64 (occurrences kept per signal)"),
            ],
        ),
        ("count at least zero", "kind = \"count\"\nsignal = \"a\"\nat_least = 0\nwithin = \"1d\"", &[
            ("at_least", "at_least: must be between 1 and 64 (occurrences kept per signal)"),
        ]),
        ("cooccurrence of one", "kind = \"cooccurrence\"\nsignals = [\"a\"]\nwithin = \"1d\"", &[
            ("signals", "signals: a co-occurrence needs at least two signals"),
        ]),
        (
            "cooccurrence of unknown signals",
            "kind = \"cooccurrence\"\nsignals = [\n\"a\",\n\"x\",\n\"y\",\n]\nwithin = \"1d\"",
            &[("\"x\"", "unknown signal 'x'"), ("\"y\"", "unknown signal 'y'")],
        ),
        ("cooccurrence with nothing", "kind = \"cooccurrence\"", &[
            (R, "rule 'r': kind cooccurrence needs `signals`"),
            (R, "rule 'r': kind cooccurrence needs `within`"),
        ]),
        ("cooccurrence with a bad window", "kind = \"cooccurrence\"\nsignals = [\"a\", \"b\"]\nwithin = \"soon\"", &[
            ("within", "within: 'soon' is not a duration like 14d, 48h, 3m ("),
        ]),
        ("silence from an unknown event", "kind = \"silence\"\nstart = \"hello\"\nsilence = \"-2d\"", &[
            ("start", "start: unknown CRM event type 'hello'"),
            ("silence =", "silence: must be positive, got '-2d'"),
        ]),
        ("silence with nothing", "kind = \"silence\"", &[
            (R, "rule 'r': kind silence needs `start`"),
            (R, "rule 'r': kind silence needs `silence`"),
        ]),
        ("attr_keyword with nothing", "kind = \"attr_keyword\"", &[
            (R, "rule 'r': kind attr_keyword needs `attr`"),
            (R, "rule 'r': kind attr_keyword needs `above`"),
            (R, "rule 'r': kind attr_keyword needs `libraries`"),
        ]),
        (
            "attr_keyword above nan, of unknown libraries",
            "kind = \"attr_keyword\"\nattr = \"v\"\nabove = nan\nlibraries = [\n\"shops\",\n\"nope\",\n]",
            &[
                ("above", "above: must be a finite number"),
                ("\"nope\"", "unknown library 'nope'"),
            ],
        ),
        ("attr_keyword of no library", "kind = \"attr_keyword\"\nattr = \"v\"\nabove = 1.0\nlibraries = []", &[
            ("libraries", "libraries: name at least one library"),
        ]),
    ];

    #[test]
    fn bad_kind_fields_are_refused_with_their_line() {
        let cases = KIND_ERRORS;
        for (name, body, expected) in cases {
            assert_errors(name, &doc(body), expected);
        }
    }

    /// Bad fields every rule has: (case, rule body, problems as (needle, message start)).
    const COMMON_ERRORS: &[Case] = &[
        (
            "unknown kind, and nothing else is checked",
            "kind = \"sometimes\"\nsignal = \"ghost\"\ncooldown = \"x\"",
            &[(
                "sometimes",
                "kind: 'sometimes' is not one of threshold, count, cooccurrence, silence, role_change, attr_keyword",
            )],
        ),
        (
            "fields of other kinds, in field order, and `within` still checked",
            "kind = \"threshold\"\nscore_above = 1.0\nlibraries = [\"shops\"]\nwithin = \"-1d\"\nsignal = \"a\"",
            &[
                ("signal =", "signal: not used by rules of kind threshold (it takes score_above, sum_above)"),
                ("within", "within: not used by rules of kind threshold (it takes score_above, sum_above)"),
                ("libraries", "libraries: not used by rules of kind threshold (it takes score_above, sum_above)"),
                ("within", "within: must be positive, got '-1d'"),
            ],
        ),
        (
            "a field of a kind that takes none",
            "kind = \"role_change\"\ndistinct_kinds = false",
            &[("distinct_kinds", "distinct_kinds: not used by rules of kind role_change (it takes )")],
        ),
        (
            "every kind-specific field on a count",
            "kind = \"count\"\nsignal = \"a\"\nat_least = 1\nwithin = \"1d\"\nscore_above = 1.0\n\
             signals = [\"a\", \"b\"]\ndistinct_kinds = true\nstart = \"first_touch\"\nsilence = \"1d\"\n\
             attr = \"v\"\nabove = 2.0",
            &[
                ("score_above", "score_above: not used by rules of kind count (it takes signal, at_least, within)"),
                ("signals", "signals: not used by rules of kind count (it takes signal, at_least, within)"),
                ("distinct_kinds", "distinct_kinds: not used by rules of kind count"),
                ("start", "start: not used by rules of kind count"),
                ("silence", "silence: not used by rules of kind count"),
                ("attr", "attr: not used by rules of kind count"),
                ("above = 2.0", "above: not used by rules of kind count"),
            ],
        ),
        (
            "a bad cooldown",
            "kind = \"role_change\"\ncooldown = \"soon\"",
            &[("cooldown", "cooldown: 'soon' is not a duration (")],
        ),
        (
            "templates, in reason, recommendation, recommendations order",
            "kind = \"role_change\"\n[rule.recommendations]\nretail = \"{cuont} {x\"\nspace = \"{old_title}\"",
            &[
                ("retail =", "recommendations: unknown placeholder {cuont} (known: account, contact, "),
                ("retail =", "recommendations: unclosed '{'"),
                ("space", "recommendations: unknown industry 'space' (industries come from libraries with `industry = ...`)"),
            ],
        ),
    ];

    #[test]
    fn bad_common_fields_are_refused_with_their_line() {
        let cases = COMMON_ERRORS;
        for (name, body, expected) in cases {
            assert_errors(name, &doc(body), expected);
        }
    }

    #[test]
    fn common_field_errors_follow_the_kind_s_in_field_order() {
        let text = format!(
            "{BASE}[[rule]]\nid = \"r\"\nkind = \"threshold\"\nscore_above = 200.0\n\
             cooldown = \"-\"\nrecommendation = \"call {{contact\"\nreason = \"{{a}} and {{b}}\"\n\
             [rule.recommendations]\nretail = \"{{c}}\"\n"
        );
        let at = |needle: &str| line(&text, needle);
        let known =
            |name: &str, field: &str| format!("{field}: unknown placeholder {{{name}}} {KNOWN}");
        let got = errors(&text);
        assert_eq!(got.len(), 6, "{got:#?}");
        assert_eq!(
            got[0],
            (at("score_above"), "score_above: must be in [0, 100)".into())
        );
        assert_eq!(got[1].0, at("cooldown"));
        assert!(
            got[1].1.starts_with("cooldown: '-' is not a duration ("),
            "{got:#?}"
        );
        assert_eq!(
            got[2..],
            [
                (at("reason"), known("a", "reason")),
                (at("reason"), known("b", "reason")),
                (
                    at("recommendation ="),
                    "recommendation: unclosed '{'".into()
                ),
                (at("retail ="), known("c", "recommendations")),
            ]
        );
    }

    #[test]
    fn rules_need_what_they_name() {
        // Without a decision-role library, role_change is refused at its kind.
        let text = "[[rule]]\nid = \"r\"\nkind = \"role_change\"\nrecommendation = \"x\"\nreason = \"y\"\n";
        let message = "kind role_change needs a decision-role library ('decision_roles', see [contacts] decision_roles)";
        assert_eq!(errors(text), [(3, message.to_string())]);
        // [contacts] names the library; one that names none keeps the default id.
        let named = format!(
            "[contacts]\ndecision_roles = \"shops\"\n{}",
            doc("kind = \"role_change\"")
        );
        assert_eq!(compiled(&named).decision_roles, Some(1));
        let without = format!("[contacts]\n{}", doc("kind = \"role_change\""));
        let set = compiled(&without);
        assert_eq!((set.decision_roles, set.rules.len()), (None, 1));
        let elsewhere = "[contacts]\ndecision_roles = \"bosses\"\n[[library]]\nid = \"bosses\"\nphrases = [\"ceo\"]\n\
                         [[rule]]\nid = \"r\"\nkind = \"role_change\"\nrecommendation = \"x\"\nreason = \"y\"\n";
        assert_eq!(compiled(elsewhere).rules.len(), 1);
    }

    #[test]
    fn a_rule_naming_a_refused_signal_adds_no_error() {
        let text = "[[signal]]\nid = \"c\"\nweight = nan\nhalf_life = \"1d\"\nwhen = { kinds = [\"web\"] }\n\
                    [[rule]]\nid = \"r\"\nkind = \"cooccurrence\"\nsignals = [\"c\", \"d\"]\nwithin = \"1d\"\n\
                    recommendation = \"x\"\nreason = \"y\"\n";
        assert_errors(
            "refused signal",
            text,
            &[
                ("weight", "weight: must be a finite number"),
                ("\"d\"", "unknown signal 'd'"),
            ],
        );
    }

    #[test]
    fn bad_rule_ids_are_refused() {
        let rule = |id: &str| {
            format!("[[rule]]\nid = \"{id}\"\nkind = \"role_change\"\nrecommendation = \"x\"\nreason = \"y\"\n")
        };
        let text = [BASE, &rule("ok"), &rule("no/slash"), &rule("ok")].concat();
        let n = BASE.lines().count();
        let message =
            "rule id 'no/slash': use letters, digits, '_' and '-' (ids become NATS subject tokens)";
        assert_eq!(
            errors(&text),
            [
                (n + 7, message.to_string()),
                (
                    n + 12,
                    format!("rule 'ok' is already defined at x.toml:{}", n + 2)
                ),
            ]
        );
    }

    #[test]
    fn more_than_65535_signals_or_rules_are_refused() {
        for (signals, rules, refused) in [
            (65_535, 65_535, false),
            (65_536, 0, true),
            (0, 65_536, true),
        ] {
            let mut cx = Compiler::default();
            check_limits(&mut cx, signals, rules);
            let got: Vec<String> = cx.errors.iter().map(|e| e.to_string()).collect();
            let want: &[&str] = if refused {
                &[":0: too many signals or rules (at most 65535 each)"]
            } else {
                &[]
            };
            assert_eq!(got, want, "{signals} signals, {rules} rules");
        }
    }
}
