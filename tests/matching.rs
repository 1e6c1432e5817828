//! Matching end to end: match keys in both directions, statistics, ListUnmatched, instant re-match.
mod common;

use std::collections::HashMap;

use common::inproc::{
    self, configure_and_sync, configure_request, member, sized, status, wait_for_successful_runs,
    Harness, ADMIN_TOKEN,
};
use common::with_token;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;
use zdsync::proto::v1::integration_service_client::IntegrationServiceClient;
use zdsync::simulator::OrganizationInput;

fn org(name: &str, domains: &[&str], crm: &str) -> OrganizationInput {
    let mut fields = serde_json::Map::new();
    fields.insert("crm_id".into(), serde_json::Value::String(crm.into()));
    OrganizationInput {
        name: Some(name.into()),
        domain_names: Some(domains.iter().map(|d| (*d).to_owned()).collect()),
        organization_fields: Some(fields),
        ..Default::default()
    }
}

fn account(id: &str, attributes: &[(&str, &str)], users: &[&str]) -> pb::Account {
    pb::Account {
        id: id.into(),
        name: id.to_uppercase(),
        owner: "am@example.com".into(),
        attributes: attributes
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    pb::AttributeValue {
                        value: Some(pb::attribute_value::Value::Text((*v).into())),
                    },
                )
            })
            .collect::<HashMap<_, _>>(),
        users: users
            .iter()
            .map(|email| pb::User {
                email: (*email).into(),
                name: String::new(),
            })
            .collect(),
    }
}

async fn upsert(accounts: &mut AccountDirectoryServiceClient<Channel>, batch: Vec<pb::Account>) {
    accounts
        .upsert_accounts(with_token(
            pb::UpsertAccountsRequest { accounts: batch },
            ADMIN_TOKEN,
        ))
        .await
        .expect("upsert");
}

async fn unmatched(
    client: &mut IntegrationServiceClient<Channel>,
) -> HashMap<String, pb::UnmatchedOrganization> {
    let mut stream = client
        .list_unmatched(with_token(pb::ListUnmatchedRequest::default(), ADMIN_TOKEN))
        .await
        .expect("list unmatched")
        .into_inner();
    let mut found = HashMap::new();
    while let Some(item) = stream.next().await {
        let item = item.expect("item");
        found.insert(item.organization_name.clone(), item);
    }
    found
}

