//! Timeline events as a model test: random ticket mutations, ratings offered, scored and
//! re-scored, organizations whose match key moves, accounts deleted and created, and syncs
//! against the in-process simulator (a daemon restart and full validations among them); then the
//! whole event log, read over gRPC, equals the timelines computed straight from the simulator's
//! ticket histories and ratings, with no duplicates and `backfill` exactly on the events the first
//! sync recorded or a new match brought. (kill -9 during syncs is `sync_crash`'s part.)
//!
//! The model re-states DESIGN 1.4 on its own; it does not call `zdsync::domain::events`:
//! - replaying a ticket's audits (the ticket events export, oldest first), with "high/urgent"
//!   meaning the priority after the audit:
//!   - created: the ticket is created high/urgent, or an audit raises it to high/urgent
//!     (`escalated`);
//!   - solved: the status becomes solved or closed from new/open/pending/hold (or at creation);
//!   - reopened: the status goes from solved to new/open/pending/hold;
//! - ratings have a lifecycle (offered, scored, re-scored): a bad rating is an event each time a
//!   sync finds a rating bad that the previous sync did not (bad -> good -> bad is two events), at
//!   the time of that score, whatever the ticket's priority;
//! - an event happens once per account: it is identified by kind, ticket and Zendesk time;
//! - an event is a fact (DESIGN 1.4): it goes on the timeline of the account its organization
//!   matches when it is recorded, and stays there; an organization that becomes matched to an
//!   account (its key field moved, the account created again) brings its past year of events to
//!   that account as `backfill`; deleting an account keeps its timeline;
//! - what a sync sees is recorded and stays recorded: the log is the union, over the syncs, of
//!   the events each sync can see, where a sync sees nothing of a ticket that is deleted at that
//!   moment (its bad ratings included: deleted tickets count nowhere), and nothing older than 365
//!   days before the sync;
//! - an event is `backfill` exactly when the first sync already saw it, or when a new match
//!   brought it to the account.
//!
//! Compared per (event, account): kind, ticket, `occurred_at`, `backfill`, `escalated`, and the
//! ticket's status and priority after the change (ticket events) or the rating's score and comment
//! (the contract carries no rating id, so a rating event is known by its ticket and time). Events
//! of organizations that matched no account are on no timeline; the stored count in `GetStatus`
//! covers them too.
//! A full validation does not read ticket events, so each one runs right after an incremental
//! sync and must record nothing.
//!
//! The seed is printed; set `ZDSYNC_MODEL_SEED` (decimal or `0x` hex) to replay a run. Data,
//! mutations and every sync happen on a manual clock shared by the simulator and the daemon, so
//! one seed always gives the same run.
mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use common::http::api_json;
use common::inproc::{
    self, instant, sized, wait_for_status, watch_with_history, Daemon, ADMIN_TOKEN,
};
use common::{with_token, DEADLINE};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use zdsync::clock::{Clock, ManualClock, SharedClock};
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;
use zdsync::proto::v1::integration_service_client::IntegrationServiceClient;
use zdsync::proto::v1::metrics_service_client::MetricsServiceClient;
use zdsync::simulator::{
    NewRating, NewTicket, OrganizationInput, Priority, RatingScore, Score, SimulatorConfig,
    SimulatorControl, Status, TicketUpdate,
};

/// The environment variable that replays a seed.
const SEED_VAR: &str = "ZDSYNC_MODEL_SEED";
/// The seed when none is given.
const DEFAULT_SEED: u64 = 0x7e1e_11e0_0001;
/// Where the manual clock starts (far from the nightly validation hour, 02:00 UTC).
const START: &str = "2026-03-10T10:00:00Z";
/// How far back a sync sees events, in seconds (DESIGN 1.4: the past year, 365 days).
const HORIZON_SECS: i64 = 365 * 86_400;
/// Rounds of mutations, each followed by a sync.
const ROUNDS: usize = 8;
/// The round after whose mutations the daemon restarts on the same data directory.
const RESTART_ROUND: usize = 3;
/// The rounds whose incremental sync is followed at once by a full validation.
const VALIDATION_ROUNDS: [usize; 2] = [2, 6];
/// Page size of the list reads (small, so paging is exercised).
const LIST_PAGE_SIZE: u32 = 7;

fn seed() -> u64 {
    match std::env::var(SEED_VAR) {
        Ok(text) if !text.trim().is_empty() => {
            let text = text.trim();
            let parsed = match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
                None => text.replace('_', "").parse(),
            };
            parsed.unwrap_or_else(|_| panic!("{SEED_VAR}={text:?} is not a u64"))
        }
        _ => DEFAULT_SEED,
    }
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

fn iso(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0).map_or_else(|| seconds.to_string(), |t| t.to_rfc3339())
}

// ---------------------------------------------------------------------------------------------
// The model.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Created,
    Solved,
    Reopened,
    BadRating,
}

impl Kind {
    fn of(event: &pb::TimelineEvent) -> Kind {
        match pb::TimelineEventKind::try_from(event.kind) {
            Ok(pb::TimelineEventKind::HighUrgentTicketCreated) => Kind::Created,
            Ok(pb::TimelineEventKind::HighUrgentTicketSolved) => Kind::Solved,
            Ok(pb::TimelineEventKind::HighUrgentTicketReopened) => Kind::Reopened,
            Ok(pb::TimelineEventKind::BadSatisfactionRating) => Kind::BadRating,
            other => panic!("event {} has kind {other:?}", event.event_id),
        }
    }
}

