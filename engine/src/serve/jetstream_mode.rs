//! JetStream mode: the durable pull consumer, the applied-sequence marker,
//! rebuilding state from the stream at start, publishing with retries, and
//! the max-deliveries advisory.
//!
//! Invariant: every event with stream sequence ≤ `progress.applied` is
//! applied (or rejected to the dead-letter stream) and its actions are stored
//! in the actions stream — except those in `progress.unprocessed`, which the
//! core failed on and which are left to redelivery. The marker is stored
//! after the batch's actions and before its acknowledgements, so an
//! acknowledged event is always covered by it; an event applied but not yet
//! covered is applied again after a crash, and its actions (deterministic
//! ids) are de-duplicated by the actions stream.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, consumer, stream, AckKind};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::config::ServeConfig;
use super::setup::{consumer_plan, ensure_consumer, ensure_stream, StreamPlan};
use super::state::{BatchOutput, Disposition, Inbound, Shared};
use super::{clock_payload, dead_letter_headers, IdleClock};

/// The applied-sequence marker (see the module docs).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    pub applied: u64,
    #[serde(default)]
    pub unprocessed: BTreeSet<u64>,
}

/// A message to store in a stream, with the id it is de-duplicated on.
struct Outgoing {
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
    kind: OutKind,
}

#[derive(Clone, Copy, PartialEq)]
enum OutKind {
    Action,
    DeadLetter,
    Marker,
}

pub struct JetStreamEngine {
    config: ServeConfig,
    js: jetstream::Context,
    shared: Arc<Shared>,
    events: stream::Stream,
    consumer: consumer::PullConsumer,
    advisories: async_nats::Subscriber,
    progress: Progress,
    /// The highest stream sequence the consumer had delivered when the
    /// engine started: events after the marker up to it were in flight in a
    /// previous run and are applied first, in stream order.
    delivered_at_start: u64,
}

impl JetStreamEngine {
    /// Creates or verifies the streams and the consumer, subscribes to the
    /// max-deliveries advisory and rebuilds state from the stream.
    pub async fn prepare(
        config: &ServeConfig,
        client: &async_nats::Client,
        js: &jetstream::Context,
        shared: Arc<Shared>,
    ) -> Result<JetStreamEngine> {
        let subjects = shared.subjects.clone();
        let plan = StreamPlan::new(config, &subjects);
        let events = ensure_stream(js, &plan.events).await?;
        ensure_stream(js, &plan.actions).await?;
        ensure_stream(js, &plan.dlq).await?;
        let progress_stream = ensure_stream(js, &plan.progress).await?;
        let mut consumer = ensure_consumer(&events, &consumer_plan(config, &subjects)).await?;
        let advisories = client
            .subscribe(format!(
                "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}",
                config.events_stream, config.durable
            ))
            .await
            .context("cannot subscribe to the max-deliveries advisory")?;

        let mut progress = match progress_stream
            .get_last_raw_message_by_subject(&subjects.progress())
            .await
        {
            Ok(message) => serde_json::from_slice::<Progress>(&message.payload)
                .context("the progress marker is not valid JSON")?,
            Err(err) if err.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                Progress::default()
            }
            Err(err) => return Err(err).context("cannot read the progress marker"),
        };
        let consumer_info = consumer.info().await?;
        let ack_floor = consumer_info.ack_floor.stream_sequence;
        let delivered_at_start = consumer_info.delivered.stream_sequence;
        progress.applied = progress.applied.max(ack_floor);

