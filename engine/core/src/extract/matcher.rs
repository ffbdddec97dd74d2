//! The phrase matcher: every phrase of every library, analysed with the same
//! [`Analyzer`] as the text, compiled once into one Aho-Corasick automaton
//! over the analysed token stream.
//!
//! The haystack is the analysed text as `" key key key "`, and each pattern is
//! `" key key "`, so matches always start and end on token boundaries. A
//! phrase may contain `…` (or `...`): a gap of up to [`MAX_GAP_WORDS`] words
//! between its parts ("solved our … pain"). A match right after a negation
//! ("no", "not", 不, 没有 …) does not count.

use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use rustc_hash::FxHashMap;

use super::analyzer::{Analyzed, Analyzer, Script, View};

/// Words allowed between the parts of a gapped phrase; a Chinese character
/// counts as 0.4 of a word (so about 20 characters fit).
pub const MAX_GAP_WORDS: u32 = 8;
/// The most tokens a gap can span (all Chinese characters).
const MAX_GAP_TOKENS: u32 = MAX_GAP_WORDS * 5 / 2;

/// Identifies a phrase library within a compiled signal set.
pub type LibraryIdx = u16;

/// One phrase as an analyst wrote it.
#[derive(Debug, Clone)]
pub struct Phrase {
    /// The library the phrase belongs to.
    pub library: LibraryIdx,
    /// The phrase as written, shown as the matched keyword in evidence.
    pub text: Arc<str>,
    /// Parts of the phrase, separated by `…` gaps (1 for an ungapped phrase).
    pub n_parts: u8,
    /// Whether a match right after a negation is dropped (its library's
    /// `negation`).
    pub negation: bool,
}

/// A phrase found in a text, with its token range (end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhraseHit {
    /// The phrase, as an index into [`PhraseMatcher::phrases`].
    pub phrase: u32,
    /// Index of the first token matched in the analysed text.
    pub start: u32,
    /// Index just past the last token matched (exclusive).
    pub end: u32,
}

/// Why a phrase could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhraseProblem {
    /// Nothing of the phrase is left once analysed (only stopwords or
    /// punctuation), or it has more than 255 parts.
    EmptyAfterAnalysis,
}

/// A phrase part as a pattern: which phrase, which part.
#[derive(Debug, Clone, Copy)]
struct PatternRef {
    phrase: u32,
    part: u8,
}

/// All phrases of a signal set, compiled.
#[derive(Clone)]
pub struct PhraseMatcher {
    automaton: Option<AhoCorasick>,
    /// For each automaton pattern, the phrase parts it stands for.
    patterns: Vec<Vec<PatternRef>>,
    phrases: Vec<Phrase>,
}

impl std::fmt::Debug for PhraseMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhraseMatcher")
            .field("phrases", &self.phrases.len())
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

/// Builds a [`PhraseMatcher`].
pub struct PhraseMatcherBuilder<'a> {
    analyzer: &'a Analyzer,
    pattern_ids: FxHashMap<String, usize>,
    patterns: Vec<Vec<PatternRef>>,
    pattern_texts: Vec<String>,
    phrases: Vec<Phrase>,
    scratch: Analyzed,
}

impl<'a> PhraseMatcherBuilder<'a> {
    /// An empty builder that analyses phrases with `analyzer`.
    pub fn new(analyzer: &'a Analyzer) -> Self {
        PhraseMatcherBuilder {
            analyzer,
            pattern_ids: FxHashMap::default(),
            patterns: Vec::new(),
            pattern_texts: Vec::new(),
            phrases: Vec::new(),
            scratch: Analyzed::default(),
        }
    }

    /// Analyses a phrase and adds it; returns its index, or why it cannot match.
    /// Matches right after a negation are dropped.
    pub fn add(&mut self, library: LibraryIdx, text: &str) -> Result<u32, PhraseProblem> {
        self.add_with(library, text, true)
    }

