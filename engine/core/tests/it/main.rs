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

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use intent_core::signal_defs::SignalSet;

/// The workspace root (two levels above this crate).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("engine/<crate> is two levels below the root")
        .to_path_buf()
}

/// The shipped signal definitions, loaded once.
pub fn shipped_defs() -> Arc<SignalSet> {
    static DEFS: OnceLock<Arc<SignalSet>> = OnceLock::new();
    DEFS.get_or_init(|| {
        Arc::new(
            intent_files::load_dir(&root().join("signal-defs"))
                .unwrap_or_else(|e| panic!("shipped signal-defs refused:\n{e}")),
        )
    })
    .clone()
}
