//! `zdsync demo` as a fixture: a seeded simulator and a configured, synced daemon in one child process.
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use super::{binary, DEADLINE};

/// A running `zdsync demo`.
pub(crate) struct DemoFixture {
    /// The child process.
    pub child: Child,
    /// Its gRPC address.
    pub grpc: String,
    /// Its admin token file.
    pub token_file: PathBuf,
    /// The simulator's base URL.
    pub simulator_url: String,
}

impl Drop for DemoFixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DemoFixture {
    /// Starts `zdsync demo --listen 127.0.0.1:0` and waits for the end of its guide.
    pub(crate) fn start() -> DemoFixture {
        let mut child = Command::new(binary())
            .args(["demo", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn zdsync demo");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + DEADLINE;
        let (mut grpc, mut token_file, mut simulator_url) = (None, None, None);
        loop {
            let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                let _ = child.kill();
                panic!("zdsync demo did not print its guide in time");
            };
            if let Some(rest) = line.strip_prefix("zdsync demo ready: ") {
                for field in rest.split(' ') {
                    if let Some(addr) = field.strip_prefix("grpc=") {
                        grpc = Some(addr.to_owned());
                    }
                    if let Some(path) = field.strip_prefix("admin_token_file=") {
                        token_file = Some(PathBuf::from(path));
                    }
                }
            }
            if let Some(url) = line.trim().strip_prefix("Zendesk simulator (HTTP):") {
                simulator_url = Some(url.trim().to_owned());
            }
            if line.starts_with("Ctrl-C stops") {
                break;
            }
        }
        DemoFixture {
            child,
            grpc: grpc.expect("grpc= in the ready line"),
            token_file: token_file.expect("admin_token_file= in the ready line"),
            simulator_url: simulator_url.expect("the simulator URL in the guide"),
        }
    }

    /// The admin token.
    pub(crate) fn token(&self) -> String {
        std::fs::read_to_string(&self.token_file)
            .expect("admin token file")
            .trim()
            .to_owned()
    }

    /// A plaintext channel to the daemon.
    pub(crate) async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(format!("http://{}", self.grpc))
            .expect("uri")
            .connect()
            .await
            .expect("connect to the demo")
    }

    /// The `zdsync` CLI against this daemon, with the admin token file.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .args(args)
            .args(["--addr", &self.grpc, "--token-file"])
            .arg(&self.token_file)
            .env_remove("ZDSYNC_ADMIN_TOKEN")
            .env_remove("ZDSYNC_ADDR");
        command
    }

    /// Runs the CLI and returns its output.
    pub(crate) fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run zdsync")
    }

    /// Runs the CLI, asserts success and returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "zdsync {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    /// Runs the CLI with `--json` and parses every stdout line as JSON.
    pub(crate) fn json_lines(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        self.ok(&with_json)
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
            })
            .collect()
    }
}
