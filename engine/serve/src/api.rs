//! The request/reply API: a NATS micro service named `intent` whose
//! endpoints live under `<prefix>.api.` (`$SRV.PING`, `$SRV.INFO` and
//! `$SRV.STATS` come with the protocol). Each endpoint is a task; requests
//! are JSON, replies are JSON, errors are service errors with a code
//! ([`ApiError`]). Starting the service fails with a [`StartError`].

use std::sync::Arc;

use async_nats::service::{self, ServiceExt};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::reload::reload_from_dir;
use super::reply::parse;
pub use super::reply::ApiError;
use super::state::Shared;

/// Why the micro service could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The service itself was refused (e.g. the connection is gone).
    #[error("cannot start the API service")]
    Service(#[source] async_nats::Error),
    /// One endpoint could not be added.
    #[error("cannot add endpoint {name}")]
    Endpoint {
        /// The endpoint's name (one of [`ENDPOINTS`]).
        name: &'static str,
        #[source]
        source: async_nats::Error,
    },
}

/// The endpoints, by name.
pub const ENDPOINTS: &[(&str, &str)] = &[
    (
        "score",
        "{account}: score and the top contributing signals with evidence",
    ),
    ("graph", "{account}: the account's whole intent graph"),
    ("top", "{n, industry?}: the n highest-scoring accounts"),
    ("explain", "{account}: a human-readable explanation"),
    (
        "signals",
        "the version and summary of the signal definitions in force",
    ),
    (
        "reload",
        "re-read the signal-defs directory and swap it in when valid",
    ),
    ("stats", "counters and processing-latency percentiles"),
    (
        "search",
        "{query, account?, kind?, since?, snippets?, limit?}: evidence or talk tracks, ranked, highlighted (with --index)",
    ),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountRequest {
    account: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopRequest {
    #[serde(default = "default_n")]
    n: usize,
    #[serde(default)]
    industry: Option<String>,
}

fn default_n() -> usize {
    10
}

/// Answers one request (pure apart from `reload`, which reads the directory).
pub fn handle(shared: &Shared, endpoint: &str, payload: &[u8]) -> Result<Value, ApiError> {
    match endpoint {
        "score" => {
            let req: AccountRequest = parse(payload, "{\"account\": ...}")?;
            let pipeline = shared.pipeline();
            let explanation = pipeline
                .explain(&req.account)
                .ok_or_else(|| ApiError::not_found(&req.account))?;
            let mut signals = explanation.signals;
            signals.truncate(5);
            Ok(json!({
                "account": req.account,
                "score": explanation.score,
                "at": explanation.at,
                "industry": explanation.industry,
                "signals": signals,
                "signals_version": &*pipeline.defs().version,
            }))
        }
        "graph" => {
            let req: AccountRequest = parse(payload, "{\"account\": ...}")?;
            shared
                .pipeline()
                .account_graph(&req.account)
                .ok_or_else(|| ApiError::not_found(&req.account))
        }
        "explain" => {
            let req: AccountRequest = parse(payload, "{\"account\": ...}")?;
            let pipeline = shared.pipeline();
            let explanation = pipeline
                .explain(&req.account)
                .ok_or_else(|| ApiError::not_found(&req.account))?;
            Ok(
                json!({ "account": req.account, "text": explanation.to_text(), "explanation": explanation }),
            )
        }
        "top" => {
            let req: TopRequest = parse(payload, "{\"n\": ..., \"industry\": ...}")?;
            if req.n == 0 || req.n > 10_000 {
                return Err(ApiError::bad_request("n must be between 1 and 10000"));
            }
            let pipeline = shared.pipeline();
            let top: Vec<Value> = pipeline
                .top(req.n, req.industry.as_deref())
                .into_iter()
                .map(|(account, score)| json!({ "account": account, "score": score }))
                .collect();
            Ok(json!({ "at": pipeline.now(), "industry": req.industry, "accounts": top }))
        }
        "signals" => {
            let defs = Arc::clone(shared.pipeline().defs());
            let source = shared.defs.lock().unwrap_or_else(|p| p.into_inner());
            Ok(json!({
                "version": &*defs.version,
                "summary": defs.summary(),
                "signals": defs.signals.iter().map(|s| json!({"id": &*s.id, "weight": s.weight})).collect::<Vec<_>>(),
                "rules": defs.rules.iter().map(|r| &*r.id).collect::<Vec<_>>(),
                "directory": source.dir(),
                "kv_files": source.kv_keys(),
            }))
        }
        "reload" => match reload_from_dir(shared) {
            Ok((version, changed)) => Ok(json!({ "version": version, "changed": changed })),
            Err(errors) => Err(ApiError {
                code: 422,
                message: format!("definitions refused, version in force unchanged: {errors}"),
            }),
        },
        "stats" => Ok(shared.stats_json()),
        "search" => match &shared.evidence {
            Some(evidence) => evidence.search(payload),
            None => Err(ApiError {
                code: 501,
                message: "search is off: start intent serve with --index DIR".into(),
            }),
        },
        other => Err(ApiError::bad_request(format!("unknown endpoint '{other}'"))),
    }
}

/// A message as one header-safe line (line breaks become "; ").
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Starts the micro service and one task per endpoint.
pub async fn start(
    client: &async_nats::Client,
    shared: Arc<Shared>,
) -> Result<service::Service, StartError> {
    let service = client
        .service_builder()
        .description(
            "intent scoring engine: scores, intent graphs, explanations, live signal definitions",
        )
        .start("intent", env!("CARGO_PKG_VERSION"))
        .await
        .map_err(StartError::Service)?;
    let group = service.group(shared.subjects.api());
    for &(name, _) in ENDPOINTS {
        let mut endpoint = group
            .endpoint(name)
            .await
            .map_err(|source| StartError::Endpoint { name, source })?;
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            while let Some(request) = endpoint.next().await {
                // A bug in a handler answers 500 rather than ending the
                // endpoint's task (and every later request timing out).
                let call = {
                    let shared = Arc::clone(&shared);
                    let payload = request.message.payload.clone();
                    move || {
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            handle(&shared, name, &payload)
                        }))
                        .unwrap_or_else(|_| {
                            Err(ApiError {
                                code: 500,
                                message: format!("internal error in {name}"),
                            })
                        })
                    }
                };
                // A search reads the index from disk: off the thread that
                // consumes events.
                let result = if name == "search" {
                    tokio::task::spawn_blocking(call).await.unwrap_or_else(|_| {
                        Err(ApiError {
                            code: 500,
                            message: "internal error in search".into(),
                        })
                    })
                } else {
                    call()
                };
                let response = match result {
                    Ok(value) => Ok(Bytes::from(
                        serde_json::to_vec(&value).expect("JSON values serialize"),
                    )),
                    // The status travels in a header: one line.
                    Err(err) => Err(service::error::Error {
                        status: one_line(&err.message),
                        code: err.code,
                    }),
                };
                if let Err(err) = request.respond(response).await {
                    tracing::warn!(endpoint = name, error = %err, "could not reply");
                }
            }
        });
    }
    Ok(service)
}
