//! A rating's lifecycle end to end (DESIGN 1.4, issue #15): a survey offered, a sync, the rating
//! scored bad days later, a sync. The score comes with the ticket (the rating list is by creation
//! time and never returns it again), counts on the UTC day it was given, and its event carries the
//! real time of the score; re-scored good and bad again, it is a second event.
mod common;

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use common::inproc::{
    self, instant, new_ticket, organization_with_requester, sized, upsert_accounts, Daemon,
    ADMIN_TOKEN,
};
use common::sim::SimControlClient;
use common::with_token;
use tonic::transport::Channel;
use zdsync::clock::{Clock, ManualClock, SharedClock};
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;
use zdsync::proto::v1::integration_service_client::IntegrationServiceClient;
use zdsync::proto::v1::metrics_service_client::MetricsServiceClient;
use zdsync::simulator::{Priority, SimulatorConfig};

const ACCOUNT: &str = "acct-rated";
const REQUESTER: &str = "rita@rated.example";
/// Where the shared clock starts (far from the nightly validation hour).
const START: &str = "2026-05-04T10:00:00Z";

/// Runs one sync of `kind` to success; returns it. The clock moves days at a time here, so the
/// daemon's own schedule (hourly, and the nightly validation) may start a run first: that one is
/// waited for, then the forced one runs.
async fn sync(client: &mut IntegrationServiceClient<Channel>, kind: pb::SyncKind) -> pb::SyncRun {
    let run_id = loop {
        match inproc::force(client, kind).await {
            Ok(response) => break response.run_id,
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                inproc::wait_for_status(client, "the scheduled run to finish", |status| {
                    status.current_run.is_none()
                })
                .await;
            }
            Err(status) => panic!("force {kind:?}: {status:?}"),
        }
    };
    let status = inproc::wait_for_status(client, &format!("run {run_id}"), |status| {
        status.current_run.is_none() && status.history.iter().any(|run| run.id == run_id)
    })
    .await;
    let run = status
        .history
        .into_iter()
        .find(|run| run.id == run_id)
        .expect("the run");
    assert_eq!(
        run.outcome,
        pb::RunOutcome::Succeeded as i32,
        "{}",
        run.error_message
    );
    run
}

