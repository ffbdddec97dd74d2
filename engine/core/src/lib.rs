//! # intent-core
//!
//! The pure pipeline core of the intent engine. Events (web behaviour,
//! e-mails, meeting transcripts, CRM changes) go in; per-account scores with
//! explanations and trigger actions come out. Nothing here reads a clock,
//! touches a file or the environment, or talks to a network: event time comes
//! from events, definitions from in-memory sources (the build enforces this,
//! see `clippy.toml` beside this crate's manifest).
//!
//! - [`ingest`]: bytes → validated [`event::Event`] or a [`ingest::DecodeError`];
//! - [`extract`]: event → [`extract::Observation`] (analyzer, phrase matcher,
//!   signal conditions, open keywords);
//! - [`graph`]: the per-account intent graph, with time-decayed weights
//!   ([`decay`]), and what is kept to place late events in time order;
//! - [`score`]: the 0–100 score and its explanation;
//! - [`rules`]: trigger rules, which fire [`rules::Firing`]s;
//! - [`actions`]: firings → [`actions::Action`]s;
//! - [`pipeline`]: all of the above behind `Pipeline::process(event, &mut out)`;
//! - [`signal_defs`]: the analyst-edited definitions, compiled from their
//!   sources into a [`signal_defs::SignalSet`].
//!
//! The edges live in other crates: `intent-files` (definitions from a
//! directory, event files, the embedded replay loop), `intent-search` (the
//! evidence index), `intent-analyst` (backtest, tune, report),
//! `intent-serve` (NATS) and `intent-cli` (the `intent` binary).
//!
//! ```
//! use std::path::PathBuf;
//! use std::sync::Arc;
//! use intent_core::signal_defs::{compile_sources, Source};
//! use intent_core::{Pipeline, PipelineConfig};
//!
//! let sources = [Source {
//!     path: PathBuf::from("signals.toml"),
//!     text: r#"
//! [[library]]
//! id = "budget_language"
//! phrases = ["budget is approved"]
//!
//! [[library]]
//! id = "decision_roles"
//! phrases = ["chief executive"]
//!
//! [[signal]]
//! id = "budget_confirmed"
//! weight = 20.0
//! half_life = "30d"
//! [signal.when]
//! kinds = ["email"]
//! libraries = ["budget_language"]
//!
//! [[rule]]
//! id = "budget_confirmed"
//! kind = "count"
//! signal = "budget_confirmed"
//! at_least = 1
//! within = "1d"
//! recommendation = "Send pricing"
//! reason = "{account} confirmed the budget"
//! "#
//!     .into(),
//! }];
//! let defs = compile_sources(&sources).unwrap();
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

#![warn(missing_docs)]
#![warn(clippy::too_many_lines)]

pub mod actions;
pub mod decay;
pub mod dedupe;
pub mod event;
pub mod extract;
pub mod graph;
pub mod ingest;
pub mod pipeline;
pub mod rules;
pub mod score;
pub mod signal_defs;
pub mod time;

pub use actions::Action;
pub use event::Event;
pub use pipeline::{Outcome, Pipeline, PipelineConfig, Stats};
pub use signal_defs::SignalSet;
pub use time::Timestamp;
