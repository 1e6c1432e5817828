//! State shared by every request handler and the in-process control handle.
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::credentials::Credentials;
use super::data::Dataset;
use super::faults::{Counters, FaultQueue, RateWindow};
use super::tokens::TokenStore;
use crate::clock::SharedClock;

/// Everything a request may read or change.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) data: RwLock<Dataset>,
    pub(crate) clock: SharedClock,
    pub(crate) offset_seconds: AtomicI64,
    pub(crate) base_url: String,
    pub(crate) credentials: Credentials,
    pub(crate) access_token_ttl: Duration,
    pub(crate) tokens: Mutex<TokenStore>,
    pub(crate) faults: Mutex<FaultQueue>,
    pub(crate) counters: Counters,
    pub(crate) rate: Option<Mutex<RateWindow>>,
    /// The incremental exports' own limit, counted before the account's.
    pub(crate) export_rate: Option<Mutex<RateWindow>>,
    /// Flips to true when the simulator shuts down (ends stalls and the server).
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
    /// The fault queue's clear count, published: requests held by a `Hold` fault wait for it to move on.
    pub(crate) released: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    /// The simulator's now: the clock plus the control API's offset.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now() + chrono::Duration::seconds(self.offset_seconds.load(Ordering::Relaxed))
    }

    /// The simulator's now in Unix seconds.
    pub(crate) fn now_unix(&self) -> i64 {
        self.now().timestamp()
    }

    /// Read access to the data set (a poisoned lock still holds consistent data: every
    /// mutation validates before it writes).
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Dataset> {
        self.data.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Write access to the data set.
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Dataset> {
        self.data.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The token store.
    pub(crate) fn tokens(&self) -> MutexGuard<'_, TokenStore> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fault queue.
    pub(crate) fn faults(&self) -> MutexGuard<'_, FaultQueue> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
