//! The `intent` command line: argument parsing, logging set-up and output;
//! all logic lives in the library.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use engine::replay::{replay_reader, Rejected};
use engine::signal_defs::SignalSet;
use engine::synth::{self, Corpus, SynthConfig};
use engine::time::{parse_duration_ms, Timestamp};
use engine::{Pipeline, PipelineConfig};

#[derive(Parser)]
#[command(
    name = "intent",
    version,
    about = "Real-time intent scoring: events in, scores and trigger actions out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline over JSON-lines event files (or - for stdin), with no
    /// broker: actions as JSON lines on stdout, a summary on stderr.
    Replay(ReplayArgs),
    /// Validate a signal-defs directory: print a summary, or every error with
    /// file:line and exit non-zero.
    Check {
        /// The directory to check.
        #[arg(default_value = "signal-defs")]
        dir: PathBuf,
    },
    /// Write a deterministic synthetic event stream as JSON lines.
    Synth(SynthArgs),
}

#[derive(Args)]
struct ReplayArgs {
    /// Event files (JSON lines); `-` or none reads stdin.
    files: Vec<PathBuf>,
    /// Signal definitions directory.
    #[arg(long, default_value = "signal-defs")]
    signals: PathBuf,
    /// Advance event time to this instant at the end (RFC 3339 or ms), so
    /// pending silence timers fire.
    #[arg(long)]
    until: Option<String>,
    /// Print this account's graph, score and explanation at the end (repeatable).
    #[arg(long)]
    explain: Vec<String>,
    /// How late an event may arrive and still be placed in time order.
    #[arg(long, default_value = "10m")]
    lateness: String,
    /// Print no summary.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct SynthArgs {
    #[arg(long, default_value_t = 10_000)]
    events: usize,
    #[arg(long, default_value_t = 1_000)]
    accounts: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 1.1)]
    zipf: f64,
    /// Shares of kinds, e.g. web=80,email=15,transcript=5.
    #[arg(long, default_value = "web=80,email=15,transcript=5")]
    mix: String,
    /// Share of events built to carry intent.
    #[arg(long, default_value_t = 0.05)]
    intent_share: f64,
    /// Directory of the text corpora.
    #[arg(long, default_value = "fixtures/corpus")]
    corpus: PathBuf,
}

