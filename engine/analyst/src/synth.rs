//! Deterministic synthetic event streams for benchmarks and load tests:
//! accounts with Zipf popularity, a configurable mix of kinds, real text from
//! the shipped corpora, and a share of events built to carry intent (so rules
//! fire). The same seed gives the same stream.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Zipf};
use serde_json::{json, Value};

use intent_core::time::Timestamp;

/// A corpus file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read corpus file {}", path.display())]
pub struct CorpusError {
    /// The file.
    pub path: std::path::PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// A `--mix` that is not `kind=share,...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixError {
    /// A part without `=`.
    #[error("'{0}' is not kind=share")]
    NotKindShare(String),
    /// A share that is not a whole number.
    #[error("bad share in '{0}'")]
    BadShare(String),
    /// A kind other than web, email, transcript.
    #[error("unknown kind '{0}' (web, email, transcript)")]
    UnknownKind(String),
}

/// Real text to draw from.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    /// (subject, body) of e-mails.
    pub emails: Vec<(String, String)>,
    /// Spoken English utterances.
    pub utterances: Vec<String>,
    /// Chinese texts.
    pub chinese: Vec<String>,
}

impl Corpus {
    /// Builds a corpus from the shipped files' contents
    /// (`fixtures/corpus/{email-en.jsonl, ami-utterances.txt, zh-reviews.txt}`).
    pub fn from_texts(emails_jsonl: &str, utterances: &str, chinese: &str) -> Corpus {
        let emails = emails_jsonl
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .map(|v| {
                (
                    v["subject"].as_str().unwrap_or_default().to_string(),
                    v["body"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let lines = |text: &str| {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect()
        };
        Corpus {
            emails,
            utterances: lines(utterances),
            chinese: lines(chinese),
        }
    }

    /// Reads the corpus files from a directory (`email-en.jsonl`,
    /// `ami-utterances.txt`, `zh-reviews.txt`, as in `fixtures/corpus/`).
    pub fn from_dir(dir: &std::path::Path) -> Result<Corpus, CorpusError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| CorpusError { path, source })
        };
        Ok(Corpus::from_texts(
            &read("email-en.jsonl")?,
            &read("ami-utterances.txt")?,
            &read("zh-reviews.txt")?,
        ))
    }

    /// A tiny built-in corpus, for when no files are at hand.
    pub fn minimal() -> Corpus {
        Corpus {
            emails: vec![(
                "Re: meeting".into(),
                "Thanks for the call yesterday, let us continue next week.".into(),
            )],
            utterances: vec!["I think we should look at the remote control design again.".into()],
            chinese: vec!["这个产品质量很好，物流也很快。".into()],
        }
    }
}

/// Parses a mix of kinds, `web=80,email=15,transcript=5`, into shares of
/// web, e-mail and transcript events (unnamed kinds get 0).
pub fn parse_mix(text: &str) -> Result<[u32; 3], MixError> {
    let mut mix = [0u32; 3];
    for part in text.split(',') {
        let (kind, share) = part
            .split_once('=')
            .ok_or_else(|| MixError::NotKindShare(part.to_string()))?;
        let share: u32 = share
            .trim()
            .parse()
            .map_err(|_| MixError::BadShare(part.to_string()))?;
        match kind.trim() {
            "web" => mix[0] = share,
            "email" => mix[1] = share,
            "transcript" => mix[2] = share,
            other => return Err(MixError::UnknownKind(other.to_string())),
        }
    }
    Ok(mix)
}

/// Shape of the stream.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub seed: u64,
    pub n_events: usize,
    pub n_accounts: usize,
    /// Zipf exponent of account popularity.
    pub zipf: f64,
    /// Relative shares of web, e-mail and transcript events.
    pub mix: [u32; 3],
    /// Share of events that carry intent (comparison visits, budget talk ...).
    pub intent_share: f64,
    pub start: Timestamp,
    /// Event-time gap between consecutive events.
    pub step_ms: i64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 42,
            n_events: 10_000,
            n_accounts: 1_000,
            zipf: 1.1,
            mix: [80, 15, 5],
            intent_share: 0.05,
            start: Timestamp(1_767_225_600_000), // 2026-01-01T00:00:00Z
            step_ms: 50,
        }
    }
}

const PAGES: &[(&str, &str)] = &[
    (
        "/products/imaging-service",
        "Imaging equipment service plans",
    ),
    ("/blog/ai-in-retail", "How AI changes store operations"),
    ("/solutions/mes", "MES for discrete manufacturing"),
    ("/about", "About us"),
    ("/careers", "Careers"),
    ("/news/2026/expo", "Meet us at the expo"),
    ("/products/pos", "Cloud POS"),
    ("/zh/solutions/remote", "基层医院设备远程诊断支持方案"),
];
const INTENT_PAGES: &[(&str, &str, &str)] = &[
    (
        "/compare/imaging-maintenance",
        "Imaging maintenance: us vs. the rest",
        "view",
    ),
    ("/pricing", "Pricing", "view"),
    (
        "/docs/whitepaper-remote-diagnostics.pdf",
        "Remote diagnostics white paper",
        "download",
    ),
    ("/live/webinar-2026", "Live: predictive maintenance", "qa"),
    (
        "/community/questions/1234",
        "Remote diagnostics for CT scanners?",
        "view",
    ),
];
const INTENT_SENTENCES: &[&str] = &[
    "Good news: the budget is approved for next quarter.",
    "Could we schedule a demo for our team next week?",
    "We will publish the tender documents on Friday.",
    "预算已经批下来了，下周可以走采购流程。",
    "We are also talking to Siemens Healthineers about this.",
    "Honestly this feature solved our biggest scheduling pain.",
];
const TITLES: &[&str] = &[
    "Engineer",
    "IT Manager",
    "Director of Radiology",
    "Procurement Manager",
    "Analyst",
    "CTO",
    "设备科科长",
    "采购经理",
];

