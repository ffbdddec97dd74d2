//! Criterion benchmarks of the pure core, one group per stage:
//! `cargo bench -p benches` (or `-- analyzer` etc. for one group).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use benches::{corpus, shipped_defs, stream, CHINESE, UTTERANCES};
use intent_analyst::synth::SynthConfig;
use intent_core::extract::analyzer::{Analyzed, View};
use intent_core::extract::matcher::MatchScratch;
use intent_core::extract::Extractor;
use intent_core::graph::AccountCore;
use intent_core::ingest::decode;
use intent_core::{Pipeline, PipelineConfig};

/// The same allocator as the `intent` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The e-mail corpus as one English text, subject and body per message.
fn english_emails() -> String {
    corpus()
        .emails
        .iter()
        .map(|(s, b)| format!("{s}\n{b}\n"))
        .collect()
}

fn analyzer(c: &mut Criterion) {
    let defs = shipped_defs();
    let english_email = english_emails();
    let mut group = c.benchmark_group("analyzer");
    for (name, text, view) in [
        ("email_en_match", english_email.as_str(), View::Match),
        ("ami_en_match", UTTERANCES, View::Match),
        ("zh_reviews_match", CHINESE, View::Match),
        ("zh_reviews_words", CHINESE, View::Words),
    ] {
        let mut out = Analyzed::default();
        defs.analyzer.analyze(text, view, &mut out);
        let n_tokens = out.tokens.len();
        assert!(n_tokens > 10_000, "{name}: {n_tokens} tokens");
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                defs.analyzer.analyze(text, view, &mut out);
                assert_eq!(out.tokens.len(), n_tokens);
            })
        });
    }
    group.finish();
}

/// Extraction as the pipeline runs it: analysis plus matching of every phrase library.
fn extraction(c: &mut Criterion) {
    let defs = shipped_defs();
    let english = english_emails();
    let mut group = c.benchmark_group("extract");
    for (name, text) in [
        ("email_en", english.as_str()),
        ("ami_en", UTTERANCES),
        ("zh_reviews", CHINESE),
    ] {
        let lines: Vec<&str> = text.lines().collect();
        let mut analyzed = Analyzed::default();
        let mut scratch = MatchScratch::default();
        let mut hits = Vec::new();
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                hits.clear();
                for line in &lines {
                    defs.analyzer.analyze(line, View::Match, &mut analyzed);
                    defs.matcher.find(&analyzed, &mut scratch, &mut hits);
                }
                hits.len()
            })
        });
    }
    group.finish();
}

/// Phrase matching alone, on text analysed beforehand.
fn matching(c: &mut Criterion) {
    let defs = shipped_defs();
    let english = english_emails();
    let mut group = c.benchmark_group("match");
    for (name, text) in [("email_en", english.as_str()), ("zh_reviews", CHINESE)] {
        let analysed: Vec<Analyzed> = text
            .lines()
            .map(|line| {
                let mut out = Analyzed::default();
                defs.analyzer.analyze(line, View::Match, &mut out);
                out
            })
            .collect();
        let mut scratch = MatchScratch::default();
        let mut hits = Vec::new();
        for a in &analysed {
            defs.matcher.find(a, &mut scratch, &mut hits);
        }
        let n_hits = hits.len();
        assert!(n_hits > 20, "{name}: {n_hits} phrase hits");
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                hits.clear();
                for a in &analysed {
                    defs.matcher.find(a, &mut scratch, &mut hits);
                }
                assert_eq!(hits.len(), n_hits);
            })
        });
    }
    group.finish();
}

fn decode_and_graph(c: &mut Criterion) {
    let defs = shipped_defs();
    let config = SynthConfig {
        n_events: 20_000,
        n_accounts: 2_000,
        mix: [100, 0, 0],
        ..SynthConfig::default()
    };
    let lines = stream(&config);
    let mut group = c.benchmark_group("stages");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("decode_web", |b| {
        b.iter(|| lines.iter().filter(|l| decode(l).is_ok()).count())
    });
    let mut extractor = Extractor::new();
    let observations: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| extractor.extract(&defs, &decode(l).unwrap(), i as u64))
        .collect();
    group.bench_function("extract_web", |b| {
        b.iter(|| {
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    extractor
                        .extract(&defs, &decode(l).unwrap(), i as u64)
                        .signals
                        .len()
                })
                .sum::<usize>()
        })
    });
    group.bench_function("graph_apply_web", |b| {
        b.iter_batched(
            || vec![AccountCore::default(); 2_000],
            |mut accounts| {
                for (i, obs) in observations.iter().enumerate() {
                    accounts[i % 2_000].apply(&defs, obs);
                }
                accounts
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let defs = shipped_defs();
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10);
    for (name, mix, lateness_ms) in [
        ("web_only", [100, 0, 0], 600_000),
        ("web_only_no_lateness", [100, 0, 0], 0),
        ("mix_80_15_5", [80, 15, 5], 600_000),
    ] {
        let pipeline_config = PipelineConfig {
            allowed_lateness_ms: lateness_ms,
            ..PipelineConfig::default()
        };
        let config = SynthConfig {
            n_events: 50_000,
            n_accounts: 10_000,
            mix,
            ..SynthConfig::default()
        };
        let lines = stream(&config);
        // Count the actions once, so a broken pipeline cannot look fast.
        let mut reference = Pipeline::new(defs.clone(), pipeline_config.clone());
        let mut out = Vec::new();
        for line in &lines {
            reference.process_bytes(line, &mut out).unwrap();
        }
        let expected_actions = out.len();
        assert!(expected_actions > 100, "{name}: {expected_actions} actions");
        group.throughput(Throughput::Elements(lines.len() as u64));
        group.bench_function(name, |b| {
            b.iter_batched(
                || Pipeline::new(defs.clone(), pipeline_config.clone()),
                |mut pipeline| {
                    let mut out = Vec::with_capacity(expected_actions);
                    for line in &lines {
                        let _ = pipeline.process_bytes(line, &mut out);
                    }
                    assert_eq!(out.len(), expected_actions);
                    pipeline
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    analyzer,
    extraction,
    matching,
    decode_and_graph,
    pipeline
);
criterion_main!(benches);
