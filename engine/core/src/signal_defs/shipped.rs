//! The shipped `signal-defs/`, embedded at compile time, for the core's own
//! unit tests: the core reads no files, so its tests do not either.

use std::path::PathBuf;

use super::{compile_sources, SignalSet, Source};

macro_rules! shipped_source {
    ($path:literal) => {
        Source {
            path: PathBuf::from(concat!("signal-defs/", $path)),
            text: include_str!(concat!("../../../../signal-defs/", $path)).to_owned(),
        }
    };
}

/// The shipped definitions, compiled (sorted by path, as a directory load
/// sorts them).
pub(crate) fn signal_set() -> SignalSet {
    let sources = [
        shipped_source!("engine.toml"),
        shipped_source!("libraries/competitors.toml"),
        shipped_source!("libraries/intent_language.toml"),
        shipped_source!("libraries/manufacturing.toml"),
        shipped_source!("libraries/medical.toml"),
        shipped_source!("libraries/retail.toml"),
        shipped_source!("libraries/roles.toml"),
        shipped_source!("rules.toml"),
        shipped_source!("signals.toml"),
    ];
    compile_sources(&sources).unwrap_or_else(|e| panic!("shipped signal-defs refused:\n{e}"))
}
