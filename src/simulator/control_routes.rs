//! HTTP routes of the control API under `/_sim/`, thin wrappers over [`SimulatorControl`].
use std::sync::Arc;

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::control::SimulatorControl;
use super::data::MutationError;
use super::faults::FaultSpec;
use super::http::{not_found, zendesk_error};
use super::inputs::{
    NewRating, NewTicket, OrganizationInput, RatingScore, TicketUpdate, UserInput,
};
use super::model::Score;
use super::state::Shared;

/// The `/_sim/` routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sim/stats", get(stats))
        .route("/_sim/tickets", TICKETS.collection())
        .route("/_sim/tickets/{id}", TICKETS.member().delete(delete_ticket))
        .route("/_sim/tickets/{id}/satisfaction_rating", post(add_rating))
        .route(
            "/_sim/satisfaction_ratings/{id}",
            get(show_rating).put(score_rating),
        )
        .route("/_sim/organizations", ORGANIZATIONS.collection())
        .route("/_sim/organizations/{id}", ORGANIZATIONS.member())
        .route("/_sim/users", USERS.collection())
        .route("/_sim/users/{id}", USERS.member())
        .route(
            "/_sim/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_sim/counters", get(counters).delete(reset_counters))
        .route("/_sim/clock", get(clock).put(set_clock))
}

/// A record kind the control API creates, shows and changes: `POST /_sim/{kind}s`, `GET` and
/// `PATCH /_sim/{kind}s/{id}`.
struct Resource<New, Update> {
    /// The record's name: the key of its body and the word of its 404.
    name: &'static str,
    /// The record as the export shows it.
    show: fn(&SimulatorControl, u64) -> Option<Value>,
    /// Creates the record; returns its id.
    create: fn(&SimulatorControl, New) -> Result<u64, MutationError>,
    /// Changes the record.
    update: fn(&SimulatorControl, u64, Update) -> Result<(), MutationError>,
}

// Manual impls: the derives would require `New: Clone`, `Update: Clone`.
impl<New, Update> Clone for Resource<New, Update> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<New, Update> Copy for Resource<New, Update> {}

const TICKETS: Resource<NewTicket, TicketUpdate> = Resource {
    name: "ticket",
    show: SimulatorControl::ticket_json,
    create: SimulatorControl::create_ticket,
    update: SimulatorControl::update_ticket,
};

const ORGANIZATIONS: Resource<OrganizationInput, OrganizationInput> = Resource {
    name: "organization",
    show: SimulatorControl::organization_json,
    create: SimulatorControl::create_organization,
    update: SimulatorControl::update_organization,
};

const USERS: Resource<UserInput, UserInput> = Resource {
    name: "user",
    show: SimulatorControl::user_json,
    create: SimulatorControl::create_user,
    update: SimulatorControl::update_user,
};

impl<New, Update> Resource<New, Update>
where
    New: DeserializeOwned + Send + 'static,
    Update: DeserializeOwned + Send + 'static,
{
    /// `POST /_sim/{kind}s`.
    fn collection(self) -> MethodRouter<Arc<Shared>> {
        post(move |State(shared), body| create(self, shared, body))
    }

    /// `GET` and `PATCH /_sim/{kind}s/{id}`.
    fn member(self) -> MethodRouter<Arc<Shared>> {
        get(move |State(shared), Path(id)| async move { show(self, shared, id) })
            .patch(move |State(shared), Path(id), body| update(self, shared, id, body))
    }
}

/// A JSON request body; an unreadable one is answered with 422 `InvalidJson`.
struct Body<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(zendesk_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "InvalidJson",
                &rejection.body_text(),
            )),
        }
    }
}

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

fn show<N, U>(resource: Resource<N, U>, shared: Arc<Shared>, id: u64) -> Response {
    match (resource.show)(&control(shared), id) {
        Some(value) => Json(value).into_response(),
        None => not_found(&format!("{} {id} not found", resource.name)),
    }
}

async fn create<N, U>(
    resource: Resource<N, U>,
    shared: Arc<Shared>,
    Body(new): Body<N>,
) -> Response {
    let control = control(shared);
    let created = (resource.create)(&control, new);
    saved(created, StatusCode::CREATED, resource.name, |id| {
        (resource.show)(&control, id)
    })
}

async fn update<N, U>(
    resource: Resource<N, U>,
    shared: Arc<Shared>,
    id: u64,
    Body(update): Body<U>,
) -> Response {
    let control = control(shared);
    let updated = (resource.update)(&control, id, update);
    saved(updated, StatusCode::OK, resource.name, |()| {
        (resource.show)(&control, id)
    })
}

async fn delete_ticket(State(shared): State<Arc<Shared>>, Path(id): Path<u64>) -> Response {
    match control(shared).delete_ticket(id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => mutation_error(e),
    }
}

/// Body of `POST /_sim/tickets/{id}/satisfaction_rating` with `S` = [`Score`] (a [`NewRating`],
/// optionally created at `at`, Unix seconds, rather than now), and of
/// `PUT /_sim/satisfaction_ratings/{id}` with `S` = a word, so that a wrong score gets a 400 that
/// says which words are allowed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RatingBody<S> {
    score: S,
    comment: Option<String>,
    at: Option<i64>,
}

async fn add_rating(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<u64>,
    Body(body): Body<RatingBody<Score>>,
) -> Response {
    let control = control(shared);
    let rating = NewRating {
        score: body.score,
        comment: body.comment,
    };
    let added = match body.at {
        Some(at) => control.add_rating_at(id, rating, at),
        None => control.add_rating(id, rating),
    };
    saved(
        added,
        StatusCode::CREATED,
        "satisfaction_rating",
        |rating_id| control.rating_json(rating_id),
    )
}

async fn show_rating(State(shared): State<Arc<Shared>>, Path(id): Path<u64>) -> Response {
    match control(shared).rating_json(id) {
        Some(rating) => Json(json!({ "satisfaction_rating": rating })).into_response(),
        None => not_found(&format!("satisfaction_rating {id} not found")),
    }
}

async fn score_rating(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<u64>,
    Body(body): Body<RatingBody<String>>,
) -> Response {
    let score = match body.score.as_str() {
        "good" => Score::Good,
        "bad" => Score::Bad,
        other => {
            return zendesk_error(
                StatusCode::BAD_REQUEST,
                "InvalidValue",
                &format!("score must be \"good\" or \"bad\", not {other:?}"),
            )
        }
    };
    let control = control(shared);
    let change = RatingScore {
        score,
        comment: body.comment,
        at: body.at,
    };
    saved(
        control.score_rating(id, change),
        StatusCode::OK,
        "satisfaction_rating",
        |()| control.rating_json(id),
    )
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(control(shared).stats()).into_response()
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({ "faults": control(shared).pending_faults() })).into_response()
}

async fn add_fault(State(shared): State<Arc<Shared>>, Body(spec): Body<FaultSpec>) -> Response {
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

async fn set_clock(State(shared): State<Arc<Shared>>, Body(offset): Body<ClockOffset>) -> Response {
    let control = control(shared);
    control.set_time_offset(offset.offset_seconds);
    clock_json(&control)
}
