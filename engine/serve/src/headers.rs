//! NATS headers the service writes: dead letters' reasons and origins.

use async_nats::HeaderMap;

/// Text as a header value: one line, no control characters (async-nats
/// panics on a line break in a header value, and the text can come from
/// input, e.g. an `attrs` key).
pub(crate) fn header_value(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The headers of a dead letter: what was wrong and where it came from.
pub(crate) fn dead_letter_headers(
    error: &str,
    field: Option<&str>,
    origin: &str,
    seq: Option<u64>,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Intent-Error", header_value(error).as_str());
    if let Some(field) = field {
        headers.insert("Intent-Error-Field", header_value(field).as_str());
    }
    headers.insert("Intent-Subject", header_value(origin).as_str());
    if let Some(seq) = seq {
        headers.insert("Intent-Stream-Seq", seq.to_string().as_str());
        headers.insert("Nats-Msg-Id", format!("dlq-{seq}").as_str());
    }
    headers
}
