//! Delays between retries: exponential, capped, with jitter (backon), so
//! that engines retrying against the same recovering server do not retry
//! in step.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Delays from `min` doubling to `max`, each stretched by a random share of
/// itself (up to twice as long), without end.
pub(crate) fn backoff(min: Duration, max: Duration) -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// The next delay of `delays`, or `max` should it ever end.
pub(crate) fn next_delay(delays: &mut ExponentialBackoff, max: Duration) -> Duration {
    delays.next().unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_never_end() {
        let (min, max) = (Duration::from_millis(50), Duration::from_secs(2));
        let runs: Vec<Vec<Duration>> = (0..8)
            .map(|_| {
                let mut delays = backoff(min, max);
                (0..40).map(|_| next_delay(&mut delays, max)).collect()
            })
            .collect();
        for run in &runs {
            assert_eq!(run.len(), 40, "no end");
            assert!(run[0] >= min && run[0] < 2 * min, "first: {:?}", run[0]);
            for (i, d) in run.iter().enumerate() {
                let base = (min * 2u32.pow(i.min(10) as u32)).min(max);
                assert!(
                    *d >= base && *d <= 2 * base,
                    "delay {i}: {d:?}, base {base:?}"
                );
            }
        }
        // Jitter: eight runs do not all wait the same.
        assert!(runs.iter().any(|r| r != &runs[0]), "no jitter: {runs:?}");
    }
}
