//! PROBE (not committed): page apply throughput (DESIGN 5: >= 50,000 tickets/s through page apply as the sync commits: decode +
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


fn save(dir: &std::path::Path, pages: &Pages) -> Result<(), BoxError> {
    std::fs::create_dir_all(dir)?;
    for (i, p) in pages.tickets.iter().enumerate() { std::fs::write(dir.join(format!("t{i:04}")), p)?; }
    for (i, p) in pages.events.iter().enumerate() { std::fs::write(dir.join(format!("e{i:04}")), p)?; }
    Ok(())
}
fn load(dir: &std::path::Path) -> Result<Pages, BoxError> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?.filter_map(|e| e.ok()).map(|e| e.file_name().into_string().unwrap()).collect();
    names.sort();
    let mut pages = Pages { tickets: vec![], events: vec![] };
    for n in names {
        let b = std::fs::read(dir.join(&n))?;
        if n.starts_with('t') { pages.tickets.push(b) } else { pages.events.push(b) }
    }
    Ok(pages)
}

#[inline(never)]
fn measured_apply(store: &Store, page: &PageWrite) -> Result<u64, BoxError> {
    std::hint::black_box(page.tickets.len());
    let ru = || { let mut r: libc::rusage = unsafe { std::mem::zeroed() }; unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut r) }; (r.ru_utime.tv_sec as f64*1e3 + r.ru_utime.tv_usec as f64/1e3, r.ru_stime.tv_sec as f64*1e3 + r.ru_stime.tv_usec as f64/1e3, r.ru_minflt) };
    let (u0, s0, f0) = ru();
    let t = Instant::now();
    let outcome = store.apply_page(page)?;
    let (u1, s1, f1) = ru();
    eprintln!("measured commit: {} tickets {} changes -> {} events in {:.1} ms user {:.1} sys {:.1} faults {}", page.tickets.len(), page.changes.len(), outcome.events_recorded, t.elapsed().as_secs_f64()*1e3, u1-u0, s1-s0, f1-f0);
    Ok(outcome.events_recorded)
}

#[inline(never)]
fn measured_decode_ticket(body: &[u8]) -> Result<TicketCursorPage, BoxError> {
    Ok(decode_json(EXPORT_PATH, body)?)
}
#[inline(never)]
fn measured_decode_events(body: &[u8]) -> Result<TicketEventTimePage, BoxError> {
    Ok(decode_json(EVENTS_PATH, body)?)
}

fn apply_all(store: &Store, pages: &Pages, first_sync: bool, now_ms: i64, measure: bool) -> Result<u64, BoxError> {
    let mut staged = PageWrite::default();
    let mut staged_pages = 0;
    let mut events = 0;
    let context = PageContext { first_sync, snapshot_events: false, now_ms };
    let bodies = pages.tickets.iter().map(|b| (true, b)).chain(pages.events.iter().map(|b| (false, b)));
    let total = pages.tickets.len() + pages.events.len();
    for (number, (is_ticket_page, body)) in bodies.enumerate() {
        let mut page = if is_ticket_page {
            let envelope = measured_decode_ticket(body)?;
            let side_loads = TicketSideLoads { users: envelope.users, groups: envelope.groups, organizations: envelope.organizations, metric_sets: envelope.metric_sets };
            let mut page: PageWrite = convert::ticket_page(envelope.tickets, side_loads);
            page.cursors = vec![("tickets".into(), envelope.after_cursor.unwrap_or_default().into_bytes())];
            page
        } else {
            let envelope = measured_decode_events(body)?;
            PageWrite { changes: convert::ticket_changes(&envelope.ticket_events), cursors: vec![("ticket_events".into(), envelope.meta.end_time.unwrap_or_default().to_le_bytes().to_vec())], ..PageWrite::default() }
        };
        page.context = context;
        let phase_ends = number + 1 == pages.tickets.len();
        staged.append(page);
        staged_pages += 1;
        let last = number + 1 == total;
        if !(last || phase_ends || staged_pages >= DEFAULT_PAGES_PER_COMMIT as usize || staged.commit_weight() >= std::env::var("PROBE_CAP").ok().and_then(|v| v.parse().ok()).unwrap_or(BATCH_RECORDS)) { continue; }
        let page = std::mem::take(&mut staged);
        let only = std::env::var("PROBE_ONLY").unwrap_or_default();
        let measure = measure && (only.is_empty() || (only == "events") == !page.changes.is_empty());
        events += if measure || std::env::var_os("PROBE_TIMES").is_some() { measured_apply(store, &page)? } else { store.apply_page(&page)?.events_recorded };
        staged_pages = 0;
    }
    Ok(events)
}

fn main() -> Result<(), BoxError> {
    let root = std::path::Path::new("/tmp/probe_pages");
    if !root.join("now").exists() {
        let runtime = tokio::runtime::Runtime::new()?;
        let (first, changed) = runtime.block_on(fetch_pages())?;
        save(&root.join("first"), &first)?;
        save(&root.join("changed"), &changed)?;
        std::fs::write(root.join("now"), chrono::Utc::now().timestamp_millis().to_string())?;
        println!("pages cached");
        return Ok(());
    }
    let now_ms: i64 = std::fs::read_to_string(root.join("now"))?.trim().parse()?;
    let phase = std::env::var("PROBE_PHASE").unwrap_or_else(|_| "first".into());
    let first = load(&root.join("first"))?;
    let changed = load(&root.join("changed"))?;
    let dir = tempfile::tempdir()?;
    let store = matched_store(dir.path())?;
    let started = Instant::now();
    let e1 = apply_all(&store, &first, true, now_ms, phase == "first")?;
    let t1 = started.elapsed();
    let started = Instant::now();
    let e2 = apply_all(&store, &changed, false, now_ms + 180_000, phase == "incremental")?;
    let t2 = started.elapsed();
    println!("events first {e1} ({:.0} ms), incremental {e2} ({:.0} ms)", t1.as_secs_f64()*1e3, t2.as_secs_f64()*1e3);
    println!("digest {}", store.content_digest()?);
    let _ = Duration::ZERO;
    Ok(())
}
