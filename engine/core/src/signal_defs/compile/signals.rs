//! Signals: `[[signal]]` tables with their weight, half-life and cap, and
//! the `when` condition an event must meet, checked field by field.

use std::collections::HashMap;

use regex::{Regex, RegexSet};
use toml::Spanned;

use super::context::{At, Compiler, Files};
use super::libraries::inline_library;
use crate::event::{CrmType, Direction, Kind, SpeakerRole, WebAction};
use crate::extract::matcher::{LibraryIdx, PhraseMatcherBuilder};
use crate::signal_defs::raw::{RawAttrTest, RawCondition, RawSignal};
use crate::signal_defs::{
    action_bit, crm_bit, kind_bit, AttrTest, Condition, FieldSet, Library, Mask, SignalDef,
    SignalIdx,
};

/// `cap` when not given (or refused).
const DEFAULT_CAP: f64 = 3.0;

/// The `[[signal]]` tables of all files, in order. A signal refused for its
/// own errors is left out and remembered in `cx.broken_signals`, so rules
/// naming it add no more errors; inline phrases become libraries.
pub(super) fn signals(
    cx: &mut Compiler,
    files: &Files<'_>,
    libraries: &mut Vec<Library>,
    builder: &mut PhraseMatcherBuilder<'_>,
) -> Vec<SignalDef> {
    let mut signal_where: HashMap<String, String> = HashMap::new();
    let mut signals: Vec<SignalDef> = Vec::new();
    for (source, raw) in files {
        let at = At { source };
        for signal in &raw.signal {
            let s = signal.get_ref();
            if !cx.claim_id(&at, "signal", &s.id, &mut signal_where) {
                continue;
            }
            match signal_def(cx, &at, s, libraries, builder) {
                Some(def) => signals.push(def),
                None => cx.broken_signals.push(s.id.get_ref().clone()),
            }
        }
    }
    signals
}

/// The signal ids of a file refused for its shape, as far as they can be
/// read: its signals are still known by id, so rules naming them do not add
/// a cascade of errors.
pub(super) fn declared_ids(text: &str) -> Vec<String> {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return Vec::new();
    };
    let Some(toml::Value::Array(signals)) = table.get("signal") else {
        return Vec::new();
    };
    signals
        .iter()
        .filter_map(|signal| signal.get("id").and_then(|v| v.as_str()))
        .map(str::to_string)
        .collect()
}

/// One signal; `None` if any of its fields was refused.
fn signal_def(
    cx: &mut Compiler,
    at: &At<'_>,
    s: &RawSignal,
    libraries: &mut Vec<Library>,
    builder: &mut PhraseMatcherBuilder<'_>,
) -> Option<SignalDef> {
    let errors_before = cx.errors.len();
    let id = s.id.get_ref();
    let weight = *s.weight.get_ref();
    if !weight.is_finite() {
        at.err(cx, &s.weight, "weight: must be a finite number");
    }
    let half_life_ms = cx
        .positive_duration(at, &s.half_life, "half_life")
        .unwrap_or(1);
    let cap = cap(cx, at, &s.cap);
    let per_phrase = per_phrase(cx, at, &s.count);
    let when = condition(cx, at, id, s.when.get_ref(), libraries, builder);
    if per_phrase && when.libraries.is_empty() {
        if let Some(count) = &s.count {
            at.err(
                cx,
                count,
                "count: \"phrase\" needs phrases (libraries or phrases in when)",
            );
        }
    }
    if cx.errors.len() > errors_before {
        return None;
    }
    Some(SignalDef {
        id: id.as_str().into(),
        description: s.description.clone().unwrap_or_default(),
        weight,
        half_life_ms: half_life_ms as f64,
        cap,
        when,
        per_phrase,
        retain_ms: 0,
    })
}

/// `count`: `event` (the default) or `phrase`.
fn per_phrase(cx: &mut Compiler, at: &At<'_>, count: &Option<Spanned<String>>) -> bool {
    match count.as_ref().map(|c| (c, c.get_ref().as_str())) {
        None | Some((_, "event")) => false,
        Some((_, "phrase")) => true,
        Some((c, other)) => {
            at.err(
                cx,
                c,
                format!("count: '{other}' is not one of event, phrase"),
            );
            false
        }
    }
}

