//! Hostile request values: a huge bad value is quoted back short, never echoed whole.
mod common;

use common::inproc::{configure_request, Daemon, ADMIN_TOKEN};
use common::with_token;
use tonic::Code;
use zdsync::proto::v1 as pb;

#[tokio::test]
async fn huge_bad_values_are_quoted_at_most_a_hundred_characters() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No Zendesk is contacted: every request here fails validation first.
    let daemon = Daemon::start(
        dir.path(),
        "http://127.0.0.1:9",
        "",
        zdsync::clock::system(),
    )
    .await;
    let mut client = daemon.integration().await;
    let huge = format!("evil\n{}", "x".repeat(500_000));
    let requests = [
        pb::ConfigureRequest {
            subdomain: huge.clone(),
            ..configure_request()
        },
        pb::ConfigureRequest {
            match_key: Some(pb::MatchKey {
                zendesk_field: huge.clone(),
                account_attribute: "id".into(),
            }),
            ..configure_request()
        },
        pb::ConfigureRequest {
            match_key: Some(pb::MatchKey {
                zendesk_field: "name".into(),
                account_attribute: format!("attributes.{huge}"),
            }),
            ..configure_request()
        },
    ];
    for request in requests {
        let status = client
            .configure(with_token(request, ADMIN_TOKEN))
            .await
            .expect_err("invalid");
        assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
        assert!(
            status.message().chars().count() < 400,
            "message of {} characters",
            status.message().len()
        );
        assert!(
            !status.message().contains('\n'),
            "{:.120}",
            status.message()
        );
    }
    daemon.stop().await;
}
