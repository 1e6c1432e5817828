//! The Zendesk client against the simulator over real HTTP: every stream, every credential kind,
//! every fault. Waits go through a recording sleeper, so no test sleeps for real.
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use zdsync::clock::ManualClock;
use zdsync::simulator::{
    self, Endpoint, FaultKind, FaultSpec, OrganizationInput, Priority, SimulatorConfig,
    SimulatorHandle, Status, TicketUpdate, UserInput,
};
use zdsync::zendesk::payload::{FieldChange, TicketPriority, TicketStatus};
use zdsync::zendesk::{
    begin_authorization, exchange_authorization_code, persist_tokens_with, ClientObserver,
    ClientSettings, Credentials, ExportPosition, ListPosition, OAuthClient, OAuthTokens,
    RecordingSleeper, Secret, TimePosition, WaitReason, ZendeskClient, ZendeskError,
};

fn start_of_test_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
        .map(|at| at.with_timezone(&Utc))
        .unwrap_or_default()
}

struct Harness {
    sim: SimulatorHandle,
    clock: ManualClock,
    sleeper: RecordingSleeper,
}

async fn harness(tweak: impl FnOnce(&mut SimulatorConfig)) -> Harness {
    let clock = ManualClock::new(start_of_test_time());
    let mut config = SimulatorConfig {
        tickets: 2_500,
        organizations: 50,
        users: 300,
        groups: 3,
        clock: Arc::new(clock.clone()),
        ..SimulatorConfig::default()
    };
    tweak(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sim = simulator::start(config, listener)
        .await
        .expect("simulator starts");
    Harness {
        sim,
        clock,
        sleeper: RecordingSleeper::new(),
    }
}

impl Harness {
    fn settings(&self, tweak: impl FnOnce(&mut ClientSettings)) -> ClientSettings {
        let mut settings = ClientSettings::for_base_url(self.sim.base_url()).expect("base url");
        settings.requests_per_minute = None;
        settings.other_requests_per_minute = None;
        settings.timeout = Duration::from_secs(10);
        tweak(&mut settings);
        settings
    }

    fn client_with(
        &self,
        credentials: Credentials,
        tweak: impl FnOnce(&mut ClientSettings),
    ) -> ZendeskClient {
        ZendeskClient::builder(self.settings(tweak), credentials)
            .sleeper(Arc::new(self.sleeper.clone()))
            .clock(Arc::new(self.clock.clone()))
            .build()
            .expect("client")
    }

    fn client(&self, tweak: impl FnOnce(&mut ClientSettings)) -> ZendeskClient {
        self.client_with(api_token(), tweak)
    }

    fn fault(&self, endpoint: Endpoint, kind: FaultKind, count: u32) {
        self.sim.control().inject_fault(FaultSpec {
            endpoint,
            kind,
            count,
        });
    }

    /// Moves the simulator (and the client's clock) forward, so later changes get later timestamps.
    fn advance(&self, seconds: i64) {
        self.clock.advance(chrono::Duration::seconds(seconds));
    }
}

/// A ticket the simulator lets us change (closed and deleted tickets are frozen).
fn changeable_ticket(sim: &SimulatorHandle) -> u64 {
    let control = sim.control();
    control
        .ticket_ids()
        .into_iter()
        .find(|id| {
            control
                .ticket_json(*id)
                .is_some_and(|t| t["status"] != "closed" && t["status"] != "deleted")
        })
        .expect("a changeable ticket")
}

fn api_token() -> Credentials {
    Credentials::ApiToken {
        email: simulator::DEFAULT_API_TOKEN_EMAIL.to_owned(),
        token: Secret::new(simulator::DEFAULT_API_TOKEN),
    }
}

fn oauth_client() -> OAuthClient {
    OAuthClient {
        client_id: simulator::DEFAULT_CLIENT_ID.to_owned(),
        client_secret: Secret::new(simulator::DEFAULT_CLIENT_SECRET),
    }
}

// ---------------------------------------------------------------- streams

#[tokio::test]
async fn ticket_export_pages_everything_with_side_loads() {
    let h = harness(|_| {}).await;
    let client = h.client(|_| {});
    let mut export = client.ticket_export(ExportPosition::StartTime(0));
    let mut ids = BTreeSet::new();
    let mut pages = Vec::new();
    while let Some(page) = export.next_page().await.expect("page") {
        let users: BTreeSet<u64> = page.side_loads.users.iter().map(|u| u.id).collect();
        let orgs: BTreeSet<u64> = page.side_loads.organizations.iter().map(|o| o.id).collect();
        let groups: BTreeSet<u64> = page.side_loads.groups.iter().map(|g| g.id).collect();
        let metric_tickets: BTreeSet<u64> = page
            .side_loads
            .metric_sets
            .iter()
            .map(|m| m.ticket_id)
            .collect();
        for ticket in &page.records {
            assert!(
                ticket.requester_id.is_none_or(|id| users.contains(&id)),
                "requester side-loaded"
            );
            assert!(
                ticket.organization_id.is_none_or(|id| orgs.contains(&id)),
                "organization side-loaded"
            );
            assert!(
                ticket.group_id.is_none_or(|id| groups.contains(&id)),
                "group side-loaded"
            );
            assert!(
                metric_tickets.contains(&ticket.id),
                "metric set side-loaded"
            );
            ids.insert(ticket.id);
        }
        pages.push((
            page.number,
            page.records.len(),
            page.end_of_stream,
            page.position.clone(),
        ));
    }
    assert_eq!(ids.len(), h.sim.control().stats().tickets);
    assert_eq!(
        pages.iter().map(|p| (p.0, p.1, p.2)).collect::<Vec<_>>(),
        vec![(1, 1000, false), (2, 1000, false), (3, 500, true)]
    );
    assert!(
        matches!(pages[2].3, ExportPosition::Cursor(_)),
        "the last page still carries a cursor"
    );
    assert_eq!(export.next_page().await.expect("after the end"), None);
    assert_eq!(
        h.sim.control().request_count(Endpoint::IncrementalTickets),
        3,
        "ceil(N/1000) requests"
    );
    assert_eq!(client.stats().requests, 3);
}

#[tokio::test]
async fn ticket_export_resumes_from_a_stored_cursor_and_returns_changed_tickets_again() {
    let h = harness(|c| c.tickets = 300).await;
    let client = h.client(|_| {});
    let mut export = client.ticket_export(ExportPosition::StartTime(0));
    let mut stored = None;
    let mut first_seen = HashMap::new();
    while let Some(page) = export.next_page().await.expect("page") {
        for ticket in page.records {
            first_seen.insert(ticket.id, ticket.generated_timestamp);
        }
        stored = Some(page.position);
    }
    let stored = stored.expect("a position");

    // Nothing changed: the stored cursor yields an empty last page echoing the cursor.
    let mut idle = client.ticket_export(stored.clone());
    let page = idle.next_page().await.expect("page").expect("one page");
    assert!(page.records.is_empty() && page.end_of_stream);
    assert_eq!(page.position, stored);

    h.advance(120);
    let control = h.sim.control();
    let changed = changeable_ticket(&h.sim);
    control
        .update_ticket(
            changed,
            TicketUpdate {
                priority: Some(Some(Priority::Urgent)),
                ..TicketUpdate::default()
            },
        )
        .expect("update");
    let created = control
        .create_ticket(simulator::NewTicket {
            subject: Some("new".into()),
            ..Default::default()
        })
        .expect("create");

    let mut resumed = client.ticket_export(stored);
    let mut seen = Vec::new();
    while let Some(page) = resumed.next_page().await.expect("page") {
        seen.extend(page.records);
    }
    let ids: BTreeSet<u64> = seen.iter().map(|t| t.id).collect();
    assert_eq!(ids, BTreeSet::from([changed, created]));
    let again = seen
        .iter()
        .find(|t| t.id == changed)
        .expect("changed ticket");
    assert_eq!(again.priority, Some(TicketPriority::Urgent));
    assert!(
        again.generated_timestamp > first_seen[&changed],
        "the duplicate is newer: upsert keeps it"
    );
}

#[tokio::test]
async fn user_export_pages_and_resumes() {
    let h = harness(|_| {}).await;
    let client = h.client(|s| s.export_page_size = 100);
    let mut export = client.user_export(ExportPosition::StartTime(0));
    let mut ids = BTreeSet::new();
    let mut pages = 0;
    let mut stored = None;
    while let Some(page) = export.next_page().await.expect("page") {
        pages += 1;
        ids.extend(page.records.iter().map(|u| u.id));
        stored = Some(page.position);
    }
    assert_eq!(ids.len(), h.sim.control().stats().users);
    assert_eq!(pages, h.sim.control().stats().users.div_ceil(100));
    assert!(ids.contains(&10_000_001), "the admin is exported");

    h.advance(120);
    let user_id = 10_000_050;
    h.sim
        .control()
        .update_user(
            user_id,
            UserInput {
                email: Some("moved@example.com".into()),
                ..UserInput::default()
            },
        )
        .expect("update user");
    let mut resumed = client.user_export(stored.expect("position"));
    let page = resumed.next_page().await.expect("page").expect("one page");
    assert_eq!(
        page.records
            .iter()
            .map(|u| (u.id, u.email.clone()))
            .collect::<Vec<_>>(),
        vec![(user_id, Some("moved@example.com".into()))]
    );
    assert!(page.end_of_stream);
}

#[tokio::test]
async fn organization_export_drops_repeats_of_the_boundary_second() {
    let h = harness(|_| {}).await;
    let client = h.client(|s| s.export_page_size = 20);
    let mut export = client.organization_export(TimePosition::from_start_time(0));
    let mut ids = Vec::new();
    let mut stored = None;
    while let Some(page) = export.next_page().await.expect("page") {
        ids.extend(page.records.iter().map(|o| o.id));
        stored = Some(page.position);
    }
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), h.sim.control().stats().organizations);
    let stored = stored.expect("position");
    assert!(
        !stored.boundary_ids.is_empty(),
        "the last second's records are remembered"
    );

    // Asking again from the stored position repeats the last second on the wire; the stream drops it.
    let mut again = client.organization_export(stored.clone());
    let page = again.next_page().await.expect("page").expect("one page");
    assert!(
        page.records.is_empty(),
        "repeats were returned: {:?}",
        page.records.iter().map(|o| o.id).collect::<Vec<_>>()
    );
    assert!(page.end_of_stream);

    h.advance(120);
    let org_id = 20_000_007;
    h.sim
        .control()
        .update_organization(
            org_id,
            OrganizationInput {
                external_id: Some(Some("ext-7".into())),
                ..Default::default()
            },
        )
        .expect("update org");
    // Time-based exports hold back the latest minute.
    h.advance(120);
    let mut resumed = client.organization_export(page.position);
    let page = resumed.next_page().await.expect("page").expect("one page");
    assert_eq!(
        page.records
            .iter()
            .map(|o| (o.id, o.external_id.clone()))
            .collect::<Vec<_>>(),
        vec![(org_id, Some("ext-7".into()))]
    );
}

