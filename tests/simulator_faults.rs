//! Fault injection, request counters and the rate limit, over real HTTP.
mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::http::json_of;
use reqwest::StatusCode;
use serde_json::{json, Value};
use zdsync::clock::ManualClock;
use zdsync::simulator::{self, Endpoint, FaultKind, FaultSpec, SimulatorConfig, SimulatorHandle};

/// 10 s into a clock minute, so the rate-limit window has 50 s left.
const NOW: i64 = 1_779_999_970;

async fn start(clock: &ManualClock, rate_limit: Option<u32>) -> SimulatorHandle {
    let config = SimulatorConfig {
        tickets: 30,
        organizations: 5,
        users: 20,
        rate_limit_per_minute: rate_limit,
        clock: Arc::new(clock.clone()),
        ..SimulatorConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    simulator::start(config, listener).await.unwrap()
}

fn clock() -> ManualClock {
    ManualClock::new(Utc.timestamp_opt(NOW, 0).unwrap())
}

fn tickets_url(sim: &SimulatorHandle) -> String {
    format!(
        "{}/api/v2/incremental/tickets/cursor.json?start_time=0",
        sim.base_url()
    )
}

async fn call(client: &reqwest::Client, url: &str) -> reqwest::Result<reqwest::Response> {
    client
        .get(url)
        .basic_auth("admin@example.com/token", Some("simulator-token"))
        .send()
        .await
}

#[tokio::test]
async fn each_fault_kind_fires_exactly_count_times() {
    let clock = clock();
    let sim = start(&clock, None).await;
    let http = reqwest::Client::new();
    let url = tickets_url(&sim);
    let cases: [(FaultKind, StatusCode); 5] = [
        (
            FaultKind::RateLimited {
                retry_after_secs: 7,
            },
            StatusCode::TOO_MANY_REQUESTS,
        ),
        (FaultKind::ServerError, StatusCode::INTERNAL_SERVER_ERROR),
        (FaultKind::Unauthorized, StatusCode::UNAUTHORIZED),
        (FaultKind::Forbidden, StatusCode::FORBIDDEN),
        (FaultKind::MalformedBody, StatusCode::OK),
    ];
    for (kind, expected) in cases {
        sim.control().inject_fault(FaultSpec {
            endpoint: Endpoint::IncrementalTickets,
            kind,
            count: 2,
        });
        for attempt in 0..2 {
            let response = call(&http, &url).await.unwrap();
            assert_eq!(response.status(), expected, "{kind:?} attempt {attempt}");
            if let FaultKind::RateLimited { .. } = kind {
                assert_eq!(response.headers()["retry-after"], "7");
            }
            let text = response.text().await.unwrap();
            let parsed = serde_json::from_str::<Value>(&text);
            match kind {
                FaultKind::MalformedBody => assert!(parsed.is_err(), "{text}"),
                FaultKind::Unauthorized => {
                    assert_eq!(
                        parsed.unwrap(),
                        json!({"error": "Couldn't authenticate you"})
                    );
                }
                _ => assert!(parsed.unwrap()["error"].is_string()),
            }
        }
        let response = call(&http, &url).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{kind:?} after its count"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["tickets"].as_array().unwrap().len(), 30);
    }
    // Faults only hit their endpoint.
    sim.control().inject_fault(FaultSpec {
        endpoint: Endpoint::Groups,
        kind: FaultKind::ServerError,
        count: 1,
    });
    assert_eq!(call(&http, &url).await.unwrap().status(), StatusCode::OK);
    assert_eq!(sim.control().pending_faults().len(), 1);
    sim.control().clear_faults();
    let groups = call(&http, &format!("{}/api/v2/groups.json", sim.base_url()))
        .await
        .unwrap();
    assert_eq!(groups.status(), StatusCode::OK);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stall_outlasts_the_client_timeout_then_stops() {
    let clock = clock();
    let sim = start(&clock, None).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let url = tickets_url(&sim);
    let http = reqwest::Client::new();
    let injected = http
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!({"endpoint": "incremental_tickets", "kind": "stall", "count": 2, "stall_ms": 30000}))
        .send()
        .await
        .unwrap();
    assert_eq!(injected.status(), StatusCode::CREATED);
    for _ in 0..2 {
        let error = call(&impatient, &url).await.unwrap_err();
        assert!(error.is_timeout(), "{error}");
    }
    assert_eq!(
        call(&impatient, &url).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(sim.control().request_count(Endpoint::IncrementalTickets), 3);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn counters_count_and_reset() {
    let clock = clock();
    let sim = start(&clock, None).await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        call(&http, &tickets_url(&sim)).await.unwrap();
    }
    // Refused requests count too.
    http.get(format!("{}/api/v2/groups.json", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(sim.control().request_count(Endpoint::IncrementalTickets), 3);
    assert_eq!(sim.control().request_count(Endpoint::Groups), 1);
    assert_eq!(sim.control().request_count(Endpoint::TicketEvents), 0);

    let counters: Value = json_of(http.get(format!("{}/_sim/counters", sim.base_url()))).await;
    assert_eq!(counters["incremental_tickets"], json!(3));
    assert_eq!(counters["groups"], json!(1));
    assert_eq!(counters["oauth_tokens"], json!(0));

    let reset = http
        .delete(format!("{}/_sim/counters", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert!(sim.control().counters().values().all(|c| *c == 0));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_until_the_minute_turns() {
    let clock = clock();
    let sim = start(&clock, Some(3)).await;
    let http = reqwest::Client::new();
    let url = tickets_url(&sim);
    for remaining in [2, 1, 0] {
        let response = call(&http, &url).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-rate-limit"], "3");
        assert_eq!(
            response.headers()["x-rate-limit-remaining"],
            remaining.to_string().as_str()
        );
        // Seconds to the window's reset, 50 s into a clock minute's 60.
        assert_eq!(response.headers()["ratelimit-reset"], "50");
    }
    let limited = call(&http, &url).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "50");
    assert_eq!(limited.headers()["ratelimit-reset"], "50");
    assert_eq!(limited.headers()["x-rate-limit-remaining"], "0");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"], json!("APIRateLimitExceeded"));
    // OAuth is not limited.
    let token = http
        .post(format!("{}/oauth/tokens", sim.base_url()))
        .json(&json!({"grant_type": "client_credentials", "client_id": "zdsync-sim", "client_secret": "simulator-secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::OK);
    clock.advance(chrono::Duration::seconds(50));
    assert_eq!(call(&http, &url).await.unwrap().status(), StatusCode::OK);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_routes_are_zendesk_404s() {
    let clock = clock();
    let sim = start(&clock, None).await;
    let http = reqwest::Client::new();
    let response = call(&http, &format!("{}/api/v2/nothing.json", sim.base_url()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "RecordNotFound", "description": "Not found"})
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_exports_have_a_limit_of_their_own_and_lists_do_not_count_against_it() {
    let clock = clock();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = simulator::start(
        SimulatorConfig {
            tickets: 30,
            organizations: 5,
            users: 20,
            export_rate_limit: Some(2),
            clock: Arc::new(clock.clone()),
            ..SimulatorConfig::default()
        },
        listener,
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let url = tickets_url(&sim);
    let groups = format!("{}/api/v2/groups.json", sim.base_url());
    for _ in 0..2 {
        assert_eq!(call(&http, &url).await.unwrap().status(), StatusCode::OK);
        assert_eq!(call(&http, &groups).await.unwrap().status(), StatusCode::OK);
    }
    let limited = call(&http, &url).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "50");
    assert_eq!(call(&http, &groups).await.unwrap().status(), StatusCode::OK);
    clock.advance(chrono::Duration::seconds(50));
    let next_window = call(&http, &url).await.unwrap().status();
    assert_eq!(
        next_window,
        StatusCode::OK,
        "the next window opens the exports"
    );
    let usage = sim.control().export_rate_limit_usage();
    sim.shutdown().await.unwrap();
    assert_eq!(usage.map(|u| u.refused), Some(1), "one export refused");
}

#[tokio::test]
async fn a_held_request_answers_once_the_faults_are_cleared() {
    let clock = clock();
    let sim = start(&clock, None).await;
    sim.control().inject_fault(FaultSpec {
        endpoint: Endpoint::IncrementalTickets,
        kind: FaultKind::Hold,
        count: 1,
    });
    let http = reqwest::Client::new();
    let url = tickets_url(&sim);
    let held = tokio::spawn({
        let http = http.clone();
        let url = url.clone();
        async move { call(&http, &url).await.unwrap().status() }
    });
    common::eventually("the request to arrive", || async {
        (sim.control().request_count(Endpoint::IncrementalTickets) == 1).then_some(())
    })
    .await;
    // Other requests, this endpoint's too, go by while it is held.
    assert_eq!(call(&http, &url).await.unwrap().status(), StatusCode::OK);
    assert!(!held.is_finished(), "still held");
    sim.control().clear_faults();
    assert_eq!(held.await.unwrap(), StatusCode::OK);
    sim.shutdown().await.unwrap();
}
