//! The served gRPC surface: reflection through grpcurl, health, and the auth matrix.
mod common;

use common::{grpcurl, with_token, Daemon, DaemonOptions};
use tonic::Code;
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;

const READ_TOKEN: &str = "read-token-for-tests-0123456789";

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_lists_describes_and_calls_through_reflection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), &DaemonOptions::default());

    // grpcurl 1.8 speaks reflection v1alpha.
    let (ok, listed, err) = grpcurl(&["-plaintext", &daemon.addr, "list"]);
    assert!(ok, "{err}");
    let mut services: Vec<&str> = listed.lines().collect();
    services.sort_unstable();
    assert_eq!(
        services,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "zdsync.v1.AccountDirectoryService",
            "zdsync.v1.IntegrationService",
            "zdsync.v1.MetricsService",
        ],
        "only fully implemented services are advertised"
    );

    let (ok, described, err) =
        grpcurl(&["-plaintext", &daemon.addr, "describe", "zdsync.v1.Account"]);
    assert!(ok, "{err}");
    assert!(described.contains("message Account"), "{described}");
    assert!(
        described.contains("Email of the account manager"),
        "doc comments reach grpcurl: {described}"
    );

    let (ok, health, err) = grpcurl(&["-plaintext", &daemon.addr, "grpc.health.v1.Health/Check"]);
    assert!(ok, "{err}");
    assert!(health.contains("SERVING"), "{health}");
    let (ok, health, err) = grpcurl(&[
        "-plaintext",
        "-d",
        r#"{"service":"zdsync.v1.AccountDirectoryService"}"#,
        &daemon.addr,
        "grpc.health.v1.Health/Check",
    ]);
    assert!(ok && health.contains("SERVING"), "{health}{err}");

    let token = daemon.generated_admin_token();
    let header = format!("authorization: Bearer {token}");
    let (ok, upserted, err) = grpcurl(&[
        "-plaintext",
        "-H",
        &header,
        "-d",
        r#"{"accounts":[{"id":"acct-1","name":"Acme","attributes":{"tier":{"text":"gold"}}}]}"#,
        &daemon.addr,
        "zdsync.v1.AccountDirectoryService/UpsertAccounts",
    ]);
    assert!(ok, "{err}");
    assert!(upserted.contains("\"created\": 1"), "{upserted}");
    let (ok, _, err) = grpcurl(&[
        "-plaintext",
        "-d",
        r#"{"id":"acct-1"}"#,
        &daemon.addr,
        "zdsync.v1.AccountDirectoryService/GetAccount",
    ]);
    assert!(!ok && err.contains("Unauthenticated"), "{err}");
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_matrix_distinguishes_missing_wrong_read_and_admin_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DaemonOptions {
        env: vec![("ZDSYNC_READ_TOKEN".into(), READ_TOKEN.into())],
        ..Default::default()
    };
    let daemon = Daemon::start(&dir.path().join("data"), &options);
    let admin = daemon.generated_admin_token();
    let channel = daemon.channel().await;
    let mut accounts = AccountDirectoryServiceClient::new(channel.clone());
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);

    let list = || pb::ListAccountsRequest::default();
    let code = accounts
        .list_accounts(tonic::Request::new(list()))
        .await
        .expect_err("no token")
        .code();
    assert_eq!(code, Code::Unauthenticated);
    let code = accounts
        .list_accounts(with_token(list(), "wrong-token-000000000000"))
        .await
        .expect_err("wrong token")
        .code();
    assert_eq!(code, Code::Unauthenticated);
    let denied = accounts
        .list_accounts(with_token(list(), READ_TOKEN))
        .await
        .expect_err("read token on an admin RPC");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(
        denied.message().contains("MetricsService"),
        "{}",
        denied.message()
    );
    accounts
        .list_accounts(with_token(list(), &admin))
        .await
        .expect("admin token");

    // The read token may call MetricsService, and nothing else.
    let mut metrics = zdsync::proto::v1::metrics_service_client::MetricsServiceClient::new(
        daemon.channel().await,
    );
    let ghost = || pb::GetAccountMetricsRequest {
        account_id: "ghost".into(),
    };
    let read = metrics
        .get_account_metrics(with_token(ghost(), READ_TOKEN))
        .await
        .expect_err("no such account");
    assert_eq!(
        read.code(),
        Code::NotFound,
        "the read token passes the auth layer"
    );
    let admin_call = metrics
        .get_account_metrics(with_token(ghost(), &admin))
        .await
        .expect_err("no such account");
    assert_eq!(admin_call.code(), Code::NotFound);
    let anonymous = metrics
        .get_account_metrics(tonic::Request::new(ghost()))
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    for token in [
        None,
        Some("wrong-token-000000000000"),
        Some(READ_TOKEN),
        Some(admin.as_str()),
    ] {
        let request = match token {
            Some(token) => with_token(tonic_health::pb::HealthCheckRequest::default(), token),
            None => tonic::Request::new(tonic_health::pb::HealthCheckRequest::default()),
        };
        let status = health
            .check(request)
            .await
            .expect("health needs no token")
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }
    daemon.stop();
}
