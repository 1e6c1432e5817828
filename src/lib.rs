//! zdsync: a daemon that keeps a Zendesk Support instance in sync with a customer-success account directory.

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
