//! Start-up with 1,000,000 tickets stored (DESIGN 5: start to serving <= 300 ms, no full scans at start;
//! store <= 1.5 KB per ticket).
//!
//! Fills a store through `Store::apply_page` (1,000 pages of 1,000 synthetic tickets with realistic subjects,
//! each with its status and priority history and one in five with a satisfaction rating, plus 10,000
//! organizations matched to 10,000 accounts and 100,000 users), marks the first sync done, then spawns the
//! `zdsync` binary cargo built for this bench (so it measures the code it was built from) on it several
//! times and measures spawn -> `zdsync listening` log line and spawn -> first SERVING health check:
//! clean restarts, then restarts after a `kill -9` that lands while the daemon commits account writes,
//! with the database file dropped from the page cache first (`posix_fadvise(DONTNEED)`, no root needed).
//! Also times `Store::open` alone.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use zdsync::domain::account::Account;
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;
use zdsync::secrets::Secret;
use zdsync::store::credentials;
use zdsync::store::credentials::CredentialsRecord;
use zdsync::store::page::TicketChange;
use zdsync::store::page::{PageContext, PageWrite};
use zdsync::store::sync_state::{IntegrationRecord, RunRecord};
use zdsync::store::zendesk_records::{
    ChangeRecord, OrganizationRecord, RatingRecord, TicketRecord, ZendeskUserRecord,
    CHANGE_FIELD_PRIORITY, CHANGE_FIELD_STATUS,
};
use zdsync::store::{Store, DATABASE_FILE};
use zdsync::sync::status::outcome;
use zdsync::sync::RunKind;

const TICKETS: u64 = 1_000_000;
const PER_PAGE: u64 = 1_000;
const ORGANIZATIONS: u64 = 10_000;
const USERS: u64 = 100_000;
const STARTS: usize = 5;
const BAR_START: Duration = Duration::from_millis(300);
const BAR_BYTES_PER_TICKET: f64 = 1_536.0;
const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef";
const ORG_BASE: u64 = 20_000_000;
const USER_BASE: u64 = 10_000_000;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const WORDS: &[&str] = &[
    "cannot",
    "login",
    "invoice",
    "export",
    "failing",
    "after",
    "update",
    "billing",
    "question",
    "password",
    "reset",
    "error",
    "report",
    "dashboard",
    "slow",
    "missing",
    "data",
    "sync",
    "mobile",
    "app",
    "crash",
    "refund",
    "request",
    "integration",
    "webhook",
    "timeout",
    "SSO",
    "setup",
    "broken",
    "link",
    "upgrade",
    "plan",
    "users",
    "permissions",
    "API",
    "limit",
];

