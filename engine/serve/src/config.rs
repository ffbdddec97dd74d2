//! Settings of `intent serve`: read from a TOML file, overridden by flags,
//! validated once; and the NATS connection options they imply.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Deserializer};

use super::subjects::Subjects;

/// How events reach the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Durable: a JetStream stream and a durable pull consumer; an event is
    /// acknowledged only after its effects are applied and stored.
    Jetstream,
    /// A plain subscription: lowest latency, nothing survives a restart.
    Core,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "jetstream" => Ok(Mode::Jetstream),
            "core" => Ok(Mode::Core),
            other => Err(format!("unknown mode '{other}' (jetstream or core)")),
        }
    }
}

/// What moves event time forward when no events arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    /// Silence timers fire on whichever comes first of event time and the
    /// wall clock (minus the allowed lateness), checked once the engine has
    /// caught up with its input: the real-time default.
    Wall,
    /// Event time only (extrapolated over idle periods): for feeding history
    /// through the service, where the wall clock means nothing.
    Event,
}

impl std::str::FromStr for ClockMode {
    type Err = String;
    fn from_str(s: &str) -> Result<ClockMode, String> {
        match s {
            "wall" => Ok(ClockMode::Wall),
            "event" => Ok(ClockMode::Event),
            other => Err(format!("unknown clock '{other}' (wall or event)")),
        }
    }
}

/// Credentials and TLS for the NATS connection (those async-nats supports).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// NKey seed (`SU...`), inline.
    pub nkey: Option<String>,
    /// A file holding the NKey seed.
    pub nkey_file: Option<PathBuf>,
    /// A `.creds` file (JWT + NKey seed).
    pub creds: Option<PathBuf>,
    /// CA certificate(s) to trust (PEM).
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Refuse to connect without TLS.
    pub tls_required: bool,
}

/// Everything `intent serve` runs with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    pub nats: String,
    #[serde(flatten)]
    pub auth: Auth,
    pub signals: PathBuf,
    pub subject_prefix: String,
    pub mode: Mode,
    /// How late an event may arrive and still be placed in time order.
    #[serde(deserialize_with = "duration")]
    pub lateness: Duration,
    /// How long the event stream keeps events (the horizon of a rebuild).
    #[serde(deserialize_with = "duration")]
    pub retention: Duration,
    /// How long the actions and dead-letter streams keep messages.
    #[serde(deserialize_with = "duration")]
    pub actions_retention: Duration,
    /// The KV bucket watched for signal-defs files ("" = do not watch).
    pub kv_bucket: String,
    /// How often the signal-defs directory is checked for changes (0 = never).
    #[serde(deserialize_with = "duration")]
    pub watch_interval: Duration,
    /// What moves event time when no events arrive.
    pub clock: ClockMode,
    /// How often the wall clock is compared with pending silence timers.
    #[serde(deserialize_with = "duration")]
    pub clock_tick: Duration,
    /// Most events taken from the consumer per batch.
    pub batch: usize,
    /// Most events delivered and not yet acknowledged (JetStream MaxAckPending).
    pub max_ack_pending: i64,
    /// Deliveries of one event before it goes to the dead-letter subject.
    pub max_deliver: i64,
    #[serde(deserialize_with = "duration")]
    pub ack_wait: Duration,
    /// Durable consumer name.
    pub durable: String,
    pub events_stream: String,
    pub actions_stream: String,
    pub dlq_stream: String,
    pub progress_stream: String,
    /// Replicas of the streams the engine creates.
    pub replicas: usize,
    /// The evidence and talk-track index directory; none = no index and
    /// `search` replies 501. In JetStream mode it is re-created at start
    /// and filled by the rebuild; in core mode an existing one is kept.
    pub index: Option<PathBuf>,
    /// How often new evidence is committed to the index and made searchable.
    #[serde(deserialize_with = "duration")]
    pub index_commit: Duration,
    /// Customer utterances raising this signal make talk-track snippets.
    pub talk_track_signal: String,
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// A human duration (`90d`, `30s`, `500ms`, `0s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("'{text}': {e}"))
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            nats: "nats://127.0.0.1:4222".into(),
            auth: Auth::default(),
            signals: PathBuf::from("signal-defs"),
            subject_prefix: "intent".into(),
            mode: Mode::Jetstream,
            lateness: Duration::from_secs(600),
            retention: Duration::from_secs(90 * 86_400),
            actions_retention: Duration::from_secs(30 * 86_400),
            kv_bucket: "intent-signals".into(),
            watch_interval: Duration::from_secs(1),
            clock: ClockMode::Wall,
            clock_tick: Duration::from_secs(1),
            batch: 256,
            max_ack_pending: 20_000,
            max_deliver: 5,
            ack_wait: Duration::from_secs(30),
            durable: "intent-engine".into(),
            events_stream: "INTENT_EVENTS".into(),
            actions_stream: "INTENT_ACTIONS".into(),
            dlq_stream: "INTENT_DLQ".into(),
            progress_stream: "INTENT_PROGRESS".into(),
            replicas: 1,
            index: None,
            index_commit: Duration::from_secs(1),
            talk_track_signal: intent_search::evidence::DEFAULT_TALK_TRACK_SIGNAL.into(),
        }
    }
}

