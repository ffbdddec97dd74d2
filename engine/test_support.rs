//! What every crate's integration tests share, included into each test
//! binary with `#[path = "../../../test_support.rs"] mod support;`: the
//! workspace root and the shipped signal definitions, loaded once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use intent_core::signal_defs::SignalSet;

/// The workspace root (two levels above each crate).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("engine/<crate> is two levels below the root")
        .to_path_buf()
}

/// The shipped signal definitions, loaded once.
#[allow(dead_code)] // not every test binary uses them
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
