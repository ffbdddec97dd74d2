//! Phase two of loading signal definitions: validate the raw files, resolve
//! references, compile regexes and phrases, and report every problem at once
//! with its file and line.
//!
//! This module only orchestrates: it parses each file and runs the sections
//! in order, each of which may refer to what the ones before it compiled:
//! [`settings`] (`[analyzer]`, `[score]`), [`libraries`], [`signals`] (whose
//! inline phrases become libraries), `[contacts]` (which names a library),
//! then [`rules`] (which name signals and libraries). What they all share is
//! in [`context`].

mod context;
mod libraries;
mod rules;
mod settings;
mod signals;

pub use context::{Source, PLACEHOLDERS};

use sha2::{Digest, Sha256};

use super::raw::RawFile;
use super::{DefError, DefErrors, SignalSet};
use crate::extract::matcher::PhraseMatcherBuilder;
use context::{line_of, Compiler, Files};

/// Validates and compiles definitions given as text (the directory loader
/// and the NATS KV watcher both end here).
pub fn compile_sources(sources: &[Source]) -> Result<SignalSet, DefErrors> {
    let mut cx = Compiler::default();
    let files = parse(&mut cx, sources);
    let set = compile(&mut cx, &files, version_of(sources));
    if cx.errors.is_empty() {
        let mut set = set.expect("a set is built whenever there are no errors");
        set.warnings = cx.warnings;
        Ok(set)
    } else {
        Err(DefErrors(cx.errors))
    }
}

/// Parses each source; one that does not parse is reported at the line of
/// its first problem, its signals still known by id.
fn parse<'s>(cx: &mut Compiler, sources: &'s [Source]) -> Vec<(&'s Source, RawFile)> {
    let mut files = Vec::new();
    for source in sources {
        match toml::from_str::<RawFile>(&source.text) {
            Ok(raw) => files.push((source, raw)),
            Err(e) => {
                cx.broken_signals
                    .extend(signals::declared_ids(&source.text));
                let line = e.span().map_or(0, |span| line_of(&source.text, span.start));
                cx.errors.push(DefError {
                    file: source.path.clone(),
                    line,
                    message: e.message().trim().to_string(),
                });
            }
        }
    }
    files
}

