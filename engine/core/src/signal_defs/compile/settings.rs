//! The engine-wide settings sections, `[analyzer]`, `[score]` and
//! `[contacts]`: each may appear in one file only, and each falls back to
//! its defaults when absent.

use toml::Spanned;

use super::context::{library_idx, At, Compiler, Files, Source};
use crate::extract::analyzer::{Analyzer, LANGUAGES, NO_STEMMING};
use crate::extract::matcher::LibraryIdx;
use crate::signal_defs::raw::{RawAnalyzer, RawContacts, RawScore};
use crate::signal_defs::{Library, ScoreConfig};
use crate::time::parse_duration_ms;

/// `[analyzer] language` when not given.
const DEFAULT_LANGUAGE: &str = "english";
/// `[analyzer] prefix_fold` when not given (or out of range).
const DEFAULT_PREFIX_FOLD: usize = 7;
/// `[score] scale` when not given.
const DEFAULT_SCALE: f64 = 40.0;
/// `[score] topic_half_life` when not given.
const DEFAULT_TOPIC_HALF_LIFE: &str = "30d";
/// The decision-role library when there is no `[contacts]` section.
const DEFAULT_DECISION_ROLES: &str = "decision_roles";

/// A settings section and the file it is in.
type Section<'s, T> = Option<(&'s Source, &'s Spanned<T>)>;

/// The settings sections found among the files.
pub(super) struct Settings<'s> {
    /// `[analyzer]`, if some file has one.
    pub(super) analyzer: Section<'s, RawAnalyzer>,
    /// `[score]`, if some file has one.
    pub(super) score: Section<'s, RawScore>,
    /// `[contacts]`, if some file has one.
    pub(super) contacts: Section<'s, RawContacts>,
}

/// Finds the settings sections, refusing each one after the first (the last
/// one found is kept, as the loader always did).
pub(super) fn find<'s>(cx: &mut Compiler, files: &'s Files<'s>) -> Settings<'s> {
    let mut settings = Settings {
        analyzer: None,
        score: None,
        contacts: None,
    };
    for (source, raw) in files {
        let at = At { source };
        once(cx, &at, &raw.analyzer, &mut settings.analyzer, "analyzer");
        once(cx, &at, &raw.score, &mut settings.score, "score");
        once(cx, &at, &raw.contacts, &mut settings.contacts, "contacts");
    }
    settings
}

/// Records a section of one file in `found`, refusing it if another file
/// had it already.
fn once<'s, T>(
    cx: &mut Compiler,
    at: &At<'s>,
    section: &'s Option<Spanned<T>>,
    found: &mut Section<'s, T>,
    name: &str,
) {
    if let Some(s) = section {
        if found.is_some() {
            at.err(cx, s, format!("[{name}] is defined in more than one file"));
        }
        *found = Some((at.source, s));
    }
}

/// The text analyzer of `[analyzer]`, or the default one.
pub(super) fn analyzer(cx: &mut Compiler, section: Section<'_, RawAnalyzer>) -> Analyzer {
    let Some((source, a)) = section else {
        return Analyzer::default();
    };
    let at = At { source };
    let prefix_fold = prefix_fold(cx, &at, &a.get_ref().prefix_fold);
    let language = a.get_ref().language.as_ref();
    let name = language.map_or(DEFAULT_LANGUAGE, |l| l.get_ref().as_str());
    match Analyzer::new(name, prefix_fold) {
        Some(analyzer) => analyzer,
        None => {
            if let Some(l) = language {
                let known: Vec<&str> = LANGUAGES.iter().map(|(n, _)| *n).collect();
                at.err(
                    cx,
                    l,
                    format!(
                        "language: unknown stemming language '{name}' (known: {}; or {NO_STEMMING} for no stemming and no stopwords)",
                        known.join(", ")
                    ),
                );
            }
            Analyzer::default()
        }
    }
}

/// `prefix_fold`: 0 (off) to 64 characters.
fn prefix_fold(cx: &mut Compiler, at: &At<'_>, value: &Option<Spanned<i64>>) -> usize {
    match value {
        Some(p) if !(0..=64).contains(p.get_ref()) => {
            at.err(cx, p, "prefix_fold: must be between 0 (off) and 64");
            DEFAULT_PREFIX_FOLD
        }
        Some(p) => *p.get_ref() as usize,
        None => DEFAULT_PREFIX_FOLD,
    }
}

