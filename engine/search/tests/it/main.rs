//! Integration tests of the evidence index, built into one binary.
//! Fixtures and signal definitions are read from the workspace root.

mod search;

#[path = "../../../test_support.rs"]
mod support;

pub use support::{root, shipped_defs};
