//! Creating and verifying the JetStream streams, the durable consumer and
//! the signal-defs KV bucket the service runs on.
//!
//! Servers older than the client silently drop configuration fields they do
//! not know, so after every create or update the engine reads the
//! configuration back ([`verify_stream`], [`verify_consumer`]) and refuses
//! to run when a field it relies on differs: a [`SetupError`] that lists
//! each [`Mismatch`].

use std::fmt;
use std::time::Duration;

use async_nats::jetstream::context::{CreateStreamError, GetStreamError, KeyValueError};
use async_nats::jetstream::{self, consumer, consumer::pull, kv, stream};

use super::config::ServeConfig;
use super::subjects::Subjects;

/// Why the streams, the consumer or the KV bucket are not as the engine
/// needs them. Each names the stream, consumer or bucket; those caused by a
/// failed request keep the async-nats error as their source.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The server could not say whether the stream exists.
    #[error("cannot look up stream {stream}")]
    LookUpStream {
        /// The stream's name.
        stream: String,
        #[source]
        source: GetStreamError,
    },
    /// The stream did not exist and could not be created.
    #[error("cannot create stream {stream}")]
    CreateStream {
        /// The stream's name.
        stream: String,
        #[source]
        source: CreateStreamError,
    },
    /// The stream's configuration or state could not be read back.
    #[error("cannot read stream {stream}")]
    ReadStream {
        /// The stream's name.
        stream: String,
        #[source]
        source: stream::InfoError,
    },
    /// The server holds the stream with other settings than the engine asked
    /// for, even after an update: an older server dropped fields it does not
    /// know, or the stream was made by hand.
    #[error(
        "stream {stream} does not have the configuration the engine needs (an older server may have dropped fields it does not know, or the stream was made by hand):\n  {}",
        Mismatch::list(.mismatches)
    )]
    StreamConfig {
        /// The stream's name.
        stream: String,
        /// Every field that differs.
        mismatches: Vec<Mismatch>,
    },
    /// The durable consumer could not be created.
    #[error("cannot create consumer {consumer}")]
    CreateConsumer {
        /// The consumer's durable name.
        consumer: String,
        #[source]
        source: stream::ConsumerError,
    },
    /// The consumer's configuration or state could not be read back.
    #[error("cannot read consumer {consumer}")]
    ReadConsumer {
        /// The consumer's durable name.
        consumer: String,
        #[source]
        source: async_nats::Error,
    },
    /// The server holds the consumer with other settings than the engine
    /// asked for, even after an update.
    #[error(
        "consumer {consumer} does not have the configuration the engine needs (delete it to let the engine recreate it, or fix it by hand):\n  {}",
        Mismatch::list(.mismatches)
    )]
    ConsumerConfig {
        /// The consumer's durable name.
        consumer: String,
        /// Every field that differs.
        mismatches: Vec<Mismatch>,
    },
    /// The KV bucket's stream could neither be created nor found.
    #[error("cannot create KV bucket {bucket}")]
    CreateKv {
        /// The bucket's name.
        bucket: String,
        #[source]
        source: GetStreamError,
    },
    /// A stream has the KV bucket's name but not the settings of one.
    #[error("stream {stream} is not a KV bucket as the engine needs it")]
    NotKv {
        /// The stream's name (`KV_<bucket>`).
        stream: String,
    },
    /// The KV bucket exists but could not be opened.
    #[error("cannot open KV bucket {bucket}")]
    OpenKv {
        /// The bucket's name.
        bucket: String,
        #[source]
        source: KeyValueError,
    },
}

/// One setting the server holds otherwise than the engine asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The setting, by its name in the server's configuration.
    pub field: &'static str,
    /// What the engine asked for.
    pub want: String,
    /// What the server holds.
    pub got: String,
}

impl Mismatch {
    /// The mismatches, one per line (as [`SetupError`] prints them).
    fn list(mismatches: &[Mismatch]) -> String {
        mismatches
            .iter()
            .map(Mismatch::to_string)
            .collect::<Vec<_>>()
            .join("\n  ")
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: want {}, server has {}",
            self.field, self.want, self.got
        )
    }
}

