//! Per-account bookkeeping for out-of-order events: the observations that
//! are not final yet (newer than the watermark), checkpoints of the account
//! state taken every few of them, and the actions emitted meanwhile.
//!
//! An in-order observation is applied directly and appended. An earlier one
//! is inserted in time order, and the state is rebuilt from the last
//! checkpoint before it by re-applying what follows. Checkpoints are clones
//! taken every [`CHECKPOINT_EVERY`] observations, so keeping the replay
//! possible costs one clone per that many events, not a second application
//! of each.

use std::collections::VecDeque;

use super::account::AccountCore;
use crate::extract::Observation;

/// Observations between two checkpoints.
pub const CHECKPOINT_EVERY: u64 = 32;

/// The account state before the observation at absolute position `at`,
/// encoded: one allocation, restored only when a late event needs it.
#[derive(Debug, Clone)]
struct Checkpoint {
    at: u64,
    state: Box<[u8]>,
}

/// Where an emitted action came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Fired by an event.
    Event,
    /// Fired by a silence timer (replays do not re-fire timers).
    Timer,
    /// Fired by an event, but a replay in time order no longer fires it.
    Superseded,
}

/// An action emitted while its account had pending observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Emitted {
    /// Hash of the action id.
    digest: u64,
    origin: Origin,
    /// (time, arrival sequence) of what fired it.
    trigger: (i64, u64),
}

/// Pending observations of one account; nothing at all (one pointer) for an
/// account with none, which is most accounts most of the time.
#[derive(Debug, Clone, Default)]
pub struct Pending(Option<Box<State>>);

#[derive(Debug, Clone, Default)]
struct State {
    log: VecDeque<Observation>,
    /// Absolute position of `log[0]`.
    log_start: u64,
    checkpoints: Vec<Checkpoint>,
    emitted: Vec<Emitted>,
}

fn key(obs: &Observation) -> (i64, u64) {
    (obs.ts.millis(), obs.seq)
}

impl Pending {
    /// Whether no observation is pending.
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|s| s.log.is_empty())
    }

    /// Observations pending.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |s| s.log.len())
    }

    /// Time of the newest pending observation.
    pub fn newest_ts(&self) -> Option<i64> {
        self.0
            .as_ref()
            .and_then(|s| s.log.back())
            .map(|o| o.ts.millis())
    }

    /// Whether `obs` comes after every pending observation.
    pub fn is_in_order(&self, obs: &Observation) -> bool {
        self.0.as_ref().is_none_or(|s| s.is_in_order(obs))
    }

    /// Before applying an in-order observation to `core`: takes a checkpoint
    /// if one is due (then record the observation with [`Pending::push`]).
    pub fn checkpoint_if_due(&mut self, core: &AccountCore) {
        self.0
            .get_or_insert_with(Box::default)
            .checkpoint_if_due(core);
    }

    /// Records an in-order observation just applied, after the log's last.
    pub fn push(&mut self, obs: Observation) {
        self.0.get_or_insert_with(Box::default).log.push_back(obs);
    }

    /// Inserts an out-of-order observation and rebuilds `core` by applying,
    /// from the last checkpoint before it, every pending observation in time
    /// order through `step`. Returns the (time, sequence) from which
    /// observations were re-applied. Needs pending observations.
    pub fn insert_and_replay(
        &mut self,
        obs: Observation,
        core: &mut AccountCore,
        step: impl FnMut(&mut AccountCore, &Observation),
    ) -> (i64, u64) {
        self.0
            .as_mut()
            .expect("a replay needs pending observations")
            .insert_and_replay(obs, core, step)
    }

    /// Forgets what the watermark made final: whole segments between
    /// checkpoints whose observations are all older than the watermark, and
    /// everything when all are. Returns whether nothing is pending any more.
    pub fn compact(&mut self, watermark: i64) -> bool {
        let done = self.0.as_mut().is_none_or(|s| s.compact(watermark));
        if done {
            self.0 = None;
        }
        done
    }

    /// Keeps at most `max` observations pending: beyond that the oldest
    /// segment becomes final early.
    pub fn enforce_cap(&mut self, core: &AccountCore, max: usize) {
        if let Some(state) = self.0.as_mut() {
            state.enforce_cap(core, max);
        }
    }

    /// Drops everything pending (all of it is final).
    pub fn clear(&mut self) {
        self.0 = None;
    }

    /// Applies `f` to every checkpointed state (to keep timers in step).
    pub fn for_each_checkpoint(&mut self, f: impl FnMut(&mut AccountCore)) {
        if let Some(state) = self.0.as_mut() {
            state.for_each_checkpoint(f);
        }
    }

    /// Whether an action whose id hashes to `digest` was emitted while
    /// observations were pending (and is still remembered).
    pub fn was_emitted(&self, digest: u64) -> bool {
        self.0
            .as_ref()
            .is_some_and(|s| s.emitted.iter().any(|e| e.digest == digest))
    }

    /// Remembers an action emitted while observations are pending: its id's
    /// digest, what fired it and that trigger's (time, arrival sequence).
    pub fn record_emitted(&mut self, digest: u64, origin: Origin, trigger: (i64, u64)) {
        self.0
            .get_or_insert_with(Box::default)
            .emitted
            .push(Emitted {
                digest,
                origin,
                trigger,
            });
    }

    /// After a replay from `replay_from`: marks event-fired actions in the
    /// replayed range that the replay did not fire again; returns how many.
    pub fn mark_superseded(&mut self, replay_from: (i64, u64), replayed: &[u64]) -> u64 {
        self.0
            .as_mut()
            .map_or(0, |s| s.mark_superseded(replay_from, replayed))
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |s| std::mem::size_of::<State>() + s.heap_bytes())
    }
}

