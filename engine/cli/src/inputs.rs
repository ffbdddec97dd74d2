//! What the commands read besides their flags: the signal definitions,
//! event files and outcome files, each opened with an error that names the
//! path.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Args;

use intent_core::time::parse_duration_ms;
use intent_core::{PipelineConfig, SignalSet};

/// The history a command replays: event files, the definitions to replay
/// them under, and the lateness allowed.
#[derive(Args)]
pub struct HistoryArgs {
    /// Event files (JSON lines, in time order).
    #[arg(long, required = true, num_args = 1..)]
    pub events: Vec<PathBuf>,
    /// Signal definitions directory.
    #[arg(long, default_value = "signal-defs")]
    pub signals: PathBuf,
    /// How late an event may arrive and still be placed in time order.
    #[arg(long, default_value = "10m")]
    pub lateness: String,
}

impl HistoryArgs {
    pub fn config(&self) -> Result<PipelineConfig> {
        Ok(PipelineConfig {
            allowed_lateness_ms: parse_duration_ms(&self.lateness)
                .map_err(|e| anyhow::anyhow!("--lateness: {e}"))?,
            ..PipelineConfig::default()
        })
    }

    /// The event files, opened in order.
    pub fn open(&self) -> Result<Vec<Box<dyn BufRead>>> {
        open_events(&self.events)
    }
}

/// The event files, opened in order.
pub fn open_events(paths: &[PathBuf]) -> Result<Vec<Box<dyn BufRead>>> {
    paths
        .iter()
        .map(|path| {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            Ok(Box::new(BufReader::with_capacity(1 << 16, file)) as Box<dyn BufRead>)
        })
        .collect()
}

pub fn read_outcomes(path: &Path) -> Result<Vec<intent_analyst::backtest::Outcome>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    intent_analyst::backtest::parse_outcomes(&text, &path.display().to_string()).map_err(|errors| {
        eprintln!("{errors}");
        anyhow::anyhow!("{} bad line(s) in {}", errors.0.len(), path.display())
    })
}

/// The signal definitions of `dir`, or every problem with them.
pub fn load_signals(dir: &Path) -> Result<SignalSet> {
    intent_files::load_dir(dir).map_err(|errors| {
        anyhow::anyhow!(
            "signal definitions in {} are invalid:\n{errors}",
            dir.display()
        )
    })
}