/// `cap`: a positive number, [`DEFAULT_CAP`] when not given.
fn cap(cx: &mut Compiler, at: &At<'_>, cap: &Option<Spanned<f64>>) -> f64 {
    match cap {
        Some(c) if !(c.get_ref().is_finite() && *c.get_ref() > 0.0) => {
            at.err(cx, c, "cap: must be a positive number");
            DEFAULT_CAP
        }
        Some(c) => *c.get_ref(),
        None => DEFAULT_CAP,
    }
}

/// A signal's `when`, each field checked on its own (in the order of
/// [`Condition`]'s fields), so that one pass reports all their problems.
fn condition(
    cx: &mut Compiler,
    at: &At<'_>,
    signal_id: &str,
    c: &RawCondition,
    libraries: &mut Vec<Library>,
    builder: &mut PhraseMatcherBuilder<'_>,
) -> Condition {
    let when = When {
        at,
        kinds: kinds(cx, at, &c.kinds),
    };
    let url = when.regex(cx, "url", c.url.as_ref());
    let title = when.regex(cx, "title", c.title.as_ref());
    let actions = when.actions(cx, c.actions.as_deref());
    let min_dwell_ms = when.min_dwell(cx, c.min_dwell.as_ref());
    let direction = when.direction(cx, c.direction.as_ref());
    let speaker_role = when.speaker_role(cx, c.speaker_role.as_ref());
    let crm_types = when.crm_types(cx, c.crm_types.as_deref());
    let library_ids = phrase_libraries(cx, at, signal_id, c, libraries, builder);
    let fields = fields(cx, at, c.fields.as_deref(), !library_ids.is_empty());
    let contact_title = cx.library_refs(
        at,
        "contact_title",
        c.contact_title.iter().flatten(),
        libraries,
    );
    let attrs = c
        .attrs
        .iter()
        .flatten()
        .filter_map(|t| attr_test(cx, at, t))
        .collect();
    Condition {
        kinds: when.kinds,
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
    }
}

/// `kinds`: at least one event kind.
fn kinds(cx: &mut Compiler, at: &At<'_>, list: &Spanned<Vec<Spanned<String>>>) -> Mask {
    let mut kinds = Mask::default();
    for k in list.get_ref() {
        match Kind::parse(k.get_ref()) {
            Some(kind) => kinds = kinds.with(kind_bit(kind)),
            None => at.err(
                cx,
                k,
                format!(
                    "kinds: '{}' is not one of web, email, transcript, crm",
                    k.get_ref()
                ),
            ),
        }
    }
    if list.get_ref().is_empty() {
        at.err(cx, list, "kinds: name at least one event kind");
    }
    kinds
}

/// A `when` being checked: where it is, and the event kinds it names (the
/// fields about one kind of event are refused when `kinds` leaves it out).
struct When<'a, 's> {
    at: &'a At<'s>,
    kinds: Mask,
}

impl When<'_, '_> {
    /// Refuses `field`, about events of `kind`, if `kinds` does not include it.
    fn only(&self, cx: &mut Compiler, field: &str, kind: Kind, span: &Spanned<String>) {
        if !self.kinds.has(kind_bit(kind)) {
            self.at.err(
                cx,
                span,
                format!(
                    "{field}: applies to {} events, which `kinds` does not include",
                    kind.as_str()
                ),
            );
        }
    }

    /// `url` or `title`: a regex on web events.
    fn regex(
        &self,
        cx: &mut Compiler,
        field: &str,
        pattern: Option<&Spanned<String>>,
    ) -> Option<Regex> {
        let pattern = pattern?;
        self.only(cx, field, Kind::Web, pattern);
        cx.regex(self.at, pattern, field)
    }

