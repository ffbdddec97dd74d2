//! The text analyzer shared by the phrase matcher, open-topic extraction and
//! (later) the evidence index: tokenize Unicode text, lowercase, drop
//! stopwords, stem with Snowball, fold stems to a prefix, and segment Chinese.
//!
//! Two views of the same text are produced:
//! - [`View::Match`]: Chinese runs become one token per character, so a
//!   Chinese phrase matches wherever its characters appear in sequence,
//!   whatever the word segmenter would have done with the surrounding text;
//! - [`View::Words`]: Chinese runs are segmented into words by jieba, for topics.
//!
//! Latin-script tokens are treated the same in both views. Stemming goes
//! through a per-thread cache, because Snowball costs far more than a hash
//! lookup and the working vocabulary is small.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use jieba_rs::Jieba;
use rust_stemmers::{Algorithm, Stemmer};
use rustc_hash::{FxHashMap, FxHashSet};

use super::stopwords;

/// Stemming languages that can be named in signal-defs.
pub const LANGUAGES: &[(&str, Algorithm)] = &[
    ("arabic", Algorithm::Arabic),
    ("danish", Algorithm::Danish),
    ("dutch", Algorithm::Dutch),
    ("english", Algorithm::English),
    ("finnish", Algorithm::Finnish),
    ("french", Algorithm::French),
    ("german", Algorithm::German),
    ("greek", Algorithm::Greek),
    ("hungarian", Algorithm::Hungarian),
    ("italian", Algorithm::Italian),
    ("norwegian", Algorithm::Norwegian),
    ("portuguese", Algorithm::Portuguese),
    ("romanian", Algorithm::Romanian),
    ("russian", Algorithm::Russian),
    ("spanish", Algorithm::Spanish),
    ("swedish", Algorithm::Swedish),
    ("tamil", Algorithm::Tamil),
    ("turkish", Algorithm::Turkish),
];

/// The language name of an analyzer that neither stems nor drops stopwords:
/// tokens are the lowercase words as written (then prefix-folded, if set).
pub const NO_STEMMING: &str = "none";

/// Which view of the text to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Chinese as single characters; for phrase matching.
    Match,
    /// Chinese as segmented words; for topics and search.
    Words,
}

/// What kind of characters a token is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// A word of letters and digits in any script but Han (Latin, Cyrillic,
    /// Greek ...), stemmed with the configured language.
    Latin,
    /// A Chinese character ([`View::Match`]) or word ([`View::Words`]).
    Han,
}

/// One analysed token: its normalised key in [`Analyzed::keys`] and the byte
/// range of the original text it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// Byte offset of the token's key in [`Analyzed::keys`].
    pub key_start: u32,
    /// Byte offset just past the token's key in [`Analyzed::keys`].
    pub key_end: u32,
    /// Byte offset of the token in the original text.
    pub start: u32,
    /// Byte offset just past the token in the original text.
    pub end: u32,
    /// What kind of characters it is made of.
    pub script: Script,
}

/// A reusable buffer of analysed tokens. Keys are stored one after another in
/// `keys`, separated by single spaces and with a space before the first and
/// after the last, which is exactly the haystack the phrase matcher needs.
#[derive(Debug, Default, Clone)]
pub struct Analyzed {
    /// The tokens' keys, space-separated with a space at both ends.
    pub keys: String,
    /// The tokens, in text order.
    pub tokens: Vec<Token>,
}

impl Analyzed {
    /// Empties the buffer, keeping its capacity.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.tokens.clear();
    }

    /// The normalised key of `token` (a token of this buffer).
    pub fn key(&self, token: &Token) -> &str {
        &self.keys[token.key_start as usize..token.key_end as usize]
    }

    /// Every token's key, in text order.
    pub fn iter_keys(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(|t| self.key(t))
    }

    fn push(&mut self, key: &str, start: usize, end: usize, script: Script) {
        if self.keys.is_empty() {
            self.keys.push(' ');
        }
        let key_start = self.keys.len() as u32;
        self.keys.push_str(key);
        let key_end = self.keys.len() as u32;
        self.keys.push(' ');
        self.tokens.push(Token {
            key_start,
            key_end,
            start: start as u32,
            end: end as u32,
            script,
        });
    }
}