#[tokio::test]
async fn ticket_event_export_yields_status_and_priority_changes_with_times() {
    let h = harness(|c| c.tickets = 200).await;
    let client = h.client(|s| s.export_page_size = 250);
    let mut export = client.ticket_event_export(TimePosition::from_start_time(0));
    let mut events = 0;
    let mut pages = 0;
    let mut stored = None;
    while let Some(page) = export.next_page().await.expect("page") {
        pages += 1;
        events += page.records.len();
        assert!(page.records.iter().all(|e| e.occurred_at.is_some()));
        stored = Some(page.position);
    }
    assert!(pages > 1, "paged");
    assert!(
        events >= 200,
        "at least one creating audit per ticket, got {events}"
    );

    h.advance(300);
    let ticket = changeable_ticket(&h.sim);
    let before = h.sim.control().ticket_json(ticket).expect("ticket");
    let new_status = if before["status"] == "solved" {
        Status::Open
    } else {
        Status::Solved
    };
    h.sim
        .control()
        .update_ticket(
            ticket,
            TicketUpdate {
                status: Some(new_status),
                priority: Some(Some(Priority::Urgent)),
                ..TicketUpdate::default()
            },
        )
        .expect("update");
    let changed_at = h.sim.control().now();
    // Time-based exports hold back the latest minute.
    h.advance(120);
    let mut resumed = client.ticket_event_export(stored.expect("position"));
    let page = resumed.next_page().await.expect("page").expect("one page");
    let event = page
        .records
        .iter()
        .find(|e| e.ticket_id == ticket)
        .expect("event for the ticket");
    assert_eq!(event.occurred_at, Some(changed_at));
    let expected_status = if new_status == Status::Open {
        TicketStatus::Open
    } else {
        TicketStatus::Solved
    };
    assert!(event
        .changes
        .iter()
        .any(|c| matches!(c, FieldChange::Status { to, .. } if *to == expected_status)));
    assert!(event.changes.iter().any(|c| matches!(
        c,
        FieldChange::Priority {
            to: Some(TicketPriority::Urgent),
            ..
        }
    )));
}

