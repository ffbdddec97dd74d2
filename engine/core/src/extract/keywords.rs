//! Open keywords: the top terms of an e-mail or transcript by TF-IDF against
//! running document frequencies, so that topics nobody listed in a library
//! still appear in the intent graph.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::analyzer::{Analyzed, Script};

/// A topic's key (its analysed form, which identifies it) and how it is
/// shown; shared by every account that raises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicName {
    /// The analysed form (stemmed, folded), which identifies the topic.
    pub key: Box<str>,
    /// The word as it appeared (lowercased), for display.
    pub display: Box<str>,
}

/// Terms the document-frequency table holds before it is halved.
const DEFAULT_CAPACITY: usize = 500_000;

/// Running document frequencies of analysed terms.
#[derive(Debug, Clone)]
pub struct DocFreq {
    counts: FxHashMap<Box<str>, u32>,
    n_docs: u64,
    capacity: usize,
}

impl Default for DocFreq {
    fn default() -> Self {
        DocFreq::with_capacity(DEFAULT_CAPACITY)
    }
}

/// A term chosen as an open keyword of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyword {
    /// The analysed form of the term.
    pub key: Box<str>,
    /// The word as it appeared (lowercased), for display.
    pub display: Box<str>,
    /// TF-IDF: occurrences in the document × (ln((1 + docs) / (1 + df)) + 1).
    pub score: f32,
}

impl DocFreq {
    /// An empty table that holds about `capacity` terms (at least 16) before
    /// halving its counts.
    pub fn with_capacity(capacity: usize) -> DocFreq {
        DocFreq {
            counts: FxHashMap::default(),
            n_docs: 0,
            capacity: capacity.max(16),
        }
    }

    /// Documents counted (halved with the counts).
    pub fn n_docs(&self) -> u64 {
        self.n_docs
    }

    /// Documents the analysed term `key` appeared in (0 when unknown).
    pub fn df(&self, key: &str) -> u32 {
        self.counts.get(key).copied().unwrap_or(0)
    }

    /// Counts the document `words` (analysed in the words view of `text`) and
    /// returns its top `k` terms by TF-IDF.
    pub fn observe_top(&mut self, text: &str, words: &Analyzed, k: usize) -> Vec<Keyword> {
        // Term frequencies of eligible terms, with the first token of each.
        let mut positions: FxHashMap<&str, usize> = FxHashMap::default();
        let mut tf: Vec<(&str, u32, usize)> = Vec::new();
        for (token_idx, token) in words.tokens.iter().enumerate() {
            let key = words.key(token);
            if !eligible(key, token.script) {
                continue;
            }
            match positions.get(key) {
                Some(&at) => tf[at].1 += 1,
                None => {
                    positions.insert(key, tf.len());
                    tf.push((key, 1, token_idx));
                }
            }
        }
        if self.counts.len() + tf.len() > self.capacity {
            self.halve();
        }
        self.n_docs += 1;
        for (key, _, _) in &tf {
            match self.counts.get_mut(*key) {
                Some(count) => *count = count.saturating_add(1),
                None => {
                    self.counts.insert((*key).into(), 1);
                }
            }
        }
        let n_docs = self.n_docs as f64;
        let mut scored: Vec<Keyword> = tf
            .iter()
            .map(|(key, count, token_idx)| {
                let df = self.counts.get(*key).copied().unwrap_or(1) as f64;
                let idf = ((1.0 + n_docs) / (1.0 + df)).ln() + 1.0;
                let token = &words.tokens[*token_idx];
                let display = text[token.start as usize..token.end as usize].to_lowercase();
                Keyword {
                    key: (*key).into(),
                    display: display.into(),
                    score: (*count as f64 * idf) as f32,
                }
            })
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.key.cmp(&b.key)));
        scored.truncate(k);
        scored
    }

    /// Halves every count and forgets terms that reach zero, keeping memory
    /// bounded while preserving the relative frequencies of common terms.
    fn halve(&mut self) {
        self.counts.retain(|_, count| {
            *count /= 2;
            *count > 0
        });
        self.n_docs /= 2;
    }
}

/// Terms worth a topic node: Latin words of 3+ characters that are not pure
/// numbers, Chinese words of 2+ characters.
fn eligible(key: &str, script: Script) -> bool {
    match script {
        Script::Latin => key.chars().count() >= 3 && !key.chars().all(|c| c.is_ascii_digit()),
        Script::Han => key.chars().count() >= 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::analyzer::{Analyzer, View};

    fn top(df: &mut DocFreq, text: &str) -> Vec<String> {
        let mut words = Analyzed::default();
        Analyzer::default().analyze(text, View::Words, &mut words);
        df.observe_top(text, &words, 3)
            .into_iter()
            .map(|k| k.display.into_string())
            .collect()
    }

    #[test]
    fn rare_terms_outrank_common_ones() {
        let mut df = DocFreq::default();
        for _ in 0..20 {
            top(&mut df, "meeting agenda for the weekly meeting");
        }
        let keywords = top(
            &mut df,
            "meeting about sterilization sterilization workflow",
        );
        assert_eq!(keywords[0], "sterilization");
        assert!(keywords.iter().position(|k| k == "meeting") > Some(0));
        assert_eq!(df.df("meet"), 21);
    }

    #[test]
    fn chinese_words_become_keywords() {
        let mut df = DocFreq::default();
        let keywords = top(&mut df, "我们医院的影像设备维保费用太高，影像设备经常停机");
        assert!(
            keywords
                .iter()
                .any(|k| k.contains("影像") || k.contains("设备")),
            "{keywords:?}"
        );
    }

    #[test]
    fn capacity_is_bounded_by_halving() {
        let mut df = DocFreq::with_capacity(16);
        for i in 0..100 {
            top(&mut df, &format!("alpha{i} beta{i} gamma{i} common"));
        }
        assert!(df.counts.len() <= 16 + 4);
        assert!(df.df("common") > 0);
    }
}