/// mimalloc: the pipeline allocates many small, short-lived strings; it is
/// markedly faster than the system allocator at that (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Replay(args) => replay(args),
        Command::Check { dir } => check(&dir),
        Command::Synth(args) => synth_cmd(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn load_signals(dir: &Path) -> Result<SignalSet> {
    SignalSet::load(dir).map_err(|errors| {
        anyhow::anyhow!(
            "signal definitions in {} are invalid:\n{errors}",
            dir.display()
        )
    })
}

fn check(dir: &Path) -> Result<ExitCode> {
    match SignalSet::load(dir) {
        Ok(set) => {
            for warning in &set.warnings {
                eprintln!("warning: {warning}");
            }
            println!("{}", set.summary());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for error in &errors.0 {
                eprintln!("{error}");
            }
            eprintln!("{} error(s) in {}", errors.0.len(), dir.display());
            Ok(ExitCode::from(1))
        }
    }
}

fn parse_ts(text: &str) -> Result<Timestamp> {
    if let Ok(ms) = text.parse::<i64>() {
        return Timestamp::from_millis(ms).context("timestamp out of range");
    }
    Timestamp::parse_rfc3339(text)
        .with_context(|| format!("'{text}' is not RFC 3339 nor integer ms"))
}

fn replay(args: ReplayArgs) -> Result<ExitCode> {
    let defs = Arc::new(load_signals(&args.signals)?);
    let config = PipelineConfig {
        allowed_lateness_ms: parse_duration_ms(&args.lateness)
            .map_err(|e| anyhow::anyhow!("--lateness: {e}"))?,
        ..PipelineConfig::default()
    };
    let until = args.until.as_deref().map(parse_ts).transpose()?;
    let mut pipeline = Pipeline::new(defs, config);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let started = Instant::now();
    let sources: Vec<PathBuf> = if args.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.files.clone()
    };
    let total_bytes: u64 = sources
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let progress = (io::stderr().is_terminal() && total_bytes > 16 * 1024 * 1024 && !args.quiet)
        .then(|| {
            let bar = ProgressBar::new(total_bytes);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("valid template"),
            );
            bar
        });
    let mut write_error: Option<io::Error> = None;
    let mut n_lines = 0;
    let mut done_bytes = 0u64;
    for path in &sources {
        let (name, reader): (String, Box<dyn BufRead>) = if path.as_os_str() == "-" {
            ("stdin".into(), Box::new(BufReader::new(io::stdin().lock())))
        } else {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            (
                path.display().to_string(),
                Box::new(BufReader::with_capacity(1 << 16, file)),
            )
        };
        n_lines += replay_reader(
            &mut pipeline,
            &name,
            reader,
            |actions| {
                for action in actions {
                    if let Err(e) = writeln!(out, "{}", action.to_json_line()) {
                        write_error.get_or_insert(e);
                    }
                }
            },
            |r: Rejected| eprintln!("{}:{}: rejected: {}", r.source, r.line, r.error),
            |bytes| {
                if let Some(bar) = &progress {
                    bar.set_position(done_bytes + bytes);
                }
            },
        )
        .with_context(|| format!("reading {name}"))?;
        done_bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    }
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    // End of input: every event is in, so event time may advance to the last
    // event (and further with --until), firing due silence timers.
    let mut actions = Vec::new();
    pipeline.finish(&mut actions);
    if let Some(until) = until {
        pipeline.advance_to(until, &mut actions);
    }
    for action in &actions {
        writeln!(out, "{}", action.to_json_line())?;
    }
    if let Some(e) = write_error {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(e).context("writing actions");
        }
    }
    out.flush().ok();
    let elapsed = started.elapsed();
    for account in &args.explain {
        match pipeline.explain(account) {
            Some(explanation) => {
                eprintln!("\n{}", explanation.to_text());
                let graph = pipeline
                    .account_graph(account)
                    .expect("explained accounts exist");
                eprintln!("{}", serde_json::to_string_pretty(&graph)?);
            }
            None => eprintln!("\nno events for account {account}"),
        }
    }
    if !args.quiet {
        let stats = pipeline.stats();
        eprintln!(
            "\nread {n_lines} events: {} applied, {} rejected, {} duplicates, {} late, {} reordered",
            stats.applied, stats.rejected, stats.duplicates, stats.late, stats.reordered
        );
        for (reason, count) in &stats.rejected_by_reason {
            eprintln!("  rejected {count} × {reason}");
        }
        eprintln!(
            "{} actions ({} from silence timers, {} superseded by late events)",
            stats.actions, stats.timers_fired, stats.superseded
        );
        for (rule, count) in &stats.actions_by_rule {
            eprintln!("  {rule}: {count}");
        }
        let secs = elapsed.as_secs_f64();
        eprintln!(
            "{} accounts, wall time {:.3} s, {:.0} events/s, signals version {}",
            pipeline.graph().len(),
            secs,
            n_lines as f64 / secs.max(1e-9),
            pipeline.defs().version
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn synth_cmd(args: SynthArgs) -> Result<ExitCode> {
    let mut mix = [0u32; 3];
    for part in args.mix.split(',') {
        let (kind, share) = part
            .split_once('=')
            .with_context(|| format!("--mix: '{part}' is not kind=share"))?;
        let share: u32 = share
            .trim()
            .parse()
            .with_context(|| format!("--mix: bad share in '{part}'"))?;
        match kind.trim() {
            "web" => mix[0] = share,
            "email" => mix[1] = share,
            "transcript" => mix[2] = share,
            other => bail!("--mix: unknown kind '{other}' (web, email, transcript)"),
        }
    }
    let read = |name: &str| {
        let path = args.corpus.join(name);
        std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read corpus file {}", path.display()))
    };
    let corpus = Corpus::from_texts(
        &read("email-en.jsonl")?,
        &read("ami-utterances.txt")?,
        &read("zh-reviews.txt")?,
    );
    let config = SynthConfig {
        seed: args.seed,
        n_events: args.events,
        n_accounts: args.accounts,
        zipf: args.zipf,
        mix,
        intent_share: args.intent_share,
        ..SynthConfig::default()
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut result = Ok(());
    synth::generate(&config, &corpus, |event| {
        if result.is_ok() {
            result = writeln!(out, "{event}");
        }
    });
    match result.and_then(|_| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