/// What identifies an event: its kind, its ticket and the Zendesk time of the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    kind: Kind,
    ticket: u64,
    at: i64,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} ticket {} at {}",
            self.kind,
            self.ticket,
            iso(self.at)
        )
    }
}

/// An event on one account's timeline.
type Entry = (Key, String);

/// What else an event must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fields {
    backfill: bool,
    escalated: bool,
    /// Ticket events: the ticket's status and priority after the change. Ratings: score and comment.
    detail: (String, String),
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "backfill={} escalated={} detail=({:?}, {:?})",
            self.backfill, self.escalated, self.detail.0, self.detail.1
        )
    }
}

/// One event a sync can see.
#[derive(Debug, Clone)]
struct Seen {
    /// The ticket's organization when the sync saw the event.
    org: Option<u64>,
    escalated: bool,
    detail: (String, String),
    /// The rating, for bad-rating events (for messages).
    rating: Option<u64>,
}

/// One expected event of the log.
#[derive(Debug, Clone)]
struct Expected {
    seen: Seen,
    /// The first sync that saw it (0: the first sync).
    sync: usize,
}

/// One audit of the ticket events export.
#[derive(Debug, Clone)]
struct Audit {
    id: u64,
    ticket: u64,
    at: i64,
    create: bool,
    /// `(previous, value)` of the status child event.
    status: Option<(Option<String>, String)>,
    /// `(previous, value)` of the priority child event (a null priority is `None`).
    priority: Option<(Option<String>, Option<String>)>,
}

#[derive(Debug, Clone)]
struct TicketSnap {
    status: String,
    organization: Option<u64>,
}

#[derive(Debug, Clone)]
struct OrgSnap {
    /// The organization's `account_id` field: the match key.
    account_id: Option<String>,
}

#[derive(Debug, Clone)]
struct RatingSnap {
    id: u64,
    ticket: u64,
    score: String,
    comment: String,
    updated_at: i64,
}

/// The simulator's data at one sync.
#[derive(Debug, Clone)]
struct Snapshot {
    tickets: BTreeMap<u64, TicketSnap>,
    /// Every ticket's audits, oldest first.
    audits: BTreeMap<u64, Vec<Audit>>,
    ratings: Vec<RatingSnap>,
    organizations: BTreeMap<u64, OrgSnap>,
}

fn high_or_urgent(priority: Option<&str>) -> bool {
    matches!(priority, Some("high" | "urgent"))
}

fn unsolved(status: &str) -> bool {
    matches!(status, "new" | "open" | "pending" | "hold")
}

fn solved_or_closed(status: &str) -> bool {
    matches!(status, "solved" | "closed")
}

/// Every ticket event a sync at `now` sees in `snapshot`: DESIGN 1.4 restated, see the module docs.
fn visible_events(snapshot: &Snapshot, now: i64) -> BTreeMap<Key, Seen> {
    let horizon = now - HORIZON_SECS;
    let mut events = BTreeMap::new();
    for (&id, audits) in &snapshot.audits {
        let ticket = snapshot
            .tickets
            .get(&id)
            .unwrap_or_else(|| panic!("audits of ticket {id}, which the simulator does not have"));
        // (status, priority) after the audits replayed so far.
        let mut state: Option<(String, Option<String>)> = None;
        for audit in audits {
            let before = if audit.create {
                assert!(state.is_none(), "ticket {id}: a second Create audit");
                None
            } else {
                Some(
                    state
                        .clone()
                        .unwrap_or_else(|| panic!("ticket {id}: history without its Create audit")),
                )
            };
            let mut after = before.clone().unwrap_or(("new".into(), None));
            if let Some((previous, value)) = &audit.status {
                if let Some(before) = &before {
                    assert_eq!(
                        previous.as_deref(),
                        Some(before.0.as_str()),
                        "ticket {id}: audit {} records another previous status",
                        audit.id
                    );
                }
                after.0 = value.clone();
            }
            if let Some((previous, value)) = &audit.priority {
                if let Some(before) = &before {
                    assert_eq!(
                        previous, &before.1,
                        "ticket {id}: audit {} records another previous priority",
                        audit.id
                    );
                }
                after.1 = value.clone();
            }
            if high_or_urgent(after.1.as_deref()) {
                let mut found = Vec::new();
                match &before {
                    None => found.push((Kind::Created, false)),
                    Some(before) if !high_or_urgent(before.1.as_deref()) => {
                        found.push((Kind::Created, true));
                    }
                    Some(_) => {}
                }
                let before_status = before.as_ref().map(|before| before.0.as_str());
                if solved_or_closed(&after.0) && before_status.is_none_or(unsolved) {
                    found.push((Kind::Solved, false));
                }
                if before_status == Some("solved") && unsolved(&after.0) {
                    found.push((Kind::Reopened, false));
                }
                for (kind, escalated) in found {
                    let key = Key {
                        kind,
                        ticket: id,
                        at: audit.at,
                    };
                    let seen = Seen {
                        org: ticket.organization,
                        escalated,
                        detail: (after.0.clone(), after.1.clone().unwrap_or_default()),
                        rating: None,
                    };
                    // A deleted ticket shows nothing; neither does what is older than the horizon.
                    if ticket.status != "deleted" && audit.at >= horizon {
                        assert!(
                            events.insert(key, seen).is_none(),
                            "the model sees {key} twice: two changes of one ticket in one second"
                        );
                    }
                }
            }
            state = Some(after);
        }
        // The export must hold the whole history: it ends in the ticket's current status.
        if ticket.status != "deleted" {
            let last = state.map(|state| state.0);
            assert_eq!(
                last.as_deref(),
                Some(ticket.status.as_str()),
                "ticket {id}: the audits read end in another status than the ticket's"
            );
        }
    }
    events
}