/// The analyzer configuration compiled from signal-defs.
#[derive(Clone)]
pub struct Analyzer {
    language: &'static str,
    /// The Snowball algorithm; `None` for [`NO_STEMMING`].
    algorithm: Option<Algorithm>,
    /// Maximum characters of a stem kept (0 = keep all). Folding to a prefix
    /// makes inflections that Snowball leaves apart meet ("diagnosing" →
    /// `diagnos`, "diagnostics" → `diagnost` → `diagnos`).
    prefix_fold: usize,
    stopwords: Arc<FxHashSet<&'static str>>,
    zh_stopwords: Arc<FxHashSet<&'static str>>,
    language_idx: usize,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("language", &self.language)
            .field("prefix_fold", &self.prefix_fold)
            .finish()
    }
}

/// Entries the per-thread stem cache holds before it is cleared.
const STEM_CACHE_CAPACITY: usize = 200_000;
/// Longer words are not cached (bounds the cache's memory).
const MAX_CACHED_WORD_BYTES: usize = 48;

/// Lowercase word → its Snowball stem, or `None` for a stopword.
type StemCache = FxHashMap<Box<str>, Option<Box<str>>>;

thread_local! {
    /// Per-thread, per-language caches of lowercase word → Snowball stem.
    static STEM_CACHE: RefCell<Vec<StemCache>> =
        RefCell::new(vec![FxHashMap::default(); LANGUAGES.len()]);
    static STEMMERS: RefCell<Vec<Option<Stemmer>>> =
        RefCell::new((0..LANGUAGES.len()).map(|_| None).collect());
}

/// The jieba dictionary is large; load it once per process.
fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer::new("english", 7).expect("english is a known language")
    }
}

