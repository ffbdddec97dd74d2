//! The embedded, broker-free mode: JSON-lines events from any reader through
//! the pipeline, actions to a callback. Bad lines are reported with their line
//! number and reason and skipped; the run continues.

use std::io::{self, BufRead, Read};

use intent_core::actions::Action;
use intent_core::ingest::DecodeError;
use intent_core::pipeline::Pipeline;

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
    let limit = pipeline.config().limits.max_event_bytes;
    loop {
        line.clear();
        // Never buffer more than one event's limit of a line (+1 for the newline).
        let n = (&mut reader)
            .take(limit as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        bytes_read += n as u64;
        line_no += 1;
        if line.last() != Some(&b'\n') && line.len() > limit {
            let (skipped, newline) = skip_rest_of_line(&mut reader)?;
            bytes_read += skipped;
            let error = DecodeError::TooLarge {
                field: "event",
                size: line.len() + skipped as usize - usize::from(newline),
                limit,
            };
            n_read += 1;
            pipeline.count_rejected(&error);
            on_reject(Rejected {
                source: source.to_string(),
                line: line_no,
                error,
            });
            continue;
        }
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

/// Discards input up to and including the next newline; returns the bytes
/// skipped and whether a newline ended them.
fn skip_rest_of_line<R: BufRead>(reader: &mut R) -> io::Result<(u64, bool)> {
    let mut skipped = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((skipped, false));
        }
        match buf.iter().position(|b| *b == b'\n') {
            Some(pos) => {
                reader.consume(pos + 1);
                return Ok((skipped + pos as u64 + 1, true));
            }
            None => {
                let len = buf.len();
                reader.consume(len);
                skipped += len as u64;
            }
        }
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && (line[end - 1] == b'\n' || line[end - 1] == b'\r') {
        end -= 1;
    }
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use intent_core::{Pipeline, PipelineConfig};
    use std::sync::Arc;

    #[test]
    fn an_overlong_line_is_rejected_without_buffering_it_and_the_next_line_is_read() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../signal-defs");
        let config = PipelineConfig {
            limits: intent_core::ingest::Limits {
                max_event_bytes: 200,
                ..Default::default()
            },
            ..PipelineConfig::default()
        };
        let mut pipeline = Pipeline::new(Arc::new(crate::load_dir(&dir).unwrap()), config);
        let good = r#"{"id":"g","ts":1,"account":"a","kind":"web","url":"https://v.test/pricing"}"#;
        let input = format!("{}\n{good}\n", "x".repeat(10_000));
        let mut rejected = Vec::new();
        let n = replay_reader(
            &mut pipeline,
            "t",
            input.as_bytes(),
            |_| {},
            |r| rejected.push(r),
            |_| {},
        )
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].line, 1);
        assert_eq!(
            rejected[0].error.to_string(),
            "event too large: 10000 bytes > limit 200"
        );
        assert_eq!(pipeline.stats().applied, 1);
        assert_eq!(pipeline.stats().rejected, 1);
    }
}