async fn set_key(
    client: &mut IntegrationServiceClient<Channel>,
    zendesk_field: &str,
    account_attribute: &str,
) -> pb::MatchStats {
    client
        .update_settings(with_token(
            pb::UpdateSettingsRequest {
                match_key: Some(pb::MatchKey {
                    zendesk_field: zendesk_field.into(),
                    account_attribute: account_attribute.into(),
                }),
                ..Default::default()
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("update settings")
        .into_inner()
        .match_stats
        .expect("match stats")
}

#[tokio::test(flavor = "multi_thread")]
async fn match_keys_statistics_unmatched_list_and_instant_rematch() {
    let sim = inproc::simulator(sized(30, 2, 10)).await;
    let control = sim.control();
    let alpha = control
        .create_organization(org("Alpha Inc", &["alpha.test"], "CRM-1"))
        .expect("alpha");
    control
        .create_organization(org("Beta", &["beta.test", "shared.test"], "CRM-2"))
        .expect("beta");
    control
        .create_organization(org("Gamma", &[], "crm-1"))
        .expect("gamma");
    control
        .create_organization(org("Delta", &[], " CRM-1"))
        .expect("delta");
    member(control, "Jane", "Jane@Alpha.test", alpha);
    // Time-based exports hide the latest minute, as Zendesk does.
    control.set_time_offset(180);

    let (sim, _dir, daemon, mut client) = Harness::with_simulator(sim).await.into_parts();
    let control = sim.control();
    let mut accounts = AccountDirectoryServiceClient::new(daemon.channel().await);
    upsert(
        &mut accounts,
        vec![
            account(
                "acct-1",
                &[
                    ("crm", "CRM-1"),
                    ("zendesk_org", "Alpha Inc"),
                    ("domain", "alpha.test"),
                ],
                &["jane@alpha.test"],
            ),
            account(
                "acct-2",
                &[
                    ("crm", "CRM-2"),
                    ("zendesk_org", "Delta"),
                    ("domain", "shared.test"),
                ],
                &[],
            ),
        ],
    )
    .await;

    // Direction 1: the account key lives in Zendesk (a custom organization field).
    let mut request = configure_request();
    request.match_key = Some(pb::MatchKey {
        zendesk_field: "organization_fields.crm_id".into(),
        account_attribute: "attributes.crm".into(),
    });
    client
        .configure(with_token(request, ADMIN_TOKEN))
        .await
        .expect("configure");
    let done = wait_for_successful_runs(&mut client, 1).await;
    let stats = done.match_stats.expect("match stats");
    let total = sim.control().stats().organizations as u64;
    assert_eq!(stats.organizations_total, total);
    assert_eq!(stats.organizations_matched, 2, "Alpha and Beta: {stats:?}");
    assert_eq!(stats.organizations_unmatched, total - 2);
    assert_eq!(stats.organizations_ambiguous, 0);
    assert_eq!(stats.accounts_with_organization, 2);
    assert_eq!(stats.accounts_without_organization, 0);
    assert_eq!(
        stats.users_matched, 1,
        "Jane@Alpha.test is jane@alpha.test of acct-1"
    );

    let list = unmatched(&mut client).await;
    assert_eq!(
        list["Gamma"].key_value.as_deref(),
        Some("crm-1"),
        "case-sensitive"
    );
    assert_eq!(
        list["Delta"].key_value.as_deref(),
        Some(" CRM-1"),
        "no trimming"
    );
    assert_eq!(list["Gamma"].reason, pb::UnmatchedReason::Unmatched as i32);
    assert!(!list.contains_key("Alpha Inc") && !list.contains_key("Beta"));
    assert_eq!(list.len() as u64, total - 2);

    // An account change re-matches at once: a second account with CRM-2 makes Beta ambiguous.
    control.reset_counters();
    upsert(
        &mut accounts,
        vec![account(
            "acct-3",
            &[("crm", "CRM-2"), ("domain", "beta.test")],
            &[],
        )],
    )
    .await;
    let list = unmatched(&mut client).await;
    assert_eq!(list["Beta"].reason, pb::UnmatchedReason::Ambiguous as i32);
    assert_eq!(list["Beta"].candidate_account_ids, ["acct-2", "acct-3"]);
    let stats = status(&mut client).await.match_stats.expect("stats");
    assert_eq!(
        (stats.organizations_matched, stats.organizations_ambiguous),
        (1, 1)
    );
    let only_ambiguous = client
        .list_unmatched(with_token(
            pb::ListUnmatchedRequest {
                reasons: vec![pb::UnmatchedReason::Ambiguous as i32],
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("filtered")
        .into_inner()
        .collect::<Vec<_>>()
        .await;
    assert_eq!(only_ambiguous.len(), 1);

    // Direction 2: the Zendesk key lives on the account (an attribute holding the organization name).
    let stats = set_key(&mut client, "name", "attributes.zendesk_org").await;
    assert_eq!(
        stats.organizations_matched, 2,
        "Alpha Inc -> acct-1, Delta -> acct-2: {stats:?}"
    );
    assert_eq!(stats.organizations_ambiguous, 0);
    let list = unmatched(&mut client).await;
    assert!(!list.contains_key("Delta") && list.contains_key("Beta"));

    // domain_names: any one domain matches; domains hitting two accounts make the organization ambiguous.
    let stats = set_key(&mut client, "domain_names", "attributes.domain").await;
    assert_eq!(
        (stats.organizations_matched, stats.organizations_ambiguous),
        (1, 1),
        "{stats:?}"
    );
    assert_eq!(
        unmatched(&mut client).await["Beta"].candidate_account_ids,
        ["acct-2", "acct-3"]
    );

    // Deleting an account re-matches what it affected.
    accounts
        .delete_accounts(with_token(
            pb::DeleteAccountsRequest {
                ids: vec!["acct-3".into()],
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("delete");
    let stats = status(&mut client).await.match_stats.expect("stats");
    assert_eq!(
        (stats.organizations_matched, stats.organizations_ambiguous),
        (2, 0)
    );

    // None of this asked Zendesk anything.
    let requests: u64 = control.counters().values().sum();
    assert_eq!(
        requests,
        0,
        "re-matching reads the local store only: {:?}",
        control.counters()
    );
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_where_nothing_matches_says_so_in_plain_words() {
    let (sim, _dir, daemon, mut client) = Harness::start(sized(20, 3, 5)).await.into_parts();
    let done = configure_and_sync(&mut client).await;
    assert_eq!(done.match_stats.expect("stats").organizations_matched, 0);
    assert!(
        done.warnings
            .iter()
            .any(|w| w.contains("matched an account") && w.contains("match key")),
        "{:?}",
        done.warnings
    );
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}
