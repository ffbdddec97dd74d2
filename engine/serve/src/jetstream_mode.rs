//! JetStream mode: the durable pull consumer, the applied-sequence marker,
//! rebuilding state from the stream at start, publishing with retries, and
//! the max-deliveries advisory.
//!
//! Invariant: every event with stream sequence ≤ `progress.applied` is
//! applied (or rejected to the dead-letter stream) and its actions are stored
//! in the actions stream — except those in `progress.unprocessed` (the core
//! failed on them; left to redelivery) and `progress.skipped` (given up on
//! after max deliveries and dead-lettered). The marker is stored after the
//! batch's actions and before its acknowledgements, so an acknowledged event
//! is always covered by it; an event applied but not yet covered is applied
//! again after a crash, and its actions (deterministic ids) are de-duplicated
//! by the actions stream.
//!
//! Events are applied in stream order: a delivery that skips sequences (lost
//! in transit when the server restarted; redelivered only after the ack
//! timeout) first takes the missing ones from the stream.
//!
//! What stops the engine is a [`ServeError`]: the setup failing, the event
//! stream or the marker unreadable, the consumer deleted. A message that is
//! not stored is retried, never an error.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream, AckKind};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::backoff::{backoff, next_delay};
use super::clock::{clock_payload, wall_now_ms, IdleClock};
use super::config::ServeConfig;
use super::error::ServeError;
use super::headers::{dead_letter_headers, header_value};
use super::setup::{consumer_plan, ensure_consumer, ensure_stream, SetupError, StreamPlan};
use super::state::{BatchOutput, Disposition, Inbound, Shared};

/// The applied-sequence marker (see the module docs).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    pub applied: u64,
    #[serde(default)]
    pub unprocessed: BTreeSet<u64>,
    #[serde(default)]
    pub skipped: BTreeSet<u64>,
    /// Creation time (ns) of the event stream this marker belongs to: a
    /// recreated stream starts over.
    #[serde(default)]
    pub stream_created: Option<String>,
}

impl Progress {
    /// Whether a rebuild must leave this sequence out.
    fn excluded(&self, seq: u64) -> bool {
        self.unprocessed.contains(&seq) || self.skipped.contains(&seq)
    }

    /// Forgets sequences the stream no longer holds (bounded marker).
    fn prune(&mut self, first_sequence: u64) {
        self.unprocessed.retain(|&s| s >= first_sequence);
        self.skipped.retain(|&s| s >= first_sequence);
    }
}

/// Most publishes awaiting their acknowledgement at once (the JetStream
/// context blocks beyond its own limit of 5,000).
const PUBLISH_WINDOW: usize = 512;
/// Retries of a store that failed wait from this long, doubling (with
/// jitter) up to the next.
const STORE_RETRY_MIN: Duration = Duration::from_millis(50);
const STORE_RETRY_MAX: Duration = Duration::from_secs(2);

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

/// When the consumer's pending count was last read from the server.
struct ConsumerPoll {
    updated: std::sync::Mutex<Instant>,
}

/// Reads the consumer's pending count every `every` (for `stats` and the
/// clock), beside the consume loop.
async fn poll_consumer(
    consumer: consumer::PullConsumer,
    shared: Arc<Shared>,
    poll: Arc<ConsumerPoll>,
    every: Duration,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        if let Ok(Ok(info)) =
            tokio::time::timeout(Duration::from_secs(2), consumer.get_info()).await
        {
            let waiting = info.num_pending + info.num_ack_pending as u64;
            shared
                .counters
                .consumer_pending
                .store(waiting, Ordering::Relaxed);
            *poll.updated.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        }
    }
}

