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
//! broker-free mode); [`backtest`] measures definitions against labeled
//! history, [`tune`] fits signal weights on it and [`datasets`] converts
//! public labeled data into it; [`synth`] generates realistic synthetic streams;
//! `serve` (feature `serve`) wraps the pipeline in a NATS service.
//!
//! ```
//! use std::sync::Arc;
//! use engine::{Pipeline, PipelineConfig, SignalSet};
//!
//! let defs = SignalSet::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../signal-defs").as_ref()).unwrap();
//! let mut pipeline = Pipeline::new(Arc::new(defs), PipelineConfig::default());
//! let mut actions = Vec::new();
//! let event = br#"{"id":"e1","ts":"2026-03-02T09:00:00Z","account":"acme","kind":"email",
//!                  "direction":"inbound","body":"Good news: the budget is approved."}"#;
//! pipeline.process_bytes(event, &mut actions).unwrap();
//! assert_eq!(&*actions[0].rule, "budget_confirmed");
//! assert!(pipeline.score("acme").unwrap() > 0.0);
//!
//! // A malformed event is an error value naming the field; nothing changes.
//! let err = pipeline.process_bytes(br#"{"id":"e2","ts":1,"kind":"web","url":"u"}"#, &mut actions).unwrap_err();
//! assert_eq!(err.to_string(), "missing field account");
//! ```

pub mod actions;
pub mod backtest;
pub mod datasets;
pub mod decay;
pub mod dedupe;
pub mod event;
pub mod extract;
pub mod graph;
pub mod ingest;
pub mod pipeline;
pub mod replay;
#[cfg(feature = "report")]
pub mod report;
pub mod rules;
pub mod score;
#[cfg(feature = "search")]
pub mod search;
#[cfg(feature = "serve")]
pub mod serve;
pub mod signal_defs;
pub mod synth;
pub mod time;
pub mod tune;

pub use actions::Action;
pub use event::Event;
pub use pipeline::{Outcome, Pipeline, PipelineConfig, Stats};
pub use signal_defs::SignalSet;
pub use time::Timestamp;
