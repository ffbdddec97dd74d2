//! What the service's tasks share: the pipeline behind a mutex, counters, the
//! processing-latency histogram; and the synchronous step that turns a batch
//! of inbound NATS messages into applied state, actions and dead letters.
//!
//! The step is plain Rust (no I/O, no clock: the caller passes the wall
//! time it read), so it is the same in JetStream mode, in core mode and
//! while rebuilding state from the stream at start.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::defs::DefsSource;
use super::subjects::{subject_token, Subjects, CLOCK_KIND};
use intent_core::ingest::{decode_with, sniff_kind, DecodeError};
use intent_core::{Action, Pipeline, Timestamp};

/// One message taken from NATS.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// As the client received it (shared bytes: no copy per message).
    pub subject: async_nats::Subject,
    pub payload: Bytes,
    /// Stream sequence (JetStream mode; 0 in core mode).
    pub seq: u64,
}

/// What became of one inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Applied (or a duplicate, or a clock tick): acknowledge.
    Applied,
    /// Invalid: to the dead-letter subject, then acknowledge.
    Rejected,
    /// The core failed on it: leave it for redelivery (and, past the
    /// consumer's max deliveries, the dead-letter subject).
    Unprocessable,
}

/// A dead letter to publish.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub subject: String,
    pub payload: Bytes,
    pub error: String,
    pub field: Option<String>,
    pub seq: u64,
    /// The subject the event arrived on.
    pub origin: String,
}

/// Everything one batch produced.
#[derive(Debug, Default)]
pub struct BatchOutput {
    pub dispositions: Vec<Disposition>,
    pub actions: Vec<Action>,
    pub dead_letters: Vec<DeadLetter>,
}

/// Counters of the service edge (the pipeline counts the rest).
#[derive(Debug, Default)]
pub struct Counters {
    pub received: AtomicU64,
    pub actions_published: AtomicU64,
    pub dead_letters: AtomicU64,
    pub max_deliveries: AtomicU64,
    pub unprocessable: AtomicU64,
    pub redeliveries_skipped: AtomicU64,
    pub clock_ticks: AtomicU64,
    /// Shared with the connection's event callback.
    pub slow_consumer: Arc<AtomicU64>,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    pub publish_retries: AtomicU64,
    /// Messages the server refused for good (e.g. over its max payload).
    pub store_failures: AtomicU64,
    /// Events delivered by the consumer and not yet acknowledged, as the
    /// server last reported it.
    pub consumer_pending: AtomicU64,
}

/// The clock-tick payload the engine logs into its event stream.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ClockTick {
    pub advance_to: i64,
}

/// State shared by the ingest loop, the API and the definition watchers.
pub struct Shared {
    pipeline: Mutex<Pipeline>,
    pub defs: Mutex<DefsSource>,
    pub counters: Counters,
    latency: Mutex<Histogram<u64>>,
    pub subjects: Subjects,
    pub mode: &'static str,
    /// The evidence index, when serving `search`.
    pub evidence: Option<super::evidence::Evidence>,
    /// Test hook: an event with this id makes processing panic (the
    /// `fault_event_id` setting), to exercise the unprocessable-event path.
    pub fault_event_id: Option<String>,
}