#[tokio::test]
async fn groups_and_satisfaction_ratings_page_through_lists() {
    let h = harness(|_| {}).await;
    let client = h.client(|s| s.list_page_size = 10);
    let mut groups = client.groups();
    let page = groups.next_page().await.expect("page").expect("one page");
    assert_eq!(page.records.len(), 3);
    assert!(page.end_of_stream && page.position == ListPosition::Finished);
    assert_eq!(groups.next_page().await.expect("after the end"), None);

    let total = h.sim.control().stats().satisfaction_ratings;
    assert!(total > 10, "enough ratings to page ({total})");
    let mut ratings = client.satisfaction_ratings(0);
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut middle = None;
    while let Some(page) = ratings.next_page().await.expect("page") {
        pages += 1;
        ids.extend(page.records.iter().map(|r| r.id));
        if pages == 1 {
            middle = Some(page.position.clone());
        }
    }
    assert_eq!(ids.len(), total);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        total,
        "no duplicates within one listing"
    );
    assert_eq!(pages, total.div_ceil(10));

    // Resuming mid-listing from a stored position continues after page 1.
    let mut resumed = client.satisfaction_ratings_from(0, middle.expect("position"));
    let page = resumed.next_page().await.expect("page").expect("page 2");
    assert_eq!(page.records.first().map(|r| r.id), ids.get(10).copied());

    // start_time filters on created_at.
    let cutoff = h.sim.control().now().timestamp() - 90 * 86_400;
    let mut recent = client.satisfaction_ratings(cutoff);
    let mut recent_count = 0;
    while let Some(page) = recent.next_page().await.expect("page") {
        assert!(page
            .records
            .iter()
            .all(|r| r.created_at.timestamp() >= cutoff));
        recent_count += page.records.len();
    }
    assert!(recent_count < total);
}

