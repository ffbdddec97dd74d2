//! Event time against the wall clock: when the engine, idle, may advance
//! event time so that silence timers fire ([`IdleClock`]), and the tick it
//! publishes to do so.

use std::time::{Duration, Instant};

use intent_core::time::Timestamp;
use intent_core::Pipeline;

use crate::config::ClockMode;
use crate::state::{self, ClockTick};

/// Where event time stands against the wall clock: the newest event time and
/// the instant it was reached.
pub(crate) struct IdleClock {
    mode: ClockMode,
    anchor: Option<(Timestamp, Instant)>,
    /// The last tick target asked for, and when.
    asked: Option<(Timestamp, Instant)>,
}

impl IdleClock {
    pub(crate) fn new(mode: ClockMode) -> IdleClock {
        IdleClock {
            mode,
            anchor: None,
            asked: None,
        }
    }

    /// Notes event time after a batch of events.
    pub(crate) fn observe(&mut self, newest: Option<Timestamp>) {
        if let Some(newest) = newest {
            if self.anchor.is_none_or(|(ts, _)| newest > ts) {
                self.anchor = Some((newest, Instant::now()));
            }
        }
    }

    /// Time cut off from the server is not idle time: restart the count.
    pub(crate) fn stalled(&mut self) {
        if let Some((newest, _)) = self.anchor {
            self.anchor = Some((newest, Instant::now()));
        }
    }

    /// The instant to advance event time to, when a silence timer is due
    /// (and the same tick is not already on its way). `caught_up`: the engine
    /// has no input waiting, so the wall clock may speak.
    pub(crate) fn due(&mut self, pipeline: &Pipeline, caught_up: bool) -> Option<Timestamp> {
        // Only with nothing waiting: a backlog is history, not idle time.
        if !caught_up {
            return None;
        }
        let lateness = pipeline.config().allowed_lateness_ms;
        let next = pipeline.next_timer_deadline();
        let idle = self.anchor.and_then(|(newest, at)| {
            state::idle_advance(Some(newest), at.elapsed(), lateness, next)
        });
        let wall = match self.mode {
            ClockMode::Wall => state::wall_advance(wall_now_ms(), lateness, next),
            ClockMode::Event => None,
        };
        let target = idle.max(wall)?;
        if pipeline.watermark().is_some_and(|w| target <= w) {
            return None;
        }
        if let Some((asked, when)) = self.asked {
            if asked >= target && when.elapsed() < Duration::from_secs(5) {
                return None;
            }
        }
        self.asked = Some((target, Instant::now()));
        Some(target)
    }
}

/// The wall clock in Unix milliseconds: the service's one reading of it,
/// handed to the synchronous batch step.
pub(crate) fn wall_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The tick payload.
pub(crate) fn clock_payload(target: Timestamp) -> bytes::Bytes {
    bytes::Bytes::from(
        serde_json::to_vec(&ClockTick {
            advance_to: target.millis(),
        })
        .expect("serializes"),
    )
}
