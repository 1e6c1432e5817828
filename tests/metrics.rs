//! Metrics end to end, checked against a direct computation over the simulator's data after random
//! mutations and syncs (a model test), plus the read-token access and the error codes.
mod common;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use common::inproc::{
    self, configure_and_sync, new_ticket, organization_with_requester, sized, upsert_accounts,
    wait_for_successful_runs, Harness, ADMIN_TOKEN,
};
use common::with_token;
use rand::{Rng, SeedableRng};
use tonic::Code;
use zdsync::domain::metrics::{Day, Timeframe};
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::metrics_service_client::MetricsServiceClient;
use zdsync::simulator::{
    NewRating, Priority, Score, SimulatorControl, SimulatorHandle, Status, TicketUpdate,
};

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

/// The figures of an `AccountMetrics` or `UserMetrics` answer as an [`Expected`]; the high/urgent rating
/// counts, which the answers carry only as a score, are given.
macro_rules! seen {
    ($got:expr, $hu_good:expr, $hu_bad:expr) => {
        Expected {
            open: $got.open_tickets,
            total: $got.total_tickets,
            created: $got.tickets_created,
            open_hu: $got.open_high_urgent_tickets,
            hu_created: $got.high_urgent_tickets_created,
            good: $got.good_ratings,
            bad: $got.bad_ratings,
            hu_good: $hu_good,
            hu_bad: $hu_bad,
        }
    };
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
    expected_by(control, now, org_accounts.values().cloned(), |ticket| {
        ticket["organization_id"]
            .as_u64()
            .and_then(|org| org_accounts.get(&org))
            .cloned()
    })
}