/// The engine runs streams inside spawned tasks, so their futures must be `Send`.
#[test]
fn stream_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let settings = ClientSettings::for_subdomain("acme").expect("settings");
    let client = ZendeskClient::builder(settings, api_token())
        .build()
        .expect("client");
    let mut tickets = client.ticket_export(ExportPosition::StartTime(0));
    assert_send(&tickets.next_page());
    let mut events = client.ticket_event_export(TimePosition::from_start_time(0));
    assert_send(&events.next_page());
    let mut ratings = client.satisfaction_ratings(0);
    assert_send(&ratings.next_page());
    assert_send(&client.verify());
}

// ---------------------------------------------------------------- credentials

#[tokio::test]
async fn api_token_verifies_as_admin_and_a_wrong_one_is_authentication() {
    let h = harness(|c| c.tickets = 10).await;
    let identity = h.client(|_| {}).verify().await.expect("verify");
    assert_eq!(identity.id, 10_000_001);
    assert_eq!(identity.email.as_deref(), Some("admin@example.com"));
    assert!(identity.is_admin && identity.role == "admin");

    let wrong = Credentials::ApiToken {
        email: "admin@example.com".into(),
        token: Secret::new("wrong-token-value"),
    };
    let err = h
        .client_with(wrong, |_| {})
        .verify()
        .await
        .expect_err("refused");
    match &err {
        ZendeskError::Authentication {
            status: 401,
            message,
        } => assert!(message.contains("Couldn't authenticate you")),
        other => panic!("expected Authentication, got {other:?}"),
    }
    assert!(err.is_auth_failure());
    assert!(!err.to_string().contains("wrong-token-value"));
}

#[tokio::test]
async fn client_credentials_mint_once_reuse_and_remint_on_401_and_expiry() {
    let h = harness(|c| {
        c.tickets = 10;
        c.access_token_ttl = Duration::from_secs(600);
    })
    .await;
    let client = h.client_with(Credentials::OAuthClient(oauth_client()), |_| {});
    client.verify().await.expect("verify");
    client.verify().await.expect("verify again");
    assert_eq!(
        h.sim.control().request_count(Endpoint::OauthTokens),
        1,
        "one mint, then reuse"
    );

    h.fault(Endpoint::UsersMe, FaultKind::Unauthorized, 1);
    client
        .verify()
        .await
        .expect("re-mint after 401 and succeed");
    assert_eq!(h.sim.control().request_count(Endpoint::OauthTokens), 2);

    h.fault(Endpoint::UsersMe, FaultKind::Unauthorized, 2);
    let err = client
        .verify()
        .await
        .expect_err("only one re-mint per request");
    assert!(
        matches!(err, ZendeskError::Authentication { status: 401, .. }),
        "{err:?}"
    );
    h.sim.control().clear_faults();

    let before = h.sim.control().request_count(Endpoint::UsersMe);
    h.advance(590);
    client.verify().await.expect("verify near expiry");
    assert_eq!(
        h.sim.control().request_count(Endpoint::OauthTokens),
        4,
        "re-minted before expiry"
    );
    assert_eq!(
        h.sim.control().request_count(Endpoint::UsersMe),
        before + 1,
        "without a 401 first"
    );

    let bad = OAuthClient {
        client_id: "zdsync-sim".into(),
        client_secret: Secret::new("not-the-secret-at-all"),
    };
    let err = h
        .client_with(Credentials::OAuthClient(bad), |_| {})
        .verify()
        .await
        .expect_err("bad client");
    match &err {
        ZendeskError::Authentication { message, .. } => {
            assert!(message.contains("invalid_client"), "{message}");
        }
        other => panic!("expected Authentication, got {other:?}"),
    }
    assert!(!err.to_string().contains("not-the-secret-at-all"));
}

