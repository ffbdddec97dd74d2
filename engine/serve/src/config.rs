//! Settings of `intent serve`, in layers: the built-in defaults
//! (`default.toml` beside this crate's manifest lists every key), the TOML
//! file given with `--config`, one `INTENT_<KEY>` environment variable per
//! key, then the command-line flags; validated once. And the NATS
//! connection options they imply.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Deserializer, Serialize};

use super::subjects::{InvalidPrefix, Subjects};

/// Every key with its default, as shipped and documented.
pub const DEFAULTS_TOML: &str = include_str!("../default.toml");

/// Keys that have no default: absent unless a layer sets them.
const OPTIONAL_KEYS: &[&str] = &[
    "user",
    "password",
    "token",
    "nkey",
    "nkey_file",
    "creds",
    "tls_ca",
    "tls_cert",
    "tls_key",
    "index",
    "fault_event_id",
];

/// Environment variables read besides `INTENT_<KEY>`, and the key each sets.
const ENV_ALIASES: &[(&str, &str)] = &[("nats_password", "password"), ("nats_token", "token")];

/// Why the settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML or holds an unknown key or value.
    #[error("{}:{line}: {message}", path.display())]
    File {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// An environment variable or flag holds a bad value (the message names
    /// the key and the layer it came from).
    #[error("{0}")]
    Layer(Box<figment::Error>),
    /// An environment variable or flag holds a value its key refuses.
    #[error("{origin}: {message}")]
    Setting { origin: String, message: String },
    /// The settings do not fit together.
    #[error("{0}")]
    Inconsistent(String),
    /// The subject prefix is not a literal subject.
    #[error(transparent)]
    Prefix(#[from] InvalidPrefix),
    /// A credentials or key file could not be read.
    #[error("cannot read {what} {}", path.display())]
    Credentials {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

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
    /// Test hook: processing the event with this id panics, to exercise the
    /// unprocessable-event path (`INTENT_FAULT_EVENT_ID`).
    pub fault_event_id: Option<String>,
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// A duration that is not one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("'{text}': {source}")]
pub struct DurationError {
    text: String,
    source: humantime::DurationError,
}

/// A human duration (`90d`, `30s`, `500ms`, `0s`).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    humantime::parse_duration(text.trim()).map_err(|source| DurationError {
        text: text.to_string(),
        source,
    })
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
            talk_track_signal: "customer_confirmed_value".into(),
            fault_event_id: None,
        }
    }
}

