//! Integration tests of the engine crate, built into one binary.
//! Fixtures and signal definitions are read from the workspace root.

mod analyzer;
mod backtest;
mod bank_marketing;
mod cli;
mod golden;
mod properties;
mod reorder;
mod report;
mod schema;
mod search;
mod signal_defs;
mod tune;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use engine::signal_defs::SignalSet;

/// The workspace root (this crate's parent).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("engine/ has a parent")
        .to_path_buf()
}

/// The shipped signal definitions, loaded once.
pub fn shipped_defs() -> Arc<SignalSet> {
    static DEFS: OnceLock<Arc<SignalSet>> = OnceLock::new();
    DEFS.get_or_init(|| {
        Arc::new(
            SignalSet::load(&root().join("signal-defs"))
                .unwrap_or_else(|e| panic!("shipped signal-defs refused:\n{e}")),
        )
    })
    .clone()
}
