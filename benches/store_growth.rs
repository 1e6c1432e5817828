//! Store size after a year of hourly syncs (DESIGN 5: at most 1.5 KB per ticket; issue #13 item 5).
//!
//! A first sync of `START_TICKETS` tickets with their histories, then 8,760 hourly incremental pages
//! through `Store::apply_page`, each creating a few tickets and updating others (a status or priority
//! change each, with its ticket-events history row), with the nightly validation's pruning of history
//! older than a year once a day. Run twice, with and without the pruning; prints the database file's
//! bytes per ticket at the end against the bar, PASS or MISS (never fails on a miss).
//!
//! `cargo bench --bench store_growth`; `ZDSYNC_BENCH_HOURS=2000` replays fewer hours.
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use zdsync::store::page::{PageContext, PageWrite, TicketChange};
use zdsync::store::zendesk_records::{
    ChangeRecord, TicketRecord, CHANGE_FIELD_PRIORITY, CHANGE_FIELD_STATUS,
};
use zdsync::store::{Store, DATABASE_FILE};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const START_TICKETS: u64 = 20_000;
const CREATED_PER_HOUR: u64 = 3;
const UPDATED_PER_HOUR: u64 = 40;
const HOURS_IN_A_YEAR: u64 = 8_760;
const BAR_BYTES_PER_TICKET: f64 = 1_536.0;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// What a simulated ticket looks like now.
#[derive(Clone, Copy)]
struct Live {
    status: u32,
    priority: u32,
    created_at: i64,
}

fn record(live: Live, at: i64) -> TicketRecord {
    TicketRecord {
        subject: "Cannot export the monthly invoice report".into(),
        status: live.status,
        priority: live.priority,
        requester_id: 10_000_001,
        organization_id: 20_000_001,
        created_at: live.created_at,
        updated_at: at,
        generated_timestamp: at,
        ..Default::default()
    }
}

fn change(ticket_id: u64, at: i64, event_id: u64, field: u32, from: u32, to: u32) -> TicketChange {
    TicketChange {
        ticket_id,
        at,
        event_id,
        index: field,
        change: ChangeRecord { field, from, to },
    }
}

/// Replays a year of hourly syncs; returns (tickets, database bytes, seconds, rows pruned, space).
fn replay(
    hours: u64,
    prune: bool,
) -> Result<(u64, u64, f64, u64, zdsync::store::prune::SpaceReport), BoxError> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let mut rng = StdRng::seed_from_u64(5);
    let start = 1_780_000_000_i64;
    let mut tickets: Vec<Live> = Vec::new();
    let mut event_id = 1_u64;
    let mut pruned = 0;
    let mut page = PageWrite::default();
    let began = Instant::now();
    // The first sync: tickets created over the previous year, each with its creation history.
    for id in 1..=START_TICKETS {
        let created_at =
            start - DAY * 365 + (DAY * 365 * i64::try_from(id)?) / i64::try_from(START_TICKETS)?;
        let live = Live {
            status: rng.random_range(2..=5),
            priority: rng.random_range(1..=4),
            created_at,
        };
        tickets.push(live);
        page.tickets.push((id, record(live, created_at)));
        page.changes.push(change(
            id,
            created_at,
            event_id,
            CHANGE_FIELD_STATUS,
            0,
            live.status,
        ));
        page.changes.push(change(
            id,
            created_at,
            event_id,
            CHANGE_FIELD_PRIORITY,
            0,
            live.priority,
        ));
        event_id += 1;
        if page.tickets.len() == 1_000 {
            page.context = PageContext {
                first_sync: true,
                snapshot_events: false,
                now_ms: start * 1000,
            };
            store.apply_page(&std::mem::take(&mut page))?;
        }
    }
    for hour in 1..=hours {
        let now = start + i64::try_from(hour)? * HOUR;
        let mut page = PageWrite {
            context: PageContext {
                first_sync: false,
                snapshot_events: false,
                now_ms: now * 1000,
            },
            ..Default::default()
        };
        for _ in 0..CREATED_PER_HOUR {
            let live = Live {
                status: 1,
                priority: rng.random_range(1..=4),
                created_at: now - 600,
            };
            tickets.push(live);
            let id = tickets.len() as u64;
            page.tickets.push((id, record(live, now - 600)));
            page.changes
                .push(change(id, now - 600, event_id, CHANGE_FIELD_STATUS, 0, 1));
            page.changes.push(change(
                id,
                now - 600,
                event_id,
                CHANGE_FIELD_PRIORITY,
                0,
                live.priority,
            ));
            event_id += 1;
        }
        for _ in 0..UPDATED_PER_HOUR {
            let index = rng.random_range(0..tickets.len());
            let id = index as u64 + 1;
            let before = tickets[index];
            let mut after = before;
            let at = now - rng.random_range(60..HOUR);
            if rng.random_bool(0.7) {
                after.status = if before.status >= 5 {
                    2
                } else {
                    before.status + 1
                };
                page.changes.push(change(
                    id,
                    at,
                    event_id,
                    CHANGE_FIELD_STATUS,
                    before.status,
                    after.status,
                ));
            } else {
                after.priority = if before.priority >= 4 {
                    1
                } else {
                    before.priority + 1
                };
                page.changes.push(change(
                    id,
                    at,
                    event_id,
                    CHANGE_FIELD_PRIORITY,
                    before.priority,
                    after.priority,
                ));
            }
            event_id += 1;
            tickets[index] = after;
            page.tickets.push((id, record(after, at)));
        }
        store.apply_page(&page)?;
        if prune && hour % 24 == 0 {
            pruned += store.prune_ticket_history(now - 365 * DAY)?;
        }
    }
    let space = store.space()?;
    drop(store);
    let bytes = std::fs::metadata(dir.path().join(DATABASE_FILE))?.len();
    Ok((
        tickets.len() as u64,
        bytes,
        began.elapsed().as_secs_f64(),
        pruned,
        space,
    ))
}

fn main() -> Result<(), BoxError> {
    let hours = match std::env::var("ZDSYNC_BENCH_HOURS") {
        Ok(text) => text.trim().parse()?,
        Err(_) => HOURS_IN_A_YEAR,
    };
    println!(
        "store growth: {START_TICKETS} tickets, then {hours} hourly syncs ({CREATED_PER_HOUR} created, {UPDATED_PER_HOUR} updated each); bar {BAR_BYTES_PER_TICKET:.0} bytes per ticket"
    );
    for prune in [false, true] {
        let (tickets, bytes, seconds, pruned, space) = replay(hours, prune)?;
        let per_ticket = bytes as f64 / tickets as f64;
        println!(
            "  {}: {tickets} tickets, database {:.1} MB, {per_ticket:.0} bytes per ticket ({seconds:.0} s)  [{}]",
            if prune { "with the nightly pruning   " } else { "without pruning (reference)" },
            bytes as f64 / 1e6,
            if per_ticket <= BAR_BYTES_PER_TICKET { "PASS" } else { "MISS" }
        );
        println!(
            "    history rows pruned {pruned}; redb: stored {:.1} MB, metadata {:.1} MB, fragmented (free) {:.1} MB",
            space.stored_bytes as f64 / 1e6,
            space.metadata_bytes as f64 / 1e6,
            space.fragmented_bytes as f64 / 1e6
        );
    }
    Ok(())
}