impl ServeConfig {
    /// The settings from every layer, lowest first: the built-in defaults,
    /// the TOML `file` (if any), `INTENT_<KEY>` environment variables from
    /// `env`, then `flags` (a serializable struct whose fields are keys;
    /// leave unset ones out with `skip_serializing_if`).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &impl Serialize,
    ) -> Result<ServeConfig, ConfigError> {
        let mut layers = Figment::new();
        if let Some(path) = file {
            layers = layers.merge(Toml::string(&Self::read_file(path)?));
        }
        for setting in environment(env).into_iter().chain(flags_of(flags)?) {
            setting.check()?;
            layers = layers.merge(setting);
        }
        layers
            .extract()
            .map_err(|e| ConfigError::Layer(Box::new(e)))
    }

    /// [`load`](Self::load) with the process environment.
    pub fn load_with_process_env(
        file: Option<&Path>,
        flags: &impl Serialize,
    ) -> Result<ServeConfig, ConfigError> {
        Self::load(file, std::env::vars(), flags)
    }

    /// Reads a TOML config file and checks it on its own, so that an error
    /// in it is reported with its line; unknown keys are errors.
    fn read_file(path: &Path) -> Result<String, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str::<ServeConfig>(&text).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            line: e
                .span()
                .map(|s| text[..s.start].matches('\n').count() + 1)
                .unwrap_or(0),
            message: e.message().to_string(),
        })?;
        Ok(text)
    }

    /// Every key a layer may set: those of `default.toml` and the optional ones.
    pub fn keys() -> Vec<String> {
        let defaults: toml::Table = toml::from_str(DEFAULTS_TOML).expect("default.toml parses");
        let mut keys: Vec<String> = defaults.keys().cloned().collect();
        keys.extend(OPTIONAL_KEYS.iter().map(|k| k.to_string()));
        keys.sort();
        keys
    }

    /// Checks the settings fit together.
    pub fn validate(&self) -> Result<Subjects, ConfigError> {
        let subjects = Subjects::new(&self.subject_prefix)?;
        if self.batch == 0 {
            return inconsistent("batch must be at least 1".into());
        }
        if self.max_ack_pending < self.batch as i64 {
            return inconsistent(format!(
                "max_ack_pending ({}) must be at least batch ({})",
                self.max_ack_pending, self.batch
            ));
        }
        if self.max_deliver < 1 {
            return inconsistent("max_deliver must be at least 1".into());
        }
        if self.ack_wait < Duration::from_secs(1) {
            return inconsistent("ack_wait must be at least 1s".into());
        }
        if self.clock_tick.is_zero() {
            return inconsistent("clock_tick must be positive".into());
        }
        if self.auth.tls_cert.is_some() != self.auth.tls_key.is_some() {
            return inconsistent("tls_cert and tls_key go together".into());
        }
        if self.auth.password.is_some() && self.auth.user.is_none() {
            return inconsistent("password without user".into());
        }
        Ok(subjects)
    }

    /// The async-nats connection options: credentials, TLS, a name, and
    /// reconnection without limit (the engine outlives server restarts).
    pub async fn connect_options(
        &self,
        name: &str,
    ) -> Result<async_nats::ConnectOptions, ConfigError> {
        let auth = &self.auth;
        let mut options = match &auth.creds {
            Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|source| ConfigError::Credentials {
                    what: "credentials",
                    path: path.clone(),
                    source,
                })?,
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
                    .map_err(|source| ConfigError::Credentials {
                        what: "nkey seed",
                        path: path.clone(),
                        source,
                    })?
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

fn inconsistent<T>(message: String) -> Result<T, ConfigError> {
    Err(ConfigError::Inconsistent(message))
}

/// One setting from one source, named in errors after where it came from
/// (`environment variable INTENT_BATCH`, `command-line flag --batch`): a
/// layer per variable and per flag, so that an error names its source even
/// for keys that serde reaches through `flatten`, where figment loses the
/// key's path.
struct Setting {
    source: String,
    key: String,
    value: Value,
}

impl Setting {
    /// The setting on its own must be valid: this names its source in the
    /// error, which figment cannot do through `flatten`.
    fn check(&self) -> Result<(), ConfigError> {
        match Figment::from(self).extract::<ServeConfig>() {
            Ok(_) => Ok(()),
            Err(e) => Err(ConfigError::Setting {
                origin: self.source.clone(),
                message: e.kind.to_string(),
            }),
        }
    }
}

impl Provider for Setting {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.source.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        dict.insert(self.key.clone(), self.value.clone());
        Ok(Profile::Default.collect(dict))
    }
}

/// The environment's settings: `INTENT_<KEY>` for each key (and the
/// aliases), nothing else, so that unrelated `INTENT_*` variables (a test's
/// switch, say) are not taken for unknown keys.
fn environment(vars: impl IntoIterator<Item = (String, String)>) -> Vec<Setting> {
    let keys = ServeConfig::keys();
    let mut settings = Vec::new();
    for (name, value) in vars {
        let Some(key) = name.strip_prefix("INTENT_").map(str::to_ascii_lowercase) else {
            continue;
        };
        let key = ENV_ALIASES
            .iter()
            .find(|(alias, _)| *alias == key)
            .map_or(key.as_str(), |(_, to)| to)
            .to_string();
        if keys.contains(&key) {
            let value = value.parse().expect("any text parses as a value");
            settings.push(Setting {
                source: format!("environment variable {name}"),
                key,
                value,
            });
        }
    }
    settings
}

