//! The history commands of the analyst toolkit: backtest, tune, report, and
//! importing public labeled data as history.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::inputs::{load_signals, read_outcomes, HistoryArgs};
use crate::search::{finish_index, observer, OptionalIndex};

#[derive(Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    history: HistoryArgs,
    /// Outcomes: JSON lines {"account", "outcome": "won"|"lost", "ts"}.
    #[arg(long)]
    outcomes: PathBuf,
    /// Take the score this many days before each outcome.
    #[arg(long, default_value_t = 14.0)]
    at_days: f64,
    /// Also run these definitions and print both side by side.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Print the report as JSON ({"report", "baseline"}).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    index: OptionalIndex,
}

#[derive(Args)]
pub struct TuneArgs {
    /// The history, and the signal definitions to start from.
    #[command(flatten)]
    history: HistoryArgs,
    /// Outcomes: JSON lines {"account", "outcome": "won"|"lost", "ts"}.
    #[arg(long)]
    outcomes: PathBuf,
    /// Features are taken this many days before each outcome.
    #[arg(long, default_value_t = 14.0)]
    at_days: f64,
    /// L2 penalty.
    #[arg(long, default_value_t = 1.0)]
    l2: f64,
    /// Share of accounts held out for the comparison.
    #[arg(long, default_value_t = 0.3)]
    holdout: f64,
    /// Seed of the account split.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Write a copy of --signals with the learned weights here (a new or
    /// empty directory; never the input).
    #[arg(long)]
    write: Option<PathBuf>,
    /// Print the fit as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    index: OptionalIndex,
}

