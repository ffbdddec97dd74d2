//! # intent engine
//!
//! A real-time intent-scoring stream processor. Events (web behaviour,
//! e-mails, meeting transcripts, CRM changes) go in; per-account scores with
//! explanations and trigger actions come out.
//!
//! The crate is a pure, synchronous core plus thin edges:
//!
//! - [`ingest`]: bytes → validated [`event::Event`] or a [`ingest::DecodeError`];
//! - [`extract`]: event → [`extract::Observation`] (analyzer, phrase matcher,
//!   signal conditions, open keywords);
//! - [`graph`]: the per-account intent graph, with time-decayed weights ([`decay`]);
//! - [`score`]: the 0–100 score and its explanation;
//! - [`rules`]: trigger rules, which fire [`rules::Firing`]s;
//! - [`actions`]: firings → [`actions::Action`]s;
//! - [`pipeline`]: all of the above behind `Pipeline::process(event, &mut out)`;
//! - [`signal_defs`]: the analyst-edited definitions, compiled into a
//!   [`signal_defs::SignalSet`].
//!
//! Edges: [`replay`] runs the pipeline over JSON-lines input (the embedded,
//! broker-free mode); [`synth`] generates realistic synthetic streams.

pub mod actions;
pub mod decay;
pub mod dedupe;
pub mod event;
pub mod extract;
pub mod graph;
pub mod ingest;
pub mod pipeline;
pub mod replay;
pub mod rules;
pub mod score;
pub mod signal_defs;
pub mod synth;
pub mod time;

pub use actions::Action;
pub use event::Event;
pub use pipeline::{Outcome, Pipeline, PipelineConfig, Stats};
pub use signal_defs::SignalSet;
pub use time::Timestamp;
