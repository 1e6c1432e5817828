//! A Zendesk Support API look-alike with seeded data, mutations and fault injection.
//!
//! See `SIMULATOR_API.md` at the crate root for every route, the default credentials and the
//! control API.
//!
//! Layout, leaves first (no module imports one that imports it back):
//! - `http`: response builders, error bodies, query and paging helpers (imports no sibling);
//! - `model`, `index`, `cursor`, `timefmt`, `endpoint`, `credentials`, `inputs`: plain types;
//! - `data` (records and mutations), `generate` (seeded data), `render` (Zendesk's JSON);
//! - `faults`, `tokens`, then `state` (what every request shares) and `admission`;
//! - the routes: `api` (Zendesk endpoints), `auth` (OAuth), `control` and `control_routes`;
//! - `server` (the router), `run` (start-up and handle), `cli`.
mod admission;
mod api;
mod auth;
pub mod cli;
mod control;
mod control_routes;
mod credentials;
mod cursor;
mod data;
mod endpoint;
mod faults;
mod generate;
mod http;
mod index;
mod inputs;
mod model;
mod render;
mod run;
mod server;
mod state;
mod timefmt;
mod tokens;

pub use control::{DatasetStats, SimulatorControl};
pub use credentials::{
    Credentials, DEFAULT_API_TOKEN, DEFAULT_API_TOKEN_EMAIL, DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
};
pub use data::MutationError;
pub use endpoint::Endpoint;
pub use faults::{FaultKind, FaultSpec, RateLimitUsage};
pub use inputs::{NewRating, NewTicket, OrganizationInput, RatingScore, TicketUpdate, UserInput};
pub use model::{Priority, Role, Score, Status};
pub use run::{start, SimulatorConfig, SimulatorError, SimulatorHandle};
