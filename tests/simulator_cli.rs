//! `zdsync simulate` as a process: the first stdout line, serving, and a clean SIGTERM stop.
mod common;

use std::process::Stdio;
use std::time::Duration;

use common::http::json_of;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn simulate_prints_listening_line_first_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zdsync"))
        .args([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--tickets",
            "120",
            "--users",
            "50",
            "--organizations",
            "10",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("no output within a minute")
        .unwrap()
        .unwrap();
    let base = first.strip_prefix("listening on ").expect(&first);
    assert!(base.starts_with("http://127.0.0.1:"), "{first}");
    assert_ne!(base, "http://127.0.0.1:0");

    let body: serde_json::Value = json_of(
        reqwest::Client::new()
            .get(format!(
                "{base}/api/v2/incremental/tickets/cursor.json?start_time=0"
            ))
            .basic_auth("admin@example.com/token", Some("simulator-token")),
    )
    .await;
    assert_eq!(body["tickets"].as_array().unwrap().len(), 120);

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("did not stop on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn simulate_help_documents_every_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_zdsync"))
        .args(["simulate", "--help"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--listen",
        "--seed",
        "--tickets",
        "--organizations",
        "--users",
        "--groups",
        "--years",
        "--rate-limit",
        "--token-ttl",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}
