//! The evidence index of a serving engine (`intent serve --index DIR`).
//!
//! The consume loop builds each applied event's documents (pure, masked)
//! and hands them over a bounded channel to a writer thread, which owns the
//! tantivy writer and commits every `index_commit`. The loop never waits on
//! disk I/O; it waits only if the writer falls 64 Ki documents behind
//! (back-pressure rather than loss). `search` reads committed segments.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use intent_core::event::Event;
use intent_core::extract::{Analyzer, Observation};
use intent_core::signal_defs::SignalSet;
use intent_search::{
    EvidenceBuilder, EvidenceDoc, EvidenceIndex, EvidenceWriter, SearchError, SearchRequest,
};
use serde_json::Value;

use super::config::{Mode, ServeConfig};
use super::reply::{parse, ApiError};

/// Why the index could not be opened for serving.
pub type OpenError = SearchError;

/// Documents the loop may be ahead of the writer thread.
const QUEUE: usize = 65_536;

/// The index of a serving engine and its writer thread.
pub struct Evidence {
    builder: Mutex<(EvidenceBuilder, Vec<EvidenceDoc>)>,
    queue: Mutex<Option<SyncSender<EvidenceDoc>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    index: Arc<EvidenceIndex>,
    /// The analyzer the index was built with: definitions with another one
    /// are refused while the index is on.
    analyzer: Analyzer,
}

impl Evidence {
    /// Opens the index at `path` for serving: re-created in JetStream mode
    /// (the rebuild from the stream fills it), kept in core mode.
    pub fn open(
        config: &ServeConfig,
        path: &std::path::Path,
        defs: &SignalSet,
    ) -> Result<Evidence, OpenError> {
        let index = match config.mode {
            Mode::Core if path.join("intent-index.json").exists() => {
                EvidenceIndex::open(path, Some(&defs.analyzer))?
            }
            _ => EvidenceIndex::create(path, &defs.analyzer)?,
        };
        // One indexing thread: the machine's cores belong to the engine.
        let writer = index.writer(1, 32 << 20)?;
        tracing::info!(path = %path.display(), "evidence index open; search is on");
        Ok(Evidence::start(
            index,
            writer,
            EvidenceBuilder::new(&config.talk_track_signal),
            defs.analyzer.clone(),
            config.index_commit,
        ))
    }

    /// The analyzer the index was built with.
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// Answers a `search` request (JSON [`SearchRequest`]).
    pub fn search(&self, payload: &[u8]) -> Result<Value, ApiError> {
        let request: SearchRequest = parse(
            payload,
            r#"{"query": "...", "account"?, "kind"?, "since"?, "snippets"?, "limit"?}"#,
        )?;
        match self.index.search(&request) {
            Ok(results) => Ok(serde_json::to_value(results).expect("results serialise")),
            Err(SearchError::Query(message)) => Err(ApiError::bad_request(message)),
            Err(err) => Err(ApiError {
                code: 500,
                message: err.to_string(),
            }),
        }
    }

    /// Starts the writer thread.
    pub fn start(
        index: EvidenceIndex,
        writer: EvidenceWriter,
        builder: EvidenceBuilder,
        analyzer: Analyzer,
        commit_every: Duration,
    ) -> Evidence {
        let index = Arc::new(index);
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let thread = {
            let index = Arc::clone(&index);
            std::thread::Builder::new()
                .name("evidence-writer".into())
                .spawn(move || write_loop(&index, writer, rx, commit_every))
                .expect("can start a thread")
        };
        Evidence {
            builder: Mutex::new((builder, Vec::new())),
            queue: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(thread)),
            index,
            analyzer,
        }
    }

    /// Builds an applied event's documents and queues them for the writer.
    pub fn observe(&self, defs: &SignalSet, event: &Event<'_>, obs: &Observation) {
        let mut guard = self.builder.lock().unwrap_or_else(PoisonError::into_inner);
        let (builder, docs) = &mut *guard;
        docs.clear();
        builder.observe(defs, event, obs, docs);
        if docs.is_empty() {
            return;
        }
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = queue.as_ref() {
            for doc in docs.drain(..) {
                if tx.send(doc).is_err() {
                    tracing::error!(
                        "the evidence writer has stopped; evidence is no longer indexed"
                    );
                    break;
                }
            }
        }
    }

    /// Stops the writer after it has committed everything queued.
    pub fn close(&self) {
        drop(
            self.queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        if let Some(thread) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = thread.join();
        }
    }
}

fn write_loop(
    index: &EvidenceIndex,
    mut writer: EvidenceWriter,
    rx: Receiver<EvidenceDoc>,
    every: Duration,
) {
    let every = every.max(Duration::from_millis(20));
    let mut last_commit = Instant::now();
    let commit = |writer: &mut EvidenceWriter| {
        if writer.pending() == 0 {
            return;
        }
        match writer.commit().and_then(|()| index.refresh()) {
            Ok(()) => {}
            Err(err) => {
                tracing::error!(error = %err, "evidence index commit failed; search shows older evidence")
            }
        }
    };
    loop {
        match rx.recv_timeout(every) {
            Ok(doc) => {
                if let Err(err) = writer.add(&doc) {
                    tracing::error!(error = %err, "could not index a document");
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                commit(&mut writer);
                return;
            }
        }
        if last_commit.elapsed() >= every {
            commit(&mut writer);
            last_commit = Instant::now();
        }
    }
}
