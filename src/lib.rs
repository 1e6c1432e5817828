//! zdsync: a daemon that keeps a Zendesk Support instance in sync with a customer-success account directory.

pub mod clock;
pub mod proto;
pub mod simulator;
pub mod zendesk;
