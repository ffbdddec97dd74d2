//! What every section of the compiler shares: the [`Source`] being read, the
//! [`Compiler`] that collects errors and warnings, [`At`] to report them
//! against a file and line, and the checks more than one section makes (ids,
//! templates, regexes, durations, library references).
//!
//! This is the leaf of the compiler: it uses no other module of `compile`.

use std::collections::HashMap;
use std::path::PathBuf;

use regex::Regex;
use toml::Spanned;

use crate::extract::matcher::LibraryIdx;
use crate::signal_defs::raw::RawFile;
use crate::signal_defs::{DefError, Library};
use crate::time::parse_duration_ms;

/// One definitions file: where it came from and its text.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file's path, as errors name it.
    pub path: PathBuf,
    /// The file's TOML text.
    pub text: String,
}

/// The files that parsed, each with its source, in load order.
pub(super) type Files<'s> = [(&'s Source, RawFile)];

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

/// Collects what the sections find, so that one load reports every problem.
#[derive(Default)]
pub(super) struct Compiler {
    /// Problems that refuse the load, in the order found.
    pub(super) errors: Vec<DefError>,
    /// Non-fatal remarks, kept with the compiled set.
    pub(super) warnings: Vec<DefError>,
    /// Ids of signals refused for their own errors (already reported).
    pub(super) broken_signals: Vec<String>,
    /// `[score] open_topics = false`: a `{topics}` placeholder renders empty.
    pub(super) topics_off: bool,
}

/// Where we are while checking one file.
pub(super) struct At<'a> {
    /// The file being checked.
    pub(super) source: &'a Source,
}

impl At<'_> {
    /// Reports an error at the line of `spanned`.
    pub(super) fn err<T>(
        &self,
        cx: &mut Compiler,
        spanned: &Spanned<T>,
        message: impl Into<String>,
    ) {
        self.err_at(cx, spanned.span().start, message);
    }

    /// Reports an error at the line of a byte offset of the file.
    pub(super) fn err_at(&self, cx: &mut Compiler, offset: usize, message: impl Into<String>) {
        cx.errors.push(self.problem(offset, message.into()));
    }

    /// Records a warning at the line of `spanned`.
    pub(super) fn warn<T>(
        &self,
        cx: &mut Compiler,
        spanned: &Spanned<T>,
        message: impl Into<String>,
    ) {
        let warning = self.problem(spanned.span().start, message.into());
        cx.warnings.push(warning);
    }

    /// `file:line` of `spanned`, as "already defined at" names it.
    pub(super) fn line<T>(&self, spanned: &Spanned<T>) -> String {
        format!(
            "{}:{}",
            self.source.path.display(),
            line_of(&self.source.text, spanned.span().start)
        )
    }

    fn problem(&self, offset: usize, message: String) -> DefError {
        DefError {
            file: self.source.path.clone(),
            line: line_of(&self.source.text, offset),
            message,
        }
    }
}