/// The stream configurations the engine asks for.
pub struct StreamPlan {
    /// Events in: replayed to rebuild state, so kept for `retention`.
    pub events: stream::Config,
    /// Trigger actions out, de-duplicated by action id.
    pub actions: stream::Config,
    /// Dead letters: the original bytes with `Intent-Error` headers.
    pub dlq: stream::Config,
    /// The applied-sequence marker, one message per subject.
    pub progress: stream::Config,
}

impl StreamPlan {
    /// The four streams for these settings and subjects.
    pub fn new(config: &ServeConfig, subjects: &Subjects) -> StreamPlan {
        let base =
            |name: &str, subject: String, max_age: Duration, window: Duration| stream::Config {
                name: name.to_string(),
                subjects: vec![subject],
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                discard: stream::DiscardPolicy::Old,
                max_age,
                duplicate_window: window,
                num_replicas: config.replicas,
                ..Default::default()
            };
        StreamPlan {
            events: stream::Config {
                description: Some(
                    "intent engine: events in (intent.events.<kind>.<account>)".into(),
                ),
                ..base(
                    &config.events_stream,
                    subjects.events_filter(),
                    config.retention,
                    Duration::from_secs(120),
                )
            },
            actions: stream::Config {
                description: Some("intent engine: trigger actions out".into()),
                // Long enough to cover an engine restart: an action re-sent
                // after a crash has the same id and is stored once.
                ..base(
                    &config.actions_stream,
                    subjects.actions_filter(),
                    config.actions_retention,
                    Duration::from_secs(3600),
                )
            },
            dlq: stream::Config {
                description: Some(
                    "intent engine: dead letters (original bytes, Intent-Error headers)".into(),
                ),
                ..base(
                    &config.dlq_stream,
                    subjects.dlq_filter(),
                    config.actions_retention,
                    Duration::from_secs(3600),
                )
            },
            progress: stream::Config {
                description: Some("intent engine: applied-sequence marker".into()),
                max_messages_per_subject: 1,
                ..base(
                    &config.progress_stream,
                    subjects.progress(),
                    Duration::ZERO,
                    Duration::from_secs(120),
                )
            },
        }
    }
}

/// The durable consumer configuration the engine asks for.
pub fn consumer_plan(config: &ServeConfig, subjects: &Subjects) -> pull::Config {
    pull::Config {
        durable_name: Some(config.durable.clone()),
        description: Some("intent engine".into()),
        deliver_policy: consumer::DeliverPolicy::All,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: config.ack_wait,
        max_deliver: config.max_deliver,
        max_ack_pending: config.max_ack_pending,
        filter_subject: subjects.events_filter(),
        ..Default::default()
    }
}

/// Collects the fields whose wanted and held values differ.
#[derive(Default)]
struct Mismatches(Vec<Mismatch>);

impl Mismatches {
    /// Compares two values as they print.
    fn shown(&mut self, field: &'static str, want: String, got: String) {
        if want != got {
            self.0.push(Mismatch { field, want, got });
        }
    }

    /// Compares two values by their `Debug` form.
    fn debug<T: fmt::Debug>(&mut self, field: &'static str, want: &T, got: &T) {
        self.shown(field, format!("{want:?}"), format!("{got:?}"));
    }
}

/// Fields of a stream configuration the engine relies on that differ
/// between what it asked for and what the server holds.
pub fn stream_mismatches(want: &stream::Config, got: &stream::Config) -> Vec<Mismatch> {
    let mut m = Mismatches::default();
    m.debug("subjects", &want.subjects, &got.subjects);
    m.debug("retention", &want.retention, &got.retention);
    m.debug("storage", &want.storage, &got.storage);
    m.debug("discard", &want.discard, &got.discard);
    m.debug("max_age", &want.max_age, &got.max_age);
    m.debug(
        "duplicate_window",
        &want.duplicate_window,
        &got.duplicate_window,
    );
    // The server reports "no limit" as -1 whatever the request said.
    let limit = |n: i64| {
        if n <= 0 {
            "unlimited".to_string()
        } else {
            n.to_string()
        }
    };
    m.shown(
        "max_msgs_per_subject",
        limit(want.max_messages_per_subject),
        limit(got.max_messages_per_subject),
    );
    m.debug("num_replicas", &want.num_replicas, &got.num_replicas);
    m.0
}

