//! Live signal definitions: the `reload` request, the directory poller and
//! the KV-bucket watcher all end in `swap_in`, which compiles first and
//! swaps atomically only what is valid.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use futures_util::StreamExt;

use super::backoff::{backoff, next_delay};
use super::defs::{is_defs_key, DefsSource};
use super::state::Shared;
use intent_core::signal_defs::{DefError, DefErrors};

/// Compiles the sources as they are now and swaps them in when valid and
/// different. Returns the version in force and whether it changed.
fn swap_in(shared: &Shared, source: &mut DefsSource) -> Result<(String, bool), DefErrors> {
    let compiled = source.compile();
    match compiled {
        Ok(set) => {
            for warning in &set.warnings {
                tracing::warn!(%warning, "signal definitions");
            }
            if let Some(evidence) = &shared.evidence {
                let (now, built) = (&set.analyzer, evidence.analyzer());
                if now.language() != built.language() || now.prefix_fold() != built.prefix_fold() {
                    shared
                        .counters
                        .reload_failures
                        .fetch_add(1, Ordering::Relaxed);
                    let (file, line) = analyzer_section(source.dir());
                    let errors = DefErrors(vec![DefError {
                        file,
                        line,
                        message: format!(
                            "the analyzer cannot change from {} (prefix fold {}) to {} (prefix fold {}) while the evidence index is on: the index would be searched with other tokens than it holds; restart intent serve to rebuild it",
                            built.language(),
                            built.prefix_fold(),
                            now.language(),
                            now.prefix_fold()
                        ),
                    }]);
                    tracing::warn!("signal definitions refused:\n{errors}");
                    return Err(errors);
                }
            }
            let mut pipeline = shared.pipeline();
            let version = set.version.to_string();
            if *pipeline.defs().version == *version {
                return Ok((version, false));
            }
            let from = pipeline.defs().version.clone();
            pipeline.set_signals(Arc::new(set));
            shared.counters.reloads.fetch_add(1, Ordering::Relaxed);
            tracing::info!(from = %from, to = %version, "signal definitions swapped in");
            Ok((version, true))
        }
        Err(errors) => {
            shared
                .counters
                .reload_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(version_in_force = %shared.pipeline().defs().version, "signal definitions refused:\n{errors}");
            Err(errors)
        }
    }
}

/// Where `[analyzer]` is set: the first `.toml` file below `dir` (in the
/// order definitions are read) with that header, and its line.
fn analyzer_section(dir: &std::path::Path) -> (std::path::PathBuf, usize) {
    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "toml") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    files(dir, &mut paths);
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(i) = text.lines().position(|l| l.trim() == "[analyzer]") {
            return (path, i + 1);
        }
    }
    (dir.to_path_buf(), 0)
}

/// Re-reads the directory (with the KV overlay) now.
pub fn reload_from_dir(shared: &Shared) -> Result<(String, bool), DefErrors> {
    let mut source = shared.defs.lock().unwrap_or_else(|p| p.into_inner());
    swap_in(shared, &mut source)
}

/// Polls the directory's files (paths, sizes, modification times) and
/// reloads when they change. Polling rather than inotify: it also works on
/// the bind mounts and network volumes signal-defs often live on.
pub async fn watch_dir(shared: Arc<Shared>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        let mut source = shared.defs.lock().unwrap_or_else(|p| p.into_inner());
        if source.dir_changed() {
            // The outcome is logged; a refused change is retried only when
            // the files change again.
            let _ = swap_in(&shared, &mut source);
        }
    }
}

/// Watches every key of the bucket (from its current values on) and swaps
/// in each change that compiles; a change that does not is undone in the
/// overlay so the next good one applies on top of the version in force.
pub async fn watch_kv(shared: Arc<Shared>, store: kv::Store) {
    let (min, max) = (Duration::from_millis(500), Duration::from_secs(30));
    let mut delays = backoff(min, max);
    loop {
        let mut watch = match store.watch_with_history(">").await {
            Ok(watch) => {
                delays = backoff(min, max);
                watch
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot watch the signal-defs bucket; retrying");
                tokio::time::sleep(next_delay(&mut delays, max)).await;
                continue;
            }
        };
        while let Some(entry) = watch.next().await {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    tracing::warn!(error = %err, "signal-defs bucket watch failed; restarting it");
                    break;
                }
            };
            if !is_defs_key(&entry.key) {
                tracing::warn!(key = %entry.key, "ignoring a key that does not name a .toml file");
                continue;
            }
            let text = match entry.operation {
                kv::Operation::Put => match String::from_utf8(entry.value.to_vec()) {
                    Ok(text) => Some(text),
                    Err(_) => {
                        tracing::warn!(key = %entry.key, "ignoring a value that is not UTF-8");
                        continue;
                    }
                },
                kv::Operation::Delete | kv::Operation::Purge => None,
            };
            let mut source = shared.defs.lock().unwrap_or_else(|p| p.into_inner());
            let before = source.set_kv(&entry.key, text);
            if swap_in(&shared, &mut source).is_err() {
                source.restore_kv(before);
            }
        }
        tokio::time::sleep(next_delay(&mut delays, max)).await;
    }
}
