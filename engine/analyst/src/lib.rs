//! # intent-analyst
//!
//! The analyst toolkit of the intent engine: what an analyst runs over
//! history to check and tune the signal definitions.
//!
//! - [`backtest`]: replays history against won/lost outcomes (per-rule
//!   precision and lead time, per-signal lift, the score's AUC and
//!   calibration);
//! - [`tune`]: fits signal weights on that history; [`rewrite`] writes them
//!   into a copy of the definitions, keeping comments;
//! - [`metrics`]: ROC AUC, precision at the top, calibration;
//! - [`datasets`]: converters from public labeled data to events and outcomes;
//! - [`report`]: one self-contained HTML page of charts;
//! - [`synth`]: deterministic synthetic event streams for tests and load.

pub mod backtest;
pub mod datasets;
pub mod metrics;
pub mod report;
pub mod rewrite;
pub mod synth;
pub mod tune;
