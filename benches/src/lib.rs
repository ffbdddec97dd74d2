//! Shared set-up for the benchmarks, the memory probe and the load
//! generator: the shipped signal definitions, the text corpora, and
//! synthetic streams built from them; [`loadgen`] holds the load generator.

use std::path::PathBuf;
use std::sync::Arc;

use intent_analyst::synth::{self, Corpus, SynthConfig};
use intent_core::SignalSet;

pub mod loadgen;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ has a parent")
        .to_path_buf()
}

/// The shipped signal definitions.
pub fn shipped_defs() -> Arc<SignalSet> {
    let dir = root().join("signal-defs");
    Arc::new(intent_files::load_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())))
}

/// English e-mails (subject + body) of the shipped corpus.
pub const EMAILS: &str = include_str!("../../fixtures/corpus/email-en.jsonl");
/// AMI meeting utterances.
pub const UTTERANCES: &str = include_str!("../../fixtures/corpus/ami-utterances.txt");
/// Chinese reviews.
pub const CHINESE: &str = include_str!("../../fixtures/corpus/zh-reviews.txt");

pub fn corpus() -> Corpus {
    Corpus::from_texts(EMAILS, UTTERANCES, CHINESE)
}

/// A synthetic stream as encoded JSON lines.
pub fn stream(config: &SynthConfig) -> Vec<Vec<u8>> {
    let corpus = corpus();
    let mut lines = Vec::with_capacity(config.n_events);
    synth::generate(config, &corpus, |event| {
        lines.push(event.to_string().into_bytes())
    });
    lines
}

/// Reads this process's resident set size in bytes (Linux).
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