/// Runs the authorization-code flow against the simulator and returns the token pair.
async fn authorization_code_tokens(h: &Harness) -> OAuthTokens {
    let settings = h.settings(|_| {});
    let redirect_uri = "https://zdsync.example/callback";
    let request = begin_authorization(&settings, simulator::DEFAULT_CLIENT_ID, redirect_uri)
        .expect("authorize url");
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let answer = no_redirects
        .get(request.url.clone())
        .send()
        .await
        .expect("authorize");
    assert_eq!(answer.status(), 302);
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("location");
    let location = reqwest::Url::parse(location).expect("location url");
    let query: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(query.get("state"), Some(&request.state));
    let code = query.get("code").expect("code");
    let wrong_verifier = Secret::new("a-verifier-that-does-not-match-the-challenge-at-all");
    let refused = exchange_authorization_code(
        settings.clone(),
        Arc::new(h.clock.clone()),
        &oauth_client(),
        code,
        redirect_uri,
        &wrong_verifier,
    )
    .await;
    assert!(
        matches!(refused, Err(ZendeskError::Authentication { .. })),
        "PKCE enforced: {refused:?}"
    );
    // A refused exchange may burn the code, so ask for a fresh one.
    let answer = no_redirects
        .get(request.url.clone())
        .send()
        .await
        .expect("authorize");
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("location");
    let location = reqwest::Url::parse(location).expect("location url");
    let query: HashMap<String, String> = location.query_pairs().into_owned().collect();
    exchange_authorization_code(
        settings,
        Arc::new(h.clock.clone()),
        &oauth_client(),
        &query["code"],
        redirect_uri,
        &request.code_verifier,
    )
    .await
    .expect("code exchange")
}

#[derive(Clone, Default)]
struct PersistLog {
    pairs: Arc<Mutex<Vec<(OAuthTokens, u64)>>>,
}

#[tokio::test]
async fn code_exchange_dates_the_expiry_by_the_given_clock() {
    let h = harness(|c| {
        c.tickets = 10;
        c.access_token_ttl = Duration::from_secs(600);
    })
    .await;
    // The harness clock stands still at a fixed date, so an expiry dated by the wall clock differs.
    let tokens = authorization_code_tokens(&h).await;
    assert_eq!(
        tokens.expires_at,
        Some(start_of_test_time() + chrono::TimeDelta::seconds(600))
    );
}