impl State {
    /// Whether `obs` comes after every pending observation.
    pub fn is_in_order(&self, obs: &Observation) -> bool {
        self.log.back().is_none_or(|last| key(obs) >= key(last))
    }

    /// Before applying an in-order observation to `core`: takes a checkpoint
    /// if one is due, then records the observation (call [`Pending::push`]).
    pub fn checkpoint_if_due(&mut self, core: &AccountCore) {
        let next = self.log_start + self.log.len() as u64;
        let due = match self.checkpoints.last() {
            None => true,
            Some(last) => next - last.at >= CHECKPOINT_EVERY,
        };
        if due {
            self.checkpoints.push(Checkpoint {
                at: next,
                state: core.encode().into(),
            });
        }
    }

    /// Inserts an out-of-order observation and rebuilds `core` by applying,
    /// from the last checkpoint before it, every pending observation in time
    /// order through `step`. Returns the (time, sequence) from which
    /// observations were re-applied.
    pub fn insert_and_replay(
        &mut self,
        obs: Observation,
        core: &mut AccountCore,
        mut step: impl FnMut(&mut AccountCore, &Observation),
    ) -> (i64, u64) {
        let position = self.log.partition_point(|o| key(o) <= key(&obs));
        let absolute = self.log_start + position as u64;
        self.log.insert(position, obs);
        let cp_idx = self
            .checkpoints
            .iter()
            .rposition(|c| c.at <= absolute)
            .expect("the first checkpoint is at the start of the log");
        self.checkpoints.truncate(cp_idx + 1);
        let from = self.checkpoints[cp_idx].at;
        *core = AccountCore::decode(&self.checkpoints[cp_idx].state);
        let first = (from - self.log_start) as usize;
        let replay_from = key(&self.log[first]);
        for i in first..self.log.len() {
            let at = self.log_start + i as u64;
            if at > from && (at - from).is_multiple_of(CHECKPOINT_EVERY) {
                self.checkpoints.push(Checkpoint {
                    at,
                    state: core.encode().into(),
                });
            }
            step(core, &self.log[i]);
        }
        replay_from
    }

    /// Forgets what the watermark made final: whole segments between
    /// checkpoints whose observations are all older than the watermark, and
    /// everything when all are. Returns whether nothing is pending any more.
    pub fn compact(&mut self, watermark: i64) -> bool {
        if self.log.back().is_some_and(|o| o.ts.millis() < watermark) {
            self.clear();
            return true;
        }
        while self.checkpoints.len() >= 2 {
            let boundary = (self.checkpoints[1].at - self.log_start) as usize;
            if self.log[boundary - 1].ts.millis() >= watermark {
                break;
            }
            self.drop_first_segment();
        }
        self.log.is_empty()
    }

    /// Keeps at most `max` observations pending: beyond that the oldest
    /// segment becomes final early (taking a checkpoint now if there is only one).
    pub fn enforce_cap(&mut self, core: &AccountCore, max: usize) {
        while self.log.len() > max.max(1) {
            if self.checkpoints.len() < 2 {
                // Everything so far becomes final; start afresh from now.
                let state = core.encode().into();
                self.log_start += self.log.len() as u64;
                self.log.clear();
                self.checkpoints.clear();
                self.checkpoints.push(Checkpoint {
                    at: self.log_start,
                    state,
                });
                self.emitted.clear();
                return;
            }
            self.drop_first_segment();
        }
    }

    fn drop_first_segment(&mut self) {
        let boundary = self.checkpoints[1].at;
        let n = (boundary - self.log_start) as usize;
        self.log.drain(..n);
        self.log_start = boundary;
        self.checkpoints.remove(0);
        if let Some(front) = self.log.front() {
            // A replay starts at a checkpoint, so nothing older is re-fired.
            let oldest = key(front);
            self.emitted.retain(|e| e.trigger >= oldest);
        }
    }

    /// Drops everything pending (all of it is final).
    pub fn clear(&mut self) {
        self.log_start += self.log.len() as u64;
        self.log = VecDeque::new();
        self.checkpoints = Vec::new();
        self.emitted = Vec::new();
    }

    /// Applies `f` to every checkpointed state (to keep timers in step).
    pub fn for_each_checkpoint(&mut self, mut f: impl FnMut(&mut AccountCore)) {
        for checkpoint in &mut self.checkpoints {
            let mut state = AccountCore::decode(&checkpoint.state);
            f(&mut state);
            checkpoint.state = state.encode().into();
        }
    }

    /// After a replay from `replay_from`: marks event-fired actions in the
    /// replayed range that the replay did not fire again; returns how many.
    pub fn mark_superseded(&mut self, replay_from: (i64, u64), replayed: &[u64]) -> u64 {
        let mut n = 0;
        for emitted in &mut self.emitted {
            if emitted.origin == Origin::Event
                && emitted.trigger >= replay_from
                && !replayed.contains(&emitted.digest)
            {
                emitted.origin = Origin::Superseded;
                n += 1;
            }
        }
        n
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.log.capacity() * std::mem::size_of::<Observation>()
            + self
                .checkpoints
                .iter()
                .map(|c| c.state.len())
                .sum::<usize>()
            + self.emitted.capacity() * std::mem::size_of::<Emitted>()
    }
}
