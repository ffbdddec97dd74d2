//! The evidence index on the command line: building it (alone, or while
//! backtest, tune and report replay history) and searching it.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Args;

use crate::inputs::{load_signals, read_outcomes, HistoryArgs};

/// Where the commands of the analyst toolkit keep the evidence index.
pub const DEFAULT_INDEX: &str = "intent-index";

/// Index options shared by `index` and `backtest`.
#[derive(Args, Clone)]
pub struct IndexOpts {
    /// The evidence and talk-track index directory (re-created).
    #[arg(long, default_value = DEFAULT_INDEX)]
    pub index: PathBuf,
    /// Customer utterances raising this signal make talk-track snippets.
    #[arg(long, default_value = intent_search::evidence::DEFAULT_TALK_TRACK_SIGNAL)]
    pub talk_track_signal: String,
}

/// The evidence index that backtest, tune and report build as they replay.
#[derive(Args, Clone)]
pub struct OptionalIndex {
    #[command(flatten)]
    pub opts: IndexOpts,
    /// Do not build the evidence index.
    #[arg(long)]
    pub no_index: bool,
}

impl OptionalIndex {
    pub fn start(&self, defs: &intent_core::SignalSet) -> Result<Option<Indexing>> {
        (!self.no_index)
            .then(|| Indexing::start(&self.opts, defs))
            .transpose()
    }
}

/// Finishes an index built during a replay and reports it on stderr.
pub fn finish_index(
    indexing: Option<Indexing>,
    outcomes: &[intent_analyst::backtest::Outcome],
    events: u64,
) -> Result<()> {
    if let Some(indexing) = indexing {
        eprintln!("{}", indexing.finish(outcomes, events)?);
    }
    Ok(())
}

/// The index's observer, or one that does nothing.
pub fn observer<'a>(
    indexing: &'a mut Option<Indexing>,
    none: &'a mut (),
) -> &'a mut dyn intent_analyst::backtest::ReplayObserver {
    match indexing {
        Some(indexing) => &mut indexing.sink,
        None => none,
    }
}

#[derive(Args)]
pub struct IndexArgs {
    #[command(flatten)]
    pub history: HistoryArgs,
    /// Outcomes (JSON lines {"account", "outcome", "ts"}), for talk-track win rates.
    #[arg(long)]
    pub outcomes: Option<PathBuf>,
    #[command(flatten)]
    pub opts: IndexOpts,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct SearchArgs {
    /// Words or phrases ("…" for an exact phrase; a OR b; -c excludes).
    pub query: String,
    #[arg(long, default_value = DEFAULT_INDEX)]
    pub index: PathBuf,
    #[arg(long)]
    pub account: Option<String>,
    /// email or transcript.
    #[arg(long)]
    pub kind: Option<String>,
    /// Only since this long before the newest indexed event (e.g. 30d), or
    /// since an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Search the talk-track snippets (rep line and value-confirming answer).
    #[arg(long)]
    pub snippets: bool,
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

/// An index being filled during a replay.
pub struct Indexing {
    pub sink: intent_search::EvidenceSink,
    pub index: intent_search::EvidenceIndex,
    started: std::time::Instant,
}

impl Indexing {
    pub fn start(opts: &IndexOpts, defs: &intent_core::SignalSet) -> Result<Indexing> {
        if !defs
            .signals
            .iter()
            .any(|s| *s.id == *opts.talk_track_signal)
        {
            eprintln!(
                "note: no signal '{}' in these definitions: no talk-track snippets",
                opts.talk_track_signal
            );
        }
        let index = intent_search::EvidenceIndex::create(&opts.index, &defs.analyzer)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let writer = index.writer(threads, 64 << 20)?;
        let sink = intent_search::EvidenceSink::new(
            intent_search::EvidenceBuilder::new(&opts.talk_track_signal),
            writer,
        );
        Ok(Indexing {
            sink,
            index,
            started: std::time::Instant::now(),
        })
    }

    /// Adds the outcomes, commits, and returns the summary.
    pub fn finish(
        mut self,
        outcomes: &[intent_analyst::backtest::Outcome],
        events: u64,
    ) -> Result<IndexSummary> {
        if let Some(e) = self.sink.error.take() {
            return Err(e.into());
        }
        for o in outcomes {
            self.sink.add(&intent_search::EvidenceDoc::Outcome(
                intent_search::evidence::OutcomeDoc {
                    account: o.account.clone(),
                    won: o.won,
                    ts: o.ts,
                },
            ))?;
        }
        self.sink.writer.commit()?;
        self.index.refresh()?;
        let seconds = self.started.elapsed().as_secs_f64();
        let stats = self.index.stats()?;
        let m = self.sink.builder.masked;
        Ok(IndexSummary {
            path: self.index.path().display().to_string(),
            events,
            evidence: stats.evidence,
            snippets: stats.snippets,
            outcomes: stats.outcomes,
            bytes: stats.bytes,
            seconds,
            masked_emails: m.email,
            masked_phones: m.phone,
            masked_id_numbers: m.id_number,
            masked_bank_cards: m.bank_card,
        })
    }
}

#[derive(serde::Serialize)]
pub struct IndexSummary {
    pub path: String,
    pub events: u64,
    pub evidence: u64,
    pub snippets: u64,
    pub outcomes: u64,
    pub bytes: u64,
    /// Replay, indexing and commit, wall clock.
    pub seconds: f64,
    pub masked_emails: u32,
    pub masked_phones: u32,
    pub masked_id_numbers: u32,
    pub masked_bank_cards: u32,
}

impl std::fmt::Display for IndexSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let docs = self.evidence + self.snippets;
        write!(
            f,
            "index {}: {} texts, {} talk-track snippets, {} outcomes from {} events in {:.2} s \
             ({:.0} texts/s), {:.1} MB on disk ({:.0} B a text); masked {} e-mail addresses, \
             {} phone numbers, {} ID numbers, {} card numbers",
            self.path,
            self.evidence,
            self.snippets,
            self.outcomes,
            self.events,
            self.seconds,
            docs as f64 / self.seconds.max(1e-9),
            self.bytes as f64 / 1e6,
            self.bytes as f64 / docs.max(1) as f64,
            self.masked_emails,
            self.masked_phones,
            self.masked_id_numbers,
            self.masked_bank_cards
        )
    }
}