/// The flags' settings: each field `flags` serializes is a key.
fn flags_of(flags: &impl Serialize) -> Result<Vec<Setting>, ConfigError> {
    let data = Serialized::defaults(flags)
        .data()
        .map_err(|e| ConfigError::Layer(Box::new(e)))?;
    let dict = data.into_values().next().unwrap_or_default();
    Ok(dict
        .into_iter()
        .map(|(key, value)| Setting {
            source: format!("command-line flag --{}", key.replace('_', "-")),
            key,
            value,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flags as the CLI passes them: only what was given.
    #[derive(Serialize, Default)]
    struct TestFlags {
        #[serde(skip_serializing_if = "Option::is_none")]
        lateness: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        mode: Option<&'static str>,
    }

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn layers_apply_defaults_then_file_then_environment_then_flags() {
        let toml =
            file("lateness = \"1s\"\nbatch = 10\nmode = \"core\"\ndurable = \"from-file\"\n");
        let config = ServeConfig::load(
            Some(toml.path()),
            env(&[("INTENT_BATCH", "20"), ("INTENT_LATENESS", "2s")]),
            &TestFlags {
                lateness: Some("3s"),
                ..TestFlags::default()
            },
        )
        .unwrap();
        assert_eq!(config.lateness, Duration::from_secs(3), "a flag beats all");
        assert_eq!(config.batch, 20, "the environment beats the file");
        assert_eq!(config.mode, Mode::Core, "the file beats the defaults");
        assert_eq!(config.durable, "from-file");
        assert_eq!(config.max_deliver, 5, "the default where nothing is set");
    }

    #[test]
    fn every_key_has_an_environment_variable_and_unrelated_ones_are_ignored() {
        let config = ServeConfig::load(
            None,
            env(&[
                ("INTENT_MAX_DELIVER", "9"),
                ("INTENT_KV_BUCKET", ""),
                ("INTENT_TLS_REQUIRED", "true"),
                ("INTENT_NATS_PASSWORD", "secret"),
                ("INTENT_USER", "engine"),
                ("INTENT_FAULT_EVENT_ID", "e-3"),
                ("INTENT_REQUIRE_CHROMIUM", "1"),
                ("PATH", "/bin"),
            ]),
            &TestFlags::default(),
        )
        .unwrap();
        assert_eq!(config.max_deliver, 9);
        assert_eq!(config.kv_bucket, "");
        assert!(config.auth.tls_required);
        assert_eq!(config.auth.password.as_deref(), Some("secret"));
        assert_eq!(config.auth.user.as_deref(), Some("engine"));
        assert_eq!(config.fault_event_id.as_deref(), Some("e-3"));
        // Each key, set through its variable to a value its type refuses,
        // is reported under its name: so each one is read.
        for key in ServeConfig::keys() {
            let var = format!("INTENT_{}", key.to_ascii_uppercase());
            let result = ServeConfig::load(None, env(&[(&var, "[")]), &TestFlags::default());
            if let Err(err) = result {
                assert!(err.to_string().contains(&var), "{var}: {err}");
            }
        }
    }

    #[test]
    fn the_keys_are_the_fields_and_default_toml_is_the_default() {
        // The field names, read off the Debug form of the settings.
        let debug = format!("{:?}", ServeConfig::default());
        let mut fields: Vec<String> = regex_lite_fields(&debug);
        fields.retain(|f| f != "auth");
        fields.sort();
        assert_eq!(
            fields,
            ServeConfig::keys(),
            "a setting is missing from default.toml or OPTIONAL_KEYS"
        );
        let shipped: ServeConfig = toml::from_str(DEFAULTS_TOML).unwrap();
        assert_eq!(
            format!("{shipped:?}"),
            debug,
            "default.toml says what Default is"
        );
    }

    /// `name: ` tokens of a Debug rendering (field names at any depth).
    fn regex_lite_fields(debug: &str) -> Vec<String> {
        let mut fields = Vec::new();
        for part in debug.split([',', '{']) {
            let part = part.trim();
            if let Some((name, _)) = part.split_once(": ") {
                if name.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !name.is_empty() {
                    fields.push(name.to_string());
                }
            }
        }
        fields
    }

    #[test]
    fn errors_name_the_layer_and_the_line() {
        let toml = file("nats = \"n\"\n\nlateness = \"soon\"\n");
        let err =
            ServeConfig::load(Some(toml.path()), env(&[]), &TestFlags::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("intent.toml:3: ") || text.contains(":3: 'soon'"),
            "{text}"
        );
        let err = ServeConfig::load(
            None,
            env(&[("INTENT_MAX_DELIVER", "lots")]),
            &TestFlags::default(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("environment variable INTENT_MAX_DELIVER: "),
            "{text}"
        );
        let err = ServeConfig::load(
            None,
            env(&[]),
            &TestFlags {
                mode: Some("fast"),
                ..TestFlags::default()
            },
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("command-line flag --mode: ") && text.contains("fast"),
            "{text}"
        );
        let missing = ServeConfig::load(
            Some(Path::new("/nonexistent/intent.toml")),
            env(&[]),
            &TestFlags::default(),
        )
        .unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }), "{missing}");
    }

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