    /// `actions`: web actions.
    fn actions(&self, cx: &mut Compiler, list: Option<&[Spanned<String>]>) -> Option<Mask> {
        let mut mask = Mask::default();
        for a in list? {
            self.only(cx, "actions", Kind::Web, a);
            match WebAction::parse(a.get_ref()) {
                Some(action) => mask = mask.with(action_bit(action)),
                None => self.at.err(
                    cx,
                    a,
                    format!(
                        "actions: '{}' is not one of view, download, register, qa, search, form",
                        a.get_ref()
                    ),
                ),
            }
        }
        Some(mask)
    }

    /// `min_dwell`: a positive duration, on web events.
    fn min_dwell(&self, cx: &mut Compiler, dwell: Option<&Spanned<String>>) -> Option<u64> {
        let dwell = dwell?;
        self.only(cx, "min_dwell", Kind::Web, dwell);
        cx.positive_duration(self.at, dwell, "min_dwell")
            .map(|ms| ms as u64)
    }

    /// `direction`: of e-mails.
    fn direction(&self, cx: &mut Compiler, value: Option<&Spanned<String>>) -> Option<Direction> {
        self.one_of(
            cx,
            value,
            ("direction", Kind::Email),
            Direction::parse,
            "inbound, outbound",
        )
    }

    /// `speaker_role`: of transcripts.
    fn speaker_role(
        &self,
        cx: &mut Compiler,
        value: Option<&Spanned<String>>,
    ) -> Option<SpeakerRole> {
        self.one_of(
            cx,
            value,
            ("speaker_role", Kind::Transcript),
            SpeakerRole::parse,
            "customer, rep",
        )
    }

    /// An enumerated field that only `kind` has: parsed, or an error listing
    /// what it may be.
    fn one_of<T>(
        &self,
        cx: &mut Compiler,
        value: Option<&Spanned<String>>,
        (field, kind): (&str, Kind),
        parse: impl Fn(&str) -> Option<T>,
        allowed: &str,
    ) -> Option<T> {
        let v = value?;
        self.only(cx, field, kind, v);
        let parsed = parse(v.get_ref());
        if parsed.is_none() {
            let message = format!("{field}: '{}' is not one of {allowed}", v.get_ref());
            self.at.err(cx, v, message);
        }
        parsed
    }

    /// `crm_types`: CRM event types.
    fn crm_types(&self, cx: &mut Compiler, list: Option<&[Spanned<String>]>) -> Option<Mask> {
        let mut mask = Mask::default();
        for t in list? {
            self.only(cx, "crm_types", Kind::Crm, t);
            match CrmType::parse(t.get_ref()) {
                Some(crm) => mask = mask.with(crm_bit(crm)),
                None => self.at.err(
                    cx,
                    t,
                    format!("crm_types: unknown CRM event type '{}'", t.get_ref()),
                ),
            }
        }
        Some(mask)
    }
}

/// The libraries whose phrases the condition looks for: those of
/// `libraries`, then the inline `phrases` as a library of their own.
fn phrase_libraries(
    cx: &mut Compiler,
    at: &At<'_>,
    signal_id: &str,
    c: &RawCondition,
    libraries: &mut Vec<Library>,
    builder: &mut PhraseMatcherBuilder<'_>,
) -> Vec<LibraryIdx> {
    let mut ids = cx.library_refs(at, "libraries", c.libraries.iter().flatten(), libraries);
    if let Some(phrases) = &c.phrases {
        ids.push(inline_library(
            cx, at, signal_id, phrases, libraries, builder,
        ));
    }
    ids
}

/// `fields`: where phrases are looked for, all of them when not given; only
/// meaningful when the condition has phrases.
fn fields(
    cx: &mut Compiler,
    at: &At<'_>,
    list: Option<&[Spanned<String>]>,
    has_phrases: bool,
) -> FieldSet {
    let Some(list) = list else {
        return FieldSet::ALL;
    };
    let mut fields = FieldSet::default();
    for f in list {
        match FieldSet::NAMES
            .iter()
            .find(|(n, _)| *n == f.get_ref().as_str())
        {
            Some((_, bit)) => fields.0 |= bit.0,
            None => at.err(
                cx,
                f,
                format!(
                    "fields: '{}' is not one of title, text, subject, body",
                    f.get_ref()
                ),
            ),
        }
    }
    if !has_phrases {
        if let Some(first) = list.first() {
            at.err(
                cx,
                first,
                "fields: only meaningful with libraries or phrases",
            );
        }
    }
    fields
}

