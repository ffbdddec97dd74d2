//! The load generator against a real nats-server: the schedule is open
//! loop (a slow responder shows as latency growing with the queue, not as a
//! lower rate), actions are matched to their events against a real engine,
//! the floor responder echoes everything, and the report's outputs (JSON,
//! HdrHistogram log, SVG) have their documented shape.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use benches::loadgen::measure::{self, RunConfig, RunResult, Target};
use benches::loadgen::report::{self, Report, Row};
use benches::loadgen::spawn::NatsServer;
use benches::loadgen::workload::{self, Workload, WorkloadConfig};
use futures_util::StreamExt;
use intent_core::time::Timestamp;
use intent_serve::subjects::Subjects;

fn server_bin() -> String {
    std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn workload(rate: f64, secs: f64, run_id: &str) -> Workload {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    workload::build(
        &WorkloadConfig {
            synth: intent_analyst::synth::SynthConfig {
                seed: 11,
                n_events: (rate * secs) as usize,
                n_accounts: 300,
                zipf: 1.1,
                mix: [80, 15, 5],
                intent_share: 0.3,
                start: Timestamp(now_ms),
                step_ms: 0,
            },
            rate,
            run_id: run_id.into(),
            lateness_ms: 600_000,
        },
        &benches::corpus(),
        benches::shipped_defs(),
        &Subjects::new("intent").unwrap(),
    )
}

/// How many events of a workload trigger an action.
fn load_triggering(rate: f64, secs: f64, run_id: &str) -> u64 {
    workload(rate, secs, run_id)
        .triggers
        .iter()
        .filter(|&&t| t > 0)
        .count() as u64
}

fn config(server: &NatsServer, target: Target, rate: f64, secs: f64) -> RunConfig {
    RunConfig {
        nats: server.url(),
        target,
        rate,
        duration: Duration::from_secs_f64(secs),
        query_rate: 0.0,
        drain: Duration::from_secs(10),
        prefix: "intent".into(),
        progress: false,
        spawn_responder: true,
    }
}

#[test]
fn a_slow_responder_shows_as_latency_not_as_a_lower_rate() {
    let server = NatsServer::start(&server_bin()).unwrap();
    let rt = runtime();
    // A responder that needs 2 ms per message (its own thread and runtime,
    // like a separate process): at 1,000/s it falls behind by half a
    // message per millisecond.
    let stop = Arc::new(AtomicBool::new(false));
    let responder_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = responder_rt
        .block_on(async_nats::connect(server.url()))
        .unwrap();
    let mut sub = responder_rt
        .block_on(client.subscribe("loadgen.floor.>"))
        .unwrap();
    responder_rt.block_on(client.flush()).unwrap();
    let stop_responder = Arc::clone(&stop);
    let responder = std::thread::spawn(move || {
        responder_rt.block_on(async move {
            while let Ok(Some(message)) =
                tokio::time::timeout(Duration::from_secs(20), sub.next()).await
            {
                if stop_responder.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
                let index = message.subject.rsplit('.').next().unwrap().to_string();
                client
                    .publish(format!("loadgen.echo.{index}"), message.payload)
                    .await
                    .unwrap();
            }
        })
    });
    // 3,000 events: more than the client's send buffer holds (2,048).
    let load = workload(1000.0, 3.0, "slow");
    let mut cfg = config(&server, Target::Floor, 1000.0, 3.0);
    cfg.spawn_responder = false;
    cfg.drain = Duration::from_secs(15);
    let result = measure::run(&rt, &load, &cfg).unwrap();
    stop.store(true, Ordering::Relaxed);
    responder.join().unwrap();
    // The sender kept the schedule...
    assert!(result.achieved_rate > 950.0, "{result:?}");
    assert!(result.max_backlog < 50, "{result:?}");
    // ...and the queue shows in the latency: the last answers waited
    // about as long as the responder was behind (~3 s at the end).
    assert_eq!(result.received, 3000, "{result:?}");
    assert!(result.latency.p99_ms > 1000.0, "{:?}", result.latency);
    assert!(result.latency.p50_ms > 300.0, "{:?}", result.latency);
}

#[test]
fn the_floor_echoes_every_message_and_the_report_has_its_shape() {
    let server = NatsServer::start(&server_bin()).unwrap();
    let rt = runtime();
    let floor: RunResult = measure::run(
        &rt,
        &workload(2000.0, 1.0, "floor"),
        &config(&server, Target::Floor, 2000.0, 1.0),
    )
    .unwrap();
    assert_eq!(
        (floor.sent, floor.received, floor.lost),
        (2000, 2000, 0),
        "{floor:?}"
    );
    assert_eq!((floor.unmatched, floor.duplicates), (0, 0));
    // The floor also reports the events that trigger actions on their own.
    let same = floor.latency_triggering.clone().unwrap();
    let triggering = load_triggering(2000.0, 1.0, "floor");
    assert_eq!(same.count, triggering);
    assert!(floor.latency.p50_ms < 50.0, "{:?}", floor.latency);
    assert!(
        floor.latency.p50_ms <= floor.latency.p99_ms
            && floor.latency.p99_ms <= floor.latency.max_ms
    );

    // The outputs, from a report with the floor in both places.
    // An "engine" that answered exactly as the floor did on the triggering
    // events: the comparison is made on those events, so it shows no gap.
    let mut engine = floor.clone();
    engine.target = Target::Engine;
    engine.latency = same.clone();
    engine.latency_triggering = None;
    let row = Row::new(2000.0, Some(floor.clone()), engine, 5.0);
    assert_eq!(row.difference_ms.as_ref().unwrap().p99_ms, 0.0);
    assert_eq!(row.ratio.as_ref().unwrap().p50_ms, 1.0);
    let report = Report {
        machine: "test".into(),
        nats_server: NatsServer::version(&server_bin()),
        mode: "core".into(),
        accounts: 300,
        zipf: 1.1,
        mix: "web=80,email=15,transcript=5".into(),
        intent_share: 0.3,
        seed: 11,
        duration_s: 1.0,
        slo_p99_ms: 5.0,
        rows: vec![row],
        breaking_point: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    report::write_json(&report, &json_path).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let engine = &json["rows"][0]["engine"];
    for key in [
        "p50_ms", "p90_ms", "p99_ms", "p999_ms", "p9999_ms", "max_ms", "mean_ms", "count",
    ] {
        assert!(engine["latency"][key].is_number(), "{key}: {engine}");
    }
    for key in [
        "sent",
        "received",
        "expected",
        "lost",
        "achieved_rate",
        "max_backlog",
        "target_rate",
    ] {
        assert!(engine[key].is_number(), "{key}: {engine}");
    }
    assert_eq!(engine["target"], "engine");
    assert!(json["rows"][0]["floor"]["latency_triggering"]["p99_ms"].is_number());
    assert!(json["rows"][0]["meets_slo"].is_boolean());
    assert!(json["rows"][0]["difference_ms"]["p99_ms"].is_number());
    assert_eq!(json["mode"], "core");

    let log_path = dir.path().join("latency.hlog");
    report::write_hdr_log(&report, &log_path).unwrap();
    let log = std::fs::read(&log_path).unwrap();
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let tags: Vec<String> = IntervalLogIterator::new(&log)
        .filter_map(|entry| match entry.unwrap() {
            LogEntry::Interval(h) => h.tag().map(|t| t.as_str().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(tags, ["floor-2000", "engine-2000"]);

    let svg_path = dir.path().join("latency.svg");
    report::write_plot(&report, &svg_path).unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("floor 2000/s") && svg.contains("polyline"),
        "{}",
        &svg[..200.min(svg.len())]
    );
}

#[test]
fn actions_from_a_real_engine_are_matched_to_their_events() {
    let server = NatsServer::start(&server_bin()).unwrap();
    // The engine in this process, on its own threads (core mode).
    let url = server.url();
    std::thread::spawn(move || {
        let config = intent_serve::ServeConfig {
            nats: url,
            signals: benches::root().join("signal-defs"),
            mode: intent_serve::Mode::Core,
            clock: intent_serve::ClockMode::Event,
            kv_bucket: String::new(),
            watch_interval: Duration::ZERO,
            ..intent_serve::ServeConfig::default()
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(intent_serve::run(config)).unwrap();
    });
    let rt = runtime();
    let client = rt.block_on(async_nats::connect(server.url())).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while rt
        .block_on(measure::engine_stats(&client, "intent"))
        .is_err()
    {
        assert!(std::time::Instant::now() < deadline, "engine not up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let load = workload(500.0, 3.0, "match");
    assert!(load.expected_actions > 20, "{}", load.expected_actions);
    let mut cfg = config(&server, Target::Engine, 500.0, 3.0);
    cfg.query_rate = 100.0;
    let result = measure::run(&rt, &load, &cfg).unwrap();
    assert_eq!(result.expected, load.expected_actions);
    assert_eq!(
        (result.received, result.lost, result.unmatched),
        (result.expected, 0, 0),
        "{result:?}"
    );
    let during = &result.engine_stats.as_ref().unwrap()["during_run"];
    assert_eq!(during["applied"], 1500, "{during}");
    assert_eq!(during["actions_out"].as_u64().unwrap(), result.expected);
    assert_eq!(result.duplicates, 0);
    let api = result.api.unwrap();
    assert!(api.sent >= 250 && api.answered == api.sent, "{api:?}");
    assert_eq!((api.errors, api.unanswered), (0, 0), "{api:?}");
    assert_eq!(api.latency.count, api.answered);
}