impl Analyzer {
    /// An analyzer for a Snowball language (see [`LANGUAGES`]); `None` for an
    /// unknown language name.
    pub fn new(language: &str, prefix_fold: usize) -> Option<Analyzer> {
        if language == NO_STEMMING {
            return Some(Analyzer {
                language: NO_STEMMING,
                algorithm: None,
                prefix_fold,
                stopwords: Arc::new(FxHashSet::default()),
                zh_stopwords: Arc::new(FxHashSet::default()),
                language_idx: 0,
            });
        }
        let language_idx = LANGUAGES.iter().position(|(name, _)| *name == language)?;
        let (name, algorithm) = LANGUAGES[language_idx];
        let stopwords: FxHashSet<&'static str> = if algorithm == Algorithm::English {
            stopwords::ENGLISH.iter().copied().collect()
        } else {
            FxHashSet::default()
        };
        Some(Analyzer {
            language: name,
            algorithm: Some(algorithm),
            prefix_fold,
            stopwords: Arc::new(stopwords),
            zh_stopwords: Arc::new(stopwords::CHINESE.iter().copied().collect()),
            language_idx,
        })
    }

    /// The Snowball language's name, as in [`LANGUAGES`], or [`NO_STEMMING`].
    pub fn language(&self) -> &'static str {
        self.language
    }

    /// Maximum characters of a stem kept (0 = keep all).
    pub fn prefix_fold(&self) -> usize {
        self.prefix_fold
    }

    /// Warms up lazily loaded resources (the jieba dictionary).
    pub fn warm_up(&self) {
        let _ = jieba();
    }

    /// Analyses `text` into `out` (cleared first).
    pub fn analyze(&self, text: &str, view: View, out: &mut Analyzed) {
        out.clear();
        self.analyze_append(text, view, out);
    }

    /// Analyses `text` and appends its tokens to `out`.
    pub fn analyze_append(&self, text: &str, view: View, out: &mut Analyzed) {
        STEM_CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            let stems = &mut cache[self.language_idx];
            let mut lower = String::new();
            let bytes = text.as_bytes();
            let mut pos = 0;
            while pos < bytes.len() {
                let byte = bytes[pos];
                if byte < 0x80 {
                    // ASCII fast path: most Latin text never leaves it.
                    if !byte.is_ascii_alphanumeric() {
                        pos += 1;
                        continue;
                    }
                    let start = pos;
                    let mut end = pos + 1;
                    while end < bytes.len() && bytes[end].is_ascii_alphanumeric() {
                        end += 1;
                    }
                    if end < bytes.len()
                        && bytes[end] >= 0x80
                        && next_char(text, end).is_alphanumeric()
                        && !is_han(next_char(text, end))
                    {
                        // A word that goes on in non-ASCII letters ("café"): general path.
                        end = self.scan_word(text, end);
                        lower.clear();
                        lower.extend(text[start..end].chars().flat_map(char::to_lowercase));
                    } else {
                        lower.clear();
                        lower.push_str(&text[start..end]);
                        lower.make_ascii_lowercase();
                    }
                    self.latin_word(stems, &lower, start, end, out);
                    pos = end;
                    continue;
                }
                let ch = next_char(text, pos);
                let width = ch.len_utf8();
                if is_han(ch) {
                    let start = pos;
                    let mut end = pos + width;
                    while end < bytes.len() {
                        let c = next_char(text, end);
                        if !is_han(c) {
                            break;
                        }
                        end += c.len_utf8();
                    }
                    self.han_run(text, start, end, view, out);
                    pos = end;
                } else if ch.is_alphanumeric() {
                    let start = pos;
                    let end = self.scan_word(text, pos + width);
                    lower.clear();
                    lower.extend(text[start..end].chars().flat_map(char::to_lowercase));
                    self.latin_word(stems, &lower, start, end, out);
                    pos = end;
                } else {
                    pos += width;
                }
            }
        })
    }

    /// The end of a non-Han alphanumeric word that continues at `pos`.
    fn scan_word(&self, text: &str, mut pos: usize) -> usize {
        while pos < text.len() {
            let c = next_char(text, pos);
            if is_han(c) || !c.is_alphanumeric() {
                break;
            }
            pos += c.len_utf8();
        }
        pos
    }

    /// Drops a stopword, or stems (through the cache), folds and pushes a word.
    fn latin_word(
        &self,
        stems: &mut StemCache,
        lower: &str,
        start: usize,
        end: usize,
        out: &mut Analyzed,
    ) {
        if self.algorithm.is_none() {
            // No stemming, no stopwords: the word as it is, and no cache.
            out.push(fold(lower, self.prefix_fold), start, end, Script::Latin);
            return;
        }
        let entry = match stems.get(lower) {
            Some(entry) => entry,
            None => {
                let entry = if self.stopwords.contains(lower) {
                    None
                } else {
                    Some(self.stem_uncached(lower).into_boxed_str())
                };
                if lower.len() > MAX_CACHED_WORD_BYTES {
                    // Long "words" (hashes, base64) are stemmed but not remembered.
                    if let Some(stem) = entry {
                        out.push(fold(&stem, self.prefix_fold), start, end, Script::Latin);
                    }
                    return;
                }
                if stems.len() >= STEM_CACHE_CAPACITY {
                    stems.clear();
                }
                stems.entry(lower.into()).or_insert(entry)
            }
        };
        if let Some(stem) = entry {
            out.push(fold(stem, self.prefix_fold), start, end, Script::Latin);
        }
    }

    fn han_run(&self, text: &str, start: usize, end: usize, view: View, out: &mut Analyzed) {
        let run = &text[start..end];
        match view {
            View::Match => {
                for (offset, ch) in run.char_indices() {
                    let mut buf = [0u8; 4];
                    let s = ch.encode_utf8(&mut buf);
                    let at = start + offset;
                    out.push(s, at, at + ch.len_utf8(), Script::Han);
                }
            }
            View::Words => {
                for token in jieba().cut(run, false) {
                    if self.zh_stopwords.contains(token.word) {
                        continue;
                    }
                    out.push(
                        token.word,
                        start + token.byte_start,
                        start + token.byte_end,
                        Script::Han,
                    );
                }
            }
        }
    }

    /// The Snowball stem of one lowercase word, without cache or folding.
    pub fn stem_uncached(&self, lower: &str) -> String {
        // A stemmer bug must not take the engine down: a panicking word is
        // kept as it is (the result is cached, so it is tried once).
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.stem_with_stemmer(lower)
        }))
        .unwrap_or_else(|_| lower.to_string())
    }

    fn stem_with_stemmer(&self, lower: &str) -> String {
        let Some(algorithm) = self.algorithm else {
            return lower.to_string();
        };
        STEMMERS.with(|stemmers| {
            let mut stemmers = stemmers.borrow_mut();
            let stemmer =
                stemmers[self.language_idx].get_or_insert_with(|| Stemmer::create(algorithm));
            stemmer.stem(lower).into_owned()
        })
    }
}