impl Shared {
    pub fn new(
        pipeline: Pipeline,
        defs: DefsSource,
        subjects: Subjects,
        mode: &'static str,
    ) -> Shared {
        Shared {
            pipeline: Mutex::new(pipeline),
            defs: Mutex::new(defs),
            counters: Counters::default(),
            latency: Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            ),
            subjects,
            mode,
            evidence: None,
            fault_event_id: None,
        }
    }

    /// The pipeline, locked. A panic while it was held (contained by the
    /// step below) does not make it unusable.
    pub fn pipeline(&self) -> MutexGuard<'_, Pipeline> {
        self.pipeline
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records how long events took from receipt to acknowledgement.
    pub fn record_latency(&self, elapsed: Duration, count: u64) {
        let micros = (elapsed.as_micros() as u64).clamp(1, 60_000_000);
        let mut hist = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let _ = hist.record_n(micros, count);
    }

    /// Latency percentiles in microseconds.
    pub fn latency_summary(&self) -> serde_json::Value {
        let hist = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::json!({
            "count": hist.len(),
            "p50_us": hist.value_at_quantile(0.50),
            "p90_us": hist.value_at_quantile(0.90),
            "p99_us": hist.value_at_quantile(0.99),
            "p999_us": hist.value_at_quantile(0.999),
            "max_us": hist.max(),
        })
    }

    /// Applies one batch: decodes and validates each event, checks it
    /// against its subject, runs it through the pipeline. Clock ticks
    /// advance event time; `wall_ms` is the wall clock as the caller read
    /// it, against which a tick's plausibility is judged.
    pub fn process_batch(&self, batch: &[Inbound], wall_ms: i64, out: &mut BatchOutput) {
        let mut pipeline = self.pipeline();
        for inbound in batch {
            let disposition = self.process_one(&mut pipeline, inbound, wall_ms, out);
            out.dispositions.push(disposition);
        }
    }

    fn process_one(
        &self,
        pipeline: &mut Pipeline,
        inbound: &Inbound,
        wall_ms: i64,
        out: &mut BatchOutput,
    ) -> Disposition {
        let (subject_kind, subject_account) = self.subjects.parse_event(&inbound.subject);
        if subject_kind == Some(CLOCK_KIND) {
            return match check_tick(&inbound.payload, pipeline, wall_ms) {
                Ok(ts) => {
                    pipeline.advance_to(ts, &mut out.actions);
                    self.counters.clock_ticks.fetch_add(1, Ordering::Relaxed);
                    Disposition::Applied
                }
                Err(err) => {
                    out.dead_letters
                        .push(self.dead_letter(inbound, &err.to_string(), err.field()));
                    Disposition::Rejected
                }
            };
        }
        let checked = decode_with(&inbound.payload, &pipeline.config().limits).and_then(|event| {
            check_subject(
                subject_kind,
                subject_account,
                event.kind().as_str(),
                &event.account,
            )?;
            Ok(event)
        });
        let event = match checked {
            Ok(event) => event,
            Err(err) => {
                pipeline.count_rejected(&err);
                out.dead_letters
                    .push(self.dead_letter(inbound, &err.to_string(), err.field()));
                return Disposition::Rejected;
            }
        };
        let fault = self.fault_event_id.as_deref() == Some(&*event.id);
        let result = catch_unwind(AssertUnwindSafe(|| {
            if fault {
                panic!("injected fault for event {}", event.id);
            }
            match &self.evidence {
                None => pipeline.process(&event, &mut out.actions),
                Some(evidence) => {
                    pipeline.process_observed(&event, &mut out.actions, |defs, obs| {
                        evidence.observe(defs, &event, obs)
                    })
                }
            }
        }));
        match result {
            Ok(Ok(_)) => Disposition::Applied,
            Ok(Err(err)) => {
                out.dead_letters
                    .push(self.dead_letter(inbound, &err.to_string(), err.field()));
                Disposition::Rejected
            }
            // Actions already emitted (timers the event's time fired before
            // the failure) stand: their state change happened.
            Err(_) => {
                self.counters.unprocessable.fetch_add(1, Ordering::Relaxed);
                tracing::error!(event = %event.id, seq = inbound.seq, "processing panicked; left for redelivery");
                Disposition::Unprocessable
            }
        }
    }

    /// A dead letter for an inbound message, with its bytes unchanged.
    pub fn dead_letter(&self, inbound: &Inbound, error: &str, field: Option<&str>) -> DeadLetter {
        let kind = match sniff_kind(&inbound.payload) {
            "unknown" => self
                .subjects
                .parse_event(&inbound.subject)
                .0
                .unwrap_or("unknown"),
            kind => kind,
        };
        DeadLetter {
            subject: self.subjects.dlq(kind),
            payload: inbound.payload.clone(),
            error: error.to_string(),
            field: field.map(str::to_string),
            seq: inbound.seq,
            origin: inbound.subject.to_string(),
        }
    }

    /// Counters for the `stats` endpoint.
    pub fn stats_json(&self) -> serde_json::Value {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let pipeline = self.pipeline();
        let stats = pipeline.stats();
        serde_json::json!({
            "mode": self.mode,
            "events_in": get(&c.received),
            "applied": stats.applied,
            "rejected": stats.rejected,
            "rejected_by_reason": stats.rejected_by_reason,
            "late": stats.late,
            "reordered": stats.reordered,
            "duplicate": stats.duplicates,
            "actions": stats.actions,
            "actions_out": get(&c.actions_published),
            "actions_by_rule": stats.actions_by_rule,
            "superseded": stats.superseded,
            "timers_fired": stats.timers_fired,
            "dlq": get(&c.dead_letters),
            "max_deliveries": get(&c.max_deliveries),
            "unprocessable": get(&c.unprocessable),
            "redeliveries_skipped": get(&c.redeliveries_skipped),
            "pending": get(&c.consumer_pending),
            "clock_ticks": get(&c.clock_ticks),
            "slow_consumer": get(&c.slow_consumer),
            "reloads": get(&c.reloads),
            "reload_failures": get(&c.reload_failures),
            "publish_retries": get(&c.publish_retries),
            "store_failures": get(&c.store_failures),
            "accounts": pipeline.graph().len(),
            "event_time": pipeline.now(),
            "watermark": pipeline.watermark(),
            "signals_version": &*pipeline.defs().version,
            "latency": self.latency_summary(),
        })
    }
}

