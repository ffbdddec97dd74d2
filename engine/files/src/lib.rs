//! # intent-files
//!
//! The file edge of the intent engine, around the pure core:
//!
//! - [`signal_defs`]: a `signal-defs/` directory read and compiled into a
//!   `SignalSet`;
//! - [`replay`]: the embedded, broker-free mode, JSON-lines events from any
//!   reader through the pipeline.

pub mod replay;
pub mod signal_defs;

pub use signal_defs::load_dir;
