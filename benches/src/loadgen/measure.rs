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
    /// No reply within the drain time.
    pub unanswered: u64,
    /// Service errors (e.g. 404); not in the latency figures.
    pub errors: u64,
    /// Successful replies only.
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
    /// Events handed to the NATS client per second of sending (the client
    /// writes them out as fast as the socket takes them).
    pub achieved_rate: f64,
    /// The most events behind schedule the sender ever was.
    pub max_backlog: u64,
    pub expected: u64,
    /// Answers matched to their event, at most as many per event as expected.
    pub received: u64,
    /// Answers beyond an event's expected count (e.g. an action re-sent
    /// after a retry): not in `received` nor in the latency.
    pub duplicates: u64,
    /// Answers that matched no event of this run.
    pub unmatched: u64,
    pub lost: u64,
    pub latency: Percentiles,
    /// Floor only: the latency of the events that trigger actions, the same
    /// events the engine's latency is measured on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_triggering: Option<Percentiles>,
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
    /// Latency of the events that trigger an action (floor only), so that
    /// the floor can be compared with the engine on the same events.
    hist_triggering: Mutex<Histogram<u64>>,
    /// Answers matched to an event, at most as many per event as expected.
    received: AtomicU64,
    /// Answers beyond an event's expected count (re-sent actions, echoes).
    duplicates: AtomicU64,
    /// Answers that matched no event of this run.
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
    // How many answers each event must get.
    let quota: Arc<Vec<u8>> = Arc::new(match config.target {
        Target::Engine => workload.triggers[..n_events].to_vec(),
        Target::Floor => vec![1; n_events],
    });
    let triggering: Arc<Vec<bool>> = Arc::new(
        workload.triggers[..n_events]
            .iter()
            .map(|&t| t > 0)
            .collect(),
    );
    let expected: u64 = quota.iter().map(|&q| q as u64).sum();
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
        hist_triggering: Mutex::new(new_histogram()),
        received: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
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

    let answers_subject = match config.target {
        Target::Engine => format!("{}.actions.>", config.prefix),
        Target::Floor => "loadgen.echo.>".to_string(),
    };
    let mut answers = handle.block_on(receiver.subscribe(answers_subject))?;
    let api_inbox = format!("_LG.{}.api", workload.run_id);
    let mut api_replies = handle.block_on(receiver.subscribe(format!("{api_inbox}.*")))?;
    handle.block_on(receiver.flush())?;

    // Everything the sender needs is built before the clock starts, so
    // loadgen's own set-up is not charged to the system.
    let target = config.target;
    let events: Vec<(String, String, Bytes)> = workload.events[..n_events]
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let subject = match target {
                Target::Engine => e.subject.clone(),
                Target::Floor => format!("loadgen.floor.{i}"),
            };
            (subject, e.id.clone(), e.payload.clone())
        })
        .collect();
    let accounts: Vec<String> = workload.events[..n_events]
        .iter()
        .map(|e| e.subject.rsplit('.').next().unwrap_or_default().to_string())
        .collect();

    let t0 = Instant::now() + Duration::from_millis(50);
    let schedule = Schedule::new(t0, config.rate);
    // Queries start once the first events have had time to be applied.
    let query_schedule =
        Schedule::new(t0 + Duration::from_millis(200), config.query_rate.max(1e-6));
    let started = std::time::SystemTime::now();

    // Receivers.
    let run_id = workload.run_id.clone();
    let rx_tally = Arc::clone(&tally);
    let rx_quota = Arc::clone(&quota);
    let rx_triggering = Arc::clone(&triggering);
    let receiver_task = handle.spawn(async move {
        let mut seen = vec![0u8; rx_quota.len()];
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
            match index.filter(|&i| i < seen.len()) {
                Some(i) if seen[i] < rx_quota[i] => {
                    seen[i] += 1;
                    record(&rx_tally.hist, schedule.at(i), now);
                    if target == Target::Floor && rx_triggering[i] {
                        record(&rx_tally.hist_triggering, schedule.at(i), now);
                    }
                    rx_tally.received.fetch_add(1, Ordering::Relaxed);
                }
                Some(_) => {
                    rx_tally.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    rx_tally.unmatched.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
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
                // Counted, but not timed: a quick refusal is no answer.
                api_tally.api_errors.fetch_add(1, Ordering::Relaxed);
            } else {
                record(&api_tally.api_hist, query_schedule.at(i), now);
            }
            api_tally.api_answered.fetch_add(1, Ordering::Relaxed);
        }
    });

    // Senders.
    let sent = Arc::new(AtomicU64::new(0));
    let send_errors = Arc::new(AtomicU64::new(0));
    let sending_done = Arc::new(AtomicBool::new(false));
    // When the last event was handed to the client, in µs after t0.
    let last_send_us = Arc::new(AtomicU64::new(0));
    let sender_thread = {
        let (sent, send_errors, done, last_send_us) = (
            Arc::clone(&sent),
            Arc::clone(&send_errors),
            Arc::clone(&sending_done),
            Arc::clone(&last_send_us),
        );
        let client = sender.clone();
        let handle = handle.clone();
        std::thread::Builder::new()
            .name("loadgen-send".into())
            .spawn(move || {
                for (i, (subject, id, payload)) in events.into_iter().enumerate() {
                    pace(schedule.at(i));
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
                last_send_us.store(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
                let _ = handle.block_on(async {
                    tokio::time::timeout(Duration::from_secs(5), client.flush()).await
                });
                done.store(true, Ordering::Relaxed);
            })?
    };
    let api_sent = Arc::new(AtomicU64::new(0));
    let query_thread = (target == Target::Engine && config.query_rate > 0.0).then(|| {
        let client = sender.clone();
        let handle = handle.clone();
        let done = Arc::clone(&sending_done);
        let sent = Arc::clone(&sent);
        let api_sent = Arc::clone(&api_sent);
        let send_errors = Arc::clone(&send_errors);
        let subject = format!("{}.api.score", config.prefix);
        let inbox = api_inbox.clone();
        let rate_per_100ms = (config.rate / 10.0) as usize;
        std::thread::Builder::new()
            .name("loadgen-query".into())
            .spawn(move || {
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
                    if handle
                        .block_on(client.publish_with_reply(
                            subject.clone(),
                            format!("{inbox}.{i}"),
                            body,
                        ))
                        .is_err()
                    {
                        send_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                    api_sent.store(i as u64, Ordering::Relaxed);
                }
            })
            .expect("spawn query thread")
    });

    // Progress and completion: until every expected answer is in, or the
    // drain time after the last send is over (a hard bound covers a sender
    // that never finishes).
    let mut max_backlog = 0u64;
    let mut last_print = Instant::now();
    let mut finished_at: Option<Instant> = None;
    let hard_deadline = t0 + config.duration + config.drain + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        let sent_now = sent.load(Ordering::Relaxed);
        let due = schedule.due_by(now).min(n_events as u64);
        max_backlog = max_backlog.max(due.saturating_sub(sent_now));
        let received = tally.received.load(Ordering::Relaxed);
        let api_done =
            tally.api_answered.load(Ordering::Relaxed) >= api_sent.load(Ordering::Relaxed);
        if config.progress && last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            let hist = tally.hist.lock().unwrap_or_else(|p| p.into_inner()).clone();
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
        if now > hard_deadline {
            eprintln!("warning: the run did not finish in time; reporting what arrived");
            break;
        }
        if sending_done.load(Ordering::Relaxed) {
            let finished = *finished_at.get_or_insert(now);
            if (received >= expected && api_done) || now >= finished + config.drain {
                break;
            }
        }
    }
    if finished_at.is_some() {
        sender_thread.join().expect("sender thread");
    }
    if let Some(thread) = query_thread {
        if finished_at.is_some() {
            thread.join().expect("query thread");
        }
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
    let hist = tally.hist.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let api = (target == Target::Engine && config.query_rate > 0.0).then(|| {
        let sent = api_sent.load(Ordering::Relaxed);
        let answered = tally.api_answered.load(Ordering::Relaxed);
        ApiResult {
            target_rate: config.query_rate,
            sent,
            answered,
            unanswered: sent.saturating_sub(answered),
            errors: tally.api_errors.load(Ordering::Relaxed),
            latency: Percentiles::of(&tally.api_hist.lock().unwrap_or_else(|p| p.into_inner())),
        }
    });
    let sending_secs = (last_send_us.load(Ordering::Relaxed) as f64 / 1e6).max(1e-9);
    let latency_triggering = (target == Target::Floor).then(|| {
        Percentiles::of(
            &tally
                .hist_triggering
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
    });
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
        duplicates: tally.duplicates.load(Ordering::Relaxed),
        unmatched: tally.unmatched.load(Ordering::Relaxed),
        lost: expected.saturating_sub(received),
        latency: Percentiles::of(&hist),
        latency_triggering,
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
