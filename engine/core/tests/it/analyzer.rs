//! The analyzer against the Snowball English vocabulary, and the matcher's
//! promises on the shipped libraries.

use intent_core::extract::analyzer::{Analyzed, Analyzer, View};
use intent_core::extract::matcher::MatchScratch;

use crate::{root, shipped_defs};

#[test]
fn snowball_english_vocabulary_stems_exactly() {
    let dir = root().join("fixtures/snowball-en");
    let words = std::fs::read_to_string(dir.join("voc.txt")).unwrap();
    let stems = std::fs::read_to_string(dir.join("output.txt")).unwrap();
    let analyzer = Analyzer::new("english", 0).unwrap();
    let mut n = 0;
    let mut mismatches = Vec::new();
    for (word, expected) in words.lines().zip(stems.lines()) {
        n += 1;
        let stem = analyzer.stem_uncached(word);
        if stem != expected {
            mismatches.push(format!("{word} -> {stem}, expected {expected}"));
        }
    }
    assert_eq!(n, 42_603, "the whole vocabulary is checked");
    assert!(
        mismatches.is_empty(),
        "{} mismatches, first: {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(10)]
    );
}

fn matched_phrases(text: &str) -> Vec<String> {
    let defs = shipped_defs();
    let mut analyzed = Analyzed::default();
    defs.analyzer.analyze(text, View::Match, &mut analyzed);
    let mut hits = Vec::new();
    defs.matcher
        .find(&analyzed, &mut MatchScratch::default(), &mut hits);
    hits.iter()
        .map(|h| defs.matcher.phrase(h.phrase).text.to_string())
        .collect()
}

#[test]
fn shipped_libraries_match_inflections_and_chinese_inside_words() {
    for text in [
        "Remote-Diagnosing",
        "remote diagnostics",
        "remote diagnostic",
        "REMOTE DIAGNOSTICS!",
    ] {
        assert!(
            matched_phrases(text).contains(&"remote diagnostics".to_string()),
            "{text}"
        );
    }
    assert!(matched_phrases("基层医院设备远程诊断支持方案").contains(&"远程诊断".to_string()));
    assert!(matched_phrases("这个功能解决了我们基层医院长期以来的痛点")
        .iter()
        .any(|p| p == "解决了我们…痛点"));
    let negated = matched_phrases("我们没有预算");
    assert!(!negated.iter().any(|p| p.contains("预算")), "{negated:?}");
}

#[test]
fn tokens_of_real_text_stay_inside_the_input() {
    let corpus = std::fs::read_to_string(root().join("fixtures/corpus/zh-reviews.txt")).unwrap();
    let analyzer = Analyzer::default();
    let mut out = Analyzed::default();
    for line in corpus.lines().take(300) {
        for view in [View::Match, View::Words] {
            analyzer.analyze(line, view, &mut out);
            for token in &out.tokens {
                let (start, end) = (token.start as usize, token.end as usize);
                assert!(start < end && end <= line.len(), "{line}");
                assert!(line.is_char_boundary(start) && line.is_char_boundary(end));
            }
        }
    }
}
