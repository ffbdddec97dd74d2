//! `intent serve`: the pure pipeline wrapped in a NATS service.
//!
//! Events arrive on `<prefix>.events.<kind>.<account>`, either through a
//! JetStream stream and a durable pull consumer (`jetstream` mode: an event
//! is acknowledged only after its actions and dead letters are stored) or a
//! plain subscription (`core` mode). Actions go out on
//! `<prefix>.actions.<rule>.<account>`, invalid events to
//! `<prefix>.dlq.<kind>`. A micro service answers queries under
//! `<prefix>.api.`. See ARCHITECTURE.md for the delivery guarantees.
//! [`run`] fails with a [`ServeError`]; the [`error`] module lists the
//! crate's other error types.

pub mod api;
mod backoff;
pub mod client;
mod clock;
pub mod config;
pub mod defs;
pub mod error;
#[cfg_attr(not(feature = "index"), path = "no_evidence.rs")]
pub mod evidence;
mod headers;
mod jetstream_mode;
pub mod reload;
mod reply;
pub mod setup;
pub mod state;
pub mod subjects;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::watch;

use clock::{wall_now_ms, IdleClock};
pub use config::{ClockMode, Mode, ServeConfig};
use defs::DefsSource;
pub use error::ServeError;
use headers::dead_letter_headers;
use intent_core::{Pipeline, PipelineConfig};
use state::{BatchOutput, Inbound, Shared};

/// Runs the service until SIGTERM or SIGINT; returns after a graceful stop.
pub async fn run(config: ServeConfig) -> Result<(), ServeError> {
    let subjects = config.validate()?;
    let shared_slow = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let slow = Arc::clone(&shared_slow);
    let options = config
        .connect_options("intent-engine")
        .await?
        .event_callback(move |event| {
            let slow = Arc::clone(&slow);
            async move {
                match event {
                    async_nats::Event::SlowConsumer(_) => {
                        slow.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!("NATS slow consumer: the client dropped messages (core mode cannot push back)");
                    }
                    async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS; reconnecting"),
                    async_nats::Event::Connected => tracing::info!("connected to NATS"),
                    other => tracing::info!(event = %other, "NATS"),
                }
            }
        })
        // Core mode relies on this buffer to absorb bursts.
        .subscription_capacity(1 << 18);
    let client = options
        .connect(config.nats.as_str())
        .await
        .map_err(|source| ServeError::Connect {
            url: config.nats.clone(),
            source,
        })?;
    let js = async_nats::jetstream::new(client.clone());

    // Definitions: the directory, overlaid by the KV bucket's files.
    let mut source = DefsSource::new(&config.signals, &config.kv_bucket);
    let kv_store = if config.mode == Mode::Jetstream && !config.kv_bucket.is_empty() {
        let store = setup::ensure_kv(&js, &config.kv_bucket, config.replicas).await?;
        read_kv_overlay(&store, &config.kv_bucket, &mut source).await?;
        Some(store)
    } else {
        None
    };
    let set = source.compile().map_err(|errors| ServeError::Definitions {
        dir: config.signals.clone(),
        errors,
    })?;
    tracing::info!(summary = %set.summary(), "signal definitions loaded");
    let pipeline = Pipeline::new(
        Arc::new(set),
        PipelineConfig {
            allowed_lateness_ms: config.lateness.as_millis() as i64,
            ..PipelineConfig::default()
        },
    );
    let mode = match config.mode {
        Mode::Jetstream => "jetstream",
        Mode::Core => "core",
    };
    let evidence = match &config.index {
        Some(path) => Some(
            evidence::Evidence::open(&config, path, pipeline.defs()).map_err(|source| {
                ServeError::Evidence {
                    path: path.clone(),
                    source,
                }
            })?,
        ),
        None => None,
    };
    let mut shared = Shared::new(pipeline, source, subjects, mode);
    shared.counters.slow_consumer = shared_slow;
    shared.evidence = evidence;
    shared.fault_event_id = config.fault_event_id.clone();
    let shared = Arc::new(shared);

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stopping: finishing in-flight events");
        let _ = stop_tx.send(true);
    });

    let result = match config.mode {
        Mode::Jetstream => {
            let mut engine = jetstream_mode::JetStreamEngine::prepare(
                &config,
                &client,
                &js,
                Arc::clone(&shared),
            )
            .await?;
            // Queries are served once state is rebuilt.
            let service = api::start(&client, Arc::clone(&shared)).await?;
            spawn_watchers(&config, &shared, kv_store);
            tracing::info!(
                stream = %config.events_stream,
                consumer = %config.durable,
                "serving (jetstream mode): events are acknowledged after their actions are stored"
            );
            let result = engine.run(stop_rx).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), service.stop()).await;
            result
        }
        Mode::Core => {
            tracing::warn!(
                "serving (core mode): lowest latency, no durability — events published while the engine is down are lost and state starts empty"
            );
            // Subscribed before the API answers: a client that sees the
            // service up can publish and be heard.
            let subject = shared.subjects.events_filter();
            let sub = client.subscribe(subject.clone()).await.map_err(|source| {
                ServeError::Subscribe {
                    what: "events",
                    subject,
                    source,
                }
            })?;
            client.flush().await.map_err(ServeError::Flush)?;
            let service = api::start(&client, Arc::clone(&shared)).await?;
            spawn_watchers(&config, &shared, kv_store);
            run_core(&config, &client, sub, Arc::clone(&shared), stop_rx).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), service.stop()).await;
            Ok(())
        }
    };
    flush(&client).await;
    if let Some(evidence) = &shared.evidence {
        evidence.close();
    }
    let stats = shared.stats_json();
    tracing::info!(%stats, "stopped");
    result
}