pub fn search_cmd(args: SearchArgs) -> Result<ExitCode> {
    let index = intent_search::EvidenceIndex::open(&args.index, None).with_context(|| {
        format!(
            "build it first: intent index --events … --index {}",
            args.index.display()
        )
    })?;
    let results = index.search(&intent_search::SearchRequest {
        query: args.query,
        account: args.account,
        kind: args.kind,
        since: args.since,
        snippets: args.snippets,
        limit: args.limit,
    })?;
    let text = if args.json {
        serde_json::to_string_pretty(&results)?
    } else {
        search_text(
            &results,
            std::io::IsTerminal::is_terminal(&std::io::stdout()),
        )
    };
    match writeln!(std::io::stdout(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// A highlighted fragment for the terminal: control characters in the
/// prospect's text (line breaks, escape sequences that could drive the
/// terminal) become spaces of the same byte length, so the match ranges
/// still hold; then the matches are wrapped in `open` … `close`.
fn printable(h: &intent_search::index::Highlight, open: &str, close: &str) -> String {
    let mut fragment = String::with_capacity(h.fragment.len());
    for c in h.fragment.chars() {
        if c.is_control() {
            fragment.extend(std::iter::repeat_n(' ', c.len_utf8()));
        } else {
            fragment.push(c);
        }
    }
    intent_search::index::Highlight {
        fragment,
        matches: h.matches.clone(),
    }
    .marked(open, close)
}

/// Hits for a terminal: matches in bold (or between ** on a pipe).
fn search_text(results: &intent_search::SearchResults, tty: bool) -> String {
    use std::fmt::Write as _;
    let (open, close) = if tty {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("**", "**")
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} match(es) for '{}'{}",
        results.total,
        results.query,
        results
            .since
            .map(|t| format!(" since {t}"))
            .unwrap_or_default()
    );
    for (i, hit) in results.hits.iter().enumerate() {
        let _ = writeln!(
            out,
            "\n{}. {} {} {} {}{}  (relevance {:.2})",
            i + 1,
            hit.ts,
            hit.account,
            hit.kind,
            hit.event_id,
            hit.meeting_id
                .as_deref()
                .map(|m| format!(" meeting {m}"))
                .unwrap_or_default(),
            hit.score
        );
        if let Some(contact) = &hit.contact {
            let title = hit
                .contact_title
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            let _ = writeln!(out, "   contact {contact}{title}");
        }
        if let Some(rep) = &hit.rep_text {
            let _ = writeln!(out, "   rep:      {}", printable(rep, open, close));
            let _ = writeln!(out, "   customer: {}", printable(&hit.text, open, close));
        } else {
            let _ = writeln!(out, "   {}", printable(&hit.text, open, close));
        }
        if !hit.signals.is_empty() {
            let _ = writeln!(out, "   signals: {}", hit.signals.join(", "));
        }
        if !hit.tags.is_empty() {
            let _ = writeln!(out, "   tags: {}", hit.tags.join(", "));
        }
        if let Some(track) = &hit.track {
            let rate = track
                .win_rate
                .map(|r| format!("win rate {:.0} %", r * 100.0))
                .unwrap_or_else(|| "no outcome yet".into());
            let _ = writeln!(
                out,
                "   talk track used with {} account(s): {} won, {} lost, {rate}",
                track.accounts, track.won, track.lost
            );
        }
    }
    out
}

pub fn index_cmd(args: IndexArgs) -> Result<ExitCode> {
    let defs = std::sync::Arc::new(load_signals(&args.history.signals)?);
    let outcomes = match &args.outcomes {
        Some(path) => read_outcomes(path)?,
        None => Vec::new(),
    };
    let mut indexing = Indexing::start(&args.opts, &defs)?;
    let history = intent_analyst::backtest::replay_history_observed(
        std::sync::Arc::clone(&defs),
        args.history.config()?,
        args.history.open()?,
        &outcomes,
        0.0,
        |_| {},
        &mut indexing.sink,
    )
    .context("reading events")?;
    let summary = indexing.finish(&outcomes, history.events_read)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        eprintln!("{summary}");
    }
    Ok(ExitCode::SUCCESS)
}
