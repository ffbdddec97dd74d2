//! The client side, for trying the service without writing code:
//! `intent publish` (events from JSON-lines files, with `Nats-Msg-Id`),
//! `intent query` (the API endpoints) and `intent tail` (actions or dead
//! letters as they arrive). Each fails with a [`ClientError`].

use std::io::{BufRead, Write};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;

use super::reply::ApiError;
use super::subjects::Subjects;

/// Why a client command stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// An input file or stdin could not be read.
    #[error("reading events")]
    ReadEvents(#[source] std::io::Error),
    /// A line could not be handed to JetStream.
    #[error("publishing to JetStream")]
    PublishJetStream(#[source] jetstream::context::PublishError),
    /// JetStream did not confirm an event as stored.
    #[error("an event was not stored (is `intent serve` or the INTENT_EVENTS stream there?)")]
    NotStored(#[source] jetstream::context::PublishError),
    /// A line could not be published on core NATS.
    #[error("publishing")]
    Publish(#[source] async_nats::client::PublishError),
    /// What was published could not be flushed to the server.
    #[error("flushing")]
    Flush(#[source] async_nats::client::FlushError),
    /// No reply to an API request.
    #[error("no reply from {subject} (is `intent serve` running?)")]
    NoReply {
        /// The endpoint's subject.
        subject: String,
        #[source]
        source: async_nats::client::RequestError,
    },
    /// The service answered with an error: its code and message, as
    /// [`ApiError`] (code 0 when the reply carried none).
    #[error("{endpoint} failed ({}): {}", error.code, error.message)]
    Api {
        /// The endpoint asked.
        endpoint: String,
        /// The service error.
        error: ApiError,
    },
    /// The reply is not JSON.
    #[error("the reply is not JSON")]
    NotJson(#[source] serde_json::Error),
    /// The stream to tail is not there.
    #[error("no stream {stream} (has `intent serve` run in jetstream mode?)")]
    NoStream {
        /// The stream's name.
        stream: String,
        #[source]
        source: jetstream::context::GetStreamError,
    },
    /// The stream to tail could not be read.
    #[error("cannot read stream {stream}")]
    ReadStream {
        /// The stream's name.
        stream: String,
        #[source]
        source: async_nats::Error,
    },
    /// The subject to tail could not be subscribed to.
    #[error("cannot subscribe to {subject}")]
    Subscribe {
        /// The subject.
        subject: String,
        #[source]
        source: async_nats::client::SubscribeError,
    },
    /// The output could not be written (a closed pipe among others).
    #[error("cannot write the output")]
    Write(#[source] std::io::Error),
}

impl ClientError {
    /// Whether the output was closed by its reader (`intent tail | head`):
    /// not a failure of the command.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, ClientError::Write(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

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
    /// Lines published.
    pub sent: u64,
    /// Lines JetStream confirmed as stored (0 on core NATS).
    pub stored: u64,
    /// Of those stored, the ones the stream recognised as duplicates.
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
) -> Result<Published, ClientError> {
    let js = jetstream::new(client.clone());
    let mut summary = Published::default();
    let mut in_flight = std::collections::VecDeque::new();
    for reader in readers {
        for line in reader.split(b'\n') {
            let mut line = line.map_err(ClientError::ReadEvents)?;
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
                    .map_err(ClientError::PublishJetStream)?;
                in_flight.push_back(ack);
                if in_flight.len() >= window {
                    let ack = in_flight
                        .pop_front()
                        .expect("non-empty")
                        .await
                        .map_err(ClientError::NotStored)?;
                    summary.stored += 1;
                    summary.duplicates += ack.duplicate as u64;
                }
            } else {
                client
                    .publish_with_headers(subject, headers, payload)
                    .await
                    .map_err(ClientError::Publish)?;
            }
        }
    }
    while let Some(ack) = in_flight.pop_front() {
        let ack = ack.await.map_err(ClientError::NotStored)?;
        summary.stored += 1;
        summary.duplicates += ack.duplicate as u64;
    }
    client.flush().await.map_err(ClientError::Flush)?;
    Ok(summary)
}

/// Sends one API request; a service error becomes [`ClientError::Api`].
pub async fn query(
    client: &async_nats::Client,
    subjects: &Subjects,
    endpoint: &str,
    body: serde_json::Value,
    timeout: Duration,
) -> Result<serde_json::Value, ClientError> {
    let payload = Bytes::from(serde_json::to_vec(&body).expect("JSON values serialize"));
    let request = async_nats::Request::new()
        .payload(payload)
        .timeout(Some(timeout));
    let subject = subjects.api_endpoint(endpoint);
    let reply = client
        .send_request(subject.clone(), request)
        .await
        .map_err(|source| ClientError::NoReply { subject, source })?;
    if let Some(error) = reply.headers.as_ref().and_then(service_error) {
        return Err(ClientError::Api {
            endpoint: endpoint.to_string(),
            error,
        });
    }
    serde_json::from_slice(&reply.payload).map_err(ClientError::NotJson)
}

/// The service error a reply's headers carry, if any (its code is 0 when
/// the reply has no readable `Nats-Service-Error-Code`).
fn service_error(headers: &HeaderMap) -> Option<ApiError> {
    let message = headers.get("Nats-Service-Error")?;
    let code = headers
        .get("Nats-Service-Error-Code")
        .and_then(|c| c.as_str().trim().parse().ok())
        .unwrap_or(0);
    Some(ApiError {
        code,
        message: message.as_str().to_string(),
    })
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
) -> Result<u64, ClientError> {
    let mut n = 0u64;
    let mut print =
        |subject: &str, headers: Option<&HeaderMap>, payload: &[u8]| -> Result<bool, ClientError> {
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
            writeln!(out, "{line}").map_err(ClientError::Write)?;
            out.flush().map_err(ClientError::Write)?;
            n += 1;
            Ok(limit.is_some_and(|l| n >= l))
        };
    match stream {
        Some(stream) => {
            let js = jetstream::new(client.clone());
            let read = |source: async_nats::Error| ClientError::ReadStream {
                stream: stream.clone(),
                source,
            };
            let handle = js
                .get_stream(&stream)
                .await
                .map_err(|source| ClientError::NoStream {
                    stream: stream.clone(),
                    source,
                })?;
            let ordered = handle
                .create_consumer(consumer::pull::OrderedConfig {
                    filter_subject: subject,
                    deliver_policy: if from_start {
                        consumer::DeliverPolicy::All
                    } else {
                        consumer::DeliverPolicy::New
                    },
                    ..Default::default()
                })
                .await
                .map_err(|e| read(e.into()))?;
            let mut messages = ordered.messages().await.map_err(|e| read(e.into()))?;
            while let Some(message) = messages.next().await {
                let message = message.map_err(|e| read(e.into()))?;
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
            let mut sub = client
                .subscribe(subject.clone())
                .await
                .map_err(|source| ClientError::Subscribe { subject, source })?;
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

    #[test]
    fn a_service_error_in_the_reply_headers_becomes_an_api_error() {
        let check = |headers: &[(&str, &str)], expected: Option<ApiError>| {
            let mut map = HeaderMap::new();
            for &(name, value) in headers {
                map.insert(name, value);
            }
            assert_eq!(service_error(&map), expected, "{headers:?}");
        };
        check(
            &[
                ("Nats-Service-Error", "no events for account 'nobody'"),
                ("Nats-Service-Error-Code", "404"),
            ],
            Some(ApiError::not_found("nobody")),
        );
        check(
            &[("Nats-Service-Error", "broken")],
            Some(ApiError {
                code: 0,
                message: "broken".into(),
            }),
        );
        check(&[("Nats-Msg-Id", "x")], None);
        check(&[], None);
    }

    #[test]
    fn a_failed_query_names_the_endpoint_and_the_code() {
        let err = ClientError::Api {
            endpoint: "score".into(),
            error: ApiError::not_found("nobody"),
        };
        assert_eq!(
            err.to_string(),
            "score failed (404): no events for account 'nobody'"
        );
    }

    #[test]
    fn only_a_closed_output_is_a_broken_pipe() {
        let closed = ClientError::Write(std::io::ErrorKind::BrokenPipe.into());
        assert!(closed.is_broken_pipe());
        let full = ClientError::Write(std::io::Error::other("disk full"));
        assert!(!full.is_broken_pipe());
        // A broken pipe reading input is a failure.
        let input = ClientError::ReadEvents(std::io::ErrorKind::BrokenPipe.into());
        assert!(!input.is_broken_pipe());
    }
}