    /// [`add`](Self::add), with `negation` saying whether matches right after
    /// a negation are dropped.
    pub fn add_with(
        &mut self,
        library: LibraryIdx,
        text: &str,
        negation: bool,
    ) -> Result<u32, PhraseProblem> {
        let normalized = text.replace("...", "…");
        let parts: Vec<String> = normalized
            .split('…')
            .map(|part| {
                self.analyzer.analyze(part, View::Match, &mut self.scratch);
                self.scratch.keys.clone()
            })
            .filter(|keys| !keys.trim().is_empty())
            .collect();
        if parts.is_empty() || parts.len() > u8::MAX as usize {
            return Err(PhraseProblem::EmptyAfterAnalysis);
        }
        let phrase_idx = self.phrases.len() as u32;
        for (part_idx, pattern) in parts.iter().enumerate() {
            let id = match self.pattern_ids.get(pattern) {
                Some(id) => *id,
                None => {
                    let id = self.patterns.len();
                    self.pattern_ids.insert(pattern.clone(), id);
                    self.patterns.push(Vec::new());
                    self.pattern_texts.push(pattern.clone());
                    id
                }
            };
            self.patterns[id].push(PatternRef {
                phrase: phrase_idx,
                part: part_idx as u8,
            });
        }
        self.phrases.push(Phrase {
            library,
            text: text.into(),
            n_parts: parts.len() as u8,
            negation,
        });
        Ok(phrase_idx)
    }

    /// The analysed form of a phrase, for diagnostics (`intent check`).
    pub fn analysed(&mut self, text: &str) -> String {
        self.analyzer
            .analyze(&text.replace("...", " "), View::Match, &mut self.scratch);
        self.scratch.keys.trim().to_string()
    }

    /// Compiles the phrases added into one automaton.
    pub fn build(self) -> PhraseMatcher {
        let automaton = if self.pattern_texts.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&self.pattern_texts)
                    .or_else(|_| {
                        // A DFA can exceed its size limit on very large libraries.
                        AhoCorasickBuilder::new()
                            .match_kind(MatchKind::Standard)
                            .build(&self.pattern_texts)
                    })
                    .expect("phrase patterns always compile into a non-DFA automaton"),
            )
        };
        PhraseMatcher {
            automaton,
            patterns: self.patterns,
            phrases: self.phrases,
        }
    }
}

/// Scratch space reused across [`PhraseMatcher::find`] calls.
#[derive(Debug, Default)]
pub struct MatchScratch {
    /// Token index by haystack byte offset, via the start offsets of keys.
    key_starts: Vec<u32>,
    /// Part hits of multi-part phrases: (phrase, part, start token, end token).
    partials: Vec<(u32, u8, u32, u32)>,
}

const NEGATIONS_LATIN: &[&str] = &[
    "not", "no", "never", "without", "nor", "cannot", "don", "didn", "isn", "hasn", "haven", "won",
    "wasn",
];
const NEGATIONS_HAN: &[&str] = &["不", "没", "无", "未", "非", "别"];

impl PhraseMatcher {
    /// Every phrase, in the order added (a [`PhraseHit::phrase`] indexes it).
    pub fn phrases(&self) -> &[Phrase] {
        &self.phrases
    }

    /// The phrase at index `idx` (from [`PhraseHit::phrase`]); panics when out of range.
    pub fn phrase(&self, idx: u32) -> &Phrase {
        &self.phrases[idx as usize]
    }

    /// Finds every phrase occurring in an analysed text (in [`View::Match`]),
    /// appending hits to `hits` in order of their end.
    pub fn find(&self, text: &Analyzed, scratch: &mut MatchScratch, hits: &mut Vec<PhraseHit>) {
        let Some(automaton) = &self.automaton else {
            return;
        };
        if text.tokens.is_empty() {
            return;
        }
        scratch.key_starts.clear();
        scratch
            .key_starts
            .extend(text.tokens.iter().map(|t| t.key_start));
        scratch.partials.clear();
        for m in automaton.find_overlapping_iter(text.keys.as_str()) {
            // Pattern starts with the space before its first key.
            let first_key = m.start() as u32 + 1;
            let Ok(start_tok) = scratch.key_starts.binary_search(&first_key) else {
                continue;
            };
            let start_tok = start_tok as u32;
            let n_tokens = text.keys[m.start()..m.end()].matches(' ').count() as u32 - 1;
            let end_tok = start_tok + n_tokens;
            for pattern in &self.patterns[m.pattern().as_usize()] {
                let phrase = &self.phrases[pattern.phrase as usize];
                if phrase.n_parts == 1 {
                    if !(phrase.negation && negated(text, start_tok)) {
                        hits.push(PhraseHit {
                            phrase: pattern.phrase,
                            start: start_tok,
                            end: end_tok,
                        });
                    }
                } else {
                    scratch
                        .partials
                        .push((pattern.phrase, pattern.part, start_tok, end_tok));
                }
            }
        }
        if !scratch.partials.is_empty() {
            self.join_parts(text, scratch, hits);
        }
    }

