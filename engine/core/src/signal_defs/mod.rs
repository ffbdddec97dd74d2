//! Signal definitions: the analyst-edited `signal-defs/` directory, loaded in
//! two phases ([`raw`] → [`compile`]) into one immutable [`SignalSet`].
//!
//! A `SignalSet` is all the core knows of signals, rules and phrase
//! libraries. It is shared as `Arc<SignalSet>`; a reload builds a new one and
//! swaps the `Arc`, so a refused change leaves the running set in force.

mod compile;
mod error;
pub mod raw;
mod set;
#[cfg(test)]
pub(crate) mod shipped;

pub use compile::{compile_sources, Source, PLACEHOLDERS};
pub use error::{DefError, DefErrors};
pub use set::{
    action_bit, crm_bit, kind_bit, AttrTest, Condition, FieldSet, Library, Mask, RuleDef, RuleIdx,
    RuleKind, ScoreConfig, SignalDef, SignalIdx, SignalSet, SilenceStart,
};
