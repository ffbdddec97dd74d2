//! The per-account intent graph, in memory: account → contacts, topics and
//! signal instances (see [`account`]), plus what the pipeline keeps per
//! account to re-apply recent observations when an earlier one arrives late.
//!
//! The graph is single-writer: the pipeline owns it and mutates it through
//! `&mut`; readers get values out through [`IntentGraph::with_account`], so no
//! borrow of the graph escapes a call. Accounts are interned to dense indices.

pub mod account;
pub mod pending;

use std::sync::Arc;

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use serde_json::{json, Value};

pub use account::{
    AccountCore, AccountExtra, ContactChange, ContactState, Occurrence, RuleState, SignalState,
    SilenceState, TopicState,
};

pub use crate::extract::TopicName;
use crate::signal_defs::SignalSet;
use crate::time::Timestamp;

/// Dense index of an account in the graph.
pub type AccountIdx = u32;

/// One account: its live state and what the pipeline keeps to place late
/// events in time order.
#[derive(Debug, Clone, Default)]
pub struct AccountEntry {
    /// The account's id, as events name it.
    pub id: Arc<str>,
    /// The live state: every observation applied, in event-time order.
    pub core: AccountCore,
    /// Observations not yet final, with checkpoints to replay them from.
    pub(crate) pending: pending::Pending,
}

impl AccountEntry {
    /// Approximate heap bytes held (for memory reports).
    pub fn heap_bytes(&self) -> usize {
        self.id.len() + self.core.heap_bytes() + self.pending.heap_bytes()
    }
}

/// All accounts. The index holds only account indices (4 bytes a slot) and
/// hashes the ids kept in the entries, so no id is stored twice.
#[derive(Default)]
pub struct IntentGraph {
    index: HashTable<AccountIdx>,
    accounts: Vec<AccountEntry>,
}

impl std::fmt::Debug for IntentGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntentGraph")
            .field("accounts", &self.accounts.len())
            .finish()
    }
}

fn hash_id(id: &str) -> u64 {
    FxBuildHasher.hash_one(id)
}

impl IntentGraph {
    /// Number of accounts known.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether no account is known yet.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// The index of `account`, if it is known.
    pub fn index_of(&self, account: &str) -> Option<AccountIdx> {
        let accounts = &self.accounts;
        self.index
            .find(hash_id(account), |&idx| {
                &*accounts[idx as usize].id == account
            })
            .copied()
    }

    /// The index of `account`, adding an empty account when it is new.
    pub fn get_or_insert(&mut self, account: &str) -> AccountIdx {
        if let Some(idx) = self.index_of(account) {
            return idx;
        }
        let idx = self.accounts.len() as AccountIdx;
        let id: Arc<str> = Arc::from(account);
        let accounts = &self.accounts;
        self.index.insert_unique(hash_id(account), idx, |&i| {
            hash_id(&accounts[i as usize].id)
        });
        self.accounts.push(AccountEntry {
            id,
            ..AccountEntry::default()
        });
        idx
    }

    /// The account at `idx`; panics for an index the graph did not hand out.
    pub fn entry(&self, idx: AccountIdx) -> &AccountEntry {
        &self.accounts[idx as usize]
    }

    /// The account at `idx`, mutably; panics for an index the graph did not hand out.
    pub fn entry_mut(&mut self, idx: AccountIdx) -> &mut AccountEntry {
        &mut self.accounts[idx as usize]
    }

    /// Runs `f` on an account's state, if the account is known.
    pub fn with_account<R>(&self, account: &str, f: impl FnOnce(&AccountCore) -> R) -> Option<R> {
        self.index_of(account)
            .map(|idx| f(&self.accounts[idx as usize].core))
    }

    /// Every account, in the order first seen (by index).
    pub fn entries(&self) -> impl Iterator<Item = &AccountEntry> {
        self.accounts.iter()
    }

    pub(crate) fn entries_mut(&mut self) -> impl Iterator<Item = &mut AccountEntry> {
        self.accounts.iter_mut()
    }

    /// Approximate heap bytes of all accounts, index included.
    pub fn heap_bytes(&self) -> usize {
        let index = self.index.capacity() * (std::mem::size_of::<AccountIdx>() + 1);
        index
            + self.accounts.capacity() * std::mem::size_of::<AccountEntry>()
            + self
                .accounts
                .iter()
                .map(AccountEntry::heap_bytes)
                .sum::<usize>()
    }
}

/// The whole graph of one account as JSON (for `--explain` and the API).
pub fn account_json(defs: &SignalSet, account: &str, core: &AccountCore, now: i64) -> Value {
    let topic_half_life = defs.score.topic_half_life_ms;
    let mut topics: Vec<&TopicState> = core.topics.iter().collect();
    topics.sort_by(|a, b| {
        b.weight
            .value_at(now, topic_half_life)
            .total_cmp(&a.weight.value_at(now, topic_half_life))
            .then_with(|| a.name.key.cmp(&b.name.key))
    });
    json!({
        "account": account,
        "industry": core.industry(),
        "stage": core.stage(),
        "first_seen": Timestamp(core.first_ts),
        "last_seen": Timestamp(core.last_ts),
        "events": core.n_events,
        "contacts": core.contacts.iter().map(|c| json!({
            "id": c.key,
            "name": c.name,
            "title": c.title,
            "decision_role": c.is_decision_role,
            "left": c.left,
            "title_history": c.title_history.iter().map(|(ts, title)| json!({"until": Timestamp(*ts), "title": title})).collect::<Vec<_>>(),
            "last_seen": Timestamp(c.last_seen),
        })).collect::<Vec<_>>(),
        "topics": topics.iter().map(|t| json!({
            "topic": t.name.display,
            "weight": (t.weight.value_at(now, topic_half_life) * 1000.0).round() / 1000.0,
        })).collect::<Vec<_>>(),
        "signals": core.signals.iter().map(|s| {
            let def = &defs.signals[s.signal as usize];
            json!({
                "signal": def.id,
                "decayed_occurrences": (s.value.value_at(now, def.half_life_ms) * 1000.0).round() / 1000.0,
                "total": s.total,
                "last_seen": Timestamp(s.last_ts()),
                "evidence": s.evidence.iter().map(|(id, ts)| json!({"event": id, "ts": Timestamp(*ts)})).collect::<Vec<_>>(),
                "keywords": s.keywords(),
            })
        }).collect::<Vec<_>>(),
        "rules": core.rules().iter().map(|r| json!({
            "rule": defs.rules[r.rule as usize].id,
            "last_fired": r.last_fired.map(Timestamp),
            "silence": r.silence.as_ref().map(|s| json!({
                "since": Timestamp(s.start_ts),
                "deadline": Timestamp(s.deadline),
                "done": s.done,
            })),
        })).collect::<Vec<_>>(),
    })
}
