//! What an API request gets back when it fails ([`ApiError`]), and how a
//! request body is read.

use serde::Deserialize;

/// An API failure: becomes a NATS service error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The service error code (HTTP-like: 400, 404, 422, 500, 501).
    pub code: usize,
    /// What went wrong, for the caller.
    pub message: String,
}

impl ApiError {
    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 400,
            message: message.into(),
        }
    }

    /// 404: no such account.
    pub fn not_found(account: &str) -> ApiError {
        ApiError {
            code: 404,
            message: format!("no events for account '{account}'"),
        }
    }
}

/// A request body as `T`; an empty body is `{}`.
pub(crate) fn parse<'a, T: Deserialize<'a>>(payload: &'a [u8], shape: &str) -> Result<T, ApiError> {
    let payload = if payload.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        payload
    };
    serde_json::from_slice(payload)
        .map_err(|e| ApiError::bad_request(format!("request must be JSON {shape}: {e}")))
}
