//! The simulator's credentials over real HTTP: API token, every OAuth grant, PKCE, refresh
//! rotation and token expiry.
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use zdsync::clock::ManualClock;
use zdsync::simulator::{self, SimulatorConfig, SimulatorHandle};

const ME: &str = "/api/v2/users/me.json";

async fn start(clock: &ManualClock) -> SimulatorHandle {
    let config = SimulatorConfig {
        tickets: 20,
        organizations: 5,
        users: 20,
        access_token_ttl: Duration::from_secs(3600),
        clock: Arc::new(clock.clone()),
        ..SimulatorConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    simulator::start(config, listener).await.unwrap()
}

fn clock() -> ManualClock {
    ManualClock::new(Utc.timestamp_opt(1_780_000_000, 0).unwrap())
}

async fn me_with_bearer(sim: &SimulatorHandle, token: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}{ME}", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn token_json(sim: &SimulatorHandle, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/tokens", sim.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Runs the authorize step; returns the code from the redirect.
async fn authorize(sim: &SimulatorHandle, challenge: &str, state: &str) -> String {
    let response = no_redirects()
        .get(format!("{}/oauth/authorizations/new", sim.base_url()))
        .query(&[
            ("response_type", "code"),
            ("client_id", "zdsync-sim"),
            ("redirect_uri", "http://127.0.0.1:9/callback"),
            ("scope", "read"),
            ("state", state),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let url = reqwest::Url::parse(&location).unwrap();
    assert_eq!(url.path(), "/callback");
    let pairs: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], state);
    pairs["code"].clone()
}

fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[tokio::test]
async fn api_token_basic_auth() {
    let clock = clock();
    let sim = start(&clock).await;
    let http = reqwest::Client::new();
    let url = format!("{}{ME}", sim.base_url());
    let ok = http
        .get(&url)
        .basic_auth("admin@example.com/token", Some("simulator-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["user"]["email"], json!("admin@example.com"));

    for (user, password) in [
        ("admin@example.com/token", "wrong-token"),
        ("other@example.com/token", "simulator-token"),
        ("admin@example.com", "simulator-token"),
    ] {
        let bad = http
            .get(&url)
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::UNAUTHORIZED, "{user}");
        let body: Value = bad.json().await.unwrap();
        assert_eq!(body, json!({"error": "Couldn't authenticate you"}));
    }
    let none = http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = me_with_bearer(&sim, "made-up").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"error": "Couldn't authenticate you"}));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn client_credentials_json_and_form_and_expiry() {
    let clock = clock();
    let sim = start(&clock).await;
    let (status, token) = token_json(
        &sim,
        json!({"grant_type": "client_credentials", "client_id": "zdsync-sim", "client_secret": "simulator-secret", "scope": "read"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(token["token_type"], json!("bearer"));
    assert_eq!(token["scope"], json!("read"));
    assert_eq!(token["expires_in"], json!(3600));
    assert!(token.get("refresh_token").is_none());
    let access = token["access_token"].as_str().unwrap().to_string();
    assert_eq!(me_with_bearer(&sim, &access).await.0, StatusCode::OK);

    let form = reqwest::Client::new()
        .post(format!("{}/oauth/tokens", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "zdsync-sim"),
            ("client_secret", "simulator-secret"),
            ("scope", "read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let form_token: Value = form.json().await.unwrap();
    assert_ne!(form_token["access_token"], token["access_token"]);

    let basic_client = reqwest::Client::new()
        .post(format!("{}/oauth/tokens", sim.base_url()))
        .basic_auth("zdsync-sim", Some("simulator-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(basic_client.status(), StatusCode::OK);

    let (status, body) = token_json(
        &sim,
        json!({"grant_type": "client_credentials", "client_id": "zdsync-sim", "client_secret": "nope"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], json!("invalid_client"));
    let (status, body) = token_json(&sim, json!({"grant_type": "password"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], json!("unsupported_grant_type"));

    clock.advance(chrono::Duration::seconds(3599));
    assert_eq!(me_with_bearer(&sim, &access).await.0, StatusCode::OK);
    clock.advance(chrono::Duration::seconds(1));
    let (status, body) = me_with_bearer(&sim, &access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"error": "Couldn't authenticate you"}));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn authorization_code_with_pkce_then_rotating_refresh() {
    let clock = clock();
    let sim = start(&clock).await;
    let verifier = "a-long-random-verifier-string-of-at-least-43-characters-000";
    let code = authorize(&sim, &challenge_of(verifier), "st&te 1").await;

    let exchange = json!({
        "grant_type": "authorization_code", "code": code, "client_id": "zdsync-sim",
        "client_secret": "simulator-secret", "redirect_uri": "http://127.0.0.1:9/callback",
        "code_verifier": verifier, "scope": "read",
    });
    let (status, pair) = token_json(&sim, exchange.clone()).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let access1 = pair["access_token"].as_str().unwrap().to_string();
    let refresh1 = pair["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(me_with_bearer(&sim, &access1).await.0, StatusCode::OK);

    // A code works once.
    let (status, body) = token_json(&sim, exchange).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], json!("invalid_grant"));

    // Refresh rotates both tokens; the old ones stop working.
    let refresh = |token: &str| json!({"grant_type": "refresh_token", "refresh_token": token, "client_id": "zdsync-sim", "client_secret": "simulator-secret"});
    let (status, pair2) = token_json(&sim, refresh(&refresh1)).await;
    assert_eq!(status, StatusCode::OK, "{pair2}");
    let access2 = pair2["access_token"].as_str().unwrap().to_string();
    let refresh2 = pair2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(access2, access1);
    assert_ne!(refresh2, refresh1);
    assert_eq!(me_with_bearer(&sim, &access2).await.0, StatusCode::OK);
    assert_eq!(
        me_with_bearer(&sim, &access1).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = token_json(&sim, refresh(&refresh1)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], json!("invalid_grant"));
    let (status, _) = token_json(&sim, refresh(&refresh2)).await;
    assert_eq!(status, StatusCode::OK);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn pkce_mismatch_and_redirect_mismatch_are_rejected() {
    let clock = clock();
    let sim = start(&clock).await;
    let code = authorize(
        &sim,
        &challenge_of("the-right-verifier-0123456789-0123456789-abc"),
        "s",
    )
    .await;
    let (status, body) = token_json(
        &sim,
        json!({"grant_type": "authorization_code", "code": code, "client_id": "zdsync-sim",
               "client_secret": "simulator-secret", "redirect_uri": "http://127.0.0.1:9/callback",
               "code_verifier": "the-wrong-verifier-0123456789-0123456789-abc"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], json!("invalid_grant"));

    let verifier = "another-verifier-0123456789-0123456789-0123";
    let code = authorize(&sim, &challenge_of(verifier), "s").await;
    let (status, body) = token_json(
        &sim,
        json!({"grant_type": "authorization_code", "code": code, "client_id": "zdsync-sim",
               "client_secret": "simulator-secret", "redirect_uri": "http://127.0.0.1:9/elsewhere",
               "code_verifier": verifier}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], json!("invalid_grant"));

    let wrong_client = no_redirects()
        .get(format!("{}/oauth/authorizations/new", sim.base_url()))
        .query(&[
            ("response_type", "code"),
            ("client_id", "someone-else"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_client.status(), StatusCode::BAD_REQUEST);
    sim.shutdown().await.unwrap();
}