/// A subject of about 40 characters, like real ones.
fn subject(rng: &mut StdRng) -> String {
    let mut text = String::new();
    while text.len() < 36 {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    text
}

fn page(number: u64, rng: &mut StdRng, now: i64) -> PageWrite {
    let two_years = 2 * 365 * 86_400;
    let mut changes = Vec::new();
    let mut ratings = Vec::new();
    let tickets = (number * PER_PAGE + 1..=(number + 1) * PER_PAGE)
        .map(|id| {
            let created_at = now - two_years + (two_years * id as i64) / TICKETS as i64;
            let status = rng.random_range(1..=6u32);
            let solved = status >= 5;
            let ticket = TicketRecord {
                subject: subject(rng),
                status,
                priority: rng.random_range(0..=4),
                requester_id: USER_BASE + rng.random_range(1..=USERS),
                assignee_id: USER_BASE + rng.random_range(1..=50),
                group_id: 30_000_000 + rng.random_range(1..=5),
                organization_id: ORG_BASE + rng.random_range(1..=ORGANIZATIONS),
                created_at,
                updated_at: created_at + 3_600,
                generated_timestamp: created_at + 3_600,
                reopens: u32::from(rng.random_bool(0.05)),
                solved_at: if solved { created_at + 7_200 } else { 0 },
                gone: false,
            };
            // Its history as the ticket events export gives it: created, then solved when it is.
            let change =
                |at: i64, event_id: u64, index: u32, field: u32, from: u32, to: u32| TicketChange {
                    ticket_id: id,
                    at,
                    event_id,
                    index,
                    change: ChangeRecord { field, from, to },
                };
            changes.push(change(created_at, id * 10, 0, CHANGE_FIELD_STATUS, 0, 1));
            changes.push(change(
                created_at,
                id * 10,
                1,
                CHANGE_FIELD_PRIORITY,
                0,
                ticket.priority,
            ));
            if solved {
                changes.push(change(
                    created_at + 7_200,
                    id * 10 + 1,
                    0,
                    CHANGE_FIELD_STATUS,
                    2,
                    status,
                ));
            }
            if solved && rng.random_bool(0.2) {
                let bad = rng.random_bool(0.2);
                ratings.push((
                    40_000_000 + id,
                    RatingRecord {
                        ticket_id: id,
                        score: if bad { "bad" } else { "good" }.into(),
                        comment: if bad {
                            "Too slow".into()
                        } else {
                            String::new()
                        },
                        requester_id: ticket.requester_id,
                        created_at: created_at + 7_200,
                        updated_at: created_at + 9_000,
                        from_ticket: false,
                    },
                ));
            }
            (id, ticket)
        })
        .collect();
    let per_page_orgs = ORGANIZATIONS * PER_PAGE / TICKETS;
    let organizations = (number * per_page_orgs + 1..=(number + 1) * per_page_orgs)
        .map(|i| {
            let org = OrganizationRecord {
                name: format!("Organization {i}"),
                domain_names: vec![format!("org{i}.example.com")],
                fields: BTreeMap::from([("account_id".to_owned(), format!("acct-{i:05}"))]),
                updated_at: now - 86_400,
                ..Default::default()
            };
            (ORG_BASE + i, org)
        })
        .collect();
    let per_page_users = USERS * PER_PAGE / TICKETS;
    let users = (number * per_page_users + 1..=(number + 1) * per_page_users)
        .map(|i| {
            let user = ZendeskUserRecord {
                name: format!("User {i}"),
                email: format!("user{i}@org{}.example.com", i % ORGANIZATIONS + 1),
                role: "end-user".into(),
                organization_id: ORG_BASE + i % ORGANIZATIONS + 1,
                active: true,
                updated_at: now - 86_400,
            };
            (USER_BASE + i, user)
        })
        .collect();
    PageWrite {
        tickets,
        organizations,
        users,
        ratings,
        changes,
        cursors: vec![("tickets".into(), format!("cursor-{number}").into_bytes())],
        context: PageContext {
            first_sync: true,
            snapshot_events: false,
            now_ms: now * 1000,
        },
        ..Default::default()
    }
}

/// Fills `data_dir` with the configured integration, accounts and 1,000,000 tickets; the first sync done.
fn fill(data_dir: &Path) -> Result<(), BoxError> {
    std::fs::create_dir_all(data_dir)?;
    std::fs::set_permissions(
        data_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    let now = chrono::Utc::now().timestamp();
    let store = Store::open(data_dir)?;
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
    credentials::save(
        data_dir,
        &CredentialsRecord::ApiToken {
            email: "admin@example.com".into(),
            token: Secret::from("bench-token".to_owned()),
        },
    )?;
    let accounts: Vec<Account> = (1..=ORGANIZATIONS)
        .map(|i| Account {
            id: format!("acct-{i:05}"),
            name: format!("Account {i}"),
            owner: format!("owner{}@example.com", i % 50),
            attributes: BTreeMap::new(),
            users: vec![],
        })
        .collect();
    for (index, chunk) in accounts.chunks(1000).enumerate() {
        store.upsert_accounts(chunk, index * 1000)?;
    }
    let mut rng = StdRng::seed_from_u64(7);
    let started = Instant::now();
    for number in 0..TICKETS / PER_PAGE {
        store.apply_page(&page(number, &mut rng, now))?;
    }
    let filled = started.elapsed();
    let now_ms = now * 1000;
    store.update_sync_state(|state| {
        state.initial_complete = true;
        state.last_successful_sync_ms = now_ms;
        state.last_attempt_ms = now_ms - 60_000;
        state.last_validation_ms = now_ms;
        state.next_run_id = 2;
        state.history = vec![RunRecord {
            id: 1,
            kind: RunKind::Initial.code(),
            started_at_ms: now_ms - 60_000,
            finished_at_ms: now_ms,
            outcome: outcome::SUCCEEDED,
            pages: TICKETS / PER_PAGE,
            ..Default::default()
        }];
    })?;
    let counts = store.stored_counts()?;
    println!(
        "  filled {} tickets, {} organizations ({} matched), {} users in {:.1} s ({:.0} tickets/s through apply_page)",
        counts.tickets,
        counts.organizations,
        store.match_counts()?.matched,
        counts.users,
        filled.as_secs_f64(),
        TICKETS as f64 / filled.as_secs_f64()
    );
    Ok(())
}

/// The `zdsync` binary cargo built with this bench, from the same sources.
fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zdsync"))
}

/// Drops the database file from the page cache, so the next start reads it from the disk.
fn drop_from_page_cache(data_dir: &Path) -> Result<bool, BoxError> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(data_dir.join(DATABASE_FILE))?;
    // SAFETY: advice on an open descriptor; it changes no memory of ours.
    let advised = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    Ok(advised == 0)
}

