//! Metrics end to end, checked against a direct computation over the simulator's data after random
//! mutations and syncs (a model test), plus the read-token access and the error codes.
mod common;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use common::inproc::{
    self, configure_and_sync, sized, upsert_accounts, wait_for_successful_runs, Harness,
    ADMIN_TOKEN,
};
use common::with_token;
use rand::{Rng, SeedableRng};
use tonic::Code;
use zdsync::domain::metrics::{Day, Timeframe};
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::metrics_service_client::MetricsServiceClient;
use zdsync::simulator::{NewRating, Priority, Score, SimulatorControl, Status, TicketUpdate};

/// What an account's metrics must be, computed straight from the simulator's tickets and ratings.
#[derive(Debug, Default, Clone, PartialEq)]
struct Expected {
    open: u64,
    total: u64,
    created: u64,
    open_hu: u64,
    hu_created: u64,
    good: u64,
    bad: u64,
    hu_good: u64,
    hu_bad: u64,
}

fn time(value: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("time"))
        .expect("rfc3339")
        .with_timezone(&Utc)
}

fn expected(
    control: &SimulatorControl,
    org_accounts: &HashMap<u64, String>,
    now: DateTime<Utc>,
) -> BTreeMap<String, Expected> {
    let window = Timeframe::from_days(30).expect("30").window(now);
    let mut by_account: BTreeMap<String, Expected> = org_accounts
        .values()
        .map(|a| (a.clone(), Expected::default()))
        .collect();
    let mut tickets: HashMap<u64, (Option<String>, bool, bool)> = HashMap::new();
    for id in control.ticket_ids() {
        let ticket = control.ticket_json(id).expect("ticket");
        let status = ticket["status"].as_str().expect("status");
        let hu = matches!(ticket["priority"].as_str(), Some("high" | "urgent"));
        let account = ticket["organization_id"]
            .as_u64()
            .and_then(|org| org_accounts.get(&org))
            .cloned();
        let exists = status != "deleted";
        tickets.insert(id, (account.clone(), exists, hu));
        let (Some(account), true) = (account, exists) else {
            continue;
        };
        let e = by_account.get_mut(&account).expect("account");
        let unsolved = matches!(status, "new" | "open" | "pending" | "hold");
        e.total += 1;
        e.open += u64::from(unsolved);
        e.open_hu += u64::from(unsolved && hu);
        if window.contains(&Day::of(time(&ticket["created_at"]))) {
            e.created += 1;
            e.hu_created += u64::from(hu);
        }
    }
    for id in 40_000_001..=40_000_000 + control.stats().satisfaction_ratings as u64 {
        let Some(rating) = control.rating_json(id) else {
            continue;
        };
        let ticket_id = rating["ticket_id"].as_u64().expect("ticket id");
        let Some((Some(account), true, hu)) = tickets.get(&ticket_id).cloned() else {
            continue;
        };
        if !window.contains(&Day::of(time(&rating["updated_at"]))) {
            continue;
        }
        let e = by_account.get_mut(&account).expect("account");
        match rating["score"].as_str() {
            Some("good") => {
                e.good += 1;
                e.hu_good += u64::from(hu);
            }
            Some("bad") => {
                e.bad += 1;
                e.hu_bad += u64::from(hu);
            }
            _ => {}
        }
    }
    by_account
}

