//! `ListAccountMetrics` over 100,000 accounts (DESIGN 5: first page ≤ 100 ms right after a commit, ≤ 10 ms
//! after that).
//!
//! Fills a store through `Store::apply_page` (100,000 organizations matched to 100,000 accounts, 200,000
//! tickets spread over them and over the last year, one in five solved tickets rated), then calls the
//! metrics service in process (`grpc::metrics::Metrics`, as the daemon's gRPC server would, without the
//! transport) and times, server side:
//! - the first page (top 10 by open tickets, descending) right after a commit that changes one account's
//!   figures, several commits in a row;
//! - the pages after it (same data, no commit in between): the next pages of that sort, the first page
//!   again, and the first page of every other sort and order (each a sort of its own the first time).
//!
//! `ZDSYNC_BENCH_ACCOUNTS=20000` picks another size (tickets stay twice the accounts), `ZDSYNC_BENCH_COMMITS=3`
//! fewer commits (7 by default).
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::Request;
use zdsync::domain::account::Account;
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::metrics_service_server::MetricsService;
use zdsync::store::page::{PageContext, PageWrite};
use zdsync::store::sync_state::IntegrationRecord;
use zdsync::store::zendesk_records::{OrganizationRecord, RatingRecord, TicketRecord};
use zdsync::store::Store;

const DEFAULT_ACCOUNTS: u64 = 100_000;
const TICKETS_PER_ACCOUNT: u64 = 2;
const PER_PAGE: u64 = 1_000;
const COMMITS: usize = 7;
const LATER_PAGES: usize = 20;
const BAR_FIRST: Duration = Duration::from_millis(100);
const BAR_LATER: Duration = Duration::from_millis(10);
const ORG_BASE: u64 = 20_000_000;
const USER_BASE: u64 = 10_000_000;
const BAR: &str = "`ListAccountMetrics` sorted by any metric over 100,000 accounts: first page ≤ 100 ms right after a commit, ≤ 10 ms after that";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn account_id(i: u64) -> String {
    format!("acct-{i:06}")
}

fn ticket(id: u64, rng: &mut StdRng, accounts: u64, now: i64) -> TicketRecord {
    let year = 365 * 86_400;
    let created_at = now - rng.random_range(0..year);
    let status = rng.random_range(1..=6u32);
    TicketRecord {
        subject: format!("ticket {id}"),
        status,
        priority: rng.random_range(0..=4),
        requester_id: USER_BASE + rng.random_range(1..=accounts),
        organization_id: ORG_BASE + rng.random_range(1..=accounts),
        created_at,
        updated_at: created_at + 3_600,
        generated_timestamp: created_at + 3_600,
        solved_at: if status >= 5 { created_at + 7_200 } else { 0 },
        ..Default::default()
    }
}

fn page(number: u64, rng: &mut StdRng, accounts: u64, now: i64) -> PageWrite {
    let tickets_total = accounts * TICKETS_PER_ACCOUNT;
    let pages = tickets_total.div_ceil(PER_PAGE);
    let mut ratings = Vec::new();
    let tickets: Vec<(u64, TicketRecord)> = (number * PER_PAGE + 1
        ..=((number + 1) * PER_PAGE).min(tickets_total))
        .map(|id| {
            let ticket = ticket(id, rng, accounts, now);
            if ticket.status >= 5 && rng.random_bool(0.2) {
                let bad = rng.random_bool(0.2);
                ratings.push((
                    40_000_000 + id,
                    RatingRecord {
                        ticket_id: id,
                        score: if bad { "bad" } else { "good" }.into(),
                        requester_id: ticket.requester_id,
                        created_at: ticket.solved_at,
                        updated_at: ticket.solved_at + 600,
                        ..Default::default()
                    },
                ));
            }
            (id, ticket)
        })
        .collect();
    let per_page_orgs = accounts.div_ceil(pages);
    let organizations = (number * per_page_orgs + 1..=((number + 1) * per_page_orgs).min(accounts))
        .map(|i| {
            let org = OrganizationRecord {
                name: format!("Organization {i}"),
                fields: BTreeMap::from([("account_id".to_owned(), account_id(i))]),
                updated_at: now - 86_400,
                ..Default::default()
            };
            (ORG_BASE + i, org)
        })
        .collect();
    PageWrite {
        tickets,
        organizations,
        ratings,
        cursors: vec![("tickets".into(), format!("cursor-{number}").into_bytes())],
        context: PageContext {
            first_sync: true,
            snapshot_events: false,
            now_ms: now * 1000,
        },
        ..Default::default()
    }
}

fn fill(store: &Store, accounts: u64, now: i64) -> Result<(), BoxError> {
    store.put_integration(&IntegrationRecord {
        subdomain: "bench".into(),
        credential_kind: "api_token".into(),
        match_zendesk_field: "organization_fields.account_id".into(),
        match_account_attribute: "id".into(),
        timeframe_days: 30,
        include_satisfaction: true,
        configured_at: now - 86_400,
        ..Default::default()
    })?;
    let directory: Vec<Account> = (1..=accounts)
        .map(|i| Account {
            id: account_id(i),
            name: format!("Account {i}"),
            owner: String::new(),
            attributes: BTreeMap::new(),
            users: vec![],
        })
        .collect();
    for (index, chunk) in directory.chunks(5_000).enumerate() {
        store.upsert_accounts(chunk, index * 5_000)?;
    }
    let mut rng = StdRng::seed_from_u64(13);
    let pages = (accounts * TICKETS_PER_ACCOUNT).div_ceil(PER_PAGE);
    for number in 0..pages {
        store.apply_page(&page(number, &mut rng, accounts, now))?;
    }
    Ok(())
}

