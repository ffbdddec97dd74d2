//! Phrase libraries: `[[library]]` tables and the inline `phrases` of
//! signals, their ids, and their phrases added to the one phrase matcher
//! (with the problems a phrase can have after analysis).

use std::collections::HashMap;

use toml::Spanned;

use super::context::{At, Compiler, Files};
use crate::extract::analyzer::is_han;
use crate::extract::matcher::{LibraryIdx, PhraseMatcherBuilder, PhraseProblem};
use crate::signal_defs::raw::RawLibrary;
use crate::signal_defs::Library;

/// The `[[library]]` tables of all files, in order, their phrases added to
/// `builder`. A library whose id is refused is left out.
pub(super) fn libraries(
    cx: &mut Compiler,
    files: &Files<'_>,
    builder: &mut PhraseMatcherBuilder<'_>,
) -> Vec<Library> {
    let mut libraries: Vec<Library> = Vec::new();
    let mut library_where: HashMap<String, String> = HashMap::new();
    for (source, raw) in files {
        let at = At { source };
        for lib in &raw.library {
            let lib = lib.get_ref();
            if !cx.claim_id(&at, "library", &lib.id, &mut library_where) {
                continue;
            }
            let idx = libraries.len() as LibraryIdx;
            add_phrases(cx, &at, lib, idx, builder);
            libraries.push(Library {
                id: lib.id.get_ref().as_str().into(),
                industry: lib.industry.as_ref().map(|i| i.get_ref().as_str().into()),
                description: lib.description.clone().unwrap_or_default(),
                n_phrases: lib.phrases.get_ref().len(),
                negation: lib.negation.unwrap_or(true),
                file: source.path.clone(),
            });
        }
    }
    libraries
}

/// Adds a library's phrases as library `idx`; a phrase that matches the same
/// as an earlier one of the library is warned about and left out.
fn add_phrases(
    cx: &mut Compiler,
    at: &At<'_>,
    lib: &RawLibrary,
    idx: LibraryIdx,
    builder: &mut PhraseMatcherBuilder<'_>,
) {
    let id = lib.id.get_ref();
    if lib.phrases.get_ref().is_empty() {
        at.err(cx, &lib.phrases, format!("library '{id}' has no phrases"));
    }
    let mut seen = HashMap::new();
    for phrase in lib.phrases.get_ref() {
        let text = phrase.get_ref();
        let analysed = builder.analysed(text);
        if let Some(previous) = seen.insert(analysed.clone(), text.clone()) {
            at.warn(
                cx,
                phrase,
                format!("phrase '{text}' matches the same as '{previous}' in library '{id}'"),
            );
            continue;
        }
        match builder.add_with(idx, text, lib.negation.unwrap_or(true)) {
            Ok(_) => warn_if_reduced(cx, at, phrase, &analysed),
            Err(PhraseProblem::EmptyAfterAnalysis) => at.err(cx, phrase, empty(text)),
        }
    }
}

/// Warns of a phrase of several words that stopwords reduce to one (Chinese
/// is left alone: its words are not separated by spaces).
fn warn_if_reduced(cx: &mut Compiler, at: &At<'_>, phrase: &Spanned<String>, analysed: &str) {
    let text = phrase.get_ref();
    let n_words = text.split_whitespace().count();
    let n_keys = analysed.split(' ').count();
    if n_words > 1 && n_keys == 1 && !analysed.chars().any(is_han) {
        at.warn(
            cx,
            phrase,
            format!("phrase '{text}' is reduced by stopwords to the single word '{analysed}'"),
        );
    }
}

/// The error of a phrase that analysis leaves nothing of.
fn empty(text: &str) -> String {
    format!("phrase '{text}' is empty after analysis (only stopwords or punctuation)")
}