/// A clock tick must be well-formed and plausible: not beyond both the
/// newest event time and the wall clock by more than a minute (a tick is
/// never ahead of either; this keeps a forged one from firing every timer).
fn check_tick(payload: &[u8], pipeline: &Pipeline, wall: i64) -> Result<Timestamp, DecodeError> {
    let tick: ClockTick =
        serde_json::from_slice(payload).map_err(|e| DecodeError::Syntax(e.to_string()))?;
    let invalid = |reason: String| DecodeError::Invalid {
        field: "advance_to".into(),
        reason,
    };
    let ts =
        Timestamp::from_millis(tick.advance_to).ok_or_else(|| invalid("out of range".into()))?;
    let newest = pipeline.now().map(Timestamp::millis).unwrap_or(i64::MIN);
    if ts.millis() > wall.max(newest).saturating_add(60_000) {
        return Err(invalid(format!(
            "{ts} is ahead of both the wall clock and the newest event"
        )));
    }
    Ok(ts)
}

/// An event must travel on its own kind's subject and its account's token.
fn check_subject(
    subject_kind: Option<&str>,
    subject_account: Option<&str>,
    kind: &str,
    account: &str,
) -> Result<(), DecodeError> {
    if let Some(subject_kind) = subject_kind {
        if subject_kind != kind {
            return Err(DecodeError::Invalid {
                field: "kind".into(),
                reason: format!("'{kind}' arrived on the subject of kind '{subject_kind}'"),
            });
        }
    }
    if let Some(subject_account) = subject_account {
        if subject_account != subject_token(account) {
            return Err(DecodeError::Invalid {
                field: "account".into(),
                reason: format!(
                    "'{account}' arrived on the subject of account '{subject_account}' (expected token '{}')",
                    subject_token(account)
                ),
            });
        }
    }
    Ok(())
}

/// How far the wall clock moves event time while no event arrives: event
/// time advances with idle wall time, and silence timers fire once the
/// watermark (that time minus the allowed lateness) passes their deadline.
/// Returns the instant to advance to, when a timer is due.
pub fn idle_advance(
    newest_event: Option<Timestamp>,
    idle: Duration,
    lateness_ms: i64,
    next_deadline: Option<Timestamp>,
) -> Option<Timestamp> {
    let newest = newest_event?.millis();
    let deadline = next_deadline?.millis();
    let effective = newest.saturating_add(idle.as_millis() as i64);
    let watermark = effective.saturating_sub(lateness_ms);
    if deadline > watermark {
        return None;
    }
    // Timers due before the newest event fire without moving event time
    // past it (as at the end of a replay); later ones move it forward.
    let target = if deadline <= newest {
        watermark.min(newest)
    } else {
        watermark
    };
    Some(Timestamp(target))
}