/// Runs the sections in order; the set is built only if none found an error.
fn compile(cx: &mut Compiler, files: &Files<'_>, version: String) -> Option<SignalSet> {
    let found = settings::find(cx, files);
    let analyzer = settings::analyzer(cx, found.analyzer);
    let score = settings::score(cx, found.score);
    cx.topics_off = !score.open_topics;

    let mut builder = PhraseMatcherBuilder::new(&analyzer);
    let mut libraries = libraries::libraries(cx, files, &mut builder);
    let mut signals = signals::signals(cx, files, &mut libraries, &mut builder);
    let decision_roles = settings::decision_roles(cx, found.contacts, &libraries);

    let decision_roles_id = settings::decision_roles_id(decision_roles, &libraries);
    let refs = rules::Refs::new(&signals, &libraries, decision_roles_id);
    let rules = rules::rules(cx, files, &refs);
    rules::check_limits(cx, signals.len(), rules.len());
    rules::retain_occurrences(&rules, &mut signals);

    if !cx.errors.is_empty() {
        return None;
    }
    let (url_set, url_set_signals) = signals::url_index(&signals);
    Some(SignalSet {
        url_set,
        url_set_signals,
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

#[cfg(test)]
mod tests {
    use super::context::testing::{compiled, line};
    use super::{compile_sources, version_of, Source};
    use crate::signal_defs::shipped::signal_set;

    #[test]
    fn a_topics_placeholder_without_open_topics_is_warned_about_with_its_line() {
        let text = "[score]\nopen_topics = false\n\n[[signal]]\nid = \"s\"\nweight = 1.0\nhalf_life = \"7d\"\n[signal.when]\nkinds = [\"web\"]\n\n[[rule]]\nid = \"r\"\nkind = \"count\"\nsignal = \"s\"\nat_least = 1\nwithin = \"1d\"\nrecommendation = \"talk about {topics}\"\nreason = \"{account}\"\n";
        let set = compile_sources(&[Source {
            path: "d.toml".into(),
            text: text.into(),
        }])
        .unwrap();
        let warnings: Vec<String> = set.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            ["d.toml:17: recommendation: {topics} is always empty: [score] open_topics = false"]
        );
    }

    fn source(path: &str, text: &str) -> Source {
        Source {
            path: path.into(),
            text: text.to_string(),
        }
    }

    /// The problems of a refused load, as `file:line: message`.
    fn check(sources: &[Source]) -> Vec<String> {
        match compile_sources(sources) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn the_version_hashes_file_names_and_texts_in_path_order() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("d/b.toml", "[score]\n"), ("d/a.toml", "")],
                "c395dce208ca",
            ),
            (
                &[("d/a.toml", ""), ("d/b.toml", "[score]\n")],
                "c395dce208ca",
            ),
            // Only file names are hashed, but the order is by path.
            (
                &[("x/b.toml", "[score]\n"), ("y/a.toml", "")],
                "dd929b25602b",
            ),
            (&[], "e3b0c44298fc"),
        ];
        for (files, version) in cases {
            let sources: Vec<Source> = files.iter().map(|(p, t)| source(p, t)).collect();
            assert_eq!(version_of(&sources), *version, "{files:?}");
            let set = compile_sources(&sources).unwrap();
            assert_eq!(&*set.version, *version);
        }
    }

    #[test]
    fn a_file_that_does_not_parse_is_reported_and_the_others_still_checked() {
        let rules = "[[rule]]\nid = \"r\"\nkind = \"count\"\nsignal = \"ghost\"\nat_least = 1\n\
                     within = \"1d\"\nrecommendation = \"x\"\nreason = \"y\"\n";
        let sources = [
            source("a.toml", "[[signal]]\nid = \"ghost\"\nwieght = 1.0\n"),
            source("b.toml", &rules.replace("\"r\"", "\"r2\"")),
            source("c.toml", &rules.replace("ghost", "nobody")),
        ];
        let got = check(&sources);
        assert_eq!(got.len(), 2, "{got:#?}");
        let expected = "a.toml:3: unknown field `wieght`, expected one of `id`, `description`, \
                        `weight`, `half_life`, `cap`, `count`, `when`";
        assert_eq!(got[0], expected);
        assert_eq!(got[1], "c.toml:4: unknown signal 'nobody'");
        // A syntax error is placed at its line too.
        let got = check(&[source("a.toml", "\n[score]\nscale = 1.0\n[[rule]\n")]);
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(got[0].starts_with("a.toml:4: "), "{got:#?}");
    }

    #[test]
    fn errors_come_section_by_section_whatever_the_file_order() {
        let text = "[[rule]]\nid = \"r\"\nkind = \"threshold\"\nscore_above = 101.0\n\
                    recommendation = \"x\"\nreason = \"y\"\n\
                    [[signal]]\nid = \"s\"\nweight = nan\nhalf_life = \"1d\"\nwhen = { kinds = [\"web\"] }\n\
                    [[library]]\nid = \"l\"\nphrases = []\n\
                    [contacts]\ndecision_roles = \"nope\"\n\
                    [score]\nscale = -1.0\n\
                    [analyzer]\nprefix_fold = 99\n";
        let at = |needle: &str| format!("x.toml:{}: ", line(text, needle));
        assert_eq!(
            check(&[source("x.toml", text)]),
            [
                format!(
                    "{}prefix_fold: must be between 0 (off) and 64",
                    at("prefix_fold")
                ),
                format!("{}scale: must be a positive number", at("scale")),
                format!("{}library 'l' has no phrases", at("phrases")),
                format!("{}weight: must be a finite number", at("weight")),
                format!(
                    "{}decision_roles: unknown library 'nope'",
                    at("decision_roles")
                ),
                format!("{}score_above: must be in [0, 100)", at("score_above")),
            ]
        );
    }

    #[test]
    fn warnings_are_kept_with_a_set_and_dropped_with_errors() {
        let text = "[[library]]\nid = \"l\"\nphrases = [\"the ceo\"]\n";
        let set = compiled(text);
        let warnings: Vec<String> = set.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            warnings,
            ["x.toml:3: phrase 'the ceo' is reduced by stopwords to the single word 'ceo'"]
        );
        let refused = format!("{text}[score]\nscale = 0.0\n");
        assert_eq!(
            check(&[source("x.toml", &refused)]),
            ["x.toml:5: scale: must be a positive number"]
        );
    }

    #[test]
    fn the_shipped_definitions_compile() {
        let set = signal_set();
        assert!(set.warnings.is_empty(), "{:?}", set.warnings);
        assert_eq!(set.version.len(), 12);
        assert!(set.version.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            (set.analyzer.language(), set.analyzer.prefix_fold()),
            ("english", 7)
        );
        assert_eq!(set.score.scale, 40.0);
        assert_eq!(set.score.topic_half_life_ms, 30.0 * 86_400_000.0);
        assert_eq!(set.decision_roles, set.library_idx("decision_roles"));
        assert!(set.decision_roles.is_some());
        assert_eq!((set.signals.len(), set.rules.len()), (13, 10));
        let with_url: Vec<u16> = (0..set.signals.len() as u16)
            .filter(|i| set.signals[*i as usize].when.url.is_some())
            .collect();
        assert_eq!(set.url_set_signals, with_url);
        assert_eq!(set.url_set.len(), with_url.len());
        // comparison_page_repeat counts comparison_page_visit over 14 days.
        let visit = set.signal_idx("comparison_page_visit").unwrap() as usize;
        assert_eq!(set.signals[visit].retain_ms, 14 * 86_400_000);
    }
}
