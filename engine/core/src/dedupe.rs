//! Idempotency on event ids: remembers the ids seen within a horizon of event
//! time (and up to a capacity), so a repeated event changes nothing.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use rustc_hash::FxHashSet;

/// Seen event ids, as 64-bit SipHash digests with fixed keys.
#[derive(Debug)]
pub struct IdDedupe {
    seen: FxHashSet<u64>,
    order: VecDeque<(i64, u64)>,
    horizon_ms: i64,
    capacity: usize,
}

impl IdDedupe {
    /// Remembers ids for `horizon_ms` of event time and at most `capacity` of
    /// them (at least 1).
    pub fn new(horizon_ms: i64, capacity: usize) -> IdDedupe {
        IdDedupe {
            seen: FxHashSet::default(),
            order: VecDeque::new(),
            horizon_ms,
            capacity: capacity.max(1),
        }
    }

    /// The 64-bit digest an id is remembered by (stable across runs and processes).
    pub fn digest(id: &str) -> u64 {
        #[allow(deprecated)]
        let mut hasher = std::hash::SipHasher::new_with_keys(0x696e_7465_6e74, 0x6964_7321);
        id.hash(&mut hasher);
        hasher.finish()
    }

    /// Whether `id` was seen and is still remembered.
    pub fn contains(&self, id: &str) -> bool {
        self.contains_digest(IdDedupe::digest(id))
    }

    /// [`IdDedupe::contains`] with the digest already computed.
    pub fn contains_digest(&self, digest: u64) -> bool {
        self.seen.contains(&digest)
    }

    /// Records `id` seen at `ts`, forgetting ids older than the horizon
    /// relative to `now` and the oldest beyond capacity.
    pub fn insert(&mut self, id: &str, ts: i64, now: i64) {
        self.insert_digest(IdDedupe::digest(id), ts, now);
    }

    /// [`IdDedupe::insert`] with the digest already computed.
    pub fn insert_digest(&mut self, digest: u64, ts: i64, now: i64) {
        if self.seen.insert(digest) {
            self.order.push_back((ts, digest));
        }
        while let Some((oldest_ts, oldest)) = self.order.front().copied() {
            if self.order.len() > self.capacity || oldest_ts < now.saturating_sub(self.horizon_ms) {
                self.order.pop_front();
                self.seen.remove(&oldest);
            } else {
                break;
            }
        }
    }

    /// Ids remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_within_horizon_and_capacity() {
        let mut d = IdDedupe::new(1000, 3);
        d.insert("a", 0, 0);
        assert!(d.contains("a"));
        d.insert("b", 500, 500);
        d.insert("c", 1500, 1500);
        assert!(!d.contains("a"), "older than the horizon");
        assert!(d.contains("b"));
        d.insert("d", 1600, 1600);
        d.insert("e", 1700, 1700);
        assert_eq!(d.len(), 3);
        assert!(!d.contains("b"), "evicted by capacity");
    }
}
