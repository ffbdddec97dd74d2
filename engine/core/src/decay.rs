//! Exponential decay in event time: a value that halves every half-life.
//!
//! A [`Decayed`] stores its value as of an anchor time. Adding an amount at
//! time `t` moves the anchor forward when `t` is later, and otherwise adds the
//! amount already decayed to the anchor, so the value at any later time is
//! `Σ amountᵢ · 2^(−(t − tᵢ)/h)` whatever order the additions came in (up to
//! floating-point rounding).

/// A decaying quantity anchored at a point in event time (ms).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Decayed {
    value: f64,
    at: i64,
}

/// `2^(−elapsed/half_life)`, 1 for non-positive elapsed time.
#[inline]
pub fn decay_factor(elapsed_ms: i64, half_life_ms: f64) -> f64 {
    if elapsed_ms <= 0 {
        1.0
    } else {
        (-(elapsed_ms as f64) / half_life_ms).exp2()
    }
}

impl Decayed {
    /// A quantity worth `value` at event time `at` (Unix ms).
    pub fn new(value: f64, at: i64) -> Decayed {
        Decayed { value, at }
    }

    /// The anchor time.
    pub fn anchor(&self) -> i64 {
        self.at
    }

    /// The value at time `t`. Before the anchor the value is the anchor's
    /// (the core never asks for the past of a value).
    #[inline]
    pub fn value_at(&self, t: i64, half_life_ms: f64) -> f64 {
        self.value * decay_factor(t - self.at, half_life_ms)
    }

    /// Adds `amount` at time `t`.
    #[inline]
    pub fn add(&mut self, t: i64, amount: f64, half_life_ms: f64) {
        if t >= self.at {
            self.value = self.value_at(t, half_life_ms) + amount;
            self.at = t;
        } else {
            self.value += amount * decay_factor(self.at - t, half_life_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: f64 = 1000.0;

    #[test]
    fn halves_every_half_life() {
        let d = Decayed::new(8.0, 0);
        assert_eq!(d.value_at(0, H), 8.0);
        assert_eq!(d.value_at(1000, H), 4.0);
        assert_eq!(d.value_at(3000, H), 1.0);
    }

    #[test]
    fn late_additions_are_decayed_to_the_anchor() {
        let mut d = Decayed::default();
        d.add(2000, 1.0, H);
        d.add(1000, 1.0, H);
        assert_eq!(d.anchor(), 2000);
        assert!((d.value_at(2000, H) - 1.5).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn order_of_additions_does_not_matter(
            mut adds in proptest::collection::vec((0i64..100_000, 0.0f64..10.0), 1..20),
            half_life in 1.0f64..50_000.0,
        ) {
            let mut forward = Decayed::default();
            for (t, a) in &adds { forward.add(*t, *a, half_life); }
            adds.reverse();
            let mut backward = Decayed::default();
            for (t, a) in &adds { backward.add(*t, *a, half_life); }
            let t = 200_000;
            let expected: f64 = adds.iter().map(|(ti, a)| a * decay_factor(t - ti, half_life)).sum();
            prop_assert!((forward.value_at(t, half_life) - expected).abs() <= 1e-9 * (1.0 + expected));
            prop_assert!((backward.value_at(t, half_life) - expected).abs() <= 1e-9 * (1.0 + expected));
        }

        #[test]
        fn value_never_grows_without_additions(
            value in 0.0f64..1e6, t1 in 0i64..1_000_000, dt in 0i64..1_000_000, half_life in 1.0f64..1e7,
        ) {
            let d = Decayed::new(value, 0);
            prop_assert!(d.value_at(t1 + dt, half_life) <= d.value_at(t1, half_life));
            prop_assert!(d.value_at(t1, half_life) >= 0.0);
        }

        #[test]
        fn half_life_halves(value in 0.0f64..1e6, half_life in 1i64..10_000_000) {
            let d = Decayed::new(value, 0);
            let halved = d.value_at(half_life, half_life as f64);
            prop_assert!((halved - value / 2.0).abs() <= 1e-9 * (1.0 + value));
        }
    }
}
