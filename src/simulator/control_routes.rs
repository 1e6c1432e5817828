//! HTTP routes of the control API under `/_sim/`, thin wrappers over [`SimulatorControl`].
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::control::SimulatorControl;
use super::data::MutationError;
use super::faults::FaultSpec;
use super::http::{not_found, zendesk_error};
use super::inputs::{NewRating, NewTicket, OrganizationInput, TicketUpdate, UserInput};
use super::state::Shared;

/// The `/_sim/` routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sim/stats", get(stats))
        .route("/_sim/tickets", post(create::<Tickets>))
        .route(
            "/_sim/tickets/{id}",
            get(show::<Tickets>)
                .patch(update::<Tickets>)
                .delete(delete_ticket),
        )
        .route("/_sim/tickets/{id}/satisfaction_rating", post(add_rating))
        .route("/_sim/organizations", post(create::<Organizations>))
        .route(
            "/_sim/organizations/{id}",
            get(show::<Organizations>).patch(update::<Organizations>),
        )
        .route("/_sim/users", post(create::<Users>))
        .route(
            "/_sim/users/{id}",
            get(show::<Users>).patch(update::<Users>),
        )
        .route(
            "/_sim/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_sim/counters", get(counters).delete(reset_counters))
        .route("/_sim/clock", get(clock).put(set_clock))
}

/// A record kind the control API creates, shows and changes: `GET`, `PATCH /_sim/{kind}s/{id}`
/// and `POST /_sim/{kind}s`.
trait Resource {
    /// The record's name: the key of its body and the word of its 404.
    const NAME: &'static str;
    /// The body of a create.
    type New: DeserializeOwned + Send + 'static;
    /// The body of a change.
    type Update: DeserializeOwned + Send + 'static;
    /// The record as the export shows it.
    fn show(control: &SimulatorControl, id: u64) -> Option<Value>;
    /// Creates the record; returns its id.
    fn create(control: &SimulatorControl, new: Self::New) -> Result<u64, MutationError>;
    /// Changes the record.
    fn update(
        control: &SimulatorControl,
        id: u64,
        update: Self::Update,
    ) -> Result<(), MutationError>;
}

/// Tickets (`/_sim/tickets`).
struct Tickets;

impl Resource for Tickets {
    const NAME: &'static str = "ticket";
    type New = NewTicket;
    type Update = TicketUpdate;
    fn show(control: &SimulatorControl, id: u64) -> Option<Value> {
        control.ticket_json(id)
    }
    fn create(control: &SimulatorControl, new: NewTicket) -> Result<u64, MutationError> {
        control.create_ticket(new)
    }
    fn update(
        control: &SimulatorControl,
        id: u64,
        update: TicketUpdate,
    ) -> Result<(), MutationError> {
        control.update_ticket(id, update)
    }
}

/// Organizations (`/_sim/organizations`).
struct Organizations;

impl Resource for Organizations {
    const NAME: &'static str = "organization";
    type New = OrganizationInput;
    type Update = OrganizationInput;
    fn show(control: &SimulatorControl, id: u64) -> Option<Value> {
        control.organization_json(id)
    }
    fn create(control: &SimulatorControl, new: OrganizationInput) -> Result<u64, MutationError> {
        control.create_organization(new)
    }
    fn update(
        control: &SimulatorControl,
        id: u64,
        update: OrganizationInput,
    ) -> Result<(), MutationError> {
        control.update_organization(id, update)
    }
}

/// Users (`/_sim/users`).
struct Users;

impl Resource for Users {
    const NAME: &'static str = "user";
    type New = UserInput;
    type Update = UserInput;
    fn show(control: &SimulatorControl, id: u64) -> Option<Value> {
        control.user_json(id)
    }
    fn create(control: &SimulatorControl, new: UserInput) -> Result<u64, MutationError> {
        control.create_user(new)
    }
    fn update(control: &SimulatorControl, id: u64, update: UserInput) -> Result<(), MutationError> {
        control.update_user(id, update)
    }
}

type Body<T> = Result<Json<T>, JsonRejection>;

fn control(shared: Arc<Shared>) -> SimulatorControl {
    SimulatorControl { shared }
}

fn mutation_error(error: MutationError) -> Response {
    match &error {
        MutationError::NotFound { .. } => not_found(&error.to_string()),
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

/// The body, or the 422 `InvalidJson` answer.
fn read_body<T>(body: Body<T>) -> Result<T, Response> {
    body.map(|Json(value)| value).map_err(|rejection| {
        zendesk_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidJson",
            &rejection.body_text(),
        )
    })
}

/// After a mutation: `{name: record}` with `status`, or the mutation's error.
fn saved<T>(
    result: Result<T, MutationError>,
    status: StatusCode,
    name: &str,
    record: impl FnOnce(T) -> Option<Value>,
) -> Response {
    match result {
        Ok(id) => (status, Json(json!({ name: record(id) }))).into_response(),
        Err(e) => mutation_error(e),
    }
}

async fn show<R: Resource>(State(shared): State<Arc<Shared>>, Path(id): Path<u64>) -> Response {
    match R::show(&control(shared), id) {
        Some(value) => Json(value).into_response(),
        None => not_found(&format!("{} {id} not found", R::NAME)),
    }
}

async fn create<R: Resource>(State(shared): State<Arc<Shared>>, body: Body<R::New>) -> Response {
    let new = match read_body(body) {
        Ok(new) => new,
        Err(response) => return response,
    };
    let control = control(shared);
    saved(
        R::create(&control, new),
        StatusCode::CREATED,
        R::NAME,
        |id| R::show(&control, id),
    )
}

async fn update<R: Resource>(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<u64>,
    body: Body<R::Update>,
) -> Response {
    let update = match read_body(body) {
        Ok(update) => update,
        Err(response) => return response,
    };
    let control = control(shared);
    saved(
        R::update(&control, id, update),
        StatusCode::OK,
        R::NAME,
        |()| R::show(&control, id),
    )
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
    body: Body<NewRating>,
) -> Response {
    let rating = match read_body(body) {
        Ok(rating) => rating,
        Err(response) => return response,
    };
    let control = control(shared);
    saved(
        control.add_rating(id, rating),
        StatusCode::CREATED,
        "satisfaction_rating",
        |rating_id| control.rating_json(rating_id),
    )
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(control(shared).stats()).into_response()
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({ "faults": control(shared).pending_faults() })).into_response()
}

async fn add_fault(State(shared): State<Arc<Shared>>, body: Body<FaultSpec>) -> Response {
    let spec = match read_body(body) {
        Ok(spec) => spec,
        Err(response) => return response,
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

fn clock_json(control: &SimulatorControl) -> Response {
    let now = control.now();
    Json(json!({
        "now": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "now_unix": now.timestamp(),
        "offset_seconds": control.time_offset(),
    }))
    .into_response()
}

async fn clock(State(shared): State<Arc<Shared>>) -> Response {
    clock_json(&control(shared))
}

/// Body of `PUT /_sim/clock`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockOffset {
    offset_seconds: i64,
}

async fn set_clock(State(shared): State<Arc<Shared>>, body: Body<ClockOffset>) -> Response {
    let offset = match read_body(body) {
        Ok(offset) => offset,
        Err(response) => return response,
    };
    let control = control(shared);
    control.set_time_offset(offset.offset_seconds);
    clock_json(&control)
}
