//! Timeline events end to end: the simulator and the in-process daemon sync, then the stopped
//! daemon's store answers `ListTimelineEvents` and `WatchTimelineEvents` through the functions the
//! metrics service delegates to.
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::inproc::{
    self, configure_and_sync, force, instant, new_ticket, open_store, organization_with_requester,
    sized, upsert_accounts, wait_for_successful_runs, Daemon, Harness,
};
use common::DEADLINE;
use tokio_stream::StreamExt;
use tonic::Code;
use zdsync::grpc::timeline;
use zdsync::proto::v1 as pb;
use zdsync::simulator::{NewRating, Priority, Score, Status, TicketUpdate};
use zdsync::store::page::{PageContext, PageWrite, TicketChange};
use zdsync::store::zendesk_records::{ChangeRecord, TicketRecord, CHANGE_FIELD_STATUS};
use zdsync::store::Store;

const ACCOUNT: &str = "acct-events";
const OWNER: &str = "owner@events.example";
const REQUESTER: &str = "rita@events.example";

type Kind = pb::TimelineEventKind;

fn kind(event: &pb::TimelineEvent) -> Kind {
    Kind::try_from(event.kind).expect("known kind")
}

fn occurred(event: &pb::TimelineEvent) -> DateTime<Utc> {
    instant(event.occurred_at.as_ref().expect("occurred_at"))
}

fn list_request(
    scope: Option<pb::list_timeline_events_request::Scope>,
) -> pb::ListTimelineEventsRequest {
    pb::ListTimelineEventsRequest {
        scope,
        ..Default::default()
    }
}

fn account_scope() -> Option<pb::list_timeline_events_request::Scope> {
    Some(pb::list_timeline_events_request::Scope::AccountId(
        ACCOUNT.into(),
    ))
}

/// Every event of a list, page by page (two per page, to exercise the tokens).
async fn list_all(
    store: &Store,
    mut request: pb::ListTimelineEventsRequest,
) -> Vec<pb::TimelineEvent> {
    request.page_size = 2;
    let mut events = Vec::new();
    loop {
        let page = timeline::list(store.clone(), request.clone())
            .await
            .expect("list");
        assert!(page.events.len() <= 2);
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        request.page_token = page.next_page_token;
    }
}

