//! OAuth and credential changes through the daemon: authorization-code flow, refresh rotation, ChangeLogin.
mod common;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::inproc::{self, force, sized, status, wait_for_successful_runs, Harness, ADMIN_TOKEN};
use common::with_token;
use tonic::Code;
use zdsync::clock::{ManualClock, SharedClock};
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::integration_service_client::IntegrationServiceClient;
use zdsync::simulator::{self, Endpoint, SimulatorConfig};
use zdsync::store::credentials::{CredentialsRecord as Credentials, OAuthTokensRecord};

const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

type IntegrationClient = IntegrationServiceClient<tonic::transport::Channel>;

fn stored_tokens(data_dir: &std::path::Path) -> OAuthTokensRecord {
    match zdsync::store::credentials::load(data_dir)
        .expect("read credentials")
        .expect("credentials file")
    {
        Credentials::OAuthTokens(tokens) => tokens,
        other => panic!("expected OAuth tokens, found {:?}", other.kind_name()),
    }
}

fn api_token_login(token: &str) -> pb::ChangeLoginRequest {
    pb::ChangeLoginRequest {
        credentials: Some(pb::change_login_request::Credentials::ApiToken(
            pb::ApiTokenCredentials {
                email: simulator::DEFAULT_API_TOKEN_EMAIL.into(),
                token: token.into(),
            },
        )),
    }
}