    /// Joins the parts of gapped phrases: part k+1 must start after part k
    /// ends, with at most [`MAX_GAP_WORDS`] words between them.
    fn join_parts(&self, text: &Analyzed, scratch: &mut MatchScratch, hits: &mut Vec<PhraseHit>) {
        scratch.partials.sort_unstable();
        let partials = &scratch.partials;
        let mut i = 0;
        while i < partials.len() {
            let phrase_idx = partials[i].0;
            let mut j = i;
            while j < partials.len() && partials[j].0 == phrase_idx {
                j += 1;
            }
            let group = &partials[i..j];
            let n_parts = self.phrases[phrase_idx as usize].n_parts;
            // Try each occurrence of part 0 as the anchor, greedily extending.
            let negation = self.phrases[phrase_idx as usize].negation;
            for first in group.iter().filter(|p| p.1 == 0) {
                if negation && negated(text, first.2) {
                    continue;
                }
                let mut end = first.3;
                let mut complete = true;
                for part in 1..n_parts {
                    // The group is sorted by (part, start): look only at the
                    // starts that can be within the gap.
                    let lo = group.partition_point(|p| (p.1, p.2) < (part, end));
                    let next = group[lo..]
                        .iter()
                        .take_while(|p| p.1 == part && p.2 - end <= MAX_GAP_TOKENS)
                        .filter(|p| gap_fits(text, end, p.2))
                        .map(|p| p.3)
                        .min();
                    match next {
                        Some(next_end) => end = next_end,
                        None => {
                            complete = false;
                            break;
                        }
                    }
                }
                if complete {
                    hits.push(PhraseHit {
                        phrase: phrase_idx,
                        start: first.2,
                        end,
                    });
                    break;
                }
            }
            i = j;
        }
    }
}

/// Whether the tokens in `from..to` fit in a phrase gap.
fn gap_fits(text: &Analyzed, from: u32, to: u32) -> bool {
    if to - from > MAX_GAP_TOKENS {
        return false;
    }
    let cost: u32 = text.tokens[from as usize..to as usize]
        .iter()
        .map(|t| if t.script == Script::Han { 2 } else { 5 })
        .sum();
    cost <= MAX_GAP_WORDS * 5
}