/// The figures of each of `buckets`, a ticket (and its ratings) counting in the bucket `bucket` gives it.
fn expected_by(
    control: &SimulatorControl,
    now: DateTime<Utc>,
    buckets: impl IntoIterator<Item = String>,
    bucket: impl Fn(&serde_json::Value) -> Option<String>,
) -> BTreeMap<String, Expected> {
    let window = Timeframe::from_days(30).expect("30").window(now);
    let mut by_account: BTreeMap<String, Expected> = buckets
        .into_iter()
        .map(|a| (a, Expected::default()))
        .collect();
    let mut tickets: HashMap<u64, (Option<String>, bool, bool)> = HashMap::new();
    for id in control.ticket_ids() {
        let ticket = control.ticket_json(id).expect("ticket");
        let status = ticket["status"].as_str().expect("status");
        let hu = matches!(ticket["priority"].as_str(), Some("high" | "urgent"));
        let account = bucket(&ticket);
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
    // Each account lists up to two of the requesters of its organizations' tickets as users: their figures
    // (`GetUserMetrics`) are checked against the model too.
    let mut account_users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut email_of: HashMap<u64, String> = HashMap::new();
    for id in control.ticket_ids() {
        let ticket = control.ticket_json(id).expect("ticket");
        let (Some(org), Some(requester)) = (
            ticket["organization_id"].as_u64(),
            ticket["requester_id"].as_u64(),
        ) else {
            continue;
        };
        let Some(account) = org_accounts.get(&org) else {
            continue;
        };
        let user = control.user_json(requester).expect("requester");
        let email = user["email"].as_str().expect("email").to_lowercase();
        email_of.insert(requester, email.clone());
        let users = account_users.entry(account.clone()).or_default();
        if users.len() < 2 && !users.contains(&email) {
            users.push(email);
        }
    }
    assert!(account_users.values().any(|users| users.len() == 2));
    let accounts = ids
        .iter()
        .map(|id| pb::Account {
            id: id.clone(),
            name: id.clone(),
            users: account_users
                .get(id)
                .into_iter()
                .flatten()
                .map(|email| pb::User {
                    email: email.clone(),
                    name: email.clone(),
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    upsert_accounts(&daemon, accounts).await;
    configure_and_sync(&mut client).await;
    let mut metrics = MetricsServiceClient::new(daemon.channel().await);
    let user_key = |account: &str, email: &str| format!("{account} {email}");
    let user_buckets: Vec<String> = account_users
        .iter()
        .flat_map(|(account, users)| users.iter().map(|email| user_key(account, email)))
        .collect();

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
            let seen = seen!(got, 0, 0);
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
        // Each listed user's figures: the tickets they asked in their account's organizations.
        let want_users = expected_by(control, now, user_buckets.clone(), |ticket| {
            let account = org_accounts.get(&ticket["organization_id"].as_u64()?)?;
            let email = email_of.get(&ticket["requester_id"].as_u64()?)?;
            account_users[account]
                .contains(email)
                .then(|| user_key(account, email))
        });
        assert!(want_users.values().any(|e| e.open > 0 && e.total > e.open));
        for (account, users) in &account_users {
            for email in users {
                let got = metrics
                    .get_user_metrics(with_token(
                        pb::GetUserMetricsRequest {
                            email: email.clone(),
                            account_id: account.clone(),
                        },
                        ADMIN_TOKEN,
                    ))
                    .await
                    .expect("user metrics")
                    .into_inner();
                let e = &want_users[&user_key(account, email)];
                let seen = seen!(got, e.hu_good, e.hu_bad);
                assert_eq!(&seen, e, "round {round}, user {email} of {account}");
                assert_eq!(
                    got.satisfaction_score_high_urgent,
                    score(e.hu_good, e.hu_bad),
                    "round {round}, {email}"
                );
            }
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

    // The figure cache counts its lookups (`zdsync_figure_cache_lookups_total`): with no commit in between,
    // the second read of an account is a hit. Other tests in this process only add to the counts. A hit is
    // served on the serving thread and a miss on the blocking pool: both answer the same.
    let read = |id: String| {
        let mut metrics = metrics.clone();
        async move {
            metrics
                .get_account_metrics(with_token(
                    pb::GetAccountMetricsRequest { account_id: id },
                    ADMIN_TOKEN,
                ))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let computed = read(ids[0].clone()).await.expect("metrics");
    let (hits, misses) = zdsync::telemetry::figure_cache_lookups();
    assert!(hits + misses > 0, "the first read was counted");
    let cached = read(ids[0].clone()).await.expect("metrics");
    assert!(
        zdsync::telemetry::figure_cache_lookups().0 > hits,
        "the second read was a hit"
    );
    let figures_only = |metrics: pb::AccountMetrics| pb::AccountMetrics {
        computed_at: None,
        ..metrics
    };
    assert_eq!(
        figures_only(cached),
        figures_only(computed),
        "a cached answer is the computed one"
    );
    // An account the directory does not hold is not found, computed or cached.
    for attempt in ["computed", "cached"] {
        let missing = read("no-such-account".into()).await.expect_err(attempt);
        assert_eq!(missing.code(), tonic::Code::NotFound, "{attempt}");
        assert!(missing.message().starts_with("account_id"), "{attempt}");
    }
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

/// A daemon synced with a simulator of `tickets` tickets over `organizations` organizations, and an
/// account for every `organization_fields.account_id` plus two without an organization; returns the
/// account ids in id order.
async fn listed_directory(
    tickets: u32,
    organizations: u32,
) -> (
    SimulatorHandle,
    tempfile::TempDir,
    inproc::Daemon,
    zdsync::proto::v1::integration_service_client::IntegrationServiceClient<
        tonic::transport::Channel,
    >,
    Vec<String>,
) {
    let (sim, dir, daemon, mut client) = Harness::start(sized(tickets, organizations, 60))
        .await
        .into_parts();
    let control = sim.control();
    let mut ids = vec!["no-org-a".to_owned(), "no-org-z".to_owned()];
    for id in 20_000_001..=20_000_000 + u64::from(organizations) {
        let org = control.organization_json(id).expect("org");
        if let Some(account) = org["organization_fields"]["account_id"].as_str() {
            ids.push(account.to_owned());
        }
    }
    ids.sort();
    ids.dedup();
    let batch = ids
        .iter()
        .map(|id| pb::Account {
            id: id.clone(),
            ..Default::default()
        })
        .collect();
    upsert_accounts(&daemon, batch).await;
    configure_and_sync(&mut client).await;
    (sim, dir, daemon, client, ids)
}

const ALL_SORTS: [pb::MetricSortKey; 11] = [
    pb::MetricSortKey::Unspecified,
    pb::MetricSortKey::AccountId,
    pb::MetricSortKey::OpenTickets,
    pb::MetricSortKey::TotalTickets,
    pb::MetricSortKey::TicketsCreated,
    pb::MetricSortKey::OpenHighUrgentTickets,
    pb::MetricSortKey::HighUrgentTicketsCreated,
    pb::MetricSortKey::SatisfactionScore,
    pb::MetricSortKey::SatisfactionScoreHighUrgent,
    pb::MetricSortKey::GoodRatings,
    pb::MetricSortKey::BadRatings,
];

fn shown_value(metrics: &pb::AccountMetrics, key: pb::MetricSortKey) -> Option<f64> {
    use pb::MetricSortKey as K;
    Some(match key {
        K::Unspecified | K::AccountId => return None,
        K::OpenTickets => metrics.open_tickets as f64,
        K::TotalTickets => metrics.total_tickets as f64,
        K::TicketsCreated => metrics.tickets_created as f64,
        K::OpenHighUrgentTickets => metrics.open_high_urgent_tickets as f64,
        K::HighUrgentTicketsCreated => metrics.high_urgent_tickets_created as f64,
        K::SatisfactionScore => return metrics.satisfaction_score,
        K::SatisfactionScoreHighUrgent => return metrics.satisfaction_score_high_urgent,
        K::GoodRatings => metrics.good_ratings as f64,
        K::BadRatings => metrics.bad_ratings as f64,
    })
}

/// The documented order: by the metric (largest first when descending), accounts without a value last,
/// ties by account id ascending; by account id alone for `ACCOUNT_ID` (descending too) and unset.
fn documented_order(
    mut all: Vec<pb::AccountMetrics>,
    key: pb::MetricSortKey,
    descending: bool,
) -> Vec<pb::AccountMetrics> {
    use std::cmp::Ordering;
    all.sort_by(|a, b| {
        let by_value = match (shown_value(a, key), shown_value(b, key)) {
            (Some(x), Some(y)) if descending => y.total_cmp(&x),
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        let by_id = if key == pb::MetricSortKey::AccountId && descending {
            b.account_id.cmp(&a.account_id)
        } else {
            a.account_id.cmp(&b.account_id)
        };
        by_value.then(by_id)
    });
    all
}

async fn list_page(
    metrics: &mut MetricsServiceClient<tonic::transport::Channel>,
    key: pb::MetricSortKey,
    descending: bool,
    page_size: u32,
    page_token: String,
) -> Result<pb::ListAccountMetricsResponse, tonic::Status> {
    metrics
        .list_account_metrics(with_token(
            pb::ListAccountMetricsRequest {
                page_size,
                page_token,
                sort_by: key as i32,
                descending,
            },
            ADMIN_TOKEN,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Every page from `token` on.
async fn list_rest(
    metrics: &mut MetricsServiceClient<tonic::transport::Channel>,
    key: pb::MetricSortKey,
    descending: bool,
    page_size: u32,
    mut token: String,
) -> Vec<pb::AccountMetrics> {
    let mut all = Vec::new();
    loop {
        let page = list_page(metrics, key, descending, page_size, token)
            .await
            .expect("list");
        assert!(page.metrics.len() <= page_size as usize);
        all.extend(page.metrics);
        if page.next_page_token.is_empty() {
            return all;
        }
        token = page.next_page_token;
    }
}

/// Without `computed_at`, which every call sets to its own now.
fn figures_only(mut metrics: pb::AccountMetrics) -> pb::AccountMetrics {
    metrics.computed_at = None;
    metrics
}

async fn batch(
    metrics: &mut MetricsServiceClient<tonic::transport::Channel>,
    ids: &[String],
) -> Vec<pb::AccountMetrics> {
    metrics
        .batch_get_account_metrics(with_token(
            pb::BatchGetAccountMetricsRequest {
                account_ids: ids.to_vec(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("batch")
        .into_inner()
        .metrics
}

#[tokio::test(flavor = "multi_thread")]
async fn list_pages_cover_every_account_once_in_each_sort_and_order() {
    let (sim, _dir, daemon, _client, ids) = listed_directory(400, 16).await;
    let mut metrics = MetricsServiceClient::new(daemon.channel().await);
    let want_all = batch(&mut metrics, &ids).await;
    assert_eq!(want_all.len(), ids.len());
    assert!(
        want_all.iter().any(|m| m.satisfaction_score.is_some())
            && want_all.iter().any(|m| m.satisfaction_score.is_none()),
        "scores and no scores, so both sort"
    );
    for key in ALL_SORTS {
        for descending in [false, true] {
            let want: Vec<pb::AccountMetrics> = documented_order(want_all.clone(), key, descending)
                .into_iter()
                .map(figures_only)
                .collect();
            for page_size in [1, 4, 1000] {
                let first = list_page(&mut metrics, key, descending, page_size, String::new())
                    .await
                    .expect("first page");
                assert_eq!(first.total, ids.len() as u64);
                let mut got: Vec<pb::AccountMetrics> = first.metrics;
                if !first.next_page_token.is_empty() {
                    got.extend(
                        list_rest(
                            &mut metrics,
                            key,
                            descending,
                            page_size,
                            first.next_page_token,
                        )
                        .await,
                    );
                }
                let got: Vec<pb::AccountMetrics> = got.into_iter().map(figures_only).collect();
                assert_eq!(
                    got, want,
                    "{key:?} descending {descending}, {page_size} a page"
                );
            }
        }
    }
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_on_after_a_commit_neither_repeats_nor_skips_an_unchanged_account() {
    let (sim, _dir, daemon, mut client, ids) = listed_directory(300, 12).await;
    let control = sim.control();
    let mut metrics = MetricsServiceClient::new(daemon.channel().await);
    let before = batch(&mut metrics, &ids).await;
    let key = pb::MetricSortKey::OpenTickets;
    let first = list_page(&mut metrics, key, true, 3, String::new())
        .await
        .expect("first page");
    let shown: Vec<String> = first.metrics.iter().map(|m| m.account_id.clone()).collect();
    // Paging so far: the next page, with the token, before anything changes.
    let second = list_page(&mut metrics, key, true, 3, first.next_page_token.clone())
        .await
        .expect("second page");
    let shown_then: Vec<String> = shown
        .iter()
        .cloned()
        .chain(second.metrics.iter().map(|m| m.account_id.clone()))
        .collect();

    // Two commits: an account upsert (a new account), then a sync that gives an account shown on neither
    // page yet more open tickets, through an organization of its own.
    upsert_accounts(
        &daemon,
        vec![pb::Account {
            id: "aaa-new".into(),
            ..Default::default()
        }],
    )
    .await;
    let moved = before
        .iter()
        .rev()
        .find(|m| !shown_then.contains(&m.account_id) && !m.account_id.starts_with("no-org"))
        .expect("an account not shown yet")
        .account_id
        .clone();
    let (_, requester) = organization_with_requester(
        control,
        "Moved Inc",
        &moved,
        "Mo Ved",
        "mo@moved.example.com",
    );
    // Enough to move it to the top: an offset would then show the first page's last account again.
    let more = first.metrics[0].open_tickets + 1;
    for n in 0..more {
        new_ticket(
            control,
            &format!("more work {n}"),
            requester,
            Priority::Normal,
        );
    }
    client
        .force_sync(with_token(pb::ForceSyncRequest::default(), ADMIN_TOKEN))
        .await
        .expect("force");
    wait_for_successful_runs(&mut client, 2).await;

    let mut all_ids = ids.clone();
    all_ids.push("aaa-new".into());
    let after = batch(&mut metrics, &all_ids).await;
    let moved_after = after
        .iter()
        .find(|m| m.account_id == moved)
        .expect("moved account");
    let moved_before = before
        .iter()
        .find(|m| m.account_id == moved)
        .expect("moved account");
    assert_eq!(
        moved_after.open_tickets,
        moved_before.open_tickets + more,
        "the sync changed its figures"
    );
    let top = list_page(&mut metrics, key, true, 1, String::new())
        .await
        .expect("top");
    assert_eq!(
        top.metrics[0].account_id, moved,
        "it moved ahead of the first page"
    );
    let unchanged: Vec<&String> = before
        .iter()
        .filter(|b| {
            after
                .iter()
                .any(|a| a.account_id == b.account_id && a.open_tickets == b.open_tickets)
        })
        .map(|b| &b.account_id)
        .collect();
    assert_eq!(unchanged.len(), ids.len() - 1, "only one account moved");

    // Paging on with the token of the first page: what the second page showed comes again (nothing
    // changed around it), and no account of the first page does.
    let rest = list_rest(&mut metrics, key, true, 3, first.next_page_token).await;
    let rest_ids: Vec<&String> = rest.iter().map(|m| &m.account_id).collect();
    for id in &unchanged {
        let times = rest_ids.iter().filter(|r| **r == *id).count();
        if shown.contains(id) {
            assert_eq!(times, 0, "{id} was on the first page and came again");
        } else {
            assert_eq!(times, 1, "{id} was not on the first page: it comes once");
        }
    }
    assert!(
        rest_ids.iter().any(|id| *id == "aaa-new"),
        "the new account sorts after the first page"
    );
    assert_eq!(
        rest.iter()
            .filter(|m| second.metrics.iter().any(|s| s.account_id == m.account_id))
            .count(),
        second.metrics.len()
    );
    // What follows the first page is still in order.
    let values: Vec<u64> = rest.iter().map(|m| m.open_tickets).collect();
    assert!(values.windows(2).all(|w| w[0] >= w[1]), "{values:?}");
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_list_tokens_are_invalid_arguments_naming_page_token() {
    use base64::Engine;
    let (sim, _dir, daemon, _client, _ids) = listed_directory(100, 6).await;
    let mut metrics = MetricsServiceClient::new(daemon.channel().await);
    let key = pb::MetricSortKey::TotalTickets;
    let first = list_page(&mut metrics, key, true, 2, String::new())
        .await
        .expect("first page");
    assert!(!first.next_page_token.is_empty());
    let encode = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
    let hostile = [
        "%%%".to_owned(),
        "not base64 at all".to_owned(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x00]),
        encode("timeline.v2:1:2:abc"),
        encode("metrics:10:3:true"),
        encode("metrics.v2:"),
        encode("metrics.v2:3:true"),
        encode("metrics.v2:3:true:5"),
        encode("metrics.v2:3:true:x:acct"),
        encode("metrics.v2:3:true:18446744073709551616:acct"),
        encode("metrics.v2:3:true:-1:acct"),
        encode("metrics.v2:2:true:5:acct"),
        encode("metrics.v2:3:false:5:acct"),
        encode("metrics.v2:3:TRUE:5:acct"),
        encode("metrics.v2:03:true:5:acct"),
    ];
    for token in hostile {
        let err = list_page(&mut metrics, key, true, 2, token.clone())
            .await
            .expect_err("hostile token");
        assert_eq!(err.code(), Code::InvalidArgument, "{token}");
        assert!(
            err.message().starts_with("page_token: "),
            "{token}: {}",
            err.message()
        );
    }
    // The token of one sort does not continue another, nor the other order.
    for (other_key, descending) in [(pb::MetricSortKey::OpenTickets, true), (key, false)] {
        let err = list_page(
            &mut metrics,
            other_key,
            descending,
            2,
            first.next_page_token.clone(),
        )
        .await
        .expect_err("another sort");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().starts_with("page_token: "),
            "{}",
            err.message()
        );
    }
    // A well-formed position is a place in the order, whether or not its account still exists.
    for token in [
        encode("metrics.v2:3:true:18446744073709551615:"),
        encode("metrics.v2:3:true:0:zzz:with:colons"),
        encode("metrics.v2:3:true:-:ghost"),
    ] {
        list_page(&mut metrics, key, true, 2, token)
            .await
            .expect("a position");
    }
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}