/// Generates the stream, calling `emit` with each event as JSON.
pub fn generate(config: &SynthConfig, corpus: &Corpus, mut emit: impl FnMut(Value)) {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let zipf = Zipf::new(config.n_accounts.max(1) as u64, config.zipf.max(0.01))
        .expect("valid zipf parameters");
    let total: u32 = config.mix.iter().sum::<u32>().max(1);
    for i in 0..config.n_events {
        let account_rank = zipf.sample(&mut rng) as usize;
        let account = format!("acct-{account_rank:07}");
        let contact_no = rng.gen_range(0..3);
        let title = TITLES[(account_rank * 3 + contact_no) % TITLES.len()];
        let contact = json!({
            "id": format!("{account}-c{contact_no}"),
            "name": format!("Contact {contact_no} of {account_rank}"),
            "title": title,
        });
        let ts = config.start.millis() + i as i64 * config.step_ms;
        let intent = rng.gen_bool(config.intent_share.clamp(0.0, 1.0));
        let pick = rng.gen_range(0..total);
        let id = format!("syn-{}-{i}", config.seed);
        let event = if pick < config.mix[0] {
            let (url, title, action) = if intent {
                *INTENT_PAGES.choose(&mut rng).expect("not empty")
            } else {
                let (url, title) = *PAGES.choose(&mut rng).expect("not empty");
                (url, title, "view")
            };
            json!({
                "id": id, "ts": ts, "account": account, "kind": "web", "contact": contact,
                "url": format!("https://vendor.example{url}"), "title": title,
                "action": action, "dwell_ms": rng.gen_range(2_000..400_000),
            })
        } else if pick < config.mix[0] + config.mix[1] {
            let (subject, body) = corpus.emails.choose(&mut rng).cloned().unwrap_or_default();
            let body = if intent {
                format!(
                    "{body} {}",
                    INTENT_SENTENCES.choose(&mut rng).expect("not empty")
                )
            } else {
                body
            };
            json!({
                "id": id, "ts": ts, "account": account, "kind": "email", "contact": contact,
                "subject": subject, "body": body,
                "direction": if rng.gen_bool(0.7) { "inbound" } else { "outbound" },
            })
        } else {
            let chinese = rng.gen_bool(0.3);
            let pool = if chinese {
                &corpus.chinese
            } else {
                &corpus.utterances
            };
            let mut text = pool.choose(&mut rng).cloned().unwrap_or_default();
            if intent {
                text.push(' ');
                text.push_str(INTENT_SENTENCES.choose(&mut rng).expect("not empty"));
            }
            json!({
                "id": id, "ts": ts, "account": account, "kind": "transcript", "contact": contact,
                "text": text, "speaker": format!("Contact {contact_no}"),
                "speaker_role": if rng.gen_bool(0.6) { "customer" } else { "rep" },
                "meeting_id": format!("m-{account_rank}-{}", i / 1000),
            })
        };
        emit(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_and_bad_ones_say_why() {
        assert_eq!(parse_mix("web=80,email=15,transcript=5"), Ok([80, 15, 5]));
        assert_eq!(parse_mix("email=1"), Ok([0, 1, 0]));
        assert_eq!(parse_mix("fax=3"), Err(MixError::UnknownKind("fax".into())));
        assert!(parse_mix("fax=3").unwrap_err().to_string().contains("fax"));
        assert!(parse_mix("web")
            .unwrap_err()
            .to_string()
            .contains("kind=share"));
        assert!(parse_mix("web=x")
            .unwrap_err()
            .to_string()
            .contains("bad share"));
    }

    #[test]
    fn same_seed_same_stream_and_mix_is_respected() {
        let config = SynthConfig {
            n_events: 2_000,
            ..SynthConfig::default()
        };
        let mut a = Vec::new();
        generate(&config, &Corpus::minimal(), |e| a.push(e));
        let mut b = Vec::new();
        generate(&config, &Corpus::minimal(), |e| b.push(e));
        assert_eq!(a, b);
        let web = a.iter().filter(|e| e["kind"] == "web").count();
        assert!((1_450..1_750).contains(&web), "web share off: {web}");
        for e in &a {
            assert!(
                intent_core::ingest::decode(e.to_string().as_bytes()).is_ok(),
                "{e}"
            );
        }
        // Zipf: the most popular account is far above the average.
        let top = a.iter().filter(|e| e["account"] == "acct-0000001").count();
        assert!(top > 2_000 / 1_000 * 20, "top account has {top}");
    }
}