/// Whether the tokens right before `start` negate what follows.
fn negated(text: &Analyzed, start: u32) -> bool {
    if start == 0 {
        return false;
    }
    let prev = &text.tokens[start as usize - 1];
    let key = text.key(prev);
    match prev.script {
        Script::Latin => NEGATIONS_LATIN.contains(&key),
        Script::Han => {
            if NEGATIONS_HAN.contains(&key) {
                return true;
            }
            // 没有 / 未有 / 无有 before the phrase.
            key == "有" && start >= 2 && {
                let before = &text.tokens[start as usize - 2];
                before.script == Script::Han && NEGATIONS_HAN.contains(&text.key(before))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        analyzer: Analyzer,
        matcher: PhraseMatcher,
    }

    fn fixture(phrases: &[&str]) -> Fixture {
        let analyzer = Analyzer::default();
        let mut builder = PhraseMatcherBuilder::new(&analyzer);
        for phrase in phrases {
            builder.add(0, phrase).unwrap();
        }
        let matcher = builder.build();
        Fixture { analyzer, matcher }
    }

    impl Fixture {
        fn check(&self, text: &str, expected: &[&str]) {
            let mut analyzed = Analyzed::default();
            self.analyzer.analyze(text, View::Match, &mut analyzed);
            let mut hits = Vec::new();
            self.matcher
                .find(&analyzed, &mut MatchScratch::default(), &mut hits);
            let mut found: Vec<&str> = hits
                .iter()
                .map(|h| &*self.matcher.phrase(h.phrase).text)
                .collect();
            found.sort_unstable();
            let mut expected = expected.to_vec();
            expected.sort_unstable();
            assert_eq!(found, expected, "text: {text}");
        }
    }

    #[test]
    fn inflections_and_punctuation_match_the_phrase() {
        let f = fixture(&["remote diagnostics", "远程诊断"]);
        f.check("Any Remote-Diagnosing options?", &["remote diagnostics"]);
        f.check("we need remote diagnostic support", &["remote diagnostics"]);
        f.check("基层医院设备远程诊断支持方案", &["远程诊断"]);
        f.check("remote team, diagnostics later", &[]);
        f.check("远程会诊", &[]);
    }

    #[test]
    fn overlapping_and_repeated_phrases_are_all_found() {
        let f = fixture(&["budget approved", "approved", "capex budget"]);
        f.check(
            "capex budget approved",
            &["budget approved", "approved", "capex budget"],
        );
        f.check("approved, approved", &["approved", "approved"]);
    }

    #[test]
    fn gapped_phrases_match_within_the_gap_limit() {
        let f = fixture(&["this feature solved our … pain", "解决了我们…痛点"]);
        f.check(
            "Honestly this feature solved our biggest scheduling pain.",
            &["this feature solved our … pain"],
        );
        f.check(
            "这个功能解决了我们基层医院长期以来的痛点",
            &["解决了我们…痛点"],
        );
        f.check("this feature solved our scheduling of nurses across three campuses, two clinics and several remote wards; pain remains", &[]);
        f.check("pain: this feature solved our", &[]);
    }

    #[test]
    fn long_repetitive_text_with_gapped_phrase_parts_is_handled() {
        // Many anchors and many later parts, none within the gap of another:
        // must not degrade to anchors × parts × gap work.
        let f = fixture(&["solved our … problem"]);
        let text = format!(
            "{}{}",
            "solved our ".repeat(20_000),
            "filler ".repeat(30) + &"problem ".repeat(20_000)
        );
        f.check(&text, &[]);
        f.check(
            &format!("{}solved our big problem", "solved ".repeat(20_000)),
            &["solved our … problem"],
        );
    }

    #[test]
    fn without_negation_a_negated_match_counts_and_every_occurrence_is_a_hit() {
        let analyzer = Analyzer::new("none", 0).unwrap();
        let mut builder = PhraseMatcherBuilder::new(&analyzer);
        for phrase in [
            "pacs",
            "integration",
            "pacs integration",
            "budget approved … soon",
        ] {
            builder.add_with(0, phrase, false).unwrap();
        }
        let matcher = builder.build();
        let f = Fixture { analyzer, matcher };
        // Nested and overlapping occurrences each count, as do negated ones.
        f.check(
            "no pacs integration, not pacs",
            &["integration", "pacs", "pacs", "pacs integration"],
        );
        f.check("not budget approved yet, soon", &["budget approved … soon"]);
    }

    #[test]
    fn negated_matches_do_not_count() {
        let f = fixture(&["budget approved", "有预算", "预算"]);
        f.check("the budget approved last week", &["budget approved"]);
        f.check("no budget approved yet", &[]);
        f.check("我们没有预算", &[]);
        f.check("我们有预算", &["有预算", "预算"]);
    }

    #[test]
    fn phrases_of_only_stopwords_are_refused() {
        let analyzer = Analyzer::default();
        let mut builder = PhraseMatcherBuilder::new(&analyzer);
        assert_eq!(
            builder.add(0, "the of and"),
            Err(PhraseProblem::EmptyAfterAnalysis)
        );
        assert_eq!(builder.add(0, "…"), Err(PhraseProblem::EmptyAfterAnalysis));
    }
}