#[tokio::test]
async fn refresh_rotates_tokens_and_persists_them_before_use() {
    let h = harness(|c| c.tickets = 10).await;
    let tokens = authorization_code_tokens(&h).await;
    assert!(tokens.client.is_some() && tokens.expires_at.is_some());

    let log = PersistLog::default();
    let control = h.sim.control().clone();
    let recorder = log.clone();
    let persist = persist_tokens_with(move |pair: OAuthTokens| {
        let recorder = recorder.clone();
        let control = control.clone();
        async move {
            // Remember how many /users/me requests the simulator had seen when the pair was stored.
            let seen = control.request_count(Endpoint::UsersMe);
            recorder
                .pairs
                .lock()
                .map_err(|e| e.to_string())?
                .push((pair, seen));
            Ok(())
        }
    });
    let client =
        ZendeskClient::builder(h.settings(|_| {}), Credentials::OAuthTokens(tokens.clone()))
            .sleeper(Arc::new(h.sleeper.clone()))
            .clock(Arc::new(h.clock.clone()))
            .persist_tokens(persist)
            .build()
            .expect("client");
    client
        .verify()
        .await
        .expect("verify with the exchanged token");
    assert!(
        log.pairs.lock().expect("log").is_empty(),
        "no refresh while the token is good"
    );

    h.fault(Endpoint::UsersMe, FaultKind::Unauthorized, 1);
    client
        .verify()
        .await
        .expect("refresh after 401, then succeed");
    let pairs = log.pairs.lock().expect("log").clone();
    assert_eq!(pairs.len(), 1);
    let (rotated, seen_at_persist) = &pairs[0];
    assert_ne!(rotated.access_token, tokens.access_token);
    assert_ne!(rotated.refresh_token, tokens.refresh_token);
    assert_eq!(
        *seen_at_persist, 2,
        "persisted after the 401 and before the retry used the new token"
    );
    assert_eq!(h.sim.control().request_count(Endpoint::UsersMe), 3);

    // The old pair was revoked by the rotation: a client still holding it fails to refresh.
    let stale = ZendeskClient::builder(h.settings(|_| {}), Credentials::OAuthTokens(tokens))
        .sleeper(Arc::new(h.sleeper.clone()))
        .clock(Arc::new(h.clock.clone()))
        .persist_tokens(persist_tokens_with(|_| async { Ok(()) }))
        .build()
        .expect("client");
    let err = stale.verify().await.expect_err("stale tokens");
    match &err {
        ZendeskError::Authentication { message, .. } => {
            assert!(message.contains("invalid_grant"), "{message}");
        }
        other => panic!("expected Authentication, got {other:?}"),
    }

    // Near expiry the client refreshes before the request, without waiting for a 401.
    let before = h.sim.control().request_count(Endpoint::UsersMe);
    let expires_at = rotated.expires_at.expect("expiry");
    h.clock.set(expires_at - chrono::Duration::seconds(30));
    client.verify().await.expect("verify near expiry");
    assert_eq!(log.pairs.lock().expect("log").len(), 2);
    assert_eq!(h.sim.control().request_count(Endpoint::UsersMe), before + 1);
}

#[tokio::test]
async fn a_failed_persist_keeps_the_new_token_unused() {
    let h = harness(|c| c.tickets = 10).await;
    let tokens = authorization_code_tokens(&h).await;
    let client = ZendeskClient::builder(h.settings(|_| {}), Credentials::OAuthTokens(tokens))
        .sleeper(Arc::new(h.sleeper.clone()))
        .clock(Arc::new(h.clock.clone()))
        .persist_tokens(persist_tokens_with(|_| async {
            Err("disk full".to_owned())
        }))
        .build()
        .expect("client");
    h.fault(Endpoint::UsersMe, FaultKind::Unauthorized, 1);
    let err = client.verify().await.expect_err("persist failed");
    assert!(
        matches!(err, ZendeskError::TokenPersist(ref m) if m == "disk full"),
        "{err:?}"
    );
    assert_eq!(
        h.sim.control().request_count(Endpoint::UsersMe),
        1,
        "the unsaved token was never sent"
    );
}

