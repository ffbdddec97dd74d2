//! The NATS service (`intent serve`) against a real nats-server: fixtures
//! give the same actions as `intent replay`, duplicates change nothing,
//! malformed events are dead-lettered with their bytes, state survives a
//! SIGKILL of the engine and a restart of the server, definitions reload
//! live, the micro-service API answers, SIGTERM stops cleanly, and a stream
//! with the wrong configuration is refused.

mod harness;
#[path = "../../../test_support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use harness::*;

fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(format!("{name}.jsonl"))
}

const SCENARIOS: &[&str] = &[
    "hospital_comparison",
    "manufacturing_title_change",
    "silent_lead",
    "influencer_campaign",
    "mixed_language",
    "dirty_input",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixtures_give_the_same_actions_as_replay() {
    eprintln!("server: {}", NatsServer::version());
    for name in SCENARIOS {
        let server = NatsServer::start();
        let engine = Engine::start(&server, &["--lateness", "1s"], &[]).await;
        let client = connect(&server).await;
        // Replay with the same lateness: its end-of-input timers fire in
        // serve mode once the wall clock has been idle for the lateness.
        let expected = replay_actions(&[fixture(name)], &["--lateness", "1s"]);
        assert!(!expected.is_empty(), "{name} fires something");
        publish_file(&server, &fixture(name));
        wait_for(
            &client,
            &format!("{name}: {} actions", expected.len()),
            Duration::from_secs(30),
            |s| n(s, "actions_out") >= expected.len() as u64,
        )
        .await;
        // Nothing more arrives later.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let got = stored_actions(&client).await;
        assert_eq!(
            got,
            expected,
            "{name}: actions over NATS differ from replay\n{}",
            engine.log_text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_change_nothing_and_bad_events_are_dead_lettered() {
    let server = NatsServer::start();
    let _engine = Engine::start(&server, &[], &[]).await;
    let client = connect(&server).await;
    let path = fixture("dirty_input");
    let summary = publish_file(&server, &path);
    assert!(
        summary.contains("2 duplicates ignored by the stream"),
        "{summary}"
    );
    let stats = wait_for(&client, "dirty input", Duration::from_secs(30), |s| {
        n(s, "applied") + n(s, "rejected") >= 10 && n(s, "dlq") >= 5
    })
    .await;
    assert_eq!(
        (
            n(&stats, "applied"),
            n(&stats, "rejected"),
            n(&stats, "dlq")
        ),
        (5, 5, 5),
        "{stats:#}"
    );

    // Each dead letter: the original bytes, the error and the field.
    let lines: BTreeSet<Vec<u8>> = std::fs::read(&path)
        .unwrap()
        .split(|&b| b == b'\n')
        .map(|l| l.to_vec())
        .collect();
    let letters = stream_messages(&client, "INTENT_DLQ").await;
    assert_eq!(letters.len(), 5);
    let mut fields = Vec::new();
    for letter in &letters {
        assert!(
            lines.contains(&letter.payload.to_vec()),
            "bytes changed: {:?}",
            letter.payload
        );
        let headers = letter.headers.as_ref().expect("headers");
        assert!(!headers.get("Intent-Error").unwrap().as_str().is_empty());
        fields.push(
            headers
                .get("Intent-Error-Field")
                .map(|f| f.to_string())
                .unwrap_or_default(),
        );
        assert!(letter.subject.starts_with("intent.dlq."));
    }
    fields.sort();
    assert_eq!(fields, ["", "account", "account", "kind", "ts"]);

    // An error naming a field whose name holds a line break still makes a
    // valid header (one line), and the engine keeps serving.
    let js = jetstream::new(client.clone());
    let bad = r#"{"id":"attr-nl","ts":"2026-03-02T09:30:00Z","account":"dirty-co","kind":"web","url":"https://x.test/a","action":"view","attrs":{"a\nb":"text"}}"#;
    js.publish("intent.events.web.dirty-co", bad.into())
        .await
        .unwrap()
        .await
        .unwrap();
    wait_for(
        &client,
        "the attrs dead letter",
        Duration::from_secs(10),
        |s| n(s, "dlq") >= 6,
    )
    .await;
    let letters = stream_messages(&client, "INTENT_DLQ").await;
    let last = letters.last().unwrap();
    assert_eq!(&last.payload[..], bad.as_bytes());
    let field = last
        .headers
        .as_ref()
        .unwrap()
        .get("Intent-Error-Field")
        .unwrap()
        .to_string();
    assert_eq!(field, "attrs.a b");

    // The same event id again under a new Nats-Msg-Id passes the stream's
    // window but not the engine's: nothing changes.
    let before = request(&client, "intent.api.graph", json!({"account": "dirty-co"}))
        .await
        .unwrap();
    let line = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let event: Value = serde_json::from_str(&line).unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "resent-under-another-msg-id");
    let subject = format!(
        "intent.events.{}.{}",
        event["kind"].as_str().unwrap(),
        event["account"].as_str().unwrap()
    );
    js.publish_with_headers(subject, headers, line.into_bytes().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let stats = wait_for(&client, "the duplicate", Duration::from_secs(10), |s| {
        n(s, "duplicate") >= 1
    })
    .await;
    assert_eq!(n(&stats, "applied"), 5);
    let after = request(
        &client,
        "intent.api.graph",
        json!({"account": event["account"]}),
    )
    .await
    .unwrap();
    assert_eq!(before, after);
}

/// State and actions of one run over the synthetic stream.
#[derive(Debug, Clone, PartialEq)]
struct RunResult {
    graphs: BTreeMap<String, Value>,
    action_ids: BTreeSet<String>,
    stored_actions: usize,
}

fn synthetic_events() -> &'static (PathBuf, PathBuf, PathBuf, usize) {
    static FILES: std::sync::OnceLock<(PathBuf, PathBuf, PathBuf, usize)> =
        std::sync::OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let out = Command::new(intent_bin())
            .args([
                "synth",
                "--events",
                "3000",
                "--accounts",
                "40",
                "--intent-share",
                "0.3",
                "--seed",
                "7",
            ])
            .arg("--corpus")
            .arg(root().join("fixtures/corpus"))
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let all = dir.join("all.jsonl");
        let first = dir.join("first.jsonl");
        let second = dir.join("second.jsonl");
        std::fs::write(&all, text.as_bytes()).unwrap();
        std::fs::write(&first, lines[..lines.len() / 2].join("\n")).unwrap();
        std::fs::write(&second, lines[lines.len() / 2..].join("\n")).unwrap();
        (all, first, second, lines.len())
    })
}

/// `intent publish` of a file on its own thread (the test goes on meanwhile).
fn publish_in_background(
    server: &NatsServer,
    path: &std::path::Path,
) -> std::thread::JoinHandle<()> {
    let url = server.url();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let out = Command::new(intent_bin())
            .args(["publish", "--nats", &url])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    })
}