/// The account's bad-rating events, oldest first: (occurred at, score, comment, backfill).
async fn bad_ratings(
    metrics: &mut MetricsServiceClient<Channel>,
) -> Vec<(DateTime<Utc>, String, String, bool)> {
    let page = metrics
        .list_timeline_events(with_token(
            pb::ListTimelineEventsRequest {
                scope: Some(pb::list_timeline_events_request::Scope::AccountId(
                    ACCOUNT.into(),
                )),
                kinds: vec![pb::TimelineEventKind::BadSatisfactionRating as i32],
                page_size: 50,
                ..Default::default()
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("list")
        .into_inner();
    let mut events: Vec<_> = page
        .events
        .iter()
        .map(|event| {
            let satisfaction = event.satisfaction.clone().expect("satisfaction");
            (
                instant(event.occurred_at.as_ref().expect("occurred_at")),
                satisfaction.score,
                satisfaction.comment,
                event.backfill,
            )
        })
        .collect();
    events.reverse();
    events
}

/// The account's (good, bad) ratings over its 7-day window ending now (the daemon's clock).
async fn ratings_in_window(metrics: &mut MetricsServiceClient<Channel>) -> (u64, u64) {
    let figures = metrics
        .get_account_metrics(with_token(
            pb::GetAccountMetricsRequest {
                account_id: ACCOUNT.into(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("metrics")
        .into_inner();
    assert_eq!(figures.timeframe_days, 7);
    (figures.good_ratings, figures.bad_ratings)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_score_given_after_a_sync_is_picked_up_counted_on_its_day_and_an_event_at_its_time() {
    let start = DateTime::parse_from_rfc3339(START)
        .expect("time")
        .with_timezone(&Utc);
    let clock = ManualClock::new(start);
    let shared: SharedClock = Arc::new(clock.clone());
    let sim = inproc::simulator(SimulatorConfig {
        clock: shared.clone(),
        ..sized(40, 3, 20)
    })
    .await;
    let control = sim.control();
    let http = SimControlClient::new(&sim);
    let (_, requester) =
        organization_with_requester(control, "Rated Org", ACCOUNT, "Rita Requester", REQUESTER);
    let ticket = new_ticket(control, "Invoice wrong", requester, Priority::Normal);
    clock.advance(TimeDelta::seconds(120));

    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&dir.path().join("data"), sim.base_url(), "", shared.clone()).await;
    upsert_accounts(
        &daemon,
        vec![pb::Account {
            id: ACCOUNT.into(),
            name: "Rated Inc".into(),
            ..Default::default()
        }],
    )
    .await;
    let mut client = daemon.integration().await;
    let mut request = inproc::configure_request();
    request.timeframe_days = 7;
    client
        .configure(with_token(request, ADMIN_TOKEN))
        .await
        .expect("configure");
    inproc::wait_for_successful_runs(&mut client, 1).await;
    let mut metrics = MetricsServiceClient::new(daemon.channel().await);

    // The survey is offered, and a sync lists the rating: offered, no score.
    let rating = http.offer_rating(ticket, None).await;
    clock.advance(TimeDelta::seconds(120));
    sync(&mut client, pb::SyncKind::Incremental).await;
    assert!(bad_ratings(&mut metrics).await.is_empty());

    // Five days later the requester answers bad; the rating list (by creation time) no longer
    // returns it, the ticket does.
    clock.advance(TimeDelta::days(5));
    let scored_at = clock.now();
    http.score_rating(rating, "bad", Some("Still wrong"), None)
        .await;
    clock.advance(TimeDelta::seconds(120));
    sync(&mut client, pb::SyncKind::Incremental).await;
    assert_eq!(
        bad_ratings(&mut metrics).await,
        [(scored_at, "bad".into(), "Still wrong".into(), false)]
    );
    assert_eq!(ratings_in_window(&mut metrics).await, (0, 1));

    // Six days on, the 7-day window still holds the day it was given (not the day it was offered,
    // eleven days back); two more days and it has left the window.
    clock.advance(TimeDelta::days(6));
    assert_eq!(ratings_in_window(&mut metrics).await, (0, 1));
    clock.advance(TimeDelta::days(2));
    assert_eq!(ratings_in_window(&mut metrics).await, (0, 0));

    // Re-scored good, then bad again: counted once, as the latest score, and a second event.
    http.score_rating(rating, "good", None, None).await;
    clock.advance(TimeDelta::seconds(120));
    sync(&mut client, pb::SyncKind::Incremental).await;
    assert_eq!(ratings_in_window(&mut metrics).await, (1, 0));
    clock.advance(TimeDelta::hours(1));
    let bad_again_at = clock.now();
    http.score_rating(rating, "bad", None, None).await;
    clock.advance(TimeDelta::seconds(120));
    sync(&mut client, pb::SyncKind::Incremental).await;
    assert_eq!(ratings_in_window(&mut metrics).await, (0, 1));
    let events = bad_ratings(&mut metrics).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1].0, bad_again_at);

    // A validation re-reads everything and records nothing new.
    let validation = sync(&mut client, pb::SyncKind::FullValidation).await;
    assert_eq!(validation.events, 0);
    assert_eq!(bad_ratings(&mut metrics).await.len(), 2);
    assert_eq!(ratings_in_window(&mut metrics).await, (0, 1));

    // Events are facts: the account deleted, its timeline stays readable by its id.
    AccountDirectoryServiceClient::new(daemon.channel().await)
        .delete_accounts(with_token(
            pb::DeleteAccountsRequest {
                ids: vec![ACCOUNT.into()],
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("delete the account");
    assert_eq!(bad_ratings(&mut metrics).await.len(), 2);
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}