/// Same for the consumer.
pub fn consumer_mismatches(want: &pull::Config, got: &consumer::Config) -> Vec<Mismatch> {
    let mut m = Mismatches::default();
    m.debug("durable_name", &want.durable_name, &got.durable_name);
    m.debug("deliver_policy", &want.deliver_policy, &got.deliver_policy);
    m.debug("ack_policy", &want.ack_policy, &got.ack_policy);
    m.debug("ack_wait", &want.ack_wait, &got.ack_wait);
    m.debug("max_deliver", &want.max_deliver, &got.max_deliver);
    m.debug(
        "max_ack_pending",
        &want.max_ack_pending,
        &got.max_ack_pending,
    );
    m.shown(
        "filter_subject",
        want.filter_subject.clone(),
        got.filter_subject.clone(),
    );
    m.shown(
        "push (deliver_subject)",
        "none".into(),
        got.deliver_subject.clone().unwrap_or_else(|| "none".into()),
    );
    m.0
}

/// Whether the stream is verified: every field the engine relies on as it
/// asked (`want`) in what the server holds (`held`).
pub fn verify_stream(want: &stream::Config, held: &stream::Config) -> Result<(), SetupError> {
    let mismatches = stream_mismatches(want, held);
    if mismatches.is_empty() {
        return Ok(());
    }
    Err(SetupError::StreamConfig {
        stream: want.name.clone(),
        mismatches,
    })
}

/// Same for the consumer.
pub fn verify_consumer(want: &pull::Config, held: &consumer::Config) -> Result<(), SetupError> {
    let mismatches = consumer_mismatches(want, held);
    if mismatches.is_empty() {
        return Ok(());
    }
    Err(SetupError::ConsumerConfig {
        consumer: want.durable_name.clone().unwrap_or_default(),
        mismatches,
    })
}

