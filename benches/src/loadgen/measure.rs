//! One open-loop run: events are sent on a fixed schedule whatever comes
//! back; each answer's latency is measured from its event's *scheduled*
//! send time (so a stall anywhere, the sender included, shows in the
//! percentiles instead of silently lowering the rate — no coordinated
//! omission). Against the engine the answers are actions, matched to their
//! triggering event by id; against the floor they are echoes of the same
//! messages from a trivial responder.
//!
//! Threads: one sender (a plain thread pacing with `sleep`, publishing
//! through the runtime's handle), one query sender when asked, the
//! receivers as tasks on a small runtime. No task per message.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::workload::{event_index, Workload};

/// What answers the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// `intent serve`: actions on `<prefix>.actions.>`.
    Engine,
    /// The echo responder: `loadgen.floor.<i>` back as `loadgen.echo.<i>`.
    Floor,
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub nats: String,
    pub target: Target,
    pub rate: f64,
    pub duration: Duration,
    /// `intent.api.score` requests per second alongside (engine only; 0 = none).
    pub query_rate: f64,
    /// How long to wait for stragglers after the last send.
    pub drain: Duration,
    pub prefix: String,
    /// Print a progress line every second (stderr).
    pub progress: bool,
    /// Start the built-in echo responder (Floor); off when the test brings
    /// its own.
    pub spawn_responder: bool,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub p9999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Percentiles {
    pub fn of(hist: &Histogram<u64>) -> Percentiles {
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: hist.len(),
            p50_ms: ms(hist.value_at_quantile(0.50)),
            p90_ms: ms(hist.value_at_quantile(0.90)),
            p99_ms: ms(hist.value_at_quantile(0.99)),
            p999_ms: ms(hist.value_at_quantile(0.999)),
            p9999_ms: ms(hist.value_at_quantile(0.9999)),
            max_ms: ms(hist.max()),
            mean_ms: hist.mean() / 1000.0,
        }
    }
}

/// The API side of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApiResult {
    pub target_rate: f64,
    pub sent: u64,
    pub answered: u64,
    pub errors: u64,
    pub latency: Percentiles,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub target: Target,
    pub target_rate: f64,
    pub duration_s: f64,
    pub sent: u64,
    pub send_errors: u64,
    /// Events sent per second of sending.
    pub achieved_rate: f64,
    /// The most events behind schedule the sender ever was.
    pub max_backlog: u64,
    pub expected: u64,
    pub received: u64,
    /// Answers that matched no event of this run.
    pub unmatched: u64,
    pub lost: u64,
    pub latency: Percentiles,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiResult>,
    /// The engine's own `stats` after the run, and the change of its
    /// counters over the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_stats: Option<serde_json::Value>,
    #[serde(skip)]
    pub histogram: Option<Histogram<u64>>,
    #[serde(skip)]
    pub started: Option<std::time::SystemTime>,
}

/// The send schedule: event `i` is due at `t0 + i / rate`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub t0: Instant,
    pub interval: Duration,
}

impl Schedule {
    pub fn new(t0: Instant, rate: f64) -> Schedule {
        Schedule {
            t0,
            interval: Duration::from_secs_f64(1.0 / rate.max(1e-6)),
        }
    }

    pub fn at(&self, i: usize) -> Instant {
        self.t0 + self.interval.mul_f64(i as f64)
    }

    /// How many are due by `now`.
    pub fn due_by(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.t0);
        (elapsed.as_secs_f64() / self.interval.as_secs_f64()).floor() as u64 + 1
    }
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds")
}

fn record(hist: &Mutex<Histogram<u64>>, scheduled: Instant, now: Instant) {
    let us = now.saturating_duration_since(scheduled).as_micros() as u64;
    let mut hist = hist.lock().unwrap_or_else(|p| p.into_inner());
    hist.saturating_record(us.max(1));
}

/// Shared between the receiver tasks and the driver.
struct Tally {
    hist: Mutex<Histogram<u64>>,
    received: AtomicU64,
    unmatched: AtomicU64,
    api_hist: Mutex<Histogram<u64>>,
    api_answered: AtomicU64,
    api_errors: AtomicU64,
}

/// The index in the trigger field of an action, without a full parse.
fn trigger_index(run_id: &str, payload: &[u8]) -> Option<usize> {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        trigger_event: Option<&'a str>,
    }
    let head: Head = serde_json::from_slice(payload).ok()?;
    event_index(run_id, head.trigger_event?)
}