/// The next `n` responses of a watch stream.
async fn take(
    stream: &mut (impl tokio_stream::Stream<Item = Result<pb::WatchTimelineEventsResponse, tonic::Status>>
              + Unpin),
    n: usize,
) -> Vec<pb::WatchTimelineEventsResponse> {
    let mut out = Vec::new();
    while out.len() < n {
        let next = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .expect("a watch response in time")
            .expect("the stream stays open")
            .expect("an event, not an error");
        out.push(next);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn transitions_between_syncs_are_recorded_once_with_their_real_times_and_watchers_resume() {
    let sim = inproc::simulator(sized(300, 10, 50)).await;
    let control = sim.control();
    let (organization, requester) =
        organization_with_requester(control, "Events Org", ACCOUNT, "Rita Requester", REQUESTER);
    let urgent = new_ticket(control, "Printer on fire", requester, Priority::Urgent);
    let normal = new_ticket(control, "Slow printer", requester, Priority::Normal);
    // The ticket events export hides the latest minute, as Zendesk does.
    control.set_time_offset(120);

    let (sim, dir, daemon, mut client) = Harness::with_simulator(sim).await.into_parts();
    let control = sim.control();
    let data = dir.path().join("data");
    configure_and_sync(&mut client).await;
    let account = pb::Account {
        id: ACCOUNT.into(),
        name: "Events Inc".into(),
        owner: OWNER.into(),
        users: vec![pb::User {
            email: REQUESTER.into(),
            name: "Rita".into(),
        }],
        ..Default::default()
    };
    upsert_accounts(&daemon, vec![account]).await;

    // The agent and group the urgent ticket is solved by (the admin is the first user, agents follow).
    let agent = 10_000_002;
    let agent_json = control.user_json(agent).expect("an agent");
    assert_eq!(agent_json["role"], "agent");
    let agent_name = agent_json["name"].as_str().expect("agent name").to_owned();
    let groups = common::http::api_json(
        reqwest::Client::new().get(format!("{}/api/v2/groups.json", sim.base_url())),
        "groups",
    )
    .await;
    let group = &groups["groups"][0];
    let (group_id, group_name) = (
        group["id"].as_u64().expect("group id"),
        group["name"].as_str().expect("group name").to_owned(),
    );
    let urgent_created_at = control.ticket_json(urgent).expect("ticket")["created_at"]
        .as_str()
        .expect("created_at")
        .parse::<DateTime<Utc>>()
        .expect("a time");

    // Between two syncs: solved, rated bad, reopened; and a normal ticket raised to high.
    control.set_time_offset(200);
    let solved_at = control.now();
    control
        .update_ticket(
            urgent,
            TicketUpdate {
                status: Some(Status::Solved),
                group_id: Some(Some(group_id)),
                assignee_id: Some(Some(agent)),
                ..Default::default()
            },
        )
        .expect("solve");
    control
        .add_rating(
            urgent,
            NewRating {
                score: Score::Bad,
                comment: Some("Still on fire".into()),
            },
        )
        .expect("rate");
    control.set_time_offset(300);
    let reopened_at = control.now();
    control
        .update_ticket(
            urgent,
            TicketUpdate {
                status: Some(Status::Open),
                ..Default::default()
            },
        )
        .expect("reopen");
    let raised_at = control.now();
    control
        .update_ticket(
            normal,
            TicketUpdate {
                priority: Some(Some(Priority::High)),
                ..Default::default()
            },
        )
        .expect("raise");
    control.set_time_offset(400);

    force(&mut client, pb::SyncKind::Incremental)
        .await
        .expect("incremental");
    wait_for_successful_runs(&mut client, 2).await;
    force(&mut client, pb::SyncKind::FullValidation)
        .await
        .expect("validation");
    wait_for_successful_runs(&mut client, 3).await;
    daemon.stop().await;

    // A restart and another sync of the same source change nothing.
    let daemon = Daemon::start(&data, sim.base_url(), "", zdsync::clock::system()).await;
    let mut client = daemon.integration().await;
    force(&mut client, pb::SyncKind::Incremental)
        .await
        .expect("incremental after restart");
    let status = wait_for_successful_runs(&mut client, 4).await;
    daemon.stop().await;
    // Each run counts the events it recorded (history is newest first): the incremental one recorded the
    // solve, the bad rating, the reopen and the escalation; the validation and the later run nothing new.
    let per_run: Vec<u64> = status.history.iter().map(|run| run.events).collect();
    assert_eq!(per_run[..3], [0, 0, 4], "{:#?}", status.history);
    assert!(per_run[3] >= 1, "the first sync backfilled: {per_run:?}");

    let store = open_store(&data);
    let events = list_all(&store, list_request(account_scope())).await;
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no duplicates: {ids:?}");
    assert!(
        events
            .windows(2)
            .all(|pair| occurred(&pair[0]) >= occurred(&pair[1])),
        "newest first"
    );
    let of = |ticket: u64, wanted: Kind| -> Vec<&pb::TimelineEvent> {
        events
            .iter()
            .filter(|e| {
                kind(e) == wanted && e.ticket.as_ref().is_some_and(|t| t.id == ticket as i64)
            })
            .collect()
    };
    let created = of(urgent, Kind::HighUrgentTicketCreated);
    assert_eq!(created.len(), 1, "{events:#?}");
    assert!(created[0].backfill && !created[0].escalated);
    let solved = of(urgent, Kind::HighUrgentTicketSolved);
    assert_eq!(solved.len(), 1, "{events:#?}");
    assert!(!solved[0].backfill);
    let near =
        |at: DateTime<Utc>, expected: DateTime<Utc>| (at - expected).num_seconds().abs() <= 2;
    assert!(
        near(occurred(solved[0]), solved_at),
        "solved at its real time"
    );
    let ticket = solved[0].ticket.as_ref().expect("ticket");
    assert_eq!(
        (ticket.status.as_str(), ticket.priority.as_str()),
        ("solved", "urgent")
    );
    assert_eq!(ticket.subject, "Printer on fire");
    let reporter = ticket.reporter.as_ref().expect("reporter");
    assert_eq!(
        (reporter.email.as_str(), reporter.name.as_str()),
        (REQUESTER, "Rita Requester")
    );
    assert_eq!(ticket.assigned_group, group_name);
    assert_eq!(ticket.assignee, agent_name);
    let reported_at = ticket
        .reported_at
        .as_ref()
        .and_then(zdsync::grpc::convert::timestamp_from_proto)
        .expect("reported_at");
    assert_eq!(
        reported_at, urgent_created_at,
        "reported_at is the ticket's created_at"
    );
    assert_eq!(solved[0].account_id, ACCOUNT);
    assert_eq!(solved[0].user_email, REQUESTER);
    let reopened = of(urgent, Kind::HighUrgentTicketReopened);
    assert_eq!(reopened.len(), 1, "{events:#?}");
    assert!(
        near(occurred(reopened[0]), reopened_at),
        "reopened at its real time"
    );
    let escalated = of(normal, Kind::HighUrgentTicketCreated);
    assert_eq!(escalated.len(), 1, "{events:#?}");
    assert!(escalated[0].escalated && !escalated[0].backfill);
    assert!(near(occurred(escalated[0]), raised_at));
    let bad = of(urgent, Kind::BadSatisfactionRating);
    assert_eq!(bad.len(), 1, "{events:#?}");
    let satisfaction = bad[0].satisfaction.as_ref().expect("satisfaction");
    assert_eq!(satisfaction.comment, "Still on fire");
    assert!(satisfaction.score.starts_with("bad"));
    assert_eq!(events.len(), 5, "{events:#?}");

    // The portfolio feed and the all-accounts feed hold the same events; filters narrow them.
    let owner = list_all(
        &store,
        list_request(Some(pb::list_timeline_events_request::Scope::Owner(
            "Owner@Events.example".into(),
        ))),
    )
    .await;
    assert_eq!(owner, events);
    let everything = list_all(&store, list_request(None)).await;
    assert!(events.iter().all(|e| everything.contains(e)));
    let solved_only = list_all(
        &store,
        pb::ListTimelineEventsRequest {
            kinds: vec![Kind::HighUrgentTicketSolved as i32],
            since: Some(prost_types::Timestamp {
                seconds: solved_at.timestamp() - 5,
                nanos: 0,
            }),
            ..list_request(account_scope())
        },
    )
    .await;
    assert_eq!(solved_only, vec![solved[0].clone()]);

    watch_resumes_exactly_once(&store, events.len(), organization).await;
    stalled_watcher_is_told_where_to_resume(&store).await;
    live_watchers_get_a_resume_point_and_heartbeats(&store, organization).await;

    // A portfolio watch of one kind replays just that kind.
    let (_shutdown_sender, shutdown) = tokio::sync::watch::channel(false);
    let request = pb::WatchTimelineEventsRequest {
        include_history: true,
        kinds: vec![Kind::HighUrgentTicketSolved as i32],
        scope: Some(pb::watch_timeline_events_request::Scope::Owner(
            OWNER.into(),
        )),
        ..Default::default()
    };
    let mut portfolio = timeline::watch(store.clone(), request, shutdown).expect("portfolio watch");
    let only = take(&mut portfolio, 1).await;
    assert_eq!(only[0].event.as_ref(), Some(solved[0]));
    drop(store);
    sim.shutdown().await.expect("simulator stops");
}

fn watch_request(after_cursor: &str, include_history: bool) -> pb::WatchTimelineEventsRequest {
    pb::WatchTimelineEventsRequest {
        after_cursor: after_cursor.into(),
        include_history,
        scope: Some(pb::watch_timeline_events_request::Scope::AccountId(
            ACCOUNT.into(),
        )),
        ..Default::default()
    }
}

/// A new high/urgent ticket created now in `organization`, as a sync page would record it.
fn urgent_ticket_page(id: u64, organization: u64) -> PageWrite {
    let now = Utc::now().timestamp();
    PageWrite {
        tickets: vec![(
            id,
            TicketRecord {
                subject: "Live one".into(),
                status: 1,
                priority: 4,
                organization_id: organization,
                created_at: now,
                updated_at: now,
                generated_timestamp: now,
                ..Default::default()
            },
        )],
        changes: vec![
            TicketChange {
                ticket_id: id,
                at: now,
                event_id: id,
                index: 0,
                change: ChangeRecord {
                    field: CHANGE_FIELD_STATUS,
                    from: 0,
                    to: 1,
                },
            },
            TicketChange {
                ticket_id: id,
                at: now,
                event_id: id,
                index: 1,
                change: ChangeRecord {
                    field: zdsync::store::zendesk_records::CHANGE_FIELD_PRIORITY,
                    from: 0,
                    to: 4,
                },
            },
        ],
        context: PageContext {
            first_sync: false,
            snapshot_events: false,
            now_ms: now * 1000,
        },
        ..Default::default()
    }
}

async fn watch_resumes_exactly_once(store: &Store, stored: usize, organization: u64) {
    let (shutdown_sender, shutdown) = tokio::sync::watch::channel(false);
    // Live only: nothing stored is replayed; the next recorded event arrives.
    let mut live = timeline::watch(store.clone(), watch_request("", false), shutdown.clone())
        .expect("watch live");
    // History: the first two events, then the watcher goes away.
    let mut first = timeline::watch(store.clone(), watch_request("", true), shutdown.clone())
        .expect("watch history");
    let head = take(&mut first, 2).await;
    drop(first);
    let cursor = head[1].cursor.clone();
    let mut resumed = timeline::watch(
        store.clone(),
        watch_request(&cursor, false),
        shutdown.clone(),
    )
    .expect("resume");
    let rest = take(&mut resumed, stored - 2).await;
    let mut seen: Vec<String> = head
        .iter()
        .chain(&rest)
        .map(|r| r.event.as_ref().expect("event").event_id.clone())
        .collect();
    let organization_page = urgent_ticket_page(9_000_001, organization);
    let outcome = store
        .apply_page(&organization_page)
        .expect("record a live event");
    assert_eq!(outcome.events_recorded, 1);
    let new = take(&mut resumed, 1).await;
    let live_event = take(&mut live, 1).await;
    assert_eq!(new, live_event, "both watchers see the live event");
    let new_event = new[0].event.as_ref().expect("event");
    assert_eq!(new_event.account_id, ACCOUNT);
    assert_eq!(kind(new_event), Kind::HighUrgentTicketCreated);
    seen.push(new_event.event_id.clone());
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "every event exactly once: {seen:?}"
    );
    assert_eq!(seen.len(), stored + 1);
    // The same page again records nothing, so the watchers get nothing more; shutdown ends them.
    assert_eq!(
        store
            .apply_page(&organization_page)
            .expect("again")
            .events_recorded,
        0
    );
    shutdown_sender.send_replace(true);
    for stream in [&mut resumed, &mut live] {
        let end = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .expect("the stream ends on shutdown");
        assert!(end.is_none(), "ended cleanly, got {end:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_are_validated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let scope = |id: &str| {
        Some(pb::list_timeline_events_request::Scope::AccountId(
            id.into(),
        ))
    };
    let cases = [
        (list_request(scope("")), Code::InvalidArgument),
        (list_request(scope("nobody")), Code::NotFound),
        (
            pb::ListTimelineEventsRequest {
                kinds: vec![0],
                ..list_request(None)
            },
            Code::InvalidArgument,
        ),
        (
            pb::ListTimelineEventsRequest {
                page_size: 1001,
                ..list_request(None)
            },
            Code::InvalidArgument,
        ),
        (
            pb::ListTimelineEventsRequest {
                page_token: "garbage".into(),
                ..list_request(None)
            },
            Code::InvalidArgument,
        ),
        (
            pb::ListTimelineEventsRequest {
                since: Some(prost_types::Timestamp {
                    seconds: 10,
                    nanos: 0,
                }),
                until: Some(prost_types::Timestamp {
                    seconds: 5,
                    nanos: 0,
                }),
                ..list_request(None)
            },
            Code::InvalidArgument,
        ),
    ];
    for (request, code) in cases {
        let error = timeline::list(store.clone(), request.clone())
            .await
            .expect_err("refused");
        assert_eq!(error.code(), code, "{request:?}: {error:?}");
    }
    let (_shutdown_sender, shutdown) = tokio::sync::watch::channel(false);
    let malformed = pb::WatchTimelineEventsRequest {
        after_cursor: "x".into(),
        ..Default::default()
    };
    let error =
        timeline::watch(store.clone(), malformed, shutdown.clone()).expect_err("bad cursor");
    assert_eq!(error.code(), Code::InvalidArgument);
}

/// A live-only watcher that asks for heartbeats knows its resume point before any event, and hears a
/// heartbeat while nothing happens; without heartbeats nothing but events is sent.
async fn live_watchers_get_a_resume_point_and_heartbeats(store: &Store, organization: u64) {
    let (_shutdown_sender, shutdown) = tokio::sync::watch::channel(false);
    let tip = store.last_event_seq().expect("tip");
    let request = pb::WatchTimelineEventsRequest {
        heartbeat_seconds: 1,
        ..watch_request("", false)
    };
    let mut live = timeline::watch(store.clone(), request, shutdown.clone())
        .expect("watch")
        .into_inner();
    let first = live.recv().await.expect("an item").expect("a heartbeat");
    assert!(first.event.is_none(), "{first:?}");
    assert_eq!(first.cursor, tip.to_string(), "the resume point is the tip");
    let quiet = tokio::time::timeout(Duration::from_secs(30), live.recv())
        .await
        .expect("a heartbeat within the deadline")
        .expect("an item")
        .expect("a heartbeat");
    assert!(quiet.event.is_none());
    assert_eq!(quiet.cursor, tip.to_string());
    // An event recorded now is delivered with its own cursor, and a resume after the heartbeat's
    // cursor gets exactly it.
    store
        .apply_page(&urgent_ticket_page(9_999_001, organization))
        .expect("apply");
    let event = loop {
        let item = live.recv().await.expect("an item").expect("ok");
        if item.event.is_some() {
            break item;
        }
    };
    let mut resumed = timeline::watch(store.clone(), watch_request(&quiet.cursor, false), shutdown)
        .expect("resume")
        .into_inner();
    let replayed = resumed.recv().await.expect("an item").expect("the event");
    assert_eq!(replayed.cursor, event.cursor);
    assert_eq!(replayed.event, event.event);

    let bad = pb::WatchTimelineEventsRequest {
        heartbeat_seconds: 3601,
        ..watch_request("", false)
    };
    let (_shutdown_sender, shutdown) = tokio::sync::watch::channel(false);
    let error = timeline::watch(store.clone(), bad, shutdown).expect_err("out of range");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().starts_with("heartbeat_seconds: "),
        "{}",
        error.message()
    );
}

/// A consumer that stops reading gets what fits, then RESOURCE_EXHAUSTED naming its last cursor.
async fn stalled_watcher_is_told_where_to_resume(store: &Store) {
    let (_shutdown_sender, shutdown) = tokio::sync::watch::channel(false);
    let stream = timeline::watch_with(
        store.clone(),
        watch_request("", true),
        shutdown,
        4,
        Duration::from_millis(50),
    )
    .expect("watch");
    // Capacity 4 keeps one slot for the error: three events, then the end. The test reads nothing
    // until the watcher has given up, so the watcher sees a consumer that does not keep up.
    let mut receiver = stream.into_inner();
    common::eventually("the watcher to give up on the stalled consumer", || {
        let queued = receiver.len();
        async move { (queued == 4).then_some(()) }
    })
    .await;
    let mut delivered = Vec::new();
    for _ in 0..3 {
        delivered.push(receiver.recv().await.expect("an item").expect("an event"));
    }
    let error = receiver
        .recv()
        .await
        .expect("an item")
        .expect_err("the stream ends with an error");
    assert_eq!(error.code(), Code::ResourceExhausted);
    assert_eq!(
        error.message(),
        format!(
            "consumer too slow; resume from cursor {}",
            delivered[2].cursor
        )
    );
    assert!(receiver.recv().await.is_none(), "nothing after the error");
}
