//! `loadgen`: open-loop load against `intent serve`, with the bare-NATS
//! floor measured in the same run. See README "For load-testers".
//!
//! ```sh
//! cargo build --release -p intent-cli --bin intent
//! cargo run --release -p benches --bin loadgen -- --spawn --floor --rate 10000 --duration 30s
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::Parser;

use benches::loadgen::measure::{self, RunConfig, Target};
use benches::loadgen::report::{self, Report, Row};
use benches::loadgen::spawn::{EngineProcess, NatsServer};
use benches::loadgen::workload::{self, WorkloadConfig};
use intent_analyst::synth::{Corpus, SynthConfig};
use intent_core::time::{parse_duration_ms, Timestamp};
use intent_serve::subjects::Subjects;

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Open-loop load against intent serve, beside the bare-NATS floor"
)]
struct Args {
    /// NATS server of a running engine (ignored with --spawn).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// Start a nats-server and `intent serve` for the run.
    #[arg(long)]
    spawn: bool,
    /// The engine's mode (passed to the spawned engine; reported).
    #[arg(long, default_value = "jetstream")]
    mode: String,
    /// The `intent` binary to spawn (default: next to this one).
    #[arg(long)]
    intent_bin: Option<PathBuf>,
    /// The nats-server binary to spawn (default: $NATS_SERVER_BIN or nats-server).
    #[arg(long)]
    nats_server_bin: Option<String>,
    /// Signal definitions (the engine's, to know which actions to expect).
    #[arg(long, default_value = "signal-defs")]
    signals: PathBuf,
    /// Events per second.
    #[arg(long, default_value_t = 10_000.0)]
    rate: f64,
    /// Run each of these rates in turn (comma-separated) and report the
    /// highest meeting --slo-p99 with nothing lost.
    #[arg(long, value_delimiter = ',')]
    sweep: Vec<f64>,
    /// How long each rate runs.
    #[arg(long, default_value = "30s")]
    duration: String,
    /// The p99 bound of the sweep.
    #[arg(long, default_value = "5ms")]
    slo_p99: String,
    /// Also run the same schedule against a trivial echo responder first.
    #[arg(long)]
    floor: bool,
    /// `intent.api.score` requests per second alongside the events.
    #[arg(long, default_value_t = 0.0)]
    query_rate: f64,
    #[arg(long, default_value_t = 10_000)]
    accounts: usize,
    #[arg(long, default_value_t = 1.1)]
    zipf: f64,
    #[arg(long, default_value = "web=80,email=15,transcript=5")]
    mix: String,
    /// Share of events built to carry intent (to fire rules: about one in
    /// twelve of them triggers an action, which is what latency is measured on).
    #[arg(long, default_value_t = 0.2)]
    intent_share: f64,
    /// Load before measuring (caches, lazily loaded dictionaries, TCP
    /// buffers), against the engine and the floor; not reported.
    #[arg(long, default_value = "3s")]
    warmup: String,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Text corpora (email-en.jsonl, ami-utterances.txt, zh-reviews.txt).
    #[arg(long, default_value = "fixtures/corpus")]
    corpus: PathBuf,
    /// The engine's allowed lateness (to compute the expected actions).
    #[arg(long, default_value = "10m")]
    lateness: String,
    /// How long to wait for the last answers.
    #[arg(long, default_value = "5s")]
    drain: String,
    #[arg(long, default_value = "intent")]
    subject_prefix: String,
    /// Write the report as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the histograms as an HdrHistogram interval log.
    #[arg(long)]
    hdr_log: Option<PathBuf>,
    /// Plot latency by percentile (SVG).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
}

fn main() {
    if let Err(err) = run(Args::parse()) {
        eprintln!("error: {err:#}");
        std::process::exit(2);
    }
}

fn duration(flag: &str, text: &str) -> Result<Duration> {
    let ms = parse_duration_ms(text).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))?;
    Ok(Duration::from_millis(ms as u64))
}

