//! `zdsync watch` against `zdsync demo`: one line per event (text and `--json`), and after the connection is cut
//! it reconnects and resumes from the last cursor, with no gap and no duplicate.
mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use common::demo_fixture::DemoFixture;
use common::{with_token, DEADLINE};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::integration_service_client::IntegrationServiceClient;
use zdsync::proto::v1::metrics_service_client::MetricsServiceClient;

/// A TCP proxy in front of the daemon whose open connections the test can cut.
struct Proxy {
    addr: String,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr").to_string();
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let tracked = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let forward = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tracked.lock().expect("connections").push(forward);
            }
        });
        Proxy {
            addr,
            connections,
            accept,
        }
    }

    /// Drops every open connection (the listener stays, so clients can reconnect).
    fn cut(&self) -> usize {
        let mut connections = self.connections.lock().expect("connections");
        let open = connections.iter().filter(|c| !c.is_finished()).count();
        for connection in connections.drain(..) {
            connection.abort();
        }
        open
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// Spawns `zdsync watch` with `args` against `addr`; stdout and stderr lines arrive on channels.
fn watch(
    demo: &DemoFixture,
    addr: &str,
    args: &[&str],
) -> (Child, mpsc::Receiver<String>, mpsc::Receiver<String>) {
    let mut child = std::process::Command::new(common::binary())
        .arg("watch")
        .args(args)
        .args(["--addr", addr, "--token-file"])
        .arg(&demo.token_file)
        .env_remove("ZDSYNC_ADMIN_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn zdsync watch");
    let forward = |stream: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    };
    let out = forward(Box::new(child.stdout.take().expect("stdout")));
    let err = forward(Box::new(child.stderr.take().expect("stderr")));
    (child, out, err)
}

fn next_line(lines: &mpsc::Receiver<String>, what: &str) -> String {
    lines
        .recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_prints_one_line_per_event_and_resumes_after_a_reconnect() {
    let demo = DemoFixture::start();
    let token = demo.token();
    let channel = demo.channel().await;
    let mut metrics = MetricsServiceClient::new(channel.clone());
    let stored = metrics
        .list_timeline_events(with_token(
            pb::ListTimelineEventsRequest {
                page_size: 1000,
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("ListTimelineEvents")
        .into_inner()
        .events;
    assert!(!stored.is_empty(), "the demo backfilled events");
    assert!(stored.len() < 1000, "one page holds them all");

    // Text: one line per event, with its cursor.
    let (mut child, out, _err) = watch(&demo, &demo.grpc, &["--history"]);
    for _ in 0..stored.len().min(5) {
        let line = next_line(&out, "a text line");
        assert!(line.contains(" cursor="), "{line}");
        assert!(
            [
                "HIGH_URGENT_TICKET_CREATED",
                "HIGH_URGENT_TICKET_SOLVED",
                "HIGH_URGENT_TICKET_REOPENED",
                "BAD_SATISFACTION_RATING"
            ]
            .iter()
            .any(|kind| line.contains(kind)),
            "{line}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();

    // JSON through a proxy that the test cuts.
    let proxy = Proxy::start(demo.grpc.clone()).await;
    let (mut child, out, err) = watch(&demo, &proxy.addr, &["--history", "--json"]);
    let mut seen = HashSet::new();
    let mut last_cursor = String::new();
    for _ in 0..stored.len() {
        let line = next_line(&out, "the replayed history");
        let item: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
        let id = item["event"]["event_id"]
            .as_str()
            .expect("event_id")
            .to_owned();
        assert!(seen.insert(id), "no duplicate: {line}");
        last_cursor = item["cursor"].as_str().expect("cursor").to_owned();
    }
    assert!(proxy.cut() >= 1, "the watch's connection was open");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let line = err
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the watch reports the lost connection");
        if line.contains("resuming after") {
            assert!(
                line.contains(&last_cursor),
                "resumes after the last cursor: {line}"
            );
            break;
        }
    }

    // A new event while (or after) the watch reconnects: a bad rating on a ticket of a matched account.
    let ticket = stored
        .iter()
        .find_map(|event| event.ticket.as_ref().map(|t| t.id))
        .expect("a ticket");
    let rated = reqwest::Client::new()
        .post(format!(
            "{}/_sim/tickets/{ticket}/satisfaction_rating",
            demo.simulator_url
        ))
        .json(&serde_json::json!({"score": "bad", "comment": "Still waiting"}))
        .send()
        .await
        .expect("rate");
    assert!(rated.status().is_success(), "{}", rated.status());
    let mut integration = IntegrationServiceClient::new(channel);
    integration
        .force_sync(with_token(pb::ForceSyncRequest::default(), &token))
        .await
        .expect("ForceSync");
    loop {
        let line = next_line(&out, "the new event after the reconnect");
        let item: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
        let id = item["event"]["event_id"]
            .as_str()
            .expect("event_id")
            .to_owned();
        assert!(seen.insert(id), "no duplicate after the reconnect: {line}");
        if item["event"]["kind"] == "BAD_SATISFACTION_RATING"
            && item["event"]["ticket"]["id"] == ticket
            && item["event"]["satisfaction"]["comment"] == "Still waiting"
        {
            assert_eq!(item["event"]["backfill"], false);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();

    // --from CURSOR: resumes strictly after it (here: nothing before the new event is repeated).
    let (mut child, out, _err) = watch(&demo, &demo.grpc, &["--json", "--from", &last_cursor]);
    let line = next_line(&out, "the event after the cursor");
    let item: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
    assert_eq!(item["event"]["kind"], "BAD_SATISFACTION_RATING", "{line}");
    let _ = child.kill();
    let _ = child.wait();
}
