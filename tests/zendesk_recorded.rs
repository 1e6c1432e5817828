//! The client against small local servers replaying recorded Zendesk answers the simulator does
//! not produce: the recorded 429 (status, headers and body), a plain-text 429, the anonymous user,
//! an end-user identity and next-page links pointing elsewhere.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use zdsync::zendesk::{
    ClientSettings, Credentials, ExportPosition, RecordingSleeper, Secret, ZendeskClient,
    ZendeskError,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/zendesk");

fn fixture(relative: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{relative}")).expect("fixture")
}

/// Serves `router` on 127.0.0.1:0 and returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

fn client(base: &str, sleeper: &RecordingSleeper) -> ZendeskClient {
    let mut settings = ClientSettings::for_base_url(base).expect("settings");
    settings.requests_per_minute = None;
    settings.other_requests_per_minute = None;
    let credentials = Credentials::ApiToken {
        email: "admin@example.com".into(),
        token: Secret::new("recorded-token"),
    };
    ZendeskClient::builder(settings, credentials)
        .sleeper(Arc::new(sleeper.clone()))
        .build()
        .expect("client")
}

/// The recorded 429 of the incremental export, as status + headers + body.
fn recorded_429() -> Response {
    let meta: serde_json::Value = serde_json::from_slice(&fixture(
        "errors/429_api_rate_limit_exceeded.response_meta.json",
    ))
    .expect("meta");
    let mut headers = HeaderMap::new();
    for (name, values) in meta["headers"].as_object().expect("headers") {
        // Content-Length is recomputed for the body actually sent.
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("connection") {
            continue;
        }
        for value in values.as_array().expect("values") {
            let name = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).expect("name");
            headers.append(
                name,
                HeaderValue::from_str(value.as_str().expect("text")).expect("value"),
            );
        }
    }
    let status = StatusCode::from_u16(meta["status"]["code"].as_u64().expect("code") as u16)
        .expect("status");
    (
        status,
        headers,
        fixture("errors/429_api_rate_limit_exceeded.json"),
    )
        .into_response()
}

const EMPTY_LAST_PAGE: &str = r#"{"tickets": [], "after_cursor": "MTcwNzI3MTc0MS4wfHw0MDQ1fA==", "before_cursor": null, "end_of_stream": true}"#;

#[tokio::test]
async fn the_recorded_429_makes_the_client_wait_ten_seconds() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = Router::new().route(
        "/api/v2/incremental/tickets/cursor.json",
        get(move || {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    recorded_429()
                } else {
                    ([("content-type", "application/json")], EMPTY_LAST_PAGE).into_response()
                }
            }
        }),
    );
    let base = serve(router).await;
    let sleeper = RecordingSleeper::new();
    let client = client(&base, &sleeper);
    let page = client
        .ticket_export(ExportPosition::StartTime(0))
        .next_page()
        .await
        .expect("page")
        .expect("page");
    assert!(page.end_of_stream);
    assert_eq!(sleeper.waits(), vec![Duration::from_secs(10)]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(client.stats().rate_limit_waits, 1);
}

#[tokio::test]
async fn a_plain_text_429_is_waited_out_too() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = Router::new().route(
        "/api/v2/incremental/tickets/cursor.json",
        get(move || {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "3"), ("content-type", "text/html")],
                        "<html>Too Many Requests</html>",
                    )
                        .into_response()
                } else {
                    ([("content-type", "application/json")], EMPTY_LAST_PAGE).into_response()
                }
            }
        }),
    );
    let base = serve(router).await;
    let sleeper = RecordingSleeper::new();
    let page = client(&base, &sleeper)
        .ticket_export(ExportPosition::StartTime(0))
        .next_page()
        .await
        .expect("page");
    assert!(page.is_some());
    assert_eq!(sleeper.waits(), vec![Duration::from_secs(3)]);
}

