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
use serde::Serialize;

use intent_analyst::synth::{self, Corpus, SynthConfig};
use intent_core::time::{parse_duration_ms, Timestamp};
use intent_core::{Pipeline, PipelineConfig};
use intent_files::replay::{replay_reader, Rejected};
use intent_serve::ServeConfig;

mod history;
mod inputs;
mod search;

use inputs::load_signals;

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
    /// Replay history against won/lost outcomes: how well each rule, each
    /// signal and the score foretold them.
    Backtest(history::BacktestArgs),
    /// Fit signal weights on labeled history (logistic regression, held-out
    /// accounts); with --write, a new signal-defs directory with them.
    Tune(history::TuneArgs),
    /// Convert a public labeled data set into events and outcomes.
    Import(history::ImportArgs),
    /// Build the evidence and talk-track search index from event files.
    Index(search::IndexArgs),
    /// Search the evidence (e-mails, utterances) or, with --snippets, the
    /// talk tracks, ranked by relevance with matches highlighted.
    Search(search::SearchArgs),
    /// Write one self-contained HTML page with charts: score trajectories,
    /// firings per rule, and with outcomes the ROC curve, calibration and
    /// tune's learned weights.
    Report(history::ReportArgs),
    /// Run the engine as a NATS service (see README "Serving over NATS").
    Serve(Box<ServeArgs>),
    /// Publish events from JSON-lines files to NATS, with `Nats-Msg-Id`.
    Publish(PublishArgs),
    /// Ask the running service: score, graph, explain, top, signals, reload, stats.
    Query(QueryArgs),
    /// Print actions (or dead letters) as they arrive.
    Tail(TailArgs),
}

/// Connection settings shared by the NATS commands.
#[derive(Args, Clone, Serialize)]
struct ConnArgs {
    /// NATS server URL(s), comma-separated.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    nats: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    /// Also INTENT_NATS_PASSWORD (or INTENT_PASSWORD), which keeps it out of `ps`.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    /// Also INTENT_NATS_TOKEN (or INTENT_TOKEN).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// NKey seed file.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    nkey_file: Option<PathBuf>,
    /// Credentials (.creds) file.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    creds: Option<PathBuf>,
    /// CA certificate (PEM) to trust.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_ca: Option<PathBuf>,
    /// Client certificate (PEM), with --tls-key.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<PathBuf>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<PathBuf>,
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls_required: bool,
    /// Subject prefix (default intent).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    subject_prefix: Option<String>,
    /// TOML config file (the same as `intent serve --config`); flags override it.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<PathBuf>,
}

#[derive(Args, Serialize)]
struct ServeArgs {
    #[command(flatten)]
    #[serde(flatten)]
    conn: ConnArgs,
    /// Signal definitions directory.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    signals: Option<PathBuf>,
    /// jetstream (durable) or core (lowest latency, no durability).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
    /// How late an event may arrive and still be placed in time order.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    lateness: Option<String>,
    /// How long the event stream keeps events (the horizon of a rebuild).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    retention: Option<String>,
    /// KV bucket of signal-defs files ("" to not watch one).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    kv_bucket: Option<String>,
    /// Durable consumer name.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    durable: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    ack_wait: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_deliver: Option<i64>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_ack_pending: Option<i64>,
    /// Most events per batch.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    batch: Option<usize>,
    /// wall: silence timers also fire on the wall clock (real time); event:
    /// event time only (feeding history through the service).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    clock: Option<String>,
    /// How often the wall clock is checked against silence timers.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    clock_tick: Option<String>,
    /// How often the signal-defs directory is checked for changes (0s: never).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    watch_interval: Option<String>,
    /// Keep an evidence and talk-track index here and answer `search`.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<PathBuf>,
    /// How often new evidence becomes searchable.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    index_commit: Option<String>,
    /// Customer utterances raising this signal make talk-track snippets.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    talk_track_signal: Option<String>,
}

#[derive(Args)]
struct PublishArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Event files (JSON lines); `-` or none reads stdin.
    files: Vec<PathBuf>,
    /// Publish with core NATS (no JetStream acknowledgement).
    #[arg(long)]
    core: bool,
}

#[derive(Args)]
struct QueryArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// score, graph, explain (with an account), top [N], signals, reload, stats.
    endpoint: String,
    /// The account (score, graph, explain) or N (top).
    arg: Option<String>,
    /// top: only accounts of this industry.
    #[arg(long)]
    industry: Option<String>,
    /// Seconds to wait for the reply.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
}

