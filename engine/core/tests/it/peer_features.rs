//! The definitions features the peer job needs, each on its own: phrase
//! occurrences counted one by one, negation off, a threshold on the raw sum,
//! and a silence restarted by every event of a signal, with a minimum of
//! events, that fires even when a restart comes before the watermark reached
//! its deadline.

use std::path::PathBuf;
use std::sync::Arc;

use intent_core::signal_defs::{compile_sources, Source};
use intent_core::{Action, Pipeline, PipelineConfig, Timestamp};
use serde_json::json;

const DEFS: &str = r#"
[analyzer]
language = "none"
prefix_fold = 0

[[library]]
id = "words"
negation = false
phrases = ["pacs", "integration", "pacs integration"]

[[signal]]
id = "phrase"
weight = 1.0
half_life = "7d"
cap = 1e9
count = "phrase"
[signal.when]
kinds = ["email", "web"]
libraries = ["words"]

[[signal]]
id = "activity"
weight = 0.0
half_life = "7d"
[signal.when]
kinds = ["email", "web"]

[[rule]]
id = "threshold"
kind = "threshold"
sum_above = 6.0
recommendation = "call"
reason = "{account}"

[[rule]]
id = "absence"
kind = "silence"
start_signal = "activity"
silence = "48h"
min_events = 2
recommendation = "re-engage"
reason = "{account}"
"#;

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_772_400_000_000;

fn pipeline() -> Pipeline {
    let defs = compile_sources(&[Source {
        path: PathBuf::from("peer.toml"),
        text: DEFS.into(),
    }])
    .unwrap();
    let config = PipelineConfig {
        allowed_lateness_ms: 500,
        ..PipelineConfig::default()
    };
    Pipeline::new(Arc::new(defs), config)
}

fn email(p: &mut Pipeline, id: &str, account: &str, ts: i64, body: &str) -> Vec<Action> {
    let event = json!({"id": id, "ts": ts, "account": account, "kind": "email",
                       "direction": "inbound", "body": body});
    let mut out = Vec::new();
    p.process_bytes(event.to_string().as_bytes(), &mut out)
        .unwrap();
    out
}

fn fired(actions: &[Action]) -> Vec<(&str, i64)> {
    actions
        .iter()
        .map(|a| (&*a.rule, a.event_ts.millis()))
        .collect()
}

#[test]
fn each_phrase_occurrence_counts_negated_ones_too_and_the_raw_sum_crosses() {
    let mut p = pipeline();
    // "pacs", "integration", "pacs integration" and "pacs" again: 4, none
    // dropped after "not".
    let out = email(&mut p, "e1", "a", T0, "not pacs integration, no pacs");
    assert!(fired(&out).is_empty(), "S = 4 < 6");
    let total = |p: &Pipeline| {
        p.graph()
            .with_account("a", |core| core.signals.iter().map(|s| s.total).max())
            .flatten()
    };
    assert_eq!(total(&p), Some(4));
    // Two more: S crosses 6 (a minute of decay at a 7-day half-life is far
    // less than the margin).
    let out = email(&mut p, "e2", "a", T0 + 60_000, "pacs integration");
    assert_eq!(fired(&out), [("threshold", T0 + 60_000)]);
    assert_eq!(total(&p), Some(7));
}

#[test]
fn the_silence_restarts_with_every_event_and_needs_two_events() {
    let mut p = pipeline();
    email(&mut p, "a1", "a", T0, "hello");
    email(&mut p, "a2", "a", T0 + HOUR, "hello");
    email(&mut p, "b1", "b", T0 + HOUR, "hello");
    // Another account moves event time past both deadlines (+ lateness).
    let out = email(&mut p, "c1", "c", T0 + 50 * HOUR, "hello");
    assert_eq!(
        fired(&out),
        [("absence", T0 + 49 * HOUR)],
        "a (2 events) fires 48 h after its last event; b (1 event) does not"
    );
}

#[test]
fn a_thousand_restarts_queue_one_timer_and_it_fires_at_the_last_deadline() {
    let mut p = pipeline();
    for i in 0..1_000 {
        email(&mut p, &format!("a{i}"), "a", T0 + i * 60_000, "hello");
    }
    assert!(
        p.queued_timers() <= 2,
        "{} timers queued",
        p.queued_timers()
    );
    let last = T0 + 999 * 60_000;
    let mut out = Vec::new();
    p.advance_to(Timestamp(last + 49 * HOUR), &mut out);
    assert_eq!(fired(&out), [("absence", last + 48 * HOUR)]);
    assert_eq!(p.queued_timers(), 0);
}

#[test]
fn a_restart_after_an_elapsed_deadline_fires_the_silence_first() {
    let mut p = pipeline();
    email(&mut p, "a1", "a", T0, "hello");
    email(&mut p, "a2", "a", T0 + 1_000, "hello");
    let deadline = T0 + 1_000 + 48 * HOUR;
    // The account's next event is 100 ms past its deadline: the watermark
    // (newest - 500 ms) has not reached the deadline, yet the silence elapsed.
    let out = email(&mut p, "a3", "a", deadline + 100, "hello");
    assert_eq!(fired(&out), [("absence", deadline)]);
    // Its timer, when the watermark passes, fires nothing more.
    let mut out = Vec::new();
    p.advance_to(Timestamp(deadline + 10_000), &mut out);
    assert!(fired(&out).is_empty(), "{:?}", fired(&out));
    // The restarted silence fires at its own deadline.
    p.advance_to(Timestamp(deadline + 100 + 49 * HOUR), &mut out);
    assert_eq!(fired(&out), [("absence", deadline + 100 + 48 * HOUR)]);
}
