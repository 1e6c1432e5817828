//! Idle and excess connections cannot starve the daemon: silent clients are closed after the
//! handshake timeout and the connection cap keeps descriptors for real clients.
mod common;

use common::{Daemon, DaemonOptions, DEADLINE};
use tokio::io::AsyncReadExt;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use zdsync::grpc::incoming::{HANDSHAKE_TIMEOUT, MAX_CONNECTIONS};

#[tokio::test(flavor = "multi_thread")]
async fn silent_connections_are_closed_and_a_real_client_still_gets_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), &DaemonOptions::default());
    // More silent clients than the cap: none of them ever sends the HTTP/2 preface.
    let mut silent = Vec::new();
    for _ in 0..MAX_CONNECTIONS + 20 {
        silent.push(
            tokio::net::TcpStream::connect(&daemon.addr)
                .await
                .expect("connect"),
        );
    }
    // A real client is served once the silent ones time out (it waits in the backlog until then).
    let status = tokio::time::timeout(DEADLINE, async {
        let channel = daemon.channel().await;
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
    })
    .await
    .expect("served within the deadline")
    .expect("health check");
    assert_eq!(
        status.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // Every silent client the daemon accepted was closed by it: after the server's own HTTP/2
    // settings, its stream ends.
    for mut stream in silent.into_iter().take(MAX_CONNECTIONS) {
        tokio::time::timeout(DEADLINE + HANDSHAKE_TIMEOUT, async {
            let mut buffer = [0u8; 256];
            while let Ok(read) = stream.read(&mut buffer).await {
                if read == 0 {
                    break;
                }
            }
        })
        .await
        .expect("the daemon closes a silent connection");
    }
}