#[derive(Args)]
struct TailArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Dead letters instead of actions.
    #[arg(long)]
    dlq: bool,
    /// Subscribe with core NATS instead of reading the JetStream stream.
    #[arg(long)]
    core: bool,
    /// Start from the first stored message rather than from now.
    #[arg(long)]
    all: bool,
    /// Stop after this many messages.
    #[arg(long, short = 'n')]
    limit: Option<u64>,
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
    let cli = Cli::parse();
    // The service logs its life cycle at info; one-shot commands only warn.
    let default_filter = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Replay(args) => replay(args),
        Command::Check { dir } => check(&dir),
        Command::Synth(args) => synth_cmd(args),
        Command::Backtest(args) => history::backtest_cmd(args),
        Command::Tune(args) => history::tune_cmd(args),
        Command::Import(args) => history::import_cmd(args),
        Command::Index(args) => search::index_cmd(args),
        Command::Search(args) => search::search_cmd(args),
        Command::Report(args) => history::report_cmd(args),
        Command::Serve(args) => serve_cmd(*args),
        Command::Publish(args) => publish_cmd(args),
        Command::Query(args) => query_cmd(args),
        Command::Tail(args) => tail_cmd(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn check(dir: &Path) -> Result<ExitCode> {
    match intent_files::load_dir(dir) {
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
    let mix = synth::parse_mix(&args.mix).map_err(|e| anyhow::anyhow!("--mix: {e}"))?;
    let corpus = Corpus::from_dir(&args.corpus)?;
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

/// The settings in layers: defaults, the config file (if any), INTENT_<KEY>
/// environment variables, then `flags` (see `intent_serve::config`).
fn layered_config(file: Option<&Path>, flags: &impl Serialize) -> Result<ServeConfig> {
    Ok(ServeConfig::load_with_process_env(file, flags)?)
}

fn serve_cmd(args: ServeArgs) -> Result<ExitCode> {
    let config = layered_config(args.conn.config.as_deref(), &args)?;
    config.validate()?;
    // One thread: the consume loop, the connection and the API share it, so
    // an event is read, applied and its actions written without hand-offs
    // between threads (measured: see BENCHMARKS.md, "Over NATS").
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(intent_serve::run(config))?;
    Ok(ExitCode::SUCCESS)
}

/// A client connection for the helper commands.
fn client_runtime(conn: &ConnArgs) -> Result<(tokio::runtime::Runtime, ServeConfig)> {
    let config = layered_config(conn.config.as_deref(), conn)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok((runtime, config))
}

async fn connect_client(config: &ServeConfig) -> Result<async_nats::Client> {
    let options = config.connect_options("intent-cli").await?;
    // The helpers fail fast instead of waiting for a server forever.
    let connect = options.connect(config.nats.as_str());
    let client = tokio::time::timeout(std::time::Duration::from_secs(5), connect)
        .await
        .map_err(|_| anyhow::anyhow!("cannot reach NATS at {} within 5 s", config.nats))??;
    // retry_on_initial_connect returns before the connection is up.
    let mut waited = 0;
    while client.connection_state() != async_nats::connection::State::Connected {
        if waited >= 50 {
            bail!("cannot reach NATS at {}", config.nats);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    Ok(client)
}

fn publish_cmd(args: PublishArgs) -> Result<ExitCode> {
    let (runtime, config) = client_runtime(&args.conn)?;
    let subjects = config.validate()?;
    let mut readers: Vec<Box<dyn BufRead + Send>> = Vec::new();
    if args.files.is_empty() || args.files.iter().any(|f| f.as_os_str() == "-") {
        readers.push(Box::new(BufReader::new(io::stdin())));
    }
    for path in args.files.iter().filter(|f| f.as_os_str() != "-") {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        readers.push(Box::new(BufReader::new(file)));
    }
    let summary = runtime.block_on(async {
        let client = connect_client(&config).await?;
        Ok::<_, anyhow::Error>(
            intent_serve::client::publish_lines(&client, &subjects, !args.core, readers, 1024)
                .await?,
        )
    })?;
    if args.core {
        eprintln!("published {} events (core NATS)", summary.sent);
    } else {
        eprintln!(
            "published {} events: {} stored, {} duplicates ignored by the stream",
            summary.sent,
            summary.stored - summary.duplicates,
            summary.duplicates
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn query_cmd(args: QueryArgs) -> Result<ExitCode> {
    let (runtime, config) = client_runtime(&args.conn)?;
    let subjects = config.validate()?;
    let body = match args.endpoint.as_str() {
        "score" | "graph" | "explain" => {
            let account = args
                .arg
                .clone()
                .with_context(|| format!("intent query {} ACCOUNT", args.endpoint))?;
            serde_json::json!({ "account": account })
        }
        "top" => {
            let n: usize = match &args.arg {
                Some(n) => n.parse().context("intent query top [N]: N is a number")?,
                None => 10,
            };
            serde_json::json!({ "n": n, "industry": args.industry })
        }
        "signals" | "reload" | "stats" => serde_json::json!({}),
        other => {
            bail!("unknown endpoint '{other}' (score, graph, explain, top, signals, reload, stats)")
        }
    };
    let timeout = std::time::Duration::from_secs_f64(args.timeout);
    let reply = runtime.block_on(async {
        let client = connect_client(&config).await?;
        Ok::<_, anyhow::Error>(
            intent_serve::client::query(&client, &subjects, &args.endpoint, body, timeout).await?,
        )
    });
    match reply {
        Ok(reply) => {
            let text = match (args.endpoint.as_str(), reply.get("text")) {
                ("explain", Some(serde_json::Value::String(text))) => text.clone(),
                _ => serde_json::to_string_pretty(&reply)?,
            };
            // A closed pipe (`| head`) is not an error.
            match writeln!(io::stdout(), "{text}") {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            Ok(ExitCode::from(1))
        }
    }
}

fn tail_cmd(args: TailArgs) -> Result<ExitCode> {
    let (runtime, config) = client_runtime(&args.conn)?;
    let subjects = config.validate()?;
    let (subject, stream) = if args.dlq {
        (subjects.dlq_filter(), config.dlq_stream.clone())
    } else {
        (subjects.actions_filter(), config.actions_stream.clone())
    };
    let stream = (!args.core).then_some(stream);
    let tailed = runtime.block_on(async {
        let client = connect_client(&config).await?;
        let mut out = io::stdout();
        Ok::<_, anyhow::Error>(
            intent_serve::client::tail(&client, subject, stream, args.all, args.limit, &mut out)
                .await,
        )
    })?;
    match tailed {
        // A closed pipe (`| head`) is not an error.
        Err(e) if e.is_broken_pipe() => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
        Ok(_) => Ok(ExitCode::SUCCESS),
    }
}
