//! Pure rules with no I/O: account validation, ticket states; matching, metric windows and event detection as they land.

pub mod account;
pub mod events;
pub mod matching;
pub mod metrics;
pub mod text;
pub mod ticket;
