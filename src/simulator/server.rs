//! The router, the per-request admission (counter, fault, rate limit, auth), and Zendesk's
//! error bodies.
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::endpoint::Endpoint;
use super::faults::{FaultKind, RateDecision};
use super::state::Shared;
use super::{api, auth, control_routes};

/// All routes of the simulator.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let control = control_routes::routes().layer(middleware::from_fn(loopback_only));
    Router::new()
        .route("/api/v2/users/me.json", get(api::users_me))
        .route("/api/v2/users/me", get(api::users_me))
        .route(
            "/api/v2/incremental/tickets/cursor.json",
            get(api::incremental_tickets),
        )
        .route(
            "/api/v2/incremental/users/cursor.json",
            get(api::incremental_users),
        )
        .route(
            "/api/v2/incremental/organizations.json",
            get(api::incremental_organizations),
        )
        .route(
            "/api/v2/incremental/ticket_events.json",
            get(api::ticket_events),
        )
        .route("/api/v2/groups.json", get(api::groups))
        .route("/api/v2/groups", get(api::groups))
        .route(
            "/api/v2/satisfaction_ratings.json",
            get(api::satisfaction_ratings),
        )
        .route(
            "/api/v2/satisfaction_ratings",
            get(api::satisfaction_ratings),
        )
        .route("/oauth/tokens", post(auth::tokens))
        .route("/oauth/authorizations/new", get(auth::authorize))
        .merge(control)
        .fallback(not_found)
        .with_state(shared)
}

async fn not_found() -> Response {
    zendesk_error(StatusCode::NOT_FOUND, "RecordNotFound", "Not found")
}

/// Whether a peer may use the control API.
pub(crate) fn is_local_peer(peer: SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

async fn loopback_only(request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    match peer {
        Some(peer) if is_local_peer(peer) => next.run(request).await,
        _ => zendesk_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "The control API only answers loopback clients.",
        ),
    }
}

/// A JSON response with Zendesk's content type.
pub(crate) fn json_body(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// `{"error": code, "description": text}` with `status`.
pub(crate) fn zendesk_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "description": description });
    json_body(status, body.to_string().into_bytes())
}

/// `{"error": code, "error_description": text}`, the OAuth error shape.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description });
    json_body(status, body.to_string().into_bytes())
}

/// 401 exactly as Zendesk words it.
pub(crate) fn unauthorized() -> Response {
    json_body(
        StatusCode::UNAUTHORIZED,
        br#"{"error":"Couldn't authenticate you"}"#.to_vec(),
    )
}

fn forbidden() -> Response {
    zendesk_error(
        StatusCode::FORBIDDEN,
        "Forbidden",
        "You do not have access to this page. Please contact the account owner of this help desk for further help.",
    )
}

fn too_many_requests(retry_after_secs: u32) -> Response {
    let mut response = zendesk_error(
        StatusCode::TOO_MANY_REQUESTS,
        "APIRateLimitExceeded",
        "Number of allowed API requests per minute exceeded",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

/// A request that passed admission; adds the rate-limit headers to its response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admission {
    rate: Option<(u32, u32)>,
}

impl Admission {
    /// Adds `X-Rate-Limit` / `X-Rate-Limit-Remaining` when a limit is configured.
    pub(crate) fn finish(self, mut response: Response) -> Response {
        if let Some((limit, remaining)) = self.rate {
            let headers = response.headers_mut();
            headers.insert("x-rate-limit", HeaderValue::from(limit));
            headers.insert("x-rate-limit-remaining", HeaderValue::from(remaining));
        }
        response
    }
}

/// Counts the request, then applies a pending fault, the rate limit and (for `/api/v2`)
/// authentication, in that order.
pub(crate) async fn admit(
    shared: &Shared,
    endpoint: Endpoint,
    headers: &HeaderMap,
    needs_auth: bool,
) -> Result<Admission, Response> {
    shared.counters.hit(endpoint);
    let fault = shared.faults().take(endpoint);
    if let Some(fault) = fault {
        tracing::debug!(endpoint = endpoint.as_str(), ?fault, "injecting fault");
        match fault {
            FaultKind::RateLimited { retry_after_secs } => {
                return Err(too_many_requests(retry_after_secs))
            }
            FaultKind::ServerError => {
                return Err(zendesk_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "Simulated server error",
                ))
            }
            FaultKind::Stall { stall_ms } => {
                let mut stopping = shared.stopping.subscribe();
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(stall_ms)) => {}
                    _ = stopping.wait_for(|stop| *stop) => {
                        return Err(zendesk_error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "Simulator shutting down"));
                    }
                }
            }
            FaultKind::MalformedBody => {
                return Err(json_body(
                    StatusCode::OK,
                    br#"{"tickets":[{"id":1,"url":"http://trunc"#.to_vec(),
                ))
            }
            FaultKind::Unauthorized => return Err(unauthorized()),
            FaultKind::Forbidden => return Err(forbidden()),
        }
    }
    let mut rate = None;
    if endpoint.is_api() {
        if let Some(window) = &shared.rate {
            let mut window = window.lock().unwrap_or_else(PoisonError::into_inner);
            match window.check(shared.now_unix()) {
                RateDecision::Allowed { remaining } => rate = Some((window.limit(), remaining)),
                RateDecision::Limited { retry_after_secs } => {
                    let mut response = too_many_requests(retry_after_secs);
                    response
                        .headers_mut()
                        .insert("x-rate-limit", HeaderValue::from(window.limit()));
                    response
                        .headers_mut()
                        .insert("x-rate-limit-remaining", HeaderValue::from(0));
                    return Err(response);
                }
            }
        }
    }
    if needs_auth && !auth::authenticated(shared, headers) {
        return Err(Admission { rate }.finish(unauthorized()));
    }
    Ok(Admission { rate })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_peers_are_local() {
        assert!(is_local_peer("127.0.0.1:5".parse().unwrap()));
        assert!(is_local_peer("[::1]:5".parse().unwrap()));
        assert!(is_local_peer("[::ffff:127.0.0.1]:5".parse().unwrap()));
        assert!(!is_local_peer("10.0.0.1:5".parse().unwrap()));
        assert!(!is_local_peer("[2001:db8::1]:5".parse().unwrap()));
    }
}
