//! Page apply throughput (DESIGN 5: >= 50,000 tickets/s through decode + match + rollups + events + durable
//! commit, 1,000-ticket pages).
//!
//! Ticket export pages are rendered ONCE by the in-process simulator (50,000 tickets, side-loaded users,
//! organizations, groups and metric sets) and kept as bytes; then each body is decoded exactly as the
//! client decodes a ticket page, converted as the sync run converts it, and applied in one durable
//! transaction to a store whose organizations match accounts. Measured twice: the initial load (every
//! ticket new) and a re-apply of changed copies (newer `generated_timestamp`, another status).
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use zdsync::config::DEFAULT_PAGES_PER_COMMIT;
use zdsync::domain::account::Account;
use zdsync::simulator::{self, SimulatorConfig};
use zdsync::store::page::{PageContext, PageWrite};
use zdsync::store::sync_state::IntegrationRecord;
use zdsync::store::Store;
use zdsync::sync::convert;
use zdsync::sync::run::BATCH_RECORDS;
use zdsync::zendesk::decode::decode_json;
use zdsync::zendesk::envelope::TicketCursorPage;
use zdsync::zendesk::TicketSideLoads;

const TICKETS: u32 = 50_000;
const ORGANIZATIONS: u32 = 1_000;
const USERS: u32 = 10_000;
const BAR_TICKETS_PER_S: f64 = 50_000.0;
const EXPORT_PATH: &str = "/api/v2/incremental/tickets/cursor.json";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Fetches every page of the ticket export with all side-loads, as raw bodies.
async fn fetch_pages() -> Result<Vec<Vec<u8>>, BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = simulator::start(
        SimulatorConfig {
            tickets: TICKETS,
            organizations: ORGANIZATIONS,
            users: USERS,
            ..Default::default()
        },
        listener,
    )
    .await?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}/token:{}",
        simulator::DEFAULT_API_TOKEN_EMAIL,
        simulator::DEFAULT_API_TOKEN
    ));
    let http = reqwest::Client::new();
    let mut pages = Vec::new();
    let mut query = "start_time=0".to_owned();
    loop {
        let url = format!(
            "{}{EXPORT_PATH}?{query}&per_page=1000&include=users,groups,organizations,metric_sets",
            sim.base_url()
        );
        let body = http
            .get(&url)
            .header("Authorization", format!("Basic {auth}"))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?
            .to_vec();
        let head: serde_json::Value = serde_json::from_slice(&body)?;
        let end = head["end_of_stream"].as_bool().unwrap_or(true);
        let cursor = head["after_cursor"].as_str().unwrap_or_default().to_owned();
        pages.push(body);
        if end {
            break;
        }
        query = format!("cursor={cursor}");
    }
    sim.shutdown().await?;
    Ok(pages)
}

