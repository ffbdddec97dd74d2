//! Integration tests of the `intent` binary, run as a user runs it.
//! Fixtures and signal definitions are read from the workspace root.

mod backtest;
mod bank_marketing;
mod cli;
mod report;
mod tune;

#[path = "../../../test_support.rs"]
mod support;

pub use support::root;
