//! `zdsync accounts` against a running daemon: import CSV and JSON, list, get, delete.
mod common;

use common::{Daemon, DaemonOptions};

/// `zdsync accounts ARGS` against `daemon`.
fn cli(daemon: &Daemon, args: &[&str]) -> (bool, String, String) {
    common::cli(daemon, &[&["accounts"], args].concat())
}

#[tokio::test(flavor = "multi_thread")]
async fn import_list_get_delete_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), &DaemonOptions::default());
    let csv = dir.path().join("accounts.csv");
    std::fs::write(
        &csv,
        "id,name,owner,users,attr:zendesk_org,num:seats\n\
         acct-1,Acme,am@example.com,Jane <jane@acme.test>;bob@acme.test,Acme Inc,12\n\
         acct-2,Beta,am@example.com,,Beta LLC,\n",
    )
    .expect("csv");
    let (ok, out, err) = cli(&daemon, &["import", csv.to_str().expect("utf-8")]);
    assert!(ok, "{err}");
    assert!(out.contains("2 created"), "{out}");

    let json = dir.path().join("accounts.json");
    std::fs::write(
        &json,
        r#"[{"id":"acct-2","name":"Beta Renamed","attributes":{"zendesk_org":"Beta LLC","renewal":{"date":"2027-03-01"}}}]"#,
    )
    .expect("json");
    let (ok, out, err) = cli(
        &daemon,
        &["import", json.to_str().expect("utf-8"), "--json"],
    );
    assert!(ok, "{err}");
    let counts: serde_json::Value = serde_json::from_str(out.trim()).expect("json output");
    assert_eq!(counts["updated"], 1);

    let (ok, out, err) = cli(&daemon, &["list", "--json"]);
    assert!(ok, "{err}");
    let listed: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["users"][0]["email"], "jane@acme.test");
    assert_eq!(listed[0]["attributes"]["seats"], 12.0);
    assert_eq!(listed[1]["name"], "Beta Renamed");

    let (ok, out, err) = cli(&daemon, &["get", "acct-1"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("acct-1\tAcme"), "{out}");

    let (ok, out, err) = cli(&daemon, &["delete", "acct-1", "ghost"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("deleted 1") && out.contains("not found: ghost"),
        "{out}"
    );
    let (ok, _, err) = cli(&daemon, &["get", "acct-1"]);
    assert!(!ok, "a deleted account is gone");
    assert!(err.contains("no account \"acct-1\""), "{err}");

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "id,owner\nx,not-an-email\n").expect("csv");
    let (ok, _, err) = cli(&daemon, &["import", bad.to_str().expect("utf-8")]);
    assert!(!ok && err.contains("accounts[0].owner"), "{err}");
    daemon.stop();
}
