//! Integration tests of the file edge, built into one binary: golden replays
//! of the shipped fixtures and out-of-order replays.
//! Fixtures and signal definitions are read from the workspace root.

mod golden;
mod peer_job;
mod reorder;

#[path = "../../../test_support.rs"]
mod support;

pub use support::{root, shipped_defs};
