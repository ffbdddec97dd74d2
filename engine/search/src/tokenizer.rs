//! The core's text analyzer as a tantivy tokenizer, so that the evidence
//! index and the phrase matcher see the same tokens: lowercased, stopwords
//! dropped, Snowball-stemmed and prefix-folded Latin words, and Chinese one
//! character per token ([`View::Match`]). A query is analysed the same way,
//! so "diagnosing" finds "remote diagnostics" (both fold to `diagnos`) and
//! `诊断` finds `远程诊断` (a phrase of two character tokens).

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

use intent_core::extract::analyzer::{Analyzed, Analyzer, View};

/// The name the tokenizer is registered under in the index.
pub const NAME: &str = "intent";

#[derive(Clone)]
pub struct IntentTokenizer {
    analyzer: Analyzer,
    analyzed: Analyzed,
}

impl IntentTokenizer {
    pub fn new(analyzer: Analyzer) -> IntentTokenizer {
        IntentTokenizer {
            analyzer,
            analyzed: Analyzed::default(),
        }
    }
}

/// The tokens of one text, with byte offsets into it (for highlighting).
pub struct IntentTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl Tokenizer for IntentTokenizer {
    type TokenStream<'a> = IntentTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> IntentTokenStream {
        self.analyzer.analyze(text, View::Match, &mut self.analyzed);
        let tokens = self
            .analyzed
            .tokens
            .iter()
            .enumerate()
            .map(|(position, t)| Token {
                offset_from: t.start as usize,
                offset_to: t.end as usize,
                position,
                text: self.analyzed.key(t).to_string(),
                position_length: 1,
            })
            .collect();
        IntentTokenStream { tokens, next: 0 }
    }
}

impl TokenStream for IntentTokenStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<(String, &str)> {
        let mut tokenizer = IntentTokenizer::new(Analyzer::default());
        let mut stream = tokenizer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            let t = stream.token();
            out.push((t.text.clone(), &text[t.offset_from..t.offset_to]));
        }
        out
    }

    #[test]
    fn the_index_sees_the_matchers_tokens_with_their_source_spans() {
        assert_eq!(
            keys("Remote Diagnostics, diagnosing"),
            [
                ("remot".to_string(), "Remote"),
                ("diagnos".to_string(), "Diagnostics"),
                ("diagnos".to_string(), "diagnosing"),
            ]
        );
        assert_eq!(
            keys("远程诊断"),
            [
                ("远".to_string(), "远"),
                ("程".to_string(), "程"),
                ("诊".to_string(), "诊"),
                ("断".to_string(), "断"),
            ]
        );
    }
}