impl ServeConfig {
    /// Reads a TOML config file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<ServeConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start].matches('\n').count() + 1)
                .unwrap_or(0);
            anyhow::anyhow!("{}:{line}: {}", path.display(), e.message())
        })
    }

    /// Checks the settings fit together.
    pub fn validate(&self) -> Result<Subjects> {
        let subjects = Subjects::new(&self.subject_prefix).map_err(anyhow::Error::msg)?;
        if self.batch == 0 {
            bail!("batch must be at least 1");
        }
        if self.max_ack_pending < self.batch as i64 {
            bail!(
                "max_ack_pending ({}) must be at least batch ({})",
                self.max_ack_pending,
                self.batch
            );
        }
        if self.max_deliver < 1 {
            bail!("max_deliver must be at least 1");
        }
        if self.ack_wait < Duration::from_secs(1) {
            bail!("ack_wait must be at least 1s");
        }
        if self.clock_tick.is_zero() {
            bail!("clock_tick must be positive");
        }
        if self.auth.tls_cert.is_some() != self.auth.tls_key.is_some() {
            bail!("tls_cert and tls_key go together");
        }
        if self.auth.password.is_some() && self.auth.user.is_none() {
            bail!("password without user");
        }
        Ok(subjects)
    }

    /// The async-nats connection options: credentials, TLS, a name, and
    /// reconnection without limit (the engine outlives server restarts).
    pub async fn connect_options(&self, name: &str) -> Result<async_nats::ConnectOptions> {
        let auth = &self.auth;
        let mut options = match &auth.creds {
            Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .with_context(|| format!("cannot read credentials {}", path.display()))?,
            None => async_nats::ConnectOptions::new(),
        };
        if let Some(user) = &auth.user {
            options =
                options.user_and_password(user.clone(), auth.password.clone().unwrap_or_default());
        }
        if let Some(token) = &auth.token {
            options = options.token(token.clone());
        }
        let seed = match (&auth.nkey, &auth.nkey_file) {
            (Some(seed), _) => Some(seed.trim().to_string()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read nkey seed {}", path.display()))?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        if let Some(seed) = seed {
            options = options.nkey(seed);
        }
        if let Some(ca) = &auth.tls_ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&auth.tls_cert, &auth.tls_key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if auth.tls_required {
            options = options.require_tls(true);
        }
        Ok(options
            .name(name)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(Duration::from_secs(10))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_settings_parse_and_unknown_keys_are_errors() {
        let config: ServeConfig = toml::from_str(
            "nats = \"nats://n:4222\"\nmode = \"core\"\nlateness = \"1s\"\nuser = \"u\"\npassword = \"p\"\n",
        )
        .unwrap();
        assert_eq!(config.mode, Mode::Core);
        assert_eq!(config.lateness, Duration::from_secs(1));
        assert_eq!(config.auth.user.as_deref(), Some("u"));
        assert_eq!(config.retention, Duration::from_secs(90 * 86_400));
        config.validate().unwrap();

        let err = toml::from_str::<ServeConfig>("natz = \"x\"").unwrap_err();
        assert!(err.to_string().contains("natz"), "{err}");
        let err = toml::from_str::<ServeConfig>("lateness = \"soon\"").unwrap_err();
        assert!(err.to_string().contains("soon"), "{err}");
    }

    #[test]
    fn inconsistent_settings_are_refused() {
        let bad = [
            ServeConfig {
                batch: 0,
                ..ServeConfig::default()
            },
            ServeConfig {
                max_ack_pending: 10,
                ..ServeConfig::default()
            },
            ServeConfig {
                subject_prefix: "a.>".into(),
                ..ServeConfig::default()
            },
            ServeConfig {
                auth: Auth {
                    tls_cert: Some("c.pem".into()),
                    ..Auth::default()
                },
                ..ServeConfig::default()
            },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
        ServeConfig::default().validate().unwrap();
    }
}
