//! Per-request admission: the request counter, a pending fault, the rate limit and
//! authentication, in that order.
use std::sync::PoisonError;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use super::endpoint::Endpoint;
use super::faults::{FaultKind, RateDecision};
use super::http::{forbidden, json_body, too_many_requests, unauthorized, zendesk_error};
use super::state::Shared;
use super::tokens;

/// Where the account stands in its rate-limit window, as Zendesk's headers say it.
#[derive(Debug, Clone, Copy)]
struct RateHeaders {
    limit: u32,
    remaining: u32,
    reset_secs: u32,
}

impl RateHeaders {
    /// Adds `x-rate-limit`, `x-rate-limit-remaining` and `ratelimit-reset` (with the `ratelimit-*`
    /// twins Zendesk also sends), as Zendesk's rate-limit documentation shows them.
    fn add_to(self, response: &mut Response) {
        let headers = response.headers_mut();
        headers.insert("x-rate-limit", HeaderValue::from(self.limit));
        headers.insert("ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("x-rate-limit-remaining", HeaderValue::from(self.remaining));
        headers.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(self.reset_secs));
    }
}

/// A request that passed admission; adds the rate-limit headers to its response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admission {
    rate: Option<RateHeaders>,
}

impl Admission {
    /// Adds the rate-limit headers when a limit is configured.
    pub(crate) fn finish(self, mut response: Response) -> Response {
        if let Some(rate) = self.rate {
            rate.add_to(&mut response);
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
    let (fault, clears) = {
        let mut faults = shared.faults();
        (faults.take(endpoint), faults.clears())
    };
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
            FaultKind::Hold => {
                let mut released = shared.released.subscribe();
                let mut stopping = shared.stopping.subscribe();
                tokio::select! {
                    // The count was read with the fault taken: a clear since then releases at once.
                    _ = released.wait_for(|count| *count > clears) => {}
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
    if let Some(window) = shared.export_rate.as_ref().filter(|_| endpoint.is_export()) {
        let decision = window
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check(shared.now_unix());
        if let RateDecision::Limited { retry_after_secs } = decision {
            return Err(too_many_requests(retry_after_secs));
        }
    }
    let mut rate = None;
    if endpoint.is_api() {
        if let Some(window) = &shared.rate {
            let mut window = window.lock().unwrap_or_else(PoisonError::into_inner);
            match window.check(shared.now_unix()) {
                RateDecision::Allowed {
                    remaining,
                    reset_secs,
                } => {
                    rate = Some(RateHeaders {
                        limit: window.limit(),
                        remaining,
                        reset_secs,
                    });
                }
                RateDecision::Limited { retry_after_secs } => {
                    let mut response = too_many_requests(retry_after_secs);
                    RateHeaders {
                        limit: window.limit(),
                        remaining: 0,
                        reset_secs: retry_after_secs,
                    }
                    .add_to(&mut response);
                    return Err(response);
                }
            }
        }
    }
    if needs_auth
        && !tokens::authenticated(headers, &shared.credentials, |token| {
            shared.tokens().access_valid(token, shared.now_unix())
        })
    {
        return Err(Admission { rate }.finish(unauthorized()));
    }
    Ok(Admission { rate })
}

/// Admits the request, then answers with `respond`'s response (or its error) carrying the
/// rate-limit headers: the shape of every API handler.
pub(crate) async fn serve<E: axum::response::IntoResponse>(
    shared: &Shared,
    endpoint: Endpoint,
    headers: &HeaderMap,
    respond: impl FnOnce(&Shared) -> Result<Response, E>,
) -> Response {
    match admit(shared, endpoint, headers, true).await {
        Ok(admission) => admission.finish(respond(shared).unwrap_or_else(E::into_response)),
        Err(response) => response,
    }
}