/// Runs one schedule against the target.
pub fn run(
    runtime: &tokio::runtime::Runtime,
    workload: &Workload,
    config: &RunConfig,
) -> Result<RunResult> {
    let handle = runtime.handle().clone();
    let n_events =
        ((config.rate * config.duration.as_secs_f64()).round() as usize).min(workload.events.len());
    anyhow::ensure!(
        n_events > 0,
        "nothing to send: rate × duration is 0 (or the workload is empty)"
    );
    let expected = match config.target {
        Target::Engine => workload.triggers[..n_events]
            .iter()
            .map(|&t| t as u64)
            .sum(),
        Target::Floor => n_events as u64,
    };
    let connect = |name: &'static str| {
        let url = config.nats.clone();
        handle.block_on(async move {
            async_nats::ConnectOptions::new()
                .name(name)
                .subscription_capacity(1 << 20)
                .connect(url.as_str())
                .await
        })
    };
    let sender =
        connect("loadgen-sender").with_context(|| format!("cannot connect to {}", config.nats))?;
    let receiver = connect("loadgen-receiver")?;
    let tally = Arc::new(Tally {
        hist: Mutex::new(new_histogram()),
        received: AtomicU64::new(0),
        unmatched: AtomicU64::new(0),
        api_hist: Mutex::new(new_histogram()),
        api_answered: AtomicU64::new(0),
        api_errors: AtomicU64::new(0),
    });
    let stats_before = match config.target {
        Target::Engine => handle.block_on(engine_stats(&sender, &config.prefix)).ok(),
        Target::Floor => None,
    };

    // The floor's echo responder: its own connection and thread.
    let responder_stop = Arc::new(AtomicBool::new(false));
    let responder = (config.target == Target::Floor && config.spawn_responder)
        .then(|| echo_responder(&config.nats, Arc::clone(&responder_stop)))
        .transpose()?;

    let schedule_cell: Arc<Mutex<Option<Schedule>>> = Arc::new(Mutex::new(None));
    let answers_subject = match config.target {
        Target::Engine => format!("{}.actions.>", config.prefix),
        Target::Floor => "loadgen.echo.>".to_string(),
    };
    let mut answers = handle.block_on(receiver.subscribe(answers_subject))?;
    let api_inbox = format!("_LG.{}.api", workload.run_id);
    let mut api_replies = handle.block_on(receiver.subscribe(format!("{api_inbox}.*")))?;
    handle.block_on(receiver.flush())?;

    let t0 = Instant::now() + Duration::from_millis(50);
    let schedule = Schedule::new(t0, config.rate);
    *schedule_cell.lock().unwrap() = Some(schedule);
    let started = std::time::SystemTime::now();

    // Receivers.
    let target = config.target;
    let run_id = workload.run_id.clone();
    let rx_tally = Arc::clone(&tally);
    let receiver_task = handle.spawn(async move {
        while let Some(message) = answers.next().await {
            let now = Instant::now();
            let index = match target {
                Target::Engine => trigger_index(&run_id, &message.payload),
                Target::Floor => message
                    .subject
                    .rsplit('.')
                    .next()
                    .and_then(|i| i.parse().ok()),
            };
            match index {
                Some(i) => {
                    record(&rx_tally.hist, schedule.at(i), now);
                    rx_tally.received.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    rx_tally.unmatched.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    let query_schedule = Schedule::new(t0, config.query_rate.max(1e-6));
    let api_tally = Arc::clone(&tally);
    let api_task = handle.spawn(async move {
        while let Some(message) = api_replies.next().await {
            let now = Instant::now();
            let Some(i) = message
                .subject
                .rsplit('.')
                .next()
                .and_then(|i| i.parse::<usize>().ok())
            else {
                continue;
            };
            let failed = message
                .headers
                .as_ref()
                .is_some_and(|h| h.get("Nats-Service-Error").is_some());
            if failed {
                api_tally.api_errors.fetch_add(1, Ordering::Relaxed);
            }
            record(&api_tally.api_hist, query_schedule.at(i), now);
            api_tally.api_answered.fetch_add(1, Ordering::Relaxed);
        }
    });

    // Senders.
    let sent = Arc::new(AtomicU64::new(0));
    let send_errors = Arc::new(AtomicU64::new(0));
    let sending_done = Arc::new(AtomicBool::new(false));
    let events: Vec<(String, String, Bytes)> = workload.events[..n_events]
        .iter()
        .map(|e| {
            let subject = match target {
                Target::Engine => e.subject.clone(),
                Target::Floor => String::new(),
            };
            (subject, e.id.clone(), e.payload.clone())
        })
        .collect();
    let sender_thread = {
        let (sent, send_errors, done) = (
            Arc::clone(&sent),
            Arc::clone(&send_errors),
            Arc::clone(&sending_done),
        );
        let client = sender.clone();
        let handle = handle.clone();
        std::thread::Builder::new()
            .name("loadgen-send".into())
            .spawn(move || {
                for (i, (subject, id, payload)) in events.into_iter().enumerate() {
                    pace(schedule.at(i));
                    let subject = match target {
                        Target::Engine => subject,
                        Target::Floor => format!("loadgen.floor.{i}"),
                    };
                    let mut headers = HeaderMap::new();
                    headers.insert("Nats-Msg-Id", id.as_str());
                    if handle
                        .block_on(client.publish_with_headers(subject, headers, payload))
                        .is_err()
                    {
                        send_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    sent.store(i as u64 + 1, Ordering::Relaxed);
                }
                let _ = handle.block_on(client.flush());
                done.store(true, Ordering::Relaxed);
            })?
    };
    let query_thread = (target == Target::Engine && config.query_rate > 0.0).then(|| {
        let client = sender.clone();
        let handle = handle.clone();
        let done = Arc::clone(&sending_done);
        let sent = Arc::clone(&sent);
        let accounts: Vec<String> = workload.events[..n_events]
            .iter()
            .map(|e| e.subject.rsplit('.').next().unwrap_or_default().to_string())
            .collect();
        let prefix = config.prefix.clone();
        let inbox = api_inbox.clone();
        let rate_per_100ms = (config.rate / 10.0) as usize;
        std::thread::Builder::new()
            .name("loadgen-query".into())
            .spawn(move || {
                let subject = format!("{prefix}.api.score");
                let mut i = 0usize;
                while !done.load(Ordering::Relaxed) {
                    pace(query_schedule.at(i));
                    // An account the engine has heard of: one sent at least
                    // 100 ms ago (not a 404 for an event still on its way).
                    let settled =
                        (sent.load(Ordering::Relaxed) as usize).saturating_sub(rate_per_100ms);
                    let seen = settled.max(1).min(accounts.len());
                    let account = &accounts[(i * 7919) % seen];
                    let body = Bytes::from(format!("{{\"account\":\"{account}\"}}"));
                    let _ = handle.block_on(client.publish_with_reply(
                        subject.clone(),
                        format!("{inbox}.{i}"),
                        body,
                    ));
                    i += 1;
                }
                i as u64
            })
            .expect("spawn query thread")
    });

    // Progress and completion.
    let mut max_backlog = 0u64;
    let mut last_print = Instant::now();
    let drain_deadline = |finished: Instant| finished + config.drain;
    let mut finished_at: Option<Instant> = None;
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        let sent_now = sent.load(Ordering::Relaxed);
        let due = schedule.due_by(now).min(n_events as u64);
        max_backlog = max_backlog.max(due.saturating_sub(sent_now));
        let received = tally.received.load(Ordering::Relaxed);
        if config.progress && last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            let hist = tally.hist.lock().unwrap().clone();
            eprintln!(
                "[{:?} {:.0}/s] t={:>5.1}s sent {} (behind {}) answers {}/{} p50 {:.2} ms p99 {:.2} ms",
                target,
                config.rate,
                now.saturating_duration_since(t0).as_secs_f64(),
                sent_now,
                due.saturating_sub(sent_now),
                received,
                expected,
                hist.value_at_quantile(0.5) as f64 / 1000.0,
                hist.value_at_quantile(0.99) as f64 / 1000.0,
            );
        }
        if sending_done.load(Ordering::Relaxed) {
            let finished = *finished_at.get_or_insert(now);
            if received >= expected || now >= drain_deadline(finished) {
                break;
            }
        }
    }
    let send_end = finished_at.unwrap_or_else(Instant::now);
    sender_thread.join().expect("sender thread");
    let api_sent = query_thread.map(|t| t.join().expect("query thread"));
    if api_sent.is_some() {
        // Replies to the last queries.
        std::thread::sleep(Duration::from_millis(300).min(config.drain));
    }
    receiver_task.abort();
    api_task.abort();
    responder_stop.store(true, Ordering::Relaxed);
    if let Some(responder) = responder {
        let _ = responder.join();
    }
    let engine_stats = match (config.target, stats_before) {
        (Target::Engine, before) => handle
            .block_on(engine_stats(&sender, &config.prefix))
            .ok()
            .map(|after| stats_delta(before.as_ref(), &after)),
        _ => None,
    };

    let sent_total = sent.load(Ordering::Relaxed);
    let received = tally.received.load(Ordering::Relaxed);
    let hist = tally.hist.lock().unwrap().clone();
    let api = api_sent.map(|sent| ApiResult {
        target_rate: config.query_rate,
        sent,
        answered: tally.api_answered.load(Ordering::Relaxed),
        errors: tally.api_errors.load(Ordering::Relaxed),
        latency: Percentiles::of(&tally.api_hist.lock().unwrap()),
    });
    let sending_secs = send_end
        .saturating_duration_since(t0)
        .as_secs_f64()
        .max(1e-9);
    Ok(RunResult {
        target: config.target,
        target_rate: config.rate,
        duration_s: config.duration.as_secs_f64(),
        sent: sent_total,
        send_errors: send_errors.load(Ordering::Relaxed),
        achieved_rate: sent_total as f64 / sending_secs,
        max_backlog,
        expected,
        received,
        unmatched: tally.unmatched.load(Ordering::Relaxed),
        lost: expected.saturating_sub(received),
        latency: Percentiles::of(&hist),
        api,
        engine_stats,
        histogram: Some(hist),
        started: Some(started),
    })
}

/// Sleeps until `at` (the kernel's timer slack, ~50 µs, is the error).
fn pace(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

/// The trivial responder of the floor: every `loadgen.floor.<i>` is
/// published back as `loadgen.echo.<i>`, from its own connection and thread.
pub fn echo_responder(nats: &str, stop: Arc<AtomicBool>) -> Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = runtime.block_on(async_nats::connect(nats))?;
    let mut sub = runtime.block_on(client.subscribe("loadgen.floor.>"))?;
    runtime.block_on(client.flush())?;
    Ok(std::thread::Builder::new()
        .name("loadgen-echo".into())
        .spawn(move || {
            runtime.block_on(async move {
                loop {
                    let next = tokio::time::timeout(Duration::from_millis(100), sub.next()).await;
                    match next {
                        Ok(Some(message)) => {
                            let index = message
                                .subject
                                .rsplit('.')
                                .next()
                                .unwrap_or("x")
                                .to_string();
                            let _ = client
                                .publish(format!("loadgen.echo.{index}"), message.payload)
                                .await;
                        }
                        Ok(None) => break,
                        Err(_) if stop.load(Ordering::Relaxed) => break,
                        Err(_) => {}
                    }
                }
                let _ = client.flush().await;
            })
        })?)
}

/// The engine's `stats` reply.
pub async fn engine_stats(client: &async_nats::Client, prefix: &str) -> Result<serde_json::Value> {
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        client.request(format!("{prefix}.api.stats"), Bytes::new()),
    )
    .await
    .context("no stats reply within 5 s")??;
    Ok(serde_json::from_slice(&reply.payload)?)
}

/// The counters' change over a run, beside the stats after it.
fn stats_delta(before: Option<&serde_json::Value>, after: &serde_json::Value) -> serde_json::Value {
    let keys = [
        "events_in",
        "applied",
        "rejected",
        "duplicate",
        "late",
        "actions_out",
        "dlq",
        "unprocessable",
    ];
    let mut delta = serde_json::Map::new();
    for key in keys {
        let a = after[key].as_u64().unwrap_or(0);
        let b = before.and_then(|b| b[key].as_u64()).unwrap_or(0);
        delta.insert(key.to_string(), (a.saturating_sub(b)).into());
    }
    serde_json::json!({ "during_run": delta, "after": after })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_fixed_in_advance() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, 1000.0);
        assert_eq!(s.at(0), t0);
        assert_eq!(s.at(1500) - t0, Duration::from_millis(1500));
        assert_eq!(s.due_by(t0 + Duration::from_millis(999)), 1000);
    }

    #[test]
    fn actions_are_matched_by_their_trigger_event() {
        let action = br#"{"id":"act-1","rule":"r","trigger_event":"lgabc-42","score":1}"#;
        assert_eq!(trigger_index("abc", action), Some(42));
        assert_eq!(trigger_index("abd", action), None);
        assert_eq!(
            trigger_index("abc", br#"{"id":"act-2","rule":"silence"}"#),
            None
        );
        assert_eq!(trigger_index("abc", b"not json"), None);
    }

    #[test]
    fn percentiles_are_in_milliseconds() {
        let mut h = new_histogram();
        for us in 1..=1000 {
            h.record(us).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert!((p.p50_ms - 0.5).abs() < 0.01, "{p:?}");
        assert!((p.max_ms - 1.0).abs() < 0.01, "{p:?}");
    }
}