/// 1-based line of a byte offset.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Whether `id` may name a library, signal or rule (it becomes a NATS
/// subject token): 1-64 letters, digits, `_` and `-`.
pub(super) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Compiler {
    /// Checks an id's form and that it is new among `seen` (id → where first
    /// defined); records it. False (with the error reported) when refused.
    pub(super) fn claim_id(
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
    pub(super) fn library_refs<'n>(
        &mut self,
        at: &At<'_>,
        field: &str,
        names: impl Iterator<Item = &'n Spanned<String>>,
        libraries: &[Library],
    ) -> Vec<LibraryIdx> {
        let mut found = Vec::new();
        for name in names {
            match library_idx(libraries, name.get_ref()) {
                Some(idx) => found.push(idx),
                None => at.err(
                    self,
                    name,
                    format!("{field}: unknown library '{}'", name.get_ref()),
                ),
            }
        }
        found
    }

    /// Checks that a `reason` or `recommendation` closes its braces and uses
    /// only [`PLACEHOLDERS`].
    pub(super) fn template(&mut self, at: &At<'_>, text: &Spanned<String>, field: &str) {
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
            } else if name == "topics" && self.topics_off {
                at.warn(
                    self,
                    text,
                    format!("{field}: {{topics}} is always empty: [score] open_topics = false"),
                );
            }
            rest = &after[close + 1..];
        }
    }

    /// Compiles a regex; a bad one is reported with the last line of the
    /// regex crate's explanation.
    pub(super) fn regex(
        &mut self,
        at: &At<'_>,
        pattern: &Spanned<String>,
        field: &str,
    ) -> Option<Regex> {
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

    /// Parses a duration that must be above zero, in milliseconds.
    pub(super) fn positive_duration(
        &mut self,
        at: &At<'_>,
        text: &Spanned<String>,
        field: &str,
    ) -> Option<i64> {
        let raw = text.get_ref().trim();
        let not_positive = format!("{field}: must be positive, got '{raw}'");
        if raw.starts_with('-') {
            at.err(self, text, not_positive);
            return None;
        }
        match parse_duration_ms(raw) {
            Ok(0) => {
                at.err(self, text, not_positive);
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

/// Index of the library named `id`, if any.
pub(super) fn library_idx(libraries: &[Library], id: &str) -> Option<LibraryIdx> {
    libraries
        .iter()
        .position(|l| &*l.id == id)
        .map(|i| i as LibraryIdx)
}

/// Compiling snippets in tests: one in-memory file, its problems as
/// `(line, message)`.
#[cfg(test)]
pub(super) mod testing {
    use std::path::PathBuf;

    use super::Source;
    use crate::signal_defs::{compile_sources, DefError, SignalSet};

    /// Expected problems: (needle of the line, start of the message).
    pub(crate) type Problems = &'static [(&'static str, &'static str)];

    /// A table-driven case: (name, text, expected problems).
    pub(crate) type Case = (&'static str, &'static str, Problems);

    /// One in-memory file `x.toml`.
    pub(crate) fn source(text: &str) -> Source {
        Source {
            path: PathBuf::from("x.toml"),
            text: text.to_string(),
        }
    }

    /// Compiles one file; panics with its errors if refused.
    pub(crate) fn compiled(text: &str) -> SignalSet {
        compile_sources(&[source(text)])
            .unwrap_or_else(|e| panic!("refused:\n{e}\n--- in ---\n{text}"))
    }

    /// The errors of one file as `(line, message)`; panics if it compiles.
    pub(crate) fn errors(text: &str) -> Vec<(usize, String)> {
        match compile_sources(&[source(text)]) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.0.iter().map(located).collect(),
        }
    }

    /// A problem as `(line, message)`, after checking it names `x.toml`.
    pub(crate) fn located(e: &DefError) -> (usize, String) {
        assert_eq!(e.file, PathBuf::from("x.toml"), "{e}");
        (e.line, e.message.clone())
    }

    /// 1-based line of the first line of `text` containing `needle`.
    pub(crate) fn line(text: &str, needle: &str) -> usize {
        text.lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("`{needle}` is not in\n{text}"))
            + 1
    }

    /// Asserts that `text` is refused with exactly `expected` problems, in
    /// order: each on the line holding its needle, its message starting
    /// with the given text.
    pub(crate) fn assert_errors(name: &str, text: &str, expected: &[(&str, &str)]) {
        let got = errors(text);
        let want: Vec<(usize, &str)> = expected
            .iter()
            .map(|(needle, message)| (line(text, needle), *message))
            .collect();
        let matches = got.len() == want.len()
            && got
                .iter()
                .zip(&want)
                .all(|((gl, gm), (wl, wm))| gl == wl && gm.starts_with(wm));
        assert!(matches, "{name}: expected\n{want:#?}\ngot\n{got:#?}");
    }
}