#[tokio::test]
async fn oauth_tokens_without_a_persist_callback_are_refused() {
    let tokens = OAuthTokens {
        access_token: Secret::new("access"),
        refresh_token: Secret::new("refresh"),
        expires_at: None,
        client: None,
    };
    let settings = ClientSettings::for_subdomain("acme").expect("settings");
    let built = ZendeskClient::builder(settings, Credentials::OAuthTokens(tokens)).build();
    assert!(matches!(built, Err(ZendeskError::InvalidSettings(_))));
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn rate_limited_requests_wait_the_retry_after_they_were_told() {
    let h = harness(|c| c.tickets = 1_500).await;
    let client = h.client(|_| {});
    h.fault(
        Endpoint::IncrementalTickets,
        FaultKind::RateLimited {
            retry_after_secs: 7,
        },
        2,
    );
    let mut export = client.ticket_export(ExportPosition::StartTime(0));
    let mut tickets = 0;
    while let Some(page) = export.next_page().await.expect("page") {
        tickets += page.records.len();
    }
    assert_eq!(tickets, 1_500);
    assert_eq!(
        h.sleeper.waits(),
        vec![Duration::from_secs(7), Duration::from_secs(7)]
    );
    assert_eq!(client.stats().rate_limit_waits, 2);
    assert_eq!(
        h.sim.control().request_count(Endpoint::IncrementalTickets),
        4
    );
}

#[derive(Debug, Default)]
struct RecordingObserver {
    responses: Mutex<Vec<(String, Option<u16>)>>,
    waits: Mutex<Vec<(WaitReason, Duration)>>,
}

impl ClientObserver for RecordingObserver {
    fn on_response(&self, endpoint: &str, status: Option<u16>) {
        self.responses
            .lock()
            .expect("responses")
            .push((endpoint.to_owned(), status));
    }

    fn on_wait(&self, _endpoint: &str, reason: WaitReason, duration: Duration) {
        self.waits.lock().expect("waits").push((reason, duration));
    }
}

#[tokio::test]
async fn the_observer_sees_every_response_and_wait() {
    let h = harness(|c| c.tickets = 10).await;
    let observer = Arc::new(RecordingObserver::default());
    let client = ZendeskClient::builder(h.settings(|_| {}), api_token())
        .sleeper(Arc::new(h.sleeper.clone()))
        .clock(Arc::new(h.clock.clone()))
        .observer(observer.clone())
        .build()
        .expect("client");
    h.fault(
        Endpoint::Groups,
        FaultKind::RateLimited {
            retry_after_secs: 4,
        },
        1,
    );
    h.fault(Endpoint::Groups, FaultKind::ServerError, 1);
    client.groups().next_page().await.expect("page");
    let statuses: Vec<Option<u16>> = observer
        .responses
        .lock()
        .expect("responses")
        .iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(statuses, vec![Some(429), Some(500), Some(200)]);
    let waits = observer.waits.lock().expect("waits").clone();
    assert_eq!(waits.len(), 2);
    assert_eq!(waits[0], (WaitReason::RateLimited, Duration::from_secs(4)));
    assert_eq!(waits[1].0, WaitReason::Backoff);
    let stats = client.stats();
    assert_eq!(
        (stats.requests, stats.rate_limit_waits, stats.retries),
        (3, 1, 1)
    );
}

#[tokio::test]
async fn endless_rate_limiting_ends_in_a_rate_limited_error() {
    let h = harness(|c| c.tickets = 10).await;
    let client = h.client(|s| s.max_rate_limit_waits = 3);
    h.fault(
        Endpoint::IncrementalTickets,
        FaultKind::RateLimited {
            retry_after_secs: 2,
        },
        10,
    );
    let err = client
        .ticket_export(ExportPosition::StartTime(0))
        .next_page()
        .await
        .expect_err("gives up");
    assert!(
        matches!(err, ZendeskError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(2)),
        "{err:?}"
    );
    assert_eq!(h.sleeper.waits().len(), 3);
}

#[tokio::test]
async fn server_errors_are_retried_with_capped_backoff_then_succeed() {
    let h = harness(|c| c.tickets = 10).await;
    let client = h.client(|s| {
        s.backoff_base = Duration::from_millis(200);
        s.backoff_cap = Duration::from_millis(300);
    });
    h.fault(Endpoint::IncrementalTickets, FaultKind::ServerError, 3);
    let page = client
        .ticket_export(ExportPosition::StartTime(0))
        .next_page()
        .await
        .expect("page")
        .expect("page");
    assert_eq!(page.records.len(), 10);
    let waits = h.sleeper.waits();
    assert_eq!(waits.len(), 3);
    assert!(
        waits[0] <= Duration::from_millis(200)
            && waits.iter().all(|w| *w <= Duration::from_millis(300)),
        "{waits:?}"
    );
    assert_eq!(client.stats().retries, 3);
}

#[tokio::test]
async fn server_errors_beyond_the_attempts_are_a_server_error() {
    let h = harness(|c| c.tickets = 10).await;
    let client = h.client(|s| s.max_attempts = 2);
    h.fault(Endpoint::Groups, FaultKind::ServerError, 5);
    let err = client.groups().next_page().await.expect_err("fails");
    match err {
        ZendeskError::Server {
            status: 500,
            message,
            ..
        } => assert!(message.contains("Simulated server error")),
        other => panic!("expected Server, got {other:?}"),
    }
    assert_eq!(h.sim.control().request_count(Endpoint::Groups), 2);
}

#[tokio::test]
async fn a_stalled_request_times_out_and_is_retried() {
    let h = harness(|c| c.tickets = 10).await;
    let client = h.client(|s| {
        s.timeout = Duration::from_millis(300);
        s.max_attempts = 1;
    });
    h.fault(
        Endpoint::TicketEvents,
        FaultKind::Stall { stall_ms: 10_000 },
        1,
    );
    let err = client
        .ticket_event_export(TimePosition::from_start_time(0))
        .next_page()
        .await
        .expect_err("times out");
    assert!(
        matches!(err, ZendeskError::Timeout { ref endpoint } if endpoint.contains("ticket_events")),
        "{err:?}"
    );

    let patient = h.client(|s| {
        s.timeout = Duration::from_millis(300);
        s.max_attempts = 2;
    });
    h.fault(
        Endpoint::TicketEvents,
        FaultKind::Stall { stall_ms: 10_000 },
        1,
    );
    let page = patient
        .ticket_event_export(TimePosition::from_start_time(0))
        .next_page()
        .await
        .expect("retried");
    assert!(page.is_some());
    assert_eq!(patient.stats().retries, 1);
}

#[tokio::test]
async fn a_malformed_body_is_a_malformed_error_and_not_retried() {
    let h = harness(|c| c.tickets = 10).await;
    let client = h.client(|_| {});
    h.fault(
        Endpoint::IncrementalOrganizations,
        FaultKind::MalformedBody,
        1,
    );
    let mut export = client.organization_export(TimePosition::from_start_time(0));
    let err = export.next_page().await.expect_err("malformed");
    match &err {
        ZendeskError::Malformed { endpoint, .. } => {
            assert_eq!(endpoint, "/api/v2/incremental/organizations.json");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert_eq!(
        h.sim
            .control()
            .request_count(Endpoint::IncrementalOrganizations),
        1
    );
    assert_eq!(
        export.position(),
        &TimePosition::from_start_time(0),
        "a failed page moves nothing"
    );
    assert!(export
        .next_page()
        .await
        .expect("the same page again")
        .is_some());
}

#[tokio::test]
async fn unauthorized_and_forbidden_carry_zendesks_message() {
    let h = harness(|c| c.tickets = 10).await;
    let client = h.client(|_| {});
    h.fault(Endpoint::IncrementalUsers, FaultKind::Unauthorized, 1);
    // This test runs on one thread, so the client's own tasks log into this capture too.
    let logs: Arc<Mutex<Vec<u8>>> = Arc::default();
    let sink = logs.clone();
    let capture = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("zdsync=trace"))
        .with_ansi(false)
        .with_writer(move || CapturedLog(sink.clone()))
        .finish();
    let guard = tracing::subscriber::set_default(capture);
    let err = client
        .user_export(ExportPosition::StartTime(0))
        .next_page()
        .await
        .expect_err("401");
    drop(guard);
    let said = String::from_utf8_lossy(&logs.lock().expect("logs")).into_owned();
    assert!(said.contains("401"), "the capture works: {said}");
    assert!(
        !said.contains("renewing"),
        "an API token has no access token to renew: {said}"
    );
    assert!(
        matches!(err, ZendeskError::Authentication { status: 401, ref message } if message.contains("Couldn't authenticate you")),
        "{err:?}"
    );
    h.fault(Endpoint::TicketEvents, FaultKind::Forbidden, 1);
    let err = client
        .ticket_event_export(TimePosition::from_start_time(0))
        .next_page()
        .await
        .expect_err("403");
    assert!(
        matches!(err, ZendeskError::PermissionDenied { ref message } if message.contains("You do not have access")),
        "{err:?}"
    );
    assert!(err.is_auth_failure());
}

#[tokio::test]
async fn the_export_budget_spaces_requests() {
    let h = harness(|c| c.tickets = 2_500).await;
    let client = h.client(|s| s.requests_per_minute = Some(2));
    let started = std::time::Instant::now();
    let mut export = client.ticket_export(ExportPosition::StartTime(0));
    while export.next_page().await.expect("page").is_some() {}
    let took = started.elapsed();
    let waits = h.sleeper.waits();
    assert_eq!(
        waits.len(),
        1,
        "two requests fit the window, the third waits: {waits:?}"
    );
    // Two requests in any minute: the third waits until the first is a minute old (and 2 % more), less the real time
    // the first two took (a loaded machine takes a while).
    assert!(
        waits[0] >= Duration::from_millis(61_200).saturating_sub(took)
            && waits[0] <= Duration::from_millis(61_200),
        "{waits:?} after {took:?}"
    );
    assert_eq!(client.stats().budget_waits, 1);
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let h = harness(|c| c.tickets = 50).await;
    let client = h.client(|s| s.max_response_bytes = 4_096);
    let err = client
        .ticket_export(ExportPosition::StartTime(0))
        .next_page()
        .await
        .expect_err("too large");
    assert!(
        matches!(err, ZendeskError::TooLarge { limit: 4_096, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output() {
    let h = harness(|c| c.tickets = 10).await;
    let client = h.client_with(Credentials::OAuthClient(oauth_client()), |_| {});
    client.verify().await.expect("verify");
    let shown = format!("{client:?} {:?}", oauth_client());
    assert!(!shown.contains(simulator::DEFAULT_CLIENT_SECRET), "{shown}");
}

/// A log writer into a shared buffer.
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
