//! The client side, for trying the service without writing code:
//! `intent publish` (events from JSON-lines files, with `Nats-Msg-Id`),
//! `intent query` (the API endpoints) and `intent tail` (actions or dead
//! letters as they arrive).

use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_nats::jetstream::{self, consumer};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;

use super::subjects::Subjects;

/// Where an event line goes: its subject and its id (for `Nats-Msg-Id`).
/// Lines that are not valid events still get a subject, so that they reach
/// the engine and its dead-letter subject rather than vanish here.
pub fn route(subjects: &Subjects, line: &[u8]) -> (String, Option<String>) {
    #[derive(Deserialize)]
    struct Head {
        id: Option<serde_json::Value>,
        kind: Option<serde_json::Value>,
        account: Option<serde_json::Value>,
    }
    let head: Option<Head> = serde_json::from_slice(line).ok();
    let text = |v: &Option<serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let (id, kind, account) = match &head {
        Some(h) => (text(&h.id), text(&h.kind), text(&h.account)),
        None => (None, None, None),
    };
    let kind = kind
        .filter(|k| {
            intent_core::event::Kind::ALL
                .iter()
                .any(|known| known.as_str() == k)
        })
        .unwrap_or_else(|| "unknown".into());
    let subject = subjects.event(&kind, account.as_deref().unwrap_or("_"));
    (subject, id)
}

/// Summary of a publish run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Published {
    pub sent: u64,
    pub stored: u64,
    pub duplicates: u64,
}

/// Publishes every non-empty line of the readers. With JetStream, waits for
/// each to be stored (keeping up to `window` in flight) and counts those the
/// stream recognised as duplicates.
pub async fn publish_lines(
    client: &async_nats::Client,
    subjects: &Subjects,
    jetstream: bool,
    readers: Vec<Box<dyn BufRead + Send>>,
    window: usize,
) -> Result<Published> {
    let js = jetstream::new(client.clone());
    let mut summary = Published::default();
    let mut in_flight = std::collections::VecDeque::new();
    for reader in readers {
        for line in reader.split(b'\n') {
            let mut line = line.context("reading events")?;
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let (subject, id) = route(subjects, &line);
            let mut headers = HeaderMap::new();
            if let Some(id) = id.as_deref().filter(|id| !id.contains(char::is_control)) {
                headers.insert("Nats-Msg-Id", id);
            }
            let payload = Bytes::from(line);
            summary.sent += 1;
            if jetstream {
                let ack = js
                    .publish_with_headers(subject, headers, payload)
                    .await
                    .context("publishing to JetStream")?;
                in_flight.push_back(ack);
                if in_flight.len() >= window {
                    let ack = in_flight.pop_front().expect("non-empty").await.context(
                        "an event was not stored (is `intent serve` or the INTENT_EVENTS stream there?)",
                    )?;
                    summary.stored += 1;
                    summary.duplicates += ack.duplicate as u64;
                }
            } else {
                client
                    .publish_with_headers(subject, headers, payload)
                    .await
                    .context("publishing")?;
            }
        }
    }
    while let Some(ack) = in_flight.pop_front() {
        let ack = ack.await.context("an event was not stored")?;
        summary.stored += 1;
        summary.duplicates += ack.duplicate as u64;
    }
    client.flush().await.context("flushing")?;
    Ok(summary)
}

/// Sends one API request; a service error becomes an error naming its code.
pub async fn query(
    client: &async_nats::Client,
    subjects: &Subjects,
    endpoint: &str,
    body: serde_json::Value,
    timeout: Duration,
) -> Result<serde_json::Value> {
    let payload = Bytes::from(serde_json::to_vec(&body)?);
    let request = async_nats::Request::new()
        .payload(payload)
        .timeout(Some(timeout));
    let reply = client
        .send_request(subjects.api_endpoint(endpoint), request)
        .await
        .with_context(|| {
            format!(
                "no reply from {} (is `intent serve` running?)",
                subjects.api_endpoint(endpoint)
            )
        })?;
    if let Some(headers) = &reply.headers {
        if let Some(error) = headers.get("Nats-Service-Error") {
            let code = headers
                .get("Nats-Service-Error-Code")
                .map(|c| c.as_str().to_string())
                .unwrap_or_default();
            bail!("{endpoint} failed ({code}): {}", error.as_str());
        }
    }
    serde_json::from_slice(&reply.payload).context("the reply is not JSON")
}

/// Prints actions (or dead letters) as they arrive, one JSON line each. In
/// JetStream mode it reads the stream (from now, or from the start with
/// `from_start`); in core mode it subscribes. Stops after `limit` messages
/// when given.
pub async fn tail(
    client: &async_nats::Client,
    subject: String,
    stream: Option<String>,
    from_start: bool,
    limit: Option<u64>,
    out: &mut (dyn Write + Send),
) -> Result<u64> {
    let mut n = 0u64;
    let mut print = |subject: &str, headers: Option<&HeaderMap>, payload: &[u8]| -> Result<bool> {
        let mut line = String::new();
        if let Some(headers) = headers {
            if let Some(error) = headers.get("Intent-Error") {
                // Dead letters: say why, then the original bytes.
                let field = headers
                    .get("Intent-Error-Field")
                    .map(|f| f.as_str())
                    .unwrap_or("-");
                line.push_str(&format!(
                    "# {subject} field={field} error={}\n",
                    error.as_str()
                ));
            }
        }
        line.push_str(&String::from_utf8_lossy(payload));
        writeln!(out, "{line}")?;
        out.flush()?;
        n += 1;
        Ok(limit.is_some_and(|l| n >= l))
    };
    match stream {
        Some(stream) => {
            let js = jetstream::new(client.clone());
            let stream = js.get_stream(&stream).await.with_context(|| {
                format!("no stream {stream} (has `intent serve` run in jetstream mode?)")
            })?;
            let ordered = stream
                .create_consumer(consumer::pull::OrderedConfig {
                    filter_subject: subject,
                    deliver_policy: if from_start {
                        consumer::DeliverPolicy::All
                    } else {
                        consumer::DeliverPolicy::New
                    },
                    ..Default::default()
                })
                .await?;
            let mut messages = ordered.messages().await?;
            while let Some(message) = messages.next().await {
                let message = message?;
                if print(
                    message.subject.as_str(),
                    message.headers.as_ref(),
                    &message.payload,
                )? {
                    break;
                }
            }
        }
        None => {
            let mut sub = client.subscribe(subject).await?;
            while let Some(message) = sub.next().await {
                if print(
                    message.subject.as_str(),
                    message.headers.as_ref(),
                    &message.payload,
                )? {
                    break;
                }
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_routed_by_kind_and_account() {
        let s = Subjects::new("intent").unwrap();
        let (subject, id) = route(
            &s,
            br#"{"id":"e-1","kind":"email","account":"acme.cn","ts":"2026-01-01T00:00:00Z"}"#,
        );
        assert_eq!(subject, "intent.events.email.acme_cn");
        assert_eq!(id.as_deref(), Some("e-1"));
        // Invalid lines still travel, to be dead-lettered by the engine.
        assert_eq!(
            route(&s, b"garbage"),
            ("intent.events.unknown._".into(), None)
        );
        assert_eq!(
            route(&s, br#"{"kind":"fax","account":7}"#),
            ("intent.events.unknown._".into(), None)
        );
    }
}
