//! zdsync: a daemon that keeps a Zendesk Support instance in sync with a customer-success account directory.
//!
//! # A tour of the layout
//!
//! Data flows one way:
//!
//! ```text
//! Zendesk pages -> zendesk (fetch, decode) -> sync (schedule, runs) -> store (one transaction per
//! page: records + cursor + rollups + events) <- grpc (reads, and admin commands that go to sync)
//! ```
//!
//! - [`domain`]: the pure rules (matching, metric windows and counter algebra, event detection,
//!   ticket states). It imports nothing else of the crate and does no I/O, so every rule is
//!   unit-tested alone.
//! - [`zendesk`]: the Zendesk API as zdsync sees it: the client (auth, budget, retries), payload
//!   types and envelopes, and the export streams.
//! - [`sync`]: the engine (schedule, force, pause), one run's phases (page -> staged write), the
//!   login checks and OAuth flow, and the status report. The only module that holds a Zendesk
//!   client; it converts stored credentials to the client's at its boundary.
//! - [`store`]: redb. Every table is defined in `store::tables`; one module per aggregate
//!   (accounts, matching, rollups, events, sync state); stored records become domain facts in
//!   `store::facts`, and the store calls the domain for every decision.
//! - [`grpc`]: one file per service plus auth, paging and proto conversions; errors become
//!   `tonic::Status` in `grpc::status`. It reads the store and sends admin commands to the sync
//!   engine; it never talks to Zendesk.
//! - [`daemon`] wires store, engine and gRPC server together (signals, `sd_notify`, shutdown);
//!   [`config`] is the TOML file plus `ZDSYNC_*` overrides, validated once at start.
//! - [`simulator`]: a Zendesk Support look-alike for tests, benchmarks and [`demo`];
//!   [`cli`]: the admin subcommands over gRPC.
//!
//! The daemon is a library: [`daemon::run`] takes a bound listener and a shutdown future, so
//! tests start it on `127.0.0.1:0` next to a simulator and talk to it over real gRPC.

pub mod background;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod domain;
pub mod grpc;
pub mod prometheus;
pub mod proto;
pub mod secrets;
pub mod simulator;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod zendesk;