/// The bad-rating events a sync at `now` sees: ratings it finds bad that the previous sync did not
/// (`last_scores`, updated here), at the time of the score.
fn rating_events(
    snapshot: &Snapshot,
    last_scores: &mut HashMap<u64, String>,
    now: i64,
) -> BTreeMap<Key, Seen> {
    let horizon = now - HORIZON_SECS;
    let mut events = BTreeMap::new();
    for rating in &snapshot.ratings {
        let before = last_scores.insert(rating.id, rating.score.clone());
        if rating.score != "bad" || before.as_deref() == Some("bad") || rating.updated_at < horizon
        {
            continue;
        }
        let ticket = snapshot.tickets.get(&rating.ticket).unwrap_or_else(|| {
            panic!(
                "rating {} of ticket {}, which the simulator does not have",
                rating.id, rating.ticket
            )
        });
        // Deleted tickets count nowhere (DESIGN 1.3), in the timeline as in the metrics.
        if ticket.status == "deleted" {
            continue;
        }
        let key = Key {
            kind: Kind::BadRating,
            ticket: rating.ticket,
            at: rating.updated_at,
        };
        let seen = Seen {
            org: ticket.organization,
            escalated: false,
            detail: (rating.score.clone(), rating.comment.clone()),
            rating: Some(rating.id),
        };
        assert!(
            events.insert(key, seen).is_none(),
            "the model sees {key} twice: two bad ratings of one ticket in one second"
        );
    }
    events
}

/// Which account each organization matches: its `account_id` field, when the directory has it.
fn matches_of(
    organizations: &BTreeMap<u64, OrgSnap>,
    directory: &BTreeSet<String>,
) -> HashMap<u64, String> {
    organizations
        .iter()
        .filter_map(|(id, org)| {
            let account = org.account_id.as_ref()?;
            directory.contains(account).then(|| (*id, account.clone()))
        })
        .collect()
}

/// The log the daemon must hold: the union over the syncs of what each saw.
#[derive(Debug, Default)]
struct Model {
    /// Every event detected (a fact), matched organization or not.
    expected: BTreeMap<Key, Expected>,
    /// The timelines: what `ListTimelineEvents` must return.
    timeline: BTreeMap<Entry, Fields>,
    /// Which account each organization matches, as the daemon knows it.
    matches: HashMap<u64, String>,
    /// Each rating's score as the last sync saw it.
    last_scores: HashMap<u64, String>,
    /// Per sync: its label and how many events it must have recorded (listed or not).
    syncs: Vec<(String, u64)>,
}

impl Model {
    /// The daemon's matches become `matches` at `now`: an organization newly matched to an account
    /// brings its past year of events to it as backfill; nothing leaves a timeline.
    fn rematch(&mut self, matches: HashMap<u64, String>, now: i64) {
        for (org, account) in &matches {
            if self.matches.get(org) == Some(account) {
                continue;
            }
            for (key, expected) in &self.expected {
                if expected.seen.org == Some(*org) && key.at >= now - HORIZON_SECS {
                    self.timeline
                        .entry((*key, account.clone()))
                        .or_insert_with(|| Fields {
                            backfill: true,
                            escalated: expected.seen.escalated,
                            detail: expected.seen.detail.clone(),
                        });
                }
            }
        }
        self.matches = matches;
    }

    /// Adds what sync number `self.syncs.len()` sees: each new event goes to the account its
    /// organization matches now.
    fn observe(&mut self, label: String, seen: BTreeMap<Key, Seen>) {
        let sync = self.syncs.len();
        let mut new = 0;
        for (key, seen) in seen {
            if self.expected.contains_key(&key) {
                continue;
            }
            new += 1;
            if let Some(account) = seen.org.and_then(|org| self.matches.get(&org)) {
                self.timeline.insert(
                    (key, account.clone()),
                    Fields {
                        backfill: sync == 0,
                        escalated: seen.escalated,
                        detail: seen.detail.clone(),
                    },
                );
            }
            self.expected.insert(key, Expected { seen, sync });
        }
        self.syncs.push((label, new));
    }

