//! Why `intent serve` could not start or had to stop ([`ServeError`]), and
//! where the other errors of this crate live.
//!
//! Each is a `thiserror` type whose variants say what went wrong, carry the
//! offending data (a URL, a stream, a path) and keep the error that caused
//! it as their `source`; their messages do not repeat the source, so that
//! printing the chain (`{:#}` with anyhow) tells the whole story once. Each
//! module that can fail has its own:
//!
//! - [`ConfigError`]: the settings, and the credentials files they name;
//! - [`SetupError`]: the streams, the consumer and the KV bucket, including
//!   a configuration the server silently changed;
//! - [`StartError`]: the micro service;
//! - [`evidence::OpenError`]: the evidence index;
//! - [`ClientError`](crate::client::ClientError): `publish`, `query`, `tail`;
//! - [`ApiError`](crate::api::ApiError): the answer to a failed API request.
//!
//! [`ServeError`] wraps the first three unchanged and adds what only
//! [`run`](crate::run) meets. None of these is built on the path of an
//! event: one bad event is dead-lettered or counted, never an error here.

use std::path::PathBuf;

use async_nats::jetstream::consumer::{self, pull};
use async_nats::jetstream::stream;
use intent_core::signal_defs::DefErrors;

use crate::api::StartError;
use crate::config::ConfigError;
use crate::evidence;
use crate::setup::SetupError;

/// Why [`run`](crate::run) did not start serving, or stopped other than on
/// a signal.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The settings are invalid, or a credentials file cannot be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The NATS connection could not be set up.
    #[error("cannot connect to NATS at {url}")]
    Connect {
        /// The server URL(s) from the settings.
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    /// A stream, the consumer or the KV bucket could not be created, read
    /// back or verified.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The signal-defs KV bucket could not be listed or read.
    #[error("cannot read the signal-defs bucket {bucket}")]
    DefsBucket {
        /// The bucket's name.
        bucket: String,
        #[source]
        source: async_nats::Error,
    },
    /// The signal definitions do not compile: every problem, with its file
    /// and line (data printed in the message rather than a source, as the
    /// list it is).
    #[error("signal definitions in {} are invalid:\n{errors}", dir.display())]
    Definitions {
        /// The signal-defs directory.
        dir: PathBuf,
        /// Every problem found.
        errors: DefErrors,
    },
    /// The evidence index (`--index`) could not be opened, or this build
    /// has none.
    #[error("cannot open the evidence index {}", path.display())]
    Evidence {
        /// The index directory.
        path: PathBuf,
        #[source]
        source: evidence::OpenError,
    },
    /// The request/reply API could not be started.
    #[error(transparent)]
    Api(#[from] StartError),
    /// A subscription the service needs was refused.
    #[error("cannot subscribe to {what} ({subject})")]
    Subscribe {
        /// What the subscription is for.
        what: &'static str,
        /// Its subject.
        subject: String,
        #[source]
        source: async_nats::client::SubscribeError,
    },
    /// The server did not confirm the subscriptions (core mode).
    #[error("cannot reach NATS")]
    Flush(#[source] async_nats::client::FlushError),
    /// The applied-sequence marker could not be read.
    #[error("cannot read the progress marker")]
    ReadProgress(#[source] stream::LastRawMessageError),
    /// The applied-sequence marker is not one.
    #[error("the progress marker is not valid JSON")]
    InvalidProgress(#[source] serde_json::Error),
    /// Events could not be read back from the event stream (to rebuild
    /// state, to catch up or to fill a gap in delivery).
    #[error("cannot read the event stream {stream}")]
    ReadEvents {
        /// The event stream's name.
        stream: String,
        #[source]
        source: async_nats::Error,
    },
    /// Pulling from the durable consumer could not start.
    #[error("cannot pull from the consumer {consumer}")]
    Pull {
        /// The consumer's durable name.
        consumer: String,
        #[source]
        source: consumer::StreamError,
    },
    /// The durable consumer was deleted while the engine ran.
    #[error(
        "the consumer {consumer} was deleted; start the engine again to recreate it (the marker skips what was applied)"
    )]
    ConsumerDeleted {
        /// The consumer's durable name.
        consumer: String,
        #[source]
        source: pull::MessagesError,
    },
}

/// An error and its sources, joined by ": " as anyhow's `{:#}` prints them.
#[cfg(test)]
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(source) = next {
        text.push_str(": ");
        text.push_str(&source.to_string());
        next = source.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use intent_core::signal_defs::DefError;

    use super::*;

    #[test]
    fn wrapped_errors_read_as_they_did_and_keep_their_source() {
        let missing = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = ServeError::from(ConfigError::Credentials {
            what: "credentials",
            path: "/etc/intent/engine.creds".into(),
            source: missing(),
        });
        assert!(
            matches!(&err, ServeError::Config(ConfigError::Credentials { path, .. })
                if path.ends_with("engine.creds")),
            "{err:?}"
        );
        assert_eq!(
            chain(&err),
            "cannot read credentials /etc/intent/engine.creds: no such file"
        );
        let io = err
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(io.map(|e| e.kind()), Some(std::io::ErrorKind::NotFound));

        let err = ServeError::from(SetupError::NotKv {
            stream: "KV_intent-signals".into(),
        });
        assert_eq!(
            chain(&err),
            "stream KV_intent-signals is not a KV bucket as the engine needs it"
        );
    }

    #[test]
    fn context_comes_first_then_the_source() {
        let err = ServeError::ReadEvents {
            stream: "INTENT_EVENTS".into(),
            source: "timed out".into(),
        };
        assert_eq!(
            chain(&err),
            "cannot read the event stream INTENT_EVENTS: timed out"
        );
        // A marker cut short.
        let cut = serde_json::from_str::<crate::jetstream_mode::Progress>(r#"{"applied": 7"#);
        let err = ServeError::InvalidProgress(cut.unwrap_err());
        let text = chain(&err);
        assert!(
            text.starts_with("the progress marker is not valid JSON: EOF while parsing"),
            "{text}"
        );
    }

    #[test]
    fn invalid_definitions_list_every_problem_with_its_file() {
        let err = ServeError::Definitions {
            dir: "signal-defs".into(),
            errors: DefErrors(vec![
                DefError {
                    file: "signal-defs/rules.toml".into(),
                    line: 3,
                    message: "unknown rule kind 'nonsense'".into(),
                },
                DefError {
                    file: "signal-defs/signals.toml".into(),
                    line: 9,
                    message: "weight must be positive".into(),
                },
            ]),
        };
        let text = chain(&err);
        assert!(
            text.starts_with("signal definitions in signal-defs are invalid:\n"),
            "{text}"
        );
        assert!(
            text.contains("rules.toml:3") && text.contains("signals.toml:9"),
            "{text}"
        );
    }
}