/// One call of the service, timed from the request to the response, as the server handles it.
async fn list(
    service: &zdsync::grpc::metrics::Metrics,
    sort: pb::MetricSortKey,
    descending: bool,
    page_token: String,
) -> Result<(Duration, pb::ListAccountMetricsResponse), BoxError> {
    let request = Request::new(pb::ListAccountMetricsRequest {
        page_size: 10,
        page_token,
        sort_by: sort as i32,
        descending,
    });
    let started = Instant::now();
    let response = service.list_account_metrics(request).await?.into_inner();
    Ok((started.elapsed(), response))
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "MISS"
    }
}

const SORTS: [pb::MetricSortKey; 11] = [
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
    pb::MetricSortKey::Unspecified,
];

async fn run(accounts: u64) -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let now = chrono::Utc::now().timestamp();
    let store = Store::open(dir.path())?;
    let started = Instant::now();
    fill(&store, accounts, now)?;
    let counts = store.stored_counts()?;
    println!(
        "  filled {} accounts, {} organizations ({} matched), {} tickets in {:.1} s",
        store.account_count()?,
        counts.organizations,
        store.match_counts()?.matched,
        counts.tickets,
        started.elapsed().as_secs_f64()
    );
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let service =
        zdsync::grpc::metrics::Metrics::new(store.clone(), zdsync::clock::system(), shutdown);
    let mut rng = StdRng::seed_from_u64(99);
    let mut first = Vec::new();
    let mut next_pages = Vec::new();
    let mut again = Vec::new();
    let mut other_sorts = Vec::new();
    let commits = std::env::var("ZDSYNC_BENCH_COMMITS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(COMMITS)
        .max(1);
    for commit in 0..commits {
        // A commit that changes one account's figures: a new open ticket in a random organization.
        let next_id = accounts * TICKETS_PER_ACCOUNT + 1 + commit as u64;
        let mut ticket = ticket(next_id, &mut rng, accounts, now);
        ticket.status = 2;
        ticket.solved_at = 0;
        store.apply_page(&PageWrite {
            tickets: vec![(next_id, ticket)],
            context: PageContext {
                first_sync: false,
                snapshot_events: false,
                now_ms: now * 1000,
            },
            ..Default::default()
        })?;
        let (took, page) = list(
            &service,
            pb::MetricSortKey::OpenTickets,
            true,
            String::new(),
        )
        .await?;
        first.push(took);
        if commit == 0 {
            let top: Vec<String> = page
                .metrics
                .iter()
                .take(3)
                .map(|m| format!("{} ({} open)", m.account_id, m.open_tickets))
                .collect();
            println!(
                "  top by open tickets: {}, ... of {}",
                top.join(", "),
                page.total
            );
        }
        let mut token = page.next_page_token;
        for _ in 0..LATER_PAGES {
            let (took, page) = list(&service, pb::MetricSortKey::OpenTickets, true, token).await?;
            next_pages.push(took);
            token = page.next_page_token;
        }
        let (took, _) = list(
            &service,
            pb::MetricSortKey::OpenTickets,
            true,
            String::new(),
        )
        .await?;
        again.push(took);
        if commit == 0 || commit == commits - 1 {
            for sort in SORTS {
                for descending in [false, true] {
                    let (took, _) = list(&service, sort, descending, String::new()).await?;
                    other_sorts.push(took);
                }
            }
        }
    }
    let worst = |times: &[Duration]| times.iter().max().copied().unwrap_or_default();
    let first_median = median(&mut first.clone());
    let first_worst = worst(&first);
    let mut later: Vec<Duration> = next_pages
        .iter()
        .chain(&again)
        .chain(&other_sorts)
        .copied()
        .collect();
    let later_median = median(&mut later);
    let later_worst = worst(&later);
    println!();
    println!("ListAccountMetrics over {accounts} accounts, page size 10, server side (in process)");
    println!(
        "  first page right after a commit (top 10 by open tickets), {commits} commits: median {:.2} ms, worst {:.2} ms",
        ms(first_median),
        ms(first_worst)
    );
    println!(
        "  later pages, same data: next pages of that sort median {:.3} ms (worst {:.3}); the first page again median {:.3} ms; first page of each other sort and order median {:.3} ms (worst {:.3})",
        ms(median(&mut next_pages.clone())),
        ms(worst(&next_pages)),
        ms(median(&mut again.clone())),
        ms(median(&mut other_sorts.clone())),
        ms(worst(&other_sorts)),
    );
    println!(
        "  all later pages: median {:.3} ms, worst {:.3} ms",
        ms(later_median),
        ms(later_worst)
    );
    println!("bar: {BAR}");
    let scale = if accounts == DEFAULT_ACCOUNTS {
        ""
    } else {
        " (not the bar's 100,000 accounts)"
    };
    println!(
        "  first page right after a commit ≤ 100 ms: median {:.2} ms, worst {:.2} ms -> {}{scale}",
        ms(first_median),
        ms(first_worst),
        verdict(first_median <= BAR_FIRST)
    );
    println!(
        "  ≤ 10 ms after that: median {:.3} ms, worst {:.3} ms -> {}{scale}",
        ms(later_median),
        ms(later_worst),
        verdict(later_median <= BAR_LATER)
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep that quick.
    let quick = !std::env::args().any(|arg| arg == "--bench");
    let accounts = match std::env::var("ZDSYNC_BENCH_ACCOUNTS") {
        Ok(value) => value.parse()?,
        Err(_) if quick => 2_000,
        Err(_) => DEFAULT_ACCOUNTS,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(accounts))
}