fn users_me(body: &'static str) -> Router {
    Router::new().route(
        "/api/v2/users/me.json",
        get(move || async move { ([("content-type", "application/json")], body) }),
    )
}

#[tokio::test]
async fn the_anonymous_user_is_an_authentication_failure() {
    let base = serve(users_me(r#"{"user": {"id": null, "name": "Anonymous user", "email": "invalid@example.com", "role": "end-user"}}"#)).await;
    let err = client(&base, &RecordingSleeper::new())
        .verify()
        .await
        .expect_err("anonymous");
    assert!(
        matches!(err, ZendeskError::Authentication { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_end_user_is_permission_denied() {
    let base = serve(users_me(
        r#"{"user": {"id": 6130869168922, "name": "The Customer", "role": "end-user"}}"#,
    ))
    .await;
    let err = client(&base, &RecordingSleeper::new())
        .verify()
        .await
        .expect_err("end-user");
    assert!(
        matches!(err, ZendeskError::PermissionDenied { .. }),
        "{err:?}"
    );
    assert!(err.is_auth_failure());
}

#[tokio::test]
async fn the_recorded_admin_verifies() {
    let body: &'static str = Box::leak(
        String::from_utf8(fixture("users_me/zendesk_api_client_rb.json"))
            .expect("utf8")
            .into_boxed_str(),
    );
    let base = serve(users_me(body)).await;
    let identity = client(&base, &RecordingSleeper::new())
        .verify()
        .await
        .expect("verify");
    assert_eq!(
        (identity.id, identity.role.as_str(), identity.is_admin),
        (20_014_182, "admin", true)
    );
}

#[tokio::test]
async fn the_documented_agent_verifies_but_is_not_an_admin() {
    let body: &'static str = Box::leak(
        String::from_utf8(fixture("users_me/zendesk_oas_example.json"))
            .expect("utf8")
            .into_boxed_str(),
    );
    let base = serve(users_me(body)).await;
    let identity = client(&base, &RecordingSleeper::new())
        .verify()
        .await
        .expect("verify");
    assert_eq!(
        (identity.id, identity.role.as_str(), identity.is_admin),
        (35436, "agent", false)
    );
    assert_eq!(identity.email.as_deref(), Some("johnny@example.com"));
}

#[tokio::test]
async fn next_page_links_never_send_credentials_to_another_host() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let router = Router::new().route(
        "/api/v2/groups.json",
        get(move |axum::extract::RawQuery(query): axum::extract::RawQuery| {
            let log = log.clone();
            async move {
                log.lock().expect("log").push(query.clone().unwrap_or_default());
                let body = if query.as_deref().is_some_and(|q| q.contains("page=2")) {
                    r#"{"groups": [{"id": 2, "name": "B"}], "next_page": null, "count": 2}"#
                } else {
                    r#"{"groups": [{"id": 1, "name": "A"}], "next_page": "https://evil.example/api/v2/groups.json?page=2", "count": 2}"#
                };
                ([("content-type", "application/json")], body)
            }
        }),
    );
    let base = serve(router).await;
    let client = client(&base, &RecordingSleeper::new());
    let mut groups = client.groups();
    let mut names = Vec::new();
    while let Some(page) = groups.next_page().await.expect("page") {
        names.extend(page.records.into_iter().map(|g| g.name));
    }
    assert_eq!(names, vec!["A".to_owned(), "B".to_owned()]);
    let queries = seen.lock().expect("log").clone();
    assert_eq!(
        queries.len(),
        2,
        "the second page came from our own host: {queries:?}"
    );
}

#[tokio::test]
async fn a_next_page_link_to_another_endpoint_is_malformed() {
    let router = Router::new().route(
        "/api/v2/groups.json",
        get(|| async {
            (
                [("content-type", "application/json")],
                r#"{"groups": [], "next_page": "https://acme.zendesk.com/api/v2/users.json?page=2"}"#,
            )
        }),
    );
    let base = serve(router).await;
    let err = client(&base, &RecordingSleeper::new())
        .groups()
        .next_page()
        .await
        .expect_err("malformed");
    assert!(
        matches!(err, ZendeskError::Malformed { ref detail, .. } if detail.contains("another endpoint")),
        "{err:?}"
    );
}

/// CRC-32 (IEEE), bit by bit: only for building a gzip body in this test.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A gzip member holding `data` in stored (uncompressed) deflate blocks.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let chunks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (index, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(index + 1 == chunks.len()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

#[tokio::test]
async fn gzip_bodies_are_decoded_and_the_cap_applies_to_the_decoded_size() {
    let body = fixture("incremental_tickets_cursor/zenpy_start_time_0_single_page.json");
    let compressed = gzip_stored(&body);
    let router = Router::new().route(
        "/api/v2/incremental/tickets/cursor.json",
        get(move |headers: HeaderMap| {
            let compressed = compressed.clone();
            async move {
                let accepts_gzip = headers
                    .get("accept-encoding")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("gzip"));
                assert!(accepts_gzip, "the client asks for gzip");
                (
                    [
                        ("content-type", "application/json"),
                        ("content-encoding", "gzip"),
                    ],
                    compressed,
                )
            }
        }),
    );
    let base = serve(router).await;
    let page = client(&base, &RecordingSleeper::new())
        .ticket_export(ExportPosition::StartTime(0))
        .next_page()
        .await
        .expect("page")
        .expect("page");
    assert_eq!(page.records.len(), 87);

    let mut settings = ClientSettings::for_base_url(&base).expect("settings");
    settings.max_response_bytes = body.len() as u64 - 1;
    let credentials = Credentials::ApiToken {
        email: "a@example.com".into(),
        token: Secret::new("t"),
    };
    let capped = ZendeskClient::builder(settings, credentials)
        .build()
        .expect("client");
    let err = capped
        .ticket_export(ExportPosition::StartTime(0))
        .next_page()
        .await
        .expect_err("cap");
    assert!(matches!(err, ZendeskError::TooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn cursor_meta_without_links_pages_by_after_cursor_under_a_base_path() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let ratings = Router::new().route(
        "/api/v2/satisfaction_ratings.json",
        get(move |axum::extract::RawQuery(query): axum::extract::RawQuery| {
            let log = log.clone();
            async move {
                let query = query.unwrap_or_default();
                log.lock().expect("log").push(query.clone());
                let rating = |id: u64| {
                    format!(
                        r#"{{"id": {id}, "ticket_id": 1, "score": "bad", "comment": "slow",
                        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}}"#
                    )
                };
                let body = if query.contains("page%5Bafter%5D=c1") || query.contains("page[after]=c1") {
                    format!(
                        r#"{{"satisfaction_ratings": [{}], "meta": {{"has_more": false, "after_cursor": null}}, "links": {{"next": null}}}}"#,
                        rating(2)
                    )
                } else {
                    format!(
                        r#"{{"satisfaction_ratings": [{}], "meta": {{"has_more": true, "after_cursor": "c1"}}, "links": {{"next": null}}}}"#,
                        rating(1)
                    )
                };
                ([("content-type", "application/json")], body)
            }
        }),
    );
    let base = serve(Router::new().nest("/zendesk", ratings)).await;
    let client = client(&format!("{base}/zendesk"), &RecordingSleeper::new());
    let mut list = client.satisfaction_ratings(1_700_000_000);
    let mut ids = Vec::new();
    while let Some(page) = list.next_page().await.expect("page") {
        assert!(page.records.iter().all(|r| r.score.is_bad()));
        ids.extend(page.records.iter().map(|r| r.id));
    }
    assert_eq!(ids, vec![1, 2]);
    let queries = seen.lock().expect("log").clone();
    assert_eq!(queries.len(), 2);
    assert!(
        queries.iter().all(|q| q.contains("start_time=1700000000")),
        "filters kept: {queries:?}"
    );
}
