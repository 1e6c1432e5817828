//! Page apply throughput (DESIGN 5: >= 50,000 tickets/s through page apply as the sync commits: decode +
//! match + rollups + events + durable commit, 1,000-ticket pages, ticket-event pages included, events
//! produced).
//!
//! The in-process simulator (50,000 tickets over a year) renders its ticket export (side-loaded users,
//! organizations, groups and metric sets) and its ticket events export ONCE, kept as bytes. Then every
//! ticket is changed through the simulator's control API (the next status in new -> open -> pending ->
//! solved -> open, a third of them made urgent), its clock moves past Zendesk's 60-second rule, and the
//! changed tickets and the new ticket events are exported the same way. Each body is decoded exactly as
//! the client decodes it, converted as the sync run converts it, and applied to a store whose
//! organizations match accounts, ticket pages first and then ticket-event pages, as a run's phases go.
//! Measured twice: the first sync (every ticket new, a year of events) and the incremental sync of the
//! changes (events recorded: solved, reopened, urgent). Tickets/s counts the ticket pages' tickets over
//! the time of both kinds of page.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use zdsync::config::DEFAULT_PAGES_PER_COMMIT;
use zdsync::domain::account::Account;
use zdsync::simulator::{self, Priority, SimulatorConfig, Status, TicketUpdate};
use zdsync::store::page::{PageContext, PageWrite};
use zdsync::store::sync_state::IntegrationRecord;
use zdsync::store::Store;
use zdsync::sync::convert;
use zdsync::sync::run::BATCH_RECORDS;
use zdsync::zendesk::decode::decode_json;
use zdsync::zendesk::envelope::{TicketCursorPage, TicketEventTimePage};
use zdsync::zendesk::TicketSideLoads;

const TICKETS: u32 = 50_000;
const ORGANIZATIONS: u32 = 1_000;
const USERS: u32 = 10_000;
const BAR_TICKETS_PER_S: f64 = 50_000.0;
const EXPORT_PATH: &str = "/api/v2/incremental/tickets/cursor.json";
const EVENTS_PATH: &str = "/api/v2/incremental/ticket_events.json";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One sync's pages, as raw bodies: the ticket export's, then the ticket events export's.
struct Pages {
    tickets: Vec<Vec<u8>>,
    events: Vec<Vec<u8>>,
}

/// Reads exports of the simulator at `base_url` with an API token, as the client does.
struct Exporter {
    base_url: String,
    auth: String,
    http: reqwest::Client,
}

impl Exporter {
    async fn get(&self, path_and_query: &str) -> Result<(Vec<u8>, serde_json::Value), BoxError> {
        let body = self
            .http
            .get(format!("{}{path_and_query}", self.base_url))
            .header("Authorization", format!("Basic {}", self.auth))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?
            .to_vec();
        let head = serde_json::from_slice(&body)?;
        Ok((body, head))
    }

    /// The ticket export from `query` to its end; returns the pages and the cursor to resume from.
    async fn tickets(&self, mut query: String) -> Result<(Vec<Vec<u8>>, String), BoxError> {
        let mut pages = Vec::new();
        loop {
            let (body, head) = self
                .get(&format!(
                    "{EXPORT_PATH}?{query}&per_page=1000&include=users,groups,organizations,metric_sets"
                ))
                .await?;
            let end = head["end_of_stream"].as_bool().unwrap_or(true);
            let cursor = head["after_cursor"].as_str().unwrap_or_default().to_owned();
            pages.push(body);
            query = format!("cursor={cursor}");
            if end {
                return Ok((pages, cursor));
            }
        }
    }

    /// The ticket events export from `start_time` to its end; returns the pages and the next start time.
    async fn events(&self, mut start_time: i64) -> Result<(Vec<Vec<u8>>, i64), BoxError> {
        let mut pages = Vec::new();
        loop {
            let (body, head) = self
                .get(&format!("{EVENTS_PATH}?start_time={start_time}"))
                .await?;
            let end = head["end_of_stream"].as_bool().unwrap_or(true);
            let next = head["end_time"].as_i64().unwrap_or(start_time);
            pages.push(body);
            if end || next <= start_time {
                return Ok((pages, next));
            }
            start_time = next;
        }
    }
}

