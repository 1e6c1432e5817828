//! HTTP routes of the control API under `/_sim/`, thin wrappers over [`SimulatorControl`].
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::control::{
    NewRating, NewTicket, OrganizationInput, SimulatorControl, TicketUpdate, UserInput,
};
use super::data::MutationError;
use super::faults::FaultSpec;
use super::server::zendesk_error;
use super::state::Shared;

/// The `/_sim/` routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sim/stats", get(stats))
        .route("/_sim/tickets", post(create_ticket))
        .route(
            "/_sim/tickets/{id}",
            get(get_ticket).patch(update_ticket).delete(delete_ticket),
        )
        .route("/_sim/tickets/{id}/satisfaction_rating", post(add_rating))
        .route("/_sim/organizations", post(create_organization))
        .route(
            "/_sim/organizations/{id}",
            get(get_organization).patch(update_organization),
        )
        .route("/_sim/users", post(create_user))
        .route("/_sim/users/{id}", get(get_user).patch(update_user))
        .route(
            "/_sim/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_sim/counters", get(counters).delete(reset_counters))
        .route("/_sim/clock", get(clock).put(set_clock))
}

fn control(shared: Arc<Shared>) -> SimulatorControl {
    SimulatorControl { shared }
}

fn mutation_error(error: MutationError) -> Response {
    match &error {
        MutationError::NotFound { .. } => {
            zendesk_error(StatusCode::NOT_FOUND, "RecordNotFound", &error.to_string())
        }
        MutationError::Invalid { field, reason } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "error": "RecordInvalid",
                "description": "Record validation errors",
                "details": { *field: [{ "description": reason, "error": "InvalidValue" }] },
            })),
        )
            .into_response(),
    }
}

fn bad_json(rejection: JsonRejection) -> Response {
    zendesk_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "InvalidJson",
        &rejection.body_text(),
    )
}

fn found(value: Option<serde_json::Value>, kind: &str, id: u64) -> Response {
    match value {
        Some(value) => Json(value).into_response(),
        None => zendesk_error(
            StatusCode::NOT_FOUND,
            "RecordNotFound",
            &format!("{kind} {id} not found"),
        ),
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(control(shared).stats()).into_response()
}

async fn get_ticket(State(shared): State<Arc<Shared>>, Path(id): Path<u64>) -> Response {
    found(control(shared).ticket_json(id), "ticket", id)
}

async fn create_ticket(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<NewTicket>, JsonRejection>,
) -> Response {
    let Json(new) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_json(rejection),
    };
    let control = control(shared);
    match control.create_ticket(new) {
        Ok(id) => (
            StatusCode::CREATED,
            Json(json!({ "ticket": control.ticket_json(id) })),
        )
            .into_response(),
        Err(e) => mutation_error(e),
    }
}

async fn update_ticket(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<u64>,
    body: Result<Json<TicketUpdate>, JsonRejection>,
) -> Response {
    let Json(update) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_json(rejection),
    };
    let control = control(shared);
    match control.update_ticket(id, update) {
        Ok(()) => Json(json!({ "ticket": control.ticket_json(id) })).into_response(),
        Err(e) => mutation_error(e),
    }
}

async fn delete_ticket(State(shared): State<Arc<Shared>>, Path(id): Path<u64>) -> Response {
    match control(shared).delete_ticket(id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => mutation_error(e),
    }
}

async fn add_rating(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<u64>,
    body: Result<Json<NewRating>, JsonRejection>,
) -> Response {
    let Json(rating) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_json(rejection),
    };
    let control = control(shared);
    match control.add_rating(id, rating) {
        Ok(rating_id) => (
            StatusCode::CREATED,
            Json(json!({ "satisfaction_rating": control.rating_json(rating_id) })),
        )
            .into_response(),
        Err(e) => mutation_error(e),
    }
}

async fn get_organization(State(shared): State<Arc<Shared>>, Path(id): Path<u64>) -> Response {
    found(control(shared).organization_json(id), "organization", id)
}

async fn create_organization(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<OrganizationInput>, JsonRejection>,
) -> Response {
    let Json(input) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_json(rejection),
    };
    let control = control(shared);
    match control.create_organization(input) {
        Ok(id) => (
            StatusCode::CREATED,
            Json(json!({ "organization": control.organization_json(id) })),
        )
            .into_response(),
        Err(e) => mutation_error(e),
    }
}

async fn update_organization(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<u64>,
    body: Result<Json<OrganizationInput>, JsonRejection>,
) -> Response {
    let Json(input) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_json(rejection),
    };
    let control = control(shared);
    match control.update_organization(id, input) {
        Ok(()) => Json(json!({ "organization": control.organization_json(id) })).into_response(),
        Err(e) => mutation_error(e),
    }
}

async fn get_user(State(shared): State<Arc<Shared>>, Path(id): Path<u64>) -> Response {
    found(control(shared).user_json(id), "user", id)
}

async fn create_user(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<UserInput>, JsonRejection>,
) -> Response {
    let Json(input) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_json(rejection),
    };
    let control = control(shared);
    match control.create_user(input) {
        Ok(id) => (
            StatusCode::CREATED,
            Json(json!({ "user": control.user_json(id) })),
        )
            .into_response(),
        Err(e) => mutation_error(e),
    }
}

async fn update_user(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<u64>,
    body: Result<Json<UserInput>, JsonRejection>,
) -> Response {
    let Json(input) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_json(rejection),
    };
    let control = control(shared);
    match control.update_user(id, input) {
        Ok(()) => Json(json!({ "user": control.user_json(id) })).into_response(),
        Err(e) => mutation_error(e),
    }
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({ "faults": control(shared).pending_faults() })).into_response()
}

async fn add_fault(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<FaultSpec>, JsonRejection>,
) -> Response {
    let Json(spec) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_json(rejection),
    };
    let control = control(shared);
    control.inject_fault(spec);
    (
        StatusCode::CREATED,
        Json(json!({ "faults": control.pending_faults() })),
    )
        .into_response()
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    control(shared).clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

async fn counters(State(shared): State<Arc<Shared>>) -> Response {
    Json(control(shared).counters()).into_response()
}

async fn reset_counters(State(shared): State<Arc<Shared>>) -> Response {
    control(shared).reset_counters();
    StatusCode::NO_CONTENT.into_response()
}

fn clock_json(control: &SimulatorControl) -> serde_json::Value {
    let now = control.now();
    json!({
        "now": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "now_unix": now.timestamp(),
        "offset_seconds": control.time_offset(),
    })
}

async fn clock(State(shared): State<Arc<Shared>>) -> Response {
    Json(clock_json(&control(shared))).into_response()
}

/// Body of `PUT /_sim/clock`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockOffset {
    offset_seconds: i64,
}

async fn set_clock(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<ClockOffset>, JsonRejection>,
) -> Response {
    let Json(offset) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_json(rejection),
    };
    let control = control(shared);
    control.set_time_offset(offset.offset_seconds);
    Json(clock_json(&control)).into_response()
}