struct Start {
    listening: Duration,
    serving: Duration,
}

/// Spawns `zdsync serve` on `data_dir`, waits for SERVING, then either stops it (SIGTERM) or, with
/// `crash`, keeps it committing account writes and SIGKILLs it mid-write; returns the start's times.
async fn start_once(
    binary: &Path,
    data_dir: &Path,
    config: &Path,
    crash: Option<Duration>,
) -> Result<Start, BoxError> {
    let spawned = Instant::now();
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .env("ZDSYNC_ADMIN_TOKEN", ADMIN_TOKEN)
        .current_dir(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let (line_tx, line_rx) = std::sync::mpsc::channel::<(String, Instant)>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("zdsync listening") {
                let _ = line_tx.send((line, Instant::now()));
            }
        }
    });
    let (line, seen_at) = line_rx.recv_timeout(Duration::from_secs(60))?;
    let listening = seen_at - spawned;
    let addr = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("addr="))
        .ok_or("no addr= in the listening line")?
        .to_owned();
    let serving = loop {
        let attempt = async {
            let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
                .connect()
                .await?;
            let response = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await?;
            Ok::<_, BoxError>(response.into_inner().status == ServingStatus::Serving as i32)
        };
        if let Ok(true) = attempt.await {
            break spawned.elapsed();
        }
        if spawned.elapsed() > Duration::from_secs(60) {
            return Err("no SERVING health answer within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    match crash {
        None => {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()?;
        }
        Some(after) => {
            // Writers keep commits going; the kill lands while one is under way.
            let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
                .connect()
                .await?;
            let writers: Vec<_> = (0..2)
                .map(|writer| {
                    let mut client = AccountDirectoryServiceClient::new(channel.clone());
                    tokio::spawn(async move {
                        for round in 0_u64.. {
                            let accounts = (0..500)
                                .map(|i| pb::Account {
                                    id: format!(
                                        "acct-crash-{writer}-{}",
                                        (round * 500 + i) % 5_000
                                    ),
                                    name: format!("Crash {round}"),
                                    ..Default::default()
                                })
                                .collect();
                            let mut request =
                                tonic::Request::new(pb::UpsertAccountsRequest { accounts });
                            request.metadata_mut().insert(
                                "authorization",
                                format!("Bearer {ADMIN_TOKEN}").parse().expect("header"),
                            );
                            if client.upsert_accounts(request).await.is_err() {
                                return;
                            }
                        }
                    })
                })
                .collect();
            tokio::time::sleep(after).await;
            Command::new("kill")
                .args(["-KILL", &child.id().to_string()])
                .status()?;
            for writer in writers {
                let _ = writer.await;
            }
        }
    }
    child.wait()?;
    let _ = reader.join();
    Ok(Start { listening, serving })
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn main() -> Result<(), BoxError> {
    let binary = binary();
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("data");
    println!("start with {TICKETS} tickets stored: bar {} ms to serving, {BAR_BYTES_PER_TICKET:.0} bytes per ticket", BAR_START.as_millis());
    fill(&data_dir)?;
    let size = std::fs::metadata(data_dir.join(DATABASE_FILE))?.len();
    let per_ticket = size as f64 / TICKETS as f64;
    let size_pass = per_ticket <= BAR_BYTES_PER_TICKET;
    println!(
        "  database file {:.1} MB: {:.0} bytes per ticket  [{}]",
        size as f64 / 1e6,
        per_ticket,
        if size_pass { "PASS" } else { "MISS" }
    );

    let opened = Instant::now();
    let store = Store::open(&data_dir)?;
    let open_ms = ms(opened.elapsed());
    drop(store);
    println!("  Store::open alone (page cache warm): {open_ms:.1} ms");

    let config = dir.path().join("zdsync.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[zendesk]\nbase_url = \"http://127.0.0.1:9\"\n",
            data_dir.display().to_string()
        ),
    )?;
    let runtime = tokio::runtime::Runtime::new()?;
    let mut listening = Vec::new();
    let mut serving = Vec::new();
    for _ in 0..STARTS {
        let start = runtime.block_on(start_once(&binary, &data_dir, &config, None))?;
        println!(
            "  start: listening line {:>6.1} ms, SERVING health check {:>6.1} ms",
            ms(start.listening),
            ms(start.serving)
        );
        listening.push(start.listening);
        serving.push(start.serving);
    }
    let worst = serving.iter().max().copied().unwrap_or_default();
    let clean_pass = worst <= BAR_START;
    println!(
        "  clean restarts, median of {STARTS}: listening {:.1} ms, serving {:.1} ms; worst serving {:.1} ms  [{}]",
        ms(median(listening)),
        ms(median(serving)),
        ms(worst),
        if clean_pass { "PASS" } else { "MISS" }
    );

    // kill -9 while the daemon commits, then a start from a cold page cache.
    let mut rng = StdRng::seed_from_u64(11);
    let mut crashed = Vec::new();
    for _ in 0..STARTS {
        let after = Duration::from_millis(rng.random_range(50..400));
        runtime.block_on(start_once(&binary, &data_dir, &config, Some(after)))?;
        let cold = drop_from_page_cache(&data_dir)?;
        let start = runtime.block_on(start_once(&binary, &data_dir, &config, None))?;
        println!(
            "  start after kill -9 ({} ms into writes, page cache {}): listening {:>6.1} ms, SERVING {:>6.1} ms",
            after.as_millis(),
            if cold { "dropped" } else { "warm: fadvise refused" },
            ms(start.listening),
            ms(start.serving)
        );
        crashed.push(start.serving);
    }
    let worst_crashed = crashed.iter().max().copied().unwrap_or_default();
    let crash_pass = worst_crashed <= BAR_START;
    println!(
        "  after kill -9, median of {STARTS}: serving {:.1} ms; worst {:.1} ms  [{}]",
        ms(median(crashed)),
        ms(worst_crashed),
        if crash_pass { "PASS" } else { "MISS" }
    );
    let start_pass = clean_pass && crash_pass;
    println!(
        "start with 1M tickets: {}",
        if start_pass && size_pass {
            "PASS"
        } else {
            "MISS"
        }
    );
    Ok(())
}