/// The same pages with every ticket changed: a later `generated_timestamp` and another status.
fn changed_copies(pages: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, BoxError> {
    fn next_status(status: &str) -> &str {
        match status {
            "new" => "open",
            "open" => "pending",
            "pending" => "solved",
            "hold" => "open",
            "solved" => "open",
            other => other,
        }
    }
    pages
        .iter()
        .map(|body| {
            let mut page: serde_json::Value = serde_json::from_slice(body)?;
            if let Some(tickets) = page["tickets"].as_array_mut() {
                for ticket in tickets {
                    let generated = ticket["generated_timestamp"].as_i64().unwrap_or(0);
                    ticket["generated_timestamp"] = (generated + 3_600).into();
                    let status = next_status(ticket["status"].as_str().unwrap_or("open"));
                    ticket["status"] = status.into();
                }
            }
            Ok(serde_json::to_vec(&page)?)
        })
        .collect()
}

/// A store with the integration's match key and one account per simulator account id.
fn matched_store(dir: &std::path::Path) -> Result<Store, BoxError> {
    let store = Store::open(dir)?;
    store.put_integration(&IntegrationRecord {
        subdomain: "bench".into(),
        match_zendesk_field: "organization_fields.account_id".into(),
        match_account_attribute: "id".into(),
        timeframe_days: 30,
        include_satisfaction: true,
        ..Default::default()
    })?;
    let accounts: Vec<Account> = (1..=ORGANIZATIONS)
        .map(|i| Account {
            id: format!("acct-{i:04}"),
            name: format!("Account {i}"),
            owner: format!("owner{}@example.com", i % 20),
            attributes: BTreeMap::new(),
            users: vec![],
        })
        .collect();
    for (index, chunk) in accounts.chunks(1000).enumerate() {
        store.upsert_accounts(chunk, index * 1000)?;
    }
    Ok(store)
}

/// CPU time of this thread (user + system), from `/proc/thread-self/stat` (clock ticks of 10 ms).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Bytes this process caused to be written to storage, from `/proc/self/io`.
fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("write_bytes: "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

#[derive(Default)]
struct Split {
    apply_cpu: Duration,
    apply_written: u64,
    decode: Duration,
    convert: Duration,
    apply: Duration,
    tickets: u64,
    written: u64,
    commits: u64,
}

/// Decodes, converts and applies every page; the timed path of a sync run minus the network. Pages are
/// committed `pages_per_commit` at a time (at most `BATCH_RECORDS` records), as the sync run stages them;
/// 1 commits every page alone.
fn apply_all(
    store: &Store,
    pages: &[Vec<u8>],
    first_sync: bool,
    pages_per_commit: usize,
) -> Result<Split, BoxError> {
    let mut split = Split::default();
    let mut staged = PageWrite::default();
    let mut staged_pages = 0;
    for (number, body) in pages.iter().enumerate() {
        let started = Instant::now();
        let envelope: TicketCursorPage = decode_json(EXPORT_PATH, body)?;
        let decoded = Instant::now();
        let side_loads = TicketSideLoads {
            users: envelope.users,
            groups: envelope.groups,
            organizations: envelope.organizations,
            metric_sets: envelope.metric_sets,
        };
        let mut page: PageWrite = convert::ticket_page(&envelope.tickets, &side_loads);
        page.cursors = vec![(
            "tickets".into(),
            envelope.after_cursor.unwrap_or_default().into_bytes(),
        )];
        page.context = PageContext {
            first_sync,
            snapshot_events: false,
            now_ms: chrono::Utc::now().timestamp_millis(),
        };
        split.tickets += page.tickets.len() as u64;
        staged.append(page);
        staged_pages += 1;
        let converted = Instant::now();
        split.decode += decoded - started;
        split.convert += converted - decoded;
        let last = number + 1 == pages.len();
        if !(last || staged_pages >= pages_per_commit || staged.records() >= BATCH_RECORDS) {
            continue;
        }
        let (cpu_before, written_before) = (thread_cpu(), written_bytes());
        let outcome = store.apply_page(&std::mem::take(&mut staged))?;
        staged_pages = 0;
        split.apply += converted.elapsed();
        split.apply_cpu += thread_cpu().saturating_sub(cpu_before);
        split.apply_written += written_bytes().saturating_sub(written_before);
        split.written += outcome.tickets_written;
        split.commits += 1;
    }
    Ok(split)
}

fn report(label: &str, split: &Split) -> bool {
    let total = split.decode + split.convert + split.apply;
    let rate = split.tickets as f64 / total.as_secs_f64();
    let pass = rate >= BAR_TICKETS_PER_S;
    println!(
        "  {label:<40} {:>7} tickets ({} written, {} commits) in {:>7.1} ms: {:>8.0} tickets/s  [{}]",
        split.tickets,
        split.written,
        split.commits,
        total.as_secs_f64() * 1e3,
        rate,
        if pass { "PASS" } else { "MISS" }
    );
    println!(
        "  {:<40} decode {:.1} ms, convert {:.1} ms, apply+commit {:.1} ms (CPU {:.0} ms; {:.1} MB written to disk, {:.2} MB per page)",
        "",
        split.decode.as_secs_f64() * 1e3,
        split.convert.as_secs_f64() * 1e3,
        split.apply.as_secs_f64() * 1e3,
        split.apply_cpu.as_secs_f64() * 1e3,
        split.apply_written as f64 / 1e6,
        split.apply_written as f64 / 1e6 / (split.tickets as f64 / 1000.0)
    );
    pass
}

fn main() -> Result<(), BoxError> {
    let runtime = tokio::runtime::Runtime::new()?;
    let pages = runtime.block_on(fetch_pages())?;
    drop(runtime);
    let changed = changed_copies(&pages)?;
    let bytes: usize = pages.iter().map(Vec::len).sum();
    println!(
        "page apply: {} pages of the simulator's ticket export ({TICKETS} tickets, {ORGANIZATIONS} orgs matched, {:.1} MB JSON); bar {BAR_TICKETS_PER_S:.0} tickets/s",
        pages.len(),
        bytes as f64 / 1e6
    );
    let batched = DEFAULT_PAGES_PER_COMMIT as usize;
    let mut passes = Vec::new();
    let mut store_dirs = Vec::new();
    for (mode, pages_per_commit) in [
        ("every page committed alone", 1),
        ("as the sync stages them", batched),
    ] {
        println!("  {mode} (pages_per_commit = {pages_per_commit}, <= {BATCH_RECORDS} records a commit):");
        let dir = tempfile::tempdir()?;
        let store = matched_store(dir.path())?;
        let initial = apply_all(&store, &pages, true, pages_per_commit)?;
        passes.push(report("initial load (all new)", &initial));
        let reapply = apply_all(&store, &changed, false, pages_per_commit)?;
        passes.push(report("re-apply of changed copies", &reapply));
        store_dirs.push((dir, store));
    }
    let Some((_, store)) = store_dirs.first() else {
        return Err("no store".into());
    };
    // The floor every page pays: a durable commit of a page holding only its cursor.
    let started = Instant::now();
    for number in 0..pages.len() {
        store.apply_page(&PageWrite {
            cursors: vec![("floor".into(), number.to_le_bytes().to_vec())],
            ..Default::default()
        })?;
    }
    println!(
        "  durable commit floor (cursor-only page): {:.2} ms per page",
        started.elapsed().as_secs_f64() * 1e3 / pages.len() as f64
    );
    // Where the bytes come from: the same pages split into their tickets (with the rollups they move) and
    // their side-loads, each applied to a fresh matched store.
    for (label, keep_tickets) in [("tickets + rollups only", true), ("side-loads only", false)] {
        let dir = tempfile::tempdir()?;
        let split_store = matched_store(dir.path())?;
        let (mut written, mut elapsed) = (0u64, Duration::ZERO);
        for body in &pages {
            let envelope: TicketCursorPage = decode_json(EXPORT_PATH, body)?;
            let side_loads = TicketSideLoads {
                users: envelope.users,
                groups: envelope.groups,
                organizations: envelope.organizations,
                metric_sets: envelope.metric_sets,
            };
            let mut page = convert::ticket_page(&envelope.tickets, &side_loads);
            if keep_tickets {
                page.users.clear();
                page.organizations.clear();
                page.groups.clear();
            } else {
                page.tickets.clear();
            }
            let before = written_bytes();
            let started = Instant::now();
            split_store.apply_page(&page)?;
            elapsed += started.elapsed();
            written += written_bytes().saturating_sub(before);
        }
        println!(
            "  {label:<28} apply+commit {:.1} ms, {:.2} MB written per page",
            elapsed.as_secs_f64() * 1e3,
            written as f64 / 1e6 / pages.len() as f64
        );
    }
    let matched = store.match_counts()?.matched;
    println!("  organizations matched: {matched}");
    println!(
        "page apply: {}",
        if passes.iter().all(|pass| *pass) {
            "PASS"
        } else {
            "MISS"
        }
    );
    Ok(())
}
