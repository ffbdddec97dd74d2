//! The analyst commands that sit beside backtest and tune: converting public
//! labeled data sets into history.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub dataset: Dataset,
}

#[derive(Subcommand)]
pub enum Dataset {
    /// UCI Bank Marketing (`bank-additional.csv`): one account per client,
    /// CRM events for the client record, earlier campaigns and each call,
    /// and the subscription as the outcome (mapping: README, "Analyst's
    /// walk-through").
    BankMarketing {
        /// The `;`-separated CSV with its header line.
        csv: PathBuf,
        /// Directory for `events.jsonl` and `outcomes.jsonl` (created).
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn import_cmd(args: ImportArgs) -> Result<ExitCode> {
    let Dataset::BankMarketing { csv, out } = args.dataset;
    let text =
        std::fs::read_to_string(&csv).with_context(|| format!("cannot read {}", csv.display()))?;
    let converted = engine::datasets::bank_marketing::convert(&text).map_err(|errors| {
        for e in &errors {
            eprintln!("{}:{e}", csv.display());
        }
        anyhow::anyhow!("{} bad row(s) in {}", errors.len(), csv.display())
    })?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, values) in [
        ("events.jsonl", &converted.events),
        ("outcomes.jsonl", &converted.outcomes),
    ] {
        let path = out.join(name);
        if path.exists() && path == csv {
            bail!("refusing to overwrite the input {}", path.display());
        }
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        );
        for value in values.iter() {
            serde_json::to_writer(&mut file, value)?;
            file.write_all(b"\n")?;
        }
        file.flush()?;
    }
    eprintln!(
        "{} clients ({} subscribed, {} declined) → {} events in {}",
        converted.outcomes.len(),
        converted.subscribed,
        converted.declined,
        converted.events.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
