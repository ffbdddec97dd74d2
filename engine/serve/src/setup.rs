//! Creating and verifying the JetStream streams, the durable consumer and
//! the signal-defs KV bucket the service runs on.
//!
//! Servers older than the client silently drop configuration fields they do
//! not know, so after every create or update the engine reads the
//! configuration back and refuses to run when a field it relies on differs.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_nats::jetstream::{self, consumer, consumer::pull, kv, stream};

use super::config::ServeConfig;
use super::subjects::Subjects;

/// The stream configurations the engine asks for.
pub struct StreamPlan {
    pub events: stream::Config,
    pub actions: stream::Config,
    pub dlq: stream::Config,
    pub progress: stream::Config,
}

impl StreamPlan {
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

/// Fields of a stream configuration the engine relies on that differ
/// between what it asked for and what the server holds.
pub fn stream_mismatches(want: &stream::Config, got: &stream::Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |field: &str, want: String, got: String| {
        if want != got {
            out.push(format!("{field}: want {want}, server has {got}"));
        }
    };
    check(
        "subjects",
        format!("{:?}", want.subjects),
        format!("{:?}", got.subjects),
    );
    check(
        "retention",
        format!("{:?}", want.retention),
        format!("{:?}", got.retention),
    );
    check(
        "storage",
        format!("{:?}", want.storage),
        format!("{:?}", got.storage),
    );
    check(
        "discard",
        format!("{:?}", want.discard),
        format!("{:?}", got.discard),
    );
    check(
        "max_age",
        format!("{:?}", want.max_age),
        format!("{:?}", got.max_age),
    );
    check(
        "duplicate_window",
        format!("{:?}", want.duplicate_window),
        format!("{:?}", got.duplicate_window),
    );
    // The server reports "no limit" as -1 whatever the request said.
    let limit = |n: i64| {
        if n <= 0 {
            "unlimited".to_string()
        } else {
            n.to_string()
        }
    };
    check(
        "max_msgs_per_subject",
        limit(want.max_messages_per_subject),
        limit(got.max_messages_per_subject),
    );
    check(
        "num_replicas",
        want.num_replicas.to_string(),
        got.num_replicas.to_string(),
    );
    out
}

/// Same for the consumer.
pub fn consumer_mismatches(want: &pull::Config, got: &consumer::Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |field: &str, want: String, got: String| {
        if want != got {
            out.push(format!("{field}: want {want}, server has {got}"));
        }
    };
    check(
        "durable_name",
        format!("{:?}", want.durable_name),
        format!("{:?}", got.durable_name),
    );
    check(
        "deliver_policy",
        format!("{:?}", want.deliver_policy),
        format!("{:?}", got.deliver_policy),
    );
    check(
        "ack_policy",
        format!("{:?}", want.ack_policy),
        format!("{:?}", got.ack_policy),
    );
    check(
        "ack_wait",
        format!("{:?}", want.ack_wait),
        format!("{:?}", got.ack_wait),
    );
    check(
        "max_deliver",
        want.max_deliver.to_string(),
        got.max_deliver.to_string(),
    );
    check(
        "max_ack_pending",
        want.max_ack_pending.to_string(),
        got.max_ack_pending.to_string(),
    );
    check(
        "filter_subject",
        want.filter_subject.clone(),
        got.filter_subject.clone(),
    );
    check(
        "push (deliver_subject)",
        "none".into(),
        got.deliver_subject.clone().unwrap_or_else(|| "none".into()),
    );
    out
}

/// Creates the stream or brings an existing one to the wanted settings, then
/// verifies what the server holds.
pub async fn ensure_stream(
    js: &jetstream::Context,
    want: &stream::Config,
) -> Result<stream::Stream> {
    let mut stream = match js.get_stream(&want.name).await {
        Ok(stream) => stream,
        Err(err)
            if matches!(err.kind(), jetstream::context::GetStreamErrorKind::JetStream(e)
                if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            tracing::info!(stream = %want.name, "creating stream");
            js.create_stream(want.clone())
                .await
                .with_context(|| format!("cannot create stream {}", want.name))?
        }
        Err(err) => {
            return Err(err).with_context(|| format!("cannot look up stream {}", want.name))
        }
    };
    let held = stream.info().await?.config.clone();
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
        stream = js.get_stream(&want.name).await?;
    }
    let held = stream.info().await?.config.clone();
    let mismatches = stream_mismatches(want, &held);
    if !mismatches.is_empty() {
        bail!(
            "stream {} does not have the configuration the engine needs (an older server may have dropped fields it does not know, or the stream was made by hand):\n  {}",
            want.name,
            mismatches.join("\n  ")
        );
    }
    Ok(stream)
}