/// The wall clock's claim: once the engine has caught up with its input,
/// event time may be taken to be the wall clock minus the allowed lateness.
/// Returns that instant when a silence timer is due by it.
pub fn wall_advance(
    wall_now_ms: i64,
    lateness_ms: i64,
    next_deadline: Option<Timestamp>,
) -> Option<Timestamp> {
    let watermark = wall_now_ms.saturating_sub(lateness_ms);
    (next_deadline?.millis() <= watermark).then_some(Timestamp(watermark))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wall clock the tests run at: 2026-03-03, a day after their events.
    const WALL: i64 = 1_772_500_000_000;
    use intent_core::PipelineConfig;
    use std::path::Path;

    fn shared() -> Shared {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../signal-defs");
        let defs = Arc::new(intent_files::load_dir(&dir).unwrap());
        Shared::new(
            Pipeline::new(defs, PipelineConfig::default()),
            DefsSource::new(&dir, "intent-signals"),
            Subjects::new("intent").unwrap(),
            "core",
        )
    }

    fn inbound(subject: &str, payload: &str) -> Inbound {
        Inbound {
            subject: subject.into(),
            payload: Bytes::copy_from_slice(payload.as_bytes()),
            seq: 7,
        }
    }

    const WEB: &str = r#"{"id":"e1","ts":"2026-03-02T09:00:00Z","kind":"web","account":"acme-cn","url":"https://x.test/pricing","action":"view"}"#;

    #[test]
    fn a_batch_applies_rejects_and_names_the_field() {
        let shared = shared();
        let batch = [
            inbound("intent.events.web.acme-cn", WEB),
            inbound("intent.events.web.acme-cn", WEB),
            inbound("intent.events.web.acme-cn", r#"{"id":"e2","kind":"web"}"#),
            inbound("intent.events.email.acme-cn", &WEB.replace("e1", "e3")),
            inbound("intent.events.web.other", &WEB.replace("e1", "e4")),
            inbound("intent.events.web.x", "not json"),
        ];
        let mut out = BatchOutput::default();
        shared.process_batch(&batch, WALL, &mut out);
        use Disposition::*;
        assert_eq!(
            out.dispositions,
            [Applied, Applied, Rejected, Rejected, Rejected, Rejected]
        );
        let stats = shared.pipeline().stats().clone();
        assert_eq!((stats.applied, stats.duplicates, stats.rejected), (1, 1, 4));
        let fields: Vec<_> = out
            .dead_letters
            .iter()
            .map(|d| d.field.as_deref())
            .collect();
        assert_eq!(fields, [Some("ts"), Some("kind"), Some("account"), None]);
        assert_eq!(out.dead_letters[0].subject, "intent.dlq.web");
        assert_eq!(
            out.dead_letters[3].subject, "intent.dlq.web",
            "kind from the subject"
        );
        assert_eq!(
            &out.dead_letters[3].payload[..],
            b"not json",
            "bytes unchanged"
        );
    }

    #[test]
    fn clock_ticks_advance_event_time_and_forged_ones_are_refused() {
        let shared = shared();
        let mut out = BatchOutput::default();
        let tick = |ms: i64| serde_json::to_string(&ClockTick { advance_to: ms }).unwrap();
        // 2026-03-03, a day after the event: plausible.
        shared.process_batch(
            &[
                inbound("intent.events.web.acme-cn", WEB),
                inbound("intent.events._clock", &tick(1_772_500_000_000)),
            ],
            WALL,
            &mut out,
        );
        assert_eq!(
            out.dispositions,
            [Disposition::Applied, Disposition::Applied]
        );
        assert_eq!(
            shared.pipeline().watermark(),
            Some(Timestamp(1_772_500_000_000))
        );
        assert_eq!(shared.counters.clock_ticks.load(Ordering::Relaxed), 1);
        // Far ahead of both the wall clock and the newest event, or not a
        // tick at all: dead letters, and time stays where it was.
        let mut out = BatchOutput::default();
        shared.process_batch(
            &[
                inbound("intent.events._clock", &tick(4_000_000_000_000)),
                inbound("intent.events._clock", "{}"),
            ],
            WALL,
            &mut out,
        );
        assert_eq!(
            out.dispositions,
            [Disposition::Rejected, Disposition::Rejected]
        );
        assert_eq!(out.dead_letters[0].field.as_deref(), Some("advance_to"));
        assert_eq!(out.dead_letters[0].subject, "intent.dlq._clock");
        assert_eq!(
            shared.pipeline().watermark(),
            Some(Timestamp(1_772_500_000_000))
        );
    }

    #[test]
    fn idle_time_moves_the_watermark_only_past_due_timers() {
        let t = |ms| Some(Timestamp(ms));
        let second = Duration::from_secs(1);
        // No timer, or not due yet: nothing.
        assert_eq!(idle_advance(t(100_000), second * 60, 10_000, None), None);
        assert_eq!(idle_advance(t(100_000), second, 10_000, t(100_000)), None);
        // A timer before the newest event fires once lateness has passed in
        // idle wall time, without moving past the newest event.
        assert_eq!(
            idle_advance(t(100_000), second * 10, 10_000, t(95_000)),
            t(100_000)
        );
        assert_eq!(
            idle_advance(t(100_000), second * 7, 10_000, t(95_000)),
            t(97_000)
        );
        // A timer after it moves event time with the wall clock.
        assert_eq!(
            idle_advance(t(100_000), second * 60, 10_000, t(130_000)),
            t(150_000)
        );
        assert_eq!(idle_advance(None, second * 60, 10_000, t(1)), None);
    }

    #[test]
    fn the_wall_clock_fires_timers_due_by_it() {
        let t = |ms| Some(Timestamp(ms));
        assert_eq!(wall_advance(100_000, 10_000, t(95_000)), None);
        assert_eq!(wall_advance(100_000, 10_000, t(90_000)), t(90_000));
        assert_eq!(wall_advance(100_000, 10_000, None), None);
    }
}