pub fn backtest_cmd(args: BacktestArgs) -> Result<ExitCode> {
    let outcomes = read_outcomes(&args.outcomes)?;
    let config = args.history.config()?;
    let total_bytes: u64 = args
        .history
        .events
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let mut summary = None;
    let mut run = |dir: &Path, index: bool| -> Result<intent_analyst::backtest::Report> {
        let defs = Arc::new(load_signals(dir)?);
        let mut indexing = if index {
            args.index.start(&defs)?
        } else {
            None
        };
        let inputs = args.history.open()?;
        let progress = (io::stderr().is_terminal() && total_bytes > 16 * 1024 * 1024).then(|| {
            let bar = ProgressBar::new(total_bytes);
            bar.set_style(
                ProgressStyle::with_template("{msg} {bar:40} {bytes}/{total_bytes} eta {eta}")
                    .expect("valid template"),
            );
            bar.set_message(dir.display().to_string());
            bar
        });
        let mut none = ();
        let observer = observer(&mut indexing, &mut none);
        let history = intent_analyst::backtest::replay_history_observed(
            defs,
            config.clone(),
            inputs,
            &outcomes,
            args.at_days,
            |bytes| {
                if let Some(bar) = &progress {
                    bar.set_position(bytes);
                }
            },
            observer,
        )
        .context("reading events")?;
        if let Some(bar) = progress {
            bar.finish_and_clear();
        }
        if let Some(indexing) = indexing {
            summary = Some(indexing.finish(&outcomes, history.events_read)?);
        }
        Ok(intent_analyst::backtest::report(&history))
    };
    let report = run(&args.history.signals, true)?;
    let baseline = args
        .baseline
        .as_deref()
        .map(|dir| run(dir, false))
        .transpose()?;
    if let Some(summary) = summary {
        eprintln!("{summary}");
    }
    let text = if args.json {
        serde_json::to_string_pretty(
            &serde_json::json!({ "report": report, "baseline": baseline }),
        )?
    } else {
        intent_analyst::backtest::to_text(&report, baseline.as_ref())
    };
    match writeln!(io::stdout(), "{text}") {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

pub fn tune_cmd(args: TuneArgs) -> Result<ExitCode> {
    if !(0.0..1.0).contains(&args.holdout) || args.l2 < 0.0 {
        bail!("--holdout must be in [0, 1) and --l2 not negative");
    }
    let outcomes = read_outcomes(&args.outcomes)?;
    let defs = Arc::new(load_signals(&args.history.signals)?);
    let config = args.history.config()?;
    let inputs = args.history.open()?;
    let mut indexing = args.index.start(&defs)?;
    let history = intent_analyst::backtest::replay_history_observed(
        Arc::clone(&defs),
        config,
        inputs,
        &outcomes,
        args.at_days,
        |_| {},
        observer(&mut indexing, &mut ()),
    )
    .context("reading events")?;
    finish_index(indexing, &outcomes, history.events_read)?;
    let names: Vec<String> = defs.signals.iter().map(|s| s.id.to_string()).collect();
    let current: Vec<f64> = defs.signals.iter().map(|s| s.weight).collect();
    let fit = intent_analyst::tune::tune(
        &names,
        &current,
        &history.examples(),
        &intent_analyst::tune::TuneConfig {
            l2: args.l2,
            holdout: args.holdout,
            seed: args.seed,
        },
    );
    let mut out = String::new();
    use std::fmt::Write as _;
    let auc = |x: Option<f64>| x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
    if args.json {
        out = serde_json::to_string_pretty(&fit)?;
    } else {
        let _ = writeln!(
            out,
            "tune: {} accounts ({} for fitting, {} held out, seed {}), features {} days before the outcome, L2 {}",
            fit.train_accounts + fit.holdout_accounts,
            fit.train_accounts,
            fit.holdout_accounts,
            args.seed,
            args.at_days,
            args.l2
        );
        let _ = writeln!(
            out,
            "held-out ROC AUC: current weights {}, learned weights {} (learned on the fitting accounts: {})\n",
            auc(fit.holdout_auc_current),
            auc(fit.holdout_auc_learned),
            auc(fit.train_auc_learned)
        );
        let _ = writeln!(
            out,
            "{:<28} {:>9} {:>9} {:>9}",
            "signal", "current", "learned", "change"
        );
        for ((name, cur), new) in fit.signals.iter().zip(&fit.current).zip(&fit.learned) {
            let _ = writeln!(out, "{name:<28} {cur:>9.2} {new:>9.2} {:>+9.2}", new - cur);
        }
    }
    match writeln!(io::stdout(), "{out}") {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    if let Some(dir) = &args.write {
        let weights: std::collections::BTreeMap<String, f64> = fit
            .signals
            .iter()
            .cloned()
            .zip(fit.learned.iter().copied())
            .collect();
        let changes = intent_analyst::rewrite::write_weights(&args.history.signals, dir, &weights)?;
        eprintln!("wrote {} ({} lines changed):", dir.display(), changes.len());
        for change in &changes {
            eprintln!(
                "  {}:{}: {}  ->  {}",
                change.file.display(),
                change.line,
                change.before.trim(),
                change.after.trim()
            );
        }
        // The new set must pass what `intent check` checks.
        let set = intent_files::load_dir(dir)
            .map_err(|errors| anyhow::anyhow!("the written definitions do not load:\n{errors}"))?;
        eprintln!("{}", set.summary());
    }
    Ok(ExitCode::SUCCESS)
}

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
    let converted = intent_analyst::datasets::bank_marketing::convert(&text).map_err(|errors| {
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

#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub history: HistoryArgs,
    /// Outcomes, for the ROC curve, calibration, tables and tune.
    #[arg(long)]
    pub outcomes: Option<PathBuf>,
    /// Decision time: this many days before each outcome.
    #[arg(long, default_value_t = 14.0)]
    pub at_days: f64,
    /// Accounts whose score trajectories to draw (comma-separated);
    /// default: the --top highest-scoring.
    #[arg(long, value_delimiter = ',')]
    pub accounts: Vec<String>,
    #[arg(long, default_value_t = 6)]
    pub top: usize,
    /// L2 penalty, held-out share and seed of the tune comparison.
    #[arg(long, default_value_t = 1.0)]
    pub l2: f64,
    #[arg(long, default_value_t = 0.3)]
    pub holdout: f64,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Directory for report.html (created).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub index: OptionalIndex,
}

pub fn report_cmd(args: ReportArgs) -> Result<ExitCode> {
    if !(0.0..1.0).contains(&args.holdout) || args.l2 < 0.0 {
        bail!("--holdout must be in [0, 1) and --l2 not negative");
    }
    let defs = std::sync::Arc::new(load_signals(&args.history.signals)?);
    let outcomes = match &args.outcomes {
        Some(path) => read_outcomes(path)?,
        None => Vec::new(),
    };
    let input = intent_analyst::report::ReportInput {
        defs,
        config: args.history.config()?,
        outcomes: &outcomes,
        at_days: args.at_days,
        accounts: args.accounts,
        top: args.top,
        tune: intent_analyst::tune::TuneConfig {
            l2: args.l2,
            holdout: args.holdout,
            seed: args.seed,
        },
        signals_source: args.history.signals.display().to_string(),
    };
    let mut indexing = args.index.start(&input.defs)?;
    let data = intent_analyst::report::collect(
        &input,
        || args.history.open().map_err(std::io::Error::other),
        observer(&mut indexing, &mut ()),
    )
    .context("reading events")?;
    finish_index(indexing, &outcomes, data.events_read)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let path = args.out.join("report.html");
    std::fs::write(&path, intent_analyst::report::html::page(&data))
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "wrote {} ({} events, {} trajectories, {} rules)",
        path.display(),
        data.events_read,
        data.trajectories.len(),
        data.firings_over_time.by_rule.len()
    );
    Ok(ExitCode::SUCCESS)
}