/// Waits until the consumer has nothing pending or unacknowledged.
async fn wait_drained(client: &async_nats::Client) {
    let js = jetstream::new(client.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let stream = js.get_stream("INTENT_EVENTS").await.unwrap();
        let info = stream.consumer_info("intent-engine").await.unwrap();
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "consumer not drained: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn collect_result(client: &async_nats::Client) -> RunResult {
    let top = request(client, "intent.api.top", json!({"n": 10000}))
        .await
        .unwrap();
    let mut graphs = BTreeMap::new();
    for entry in top["accounts"].as_array().unwrap() {
        let account = entry["account"].as_str().unwrap().to_string();
        let graph = request(client, "intent.api.graph", json!({"account": account}))
            .await
            .unwrap();
        graphs.insert(account, graph);
    }
    let actions = stored_actions(client).await;
    RunResult {
        action_ids: actions
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect(),
        stored_actions: actions.len(),
        graphs,
    }
}

/// The run without interruptions the others are compared with.
async fn reference() -> &'static RunResult {
    static REFERENCE: OnceCell<RunResult> = OnceCell::const_new();
    REFERENCE
        .get_or_init(|| async {
            let (all, _, _, count) = synthetic_events();
            let server = NatsServer::start();
            let _engine = Engine::start(&server, &[], &[]).await;
            let client = connect(&server).await;
            publish_file(&server, all);
            wait_for(
                &client,
                "the reference run",
                Duration::from_secs(120),
                |s| n(s, "events_in") >= *count as u64,
            )
            .await;
            wait_drained(&client).await;
            let result = collect_result(&client).await;
            assert!(
                result.graphs.len() >= 30,
                "{} accounts",
                result.graphs.len()
            );
            assert!(
                result.stored_actions >= 10,
                "{} actions",
                result.stored_actions
            );
            assert_eq!(result.stored_actions, result.action_ids.len());
            result
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing_and_repeats_nothing() {
    let expected = reference().await.clone();
    let (all, _, _, count) = synthetic_events();
    let server = NatsServer::start();
    let mut engine = Engine::start(&server, &[], &[]).await;
    let client = connect(&server).await;
    let publisher = publish_in_background(&server, all);
    wait_for(
        &client,
        "a third of the stream",
        Duration::from_secs(60),
        |s| n(s, "events_in") >= *count as u64 / 3,
    )
    .await;
    engine.kill();
    let first_log = engine.log_text();
    let second = Engine::start(&server, &[], &[]).await;
    publisher.join().unwrap();
    wait_drained(&client).await;
    assert!(
        second.log_text().contains("state rebuilt"),
        "{}",
        second.log_text()
    );
    let got = collect_result(&client).await;
    assert_eq!(
        got.action_ids, expected.action_ids,
        "first run log:\n{first_log}"
    );
    assert_eq!(
        got.stored_actions,
        got.action_ids.len(),
        "an action was stored twice"
    );
    assert_eq!(got.graphs, expected.graphs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_restart_loses_nothing() {
    let expected = reference().await.clone();
    let (_, first, second, _) = synthetic_events();
    let mut server = NatsServer::start();
    // Small batches, so that the restart catches the engine mid-stream.
    let engine = Engine::start(&server, &["--batch", "4"], &[]).await;
    publish_file(&server, first);
    server.restart(Duration::from_millis(1500));
    publish_file(&server, second);
    let client = connect(&server).await;
    wait_drained(&client).await;
    // The engine reconnected and carried on.
    let got = collect_result(&client).await;
    assert_eq!(got.action_ids, expected.action_ids, "{}", engine.log_text());
    assert_eq!(got.stored_actions, got.action_ids.len());
    assert_eq!(got.graphs, expected.graphs);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

async fn signals_version(client: &async_nats::Client) -> String {
    let signals = request(client, "intent.api.signals", Value::Null)
        .await
        .unwrap();
    signals["version"].as_str().unwrap().to_string()
}

async fn wait_version(client: &async_nats::Client, not: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let version = signals_version(client).await;
        if version != not {
            return version;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "signals version stayed {not}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_reload_from_the_directory_and_the_kv_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let defs = dir.path().join("signal-defs");
    copy_dir(&root().join("signal-defs"), &defs);
    let server = NatsServer::start();
    // The directory watcher is off for the first part: `reload` alone.
    let _engine = Engine::start(
        &server,
        &[
            "--signals",
            defs.to_str().unwrap(),
            "--watch-interval",
            "0s",
        ],
        &[],
    )
    .await;
    let client = connect(&server).await;
    let v0 = signals_version(&client).await;

    // A broken file: the errors come back with file:line; v0 stays.
    let rules = defs.join("rules.toml");
    let good_rules = std::fs::read_to_string(&rules).unwrap();
    std::fs::write(
        &rules,
        format!("{good_rules}\n[[rule]]\nid = \"oops\"\nkind = \"nonsense\"\n"),
    )
    .unwrap();
    let (code, message) = request(&client, "intent.api.reload", Value::Null)
        .await
        .unwrap_err();
    assert_eq!(code, "422");
    assert!(message.contains("rules.toml:"), "{message}");
    assert_eq!(signals_version(&client).await, v0);

    // A good change: a new version, carried by the actions that follow.
    std::fs::write(&rules, &good_rules).unwrap();
    let signals_toml = defs.join("engine.toml");
    let text = std::fs::read_to_string(&signals_toml).unwrap();
    std::fs::write(
        &signals_toml,
        text.replacen("scale = 40.0", "scale = 41.0", 1),
    )
    .unwrap();
    let reply = request(&client, "intent.api.reload", Value::Null)
        .await
        .unwrap();
    let v1 = reply["version"].as_str().unwrap().to_string();
    assert_ne!(v1, v0);
    assert_eq!(reply["changed"], true);
    publish_file(&server, &fixture("hospital_comparison"));
    wait_for(&client, "actions", Duration::from_secs(30), |s| {
        n(s, "actions_out") >= 1
    })
    .await;
    for action in stored_actions(&client).await {
        assert_eq!(action["signals_version"], v1.as_str());
    }

    // The KV bucket: a good file swaps in, a broken one is refused.
    let js = jetstream::new(client.clone());
    let kv = js.get_key_value("intent-signals").await.unwrap();
    let tuned = text.replacen("scale = 40.0", "scale = 55.0", 1);
    kv.put("engine.toml", tuned.into_bytes().into())
        .await
        .unwrap();
    let v2 = wait_version(&client, &v1).await;
    let signals = request(&client, "intent.api.signals", Value::Null)
        .await
        .unwrap();
    assert_eq!(signals["kv_files"], json!(["engine.toml"]));
    let failures = n(&stats(&client).await, "reload_failures");
    kv.put("engine.toml", "[score\nscale = ".into())
        .await
        .unwrap();
    wait_for(
        &client,
        "the refused KV change",
        Duration::from_secs(10),
        |s| n(s, "reload_failures") > failures,
    )
    .await;
    assert_eq!(signals_version(&client).await, v2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_is_watched() {
    let dir = tempfile::tempdir().unwrap();
    let defs = dir.path().join("signal-defs");
    copy_dir(&root().join("signal-defs"), &defs);
    let server = NatsServer::start();
    let _engine = Engine::start(
        &server,
        &[
            "--signals",
            defs.to_str().unwrap(),
            "--watch-interval",
            "100ms",
            "--kv-bucket",
            "",
        ],
        &[],
    )
    .await;
    let client = connect(&server).await;
    let v0 = signals_version(&client).await;
    let path = defs.join("engine.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("scale = 40.0", "scale = 42.5", 1)).unwrap();
    let v1 = wait_version(&client, &v0).await;
    assert_ne!(v1, v0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_micro_service_is_discoverable_and_every_endpoint_answers() {
    let server = NatsServer::start();
    let _engine = Engine::start(&server, &[], &[]).await;
    let client = connect(&server).await;
    publish_file(&server, &fixture("hospital_comparison"));
    wait_for(&client, "events", Duration::from_secs(30), |s| {
        n(s, "applied") >= 6
    })
    .await;

    let ping = request(&client, "$SRV.PING.intent", Value::Null)
        .await
        .unwrap();
    assert_eq!(ping["name"], "intent");
    let info = request(&client, "$SRV.INFO.intent", Value::Null)
        .await
        .unwrap();
    let subjects: BTreeSet<&str> = info["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    for name in [
        "score", "graph", "top", "explain", "signals", "reload", "stats", "search",
    ] {
        assert!(
            subjects.contains(format!("intent.api.{name}").as_str()),
            "{name}: {info:#}"
        );
    }

    let score = request(
        &client,
        "intent.api.score",
        json!({"account": "hosp-zhongshan"}),
    )
    .await
    .unwrap();
    assert!(score["score"].as_f64().unwrap() > 0.0);
    let top_signal = &score["signals"][0];
    assert!(
        !top_signal["evidence"].as_array().unwrap().is_empty(),
        "{score:#}"
    );
    let graph = request(
        &client,
        "intent.api.graph",
        json!({"account": "hosp-zhongshan"}),
    )
    .await
    .unwrap();
    assert!(graph.to_string().contains("c-li"), "{graph:#}");
    let explain = request(
        &client,
        "intent.api.explain",
        json!({"account": "hosp-zhongshan"}),
    )
    .await
    .unwrap();
    assert!(explain["text"].as_str().unwrap().contains("hosp-zhongshan"));
    let top = request(
        &client,
        "intent.api.top",
        json!({"n": 1, "industry": "medical"}),
    )
    .await
    .unwrap();
    assert_eq!(top["accounts"][0]["account"], "hosp-zhongshan");
    let none = request(
        &client,
        "intent.api.top",
        json!({"n": 5, "industry": "retail"}),
    )
    .await
    .unwrap();
    assert_eq!(none["accounts"], json!([]));
    let signals = request(&client, "intent.api.signals", Value::Null)
        .await
        .unwrap();
    assert_eq!(signals["rules"].as_array().unwrap().len(), 10);
    let stats = stats(&client).await;
    assert!(stats["latency"]["p99_us"].as_u64().unwrap() > 0);

    // Errors are service errors with a code, never a hang.
    let (code, message) = request(&client, "intent.api.score", json!({"account": "nobody"}))
        .await
        .unwrap_err();
    assert_eq!((code.as_str(), message.contains("nobody")), ("404", true));
    let (code, _) = request(&client, "intent.api.graph", json!({"acount": "typo"}))
        .await
        .unwrap_err();
    assert_eq!(code, "400");
    let (code, _) = request(&client, "intent.api.top", json!({"n": 0}))
        .await
        .unwrap_err();
    assert_eq!(code, "400");
    // Started without --index: search says how to turn it on.
    let (code, message) = request(&client, "intent.api.search", json!({"query": "ct"}))
        .await
        .unwrap_err();
    assert_eq!((code.as_str(), message.contains("--index")), ("501", true));

    let stats = request(&client, "$SRV.STATS.intent", Value::Null)
        .await
        .unwrap();
    let score_stats = stats["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subject"] == "intent.api.score")
        .unwrap();
    assert_eq!(score_stats["num_requests"], 2);
    assert_eq!(score_stats["num_errors"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_past_its_deliveries_goes_to_the_dead_letter_stream() {
    let server = NatsServer::start();
    let engine = Engine::start(
        &server,
        &["--max-deliver", "2", "--ack-wait", "1s"],
        &[("INTENT_FAULT_EVENT_ID", "h-3")],
    )
    .await;
    let client = connect(&server).await;
    publish_file(&server, &fixture("hospital_comparison"));
    let stats = wait_for(&client, "the dead letter", Duration::from_secs(30), |s| {
        n(s, "max_deliveries") >= 1
    })
    .await;
    assert!(n(&stats, "unprocessable") >= 2, "{stats:#}");
    wait_for(&client, "the DLQ copy", Duration::from_secs(10), |s| {
        n(s, "dlq") >= 1
    })
    .await;
    let letters = stream_messages(&client, "INTENT_DLQ").await;
    assert_eq!(letters.len(), 1);
    let payload: Value = serde_json::from_slice(&letters[0].payload).unwrap();
    assert_eq!(payload["id"], "h-3");
    let headers = letters[0].headers.as_ref().unwrap();
    assert!(headers
        .get("Intent-Error")
        .unwrap()
        .as_str()
        .contains("2 deliveries"));
    // Everything else was applied and acknowledged.
    wait_drained(&client).await;
    // The fixture's other five events.
    assert_eq!(n(&harness::stats(&client).await, "applied"), 5);
    let graph = request(
        &client,
        "intent.api.graph",
        json!({"account": "hosp-zhongshan"}),
    )
    .await
    .unwrap();

    // After a restart the rebuild leaves the dead-lettered event out (the
    // fault is still armed: applying it again would fail), and it is not
    // dead-lettered twice.
    drop(engine);
    let _engine = Engine::start(
        &server,
        &["--max-deliver", "2", "--ack-wait", "1s"],
        &[("INTENT_FAULT_EVENT_ID", "h-3")],
    )
    .await;
    let stats = harness::stats(&client).await;
    assert_eq!(
        (n(&stats, "applied"), n(&stats, "unprocessable")),
        (5, 0),
        "{stats:#}"
    );
    let rebuilt = request(
        &client,
        "intent.api.graph",
        json!({"account": "hosp-zhongshan"}),
    )
    .await
    .unwrap();
    assert_eq!(rebuilt, graph);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stream_messages(&client, "INTENT_DLQ").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_mode_gives_the_same_actions_as_replay() {
    let server = NatsServer::start();
    let _engine = Engine::start(&server, &["--mode", "core", "--lateness", "1s"], &[]).await;
    let client = connect(&server).await;
    let mut actions = client.subscribe("intent.actions.>").await.unwrap();
    client.flush().await.unwrap();
    let path = fixture("manufacturing_title_change");
    let out = Command::new(intent_bin())
        .args(["publish", "--core", "--nats", &server.url()])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let expected = replay_actions(&[path], &["--lateness", "1s"]);
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let message = tokio::time::timeout(Duration::from_secs(20), actions.next())
            .await
            .expect("actions")
            .unwrap();
        let id = message
            .headers
            .as_ref()
            .unwrap()
            .get("Nats-Msg-Id")
            .unwrap()
            .to_string();
        let action: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(action["id"], id.as_str());
        got.push(action);
    }
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_exits_zero_and_a_restart_loses_nothing() {
    let expected = reference().await.clone();
    let (all, _, _, count) = synthetic_events();
    let server = NatsServer::start();
    let mut engine = Engine::start(&server, &[], &[]).await;
    let client = connect(&server).await;
    let publisher = publish_in_background(&server, all);
    wait_for(
        &client,
        "a third of the stream",
        Duration::from_secs(60),
        |s| n(s, "events_in") >= *count as u64 / 3,
    )
    .await;
    let status = engine.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status}\n{}", engine.log_text());
    assert!(engine.log_text().contains("stopped"));
    let _engine = Engine::start(&server, &[], &[]).await;
    publisher.join().unwrap();
    wait_drained(&client).await;
    let got = collect_result(&client).await;
    assert_eq!(got.action_ids, expected.action_ids);
    assert_eq!(got.stored_actions, got.action_ids.len());
    assert_eq!(got.graphs, expected.graphs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tick_firing_thousands_of_timers_stores_every_action() {
    // 6,000 leads whose 48 h of silence ended a minute ago by the wall
    // clock: the first tick after the backlog fires them all in one batch.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = now_ms - 48 * 3_600_000 - 120_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leads.jsonl");
    let lines: Vec<String> = (0..6000)
        .map(|i| {
            json!({"id": format!("t-{i}"), "ts": start + i, "account": format!("lead-{i}"), "kind": "crm",
                   "type": "first_touch", "contact": {"id": format!("c-{i}")}})
            .to_string()
        })
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    let server = NatsServer::start();
    let _engine = Engine::start(&server, &["--clock", "wall", "--lateness", "1s"], &[]).await;
    let client = connect(&server).await;
    publish_file(&server, &path);
    let stats = wait_for(
        &client,
        "6,000 silence actions",
        Duration::from_secs(120),
        |s| n(s, "actions_out") >= 6000,
    )
    .await;
    assert_eq!(stats["actions_by_rule"]["silent_after_first_touch"], 6000);
    let actions = stored_actions(&client).await;
    assert_eq!(actions.len(), 6000);
    assert!(actions
        .iter()
        .all(|a| a["rule"] == "silent_after_first_touch"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_with_the_wrong_configuration_is_refused() {
    let server = NatsServer::start();
    let client = connect(&server).await;
    let js = jetstream::new(client.clone());
    js.create_stream(jetstream::stream::Config {
        name: "INTENT_EVENTS".into(),
        subjects: vec!["intent.events.>".into()],
        storage: jetstream::stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut child = Command::new(intent_bin())
        .args(["serve", "--nats", &server.url()])
        .arg("--signals")
        .arg(root().join("signal-defs"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Refused promptly, not left hanging.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            panic!("intent serve neither refused nor exited within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("INTENT_EVENTS")
            && stderr.contains("storage: want File, server has Memory"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_going_silent_is_noticed_on_the_wall_clock_without_other_events() {
    let server = NatsServer::start();
    let _engine = Engine::start(&server, &["--clock", "wall", "--lateness", "1s"], &[]).await;
    let client = connect(&server).await;
    let mut actions = client
        .subscribe("intent.actions.silent_after_first_touch.>")
        .await
        .unwrap();
    client.flush().await.unwrap();
    // A first touch 48 h minus 3 s ago: the lead goes silent in 3 s, and no
    // other event will ever move event time.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let touched = now_ms - 48 * 3_600_000 + 3_000;
    let event = json!({
        "id": "wall-1", "ts": touched, "account": "lead-wall", "kind": "crm",
        "type": "first_touch", "contact": {"id": "c-wall", "title": "IT Manager"},
    });
    let js = jetstream::new(client.clone());
    js.publish("intent.events.crm.lead-wall", event.to_string().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let message = tokio::time::timeout(Duration::from_secs(30), actions.next())
        .await
        .expect("the silence was not noticed")
        .unwrap();
    let received_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let action: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(action["account"], "lead-wall");
    let deadline = touched + 48 * 3_600_000;
    // Not before the deadline (plus the allowed lateness) by the wall clock.
    assert!(
        received_ms >= deadline + 1_000,
        "fired {} ms early",
        deadline + 1_000 - received_ms
    );
    assert!(n(&harness::stats(&client).await, "clock_ticks") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_used_and_the_helper_commands_work() {
    let server = NatsServer::start_with(&["--user", "crm", "--pass", "s3cret"]);
    let url = server.url();
    let auth = ["--user", "crm", "--password", "s3cret"];
    let engine = Engine::start(&server, &auth, &[]).await;
    let run = |args: &[&str]| {
        output_within(
            Command::new(intent_bin())
                .args(args)
                .args(["--nats", &url])
                .args(auth),
            Duration::from_secs(30),
        )
    };
    let out = run(&["publish", fixture("hospital_comparison").to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("6 stored"));

    // tail: the stored action, from the start of the stream.
    let out = run(&["tail", "--all", "-n", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tailed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(tailed.len(), 1);
    assert_eq!(tailed[0]["rule"], "comparison_page_repeat");

    let out = run(&["query", "score", "hosp-zhongshan"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let score: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(score["score"].as_f64().unwrap() > 0.0);
    let out = run(&["query", "explain", "hosp-zhongshan"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("hosp-zhongshan"));
    let out = run(&["query", "score", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("(404)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without the credentials the server refuses the client.
    let out = output_within(
        Command::new(intent_bin()).args(["query", "stats", "--nats", &url]),
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    drop(engine);
}

/// Polls `intent.api.search` until it reports `total` matches.
async fn search_until(client: &async_nats::Client, body: Value, total: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = request(client, "intent.api.search", body.clone())
            .await
            .unwrap();
        if reply["total"] == total {
            return reply;
        }
        assert!(
            Instant::now() < deadline,
            "search never reached {total}: {reply:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_answers_over_nats_and_a_restart_rebuilds_the_index_without_duplicates() {
    let server = NatsServer::start();
    let index = tempfile::tempdir().unwrap();
    let index_arg = index.path().join("idx");
    let signals = index.path().join("signal-defs");
    copy_dir(&root().join("signal-defs"), &signals);
    let args = [
        "--signals",
        signals.to_str().unwrap(),
        "--index",
        index_arg.to_str().unwrap(),
        "--index-commit",
        "200ms",
    ];
    let mut engine = Engine::start(&server, &args, &[]).await;
    let client = connect(&server).await;
    publish_file(&server, &fixture("mixed_language"));
    let zh = search_until(&client, json!({"query": "诊断", "kind": "transcript"}), 1).await;
    let hit = &zh["hits"][0];
    assert_eq!(hit["kind"], "transcript");
    assert!(
        hit["signals"]
            .to_string()
            .contains("customer_confirmed_value"),
        "{hit:#}"
    );
    let fragment = hit["text"]["fragment"].as_str().unwrap();
    let [start, end] = [0, 1].map(|i| hit["text"]["matches"][0][i].as_u64().unwrap() as usize);
    assert_eq!(&fragment[start..end], "诊断");
    let snippets = search_until(&client, json!({"query": "痛点", "snippets": true}), 1).await;
    assert!(snippets["hits"][0]["rep_text"]["fragment"]
        .as_str()
        .is_some());
    // The served index holds what `intent index` builds offline from the
    // same events.
    let offline = index.path().join("offline");
    let out = Command::new(intent_bin())
        .args(["index", "--signals"])
        .arg(root().join("signal-defs"))
        .arg("--index")
        .arg(&offline)
        .arg("--events")
        .arg(fixture("mixed_language"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let query = "demo OR 诊断 OR budget OR 预算";
    let out = Command::new(intent_bin())
        .args(["search", query, "--json", "--limit", "50", "--index"])
        .arg(&offline)
        .output()
        .unwrap();
    let offline: Value = serde_json::from_slice(&out.stdout).unwrap();
    let total = offline["total"].as_u64().unwrap();
    assert!(total >= 3, "{offline:#}");
    search_until(&client, json!({"query": query, "limit": 50}), total).await;
    // A bad query is a 400 naming it.
    let (code, message) = request(
        &client,
        "intent.api.search",
        json!({"query": "x", "kind": "web"}),
    )
    .await
    .unwrap_err();
    assert_eq!((code.as_str(), message.contains("kind")), ("400", true));

    // The analyzer cannot change under a running index: the reload is
    // refused naming where [analyzer] is, and the running set stays.
    let engine_toml = signals.join("engine.toml");
    let original = std::fs::read_to_string(&engine_toml).unwrap();
    std::fs::write(
        &engine_toml,
        original.replace("prefix_fold = 7", "prefix_fold = 6"),
    )
    .unwrap();
    let (code, message) = request(&client, "intent.api.reload", Value::Null)
        .await
        .unwrap_err();
    let line = original
        .lines()
        .position(|l| l.trim() == "[analyzer]")
        .unwrap()
        + 1;
    assert_eq!(code, "422", "{message}");
    assert!(
        message.contains(&format!("engine.toml:{line}: the analyzer cannot change")),
        "{message}"
    );
    std::fs::write(&engine_toml, original).unwrap();

    let applied = n(&stats(&client).await, "applied");
    assert!(engine.terminate(Duration::from_secs(20)).success());
    let _engine = Engine::start(&server, &args, &[]).await;
    // Rebuilt from the stream: once every event is applied again and a few
    // commit intervals have passed, the same matches, each once.
    wait_for(&client, "the rebuild", Duration::from_secs(30), |s| {
        n(s, "applied") >= applied
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let after = request(
        &client,
        "intent.api.search",
        json!({"query": query, "limit": 50}),
    )
    .await
    .unwrap();
    assert_eq!(after["total"], total, "{after:#}");
    let ids: Vec<&str> = after["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event_id"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an event indexed twice: {ids:?}");
}