/// The next status a changed ticket gets: every step records a status change, `solved -> open` a reopen.
fn next_status(status: &str) -> Status {
    match status {
        "new" | "hold" | "solved" => Status::Open,
        "open" => Status::Pending,
        _ => Status::Solved,
    }
}

/// The first sync's pages, then the pages of an incremental sync after every ticket changed.
async fn fetch_pages() -> Result<(Pages, Pages), BoxError> {
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
    let exporter = Exporter {
        base_url: sim.base_url().to_owned(),
        auth: base64::engine::general_purpose::STANDARD.encode(format!(
            "{}/token:{}",
            simulator::DEFAULT_API_TOKEN_EMAIL,
            simulator::DEFAULT_API_TOKEN
        )),
        http: reqwest::Client::new(),
    };
    let (tickets, cursor) = exporter.tickets("start_time=0".to_owned()).await?;
    let (events, next_start) = exporter.events(0).await?;
    let first = Pages { tickets, events };
    let control = sim.control();
    for (number, id) in control.ticket_ids().into_iter().enumerate() {
        let Some(ticket) = control.ticket_json(id) else {
            continue;
        };
        let update = TicketUpdate {
            status: Some(next_status(ticket["status"].as_str().unwrap_or("open"))),
            priority: (number % 3 == 0).then_some(Some(Priority::Urgent)),
            ..TicketUpdate::default()
        };
        // Closed tickets refuse changes, as in Zendesk.
        let _ = control.update_ticket(id, update);
    }
    control.set_time_offset(control.time_offset() + 120);
    let (tickets, _) = exporter.tickets(format!("cursor={cursor}")).await?;
    let (events, _) = exporter.events(next_start).await?;
    sim.shutdown().await?;
    Ok((first, Pages { tickets, events }))
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
    /// Ticket events decoded from the event pages, and timeline events the commits recorded.
    ticket_events: u64,
    events: u64,
    /// The ticket-event pages' share of decode, convert and apply+commit (their commits hold no ticket page).
    event_decode: Duration,
    event_convert: Duration,
    event_apply: Duration,
    /// CPU time of this thread over the ticket-event pages (decode, convert, apply and commit).
    event_cpu: Duration,
}

/// Decodes, converts and applies every page, ticket pages first, then ticket-event pages; the timed path
/// of a sync run minus the network. Pages are committed `pages_per_commit` at a time (at most
/// `BATCH_RECORDS` records), as the sync run stages them; 1 commits every page alone.
fn apply_all(
    store: &Store,
    pages: &Pages,
    first_sync: bool,
    pages_per_commit: usize,
) -> Result<Split, BoxError> {
    let mut split = Split::default();
    let mut staged = PageWrite::default();
    let mut staged_pages = 0;
    let context = PageContext {
        first_sync,
        snapshot_events: false,
        now_ms: chrono::Utc::now().timestamp_millis(),
    };
    let bodies = pages.tickets.iter().map(|body| (true, body));
    let bodies = bodies.chain(pages.events.iter().map(|body| (false, body)));
    let total = pages.tickets.len() + pages.events.len();
    for (number, (is_ticket_page, body)) in bodies.enumerate() {
        let cpu_started = thread_cpu();
        let started = Instant::now();
        let (mut page, decoded) = if is_ticket_page {
            let envelope: TicketCursorPage = decode_json(EXPORT_PATH, body)?;
            let decoded = Instant::now();
            let side_loads = TicketSideLoads {
                users: envelope.users,
                groups: envelope.groups,
                organizations: envelope.organizations,
                metric_sets: envelope.metric_sets,
            };
            let mut page: PageWrite = convert::ticket_page(envelope.tickets, side_loads);
            page.cursors = vec![(
                "tickets".into(),
                envelope.after_cursor.unwrap_or_default().into_bytes(),
            )];
            split.tickets += page.tickets.len() as u64;
            (page, decoded)
        } else {
            let envelope: TicketEventTimePage = decode_json(EVENTS_PATH, body)?;
            let decoded = Instant::now();
            split.ticket_events += envelope.ticket_events.len() as u64;
            let page = PageWrite {
                changes: convert::ticket_changes(&envelope.ticket_events),
                cursors: vec![(
                    "ticket_events".into(),
                    envelope
                        .meta
                        .end_time
                        .unwrap_or_default()
                        .to_le_bytes()
                        .to_vec(),
                )],
                ..PageWrite::default()
            };
            (page, decoded)
        };
        page.context = context;
        // A run's phases commit apart: the last ticket page's batch goes before the first event page.
        let phase_ends = number + 1 == pages.tickets.len();
        staged.append(page);
        staged_pages += 1;
        let converted = Instant::now();
        split.decode += decoded - started;
        split.convert += converted - decoded;
        if !is_ticket_page {
            split.event_decode += decoded - started;
            split.event_convert += converted - decoded;
        }
        let last = number + 1 == total;
        if !(last
            || phase_ends
            || staged_pages >= pages_per_commit
            || staged.commit_weight() >= BATCH_RECORDS)
        {
            if !is_ticket_page {
                split.event_cpu += thread_cpu().saturating_sub(cpu_started);
            }
            continue;
        }
        let (cpu_before, written_before) = (thread_cpu(), written_bytes());
        let outcome = store.apply_page(&std::mem::take(&mut staged))?;
        staged_pages = 0;
        let applied = converted.elapsed();
        split.apply += applied;
        if !is_ticket_page {
            split.event_apply += applied;
            split.event_cpu += thread_cpu().saturating_sub(cpu_started);
        }
        split.apply_cpu += thread_cpu().saturating_sub(cpu_before);
        split.apply_written += written_bytes().saturating_sub(written_before);
        split.written += outcome.tickets_written;
        split.events += outcome.events_recorded;
        split.commits += 1;
    }
    Ok(split)
}

