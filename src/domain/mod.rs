//! Pure rules with no I/O: account validation now; matching, metric windows and event detection as they land.

pub mod account;