/// Makes the inline `phrases` of signal `signal_id` a library of their own,
/// `signal:<id>`, appended to `libraries`; returns its index.
pub(super) fn inline_library(
    cx: &mut Compiler,
    at: &At<'_>,
    signal_id: &str,
    phrases: &[Spanned<String>],
    libraries: &mut Vec<Library>,
    builder: &mut PhraseMatcherBuilder<'_>,
) -> LibraryIdx {
    let idx = libraries.len() as LibraryIdx;
    for phrase in phrases {
        if builder.add(idx, phrase.get_ref()).is_err() {
            at.err(cx, phrase, empty(phrase.get_ref()));
        }
    }
    libraries.push(Library {
        id: format!("signal:{signal_id}").into(),
        industry: None,
        description: format!("inline phrases of signal {signal_id}"),
        n_phrases: phrases.len(),
        negation: true,
        file: at.source.path.clone(),
    });
    idx
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::context::testing::{assert_errors, compiled, line, located, Case};

    /// A library as (id, industry, description, number of phrases).
    type LibraryRow = (String, Option<String>, String, usize);

    /// Each library of a file that compiles: (id, industry, description,
    /// number of phrases), and the phrases in the matcher as (library id,
    /// text).
    fn check(text: &str) -> (Vec<LibraryRow>, Vec<(String, String)>) {
        let set = compiled(text);
        assert!(set.libraries.iter().all(|l| l.file == Path::new("x.toml")));
        let libraries = set
            .libraries
            .iter()
            .map(|l| {
                let industry = l.industry.as_deref().map(String::from);
                (
                    l.id.to_string(),
                    industry,
                    l.description.clone(),
                    l.n_phrases,
                )
            })
            .collect();
        let phrases = set
            .matcher
            .phrases()
            .iter()
            .map(|p| {
                let library = set.libraries[p.library as usize].id.to_string();
                (library, p.text.to_string())
            })
            .collect();
        (libraries, phrases)
    }

    fn owned(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn libraries_compile_in_order_with_their_phrases() {
        let text = r#"
[[library]]
id = "med"
industry = "medical"
description = "hospital words"
phrases = ["remote diagnostics", "pacs"]

[[library]]
id = "roles_2"
phrases = ["ceo", "head of ... purchasing"]
"#;
        let (libraries, phrases) = check(text);
        assert_eq!(
            libraries,
            [
                (
                    "med".into(),
                    Some("medical".into()),
                    "hospital words".into(),
                    2
                ),
                ("roles_2".into(), None, String::new(), 2),
            ]
        );
        assert_eq!(
            phrases,
            owned(&[
                ("med", "remote diagnostics"),
                ("med", "pacs"),
                ("roles_2", "ceo"),
                ("roles_2", "head of ... purchasing"),
            ])
        );
    }

    #[test]
    fn inline_phrases_become_a_library_after_the_tables() {
        let text = r#"
[[signal]]
id = "asks"
weight = 1.0
half_life = "1d"
when = { kinds = ["email"], libraries = ["lib"], phrases = ["send a quote", "pricing"] }

[[library]]
id = "lib"
phrases = ["tender"]
"#;
        let (libraries, phrases) = check(text);
        assert_eq!(
            libraries,
            [
                ("lib".into(), None, String::new(), 1),
                (
                    "signal:asks".into(),
                    None,
                    "inline phrases of signal asks".into(),
                    2
                ),
            ]
        );
        assert_eq!(
            phrases,
            owned(&[
                ("lib", "tender"),
                ("signal:asks", "send a quote"),
                ("signal:asks", "pricing"),
            ])
        );
        let set = compiled(text);
        assert_eq!(set.signals[0].when.libraries, [0, 1]);
    }

    #[test]
    fn phrases_that_match_alike_or_shrink_to_one_word_are_warned_about() {
        let text = r#"
[[library]]
id = "roles"
phrases = [
  "director",
  "directors",
  "the ceo",
  "chief of staff",
  "技术 总监",
]
"#;
        let set = compiled(text);
        let warnings: Vec<(usize, String)> = set.warnings.iter().map(located).collect();
        assert_eq!(
            warnings,
            [
                (
                    line(text, "\"directors\""),
                    "phrase 'directors' matches the same as 'director' in library 'roles'".into()
                ),
                (
                    line(text, "the ceo"),
                    "phrase 'the ceo' is reduced by stopwords to the single word 'ceo'".into()
                ),
            ]
        );
        // The duplicate is left out of the matcher, but still counted.
        assert_eq!(set.matcher.phrases().len(), 4);
        assert_eq!(set.libraries[0].n_phrases, 5);
    }

    /// Bad libraries: (case, file, problems as (needle, message start)).
    const LIBRARY_ERRORS: &[Case] = &[
        (
            "id with a dot",
            "[[library]]\nid = \"a.b\"\nphrases = [\"x\"]\n",
            &[(
                "id = ",
                "library id 'a.b': use letters, digits, '_' and '-' (ids become NATS subject tokens)",
            )],
        ),
        (
            "empty id",
            "[[library]]\nid = \"\"\nphrases = [\"x\"]\n",
            &[("id = ", "library id '': use letters, digits, '_' and '-'")],
        ),
        (
            "id too long",
            "[[library]]\nid = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\nphrases = [\"x\"]\n",
            &[("id = ", "library id 'aaaa")],
        ),
        (
            "duplicate id",
            "[[library]]\nid = \"a\"\nphrases = [\"x\"]\n\n[[library]]\nid = \"a\" # again\nphrases = [\"y\"]\n",
            &[("# again", "library 'a' is already defined at x.toml:2")],
        ),
        (
            "no phrases",
            "[[library]]\nid = \"a\"\nphrases = []\n",
            &[("phrases", "library 'a' has no phrases")],
        ),
        (
            "a phrase of stopwords, then one of an ellipsis only",
            "[[library]]\nid = \"a\"\nphrases = [\n  \"ok\",\n  \"the of\",\n]\n\
             [[library]]\nid = \"b\"\nphrases = [\"...\"]\n",
            &[
                ("the of", "phrase 'the of' is empty after analysis (only stopwords or punctuation)"),
                ("\"...\"", "phrase '...' is empty after analysis (only stopwords or punctuation)"),
            ],
        ),
        (
            "an empty inline phrase",
            "[[signal]]\nid = \"s\"\nweight = 1.0\nhalf_life = \"1d\"\n\
             when = { kinds = [\"email\"], phrases = [\"fine\", \"and the\"] }\n",
            &[("when", "phrase 'and the' is empty after analysis (only stopwords or punctuation)")],
        ),
    ];

    #[test]
    fn bad_libraries_are_refused_with_their_line() {
        let cases = LIBRARY_ERRORS;
        for (name, text, expected) in cases {
            assert_errors(name, text, expected);
        }
    }

    #[test]
    fn a_library_refused_for_its_id_is_unknown_to_signals() {
        // `b!` is refused for its id, so naming it adds an error of its own.
        let text = "[[library]]\nid = \"b!\"\nphrases = [\"x\"]\n\
                    [[library]]\nid = \"c\"\nphrases = [\"y\"]\n\
                    [[signal]]\nid = \"d\"\nweight = 1.0\nhalf_life = \"1d\"\n\
                    when = { kinds = [\"email\"], libraries = [\"c\", \"b!\"] }\n";
        assert_errors(
            "refused library",
            text,
            &[
                ("id = \"b!\"", "library id 'b!'"),
                ("when", "libraries: unknown library 'b!'"),
            ],
        );
    }
}