/// `BeginOAuth` with the simulator's OAuth client and settings for a new integration.
async fn begin_oauth(client: &mut IntegrationClient) -> pb::BeginOAuthResponse {
    client
        .begin_o_auth(with_token(
            pb::BeginOAuthRequest {
                client_id: simulator::DEFAULT_CLIENT_ID.into(),
                client_secret: simulator::DEFAULT_CLIENT_SECRET.into(),
                redirect_uri: REDIRECT_URI.into(),
                subdomain: "acme".into(),
                match_key: inproc::configure_request().match_key,
                timeframe_days: 30,
                include_satisfaction: true,
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("begin oauth")
        .into_inner()
}

/// Plays the browser: follows the authorize URL and returns the `code` and `state` it redirects with.
async fn approve(begun: &pb::BeginOAuthResponse) -> (String, String) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    let approved = browser
        .get(&begun.authorize_url)
        .send()
        .await
        .expect("authorize");
    assert_eq!(approved.status(), reqwest::StatusCode::FOUND);
    let location = approved
        .headers()
        .get(reqwest::header::LOCATION)
        .expect("Location")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    let location = reqwest::Url::parse(&location).expect("redirect url");
    let query = |name: &str| {
        location
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
            .unwrap_or_else(|| panic!("{name} in {location}"))
    };
    let (code, state) = (query("code"), query("state"));
    assert_eq!(state, begun.state);
    (code, state)
}

/// A simulator of `size` whose access tokens live ten minutes, and a daemon, both on `clock`.
async fn start_on(clock: ManualClock, size: SimulatorConfig) -> Harness {
    let shared: SharedClock = std::sync::Arc::new(clock);
    let config = SimulatorConfig {
        access_token_ttl: Duration::from_secs(600),
        clock: shared.clone(),
        ..size
    };
    Harness::start_with(config, "", shared).await
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_code_flow_configures_refreshes_with_rotation_and_change_login_verifies_first() {
    let start = chrono::DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now");
    let clock = ManualClock::new(start);
    let (sim, dir, daemon, mut client) = start_on(clock.clone(), sized(500, 20, 100))
        .await
        .into_parts();
    let data = dir.path().join("data");

    let begun = begin_oauth(&mut client).await;
    assert!(begun.authorize_url.starts_with(sim.base_url()));
    let (code, state) = approve(&begun).await;

    let completed = client
        .complete_o_auth(with_token(
            pb::CompleteOAuthRequest {
                code: code.clone(),
                state: state.clone(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("complete oauth")
        .into_inner();
    assert!(completed.configured);
    assert_eq!(completed.run_id, "run-1");
    let reused = client
        .complete_o_auth(with_token(
            pb::CompleteOAuthRequest { code, state },
            ADMIN_TOKEN,
        ))
        .await
        .expect_err("a state is single use");
    assert_eq!(reused.code(), Code::InvalidArgument);
    assert!(
        reused.message().starts_with("state"),
        "{}",
        reused.message()
    );

    let first = wait_for_successful_runs(&mut client, 1).await;
    assert_eq!(
        first.stored.expect("stored").tickets,
        sim.control().stats().tickets as u64
    );
    let integration = client
        .get_integration(with_token(pb::GetIntegrationRequest {}, ADMIN_TOKEN))
        .await
        .expect("get integration")
        .into_inner();
    let masked = integration.credentials.expect("credentials");
    assert_eq!(masked.kind, pb::CredentialKind::Oauth as i32);
    let tokens = stored_tokens(&data);
    let (access, refresh) = (
        tokens.access_token.expose().to_owned(),
        tokens.refresh_token.expose().to_owned(),
    );
    assert!(!masked.access_token_masked.is_empty() && !masked.refresh_token_masked.is_empty());
    assert!(masked.access_token_masked.chars().count() <= 9);
    assert!(masked.refresh_token_masked.chars().count() <= 9);
    assert!(!masked.access_token_masked.contains(&access));
    assert!(!masked.refresh_token_masked.contains(&refresh));
    assert!(!masked
        .client_secret_masked
        .contains(simulator::DEFAULT_CLIENT_SECRET));

    // The access token expires: the next run refreshes, and Zendesk rotates both tokens.
    let token_requests = sim.control().request_count(Endpoint::OauthTokens);
    clock.advance(TimeDelta::minutes(15));
    let forced = force(&mut client, pb::SyncKind::Incremental)
        .await
        .expect("force after expiry");
    assert_eq!(forced.run_id, "run-2");
    let refreshed = wait_for_successful_runs(&mut client, 2).await;
    assert_eq!(refreshed.history[0].id, "run-2");
    assert!(sim.control().request_count(Endpoint::OauthTokens) > token_requests);
    let rotated = stored_tokens(&data);
    assert_ne!(
        rotated.refresh_token.expose(),
        refresh,
        "the rotated refresh token is stored"
    );
    assert_ne!(rotated.access_token.expose(), access);

    // A legacy API token is accepted with a warning naming the switch-off date.
    let changed = client
        .change_login(with_token(
            api_token_login(simulator::DEFAULT_API_TOKEN),
            ADMIN_TOKEN,
        ))
        .await
        .expect("change login to an API token")
        .into_inner();
    let masked = changed
        .integration
        .expect("integration")
        .credentials
        .expect("credentials");
    assert_eq!(masked.kind, pb::CredentialKind::ApiToken as i32);
    assert!(!masked.token_masked.contains(simulator::DEFAULT_API_TOKEN));
    let warned = status(&mut client).await;
    assert!(
        warned.warnings.iter().any(|w| w.contains("2027-04-30")),
        "{:?}",
        warned.warnings
    );

    let refused = client
        .change_login(with_token(api_token_login("wrong-token"), ADMIN_TOKEN))
        .await
        .expect_err("Zendesk refuses a wrong token");
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(!refused.message().contains("wrong-token"));
    let forced = force(&mut client, pb::SyncKind::Incremental)
        .await
        .expect("the old credentials still work");
    assert_eq!(forced.run_id, "run-3");
    let after = wait_for_successful_runs(&mut client, 3).await;
    assert_eq!(after.history[0].id, "run-3");
    assert_eq!(after.history[0].outcome, pb::RunOutcome::Succeeded as i32);
    assert_eq!(after.state, pb::SyncState::Idle as i32);
    assert!(matches!(
        zdsync::store::credentials::load(&data).expect("read"),
        Some(Credentials::ApiToken { .. })
    ));

    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn complete_oauth_dates_the_token_expiry_by_the_daemon_clock() {
    // Years before the wall clock: an expiry dated by the system clock would be years off.
    let start = chrono::DateTime::parse_from_rfc3339("2021-03-04T05:06:07Z")
        .expect("start")
        .with_timezone(&Utc);
    let clock = ManualClock::new(start);
    let (sim, dir, daemon, mut client) = start_on(clock, sized(20, 3, 10)).await.into_parts();
    let data = dir.path().join("data");

    let begun = begin_oauth(&mut client).await;
    let (code, state) = approve(&begun).await;
    let completed = client
        .complete_o_auth(with_token(
            pb::CompleteOAuthRequest { code, state },
            ADMIN_TOKEN,
        ))
        .await
        .expect("complete oauth")
        .into_inner();

    let expected = start + TimeDelta::seconds(600);
    let shown = completed
        .integration
        .and_then(|integration| integration.credentials)
        .and_then(|credentials| credentials.access_token_expires_at)
        .expect("access_token_expires_at");
    assert_eq!(inproc::instant(&shown), expected);
    assert_eq!(stored_tokens(&data).expires_at, Some(expected));
    wait_for_successful_runs(&mut client, 1).await;

    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}
