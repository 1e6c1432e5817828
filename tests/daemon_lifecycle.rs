//! The daemon process: config errors, secret permissions, schema refusal, systemd notify, TLS, SIGTERM draining.
mod common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;

use common::{eventually, spawn_serve, wait_exit, with_token, Daemon, DaemonOptions, DEADLINE};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic::Code;
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;

/// Starts `serve` expecting it to fail, and returns everything it wrote to stderr.
fn failed_start(data_dir: &std::path::Path, options: &DaemonOptions) -> String {
    let (mut child, log) = spawn_serve(data_dir, options);
    let status = wait_exit(&mut child);
    assert!(!status.success(), "zdsync should refuse to start");
    log.iter().collect::<Vec<_>>().join("\n")
}

#[test]
fn bad_config_keys_are_named_and_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let cases = [
        ("log_format = \"xml\"", "log_format"),
        ("[zendesk]\ntimeout = \"forever\"", "zendesk.timeout"),
        (
            "[schedule]\nfull_validation_at = \"7pm\"",
            "schedule.full_validation_at",
        ),
        ("[zendesk]\nbase_url = \"not a url\"", "zendesk.base_url"),
        ("[zendesk]\nrequests_per_minut = 5", "requests_per_minut"),
    ];
    for (config, key) in cases {
        let stderr = failed_start(
            &data_dir,
            &DaemonOptions {
                config: config.into(),
                ..Default::default()
            },
        );
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
    }
    let stderr = failed_start(
        &data_dir,
        &DaemonOptions {
            env: vec![("ZDSYNC_SCHEDULE_INCREMENTAL_INTERVAL".into(), "1s".into())],
            ..Default::default()
        },
    );
    assert!(
        stderr.contains("ZDSYNC_SCHEDULE_INCREMENTAL_INTERVAL"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_files_readable_by_others_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, "admin-token-from-a-file-0123456789\n").expect("write");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let options = DaemonOptions {
        config: format!(
            "[auth]\nadmin_token_file = {:?}\n",
            token_file.display().to_string()
        ),
        ..Default::default()
    };
    let stderr = failed_start(&dir.path().join("data"), &options);
    assert!(
        stderr.contains("must not be readable by group or others"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("admin-token-from-a-file"),
        "a token must never be logged: {stderr}"
    );

    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let daemon = Daemon::start(&dir.path().join("data"), &options);
    let mut client = AccountDirectoryServiceClient::new(daemon.channel().await);
    client
        .list_accounts(with_token(
            pb::ListAccountsRequest::default(),
            "admin-token-from-a-file-0123456789",
        ))
        .await
        .expect("the file's token is the admin token");
    assert!(
        !daemon.data_dir.join("admin.token").exists(),
        "no token is generated when one is configured"
    );
    let mode = std::fs::metadata(&daemon.data_dir)
        .expect("data dir")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_from_a_newer_zdsync_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let daemon = Daemon::start(&data_dir, &DaemonOptions::default());
    daemon.stop();
    zdsync::store::force_schema_version(&data_dir, zdsync::store::SCHEMA_VERSION + 1)
        .expect("tamper");
    let stderr = failed_start(&data_dir, &DaemonOptions::default());
    assert!(
        stderr.contains(&format!(
            "schema version {}",
            zdsync::store::SCHEMA_VERSION + 1
        )),
        "{stderr}"
    );
    assert!(stderr.contains("upgrade zdsync"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn systemd_hears_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let options = DaemonOptions {
        env: vec![
            ("NOTIFY_SOCKET".into(), socket_path.display().to_string()),
            ("WATCHDOG_USEC".into(), "200000".into()),
        ],
        ..Default::default()
    };
    // spawn_serve clears NOTIFY_SOCKET and WATCHDOG_USEC; the options put them back.
    let (mut child, _log) = spawn_serve(&dir.path().join("data"), &options);
    let mut buf = [0u8; 512];
    let mut received = |socket: &UnixDatagram| -> String {
        let n = socket.recv(&mut buf).expect("notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut messages = Vec::new();
    while !messages.iter().any(|m: &String| m.contains("READY=1")) {
        messages.push(received(&socket));
    }
    while !messages.iter().any(|m: &String| m.contains("WATCHDOG=1")) {
        messages.push(received(&socket));
    }
    common::signal(&child, "TERM");
    while !messages.iter().any(|m: &String| m.contains("STOPPING=1")) {
        messages.push(received(&socket));
    }
    let status = wait_exit(&mut child);
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_serves_only_tls_clients() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert_pem = certified.cert.pem();
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, &cert_pem).expect("cert");
    std::fs::write(&key_file, certified.signing_key.serialize_pem()).expect("key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let options = DaemonOptions {
        config: format!(
            "[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            cert_file.display().to_string(),
            key_file.display().to_string()
        ),
        ..Default::default()
    };
    let daemon = Daemon::start(&dir.path().join("data"), &options);
    let token = daemon.generated_admin_token();

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(cert_pem))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{}", daemon.addr))
        .expect("uri")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("TLS connect");
    AccountDirectoryServiceClient::new(channel)
        .list_accounts(with_token(pb::ListAccountsRequest::default(), &token))
        .await
        .expect("call over TLS");

    let plaintext = Channel::from_shared(format!("http://{}", daemon.addr))
        .expect("uri")
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        let result = AccountDirectoryServiceClient::new(channel)
            .list_accounts(with_token(pb::ListAccountsRequest::default(), &token))
            .await;
        assert!(
            result.is_err(),
            "plaintext must not be served when TLS is on"
        );
    }
    daemon.stop();
}

fn bulk_account(i: usize) -> pb::Account {
    pb::Account {
        id: format!("term-{i:05}"),
        name: format!("Account {i}"),
        owner: String::new(),
        attributes: HashMap::new(),
        users: vec![],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_streaming_import_drains_exits_zero_and_keeps_committed_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let mut daemon = Daemon::start(&data_dir, &DaemonOptions::default());
    let token = daemon.generated_admin_token();
    let channel = daemon.channel().await;

    let (tx, rx) = tokio::sync::mpsc::channel::<pb::ImportAccountsRequest>(4);
    let mut importer = AccountDirectoryServiceClient::new(channel.clone());
    let import_token = token.clone();
    let import = tokio::spawn(async move {
        importer
            .import_accounts(with_token(
                tokio_stream::wrappers::ReceiverStream::new(rx),
                &import_token,
            ))
            .await
    });
    // Three full chunks are committed as they arrive; a partial fourth is still pending.
    for message in 0..3 {
        let accounts = (message * 1000..(message + 1) * 1000)
            .map(bulk_account)
            .collect();
        tx.send(pb::ImportAccountsRequest { accounts })
            .await
            .expect("send");
    }
    tx.send(pb::ImportAccountsRequest {
        accounts: (3000..3100).map(bulk_account).collect(),
    })
    .await
    .expect("send");
    let mut reader = AccountDirectoryServiceClient::new(channel);
    eventually("the third chunk to be committed", || {
        let mut reader = reader.clone();
        let token = token.clone();
        async move {
            reader
                .get_account(with_token(
                    pb::GetAccountRequest {
                        id: "term-02999".into(),
                    },
                    &token,
                ))
                .await
                .ok()
        }
    })
    .await;

    daemon.terminate();
    let outcome = tokio::time::timeout(DEADLINE, import)
        .await
        .expect("import ends")
        .expect("join");
    let status = outcome.expect_err("the import is cut by the shutdown");
    assert_eq!(status.code(), Code::Unavailable, "{}", status.message());
    assert!(
        status.message().contains("3 chunk(s)"),
        "{}",
        status.message()
    );
    let exit = daemon.wait_exit();
    assert!(exit.success(), "SIGTERM exits 0, got {exit}");
    drop(tx);

    // The store opens clean and holds exactly the committed chunks.
    let store = zdsync::store::Store::open(&data_dir).expect("store opens clean");
    assert_eq!(store.account_count().expect("count"), 3000);
    drop(store);
    let daemon = Daemon::start(&data_dir, &DaemonOptions::default());
    reader = AccountDirectoryServiceClient::new(daemon.channel().await);
    let missing = reader
        .get_account(with_token(
            pb::GetAccountRequest {
                id: "term-03000".into(),
            },
            &token,
        ))
        .await
        .expect_err("the pending partial chunk was not stored");
    assert_eq!(missing.code(), Code::NotFound);
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_an_idle_client_connection_open_stops_without_waiting_out_the_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut daemon = Daemon::start(&dir.path().join("data"), &DaemonOptions::default());
    let token = daemon.generated_admin_token();
    // A client that made one call and keeps its connection open, as a long-lived service does.
    let mut client = AccountDirectoryServiceClient::new(daemon.channel().await);
    let answer = client
        .get_account(with_token(
            pb::GetAccountRequest {
                id: "nobody".into(),
            },
            &token,
        ))
        .await
        .expect_err("no such account");
    assert_eq!(answer.code(), Code::NotFound);

    daemon.terminate();
    let mut said = Vec::new();
    while let Ok(line) = daemon.log.recv_timeout(DEADLINE) {
        let stopped = line.contains("stopped");
        said.push(line);
        if stopped {
            break;
        }
    }
    let exit = daemon.wait_exit();
    assert!(exit.success(), "SIGTERM exits 0, got {exit}");
    assert!(
        said.iter().any(|line| line.contains("stopped")),
        "the daemon logs its stop: {said:#?}"
    );
    assert!(
        !said.iter().any(|line| line.contains("grace period over")),
        "an idle connection is closed, not waited out: {said:#?}"
    );
    drop(client);
}

#[tokio::test]
async fn one_token_for_admin_and_read_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "shared-token-0123456789abcdef";
    let options = DaemonOptions {
        env: vec![
            ("ZDSYNC_ADMIN_TOKEN".into(), token.into()),
            ("ZDSYNC_READ_TOKEN".into(), token.into()),
        ],
        ..Default::default()
    };
    let stderr = failed_start(&dir.path().join("data"), &options);
    assert!(
        stderr.contains("the read token equals the admin token"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(token),
        "a token must never be logged: {stderr}"
    );
}

#[test]
fn missing_tls_files_leave_no_token_or_database_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let options = DaemonOptions {
        config:
            "[tls]\ncert_file = \"/nonexistent/cert.pem\"\nkey_file = \"/nonexistent/key.pem\"\n"
                .into(),
        ..Default::default()
    };
    let stderr = failed_start(&data_dir, &options);
    assert!(stderr.contains("cert.pem"), "{stderr}");
    assert!(
        !data_dir.join("admin.token").exists() && !data_dir.join("zdsync.redb").exists(),
        "nothing is created before the TLS files are read"
    );
}

#[test]
fn clear_text_zendesk_credentials_are_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DaemonOptions {
        config: "[zendesk]\nbase_url = \"http://zendesk.invalid\"\n".into(),
        ..Default::default()
    };
    let (mut child, log) = spawn_serve(&dir.path().join("data"), &options);
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut said = Vec::new();
    while let Ok(line) =
        log.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
    {
        let listening = line.contains("zdsync listening");
        said.push(line);
        if listening {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        said.iter()
            .any(|line| line.contains("clear text") && line.contains("zendesk.invalid")),
        "{said:#?}"
    );
}

#[test]
fn an_operators_mistake_is_one_line_even_with_rust_backtrace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DaemonOptions {
        config: "listen = \"localhost:50051\"\n".into(),
        env: vec![("RUST_BACKTRACE".into(), "1".into())],
    };
    let stderr = failed_start(&dir.path().join("data"), &options);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("zdsync: "), "{stderr}");
    assert!(lines[0].contains("IP address"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
}

#[tokio::test]
async fn a_tiny_watchdog_interval_does_not_stop_the_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DaemonOptions {
        env: vec![("WATCHDOG_USEC".into(), "1".into())],
        ..Default::default()
    };
    let daemon = Daemon::start(&dir.path().join("data"), &options);
    let token = daemon.generated_admin_token();
    let mut client = AccountDirectoryServiceClient::new(daemon.channel().await);
    client
        .list_accounts(with_token(pb::ListAccountsRequest::default(), &token))
        .await
        .expect("the daemon serves with WATCHDOG_USEC=1");
}

#[test]
fn a_data_dir_others_can_write_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let stderr = failed_start(&shared, &DaemonOptions::default());
    assert!(stderr.contains("chmod go-w"), "{stderr}");
    let mode = std::fs::metadata(&shared)
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o777, "an existing directory is never chmod-ed");
}
