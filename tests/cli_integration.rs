//! `zdsync configure|status|sync|pause|resume|delete` against a real daemon and the simulator.
mod common;

use common::{cli, eventually, inproc, Daemon, DaemonOptions};

fn status_json(daemon: &Daemon) -> serde_json::Value {
    let (ok, out, err) = cli(daemon, &["status", "--json"]);
    assert!(ok, "{err}");
    serde_json::from_str(out.trim()).expect("status json")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_integration_is_driven_from_the_command_line() {
    let sim = inproc::simulator(inproc::sized(1_500, 20, 100)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DaemonOptions {
        config: format!(
            "[zendesk]\nbase_url = {:?}\nrequests_per_minute = 0\n",
            sim.base_url()
        ),
        ..Default::default()
    };
    let daemon = Daemon::start(&dir.path().join("data"), &options);
    assert_eq!(status_json(&daemon)["state"], "NOT_CONFIGURED");

    let secret = dir.path().join("client-secret");
    std::fs::write(
        &secret,
        format!("{}\n", zdsync::simulator::DEFAULT_CLIENT_SECRET),
    )
    .expect("secret");
    let (ok, out, err) = cli(
        &daemon,
        &[
            "configure",
            "--subdomain",
            "acme",
            "--client-id",
            zdsync::simulator::DEFAULT_CLIENT_ID,
            "--client-secret-file",
            secret.to_str().expect("utf-8"),
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("run-1"), "{out}");

    let expected = sim.control().stats().tickets as u64;
    eventually("the first sync", || async {
        let status = status_json(&daemon);
        (status["state"] == "IDLE" && status["stored_tickets"] == expected).then_some(())
    })
    .await;

    let (ok, out, err) = cli(&daemon, &["sync"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("started run-2"), "{out}");
    eventually("the forced sync", || async {
        (status_json(&daemon)["state"] == "IDLE").then_some(())
    })
    .await;

    let (ok, out, err) = cli(&daemon, &["unmatched", "--csv"]);
    assert!(ok, "{err}");
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("organization_id,organization_name,reason,key_value,candidate_account_ids")
    );
    // No account exists, so every organization is listed as unmatched.
    assert_eq!(lines.count(), sim.control().stats().organizations);
    assert!(out.contains(",UNMATCHED,"), "{out}");

    let (ok, _, err) = cli(&daemon, &["pause"]);
    assert!(ok, "{err}");
    assert_eq!(status_json(&daemon)["state"], "PAUSED");
    let (ok, _, err) = cli(&daemon, &["sync"]);
    assert!(!ok && err.contains("paused"), "{err}");
    let (ok, _, err) = cli(&daemon, &["resume"]);
    assert!(ok, "{err}");
    assert_ne!(status_json(&daemon)["state"], "PAUSED");

    let (ok, _, err) = cli(&daemon, &["delete", "--confirm", "other"]);
    assert!(!ok && err.contains("confirm_subdomain"), "{err}");
    let (ok, out, err) = cli(&daemon, &["delete", "--confirm", "acme"]);
    assert!(ok, "{err}");
    assert!(out.contains("acme"), "{out}");
    assert_eq!(status_json(&daemon)["state"], "NOT_CONFIGURED");
    daemon.stop();
    sim.shutdown().await.expect("simulator stops");
}