/// A failed pull, sorted: the consumer deleted stops the engine (it cannot
/// go on without it, nor recreate it behind the server's back); anything
/// else (a missed heartbeat, a server restarting) comes back to be logged
/// while the pull stream retries.
fn fatal_if_deleted(
    consumer: &str,
    err: consumer::pull::MessagesError,
) -> Result<consumer::pull::MessagesError, ServeError> {
    if err.kind() == consumer::pull::MessagesErrorKind::ConsumerDeleted {
        return Err(ServeError::ConsumerDeleted {
            consumer: consumer.to_string(),
            source: err,
        });
    }
    Ok(err)
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads a range of the event stream in order with an ordered consumer.
struct RangeReader {
    /// The stream's name, for errors.
    stream: String,
    messages: consumer::pull::Ordered,
    to: u64,
    done: bool,
}

impl RangeReader {
    async fn open(
        events: &stream::Stream,
        filter: String,
        from: u64,
        to: u64,
    ) -> Result<RangeReader, ServeError> {
        let stream = events.cached_info().config.name.clone();
        let failed = |source: async_nats::Error| ServeError::ReadEvents {
            stream: stream.clone(),
            source,
        };
        let ordered = events
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: filter,
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from.max(1),
                },
                ..Default::default()
            })
            .await
            .map_err(|e| failed(e.into()))?;
        let messages = ordered.messages().await.map_err(|e| failed(e.into()))?;
        Ok(RangeReader {
            stream,
            messages,
            to,
            done: from > to,
        })
    }

    /// Up to `max` more events of the range; empty at its end (the end of
    /// the range, or of the stream when the last sequences were deleted).
    async fn next_chunk(&mut self, max: usize) -> Result<Vec<Inbound>, ServeError> {
        let failed = |stream: &str, source: async_nats::Error| ServeError::ReadEvents {
            stream: stream.to_string(),
            source,
        };
        let mut chunk = Vec::new();
        while !self.done && chunk.len() < max {
            let Some(message) = self.messages.next().await else {
                self.done = true;
                break;
            };
            let message = message.map_err(|e| failed(&self.stream, e.into()))?;
            let info = message.info().map_err(|e| failed(&self.stream, e))?;
            let seq = info.stream_sequence;
            if seq > self.to {
                self.done = true;
                break;
            }
            self.done = seq >= self.to || info.pending == 0;
            chunk.push(Inbound {
                subject: message.subject.clone(),
                payload: message.payload.clone(),
                seq,
            });
        }
        Ok(chunk)
    }
}

/// The engine in JetStream mode: [`prepare`](Self::prepare)d (streams and
/// consumer verified, state rebuilt), then [`run`](Self::run).
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
    /// Sequences the server gave up on while no engine watched its advisory.
    given_up_unseen: Vec<u64>,
}

impl JetStreamEngine {
    /// Creates or verifies the streams and the consumer, subscribes to the
    /// max-deliveries advisory and rebuilds state from the stream.
    pub async fn prepare(
        config: &ServeConfig,
        client: &async_nats::Client,
        js: &jetstream::Context,
        shared: Arc<Shared>,
    ) -> Result<JetStreamEngine, ServeError> {
        let subjects = shared.subjects.clone();
        let plan = StreamPlan::new(config, &subjects);
        let mut events = ensure_stream(js, &plan.events).await?;
        ensure_stream(js, &plan.actions).await?;
        ensure_stream(js, &plan.dlq).await?;
        let progress_stream = ensure_stream(js, &plan.progress).await?;
        let mut consumer = ensure_consumer(&events, &consumer_plan(config, &subjects)).await?;
        let advisory = format!(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}",
            config.events_stream, config.durable
        );
        let advisories =
            client
                .subscribe(advisory.clone())
                .await
                .map_err(|source| ServeError::Subscribe {
                    what: "the max-deliveries advisory",
                    subject: advisory,
                    source,
                })?;

