//! Processes the load generator can start itself, so one command gives a
//! full report on a fresh machine: a JetStream-enabled `nats-server` on a
//! free port in a temporary directory, and `intent serve` against it.
//! Both are killed on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

/// A nats-server child process.
pub struct NatsServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts `bin -js` on a port the server picks, and waits until it
    /// accepts connections.
    pub fn start(bin: &str) -> Result<NatsServer> {
        let dir = tempfile::tempdir()?;
        let mut child = Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", "-1", "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {bin}: install nats-server (apt-get install -y nats-server) or pass --nats-server-bin"))?;
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
                        if let Some(port) = rest
                            .rsplit(':')
                            .next()
                            .and_then(|p| p.trim().parse::<u16>().ok())
                        {
                            tx.send(port).ok();
                            sent = true;
                        }
                    }
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .context("nats-server did not start listening within 20 s")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("nats-server not reachable on port {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(NatsServer {
            child,
            port,
            _dir: dir,
        })
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn version(bin: &str) -> String {
        Command::new(bin)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|_| "unknown".into())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// An `intent serve` child process.
pub struct EngineProcess {
    child: Child,
    pub log: PathBuf,
}

impl EngineProcess {
    /// Starts the engine and waits until its API answers.
    pub fn start(
        bin: &Path,
        nats: &str,
        prefix: &str,
        args: &[String],
        runtime: &tokio::runtime::Runtime,
    ) -> Result<EngineProcess> {
        if !bin.exists() {
            bail!(
                "{} not found: build it first with `cargo build --release -p intent-cli --bin intent` (or pass --intent-bin)",
                bin.display()
            );
        }
        let log = std::env::temp_dir().join(format!("loadgen-engine-{}.log", std::process::id()));
        let child = Command::new(bin)
            .args(["serve", "--nats", nats, "--subject-prefix", prefix])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let mut engine = EngineProcess { child, log };
        let client = runtime.block_on(async_nats::connect(nats))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = engine.child.try_wait()? {
                bail!(
                    "intent serve exited ({status}):\n{}",
                    std::fs::read_to_string(&engine.log).unwrap_or_default()
                );
            }
            if runtime
                .block_on(super::measure::engine_stats(&client, prefix))
                .is_ok()
            {
                return Ok(engine);
            }
            if Instant::now() > deadline {
                engine.child.kill().ok();
                bail!("intent serve did not answer within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        // SIGTERM first: a graceful stop; then make sure.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
