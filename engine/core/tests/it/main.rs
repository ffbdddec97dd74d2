//! Integration tests of the core crate, built into one binary: the analyzer,
//! the signal definitions, the wire schema and properties of the pipeline.
//! Fixtures and signal definitions are read from the workspace root.

// Tests are an edge: they read fixtures and write temporary directories.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod analyzer;
mod caps;
mod peer_features;
mod properties;
mod schema;
mod signal_defs;

#[path = "../../../test_support.rs"]
mod support;

pub use support::{root, shipped_defs};
