//! The timeline over real gRPC: ListTimelineEvents and WatchTimelineEvents through MetricsService.
mod common;

use common::inproc::{
    self, configure_and_sync, new_ticket, organization_with_requester, sized, upsert_accounts,
    watch_with_history, Daemon, Harness, ADMIN_TOKEN,
};
use common::with_token;
use tokio_stream::StreamExt;
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::metrics_service_client::MetricsServiceClient;
use zdsync::simulator::{Priority, SimulatorHandle, Status, TicketUpdate};

const OWNER: &str = "owner@grpc.test";

/// A daemon synced once from a simulator where account `acct-grpc` (owned by [`OWNER`]) has one
/// urgent ticket, created and then solved: two events.
struct Synced {
    sim: SimulatorHandle,
    daemon: Daemon,
    ticket: u64,
    _dir: tempfile::TempDir,
}

async fn synced() -> Synced {
    let sim = inproc::simulator(sized(50, 3, 10)).await;
    let control = sim.control();
    let (_, requester) =
        organization_with_requester(control, "Grpc Org", "acct-grpc", "Gina", "gina@grpc.test");
    let ticket = new_ticket(control, "Down", requester, Priority::Urgent);
    control.set_time_offset(90);
    control
        .update_ticket(
            ticket,
            TicketUpdate {
                status: Some(Status::Solved),
                ..Default::default()
            },
        )
        .expect("solve");
    control.set_time_offset(200);

    let (sim, dir, daemon, mut client) = Harness::with_simulator(sim).await.into_parts();
    let account = pb::Account {
        id: "acct-grpc".into(),
        owner: OWNER.into(),
        users: vec![pb::User {
            email: "gina@grpc.test".into(),
            name: String::new(),
        }],
        ..Default::default()
    };
    upsert_accounts(&daemon, vec![account]).await;
    configure_and_sync(&mut client).await;
    Synced {
        sim,
        daemon,
        ticket,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_are_listed_and_watched_over_grpc() {
    let Synced {
        sim,
        daemon,
        ticket,
        _dir,
    } = synced().await;
    let mut metrics = MetricsServiceClient::new(daemon.channel().await);
    let listed = metrics
        .list_timeline_events(with_token(
            pb::ListTimelineEventsRequest {
                scope: Some(pb::list_timeline_events_request::Scope::Owner(OWNER.into())),
                ..Default::default()
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("list")
        .into_inner();
    let kinds: Vec<i32> = listed.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            pb::TimelineEventKind::HighUrgentTicketSolved as i32,
            pb::TimelineEventKind::HighUrgentTicketCreated as i32
        ],
        "newest first: {listed:?}"
    );
    let solved = &listed.events[0];
    assert!(solved.backfill, "the first sync backfills");
    assert_eq!(solved.account_id, "acct-grpc");
    assert_eq!(solved.user_email, "gina@grpc.test");
    let ticket_view = solved.ticket.as_ref().expect("ticket");
    assert_eq!(
        (ticket_view.id, ticket_view.subject.as_str()),
        (ticket as i64, "Down")
    );

    let mut watch = watch_with_history(&mut metrics).await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let item = tokio::time::timeout(common::DEADLINE, watch.next())
            .await
            .expect("an event in time")
            .expect("stream open")
            .expect("event");
        seen.push(item.event.expect("event").event_id);
    }
    let mut listed_ids: Vec<String> = listed.events.iter().map(|e| e.event_id.clone()).collect();
    listed_ids.reverse();
    assert_eq!(seen, listed_ids, "history replays in recording order");
    drop(watch);
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}

async fn list(
    metrics: &mut MetricsServiceClient<tonic::transport::Channel>,
    request: pb::ListTimelineEventsRequest,
) -> Result<pb::ListTimelineEventsResponse, tonic::Status> {
    metrics
        .list_timeline_events(with_token(request, ADMIN_TOKEN))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread")]
async fn page_tokens_only_continue_the_query_they_came_from() {
    use pb::list_timeline_events_request::Scope;
    type Kind = pb::TimelineEventKind;
    let Synced {
        sim, daemon, _dir, ..
    } = synced().await;
    let mut metrics = MetricsServiceClient::new(daemon.channel().await);
    let by_owner = pb::ListTimelineEventsRequest {
        scope: Some(Scope::Owner(OWNER.into())),
        page_size: 1,
        ..Default::default()
    };
    let first = list(&mut metrics, by_owner.clone())
        .await
        .expect("first page");
    assert_eq!(first.events.len(), 1, "{first:?}");
    assert!(!first.next_page_token.is_empty(), "a second page follows");
    let token = first.next_page_token.clone();

    let changed = [
        (
            "account scope",
            pb::ListTimelineEventsRequest {
                scope: Some(Scope::AccountId("acct-grpc".into())),
                ..by_owner.clone()
            },
        ),
        (
            "all accounts",
            pb::ListTimelineEventsRequest {
                scope: None,
                ..by_owner.clone()
            },
        ),
        (
            "kinds",
            pb::ListTimelineEventsRequest {
                kinds: vec![Kind::HighUrgentTicketCreated as i32],
                ..by_owner.clone()
            },
        ),
        (
            "since",
            pb::ListTimelineEventsRequest {
                since: Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 0,
                }),
                ..by_owner.clone()
            },
        ),
        (
            "until",
            pb::ListTimelineEventsRequest {
                until: Some(prost_types::Timestamp {
                    seconds: 4_000_000_000,
                    nanos: 0,
                }),
                ..by_owner.clone()
            },
        ),
    ];
    for (what, request) in changed {
        let request = pb::ListTimelineEventsRequest {
            page_token: token.clone(),
            ..request
        };
        let error = list(&mut metrics, request)
            .await
            .expect_err("a token of other filters is refused");
        assert_eq!(
            error.code(),
            tonic::Code::InvalidArgument,
            "{what}: {error:?}"
        );
        assert!(
            error.message().starts_with("page_token: ")
                && error.message().contains("filters changed"),
            "{what}: {error:?}"
        );
    }

    // The same filters continue: another page size is fine, and the owner is compared lower-cased.
    let second = list(
        &mut metrics,
        pb::ListTimelineEventsRequest {
            scope: Some(Scope::Owner(OWNER.to_uppercase())),
            page_size: 10,
            page_token: token,
            ..by_owner.clone()
        },
    )
    .await
    .expect("second page");
    assert!(second.next_page_token.is_empty(), "{second:?}");
    let paged: Vec<pb::TimelineEvent> = first.events.into_iter().chain(second.events).collect();
    let whole = list(
        &mut metrics,
        pb::ListTimelineEventsRequest {
            page_size: 0,
            ..by_owner
        },
    )
    .await
    .expect("one page");
    assert_eq!(whole.events.len(), 2, "{whole:?}");
    assert_eq!(paged, whole.events);
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}
