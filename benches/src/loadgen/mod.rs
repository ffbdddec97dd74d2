//! The `loadgen` load generator (see `src/bin/loadgen.rs`): workload,
//! open-loop measurement, the processes it can start, and the report.

pub mod measure;
pub mod report;
pub mod spawn;
pub mod workload;
