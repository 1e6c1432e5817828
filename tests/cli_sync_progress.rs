//! `zdsync sync --wait` and `zdsync status` during a run (phase, progress, ETA), against `zdsync demo`.
mod common;

use std::process::Stdio;

use common::demo_fixture::DemoFixture;

#[tokio::test(flavor = "multi_thread")]
async fn sync_waits_with_progress_and_status_shows_phase_progress_and_eta() {
    let demo = DemoFixture::start();
    // A 429 asking for 3 s on the ticket export keeps the next run busy long enough to look at.
    let http = reqwest::Client::new();
    let injected = http
        .post(format!("{}/_sim/faults", demo.simulator_url))
        .json(&serde_json::json!({
            "endpoint": "incremental_tickets", "kind": "rate_limited", "count": 1, "retry_after_secs": 3
        }))
        .send()
        .await
        .expect("inject a fault");
    assert!(injected.status().is_success(), "{}", injected.status());

    let waiting = demo
        .command(&["sync", "--wait", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn zdsync sync --wait");

    let status = common::eventually("the run to wait on Zendesk", || async {
        let status = &demo.json_lines(&["status"])[0];
        let waited = status["current_run_progress"]["rate_limit_wait_seconds"].as_f64();
        (status["state"] == "SYNCING" && waited.is_some_and(|w| w > 0.0)).then(|| status.clone())
    })
    .await;
    let progress = &status["current_run_progress"];
    assert_eq!(progress["phase"], "tickets", "{status:#}");
    assert_eq!(progress["phase_count"], 6);
    assert_eq!(progress["phase_number"], 4);
    assert_eq!(progress["rate_limit_wait_seconds"], 3.0);

    let text = demo.ok(&["status"]);
    assert!(text.contains("state:                 SYNCING"), "{text}");
    let phase = text
        .lines()
        .find(|line| line.starts_with("phase:"))
        .unwrap_or_else(|| panic!("a phase line in:\n{text}"));
    assert!(phase.contains("tickets (4 of 6)"), "{phase}");
    assert!(
        text.lines()
            .any(|line| line.starts_with("waited:") && line.contains("3s on Zendesk rate limits")),
        "{text}"
    );
    assert!(text.lines().any(|line| line.starts_with("eta:")), "{text}");

    let output = waiting.wait_with_output().expect("sync --wait ends");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let finished: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(finished["outcome"], "succeeded", "{finished:#}");
    assert!(finished["run_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("run-")));
    assert!(finished["requests"].as_u64().is_some_and(|r| r > 0));
    assert!(
        finished["seconds"].as_f64().is_some_and(|s| s >= 3.0),
        "{finished:#}"
    );

    // Human output: one line naming the run and how it ended (the bar is drawn only on a terminal).
    let text = demo.ok(&["sync", "--wait"]);
    let line = text.trim();
    assert!(
        line.starts_with("run-") && line.contains(" succeeded: "),
        "{text}"
    );
    assert!(
        line.contains(" pages, ") && line.contains(" requests, "),
        "{text}"
    );
    let status = &demo.json_lines(&["status"])[0];
    assert_eq!(status["state"], "IDLE");
    assert!(status["current_run_progress"].is_null());

    // A run that cannot succeed makes `sync --wait` fail: credentials refused by Zendesk.
    http.post(format!("{}/_sim/faults", demo.simulator_url))
        .json(&serde_json::json!({"endpoint": "groups", "kind": "unauthorized", "count": 5}))
        .send()
        .await
        .expect("inject a fault");
    let failed = demo.cli(&["sync", "--wait"]);
    assert!(!failed.status.success());
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert!(stdout.contains(" failed: "), "{stdout}");
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("failed"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
}