        let events_info = events
            .info()
            .await
            .map_err(|source| SetupError::ReadStream {
                stream: config.events_stream.clone(),
                source,
            })?
            .clone();
        let created = events_info.created.unix_timestamp_nanos().to_string();
        let mut progress = match progress_stream
            .get_last_raw_message_by_subject(&subjects.progress())
            .await
        {
            Ok(message) => serde_json::from_slice::<Progress>(&message.payload)
                .map_err(ServeError::InvalidProgress)?,
            Err(err) if err.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                Progress::default()
            }
            Err(err) => return Err(ServeError::ReadProgress(err)),
        };
        if progress
            .stream_created
            .as_deref()
            .is_some_and(|c| c != created)
        {
            tracing::warn!(
                stream = %config.events_stream,
                "the event stream was recreated since the marker was written; starting from its beginning"
            );
            progress = Progress::default();
        }
        progress.stream_created = Some(created);
        progress.prune(events_info.state.first_sequence);
        let consumer_info = consumer
            .info()
            .await
            .map_err(|source| SetupError::ReadConsumer {
                consumer: config.durable.clone(),
                source: source.into(),
            })?;
        let ack_floor = consumer_info.ack_floor.stream_sequence;
        let delivered_at_start = consumer_info.delivered.stream_sequence;
        progress.applied = progress.applied.max(ack_floor);
        // Left for redelivery but below the ack floor: the server gave up on
        // them while no engine was there to see the advisory.
        let given_up_unseen: Vec<u64> = progress
            .unprocessed
            .iter()
            .copied()
            .filter(|&s| s <= ack_floor)
            .collect();

        let engine = JetStreamEngine {
            config: config.clone(),
            js: js.clone(),
            shared,
            events,
            consumer,
            advisories,
            progress,
            delivered_at_start,
            given_up_unseen,
        };
        engine.rebuild().await?;
        Ok(engine)
    }

    fn reader(
        &self,
        from: u64,
        to: u64,
    ) -> impl std::future::Future<Output = Result<RangeReader, ServeError>> + '_ {
        RangeReader::open(&self.events, self.shared.subjects.events_filter(), from, to)
    }

    /// Replays the stream up to the marker through the pipeline, publishing
    /// nothing: those events' actions are already stored.
    async fn rebuild(&self) -> Result<(), ServeError> {
        let info = self
            .events
            .get_info()
            .await
            .map_err(|source| SetupError::ReadStream {
                stream: self.config.events_stream.clone(),
                source,
            })?;
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
        let mut reader = self.reader(info.state.first_sequence, target).await?;
        let mut n = 0u64;
        loop {
            let mut chunk = reader.next_chunk(1024).await?;
            if chunk.is_empty() {
                break;
            }
            chunk.retain(|inbound| !self.progress.excluded(inbound.seq));
            let mut discarded = BatchOutput::default();
            self.shared
                .process_batch(&chunk, wall_now_ms(), &mut discarded);
            n += chunk.len() as u64;
        }
        tracing::info!(
            events = n,
            secs = started.elapsed().as_secs_f64(),
            "state rebuilt"
        );
        Ok(())
    }

    /// Consumes until stopped.
    pub async fn run(&mut self, mut stop: watch::Receiver<bool>) -> Result<(), ServeError> {
        for seq in std::mem::take(&mut self.given_up_unseen) {
            self.dead_letter_given_up(seq, None, &stop).await;
        }
        if !self.catch_up(&stop).await? {
            return Ok(());
        }
        let mut messages = self.pull().await?;
        let mut tick = tokio::time::interval(self.config.clock_tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut clock = IdleClock::new(self.config.clock);
        clock.observe(self.shared.pipeline().now());
        let mut last_error_log = Instant::now() - Duration::from_secs(60);
        let poll = Arc::new(ConsumerPoll {
            updated: std::sync::Mutex::new(Instant::now() - Duration::from_secs(3600)),
        });
        let poller = tokio::spawn(poll_consumer(
            self.consumer.clone(),
            Arc::clone(&self.shared),
            Arc::clone(&poll),
            self.config.clock_tick,
        ));
        let _stop_poller = AbortOnDrop(poller);
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                Some(advisory) = self.advisories.next() => {
                    self.on_max_deliveries(&advisory.payload, &stop).await;
                }
                _ = tick.tick() => {
                    // Whether the consumer has nothing waiting (our own tick
                    // included): only then may the clock move event time.
                    // The figure comes from a poller task, so a slow answer
                    // from the server never holds up events.
                    let fresh = poll.updated.lock().unwrap_or_else(|p| p.into_inner()).elapsed() < self.config.clock_tick * 3;
                    if !fresh {
                        // Cut off from the server: time spent so is not idle time.
                        clock.stalled();
                        continue;
                    }
                    let waiting = self.shared.counters.consumer_pending.load(Ordering::Relaxed);
                    let due = clock.due(&self.shared.pipeline(), waiting == 0);
                    if let Some(target) = due {
                        // Logged into the event stream, so a rebuild meets
                        // the tick at the same place.
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
                            let err = fatal_if_deleted(&self.config.durable, err)?;
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
                            if !self.handle_batch(batch, received, &stop).await? {
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
    async fn catch_up(&mut self, stop: &watch::Receiver<bool>) -> Result<bool, ServeError> {
        let (from, to) = (self.progress.applied + 1, self.delivered_at_start);
        if to < from {
            return Ok(true);
        }
        tracing::info!(
            from,
            to,
            "applying the events in flight when the previous run stopped"
        );
        self.apply_range(from, to, stop).await
    }

    /// Applies and stores a range taken from the stream (no messages to
    /// acknowledge: their redeliveries are skipped by the marker).
    async fn apply_range(
        &mut self,
        from: u64,
        to: u64,
        stop: &watch::Receiver<bool>,
    ) -> Result<bool, ServeError> {
        let mut reader = self.reader(from, to).await?;
        loop {
            let chunk = reader.next_chunk(self.config.batch).await?;
            if chunk.is_empty() {
                return Ok(true);
            }
            self.shared
                .counters
                .received
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if self.apply_and_store(chunk, &[], stop).await.is_none() {
                return Ok(false);
            }
        }
    }

    async fn pull(&self) -> Result<consumer::pull::Stream, ServeError> {
        self.consumer
            .stream()
            .max_messages_per_batch(self.config.batch)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|source| ServeError::Pull {
                consumer: self.config.durable.clone(),
                source,
            })
    }

    /// Applies a batch, stores its effects, moves the marker, acknowledges.
    /// Returns false when stopped before the effects were stored (the batch
    /// is then redelivered to the next run).
    async fn handle_batch(
        &mut self,
        batch: Vec<jetstream::Message>,
        received: Instant,
        stop: &watch::Receiver<bool>,
    ) -> Result<bool, ServeError> {
        self.shared
            .counters
            .received
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut inbound = Vec::with_capacity(batch.len());
        // For each inbound event, the message to acknowledge (none for
        // events taken from the stream to fill a gap).
        let mut holding: Vec<Option<&jetstream::Message>> = Vec::with_capacity(batch.len());
        let mut next_expected = self.progress.applied + 1;
        for message in &batch {
            let Ok(info) = message.info() else {
                tracing::warn!(subject = %message.subject, "a message without JetStream metadata; ignored");
                continue;
            };
            let seq = info.stream_sequence;
            if seq < next_expected {
                if self.progress.unprocessed.contains(&seq) {
                    // A retry of an event the core failed on.
                    inbound.push(self.inbound(message, seq));
                    holding.push(Some(message));
                } else {
                    self.shared
                        .counters
                        .redeliveries_skipped
                        .fetch_add(1, Ordering::Relaxed);
                    let _ = message.ack().await;
                }
                continue;
            }
            if seq > next_expected {
                // Sequences lost on the way (a server restart): take them
                // from the stream now, in order.
                tracing::info!(
                    from = next_expected,
                    to = seq - 1,
                    "filling a gap in delivery from the stream"
                );
                let mut reader = self.reader(next_expected, seq - 1).await?;
                loop {
                    let chunk = reader.next_chunk(1024).await?;
                    if chunk.is_empty() {
                        break;
                    }
                    for item in chunk {
                        inbound.push(item);
                        holding.push(None);
                    }
                }
            }
            inbound.push(self.inbound(message, seq));
            holding.push(Some(message));
            next_expected = seq + 1;
        }
        if inbound.is_empty() {
            return Ok(true);
        }
        let held: Vec<&jetstream::Message> = holding.iter().flatten().copied().collect();
        let Some(dispositions) = self.apply_and_store(inbound, &held, stop).await else {
            return Ok(false);
        };
        for (message, disposition) in holding.iter().zip(&dispositions) {
            let Some(message) = message else { continue };
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
            .record_latency(received.elapsed(), held.len() as u64);
        Ok(true)
    }

    fn inbound(&self, message: &jetstream::Message, seq: u64) -> Inbound {
        Inbound {
            subject: message.subject.clone(),
            payload: message.payload.clone(),
            seq,
        }
    }

    /// Applies events one by one, sending each one's actions and dead
    /// letters as soon as it is applied (an action need not wait for the
    /// rest of the batch), then waits until all are stored, then stores the
    /// marker. Returns each event's disposition, or None when stopped before
    /// everything was stored.
    async fn apply_and_store(
        &mut self,
        inbound: Vec<Inbound>,
        holding: &[&jetstream::Message],
        stop: &watch::Receiver<bool>,
    ) -> Option<Vec<Disposition>> {
        let mut dispositions = Vec::with_capacity(inbound.len());
        let mut in_flight = Vec::new();
        let mut failed = Vec::new();
        let mut out = BatchOutput::default();
        for item in &inbound {
            self.shared
                .process_batch(std::slice::from_ref(item), wall_now_ms(), &mut out);
            dispositions.append(&mut out.dispositions);
            for outgoing in self.outgoing(&mut out) {
                let sent = self
                    .js
                    .publish_with_headers(
                        outgoing.subject.clone(),
                        outgoing.headers.clone(),
                        outgoing.payload.clone(),
                    )
                    .await;
                in_flight.push((outgoing, sent));
                if in_flight.len() >= PUBLISH_WINDOW {
                    self.confirm(&mut in_flight, &mut failed, 0).await;
                }
            }
        }
        self.confirm(&mut in_flight, &mut failed, 0).await;
        if !failed.is_empty() && !self.store(failed, holding, stop).await {
            return None;
        }
        for (item, disposition) in inbound.iter().zip(&dispositions) {
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
        Some(dispositions)
    }

    /// The messages to store for what one step produced (drains it).
    fn outgoing(&self, out: &mut BatchOutput) -> Vec<Outgoing> {
        let mut outgoing = Vec::with_capacity(out.actions.len() + out.dead_letters.len());
        for action in out.actions.drain(..) {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", action.id.as_str());
            outgoing.push(Outgoing {
                subject: self.shared.subjects.action(&action.rule, &action.account),
                headers,
                payload: Bytes::from(action.to_json_line()),
                kind: OutKind::Action,
            });
        }
        for letter in out.dead_letters.drain(..) {
            outgoing.push(Outgoing {
                subject: letter.subject.clone(),
                headers: dead_letter_headers(
                    &letter.error,
                    letter.field.as_deref(),
                    &letter.origin,
                    Some(letter.seq),
                ),
                payload: letter.payload,
                kind: OutKind::DeadLetter,
            });
        }
        outgoing
    }

    /// Waits for the acknowledgements of messages sent; those not stored
    /// go to `failed` (to retry), counted ones are counted.
    async fn confirm(
        &self,
        in_flight: &mut Vec<(
            Outgoing,
            Result<jetstream::context::PublishAckFuture, jetstream::context::PublishError>,
        )>,
        failed: &mut Vec<Outgoing>,
        attempt: u32,
    ) {
        for (item, sent) in in_flight.drain(..) {
            let stored = match sent {
                Ok(ack) => ack.await,
                Err(err) => Err(err),
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
                Err(err)
                    if err.kind() == jetstream::context::PublishErrorKind::MaxPayloadExceeded =>
                {
                    match item.kind {
                        // The original stays in the event stream; the dead
                        // letter says where.
                        OutKind::DeadLetter => {
                            let mut headers = item.headers.clone();
                            headers.insert(
                            "Intent-Payload-Omitted",
                            "too large with its headers; read it from the event stream at Intent-Stream-Seq",
                        );
                            failed.push(Outgoing {
                                payload: Bytes::new(),
                                headers,
                                ..item
                            });
                        }
                        _ => {
                            self.shared
                                .counters
                                .store_failures
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::error!(subject = %item.subject, size = item.payload.len(), "larger than the server's max payload; not stored");
                        }
                    }
                }
                Err(err) => {
                    if attempt.is_multiple_of(10) {
                        tracing::warn!(subject = %item.subject, error = %err, attempt, "not stored yet; retrying");
                    }
                    failed.push(item);
                }
            }
        }
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
    /// at most `PUBLISH_WINDOW` awaiting acknowledgement at a time, retrying
    /// (with back-off) those that fail; the messages held meanwhile are kept
    /// from redelivery. Returns false if stopped first.
    async fn store(
        &self,
        outgoing: Vec<Outgoing>,
        holding: &[&jetstream::Message],
        stop: &watch::Receiver<bool>,
    ) -> bool {
        let mut queue = std::collections::VecDeque::from(outgoing);
        let mut attempt = 0u32;
        let mut delays = backoff(STORE_RETRY_MIN, STORE_RETRY_MAX);
        let mut last_progress = Instant::now();
        while !queue.is_empty() {
            let mut failed = Vec::new();
            while !queue.is_empty() {
                let window: Vec<Outgoing> =
                    queue.drain(..queue.len().min(PUBLISH_WINDOW)).collect();
                let mut in_flight = Vec::with_capacity(window.len());
                for item in window {
                    let sent = self
                        .js
                        .publish_with_headers(
                            item.subject.clone(),
                            item.headers.clone(),
                            item.payload.clone(),
                        )
                        .await;
                    in_flight.push((item, sent));
                }
                self.confirm(&mut in_flight, &mut failed, attempt).await;
            }
            if failed.is_empty() {
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
            tokio::time::sleep(next_delay(&mut delays, STORE_RETRY_MAX)).await;
            queue.extend(failed);
        }
        true
    }

    /// The server gave up on an event after its max deliveries.
    async fn on_max_deliveries(&mut self, advisory: &[u8], stop: &watch::Receiver<bool>) {
        #[derive(Deserialize)]
        struct MaxDeliveries {
            stream_seq: u64,
            deliveries: u64,
        }
        let Ok(advisory) = serde_json::from_slice::<MaxDeliveries>(advisory) else {
            tracing::warn!("unreadable max-deliveries advisory");
            return;
        };
        self.shared
            .counters
            .max_deliveries
            .fetch_add(1, Ordering::Relaxed);
        // Only events the core failed on: one applied from the stream after
        // a crash may still have run out of deliveries, and is no dead letter.
        if self.progress.unprocessed.contains(&advisory.stream_seq) {
            self.dead_letter_given_up(advisory.stream_seq, Some(advisory.deliveries), stop)
                .await;
        }
    }

    /// Copies an event the server gave up on from the stream to the
    /// dead-letter subject, and marks it skipped.
    async fn dead_letter_given_up(
        &mut self,
        seq: u64,
        deliveries: Option<u64>,
        stop: &watch::Receiver<bool>,
    ) {
        let message = match self.events.get_raw_message(seq).await {
            Ok(message) => message,
            Err(err) => {
                tracing::error!(seq, error = %err, "an event the consumer gave up on cannot be read back for the dead-letter subject");
                return;
            }
        };
        let inbound = Inbound {
            subject: message.subject.clone(),
            payload: message.payload.clone(),
            seq,
        };
        let error = match deliveries {
            Some(n) => format!("not processed after {n} deliveries"),
            None => "not processed within the consumer's max deliveries".to_string(),
        };
        let letter = self.shared.dead_letter(&inbound, &error, None);
        tracing::warn!(seq, subject = %letter.subject, "{error}; sent to the dead-letter subject");
        let stored = self
            .store(
                vec![Outgoing {
                    subject: letter.subject.clone(),
                    headers: dead_letter_headers(
                        &letter.error,
                        None,
                        &header_value(&letter.origin),
                        Some(seq),
                    ),
                    payload: letter.payload,
                    kind: OutKind::DeadLetter,
                }],
                &[],
                stop,
            )
            .await;
        if stored {
            self.progress.unprocessed.remove(&seq);
            self.progress.skipped.insert(seq);
            self.store_progress(&[], stop).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use async_nats::jetstream::consumer::pull::{MessagesError, MessagesErrorKind};

    use super::*;
    use crate::error::chain;

    #[test]
    fn only_a_deleted_consumer_stops_the_engine() {
        let err = fatal_if_deleted(
            "intent-engine",
            MessagesError::new(MessagesErrorKind::ConsumerDeleted),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ServeError::ConsumerDeleted { consumer, source }
                if consumer == "intent-engine"
                    && source.kind() == MessagesErrorKind::ConsumerDeleted),
            "{err:?}"
        );
        assert!(
            chain(&err).starts_with(
                "the consumer intent-engine was deleted; start the engine again to recreate it"
            ),
            "{err}"
        );
        // Passing troubles come back to be logged; the pull goes on.
        for kind in [
            MessagesErrorKind::MissingHeartbeat,
            MessagesErrorKind::Pull,
            MessagesErrorKind::NoResponders,
        ] {
            let back = fatal_if_deleted("intent-engine", MessagesError::new(kind))
                .unwrap_or_else(|err| panic!("{kind:?} stopped the engine: {err}"));
            assert_eq!(back.kind(), kind);
        }
    }
}