fn score(good: u64, bad: u64) -> Option<f64> {
    (good + bad > 0).then(|| good as f64 * 100.0 / (good + bad) as f64)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_equal_a_direct_computation_after_random_mutations_and_syncs() {
    let sim = inproc::simulator(sized(400, 12, 80)).await;
    let control = sim.control();
    let mut org_accounts = HashMap::new();
    for id in 20_000_001..=20_000_000 + control.stats().organizations as u64 {
        let org = control.organization_json(id).expect("org");
        if let Some(account) = org["organization_fields"]["account_id"].as_str() {
            org_accounts.insert(id, account.to_owned());
        }
    }
    assert!(!org_accounts.is_empty());
    let (sim, _dir, daemon, mut client) = Harness::with_simulator(sim).await.into_parts();
    let control = sim.control();
    let mut ids: Vec<String> = org_accounts.values().cloned().collect();
    ids.sort();
    ids.dedup();
    let batch = ids
        .iter()
        .map(|id| pb::Account {
            id: id.clone(),
            name: id.clone(),
            ..Default::default()
        })
        .collect();
    upsert_accounts(&daemon, batch).await;
    configure_and_sync(&mut client).await;
    let mut metrics = MetricsServiceClient::new(daemon.channel().await);

    let seed = 0x5eed_0007_u64;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let ticket_ids = control.ticket_ids();
    for round in 0..4 {
        if round > 0 {
            for _ in 0..25 {
                let id = ticket_ids[rng.random_range(0..ticket_ids.len())];
                let update = match rng.random_range(0..4) {
                    0 => TicketUpdate {
                        status: Some(
                            [
                                Status::Open,
                                Status::Solved,
                                Status::Pending,
                                Status::Closed,
                            ][rng.random_range(0..4)],
                        ),
                        ..Default::default()
                    },
                    1 => TicketUpdate {
                        priority: Some(
                            [
                                None,
                                Some(Priority::High),
                                Some(Priority::Urgent),
                                Some(Priority::Low),
                            ][rng.random_range(0..4)],
                        ),
                        ..Default::default()
                    },
                    2 => {
                        let _ = control.add_rating(
                            id,
                            NewRating {
                                score: [Score::Good, Score::Bad][rng.random_range(0..2)],
                                comment: None,
                            },
                        );
                        continue;
                    }
                    _ => {
                        let _ = control.delete_ticket(id);
                        continue;
                    }
                };
                // Closed tickets refuse changes, as in Zendesk; that is part of the model too.
                let _ = control.update_ticket(id, update);
            }
            control.set_time_offset(120 * round);
            client
                .force_sync(with_token(pb::ForceSyncRequest::default(), ADMIN_TOKEN))
                .await
                .expect("force");
            wait_for_successful_runs(&mut client, 1 + round as usize).await;
        }
        let response = metrics
            .batch_get_account_metrics(with_token(
                pb::BatchGetAccountMetricsRequest {
                    account_ids: ids.clone(),
                },
                ADMIN_TOKEN,
            ))
            .await
            .expect("metrics")
            .into_inner();
        let now = response.metrics[0]
            .computed_at
            .as_ref()
            .and_then(zdsync::grpc::convert::timestamp_from_proto)
            .expect("computed_at");
        let want = expected(control, &org_accounts, now);
        // The model must exercise every figure, or equality would prove little.
        assert!(
            want.values()
                .any(|e| e.open > 0 && e.created > 0 && e.total > e.open),
            "{want:?}"
        );
        if round == 3 {
            assert!(
                want.values()
                    .any(|e| e.good + e.bad > 0 && e.hu_created > 0),
                "{want:?}"
            );
        }
        for got in &response.metrics {
            let e = &want[&got.account_id];
            let seen = Expected {
                open: got.open_tickets,
                total: got.total_tickets,
                created: got.tickets_created,
                open_hu: got.open_high_urgent_tickets,
                hu_created: got.high_urgent_tickets_created,
                good: got.good_ratings,
                bad: got.bad_ratings,
                hu_good: 0,
                hu_bad: 0,
            };
            let mut e_cmp = e.clone();
            e_cmp.hu_good = 0;
            e_cmp.hu_bad = 0;
            assert_eq!(
                seen, e_cmp,
                "round {round}, account {} (seed {seed})",
                got.account_id
            );
            assert_eq!(
                got.satisfaction_score,
                score(e.good, e.bad),
                "round {round}, {}",
                got.account_id
            );
            assert_eq!(
                got.satisfaction_score_high_urgent,
                score(e.hu_good, e.hu_bad),
                "round {round}, {}",
                got.account_id
            );
            assert_eq!(got.timeframe_days, 30);
        }
    }

    // A validation over a consistent store finds no rollup to correct.
    client
        .force_sync(with_token(
            pb::ForceSyncRequest {
                kind: pb::SyncKind::FullValidation as i32,
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("validation");
    let status = wait_for_successful_runs(&mut client, 5).await;
    assert_eq!(status.drift.expect("drift").rollups_corrected, 0);
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_rpcs_answer_the_documented_codes_and_sort() {
    let (sim, _dir, daemon, mut client) = Harness::start(sized(200, 6, 30)).await.into_parts();
    let control = sim.control();
    let mut batch = vec![pb::Account {
        id: "no-org".into(),
        ..Default::default()
    }];
    for id in 20_000_001..=20_000_006u64 {
        let org = control.organization_json(id).expect("org");
        if let Some(account) = org["organization_fields"]["account_id"].as_str() {
            if !batch.iter().any(|a| a.id == account) {
                batch.push(pb::Account {
                    id: account.into(),
                    ..Default::default()
                });
            }
        }
    }
    let count = batch.len();
    upsert_accounts(&daemon, batch).await;
    configure_and_sync(&mut client).await;
    let mut metrics = MetricsServiceClient::new(daemon.channel().await);

    let missing = metrics
        .get_account_metrics(with_token(
            pb::GetAccountMetricsRequest {
                account_id: "ghost".into(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect_err("unknown account");
    assert_eq!(missing.code(), Code::NotFound);
    let empty = metrics
        .get_account_metrics(with_token(
            pb::GetAccountMetricsRequest {
                account_id: "no-org".into(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("an account without an organization")
        .into_inner();
    assert!(empty.zendesk_organization_ids.is_empty());
    assert_eq!((empty.open_tickets, empty.total_tickets), (0, 0));
    let bad = metrics
        .get_account_metrics(with_token(
            pb::GetAccountMetricsRequest::default(),
            ADMIN_TOKEN,
        ))
        .await
        .expect_err("empty id");
    assert!(bad.message().contains("account_id"), "{}", bad.message());

    // Top accounts by open tickets, two at a time, descending.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = metrics
            .list_account_metrics(with_token(
                pb::ListAccountMetricsRequest {
                    page_size: 2,
                    page_token: token,
                    sort_by: pb::MetricSortKey::OpenTickets as i32,
                    descending: true,
                },
                ADMIN_TOKEN,
            ))
            .await
            .expect("list")
            .into_inner();
        assert_eq!(page.total, count as u64);
        seen.extend(page.metrics.iter().map(|m| m.open_tickets));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), count);
    assert!(seen.windows(2).all(|w| w[0] >= w[1]), "{seen:?}");

    let unknown_user = metrics
        .get_user_metrics(with_token(
            pb::GetUserMetricsRequest {
                email: "nobody@example.com".into(),
                account_id: String::new(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect_err("no such user");
    assert_eq!(unknown_user.code(), Code::NotFound);
    let bad_email = metrics
        .get_user_metrics(with_token(
            pb::GetUserMetricsRequest {
                email: "nope".into(),
                account_id: String::new(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect_err("bad email");
    assert!(
        bad_email.message().contains("email"),
        "{}",
        bad_email.message()
    );

    // Metrics stay readable after the integration is deleted.
    let some = seen_account_with_tickets(&mut metrics).await;
    client
        .delete_integration(with_token(
            pb::DeleteIntegrationRequest {
                confirm_subdomain: "acme".into(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("delete");
    let after = metrics
        .get_account_metrics(with_token(
            pb::GetAccountMetricsRequest {
                account_id: some.account_id.clone(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("still readable")
        .into_inner();
    assert_eq!(
        (after.open_tickets, after.total_tickets),
        (some.open_tickets, some.total_tickets)
    );
    assert_eq!(
        after.zendesk_organization_ids,
        some.zendesk_organization_ids
    );
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}

async fn seen_account_with_tickets(
    metrics: &mut MetricsServiceClient<tonic::transport::Channel>,
) -> pb::AccountMetrics {
    let page = metrics
        .list_account_metrics(with_token(
            pb::ListAccountMetricsRequest {
                page_size: 1,
                page_token: String::new(),
                sort_by: pb::MetricSortKey::TotalTickets as i32,
                descending: true,
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("list")
        .into_inner();
    let top = page.metrics.into_iter().next().expect("an account");
    assert!(top.total_tickets > 0);
    top
}
