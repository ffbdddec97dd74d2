//! Event time: millisecond timestamps, their wire formats, and durations.
//!
//! Event time drives everything in the core (decay, windows, silence), so it is
//! a plain `i64` of Unix milliseconds wrapped in [`Timestamp`]; there is no wall
//! clock anywhere below the edge.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// A point in event time, in Unix milliseconds (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// One second, in milliseconds.
pub const SECOND_MS: i64 = 1_000;
/// One minute, in milliseconds.
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
/// One hour, in milliseconds.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// One day, in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Earliest and latest accepted timestamps: years 1970 to 9999.
const MIN_MS: i64 = 0;
const MAX_MS: i64 = 253_402_300_799_999;

impl Timestamp {
    /// Earlier than any valid event time (`i64::MIN` ms); a "never" sentinel,
    /// outside the range [`Timestamp::from_millis`] accepts.
    pub const MIN: Timestamp = Timestamp(i64::MIN);

    /// Parses an RFC 3339 date-time (`2026-03-01T09:30:00Z`, `...+08:00`).
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let parsed = DateTime::parse_from_rfc3339(text).ok()?;
        Timestamp::from_millis(parsed.timestamp_millis())
    }

    /// Accepts Unix milliseconds within years 1970..=9999.
    pub fn from_millis(ms: i64) -> Option<Timestamp> {
        (MIN_MS..=MAX_MS).contains(&ms).then_some(Timestamp(ms))
    }

    /// Unix milliseconds.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// `ms` milliseconds later, clamped at `i64::MAX` instead of overflowing.
    pub fn saturating_add(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// `ms` milliseconds earlier, clamped at `i64::MIN` instead of overflowing.
    pub fn saturating_sub(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_sub(ms))
    }

    /// RFC 3339 in UTC with milliseconds, the form actions carry.
    pub fn to_rfc3339(self) -> String {
        match DateTime::<Utc>::from_timestamp_millis(self.0) {
            Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Millis, true),
            None => self.0.to_string(),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

/// A text that is not a duration the engine can hold.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DurationError {
    /// Not a human duration (humantime says why).
    #[error(transparent)]
    Invalid(#[from] humantime::DurationError),
    /// More milliseconds than an `i64` holds.
    #[error("duration too large")]
    TooLarge,
}

/// Parses a human duration such as `14d`, `48h`, `3m`, `90s` or `1h 30m` into
/// milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<i64, DurationError> {
    let duration = humantime::parse_duration(text.trim())?;
    i64::try_from(duration.as_millis()).map_err(|_| DurationError::TooLarge)
}

/// Formats milliseconds as a short human duration (`14d`, `48h`, `3m`):
/// days from three days up, hours below.
pub fn format_duration_ms(ms: i64) -> String {
    if ms % DAY_MS == 0 && ms >= 3 * DAY_MS {
        format!("{}d", ms / DAY_MS)
    } else if ms % HOUR_MS == 0 && ms != 0 {
        format!("{}h", ms / HOUR_MS)
    } else if ms % MINUTE_MS == 0 && ms != 0 {
        format!("{}m", ms / MINUTE_MS)
    } else if ms % SECOND_MS == 0 {
        format!("{}s", ms / SECOND_MS)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_in_utc() {
        let ts = Timestamp::parse_rfc3339("2026-03-01T17:30:00+08:00").unwrap();
        assert_eq!(ts.to_rfc3339(), "2026-03-01T09:30:00.000Z");
        assert_eq!(Timestamp::parse_rfc3339(&ts.to_rfc3339()), Some(ts));
    }

    #[test]
    fn rejects_non_rfc3339_and_out_of_range() {
        for bad in ["2026-03-01", "yesterday", "2026-13-01T00:00:00Z", ""] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(Timestamp::from_millis(-1), None);
        assert_eq!(Timestamp::from_millis(MAX_MS + 1), None);
    }

    #[test]
    fn durations_parse_and_format() {
        for (text, ms) in [
            ("14d", 14 * DAY_MS),
            ("48h", 48 * HOUR_MS),
            ("3m", 3 * MINUTE_MS),
            ("1h 30m", 90 * MINUTE_MS),
        ] {
            assert_eq!(parse_duration_ms(text), Ok(ms), "{text}");
        }
        assert!(parse_duration_ms("-3d").is_err());
        assert!(parse_duration_ms("soon").is_err());
        assert_eq!(format_duration_ms(14 * DAY_MS), "14d");
        assert_eq!(format_duration_ms(90 * MINUTE_MS), "90m");
        assert_eq!(format_duration_ms(48 * HOUR_MS), "48h");
        assert_eq!(format_duration_ms(DAY_MS), "24h");
    }
}