    /// The events `ListTimelineEvents` must return.
    fn listed(&self) -> BTreeMap<Entry, Fields> {
        self.timeline.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the simulator.

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

fn unix(value: &Value) -> i64 {
    DateTime::parse_from_rfc3339(value.as_str().expect("a time string"))
        .expect("rfc3339")
        .timestamp()
}

fn parse_audit(event: &Value) -> Audit {
    let id = event["id"].as_u64().expect("audit id");
    let mut audit = Audit {
        id,
        ticket: event["ticket_id"].as_u64().expect("ticket_id"),
        at: event["timestamp"].as_i64().expect("timestamp"),
        create: false,
        status: None,
        priority: None,
    };
    for child in event["child_events"].as_array().expect("child_events") {
        match child["event_type"].as_str() {
            Some("Create") => audit.create = true,
            Some("Change") => {}
            // A score given: the model reads ratings from the rating itself.
            Some("SatisfactionRating") => continue,
            other => panic!("audit {id}: child event type {other:?}"),
        }
        match child["field_name"].as_str() {
            Some("status") => {
                audit.status = Some((
                    text(&child["previous_value"]),
                    text(&child["value"]).expect("a status value"),
                ));
            }
            Some("priority") => {
                audit.priority = Some((text(&child["previous_value"]), text(&child["value"])));
            }
            other => panic!("audit {id}: field {other:?}"),
        }
    }
    audit
}

/// Every audit of the simulator's ticket events export (HTTP, as Zendesk pages it).
async fn read_audits(http: &reqwest::Client, base: &str) -> Vec<Audit> {
    let mut url =
        format!("{base}/api/v2/incremental/ticket_events.json?start_time=0&per_page=1000");
    let mut audits = BTreeMap::new();
    for _ in 0..10_000 {
        let page = api_json(http.get(&url), "ticket events export").await;
        for event in page["ticket_events"].as_array().expect("ticket_events") {
            let audit = parse_audit(event);
            audits.insert(audit.id, audit);
        }
        if page["end_of_stream"].as_bool().expect("end_of_stream") {
            return audits.into_values().collect();
        }
        url = page["next_page"].as_str().expect("next_page").to_owned();
    }
    panic!("the ticket events export did not end");
}

async fn snapshot(control: &SimulatorControl, http: &reqwest::Client, base: &str) -> Snapshot {
    let mut tickets = BTreeMap::new();
    for id in control.ticket_ids() {
        let ticket = control.ticket_json(id).expect("ticket");
        tickets.insert(
            id,
            TicketSnap {
                status: text(&ticket["status"]).expect("status"),
                organization: ticket["organization_id"].as_u64(),
            },
        );
    }
    let mut audits: BTreeMap<u64, Vec<Audit>> = BTreeMap::new();
    for audit in read_audits(http, base).await {
        audits.entry(audit.ticket).or_default().push(audit);
    }
    for history in audits.values_mut() {
        history.sort_by_key(|audit| (audit.at, audit.id));
    }
    let mut ratings = Vec::new();
    for id in 40_000_001..=40_000_000 + control.stats().satisfaction_ratings as u64 {
        let rating = control.rating_json(id).expect("rating");
        ratings.push(RatingSnap {
            id,
            ticket: rating["ticket_id"].as_u64().expect("ticket_id"),
            score: text(&rating["score"]).expect("score"),
            comment: text(&rating["comment"]).unwrap_or_default(),
            updated_at: unix(&rating["updated_at"]),
        });
    }
    let mut organizations = BTreeMap::new();
    for id in 20_000_001..=20_000_000 + control.stats().organizations as u64 {
        let org = control.organization_json(id).expect("organization");
        organizations.insert(
            id,
            OrgSnap {
                account_id: text(&org["organization_fields"]["account_id"]),
            },
        );
    }
    Snapshot {
        tickets,
        audits,
        ratings,
        organizations,
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations.

/// What the mutations did, for the log line of a round.
#[derive(Debug, Default)]
struct Tally {
    applied: BTreeMap<&'static str, u32>,
    refused: u32,
}

impl Tally {
    fn note<T, E>(&mut self, what: &'static str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => {
                *self.applied.entry(what).or_default() += 1;
                Some(value)
            }
            // Closed and deleted tickets refuse changes, as in Zendesk; that is part of the run.
            Err(_) => {
                self.refused += 1;
                None
            }
        }
    }
}

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

const STATUSES: [Status; 6] = [
    Status::Open,
    Status::Pending,
    Status::Hold,
    Status::Solved,
    Status::Solved,
    Status::Closed,
];
const PRIORITIES: [Option<Priority>; 6] = [
    Some(Priority::High),
    Some(Priority::Urgent),
    Some(Priority::Urgent),
    Some(Priority::Normal),
    Some(Priority::Low),
    None,
];
const REOPEN_TO: [Status; 4] = [Status::Open, Status::Open, Status::Pending, Status::Hold];

/// One round of random mutations; the clock moves one to thirty seconds before each.
///
/// `latest_ratings` holds, per ticket, the newest rating this test added (the one its ticket
/// shows). A ticket whose rating was scored takes no other change in the round, so its
/// `updated_at` is the time of the score (what the ticket export tells the daemon).
fn mutate(
    rng: &mut StdRng,
    control: &SimulatorControl,
    clock: &ManualClock,
    requesters: &[u64],
    latest_ratings: &mut BTreeMap<u64, u64>,
    scored: &mut BTreeSet<u64>,
    count: usize,
) -> Tally {
    let mut tally = Tally::default();
    let mut frozen: BTreeSet<u64> = BTreeSet::new();
    // Tickets that still take changes; a few "hot" ones get most of them, so one ticket often
    // changes several times between two syncs.
    let mut open: Vec<u64> = control
        .ticket_ids()
        .into_iter()
        .filter(|id| {
            let ticket = control.ticket_json(*id).expect("ticket");
            !matches!(ticket["status"].as_str(), Some("closed" | "deleted"))
        })
        .collect();
    open.sort_unstable();
    let mut hot: Vec<u64> = (0..5).map(|_| pick(rng, &open)).collect();
    let tick =
        |rng: &mut StdRng, max: i64| clock.advance(TimeDelta::seconds(rng.random_range(1..=max)));
    for _ in 0..count {
        tick(rng, 30);
        let id = if rng.random_bool(0.6) {
            pick(rng, &hot)
        } else {
            pick(rng, &open)
        };
        if frozen.contains(&id) {
            continue;
        }
        let update = |status: Option<Status>, priority: Option<Option<Priority>>| TicketUpdate {
            status,
            priority,
            ..Default::default()
        };
        match rng.random_range(0..100) {
            0..25 => {
                let status = pick(rng, &STATUSES);
                tally.note(
                    "status",
                    control.update_ticket(id, update(Some(status), None)),
                );
            }
            25..45 => {
                let priority = pick(rng, &PRIORITIES);
                tally.note(
                    "priority",
                    control.update_ticket(id, update(None, Some(priority))),
                );
            }
            45..55 => {
                let status = pick(rng, &STATUSES);
                let priority = pick(rng, &PRIORITIES);
                tally.note(
                    "status+priority",
                    control.update_ticket(id, update(Some(status), Some(priority))),
                );
            }
            55..67 => {
                // Solved and reopened (sometimes raised first, sometimes solved again) between two syncs.
                if rng.random_bool(0.5) {
                    let raise = pick(rng, &[Priority::High, Priority::Urgent]);
                    tally.note(
                        "raise",
                        control.update_ticket(id, update(None, Some(Some(raise)))),
                    );
                    tick(rng, 10);
                }
                tally.note(
                    "solve",
                    control.update_ticket(id, update(Some(Status::Solved), None)),
                );
                tick(rng, 10);
                let to = pick(rng, &REOPEN_TO);
                tally.note("reopen", control.update_ticket(id, update(Some(to), None)));
                if rng.random_bool(0.3) {
                    tick(rng, 10);
                    let again = pick(rng, &[Status::Solved, Status::Closed]);
                    tally.note(
                        "solve again",
                        control.update_ticket(id, update(Some(again), None)),
                    );
                }
            }
            67..77 => {
                let new = NewTicket {
                    subject: Some(format!("Model ticket {}", rng.random_range(0..1_000_000))),
                    requester_id: Some(pick(rng, requesters)),
                    status: Some(pick(
                        rng,
                        &[
                            Status::New,
                            Status::Open,
                            Status::Open,
                            Status::Solved,
                            Status::Closed,
                        ],
                    )),
                    priority: pick(rng, &PRIORITIES),
                    ..Default::default()
                };
                if let Some(created) = tally.note("create", control.create_ticket(new)) {
                    open.push(created);
                    if rng.random_bool(0.5) {
                        hot.push(created);
                    }
                }
            }
            77..86 => {
                // Score or re-score a rating this test added: offered -> scored -> re-scored.
                // Mostly ratings scored before, so some go bad -> good -> bad across rounds.
                let again = rng.random_bool(0.6);
                let scorable: Vec<(u64, u64)> = latest_ratings
                    .iter()
                    .filter(|(ticket, rating)| {
                        !frozen.contains(ticket) && (!again || scored.contains(rating))
                    })
                    .map(|(ticket, rating)| (*ticket, *rating))
                    .collect();
                if scorable.is_empty() {
                    continue;
                }
                let (ticket, rating) = pick(rng, &scorable);
                // Flip the score most of the time, so ratings go bad -> good -> bad across rounds.
                let now_bad = control.rating_json(rating).expect("rating")["score"] == "bad";
                let flip = if now_bad { Score::Good } else { Score::Bad };
                let score = RatingScore {
                    score: if rng.random_bool(0.8) {
                        flip
                    } else {
                        Score::Bad
                    },
                    comment: rng
                        .random_bool(0.5)
                        .then(|| format!("Round comment {}", rng.random_range(0..1000))),
                    at: None,
                };
                if tally
                    .note("score", control.score_rating(rating, score))
                    .is_some()
                {
                    frozen.insert(ticket);
                    scored.insert(rating);
                }
            }
            86..93 => {
                let rating = match rng.random_range(0..4) {
                    0 => NewRating {
                        score: Score::Bad,
                        comment: Some("Still broken".into()),
                    },
                    1 => NewRating {
                        score: Score::Bad,
                        comment: None,
                    },
                    2 => NewRating {
                        score: Score::Good,
                        comment: None,
                    },
                    _ => NewRating {
                        score: Score::Offered,
                        comment: None,
                    },
                };
                if let Some(rating) = tally.note("rating", control.add_rating(id, rating)) {
                    latest_ratings.insert(id, rating);
                }
            }
            _ => {
                tally.note("delete", control.delete_ticket(id));
            }
        }
    }
    tally
}

// ---------------------------------------------------------------------------------------------
// The daemon.

/// Waits until run `run_id` has finished, and fails unless it succeeded; returns it.
async fn finished(client: &mut IntegrationServiceClient<Channel>, run_id: &str) -> pb::SyncRun {
    let status = wait_for_status(client, &format!("run {run_id} to finish"), |status| {
        status.current_run.is_none()
            && status
                .history
                .iter()
                .any(|run| run.id == run_id && run.outcome != pb::RunOutcome::Running as i32)
    })
    .await;
    let run = status
        .history
        .into_iter()
        .find(|run| run.id == run_id)
        .expect("the run in the history");
    assert_eq!(
        run.outcome,
        pb::RunOutcome::Succeeded as i32,
        "run {run_id} did not succeed: {}",
        run.error_message
    );
    run
}

async fn force(client: &mut IntegrationServiceClient<Channel>, kind: pb::SyncKind) -> pb::SyncRun {
    let run_id = inproc::force(client, kind)
        .await
        .expect("force sync")
        .run_id;
    finished(client, &run_id).await
}

async fn start_daemon(data: &std::path::Path, base: &str, clock: SharedClock) -> Daemon {
    // No scheduled run may start between the forced ones: the clock moves a few hours at most.
    Daemon::start(
        data,
        base,
        "[schedule]\nincremental_interval = \"7d\"\n",
        clock,
    )
    .await
}

/// Every event `ListTimelineEvents` returns (every account), page by page.
async fn list_everything(metrics: &mut MetricsServiceClient<Channel>) -> Vec<pb::TimelineEvent> {
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = metrics
            .list_timeline_events(with_token(
                pb::ListTimelineEventsRequest {
                    page_size: LIST_PAGE_SIZE,
                    page_token,
                    ..Default::default()
                },
                ADMIN_TOKEN,
            ))
            .await
            .expect("list timeline events")
            .into_inner();
        assert!(page.events.len() <= LIST_PAGE_SIZE as usize);
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        page_token = page.next_page_token;
    }
}

/// The first `n` events `WatchTimelineEvents` replays from the start of the log.
async fn watch_history(
    metrics: &mut MetricsServiceClient<Channel>,
    n: usize,
) -> Vec<pb::WatchTimelineEventsResponse> {
    let mut stream = watch_with_history(metrics).await;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let next = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .unwrap_or_else(|_| panic!("watch: only {} of {n} events in time", out.len()))
            .expect("the watch stream stays open")
            .expect("a watched event, not an error");
        out.push(next);
    }
    out
}

