//! The peer job (`benches/peer-job/`): a small workload of the peer's
//! generator (`gen_events.py --n 3000 --accounts 300 --mean-gap-ms 60000`),
//! converted by `benches/peer-job/convert.py`, replayed under the job's
//! signal definitions, fires exactly the reference's actions
//! (`job_python.py`'s output, in `fixtures/peer-job/reference-actions.jsonl`)
//! as a multiset of (rule, account, time). This pins the features the job
//! needs: no stemming, phrase counting per occurrence, negation off, a
//! threshold on the raw sum, and a silence restarted by every event with a
//! minimum number of events.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::sync::Arc;

use intent_core::{Pipeline, PipelineConfig, Timestamp};
use intent_files::replay::replay_reader;
use serde_json::Value;

use crate::root;

type Key = (String, String, i64);

fn multiset(keys: impl Iterator<Item = Key>) -> BTreeMap<Key, usize> {
    let mut counts = BTreeMap::new();
    for key in keys {
        *counts.entry(key).or_default() += 1;
    }
    counts
}

#[test]
fn the_peer_job_fires_exactly_the_reference_actions() {
    let defs = intent_files::load_dir(&root().join("benches/peer-job/signal-defs")).unwrap();
    let config = PipelineConfig {
        allowed_lateness_ms: 500,
        ..PipelineConfig::default()
    };
    let mut pipeline = Pipeline::new(Arc::new(defs), config);
    let path = root().join("fixtures/peer-job/events.jsonl");
    let file = std::fs::File::open(&path).unwrap();
    let mut actions = Vec::new();
    replay_reader(
        &mut pipeline,
        "peer-job",
        BufReader::new(file),
        |a| actions.extend_from_slice(a),
        |r| panic!("rejected: {r:?}"),
        |_| {},
    )
    .unwrap();
    // End of input: every pending timer fires (as `intent replay --until`).
    pipeline.advance_to(
        Timestamp::parse_rfc3339("2100-01-01T00:00:00Z").unwrap(),
        &mut actions,
    );
    let ours = multiset(
        actions
            .iter()
            .map(|a| (a.rule.to_string(), a.account.clone(), a.event_ts.millis())),
    );
    let text =
        std::fs::read_to_string(root().join("fixtures/peer-job/reference-actions.jsonl")).unwrap();
    let reference = multiset(text.lines().map(|line| {
        let a: Value = serde_json::from_str(line).unwrap();
        (
            a["type"].as_str().unwrap().to_string(),
            a["account"].as_str().unwrap().to_string(),
            a["ts"].as_i64().unwrap(),
        )
    }));
    let count = |kind: &str| {
        reference
            .iter()
            .filter(|((t, _, _), _)| t == kind)
            .map(|(_, n)| n)
            .sum::<usize>()
    };
    assert_eq!(
        (count("threshold"), count("absence")),
        (47, 213),
        "the fixture's reference"
    );
    assert_eq!(ours, reference);
}