/// The score settings of `[score]`, each field defaulted on its own (and
/// when refused).
pub(super) fn score(cx: &mut Compiler, section: Section<'_, RawScore>) -> ScoreConfig {
    let mut score = ScoreConfig {
        scale: DEFAULT_SCALE,
        topic_half_life_ms: parse_duration_ms(DEFAULT_TOPIC_HALF_LIFE).unwrap() as f64,
        open_topics: true,
    };
    let Some((source, s)) = section else {
        return score;
    };
    let at = At { source };
    if let Some(scale) = &s.get_ref().scale {
        if !(scale.get_ref().is_finite() && *scale.get_ref() > 0.0) {
            at.err(cx, scale, "scale: must be a positive number");
        } else {
            score.scale = *scale.get_ref();
        }
    }
    if let Some(h) = &s.get_ref().topic_half_life {
        if let Some(ms) = cx.positive_duration(&at, h, "topic_half_life") {
            score.topic_half_life_ms = ms as f64;
        }
    }
    if let Some(open) = &s.get_ref().open_topics {
        score.open_topics = *open.get_ref();
    }
    score
}

/// The decision-role library: `[contacts] decision_roles` (which must name a
/// library), none when `[contacts]` leaves it out, and the library
/// [`DEFAULT_DECISION_ROLES`] (if there is one) without a `[contacts]`.
pub(super) fn decision_roles(
    cx: &mut Compiler,
    section: Section<'_, RawContacts>,
    libraries: &[Library],
) -> Option<LibraryIdx> {
    let Some((source, c)) = section else {
        return library_idx(libraries, DEFAULT_DECISION_ROLES);
    };
    let name = c.get_ref().decision_roles.as_ref()?;
    let found = library_idx(libraries, name.get_ref());
    if found.is_none() {
        At { source }.err(
            cx,
            name,
            format!("decision_roles: unknown library '{}'", name.get_ref()),
        );
    }
    found
}

