//! What the sync needs from the config: the engine's settings and the Zendesk client settings made
//! from them (the one place a subdomain or the config's `base_url` becomes a client).
use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;
use crate::zendesk::{ClientSettings, ZendeskError};

use super::schedule::ScheduleSettings;

/// What the engine needs to know besides the store.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Data directory (the credentials file lives there).
    pub data_dir: PathBuf,
    /// `[zendesk] base_url` from the config file, for tests and the simulator.
    pub base_url: Option<String>,
    /// Export budget per minute; 0 turns off every client-side budget (the other endpoints' too).
    pub requests_per_minute: u32,
    /// Budget per minute of the other endpoints (lists, `users/me`, tokens); 0 turns it off.
    pub other_requests_per_minute: u32,
    /// Percent of the account's limit left to the customer's other apps.
    pub reserve_for_other_apps: u32,
    /// The window the request budgets count in (Zendesk's minute; shorter only for benches and tests).
    pub rate_window: Duration,
    /// HTTP request timeout.
    pub timeout: Duration,
    /// The schedule.
    pub schedule: ScheduleSettings,
    /// Fetched pages applied per write transaction at most.
    pub pages_per_commit: u32,
    /// Longest wait between two tries to write again while the store cannot write (the backoff's cap).
    pub store_retry: Duration,
}

/// Client settings for `subdomain`, honouring the config's `base_url` override (the only way to change the host).
pub fn client_settings(
    settings: &EngineSettings,
    subdomain: &str,
) -> Result<ClientSettings, ZendeskError> {
    let mut client = match &settings.base_url {
        Some(base) => ClientSettings::for_base_url(base)?,
        None => ClientSettings::for_subdomain(subdomain)?,
    };
    client.requests_per_minute =
        (settings.requests_per_minute > 0).then_some(settings.requests_per_minute);
    client.other_requests_per_minute =
        (settings.other_requests_per_minute > 0).then_some(settings.other_requests_per_minute);
    if settings.requests_per_minute == 0 {
        // "Budget off" means no client-side pacing at all: without this the list endpoints
        // (satisfaction ratings, 100 a page) kept their 200/min budget and a budget-off initial
        // sync of 200,000 tickets spent 80 s waiting for it. Zendesk's 429 handling still applies.
        client.other_requests_per_minute = None;
    }
    client.reserve_for_other_apps = settings.reserve_for_other_apps;
    client.rate_window = settings.rate_window;
    client.timeout = settings.timeout;
    Ok(client)
}

impl From<&Config> for EngineSettings {
    /// The one mapping from the daemon's config to what the sync and its Zendesk client use.
    fn from(config: &Config) -> Self {
        EngineSettings {
            data_dir: config.data_dir.clone(),
            base_url: config.zendesk.base_url.clone(),
            requests_per_minute: config.zendesk.requests_per_minute,
            other_requests_per_minute: config.zendesk.other_requests_per_minute,
            reserve_for_other_apps: config.zendesk.reserve_for_other_apps,
            rate_window: crate::zendesk::account_limit::WINDOW,
            timeout: config.zendesk.timeout,
            schedule: ScheduleSettings {
                incremental_interval: config.schedule.incremental_interval,
                full_validation_at: config.schedule.full_validation_at,
            },
            pages_per_commit: config.schedule.pages_per_commit,
            store_retry: crate::store::health::DEFAULT_RETRY_EVERY,
        }
    }
}