/// Whether a failed stream lookup means only that the stream does not exist
/// (so the engine creates it), rather than that the server could not answer.
pub fn is_stream_not_found(err: &GetStreamError) -> bool {
    matches!(err.kind(), jetstream::context::GetStreamErrorKind::JetStream(e)
        if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// Creates the stream or brings an existing one to the wanted settings, then
/// verifies what the server holds.
pub async fn ensure_stream(
    js: &jetstream::Context,
    want: &stream::Config,
) -> Result<stream::Stream, SetupError> {
    let look_up = |source| SetupError::LookUpStream {
        stream: want.name.clone(),
        source,
    };
    let read = |source| SetupError::ReadStream {
        stream: want.name.clone(),
        source,
    };
    let mut stream = match js.get_stream(&want.name).await {
        Ok(stream) => stream,
        Err(err) if is_stream_not_found(&err) => {
            tracing::info!(stream = %want.name, "creating stream");
            js.create_stream(want.clone())
                .await
                .map_err(|source| SetupError::CreateStream {
                    stream: want.name.clone(),
                    source,
                })?
        }
        Err(err) => return Err(look_up(err)),
    };
    let held = stream.info().await.map_err(read)?.config.clone();
    if !stream_mismatches(want, &held).is_empty() {
        tracing::info!(stream = %want.name, "updating stream settings");
        let mut update = held.clone();
        update.subjects = want.subjects.clone();
        update.max_age = want.max_age;
        update.duplicate_window = want.duplicate_window;
        update.max_messages_per_subject = want.max_messages_per_subject;
        update.discard = want.discard;
        update.num_replicas = want.num_replicas;
        if let Err(err) = js.update_stream(update).await {
            tracing::warn!(stream = %want.name, error = %err, "stream update refused");
        }
        stream = js.get_stream(&want.name).await.map_err(look_up)?;
    }
    let held = stream.info().await.map_err(read)?.config.clone();
    verify_stream(want, &held)?;
    Ok(stream)
}

/// Creates the durable consumer or brings it to the wanted settings, then
/// verifies it.
pub async fn ensure_consumer(
    stream: &stream::Stream,
    want: &pull::Config,
) -> Result<consumer::PullConsumer, SetupError> {
    let name = want.durable_name.clone().expect("durable");
    let read = |source: async_nats::Error| SetupError::ReadConsumer {
        consumer: name.clone(),
        source,
    };
    let mut consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(&name, want.clone())
        .await
        .map_err(|source| SetupError::CreateConsumer {
            consumer: name.clone(),
            source,
        })?;
    let held = consumer
        .info()
        .await
        .map_err(|e| read(e.into()))?
        .config
        .clone();
    if !consumer_mismatches(want, &held).is_empty() {
        tracing::info!(consumer = %name, "updating consumer settings");
        // Creating a durable that exists updates it where the server allows
        // the change (nats-server 2.9 has no separate update request).
        if let Err(err) = stream.create_consumer(want.clone()).await {
            tracing::warn!(consumer = %name, error = %err, "consumer update refused");
        }
        consumer = stream.get_consumer(&name).await.map_err(read)?;
    }
    let held = consumer
        .info()
        .await
        .map_err(|e| read(e.into()))?
        .config
        .clone();
    verify_consumer(want, &held)?;
    Ok(consumer)
}

/// The stream behind a KV bucket as the engine creates it.
fn kv_stream_plan(bucket: &str, replicas: usize) -> stream::Config {
    stream::Config {
        name: format!("KV_{bucket}"),
        description: Some("intent engine: signal-defs files, one key per file".into()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 5,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: replicas.max(1),
        ..Default::default()
    }
}

/// Whether a stream found under the bucket's name works as the bucket: it
/// keeps values, allows roll-ups and holds the bucket's subjects.
fn verify_kv_stream(want: &stream::Config, held: &stream::Config) -> Result<(), SetupError> {
    if held.max_messages_per_subject < 1 || !held.allow_rollup || held.subjects != want.subjects {
        return Err(SetupError::NotKv {
            stream: want.name.clone(),
        });
    }
    Ok(())
}

/// Opens the KV bucket, creating it when missing. The bucket's stream is
/// created directly (`KV_<bucket>`): async-nats's own bucket creation needs
/// account-info fields nats-server 2.9 does not send.
pub async fn ensure_kv(
    js: &jetstream::Context,
    bucket: &str,
    replicas: usize,
) -> Result<kv::Store, SetupError> {
    if let Ok(store) = js.get_key_value(bucket).await {
        return Ok(store);
    }
    let want = kv_stream_plan(bucket, replicas);
    match js.create_stream(want.clone()).await {
        Ok(_) => {}
        // Another engine may have created it meanwhile.
        Err(err) => tracing::debug!(error = %err, "creating KV stream"),
    }
    let mut stream = js
        .get_stream(&want.name)
        .await
        .map_err(|source| SetupError::CreateKv {
            bucket: bucket.to_string(),
            source,
        })?;
    let held = stream
        .info()
        .await
        .map_err(|source| SetupError::ReadStream {
            stream: want.name.clone(),
            source,
        })?
        .config
        .clone();
    verify_kv_stream(&want, &held)?;
    js.get_key_value(bucket)
        .await
        .map_err(|source| SetupError::OpenKv {
            bucket: bucket.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use async_nats::jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind};

    use super::*;
    use crate::error::chain;

    /// A JetStream API error as the server sends it.
    fn api_error(code: usize, err_code: u64, description: &str) -> jetstream::Error {
        serde_json::from_value(serde_json::json!({
            "code": code,
            "err_code": err_code,
            "description": description,
        }))
        .unwrap()
    }

    fn plan() -> (ServeConfig, StreamPlan, pull::Config) {
        let config = ServeConfig::default();
        let subjects = config.validate().unwrap();
        let plan = StreamPlan::new(&config, &subjects);
        let consumer = consumer_plan(&config, &subjects);
        (config, plan, consumer)
    }

    #[test]
    fn a_dropped_field_is_a_mismatch() {
        let (_, plan, want) = plan();
        assert!(stream_mismatches(&plan.events, &plan.events).is_empty());
        // What a server that does not know a field hands back.
        let mut held = plan.progress.clone();
        held.max_messages_per_subject = 0;
        assert_eq!(
            stream_mismatches(&plan.progress, &held),
            [Mismatch {
                field: "max_msgs_per_subject",
                want: "1".into(),
                got: "unlimited".into(),
            }]
        );

        let mut got = want.clone().into_consumer_config_for_test();
        assert!(consumer_mismatches(&want, &got).is_empty());
        got.max_ack_pending = 0;
        got.filter_subject = String::new();
        let fields: Vec<&str> = consumer_mismatches(&want, &got)
            .iter()
            .map(|m| m.field)
            .collect();
        assert_eq!(fields, ["max_ack_pending", "filter_subject"]);
    }

    #[test]
    fn verification_names_the_stream_and_every_field_the_server_changed() {
        let (_, plan, _) = plan();
        verify_stream(&plan.events, &plan.events).unwrap();
        // nats-server 2.9 drops max_msgs_per_subject it does not know of; a
        // stream made by hand may be in memory.
        let mut held = plan.progress.clone();
        held.max_messages_per_subject = -1;
        held.storage = stream::StorageType::Memory;
        let err = verify_stream(&plan.progress, &held).unwrap_err();
        let SetupError::StreamConfig { stream, mismatches } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(stream, "INTENT_PROGRESS");
        let fields: Vec<&str> = mismatches.iter().map(|m| m.field).collect();
        assert_eq!(fields, ["storage", "max_msgs_per_subject"]);
        assert_eq!(
            err.to_string(),
            "stream INTENT_PROGRESS does not have the configuration the engine needs \
             (an older server may have dropped fields it does not know, or the stream was made by hand):\n  \
             storage: want File, server has Memory\n  \
             max_msgs_per_subject: want 1, server has unlimited"
        );
    }

    #[test]
    fn a_consumer_changed_by_the_server_is_refused_with_its_name() {
        let (_, _, want) = plan();
        let held = want.clone().into_consumer_config_for_test();
        verify_consumer(&want, &held).unwrap();
        let mut pushed = held.clone();
        pushed.deliver_subject = Some("_INBOX.x".into());
        let err = verify_consumer(&want, &pushed).unwrap_err();
        assert!(
            matches!(&err, SetupError::ConsumerConfig { consumer, mismatches }
                if consumer == "intent-engine" && mismatches.len() == 1),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .ends_with(":\n  push (deliver_subject): want none, server has _INBOX.x"),
            "{err}"
        );
    }

    #[test]
    fn only_a_missing_stream_is_created() {
        let check = |kind: GetStreamErrorKind, expected: bool| {
            let err = GetStreamError::new(kind.clone());
            assert_eq!(is_stream_not_found(&err), expected, "{kind:?}");
        };
        check(
            GetStreamErrorKind::JetStream(api_error(404, 10059, "stream not found")),
            true,
        );
        // Any other answer is a failure to report, not a reason to create.
        check(
            GetStreamErrorKind::JetStream(api_error(503, 10039, "jetstream not enabled")),
            false,
        );
        check(GetStreamErrorKind::Request, false);
        check(GetStreamErrorKind::InvalidStreamName, false);
    }

    #[test]
    fn a_failed_request_keeps_the_server_answer_as_its_source() {
        let err = SetupError::CreateStream {
            stream: "INTENT_EVENTS".into(),
            source: CreateStreamError::new(CreateStreamErrorKind::JetStream(api_error(
                400,
                10052,
                "replicas > 1 not supported in non-clustered mode",
            ))),
        };
        assert_eq!(err.to_string(), "cannot create stream INTENT_EVENTS");
        let text = chain(&err);
        assert!(
            text.starts_with("cannot create stream INTENT_EVENTS: ")
                && text.contains(
                    "replicas > 1 not supported in non-clustered mode (code 400, error code 10052)"
                ),
            "{text}"
        );
    }

    #[test]
    fn a_stream_in_the_bucket_s_place_must_work_as_one() {
        let want = kv_stream_plan("intent-signals", 1);
        assert_eq!(want.name, "KV_intent-signals");
        verify_kv_stream(&want, &want).unwrap();
        let not_kv = [
            stream::Config {
                allow_rollup: false,
                ..want.clone()
            },
            stream::Config {
                max_messages_per_subject: 0,
                ..want.clone()
            },
            stream::Config {
                subjects: vec!["other.>".into()],
                ..want.clone()
            },
        ];
        for held in not_kv {
            let err = verify_kv_stream(&want, &held).unwrap_err();
            assert!(
                matches!(&err, SetupError::NotKv { stream } if stream == "KV_intent-signals"),
                "{err:?}"
            );
        }
    }

    trait ForTest {
        fn into_consumer_config_for_test(self) -> consumer::Config;
    }
    impl ForTest for pull::Config {
        fn into_consumer_config_for_test(self) -> consumer::Config {
            use async_nats::jetstream::consumer::IntoConsumerConfig;
            self.into_consumer_config()
        }
    }
}
