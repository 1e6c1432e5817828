//! `zdsync login` completes the simulator's OAuth code flow: through its loopback redirect (the test plays the
//! browser), and with `--paste`.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use common::{inproc, Daemon, DaemonOptions, DEADLINE};
use zdsync::simulator::SimulatorConfig;

fn login(daemon: &Daemon, secret: &std::path::Path, extra: &[&str]) -> Child {
    Command::new(common::binary())
        .args([
            "login",
            "--subdomain",
            "acme",
            "--client-id",
            zdsync::simulator::DEFAULT_CLIENT_ID,
            "--client-secret-file",
        ])
        .arg(secret)
        .args(extra)
        .args(["--addr", &daemon.addr, "--token-file"])
        .arg(daemon.data_dir.join("admin.token"))
        .env_remove("ZDSYNC_ADMIN_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn zdsync login")
}

/// Reads the child's stderr until the authorize URL it prints; the rest keeps flowing into the returned channel.
fn authorize_url(child: &mut Child) -> (String, mpsc::Receiver<String>) {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + DEADLINE;
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("zdsync login prints the authorize URL");
        if let Some(url) = line
            .trim()
            .strip_prefix("http")
            .map(|rest| format!("http{rest}"))
        {
            return (url, lines);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn login_completes_the_code_flow_through_the_loopback_redirect_and_by_paste() {
    let sim = inproc::simulator(SimulatorConfig {
        tickets: 300,
        organizations: 5,
        users: 30,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DaemonOptions {
        config: format!(
            "[zendesk]\nbase_url = {:?}\nrequests_per_minute = 0\n",
            sim.base_url()
        ),
        ..Default::default()
    };
    let daemon = Daemon::start(&dir.path().join("data"), &options);
    let secret = dir.path().join("client-secret");
    std::fs::write(
        &secret,
        format!("{}\n", zdsync::simulator::DEFAULT_CLIENT_SECRET),
    )
    .expect("secret");

    // Loopback: the browser (this test) opens the URL; the simulator approves and redirects to the CLI.
    let mut child = login(&daemon, &secret, &["--json"]);
    let (url, _stderr) = authorize_url(&mut child);
    assert!(url.starts_with(sim.base_url()), "{url}");
    assert!(url.contains("/oauth/authorizations/new?"), "{url}");
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(
        url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "{url}"
    );
    let page = reqwest::get(&url)
        .await
        .expect("the browser follows the redirect");
    assert!(page.status().is_success(), "{}", page.status());
    assert!(
        page.url().as_str().starts_with("http://127.0.0.1:"),
        "{}",
        page.url()
    );
    assert!(page.url().path() == "/callback", "{}", page.url());
    let body = page.text().await.expect("page");
    assert!(body.contains("zdsync received the authorization"), "{body}");
    let output = child.wait_with_output().expect("login ends");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(result["configured"], true, "{result:#}");
    assert_eq!(result["subdomain"], "acme");
    assert_eq!(result["run_id"], "run-1");
    assert!(result["authenticated_as"]
        .as_str()
        .is_some_and(|a| a.contains('@')));

    let status = Command::new(common::binary())
        .args(["status", "--json", "--addr", &daemon.addr, "--token-file"])
        .arg(daemon.data_dir.join("admin.token"))
        .output()
        .expect("status");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["subdomain"], "acme");

    // --paste, human output: the admin copies the redirected URL into the terminal.
    let mut child = login(
        &daemon,
        &secret,
        &[
            "--paste",
            "--redirect-uri",
            "https://zdsync.example/callback",
        ],
    );
    let (url, _stderr) = authorize_url(&mut child);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let answer = no_redirects.get(&url).send().await.expect("authorize");
    assert_eq!(answer.status(), reqwest::StatusCode::FOUND);
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a redirect")
        .to_owned();
    assert!(
        location.starts_with("https://zdsync.example/callback?code="),
        "{location}"
    );
    let mut stdin = child.stdin.take().expect("stdin piped");
    writeln!(stdin, "{location}").expect("paste");
    drop(stdin);
    let output = child.wait_with_output().expect("login ends");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with("logged in to acme as ")
            && text.contains("the integration's login changed"),
        "{text}"
    );

    // A pasted code of another flow is refused by Zendesk: the CLI fails with its reason.
    let mut child = login(&daemon, &secret, &["--paste"]);
    let (_url, _stderr) = authorize_url(&mut child);
    let mut stdin = child.stdin.take().expect("stdin piped");
    writeln!(stdin, "not-a-real-code").expect("paste");
    drop(stdin);
    let output = child.wait_with_output().expect("login ends");
    assert!(!output.status.success());

    daemon.stop();
    sim.shutdown().await.expect("simulator stops");
}