fn report(label: &str, split: &Split) -> bool {
    let total = split.decode + split.convert + split.apply;
    let rate = split.tickets as f64 / total.as_secs_f64();
    let pass = rate >= BAR_TICKETS_PER_S;
    println!(
        "  {label:<40} {:>7} tickets ({} written) + {} ticket events, {} commits, {} timeline events recorded, in {:>7.1} ms: {:>8.0} tickets/s  [{}]",
        split.tickets,
        split.written,
        split.ticket_events,
        split.commits,
        split.events,
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
    println!(
        "  {:<40} of which ticket-event pages: decode {:.1} ms, convert {:.1} ms, apply+commit {:.1} ms (CPU {:.0} ms in all)",
        "",
        split.event_decode.as_secs_f64() * 1e3,
        split.event_convert.as_secs_f64() * 1e3,
        split.event_apply.as_secs_f64() * 1e3,
        split.event_cpu.as_secs_f64() * 1e3,
    );
    pass
}

fn main() -> Result<(), BoxError> {
    let runtime = tokio::runtime::Runtime::new()?;
    let (first, changed) = runtime.block_on(fetch_pages())?;
    drop(runtime);
    let megabytes = |pages: &[Vec<u8>]| pages.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;
    println!(
        "page apply: {TICKETS} tickets, {ORGANIZATIONS} orgs matched; first sync {} ticket pages ({:.1} MB JSON) + {} ticket-event pages ({:.1} MB); after every ticket changed {} + {} pages; bar {BAR_TICKETS_PER_S:.0} tickets/s",
        first.tickets.len(),
        megabytes(&first.tickets),
        first.events.len(),
        megabytes(&first.events),
        changed.tickets.len(),
        changed.events.len(),
    );
    let pages = &first.tickets;
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
        let initial = apply_all(&store, &first, true, pages_per_commit)?;
        passes.push(report("first sync (all new)", &initial));
        let reapply = apply_all(&store, &changed, false, pages_per_commit)?;
        passes.push(report("incremental sync of the changes", &reapply));
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
        for body in pages {
            let envelope: TicketCursorPage = decode_json(EXPORT_PATH, body)?;
            let side_loads = TicketSideLoads {
                users: envelope.users,
                groups: envelope.groups,
                organizations: envelope.organizations,
                metric_sets: envelope.metric_sets,
            };
            let mut page = convert::ticket_page(envelope.tickets, side_loads);
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
