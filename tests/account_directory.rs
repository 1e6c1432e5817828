//! AccountDirectoryService end to end: CRUD, paging, atomic batches, validation, bulk import, restart.
mod common;

use std::collections::HashMap;

use common::{with_token, Daemon, DaemonOptions};
use tonic::transport::Channel;
use tonic::Code;
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;

fn text(value: &str) -> pb::AttributeValue {
    pb::AttributeValue {
        value: Some(pb::attribute_value::Value::Text(value.into())),
    }
}

fn number(value: f64) -> pb::AttributeValue {
    pb::AttributeValue {
        value: Some(pb::attribute_value::Value::Number(value)),
    }
}

fn account(id: &str) -> pb::Account {
    pb::Account {
        id: id.into(),
        name: format!("Account {id}"),
        owner: "manager@example.com".into(),
        attributes: HashMap::from([("zendesk_org".to_owned(), text(&format!("org-{id}")))]),
        users: vec![pb::User {
            email: format!("user@{id}.test"),
            name: "User".into(),
        }],
    }
}

struct Admin {
    client: AccountDirectoryServiceClient<Channel>,
    token: String,
}

impl Admin {
    async fn of(daemon: &Daemon) -> Self {
        Self {
            client: AccountDirectoryServiceClient::new(daemon.channel().await),
            token: daemon.generated_admin_token(),
        }
    }