/// The id role-change rules need a library of: the decision-role library's,
/// or [`DEFAULT_DECISION_ROLES`] when there is none.
pub(super) fn decision_roles_id(found: Option<LibraryIdx>, libraries: &[Library]) -> String {
    found
        .map(|idx| libraries[idx as usize].id.to_string())
        .unwrap_or_else(|| DEFAULT_DECISION_ROLES.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::context::testing::{assert_errors, compiled, errors, line, Case};

    /// A library for `[contacts]` to name.
    const ROLES: &str = "\n[[library]]\nid = \"bosses\"\nphrases = [\"ceo\"]\n";

    /// Expected settings: (language, prefix fold, scale, topic half-life in
    /// ms, decision-role library id).
    type Values = (&'static str, usize, f64, f64, Option<&'static str>);

    /// The settings of one file that compiles, as [`Values`] but with the
    /// library id owned.
    fn check(text: &str) -> (&'static str, usize, f64, f64, Option<String>) {
        let set = compiled(text);
        (
            set.analyzer.language(),
            set.analyzer.prefix_fold(),
            set.score.scale,
            set.score.topic_half_life_ms,
            set.decision_roles
                .map(|i| set.libraries[i as usize].id.to_string()),
        )
    }

    #[test]
    fn settings_compile_to_their_values_or_defaults() {
        const DAY: f64 = 86_400_000.0;
        let cases: &[(&str, &str, Values)] = &[
            ("nothing", "", ("english", 7, 40.0, 30.0 * DAY, None)),
            (
                "default decision_roles library",
                "[[library]]\nid = \"decision_roles\"\nphrases = [\"ceo\"]\n",
                ("english", 7, 40.0, 30.0 * DAY, Some("decision_roles")),
            ),
            (
                "all given",
                "[analyzer]\nlanguage = \"german\"\nprefix_fold = 0\n\
                 [score]\nscale = 12.5\ntopic_half_life = \"2d\"\n\
                 [contacts]\ndecision_roles = \"bosses\"\n",
                ("german", 0, 12.5, 2.0 * DAY, Some("bosses")),
            ),
            (
                "language alone keeps the prefix fold",
                "[analyzer]\nlanguage = \"french\"\n",
                ("french", 7, 40.0, 30.0 * DAY, None),
            ),
            (
                "prefix_fold alone keeps english",
                "[analyzer]\nprefix_fold = 64\n",
                ("english", 64, 40.0, 30.0 * DAY, None),
            ),
            (
                "[contacts] without decision_roles means none",
                "[contacts]\n[[library]]\nid = \"decision_roles\"\nphrases = [\"ceo\"]\n",
                ("english", 7, 40.0, 30.0 * DAY, None),
            ),
            (
                "half-life alone keeps the scale",
                "[score]\ntopic_half_life = \"36h\"\n",
                ("english", 7, 40.0, 1.5 * DAY, None),
            ),
        ];
        for (name, text, want) in cases {
            let text = format!("{text}{ROLES}");
            let got = check(&text);
            let want = (want.0, want.1, want.2, want.3, want.4.map(String::from));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn decision_roles_may_name_a_signal_s_inline_phrases() {
        let text = "[contacts]\ndecision_roles = \"signal:boss\"\n\
                    [[signal]]\nid = \"boss\"\nweight = 1.0\nhalf_life = \"1d\"\n\
                    when = { kinds = [\"email\"], phrases = [\"ceo\"] }\n";
        assert_eq!(check(text).4.as_deref(), Some("signal:boss"));
    }

    /// Bad settings: (case, file, problems as (needle, message start)).
    const SETTINGS_ERRORS: &[Case] = &[
        (
            "prefix fold too large",
            "[analyzer]\nprefix_fold = 65\n",
            &[("prefix_fold", "prefix_fold: must be between 0 (off) and 64")],
        ),
        (
            "negative prefix fold and unknown language, in field order",
            "[analyzer]\nlanguage = \"klingon\"\nprefix_fold = -1\n",
            &[
                ("prefix_fold", "prefix_fold: must be between 0 (off) and 64"),
                (
                    "language",
                    "language: unknown stemming language 'klingon' (known: arabic, ",
                ),
            ],
        ),
        (
            "scale zero",
            "[score]\nscale = 0.0\n",
            &[("scale", "scale: must be a positive number")],
        ),
        (
            "scale not finite",
            "[score]\nscale = nan\n",
            &[("scale", "scale: must be a positive number")],
        ),
        (
            "negative half-life",
            "[score]\ntopic_half_life = \"-3d\"\n",
            &[(
                "topic_half_life",
                "topic_half_life: must be positive, got '-3d'",
            )],
        ),
        (
            "zero half-life",
            "[score]\ntopic_half_life = \"0s\"\n",
            &[(
                "topic_half_life",
                "topic_half_life: must be positive, got '0s'",
            )],
        ),
        (
            "half-life not a duration",
            "[score]\ntopic_half_life = \"soon\"\n",
            &[(
                "topic_half_life",
                "topic_half_life: 'soon' is not a duration like 14d, 48h, 3m (",
            )],
        ),
        (
            "unknown decision-role library",
            "[contacts]\ndecision_roles = \"chiefs\"\n",
            &[("decision_roles", "decision_roles: unknown library 'chiefs'")],
        ),
    ];

    #[test]
    fn bad_settings_are_refused_with_their_line() {
        let cases = SETTINGS_ERRORS;
        for (name, text, expected) in cases {
            assert_errors(name, text, expected);
        }
    }

    #[test]
    fn a_language_error_lists_every_known_language() {
        let text = "[analyzer]\nlanguage = \"klingon\"\n";
        let message = "language: unknown stemming language 'klingon' (known: arabic, danish, \
                       dutch, english, finnish, french, german, greek, hungarian, italian, \
                       norwegian, portuguese, romanian, russian, spanish, swedish, tamil, turkish; \
                       or none for no stemming and no stopwords)";
        assert_eq!(
            errors(text),
            [(line(text, "language"), message.to_string())]
        );
    }

    #[test]
    fn language_none_neither_stems_nor_drops_stopwords() {
        use crate::extract::analyzer::{Analyzed, View};
        use crate::signal_defs::{compile_sources, Source};
        let source = Source {
            path: "engine.toml".into(),
            text: "[analyzer]\nlanguage = \"none\"\nprefix_fold = 0\n".into(),
        };
        let set = compile_sources(&[source]).unwrap();
        assert_eq!(set.analyzer.language(), "none");
        let mut out = Analyzed::default();
        set.analyzer
            .analyze("The Pricing of PET/CT it's running", View::Match, &mut out);
        let keys: Vec<&str> = out.iter_keys().collect();
        assert_eq!(
            keys,
            ["the", "pricing", "of", "pet", "ct", "it", "s", "running"]
        );
    }

    #[test]
    fn a_settings_section_in_two_files_is_refused_in_the_second() {
        use crate::signal_defs::{compile_sources, Source};
        let file = |name: &str, text: &str| Source {
            path: name.into(),
            text: text.to_string(),
        };
        let sources = [
            file("a.toml", "[analyzer]\n[score]\n[contacts]\n"),
            file("b.toml", "# b\n[score]\nscale = 2.0\n[analyzer]\n"),
            file("c.toml", "\n\n[contacts]\n"),
        ];
        let e = compile_sources(&sources).unwrap_err();
        let got: Vec<String> = e.0.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            got,
            [
                "b.toml:4: [analyzer] is defined in more than one file",
                "b.toml:2: [score] is defined in more than one file",
                "c.toml:3: [contacts] is defined in more than one file",
            ]
        );
    }
}