fn key_and_fields(event: &pb::TimelineEvent) -> (Entry, Fields) {
    let kind = Kind::of(event);
    let ticket = event.ticket.as_ref().expect("event ticket");
    let occurred = instant(event.occurred_at.as_ref().expect("occurred_at"));
    assert_eq!(
        occurred.timestamp_subsec_nanos(),
        0,
        "{}: Zendesk times are whole seconds",
        event.event_id
    );
    let detail = if kind == Kind::BadRating {
        let rating = event
            .satisfaction
            .as_ref()
            .expect("rating event satisfaction");
        (rating.score.clone(), rating.comment.clone())
    } else {
        assert!(
            event.satisfaction.is_none(),
            "{}: satisfaction on a ticket event",
            event.event_id
        );
        (ticket.status.clone(), ticket.priority.clone())
    };
    (
        (
            Key {
                kind,
                ticket: u64::try_from(ticket.id).expect("ticket id"),
                at: occurred.timestamp(),
            },
            event.account_id.clone(),
        ),
        Fields {
            backfill: event.backfill,
            escalated: event.escalated,
            detail,
        },
    )
}

/// A readable difference between the expected and the recorded events; empty when equal.
fn diff(model: &Model, want: &BTreeMap<Entry, Fields>, got: &BTreeMap<Entry, Fields>) -> String {
    let note = |(key, _): &Entry| {
        model.expected.get(key).map_or(String::new(), |expected| {
            let rating = expected
                .seen
                .rating
                .map_or(String::new(), |id| format!(" rating {id}"));
            format!(" [first seen by {}{rating}]", model.syncs[expected.sync].0)
        })
    };
    let mut out = String::new();
    for (entry, fields) in want {
        let (key, account) = entry;
        match got.get(entry) {
            None => out.push_str(&format!(
                "  missing:    {key} for {account}: {fields}{}\n",
                note(entry)
            )),
            Some(seen) if seen != fields => out.push_str(&format!(
                "  different:  {key} for {account}{}\n      expected {fields}\n      recorded {seen}\n",
                note(entry)
            )),
            Some(_) => {}
        }
    }
    for (entry, fields) in got {
        if !want.contains_key(entry) {
            let (key, account) = entry;
            let hidden = model
                .expected
                .get(key)
                .map_or("", |_| " (detected, but not for this account)");
            out.push_str(&format!(
                "  unexpected: {key} for {account}: {fields}{hidden}\n"
            ));
        }
    }
    out
}