fn run(args: Args) -> Result<()> {
    let run_for = duration("duration", &args.duration)?;
    let drain = duration("drain", &args.drain)?;
    let warmup = duration("warmup", &args.warmup)?;
    let slo = duration("slo-p99", &args.slo_p99)?;
    let lateness_ms =
        parse_duration_ms(&args.lateness).map_err(|e| anyhow::anyhow!("--lateness: {e}"))?;
    let mix =
        intent_analyst::synth::parse_mix(&args.mix).map_err(|e| anyhow::anyhow!("--mix: {e}"))?;
    let rates = if args.sweep.is_empty() {
        vec![args.rate]
    } else {
        args.sweep.clone()
    };
    let subjects = Subjects::new(&args.subject_prefix).map_err(anyhow::Error::msg)?;
    let defs = Arc::new(
        intent_files::load_dir(&args.signals)
            .map_err(|e| anyhow::anyhow!("{}:\n{e}", args.signals.display()))?,
    );
    let corpus = Corpus::from_dir(&args.corpus)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let server_bin = args
        .nats_server_bin
        .clone()
        .or_else(|| std::env::var("NATS_SERVER_BIN").ok())
        .unwrap_or_else(|| "nats-server".into());
    // Kept alive for the whole run (dropped in reverse: engine, then server).
    let mut _server = None;
    let mut _engine = None;
    let nats = if args.spawn {
        let server = NatsServer::start(&server_bin)?;
        let url = server.url();
        let intent_bin = match &args.intent_bin {
            Some(path) => path.clone(),
            None => std::env::current_exe()?.with_file_name("intent"),
        };
        let engine_args: Vec<String> = vec![
            "--mode".into(),
            args.mode.clone(),
            "--signals".into(),
            args.signals.display().to_string(),
            "--lateness".into(),
            args.lateness.clone(),
        ];
        eprintln!(
            "started {} on {url}; starting {} serve --mode {}",
            NatsServer::version(&server_bin),
            intent_bin.display(),
            args.mode
        );
        _engine = Some(EngineProcess::start(
            &intent_bin,
            &url,
            &args.subject_prefix,
            &engine_args,
            &runtime,
        )?);
        _server = Some(server);
        url
    } else {
        args.nats.clone()
    };

    let mut rows = Vec::new();
    let mut engine_mode = args.mode.clone();
    for (k, &rate) in rates.iter().enumerate() {
        let build = |run_for: Duration, tag: &str| -> Result<workload::Workload> {
            let n_events = (rate * run_for.as_secs_f64()).round() as usize;
            let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
            let run_id = format!("{:x}{k}{tag}", now_ms % 0xffff_ffff);
            Ok(workload::build(
                &WorkloadConfig {
                    synth: SynthConfig {
                        seed: args.seed,
                        n_events,
                        n_accounts: args.accounts,
                        zipf: args.zipf,
                        mix,
                        intent_share: args.intent_share,
                        start: Timestamp(now_ms),
                        step_ms: 0,
                    },
                    rate,
                    run_id,
                    lateness_ms,
                },
                &corpus,
                Arc::clone(&defs),
                &subjects,
            ))
        };
        let config =
            |target: Target, query_rate: f64, run_for: Duration, progress: bool| RunConfig {
                nats: nats.clone(),
                target,
                rate,
                duration: run_for,
                query_rate,
                drain,
                prefix: args.subject_prefix.clone(),
                progress,
                spawn_responder: true,
            };
        if k == 0 && !warmup.is_zero() {
            eprintln!("warming up for {warmup:?} at {rate:.0}/s");
            let warm = build(warmup, "w")?;
            if args.floor {
                measure::run(&runtime, &warm, &config(Target::Floor, 0.0, warmup, false))?;
            }
            measure::run(
                &runtime,
                &warm,
                &config(Target::Engine, args.query_rate, warmup, false),
            )?;
        }
        let workload = build(run_for, "")?;
        let floor = if args.floor {
            let result = measure::run(
                &runtime,
                &workload,
                &config(Target::Floor, 0.0, run_for, !args.quiet),
            )?;
            std::thread::sleep(Duration::from_secs(1));
            Some(result)
        } else {
            None
        };
        let engine = measure::run(
            &runtime,
            &workload,
            &config(Target::Engine, args.query_rate, run_for, !args.quiet),
        )?;
        let mut row = Row::new(rate, floor, engine, slo.as_secs_f64() * 1000.0);
        if let Some(stats) = &row.engine.engine_stats {
            let version = stats["after"]["signals_version"].as_str().unwrap_or("?");
            if version != &*defs.version {
                row.warning = Some(format!(
                    "the engine runs signals version {version}, the expected actions were computed with {} (--signals, or its KV bucket)",
                    defs.version
                ));
            }
            if let Some(mode) = stats["after"]["mode"].as_str() {
                engine_mode = mode.to_string();
            }
        }
        rows.push(row);
        if k + 1 < rates.len() {
            settle(&runtime, &nats, &args.subject_prefix);
        }
    }
    let breaking_point = (rates.len() > 1)
        .then(|| {
            rows.iter()
                .filter(|r| r.meets_slo)
                .map(|r| r.rate)
                .fold(f64::NAN, f64::max)
        })
        .filter(|r| !r.is_nan());
    let report = Report {
        machine: machine(),
        nats_server: if args.spawn {
            NatsServer::version(&server_bin)
        } else {
            format!("server at {nats}")
        },
        mode: engine_mode,
        accounts: args.accounts,
        zipf: args.zipf,
        mix: args.mix.clone(),
        intent_share: args.intent_share,
        seed: args.seed,
        duration_s: run_for.as_secs_f64(),
        slo_p99_ms: slo.as_secs_f64() * 1000.0,
        rows,
        breaking_point,
    };
    report::print(&report, &mut std::io::stdout())?;
    if let Some(path) = &args.json {
        report::write_json(&report, path)?;
    }
    if let Some(path) = &args.hdr_log {
        report::write_hdr_log(&report, path)?;
    }
    if let Some(path) = &args.plot {
        report::write_plot(&report, path)?;
    }
    Ok(())
}

/// Waits until the engine has worked off what the last rate left (its
/// counters stop moving and nothing is pending), so rates do not bleed into
/// each other; at most 60 s.
fn settle(runtime: &tokio::runtime::Runtime, nats: &str, prefix: &str) {
    let Ok(client) = runtime.block_on(async_nats::connect(nats)) else {
        return;
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let Ok(stats) = runtime.block_on(measure::engine_stats(&client, prefix)) else {
            continue;
        };
        let now = (stats["events_in"].as_u64(), stats["actions_out"].as_u64());
        if last == Some(now) && stats["pending"].as_u64().unwrap_or(0) == 0 {
            break;
        }
        last = Some(now);
    }
    std::thread::sleep(Duration::from_secs(1));
}

/// Cores and CPU model, for the report.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("unknown CPU");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cores} cores, {model}")
}