/// Keeps at most `max_chars` characters of a stem (0 = all).
fn fold(stem: &str, max_chars: usize) -> &str {
    if max_chars == 0 || stem.len() <= max_chars {
        return stem;
    }
    match stem.char_indices().nth(max_chars) {
        Some((idx, _)) => &stem[..idx],
        None => stem,
    }
}

#[inline]
fn next_char(text: &str, pos: usize) -> char {
    // `pos` is always on a char boundary.
    text[pos..].chars().next().unwrap_or('\u{FFFD}')
}

/// CJK ideographs (Han script), the ranges jieba segments.
#[inline]
pub fn is_han(ch: char) -> bool {
    matches!(ch as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2A6DF | 0x2A700..=0x2EBEF | 0x30000..=0x3134F)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str, view: View) -> Vec<String> {
        let mut out = Analyzed::default();
        Analyzer::default().analyze(text, view, &mut out);
        out.iter_keys().map(str::to_string).collect()
    }

    #[test]
    fn english_is_lowercased_stemmed_folded_and_stopworded() {
        assert_eq!(keys("Remote-Diagnosing", View::Match), ["remot", "diagnos"]);
        assert_eq!(
            keys("remote diagnostics", View::Match),
            ["remot", "diagnos"]
        );
        assert_eq!(
            keys("The budget has been APPROVED!", View::Match),
            ["budget", "approv"]
        );
        assert_eq!(
            keys("budget is not approved", View::Match),
            ["budget", "not", "approv"]
        );
    }

    #[test]
    fn chinese_is_per_character_for_matching_and_segmented_for_words() {
        assert_eq!(keys("远程诊断", View::Match), ["远", "程", "诊", "断"]);
        let words = keys("基层医院设备远程诊断支持方案", View::Words);
        assert!(
            words.contains(&"诊断".to_string()) || words.contains(&"远程诊断".to_string()),
            "{words:?}"
        );
        assert!(!keys("我们的预算", View::Words).contains(&"的".to_string()));
    }

    #[test]
    fn mixed_text_keeps_offsets_into_the_original() {
        let text = "Need 远程诊断 for CT-scanners";
        let mut out = Analyzed::default();
        Analyzer::default().analyze(text, View::Match, &mut out);
        let originals: Vec<&str> = out
            .tokens
            .iter()
            .map(|t| &text[t.start as usize..t.end as usize])
            .collect();
        assert_eq!(
            originals,
            ["Need", "远", "程", "诊", "断", "CT", "scanners"]
        );
        assert_eq!(out.keys, " need 远 程 诊 断 ct scanner ");
    }

    #[test]
    fn folding_respects_char_boundaries() {
        assert_eq!(fold("diagnost", 7), "diagnos");
        assert_eq!(fold("ünïcödéé", 3), "ünï");
        assert_eq!(fold("short", 0), "short");
    }

    #[test]
    fn unknown_language_is_refused() {
        assert!(Analyzer::new("klingon", 7).is_none());
        assert_eq!(Analyzer::new("german", 0).unwrap().language(), "german");
    }
}
