//! The served gRPC surface: reflection (through a Rust reflection client), health, and the auth matrix.
mod common;

use common::reflection::{self, Version};
use common::{with_token, Daemon, DaemonOptions};
use tonic::Code;
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;

const READ_TOKEN: &str = "read-token-for-tests-0123456789";

#[tokio::test(flavor = "multi_thread")]
async fn reflection_lists_describes_and_health_answers_without_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), &DaemonOptions::default());
    let channel = daemon.channel().await;

    // Both protocol versions: grpcurl before 1.9 speaks only v1alpha.
    for version in [Version::V1, Version::V1Alpha] {
        let services = reflection::list_services(channel.clone(), version).await;
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
            "only fully implemented services are advertised ({version:?})"
        );

        let files = reflection::files_containing(channel.clone(), version, "zdsync.v1.Account")
            .await
            .expect("describe zdsync.v1.Account");
        let types = files
            .iter()
            .find(|file| file.name() == "zdsync/v1/types.proto")
            .expect("types.proto is sent");
        assert!(
            types.message_type.iter().any(|m| m.name() == "Account"),
            "message Account is described"
        );
        let comment = reflection::leading_comment(types, "Account", Some("owner"))
            .expect("doc comments reach reflection clients");
        assert!(
            comment.contains("Email of the account manager"),
            "{comment}"
        );

        // Every service can be described, with every RPC, without .proto files.
        for (service, file, rpc) in [
            (
                "IntegrationService",
                "zdsync/v1/integration.proto",
                "GetStatus",
            ),
            (
                "MetricsService",
                "zdsync/v1/metrics.proto",
                "WatchTimelineEvents",
            ),
            (
                "AccountDirectoryService",
                "zdsync/v1/accounts.proto",
                "ImportAccounts",
            ),
        ] {
            let files = reflection::files_containing(
                channel.clone(),
                version,
                &format!("zdsync.v1.{service}"),
            )
            .await
            .expect("describe a service");
            let declaring = files
                .iter()
                .find(|f| f.name() == file)
                .unwrap_or_else(|| panic!("{file} is sent for {service}"));
            assert!(
                reflection::methods(declaring, service)
                    .iter()
                    .any(|m| m == rpc),
                "{service} describes {rpc}"
            );
        }
        let unknown =
            reflection::files_containing(channel.clone(), version, "zdsync.v1.NoSuchThing").await;
        assert!(unknown.is_err(), "an unknown symbol is an error response");
    }

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in ["", "zdsync.v1.AccountDirectoryService"] {
        let answer = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health needs no token")
            .into_inner();
        assert_eq!(
            answer.status(),
            tonic_health::pb::health_check_response::ServingStatus::Serving,
            "health of {service:?}"
        );
    }

    let token = daemon.generated_admin_token();
    let mut accounts = AccountDirectoryServiceClient::new(channel);
    let upserted = accounts
        .upsert_accounts(with_token(
            pb::UpsertAccountsRequest {
                accounts: vec![pb::Account {
                    id: "acct-1".into(),
                    name: "Acme".into(),
                    attributes: [(
                        "tier".to_owned(),
                        pb::AttributeValue {
                            value: Some(pb::attribute_value::Value::Text("gold".into())),
                        },
                    )]
                    .into(),
                    ..Default::default()
                }],
            },
            &token,
        ))
        .await
        .expect("upsert with the admin token")
        .into_inner();
    assert_eq!(upserted.created, 1);
    let code = accounts
        .get_account(tonic::Request::new(pb::GetAccountRequest {
            id: "acct-1".into(),
        }))
        .await
        .expect_err("no token")
        .code();
    assert_eq!(code, Code::Unauthenticated);
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