/// What a scenario leaves to check.
struct Outcome {
    seed: u64,
    model: Model,
    /// Per sync of `model.syncs`: the events the run reports it recorded (`SyncRun.events`).
    reported: Vec<u64>,
    /// `ListTimelineEvents` over every account, all pages.
    listed: Vec<pb::TimelineEvent>,
    /// The first `listed.len()` events `WatchTimelineEvents` replays with history.
    watched: Vec<pb::WatchTimelineEventsResponse>,
    /// `GetStatus` stored events (unmatched organizations' included).
    stored_events: u64,
}

/// The seeded run: the first sync, rounds of mutations each followed by an incremental sync (a
/// full validation after some, a daemon restart before one), a last sync with nothing new; the
/// model observes the simulator after every sync. Ends with the log read over gRPC.
async fn scenario(seed: u64) -> Outcome {
    println!("timeline model seed: {seed} (replay with {SEED_VAR}={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let clock = ManualClock::new(at(START));
    let shared: SharedClock = Arc::new(clock.clone());
    let sim = inproc::simulator(SimulatorConfig {
        seed,
        clock: shared.clone(),
        ..sized(500, 12, 100)
    })
    .await;
    let control = sim.control();
    let base = sim.base_url().to_owned();
    let http = reqwest::Client::new();

    // The account directory: one account per account id the organizations carry.
    let mut org_accounts = HashMap::new();
    let mut requesters = Vec::new();
    let stats = control.stats();
    for id in 20_000_001..=20_000_000 + stats.organizations as u64 {
        let org = control.organization_json(id).expect("organization");
        if let Some(account) = org["organization_fields"]["account_id"].as_str() {
            org_accounts.insert(id, account.to_owned());
        }
    }
    for id in 10_000_001..=10_000_000 + stats.users as u64 {
        let user = control.user_json(id).expect("user");
        if user["role"].as_str() == Some("end-user") {
            requesters.push(id);
        }
    }
    assert!(!org_accounts.is_empty() && !requesters.is_empty());
    let accounts: BTreeSet<&String> = org_accounts.values().collect();
    // The directory as the daemon has it; the ids organizations may be moved to (some not in it).
    let mut directory: BTreeSet<String> = accounts.iter().map(|id| (*id).clone()).collect();
    let account_pool: Vec<String> = directory
        .iter()
        .cloned()
        .chain((1..=3).map(|n| format!("acct-later-{n}")))
        .collect();
    let org_ids: Vec<u64> = {
        let mut ids: Vec<u64> = org_accounts.keys().copied().collect();
        ids.sort_unstable();
        ids
    };
    let mut latest_ratings = BTreeMap::new();
    let mut scored = BTreeSet::new();

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut daemon = start_daemon(&data, &base, shared.clone()).await;
    AccountDirectoryServiceClient::new(daemon.channel().await)
        .upsert_accounts(with_token(
            pb::UpsertAccountsRequest {
                accounts: accounts
                    .iter()
                    .map(|id| pb::Account {
                        id: (*id).clone(),
                        name: format!("Account {id}"),
                        ..Default::default()
                    })
                    .collect(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("upsert accounts");
    let mut client = daemon.integration().await;

    let mut model = Model::default();
    let mut reported = Vec::new();
    let first_run = inproc::configure(&mut client).await;
    let run = finished(&mut client, &first_run).await;
    let now = clock.now().timestamp();
    let snap = snapshot(control, &http, &base).await;
    model.rematch(matches_of(&snap.organizations, &directory), now);
    let mut seen = visible_events(&snap, now);
    seen.extend(rating_events(&snap, &mut model.last_scores, now));
    model.observe(format!("{} the first sync", run.id), seen);
    reported.push(run.events);
    let mut daemon_orgs = snap.organizations;

    for round in 1..=ROUNDS {
        // The account directory and the match keys move: an organization's key field goes to
        // another account (one the directory may not have yet), an account is deleted or created.
        let mut moves = Vec::new();
        if rng.random_bool(0.7) {
            clock.advance(TimeDelta::seconds(rng.random_range(1..=30)));
            let org = pick(&mut rng, &org_ids);
            let to = account_pool[rng.random_range(0..account_pool.len())].clone();
            let mut fields = control.organization_json(org).expect("organization")
                ["organization_fields"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            fields.insert("account_id".into(), Value::String(to.clone()));
            control
                .update_organization(
                    org,
                    OrganizationInput {
                        organization_fields: Some(fields),
                        ..Default::default()
                    },
                )
                .expect("move an organization");
            moves.push(format!("organization {org} -> {to}"));
        }
        if rng.random_bool(0.4) && directory.len() > 1 {
            clock.advance(TimeDelta::seconds(rng.random_range(1..=30)));
            let gone = directory
                .iter()
                .nth(rng.random_range(0..directory.len()))
                .cloned()
                .expect("an account");
            AccountDirectoryServiceClient::new(daemon.channel().await)
                .delete_accounts(with_token(
                    pb::DeleteAccountsRequest {
                        ids: vec![gone.clone()],
                    },
                    ADMIN_TOKEN,
                ))
                .await
                .expect("delete an account");
            directory.remove(&gone);
            model.rematch(
                matches_of(&daemon_orgs, &directory),
                clock.now().timestamp(),
            );
            moves.push(format!("deleted {gone}"));
        }
        if rng.random_bool(0.5) {
            let absent: Vec<&String> = account_pool
                .iter()
                .filter(|id| !directory.contains(*id))
                .collect();
            if !absent.is_empty() {
                clock.advance(TimeDelta::seconds(rng.random_range(1..=30)));
                let added = absent[rng.random_range(0..absent.len())].clone();
                AccountDirectoryServiceClient::new(daemon.channel().await)
                    .upsert_accounts(with_token(
                        pb::UpsertAccountsRequest {
                            accounts: vec![pb::Account {
                                id: added.clone(),
                                name: format!("Account {added}"),
                                ..Default::default()
                            }],
                        },
                        ADMIN_TOKEN,
                    ))
                    .await
                    .expect("create an account");
                directory.insert(added.clone());
                model.rematch(
                    matches_of(&daemon_orgs, &directory),
                    clock.now().timestamp(),
                );
                moves.push(format!("created {added}"));
            }
        }
        let count = rng.random_range(25..=40);
        let tally = mutate(
            &mut rng,
            control,
            &clock,
            &requesters,
            &mut latest_ratings,
            &mut scored,
            count,
        );
        println!("round {round}: directory and keys: {moves:?}");
        println!(
            "round {round}: {count} mutations, applied {:?}, refused {}",
            tally.applied, tally.refused
        );
        // The ticket events export hides the latest minute: let every change age past it.
        clock.advance(TimeDelta::seconds(rng.random_range(61..=180)));
        if round == RESTART_ROUND {
            daemon.stop().await;
            daemon = start_daemon(&data, &base, shared.clone()).await;
            client = daemon.integration().await;
        }
        let mut kinds = vec![pb::SyncKind::Incremental];
        if VALIDATION_ROUNDS.contains(&round) {
            kinds.push(pb::SyncKind::FullValidation);
        }
        for kind in kinds {
            let run = force(&mut client, kind).await;
            let now = clock.now().timestamp();
            let snap = snapshot(control, &http, &base).await;
            model.rematch(matches_of(&snap.organizations, &directory), now);
            let mut seen = visible_events(&snap, now);
            seen.extend(rating_events(&snap, &mut model.last_scores, now));
            daemon_orgs = snap.organizations;
            model.observe(
                format!("{} {} after round {round}", run.id, kind.as_str_name()),
                seen,
            );
            reported.push(run.events);
        }
    }
    // Nothing changed since: one more incremental sync records nothing.
    let run = force(&mut client, pb::SyncKind::Incremental).await;
    model.observe(
        format!("{} INCREMENTAL at the end", run.id),
        BTreeMap::new(),
    );
    reported.push(run.events);

    let mut metrics = MetricsServiceClient::new(daemon.channel().await);
    let listed = list_everything(&mut metrics).await;
    let watched = watch_history(&mut metrics, listed.len()).await;
    let stored_events = inproc::status(&mut client)
        .await
        .stored
        .expect("stored counts")
        .events;
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
    Outcome {
        seed,
        model,
        reported,
        listed,
        watched,
        stored_events,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_log_equals_the_model_after_random_mutations_syncs_and_a_restart() {
    let Outcome {
        seed,
        model,
        listed,
        watched,
        stored_events,
        ..
    } = scenario(seed()).await;

    // Every event once, and exactly the expected ones.
    let mut got = BTreeMap::new();
    let mut duplicates = String::new();
    let mut event_ids = BTreeSet::new();
    for event in &listed {
        if !event_ids.insert((event.event_id.clone(), event.account_id.clone())) {
            duplicates.push_str(&format!(
                "  event id {} listed twice for {}\n",
                event.event_id, event.account_id
            ));
        }
        let (entry, fields) = key_and_fields(event);
        if let Some(previous) = got.insert(entry.clone(), fields.clone()) {
            duplicates.push_str(&format!(
                "  {} recorded twice for {}: {previous} / {fields}\n",
                entry.0, entry.1
            ));
        }
    }
    let want = model.listed();
    let difference = diff(&model, &want, &got);
    assert!(
        difference.is_empty() && duplicates.is_empty(),
        "seed {seed} ({SEED_VAR}={seed}): the event log differs from the model \
         ({} expected, {} listed)\n{difference}{duplicates}",
        want.len(),
        listed.len(),
    );
    assert_eq!(
        stored_events,
        model.expected.len() as u64,
        "seed {seed}: stored events, unmatched organizations' included"
    );

    // The watch replays the same log, each event once, in recording order.
    let mut cursors = Vec::new();
    let mut watched_ids = BTreeSet::new();
    for item in &watched {
        let event = item.event.as_ref().expect("watched event");
        assert!(
            watched_ids.insert((event.event_id.clone(), event.account_id.clone())),
            "seed {seed}: {} watched twice for {}",
            event.event_id,
            event.account_id
        );
        cursors.push(item.cursor.parse::<u64>().expect("a numeric cursor"));
    }
    assert_eq!(watched_ids, event_ids, "seed {seed}: watch and list differ");
    assert!(
        cursors.windows(2).all(|pair| pair[0] < pair[1]),
        "seed {seed}: the watch replays in recording order"
    );

    // The run exercised what the model is about.
    let kinds: BTreeSet<Kind> = want.keys().map(|(key, _)| key.kind).collect();
    assert_eq!(kinds.len(), 4, "seed {seed}: every kind occurs: {kinds:?}");
    assert!(
        want.values().any(|f| f.escalated),
        "seed {seed}: an escalation"
    );
    assert!(want.values().any(|f| f.backfill), "seed {seed}: backfill");
    assert!(
        want.values().filter(|f| !f.backfill).count() >= 10,
        "seed {seed}: live events"
    );
    // Events of organizations that moved: backfilled for a later sync's account, and on two timelines.
    let rematch_backfill = want
        .iter()
        .any(|((key, _), fields)| fields.backfill && model.expected[key].sync > 0);
    assert!(
        rematch_backfill,
        "seed {seed}: a backfill after a new match"
    );
    let mut timelines_per_event: BTreeMap<Key, usize> = BTreeMap::new();
    for (key, _) in want.keys() {
        *timelines_per_event.entry(*key).or_default() += 1;
    }
    assert!(
        timelines_per_event.values().any(|n| *n > 1),
        "seed {seed}: an event on two accounts' timelines"
    );
    // A rating that turned bad again after a good score: two events of one rating.
    let mut bad_per_rating: BTreeMap<u64, usize> = BTreeMap::new();
    for expected in model.expected.values() {
        if let Some(rating) = expected.seen.rating {
            *bad_per_rating.entry(rating).or_default() += 1;
        }
    }
    assert!(
        bad_per_rating.values().any(|n| *n > 1),
        "seed {seed}: a rating that turned bad, good and bad again"
    );
    let solved_then_reopened = model.expected.iter().any(|(key, expected)| {
        key.kind == Kind::Reopened
            && expected.sync > 0
            && model.expected.iter().any(|(other, earlier)| {
                other.kind == Kind::Solved
                    && other.ticket == key.ticket
                    && other.at < key.at
                    && earlier.sync == expected.sync
            })
    });
    assert!(
        solved_then_reopened,
        "seed {seed}: a ticket solved and reopened between two syncs"
    );
    println!(
        "timeline model seed {seed}: {} events expected ({} listed, {} backfill) over {} syncs",
        model.expected.len(),
        want.len(),
        want.values().filter(|f| f.backfill).count(),
        model.syncs.len()
    );
}

/// `SyncRun.events` ("Timeline events recorded") of each run equals what the model says it added.
#[tokio::test(flavor = "multi_thread")]
async fn each_run_reports_the_events_it_recorded() {
    let Outcome {
        seed,
        model,
        reported,
        ..
    } = scenario(seed()).await;
    let differences: Vec<String> = model
        .syncs
        .iter()
        .zip(&reported)
        .filter(|((_, expected), reported)| expected != *reported)
        .map(|((label, expected), reported)| {
            format!("  {label}: the model says {expected} new events, the run reports {reported}")
        })
        .collect();
    assert!(
        differences.is_empty(),
        "seed {seed} ({SEED_VAR}={seed}): SyncRun.events differs from the events each run recorded\n{}",
        differences.join("\n")
    );
}
