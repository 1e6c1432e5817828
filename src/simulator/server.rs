//! The router: every route of the simulator, the control API behind a loopback check.
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use super::http::{is_local_peer, not_found, zendesk_error};
use super::state::Shared;
use super::{api, auth, control_routes};

/// All routes of the simulator.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let control = control_routes::routes().layer(middleware::from_fn(loopback_only));
    Router::new()
        .merge(api::routes())
        .route("/oauth/tokens", post(auth::tokens))
        .route("/oauth/authorizations/new", get(auth::authorize))
        .merge(control)
        .fallback(fallback)
        .with_state(shared)
}

async fn fallback() -> Response {
    not_found("Not found")
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
