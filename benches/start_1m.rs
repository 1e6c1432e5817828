//! Start-up with 1,000,000 tickets stored (DESIGN 5: start to serving <= 300 ms, no full scans at start;
//! store <= 1.5 KB per ticket).
//!
//! Fills a store through `Store::apply_page` (1,000 pages of 1,000 synthetic tickets with realistic subjects,
//! plus 10,000 organizations matched to 10,000 accounts and 100,000 users), marks the first sync done, then
//! spawns the release `zdsync serve` binary on it several times and measures spawn -> `zdsync listening`
//! log line and spawn -> first SERVING health check. Also times `Store::open` alone.
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
use zdsync::secrets::Secret;
use zdsync::store::credentials;
use zdsync::store::credentials::CredentialsRecord;
use zdsync::store::page::{PageContext, PageWrite};
use zdsync::store::sync_state::{IntegrationRecord, RunRecord};
use zdsync::store::zendesk_records::{OrganizationRecord, TicketRecord, ZendeskUserRecord};
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

fn binary() -> Result<PathBuf, BoxError> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")));
    let path = target.join("release").join("zdsync");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--bin", "zdsync"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()?;
        if !status.success() {
            return Err("cargo build --release failed".into());
        }
    }
    Ok(path)
}

struct Start {
    listening: Duration,
    serving: Duration,
}

/// Spawns `zdsync serve` on `data_dir`; times the listening log line and the first SERVING health check.
async fn start_once(binary: &Path, data_dir: &Path, config: &Path) -> Result<Start, BoxError> {
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
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
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
    let binary = binary()?;
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
        let start = runtime.block_on(start_once(&binary, &data_dir, &config))?;
        println!(
            "  start: listening line {:>6.1} ms, SERVING health check {:>6.1} ms",
            ms(start.listening),
            ms(start.serving)
        );
        listening.push(start.listening);
        serving.push(start.serving);
    }
    let worst = serving.iter().max().copied().unwrap_or_default();
    let start_pass = worst <= BAR_START;
    println!(
        "  median of {STARTS}: listening {:.1} ms, serving {:.1} ms; worst serving {:.1} ms  [{}]",
        ms(median(listening)),
        ms(median(serving)),
        ms(worst),
        if start_pass { "PASS" } else { "MISS" }
    );
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