        let engine = JetStreamEngine {
            config: config.clone(),
            js: js.clone(),
            shared,
            events,
            consumer,
            advisories,
            progress,
            delivered_at_start,
        };
        engine.rebuild().await?;
        Ok(engine)
    }

    /// Replays the stream up to the marker through the pipeline, publishing
    /// nothing: those events' actions are already stored.
    async fn rebuild(&self) -> Result<()> {
        let info = self.events.get_info().await?;
        let target = self.progress.applied.min(info.state.last_sequence);
        if target == 0 || info.state.messages == 0 || target < info.state.first_sequence {
            return Ok(());
        }
        let started = Instant::now();
        tracing::info!(
            up_to = target,
            from = info.state.first_sequence,
            "rebuilding state from the event stream"
        );
        let ordered = self
            .events
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: self.shared.subjects.events_filter(),
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .context("cannot read the event stream")?;
        let mut messages = ordered
            .messages()
            .await
            .context("cannot read the event stream")?;
        let mut batch = Vec::with_capacity(1024);
        let mut out = BatchOutput::default();
        let mut n = 0u64;
        let mut done = false;
        while !done {
            let Some(message) = messages.next().await else {
                break;
            };
            let message = message.context("reading the event stream")?;
            let seq = message
                .info()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .stream_sequence;
            if seq > target {
                break;
            }
            done = seq >= target;
            if !self.progress.unprocessed.contains(&seq) {
                batch.push(Inbound {
                    subject: message.subject.to_string(),
                    payload: message.payload.clone(),
                    seq,
                });
            }
            if batch.len() == batch.capacity() || done {
                self.shared.process_batch(&batch, &mut out);
                n += batch.len() as u64;
                batch.clear();
                out = BatchOutput::default();
            }
        }
        tracing::info!(
            events = n,
            secs = started.elapsed().as_secs_f64(),
            "state rebuilt"
        );
        Ok(())
    }

    /// Consumes until stopped.
    pub async fn run(&mut self, mut stop: watch::Receiver<bool>) -> Result<()> {
        if !self.catch_up(&stop).await? {
            return Ok(());
        }
        let mut messages = self.pull().await?;
        let mut tick = tokio::time::interval(self.config.clock_tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut clock = IdleClock::new(self.config.clock);
        clock.observe(self.shared.pipeline().now());
        let mut last_error_log = Instant::now() - Duration::from_secs(60);
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                Some(advisory) = self.advisories.next() => {
                    self.dead_letter_max_deliveries(&advisory.payload, &stop).await;
                }
                _ = tick.tick() => {
                    // Whether the consumer has nothing waiting: only then may
                    // the wall clock move event time (a backlog is history).
                    let mut caught_up = false;
                    if let Ok(Ok(info)) = tokio::time::timeout(Duration::from_millis(500), self.consumer.get_info()).await {
                        let waiting = info.num_pending + info.num_ack_pending as u64;
                        self.shared.counters.consumer_pending.store(waiting, Ordering::Relaxed);
                        caught_up = waiting == 0;
                    }
                    let due = clock.due(&self.shared.pipeline(), caught_up);
                    if let Some(target) = due {
                        // Logged into the event stream, so a rebuild sees
                        // the tick in the same place among the events.
                        let mut headers = HeaderMap::new();
                        headers.insert("Nats-Msg-Id", format!("clock-{}", target.millis()).as_str());
                        if let Err(err) = self.js.publish_with_headers(self.shared.subjects.clock(), headers, clock_payload(target)).await {
                            tracing::warn!(error = %err, "clock tick not published");
                        }
                    }
                }
                next = messages.next() => {
                    match next {
                        None => {
                            tracing::warn!("the consumer's message stream ended; pulling again");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            messages = self.pull().await?;
                        }
                        Some(Err(err)) => {
                            if last_error_log.elapsed() > Duration::from_secs(5) {
                                tracing::warn!(error = %err, "pulling events");
                                last_error_log = Instant::now();
                            }
                        }
                        Some(Ok(first)) => {
                            let received = Instant::now();
                            let mut batch = vec![first];
                            while batch.len() < self.config.batch {
                                match messages.next().now_or_never() {
                                    Some(Some(Ok(m))) => batch.push(m),
                                    _ => break,
                                }
                            }
                            if !self.handle_batch(batch, received, &stop).await {
                                break;
                            }
                            clock.observe(self.shared.pipeline().now());
                        }
                    }
                }
            }
        }
        // Messages the client holds and did not process: hand them back now
        // rather than after the acknowledgement timeout.
        while let Some(Some(Ok(message))) = messages.next().now_or_never() {
            let _ = message.ack_with(AckKind::Nak(None)).await;
        }
        Ok(())
    }

    /// Applies, in stream order, the events a previous run had been handed
    /// but not covered by the marker. The consumer would redeliver them only
    /// after their acknowledgement timeout, behind newer events; taking them
    /// from the stream keeps event order exactly as in a run without the
    /// crash. Their redeliveries are then skipped by the marker.
    async fn catch_up(&mut self, stop: &watch::Receiver<bool>) -> Result<bool> {
        let from = self.progress.applied + 1;
        let to = self.delivered_at_start;
        if to < from {
            return Ok(true);
        }
        tracing::info!(
            from,
            to,
            "applying the events in flight when the previous run stopped"
        );
        let ordered = self
            .events
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: self.shared.subjects.events_filter(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                },
                ..Default::default()
            })
            .await
            .context("cannot read the event stream")?;
        let mut messages = ordered
            .messages()
            .await
            .context("cannot read the event stream")?;
        let mut batch = Vec::new();
        let mut done = false;
        while !done {
            let Some(message) = messages.next().await else {
                break;
            };
            let message = message.context("reading the event stream")?;
            let seq = message
                .info()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .stream_sequence;
            if seq > to {
                break;
            }
            done = seq >= to;
            batch.push(Inbound {
                subject: message.subject.to_string(),
                payload: message.payload.clone(),
                seq,
            });
            if batch.len() >= self.config.batch || done {
                self.shared
                    .counters
                    .received
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                if self
                    .apply_and_store(std::mem::take(&mut batch), &[], stop)
                    .await
                    .is_none()
                {
                    return Ok(false);
                }
            }
        }
        if !batch.is_empty() && self.apply_and_store(batch, &[], stop).await.is_none() {
            return Ok(false);
        }
        Ok(true)
    }

    async fn pull(&self) -> Result<consumer::pull::Stream> {
        self.consumer
            .stream()
            .max_messages_per_batch(self.config.batch)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .context("cannot pull from the consumer")
    }

    /// Applies a batch, stores its effects, moves the marker, acknowledges.
    /// Returns false when stopped before the effects were stored (the batch
    /// is then redelivered to the next run).
    async fn handle_batch(
        &mut self,
        batch: Vec<jetstream::Message>,
        received: Instant,
        stop: &watch::Receiver<bool>,
    ) -> bool {
        self.shared
            .counters
            .received
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut inbound = Vec::with_capacity(batch.len());
        let mut fresh = Vec::with_capacity(batch.len());
        for message in &batch {
            let Ok(info) = message.info() else { continue };
            let seq = info.stream_sequence;
            self.shared
                .counters
                .consumer_pending
                .store(info.pending, Ordering::Relaxed);
            let seen = seq <= self.progress.applied && !self.progress.unprocessed.contains(&seq);
            if seen {
                self.shared
                    .counters
                    .redeliveries_skipped
                    .fetch_add(1, Ordering::Relaxed);
                let _ = message.ack().await;
                continue;
            }
            inbound.push(Inbound {
                subject: message.subject.to_string(),
                payload: message.payload.clone(),
                seq,
            });
            fresh.push(message);
        }
        if inbound.is_empty() {
            return true;
        }
        let Some(dispositions) = self.apply_and_store(inbound, &fresh, stop).await else {
            return false;
        };
        for (message, disposition) in fresh.iter().zip(&dispositions) {
            let result = match disposition {
                Disposition::Unprocessable => {
                    message
                        .ack_with(AckKind::Nak(Some(Duration::from_millis(200))))
                        .await
                }
                _ => message.ack().await,
            };
            if let Err(err) = result {
                // Redelivered later and skipped by the marker.
                tracing::debug!(error = %err, "acknowledgement not sent");
            }
        }
        self.shared
            .record_latency(received.elapsed(), fresh.len() as u64);
        true
    }

    /// Applies events, stores their actions and dead letters, then the
    /// marker. Returns each event's disposition, or None when stopped before
    /// everything was stored.
    async fn apply_and_store(
        &mut self,
        inbound: Vec<Inbound>,
        holding: &[&jetstream::Message],
        stop: &watch::Receiver<bool>,
    ) -> Option<Vec<Disposition>> {
        let mut out = BatchOutput::default();
        self.shared.process_batch(&inbound, &mut out);

        let mut outgoing = Vec::with_capacity(out.actions.len() + out.dead_letters.len());
        for action in &out.actions {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", action.id.as_str());
            outgoing.push(Outgoing {
                subject: self.shared.subjects.action(&action.rule, &action.account),
                headers,
                payload: Bytes::from(action.to_json_line()),
                kind: OutKind::Action,
            });
        }
        for letter in &out.dead_letters {
            outgoing.push(Outgoing {
                subject: letter.subject.clone(),
                headers: dead_letter_headers(
                    &letter.error,
                    letter.field.as_deref(),
                    &letter.origin,
                    Some(letter.seq),
                ),
                payload: letter.payload.clone(),
                kind: OutKind::DeadLetter,
            });
        }
        if !self.store(outgoing, holding, stop).await {
            return None;
        }
        for (item, disposition) in inbound.iter().zip(&out.dispositions) {
            self.progress.applied = self.progress.applied.max(item.seq);
            match disposition {
                Disposition::Applied | Disposition::Rejected => {
                    self.progress.unprocessed.remove(&item.seq);
                }
                Disposition::Unprocessable => {
                    self.progress.unprocessed.insert(item.seq);
                }
            }
        }
        if !self.store_progress(holding, stop).await {
            return None;
        }
        Some(out.dispositions)
    }

    async fn store_progress(
        &self,
        holding: &[&jetstream::Message],
        stop: &watch::Receiver<bool>,
    ) -> bool {
        let payload = Bytes::from(serde_json::to_vec(&self.progress).expect("serializes"));
        self.store(
            vec![Outgoing {
                subject: self.shared.subjects.progress(),
                headers: HeaderMap::new(),
                payload,
                kind: OutKind::Marker,
            }],
            holding,
            stop,
        )
        .await
    }

    /// Publishes to the streams and waits until every message is stored,
    /// retrying (with back-off) those that fail; the messages held meanwhile
    /// are kept from redelivery. Returns false if stopped first.
    async fn store(
        &self,
        mut outgoing: Vec<Outgoing>,
        holding: &[&jetstream::Message],
        stop: &watch::Receiver<bool>,
    ) -> bool {
        let mut attempt = 0u32;
        let mut last_progress = Instant::now();
        while !outgoing.is_empty() {
            let mut pending = Vec::with_capacity(outgoing.len());
            for item in outgoing.drain(..) {
                let sent = self
                    .js
                    .publish_with_headers(
                        item.subject.clone(),
                        item.headers.clone(),
                        item.payload.clone(),
                    )
                    .await;
                pending.push((item, sent));
            }
            for (item, sent) in pending {
                let stored = match sent {
                    Ok(ack) => ack.await.map_err(|e| e.to_string()),
                    Err(err) => Err(err.to_string()),
                };
                match stored {
                    Ok(ack) => {
                        let counter = match item.kind {
                            OutKind::Action => Some(&self.shared.counters.actions_published),
                            OutKind::DeadLetter => Some(&self.shared.counters.dead_letters),
                            OutKind::Marker => None,
                        };
                        if let (Some(counter), false) = (counter, ack.duplicate) {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(err) => {
                        if attempt.is_multiple_of(10) {
                            tracing::warn!(subject = %item.subject, error = %err, attempt, "not stored yet; retrying");
                        }
                        outgoing.push(item);
                    }
                }
            }
            if outgoing.is_empty() {
                break;
            }
            if *stop.borrow() {
                return false;
            }
            attempt += 1;
            self.shared
                .counters
                .publish_retries
                .fetch_add(1, Ordering::Relaxed);
            if last_progress.elapsed() > self.config.ack_wait / 3 {
                for message in holding {
                    let _ = message.ack_with(AckKind::Progress).await;
                }
                last_progress = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis((50u64 << attempt.min(5)).min(2_000))).await;
        }
        true
    }

    /// An event the consumer gave up on (max deliveries): copy it from the
    /// stream to the dead-letter subject.
    async fn dead_letter_max_deliveries(&mut self, advisory: &[u8], stop: &watch::Receiver<bool>) {
        #[derive(Deserialize)]
        struct MaxDeliveries {
            stream_seq: u64,
            deliveries: u64,
        }
        let Ok(advisory) = serde_json::from_slice::<MaxDeliveries>(advisory) else {
            tracing::warn!("unreadable max-deliveries advisory");
            return;
        };
        let seq = advisory.stream_seq;
        self.shared
            .counters
            .max_deliveries
            .fetch_add(1, Ordering::Relaxed);
        let message = match self.events.get_raw_message(seq).await {
            Ok(message) => message,
            Err(err) => {
                tracing::error!(seq, error = %err, "an event exceeded its deliveries and cannot be read back for the dead-letter subject");
                return;
            }
        };
        let inbound = Inbound {
            subject: message.subject.to_string(),
            payload: message.payload.clone(),
            seq,
        };
        let error = format!("not processed after {} deliveries", advisory.deliveries);
        let letter = self.shared.dead_letter(&inbound, &error, None);
        tracing::warn!(seq, subject = %letter.subject, "{error}; sent to the dead-letter subject");
        let stored = self
            .store(
                vec![Outgoing {
                    subject: letter.subject.clone(),
                    headers: dead_letter_headers(&letter.error, None, &letter.origin, Some(seq)),
                    payload: letter.payload,
                    kind: OutKind::DeadLetter,
                }],
                &[],
                stop,
            )
            .await;
        if stored && self.progress.unprocessed.remove(&seq) {
            self.store_progress(&[], stop).await;
        }
    }
}
