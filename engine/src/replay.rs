//! The embedded, broker-free mode: JSON-lines events from any reader through
//! the pipeline, actions to a callback. Bad lines are reported with their line
//! number and reason and skipped; the run continues.

use std::io::{self, BufRead};

use crate::actions::Action;
use crate::ingest::DecodeError;
use crate::pipeline::Pipeline;

/// A line that was rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub source: String,
    pub line: u64,
    pub error: DecodeError,
}

/// Reads JSON lines from `reader` into the pipeline. `on_actions` receives
/// the actions of each event as they are produced; `on_reject` each bad line;
/// `on_progress` the bytes read so far, every few thousand lines. Returns the
/// number of non-blank lines read.
pub fn replay_reader<R: BufRead>(
    pipeline: &mut Pipeline,
    source: &str,
    mut reader: R,
    mut on_actions: impl FnMut(&[Action]),
    mut on_reject: impl FnMut(Rejected),
    mut on_progress: impl FnMut(u64),
) -> io::Result<u64> {
    let mut line = Vec::with_capacity(4096);
    let mut actions = Vec::new();
    let mut line_no = 0u64;
    let mut n_read = 0u64;
    let mut bytes_read = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        bytes_read += n as u64;
        line_no += 1;
        let trimmed = trim_line(&line);
        if trimmed.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        n_read += 1;
        actions.clear();
        match pipeline.process_bytes(trimmed, &mut actions) {
            Ok(_) => {}
            Err(error) => on_reject(Rejected {
                source: source.to_string(),
                line: line_no,
                error,
            }),
        }
        if !actions.is_empty() {
            on_actions(&actions);
        }
        if line_no.is_multiple_of(4096) {
            on_progress(bytes_read);
        }
    }
    on_progress(bytes_read);
    Ok(n_read)
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && (line[end - 1] == b'\n' || line[end - 1] == b'\r') {
        end -= 1;
    }
    &line[..end]
}