    async fn upsert(
        &mut self,
        accounts: Vec<pb::Account>,
    ) -> Result<pb::UpsertAccountsResponse, tonic::Status> {
        self.client
            .upsert_accounts(with_token(
                pb::UpsertAccountsRequest { accounts },
                &self.token,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn get(&mut self, id: &str) -> Result<pb::Account, tonic::Status> {
        self.client
            .get_account(with_token(
                pb::GetAccountRequest { id: id.into() },
                &self.token,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn list_all(&mut self, page_size: u32) -> (Vec<String>, u64, usize) {
        let mut ids = Vec::new();
        let mut page_token = String::new();
        let mut pages = 0;
        loop {
            let page = self
                .client
                .list_accounts(with_token(
                    pb::ListAccountsRequest {
                        page_size,
                        page_token,
                    },
                    &self.token,
                ))
                .await
                .expect("list")
                .into_inner();
            pages += 1;
            ids.extend(page.accounts.into_iter().map(|a| a.id));
            if page.next_page_token.is_empty() {
                return (ids, page.total, pages);
            }
            page_token = page.next_page_token;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upsert_get_list_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), &DaemonOptions::default());
    let mut admin = Admin::of(&daemon).await;

    let created = admin
        .upsert((0..5).map(|i| account(&format!("acct-{i}"))).collect())
        .await
        .expect("upsert");
    assert_eq!((created.created, created.updated), (5, 0));
    let mut changed = account("acct-2");
    changed.name = "Renamed".into();
    changed.attributes.insert("seats".into(), number(12.0));
    let updated = admin
        .upsert(vec![changed.clone(), account("acct-5")])
        .await
        .expect("upsert");
    assert_eq!((updated.created, updated.updated), (1, 1));
    assert_eq!(admin.get("acct-2").await.expect("get"), changed);

    let (ids, total, pages) = admin.list_all(2).await;
    assert_eq!(total, 6);
    assert_eq!(pages, 3);
    assert_eq!(
        ids,
        ["acct-0", "acct-1", "acct-2", "acct-3", "acct-4", "acct-5"]
    );

    let deleted = admin
        .client
        .delete_accounts(with_token(
            pb::DeleteAccountsRequest {
                ids: vec!["acct-1".into(), "nope".into()],
            },
            &admin.token,
        ))
        .await
        .expect("delete")
        .into_inner();
    assert_eq!(deleted.deleted, 1);
    assert_eq!(deleted.not_found, ["nope"]);
    let missing = admin.get("acct-1").await.expect_err("deleted");
    assert_eq!(missing.code(), Code::NotFound);
    assert!(
        missing.message().contains("acct-1"),
        "{}",
        missing.message()
    );

    let bad_token = admin
        .client
        .list_accounts(with_token(
            pb::ListAccountsRequest {
                page_size: 2,
                page_token: "garbage!".into(),
            },
            &admin.token,
        ))
        .await
        .expect_err("bad token");
    assert_eq!(bad_token.code(), Code::InvalidArgument);
    assert!(bad_token.message().contains("page_token"));
    let too_big = admin
        .client
        .list_accounts(with_token(
            pb::ListAccountsRequest {
                page_size: 5000,
                page_token: String::new(),
            },
            &admin.token,
        ))
        .await
        .expect_err("page too big");
    assert!(too_big.message().contains("page_size"));
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_with_one_bad_account_stores_nothing_and_names_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), &DaemonOptions::default());
    let mut admin = Admin::of(&daemon).await;
    admin.upsert(vec![account("existing")]).await.expect("seed");

    let mut bad_email = account("c");
    bad_email.users[0].email = "not an email".into();
    let mut retyped = account("d");
    retyped.attributes.insert("zendesk_org".into(), number(7.0));
    let mut too_many = account("e");
    for i in 0..65 {
        too_many.attributes.insert(format!("a{i}"), text("x"));
    }
    let mut no_value = account("f");
    no_value
        .attributes
        .insert("empty".into(), pb::AttributeValue { value: None });
    let cases = [
        (
            vec![account("a"), account("b"), bad_email],
            "accounts[2].users[0].email",
        ),
        (vec![account("a"), account("")], "accounts[1].id"),
        (
            vec![account("a"), account(&"x".repeat(129))],
            "accounts[1].id",
        ),
        (
            vec![account("a"), account("b"), account("a")],
            "accounts[2].id",
        ),
        // The stored account "existing" has a text zendesk_org: a number elsewhere is refused.
        (
            vec![account("a"), retyped],
            "accounts[1].attributes[\"zendesk_org\"]",
        ),
        (vec![too_many], "accounts[0].attributes"),
        (
            vec![account("a"), no_value],
            "accounts[1].attributes[\"empty\"]",
        ),
    ];
    for (batch, field) in cases {
        let status = admin.upsert(batch).await.expect_err("invalid batch");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{field}: {}",
            status.message()
        );
        assert!(
            status.message().contains(field),
            "expected {field} in {:?}",
            status.message()
        );
        let stored = admin
            .get("a")
            .await
            .expect_err("nothing of the batch is stored");
        assert_eq!(stored.code(), Code::NotFound);
    }
    let (ids, _, _) = admin.list_all(100).await;
    assert_eq!(ids, ["existing"]);

    let oversized: Vec<pb::Account> = (0..1001).map(|i| account(&format!("x{i}"))).collect();
    let status = admin.upsert(oversized).await.expect_err("too many");
    assert!(
        status.message().contains("accounts: at most 1000"),
        "{}",
        status.message()
    );
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn importing_100k_accounts_by_stream_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let daemon = Daemon::start(&data_dir, &DaemonOptions::default());
    let mut admin = Admin::of(&daemon).await;

    const TOTAL: usize = 100_000;
    let messages: Vec<pb::ImportAccountsRequest> = (0..TOTAL)
        .collect::<Vec<_>>()
        .chunks(500)
        .map(|chunk| pb::ImportAccountsRequest {
            accounts: chunk
                .iter()
                .map(|i| account(&format!("bulk-{i:06}")))
                .collect(),
        })
        .collect();
    let response = admin
        .client
        .import_accounts(with_token(tokio_stream::iter(messages), &admin.token))
        .await
        .expect("import")
        .into_inner();
    assert_eq!(response.created, TOTAL as u64);
    assert_eq!(response.updated, 0);
    assert_eq!(response.chunks, 100);
    daemon.stop();

    let daemon = Daemon::start(&data_dir, &DaemonOptions::default());
    let mut admin = Admin::of(&daemon).await;
    let page = admin
        .client
        .list_accounts(with_token(
            pb::ListAccountsRequest {
                page_size: 1,
                page_token: String::new(),
            },
            &admin.token,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(page.total, TOTAL as u64);
    assert_eq!(
        admin.get("bulk-054321").await.expect("kept"),
        account("bulk-054321")
    );

    // A duplicate across messages is refused and named by its position in the whole stream.
    let messages = vec![
        pb::ImportAccountsRequest {
            accounts: vec![account("n1"), account("n2")],
        },
        pb::ImportAccountsRequest {
            accounts: vec![account("n3"), account("n1")],
        },
    ];
    let status = admin
        .client
        .import_accounts(with_token(tokio_stream::iter(messages), &admin.token))
        .await
        .expect_err("duplicate");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("accounts[3].id"),
        "{}",
        status.message()
    );
    daemon.stop();
}
