//! `zdsync demo` end to end: the real binary, its ready line, its guide, and the calls the guide's grpcurl lines make
//! (through tonic clients; `.ci/readme_grpcurl.sh` runs the grpcurl lines themselves).
mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use common::{binary, reflection, signal, wait_exit, with_token, DEADLINE};
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;
use zdsync::proto::v1::integration_service_client::IntegrationServiceClient;

const READY_PREFIX: &str = "zdsync demo ready: ";
/// The last line of the guide.
const GUIDE_END: &str = "Ctrl-C stops";

/// A running `zdsync demo` and what it printed up to the end of its guide.
struct Demo {
    child: Child,
    grpc: String,
    token_file: PathBuf,
    guide: Vec<String>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `zdsync demo --listen 127.0.0.1:0` and reads stdout until the end of the guide.
fn start_demo() -> Demo {
    let mut child = Command::new(binary())
        .args(["demo", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
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
    let mut printed: Vec<String> = Vec::new();
    loop {
        if let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let end = line.starts_with(GUIDE_END);
            printed.push(line);
            if end {
                break;
            }
        } else {
            let _ = child.kill();
            panic!(
                "zdsync demo printed no complete guide in time; stdout so far:\n{}",
                printed.join("\n")
            );
        }
    }

    let ready: Vec<&String> = printed
        .iter()
        .filter(|line| line.starts_with(READY_PREFIX))
        .collect();
    assert_eq!(ready.len(), 1, "exactly one ready line in:\n{printed:#?}");
    assert_eq!(
        printed[0], *ready[0],
        "the ready line comes before the guide"
    );
    let fields: Vec<&str> = ready[0][READY_PREFIX.len()..].split(' ').collect();
    assert_eq!(fields.len(), 2, "ready line: {}", ready[0]);
    let grpc = fields[0]
        .strip_prefix("grpc=")
        .expect("grpc= field")
        .to_owned();
    let token_file = PathBuf::from(
        fields[1]
            .strip_prefix("admin_token_file=")
            .expect("admin_token_file= field"),
    );
    Demo {
        child,
        grpc,
        token_file,
        guide: printed,
    }
}

/// The guide's grpcurl line calling `method` (e.g. `IntegrationService/GetStatus`).
fn grpcurl_line<'a>(commands: &[&'a str], method: &str) -> &'a str {
    commands
        .iter()
        .copied()
        .find(|line| line.ends_with(method))
        .unwrap_or_else(|| panic!("the guide has no grpcurl line for {method}: {commands:#?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_is_ready_its_guide_calls_work_and_sigint_exits_cleanly() {
    let mut demo = start_demo();
    assert!(
        demo.grpc.starts_with("127.0.0.1:") && !demo.grpc.ends_with(":0"),
        "the ready line shows the bound port: {}",
        demo.grpc
    );
    let token = std::fs::read_to_string(&demo.token_file).expect("admin token file");
    assert!(token.trim().len() >= 16);

    let lines: Vec<&str> = demo.guide.iter().map(|line| line.trim()).collect();
    let token_line = format!("TOKEN=$(cat {})", demo.token_file.display());
    assert!(
        lines.contains(&token_line.as_str()),
        "the guide prints `{token_line}`"
    );
    let commands: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|line| line.starts_with("grpcurl "))
        .collect();
    assert!(
        commands.iter().all(|line| line.contains(&demo.grpc)),
        "every grpcurl line targets {}: {commands:#?}",
        demo.grpc
    );
    let simulator_url = lines
        .iter()
        .find_map(|line| line.strip_prefix("Zendesk simulator (HTTP):"))
        .map(str::trim)
        .expect("the guide names the simulator URL")
        .to_owned();
    let stats: serde_json::Value = reqwest::get(format!("{simulator_url}/_sim/stats"))
        .await
        .expect("simulator stats")
        .json()
        .await
        .expect("stats JSON");
    let simulator_tickets = stats["tickets"].as_u64().expect("tickets count");
    assert!(simulator_tickets > 0);

    // The guide's grpcurl lines are run as printed by `.ci/readme_grpcurl.sh`; here the same calls go through
    // tonic clients, so `cargo test` needs nothing but Rust.
    for method in [
        " list",
        "IntegrationService/GetStatus",
        "AccountDirectoryService/ListAccounts",
        "IntegrationService/ForceSync",
        "IntegrationService/Pause",
        "IntegrationService/Resume",
    ] {
        grpcurl_line(&commands, method);
    }
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", demo.grpc))
        .expect("uri")
        .connect()
        .await
        .expect("connect to the demo");
    let token = token.trim().to_owned();

    let listed = reflection::list_services(channel.clone(), reflection::Version::V1Alpha).await;
    for service in [
        "zdsync.v1.IntegrationService",
        "zdsync.v1.AccountDirectoryService",
    ] {
        assert!(
            listed.iter().any(|line| line == service),
            "list shows {service}: {listed:?}"
        );
    }

    let mut integration = IntegrationServiceClient::new(channel.clone());
    let status = integration
        .get_status(with_token(pb::GetStatusRequest {}, &token))
        .await
        .expect("GetStatus")
        .into_inner();
    assert_eq!(status.state(), pb::SyncState::Idle, "{status:#?}");
    assert_eq!(
        status.stored.as_ref().map(|s| s.tickets),
        Some(simulator_tickets)
    );

    let accounts = AccountDirectoryServiceClient::new(channel.clone())
        .list_accounts(with_token(
            pb::ListAccountsRequest {
                page_size: 5,
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("ListAccounts")
        .into_inner();
    assert!(accounts.total > 0, "{accounts:#?}");
    let first = &accounts.accounts[0];
    assert!(
        first.id.starts_with("acct-"),
        "accounts carry the simulator's account ids: {first:#?}"
    );
    assert!(
        !first.users.is_empty(),
        "accounts carry simulator users: {first:#?}"
    );

    let forced = integration
        .force_sync(with_token(pb::ForceSyncRequest::default(), &token))
        .await
        .expect("ForceSync")
        .into_inner();
    assert!(forced.run_id.starts_with("run-"), "{forced:#?}");
    integration
        .pause(with_token(pb::PauseRequest {}, &token))
        .await
        .expect("Pause");
    let paused = integration
        .get_status(with_token(pb::GetStatusRequest {}, &token))
        .await
        .expect("GetStatus")
        .into_inner();
    assert_eq!(paused.state(), pb::SyncState::Paused, "{paused:#?}");
    let resumed = integration
        .resume(with_token(pb::ResumeRequest {}, &token))
        .await
        .expect("Resume")
        .into_inner();
    assert!(resumed.was_paused, "{resumed:#?}");

    // The guide's CLI lines run as printed (the running binary's path, the demo's address and token file).
    let cli_lines: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|line| line.contains(&format!("--addr {} --token-file", demo.grpc)))
        .collect();
    assert!(cli_lines.len() >= 4, "the guide shows the CLI: {lines:#?}");
    for line in cli_lines
        .iter()
        .filter(|line| line.contains(" status ") || line.contains(" metrics "))
    {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .output()
            .expect("run sh");
        assert!(
            output.status.success(),
            "`{line}` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains("state:") || text.contains("open tickets") || text.starts_with("ACCOUNT"),
            "`{line}` printed:\n{text}"
        );
    }

    signal(&demo.child, "INT");
    let status = wait_exit(&mut demo.child);
    assert!(status.success(), "zdsync demo exited with {status}");
    let data_dir = demo
        .token_file
        .parent()
        .expect("token file has a directory");
    assert!(
        !data_dir.exists(),
        "the demo removes its data directory {}",
        data_dir.display()
    );
}