/// Reads every definitions file of the KV bucket into the overlay.
async fn read_kv_overlay(
    store: &async_nats::jetstream::kv::Store,
    bucket: &str,
    source: &mut DefsSource,
) -> Result<(), ServeError> {
    let failed = |err: async_nats::Error| ServeError::DefsBucket {
        bucket: bucket.to_string(),
        source: err,
    };
    let mut keys = store.keys().await.map_err(|e| failed(e.into()))?;
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| failed(e.into()))?;
        if let Some(value) = store.get(&key).await.map_err(|e| failed(e.into()))? {
            if defs::is_defs_key(&key) {
                source.set_kv(&key, Some(String::from_utf8_lossy(&value).into_owned()));
            }
        }
    }
    Ok(())
}

fn spawn_watchers(
    config: &ServeConfig,
    shared: &Arc<Shared>,
    kv_store: Option<async_nats::jetstream::kv::Store>,
) {
    if !config.watch_interval.is_zero() {
        tokio::spawn(reload::watch_dir(Arc::clone(shared), config.watch_interval));
    }
    if let Some(store) = kv_store {
        tokio::spawn(reload::watch_kv(Arc::clone(shared), store));
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Core mode: a plain subscription; actions and dead letters are published
/// without waiting for anyone. Nothing here stops the loop but `stop` or
/// the end of the subscription.
async fn run_core(
    config: &ServeConfig,
    client: &async_nats::Client,
    mut sub: async_nats::Subscriber,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(config.clock_tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut clock = IdleClock::new(config.clock);
    let mut last_message = Instant::now();
    let mut batch: Vec<Inbound> = Vec::with_capacity(config.batch);
    let mut out = BatchOutput::default();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = tick.tick() => {
                let fired = {
                    let mut pipeline = shared.pipeline();
                    // No queue to ask in core mode: a quiet tick means caught up.
                    let caught_up = last_message.elapsed() >= config.clock_tick;
                    match clock.due(&pipeline, caught_up) {
                        Some(target) => {
                            out.actions.clear();
                            pipeline.advance_to(target, &mut out.actions);
                            true
                        }
                        None => false,
                    }
                };
                if fired {
                    shared.counters.clock_ticks.fetch_add(1, Ordering::Relaxed);
                    publish_core(client, &shared, &mut out).await;
                }
            }
            message = sub.next() => {
                let Some(first) = message else { break };
                let received = Instant::now();
                last_message = received;
                batch.clear();
                batch.push(Inbound { subject: first.subject, payload: first.payload, seq: 0 });
                while batch.len() < config.batch {
                    match sub.next().now_or_never() {
                        Some(Some(m)) => batch.push(Inbound { subject: m.subject, payload: m.payload, seq: 0 }),
                        _ => break,
                    }
                }
                shared.counters.received.fetch_add(batch.len() as u64, Ordering::Relaxed);
                // One event at a time, its actions out before the next:
                // an action does not wait for the rest of the batch.
                for item in &batch {
                    out.dispositions.clear();
                    shared.process_batch(std::slice::from_ref(item), wall_now_ms(), &mut out);
                    publish_core(client, &shared, &mut out).await;
                }
                clock.observe(shared.pipeline().now());
                shared.record_latency(received.elapsed(), batch.len() as u64);
            }
        }
    }
    flush(client).await;
}

/// Flushes pending publishes, but does not wait for a server that is gone.
async fn flush(client: &async_nats::Client) {
    if tokio::time::timeout(Duration::from_secs(5), client.flush())
        .await
        .is_err()
    {
        tracing::warn!("could not flush to NATS within 5 s");
    }
}

async fn publish_core(client: &async_nats::Client, shared: &Shared, out: &mut BatchOutput) {
    for action in out.actions.drain(..) {
        let subject = shared.subjects.action(&action.rule, &action.account);
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", action.id.as_str());
        let payload = bytes::Bytes::from(action.to_json_line());
        match client.publish_with_headers(subject, headers, payload).await {
            Ok(()) => {
                shared
                    .counters
                    .actions_published
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => tracing::warn!(error = %err, action = %action.id, "action not published"),
        }
    }
    for letter in out.dead_letters.drain(..) {
        let headers =
            dead_letter_headers(&letter.error, letter.field.as_deref(), &letter.origin, None);
        match client
            .publish_with_headers(letter.subject.clone(), headers, letter.payload.clone())
            .await
        {
            Ok(()) => {
                shared.counters.dead_letters.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => tracing::warn!(error = %err, "dead letter not published"),
        }
    }
}