/// One of `attrs`: a named attribute with a min, a max or both, in order.
fn attr_test(cx: &mut Compiler, at: &At<'_>, test: &Spanned<RawAttrTest>) -> Option<AttrTest> {
    let t = test.get_ref();
    let name = t.name.get_ref();
    if name.is_empty() || name.len() > 64 {
        at.err(cx, &t.name, "attrs: attribute names are 1-64 bytes");
        return None;
    }
    let min = attr_bound(cx, at, name, &t.min, "min", f64::NEG_INFINITY)?;
    let max = attr_bound(cx, at, name, &t.max, "max", f64::INFINITY)?;
    if t.min.is_none() && t.max.is_none() {
        at.err(
            cx,
            test,
            format!("attrs: give '{name}' a min, a max or both"),
        );
        return None;
    }
    if min > max {
        at.err(
            cx,
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

/// The `which` bound of attribute `name`: a finite number, `open` when not
/// given; `None` if refused.
fn attr_bound(
    cx: &mut Compiler,
    at: &At<'_>,
    name: &str,
    bound: &Option<Spanned<f64>>,
    which: &str,
    open: f64,
) -> Option<f64> {
    match bound {
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
    }
}

/// Every signal's `url` regex in one set, with the signal of each pattern.
pub(super) fn url_index(signals: &[SignalDef]) -> (RegexSet, Vec<SignalIdx>) {
    let url_signals: Vec<(SignalIdx, &str)> = signals
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.when.url.as_ref().map(|re| (i as SignalIdx, re.as_str())))
        .collect();
    let url_set = RegexSet::new(url_signals.iter().map(|(_, re)| *re))
        .expect("each pattern compiled on its own");
    (url_set, url_signals.iter().map(|(i, _)| *i).collect())
}

#[cfg(test)]
mod tests {
    use super::super::context::testing::{assert_errors, compiled, errors, Case, Problems};
    use crate::event::{CrmType, Direction, Kind, SpeakerRole, WebAction};
    use crate::signal_defs::{action_bit, crm_bit, kind_bit, AttrTest, FieldSet, Mask, SignalDef};

    /// A file with two libraries, `lib` and `titles`, and one signal `s`
    /// whose `[signal.when]` table is `when` (the signal's own fields are
    /// given by `head`, after its id).
    fn doc(head: &str, when: &str) -> String {
        format!(
            "[[library]]\nid = \"lib\"\nphrases = [\"pricing\"]\n\
             [[library]]\nid = \"titles\"\nphrases = [\"ceo\"]\n\n\
             [[signal]]\nid = \"s\"\n{head}\n[signal.when]\n{when}\n"
        )
    }

    const HEAD: &str = "weight = 2.5\nhalf_life = \"2d\"";

    /// The one signal of a file that compiles.
    fn check(head: &str, when: &str) -> SignalDef {
        let set = compiled(&doc(head, when));
        assert_eq!(set.signals.len(), 1);
        set.signals[0].clone()
    }

    fn kinds(kinds: &[Kind]) -> Mask {
        kinds
            .iter()
            .fold(Mask::default(), |m, k| m.with(kind_bit(*k)))
    }

    #[test]
    fn a_signal_compiles_to_its_values() {
        let s = check(
            "description = \"asks\"\nweight = 2.5\nhalf_life = \"2d\"\ncap = 1.5",
            "kinds = [\"web\"]",
        );
        assert_eq!(&*s.id, "s");
        assert_eq!(s.description, "asks");
        assert_eq!(s.weight, 2.5);
        assert_eq!(s.half_life_ms, 2.0 * 86_400_000.0);
        assert_eq!(s.cap, 1.5);
        assert_eq!(s.retain_ms, 0);
        let s = check("weight = -1.0\nhalf_life = \"90m\"", "kinds = [\"web\"]");
        assert_eq!((s.weight, s.half_life_ms, s.cap), (-1.0, 5_400_000.0, 3.0));
        assert_eq!(s.description, "");
    }

    #[test]
    fn a_condition_compiles_field_by_field() {
        let web = check(
            HEAD,
            "kinds = [\"web\", \"email\"]\nurl = '(?i)pricing'\ntitle = 'Plans'\n\
             actions = [\"view\", \"download\"]\nmin_dwell = \"3m\"\ndirection = \"outbound\"\n\
             libraries = [\"lib\"]\nfields = [\"title\", \"body\"]\ncontact_title = [\"titles\"]\n\
             attrs = [{ name = \"age\", min = 30, max = 49.5 }, { name = \"views\", min = 1e6 }, { name = \"x\", max = -2 }]",
        );
        let w = &web.when;
        assert_eq!(w.kinds, kinds(&[Kind::Web, Kind::Email]));
        assert_eq!(w.url.as_ref().map(|r| r.as_str()), Some("(?i)pricing"));
        assert_eq!(w.title.as_ref().map(|r| r.as_str()), Some("Plans"));
        let actions = Mask::default()
            .with(action_bit(WebAction::View))
            .with(action_bit(WebAction::Download));
        assert_eq!(w.actions, Some(actions));
        assert_eq!(w.min_dwell_ms, Some(180_000));
        assert_eq!(w.direction, Some(Direction::Outbound));
        assert_eq!(w.speaker_role, None);
        assert_eq!(w.crm_types, None);
        assert_eq!(w.libraries, [0]);
        assert_eq!(w.fields, FieldSet(FieldSet::TITLE.0 | FieldSet::BODY.0));
        assert_eq!(w.contact_title, [1]);
        let attr = |name: &str, min: f64, max: f64| AttrTest {
            name: name.into(),
            min,
            max,
        };
        assert_eq!(
            w.attrs,
            [
                attr("age", 30.0, 49.5),
                attr("views", 1e6, f64::INFINITY),
                attr("x", f64::NEG_INFINITY, -2.0),
            ]
        );

        let other = check(
            HEAD,
            "kinds = [\"transcript\", \"crm\"]\nspeaker_role = \"rep\"\n\
             crm_types = [\"deal_won\", \"call_logged\"]\nphrases = [\"send a quote\"]",
        );
        let o = &other.when;
        assert_eq!(o.kinds, kinds(&[Kind::Transcript, Kind::Crm]));
        assert_eq!(o.speaker_role, Some(SpeakerRole::Rep));
        let crm = Mask::default()
            .with(crm_bit(CrmType::DealWon))
            .with(crm_bit(CrmType::CallLogged));
        assert_eq!(o.crm_types, Some(crm));
        // The inline phrases are library 2, after `lib` and `titles`.
        assert_eq!(o.libraries, [2]);
        assert_eq!(o.fields, FieldSet::ALL);
        assert!(o.url.is_none() && o.title.is_none() && o.actions.is_none());
        assert!(o.min_dwell_ms.is_none() && o.direction.is_none());
        assert!(o.contact_title.is_empty() && o.attrs.is_empty());
    }

    #[test]
    fn url_patterns_are_indexed_by_signal() {
        let signal = |id: &str, when: &str| {
            format!("[[signal]]\nid = \"{id}\"\nweight = 1.0\nhalf_life = \"1d\"\nwhen = {{ {when} }}\n")
        };
        let text = [
            signal("a", "kinds = [\"web\"], url = 'a'"),
            signal("b", "kinds = [\"crm\"]"),
            signal("c", "kinds = [\"web\"], url = 'c+'"),
        ]
        .concat();
        let set = compiled(&text);
        assert_eq!(set.url_set_signals, [0, 2]);
        assert_eq!(set.url_set.patterns(), ["a", "c+"]);
        assert!(compiled(&signal("a", "kinds = [\"web\"]"))
            .url_set
            .is_empty());
    }

    /// Bad signal fields: (case, fields, `when`, problems as (needle, message start)).
    const SIGNAL_ERRORS: &[(&str, &str, &str, Problems)] = &[
        (
            "weight not finite",
            "weight = inf\nhalf_life = \"1d\"",
            "kinds = [\"web\"]",
            &[("weight", "weight: must be a finite number")],
        ),
        (
            "negative half-life",
            "weight = 1.0\nhalf_life = \" -7d\"",
            "kinds = [\"web\"]",
            &[("half_life", "half_life: must be positive, got '-7d'")],
        ),
        (
            "zero half-life",
            "weight = 1.0\nhalf_life = \"0d\"",
            "kinds = [\"web\"]",
            &[("half_life", "half_life: must be positive, got '0d'")],
        ),
        (
            "half-life not a duration",
            "weight = 1.0\nhalf_life = \"weekly\"",
            "kinds = [\"web\"]",
            &[(
                "half_life",
                "half_life: 'weekly' is not a duration like 14d, 48h, 3m (",
            )],
        ),
        (
            "cap zero",
            "weight = 1.0\nhalf_life = \"1d\"\ncap = 0.0",
            "kinds = [\"web\"]",
            &[("cap", "cap: must be a positive number")],
        ),
        (
            "cap not finite",
            "weight = 1.0\nhalf_life = \"1d\"\ncap = nan",
            "kinds = [\"web\"]",
            &[("cap", "cap: must be a positive number")],
        ),
        (
            "all of weight, half-life and cap, in that order",
            "cap = -1.0\nweight = nan\nhalf_life = \"-1d\"",
            "kinds = [\"web\"]",
            &[
                ("weight", "weight: must be a finite number"),
                ("half_life", "half_life: must be positive, got '-1d'"),
                ("cap", "cap: must be a positive number"),
            ],
        ),
    ];

    #[test]
    fn bad_signal_fields_are_refused_with_their_line() {
        let cases = SIGNAL_ERRORS;
        for (name, head, when, expected) in cases {
            assert_errors(name, &doc(head, when), expected);
        }
    }

    /// Bad `when` tables: (case, table, problems as (needle of the line, message start)).
    const CONDITION_ERRORS: &[Case] = &[
        ("unknown kind", "kinds = [\n\"web\",\n\"fax\",\n]", &[
            ("fax", "kinds: 'fax' is not one of web, email, transcript, crm"),
        ]),
        ("no kinds", "kinds = []", &[("kinds", "kinds: name at least one event kind")]),
        ("bad url regex", "kinds = [\"web\"]\nurl = '(?i)(white'", &[
            ("url", "url: bad regex '(?i)(white': "),
        ]),
        ("bad title regex", "kinds = [\"web\"]\ntitle = 'a{2,1}'", &[
            ("title =", "title: bad regex 'a{2,1}': "),
        ]),
        (
            "web fields without web events, in field order",
            "kinds = [\"email\"]\ntitle = 'x'\nurl = '('\nmin_dwell = \"1m\"\nactions = [\"view\", \"qa\"]",
            &[
                ("url", "url: applies to web events, which `kinds` does not include"),
                ("url", "url: bad regex '(': "),
                ("title =", "title: applies to web events, which `kinds` does not include"),
                ("actions", "actions: applies to web events, which `kinds` does not include"),
                ("actions", "actions: applies to web events, which `kinds` does not include"),
                ("min_dwell", "min_dwell: applies to web events, which `kinds` does not include"),
            ],
        ),
        ("unknown action", "kinds = [\"web\"]\nactions = [\"view\", \"click\"]", &[
            ("actions", "actions: 'click' is not one of view, download, register, qa, search, form"),
        ]),
        ("negative dwell", "kinds = [\"web\"]\nmin_dwell = \"-3m\"", &[
            ("min_dwell", "min_dwell: must be positive, got '-3m'"),
        ]),
        ("direction without e-mails", "kinds = [\"web\"]\ndirection = \"inbound\"", &[
            ("direction", "direction: applies to email events, which `kinds` does not include"),
        ]),
        ("unknown direction", "kinds = [\"email\"]\ndirection = \"sideways\"", &[
            ("direction", "direction: 'sideways' is not one of inbound, outbound"),
        ]),
        ("speaker role without transcripts", "kinds = [\"email\"]\nspeaker_role = \"rep\"", &[
            ("speaker_role", "speaker_role: applies to transcript events, which `kinds` does not include"),
        ]),
        ("unknown speaker role", "kinds = [\"transcript\"]\nspeaker_role = \"host\"", &[
            ("speaker_role", "speaker_role: 'host' is not one of customer, rep"),
        ]),
        (
            "crm types without crm events, and an unknown one",
            "kinds = [\"web\"]\ncrm_types = [\n\"deal_won\",\n\"deal_lots\",\n]",
            &[
                ("\"deal_won\"", "crm_types: applies to crm events, which `kinds` does not include"),
                ("deal_lots", "crm_types: applies to crm events, which `kinds` does not include"),
                ("deal_lots", "crm_types: unknown CRM event type 'deal_lots'"),
            ],
        ),
        ("unknown library", "kinds = [\"web\"]\nlibraries = [\"lib\", \"nope\"]", &[
            ("libraries", "libraries: unknown library 'nope'"),
        ]),
        ("unknown title library", "kinds = [\"web\"]\ncontact_title = [\"bosses\"]", &[
            ("contact_title", "contact_title: unknown library 'bosses'"),
        ]),
        ("unknown field", "kinds = [\"web\"]\nlibraries = [\"lib\"]\nfields = [\"title\", \"url\"]", &[
            ("fields", "fields: 'url' is not one of title, text, subject, body"),
        ]),
        ("fields without phrases", "kinds = [\"web\"]\nfields = [\n\"title\",\n\"text\",\n]", &[
            ("\"title\"", "fields: only meaningful with libraries or phrases"),
        ]),
        ("fields whose only library is unknown", "kinds = [\"web\"]\nlibraries = [\"nope\"]\nfields = [\"text\"]", &[
            ("libraries", "libraries: unknown library 'nope'"),
            ("fields", "fields: only meaningful with libraries or phrases"),
        ]),
        ("empty attribute name", "kinds = [\"crm\"]\nattrs = [{ name = \"\", min = 1 }]", &[
            ("attrs", "attrs: attribute names are 1-64 bytes"),
        ]),
        ("attribute name too long", "kinds = [\"crm\"]\nattrs = [{ name = \"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\", min = 1 }]", &[
            ("attrs", "attrs: attribute names are 1-64 bytes"),
        ]),
        (
            "attribute bounds, one test a line",
            "kinds = [\"crm\"]\nattrs = [\n{ name = \"a\" },\n{ name = \"b\", min = nan, max = nan },\n{ name = \"c\", max = -inf },\n{ name = \"d\", min = 5, max = 1 },\n]",
            &[
                ("\"a\"", "attrs: give 'a' a min, a max or both"),
                ("\"b\"", "attrs: min of 'b' must be a finite number"),
                ("\"c\"", "attrs: max of 'c' must be a finite number"),
                ("\"d\"", "attrs: min 5 of 'd' is above its max 1"),
            ],
        ),
    ];

    #[test]
    fn bad_conditions_are_refused_with_their_line() {
        let cases = CONDITION_ERRORS;
        for (name, when, expected) in cases {
            assert_errors(name, &doc(HEAD, when), expected);
        }
    }

    #[test]
    fn bad_signal_ids_are_refused() {
        let signal = |id: &str| {
            format!("[[signal]]\nid = \"{id}\"\nweight = 1.0\nhalf_life = \"1d\"\nwhen = {{ kinds = [\"web\"] }}\n")
        };
        let text = [signal("a"), signal("b c"), signal("a")].concat();
        let signal_b =
            "signal id 'b c': use letters, digits, '_' and '-' (ids become NATS subject tokens)";
        assert_eq!(
            errors(&text),
            [
                (7, signal_b.to_string()),
                (12, "signal 'a' is already defined at x.toml:2".to_string()),
            ]
        );
    }
}