/// Creates the durable consumer or brings it to the wanted settings, then
/// verifies it.
pub async fn ensure_consumer(
    stream: &stream::Stream,
    want: &pull::Config,
) -> Result<consumer::PullConsumer> {
    let name = want.durable_name.clone().expect("durable");
    let mut consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(&name, want.clone())
        .await
        .with_context(|| format!("cannot create consumer {name}"))?;
    let held = consumer.info().await?.config.clone();
    if !consumer_mismatches(want, &held).is_empty() {
        tracing::info!(consumer = %name, "updating consumer settings");
        // Creating a durable that exists updates it where the server allows
        // the change (nats-server 2.9 has no separate update request).
        if let Err(err) = stream.create_consumer(want.clone()).await {
            tracing::warn!(consumer = %name, error = %err, "consumer update refused");
        }
        consumer = stream
            .get_consumer(&name)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read consumer {name}: {e}"))?;
    }
    let held = consumer.info().await?.config.clone();
    let mismatches = consumer_mismatches(want, &held);
    if !mismatches.is_empty() {
        bail!(
            "consumer {name} does not have the configuration the engine needs (delete it to let the engine recreate it, or fix it by hand):\n  {}",
            mismatches.join("\n  ")
        );
    }
    Ok(consumer)
}

/// Opens the KV bucket, creating it when missing. The bucket's stream is
/// created directly (`KV_<bucket>`): async-nats's own bucket creation needs
/// account-info fields nats-server 2.9 does not send.
pub async fn ensure_kv(
    js: &jetstream::Context,
    bucket: &str,
    replicas: usize,
) -> Result<kv::Store> {
    if let Ok(store) = js.get_key_value(bucket).await {
        return Ok(store);
    }
    let want = stream::Config {
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
    };
    match js.create_stream(want.clone()).await {
        Ok(_) => {}
        // Another engine may have created it meanwhile.
        Err(err) => tracing::debug!(error = %err, "creating KV stream"),
    }
    let mut stream = js
        .get_stream(&want.name)
        .await
        .with_context(|| format!("cannot create KV bucket {bucket}"))?;
    let held = stream.info().await?.config.clone();
    if held.max_messages_per_subject < 1 || !held.allow_rollup || held.subjects != want.subjects {
        bail!(
            "stream {} is not a KV bucket as the engine needs it",
            want.name
        );
    }
    js.get_key_value(bucket)
        .await
        .with_context(|| format!("cannot open KV bucket {bucket}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_field_is_a_mismatch() {
        let config = ServeConfig::default();
        let subjects = config.validate().unwrap();
        let plan = StreamPlan::new(&config, &subjects);
        assert!(stream_mismatches(&plan.events, &plan.events).is_empty());
        // What a server that does not know a field hands back.
        let mut held = plan.progress.clone();
        held.max_messages_per_subject = 0;
        let found = stream_mismatches(&plan.progress, &held);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("max_msgs_per_subject"), "{found:?}");

        let want = consumer_plan(&config, &subjects);
        let mut got = want.clone().into_consumer_config_for_test();
        assert!(consumer_mismatches(&want, &got).is_empty());
        got.max_ack_pending = 0;
        got.filter_subject = String::new();
        assert_eq!(consumer_mismatches(&want, &got).len(), 2);
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
