//! Built without the `index` feature, the service has no evidence index:
//! `--index` is refused at start with this reason, and `search` replies 501
//! as it does when no index was asked for. The type has no values, so the
//! code that would use an index is present but can never run.

use intent_core::event::Event;
use intent_core::extract::{Analyzer, Observation};
use intent_core::signal_defs::SignalSet;
use serde_json::Value;

use super::config::ServeConfig;
use super::reply::ApiError;

/// No index: this enum has no variants.
pub enum Evidence {}

/// Why `--index` cannot be served by this build.
/// [`ServeError::Evidence`](crate::ServeError::Evidence) wraps it with the directory's path.
#[derive(Debug, thiserror::Error)]
#[error("this intent-serve was built without the `index` feature, so --index cannot be served")]
pub struct NoIndex(
    /// The index directory asked for.
    pub std::path::PathBuf,
);

/// Why the index could not be opened for serving: in this build, always.
pub type OpenError = NoIndex;

impl Evidence {
    /// Refuses: there is no index in this build.
    pub fn open(
        _config: &ServeConfig,
        path: &std::path::Path,
        _defs: &SignalSet,
    ) -> Result<Evidence, OpenError> {
        Err(NoIndex(path.to_path_buf()))
    }

    /// Never called: no `Evidence` exists.
    pub fn analyzer(&self) -> &Analyzer {
        match *self {}
    }

    /// Never called: no `Evidence` exists.
    pub fn search(&self, _payload: &[u8]) -> Result<Value, ApiError> {
        match *self {}
    }

    /// Never called: no `Evidence` exists.
    pub fn observe(&self, _defs: &SignalSet, _event: &Event<'_>, _obs: &Observation) {
        match *self {}
    }

    /// Never called: no `Evidence` exists.
    pub fn close(&self) {
        match *self {}
    }
}
