//! Client settings: where Zendesk is, how fast and how long to talk to it.
use std::time::Duration;

use reqwest::Url;

use super::error::ZendeskError;

/// The documented limit of the incremental export endpoints, in requests per minute.
pub const DEFAULT_EXPORT_REQUESTS_PER_MINUTE: u32 = 10;
/// The account-wide limit of the smallest plan (200 to 2,500 a minute by plan), for other endpoints.
pub const DEFAULT_OTHER_REQUESTS_PER_MINUTE: u32 = 200;
/// Percent of the account's limit (`x-rate-limit`) left to the customer's other apps by default.
pub const DEFAULT_RESERVE_FOR_OTHER_APPS: u32 = 20;
/// Largest share (percent) of the account's limit the client may leave to other apps: it must still sync.
pub const MAX_RESERVE_FOR_OTHER_APPS: u32 = 90;
/// The largest page the incremental exports allow (also their default).
pub const MAX_EXPORT_PAGE_SIZE: u32 = 1000;

/// How the client talks to one Zendesk instance.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Origin (and optional path prefix) every request goes to, without a trailing slash.
    pub base_url: Url,
    /// Budget for the incremental export endpoints; `None` or 0 turns the budget off (benchmarks).
    pub requests_per_minute: Option<u32>,
    /// Budget for every other endpoint; `None` or 0 turns it off.
    pub other_requests_per_minute: Option<u32>,
    /// Percent of the account's limit (`x-rate-limit`) left to the customer's other apps (0..=90).
    pub reserve_for_other_apps: u32,
    /// The window the budgets count in: Zendesk's minute; shorter only against a simulator whose rate-limit
    /// windows are (`zdsync simulate --rate-window-secs`), so a bench can scale the budgets down.
    pub rate_window: Duration,
    /// Limit for one whole request: connect, send, and read the full body.
    pub timeout: Duration,
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Attempts per request for retryable failures (5xx, timeouts, connection faults), at least 1.
    pub max_attempts: u32,
    /// How many 429 answers one request may wait out before failing with `RateLimited`.
    pub max_rate_limit_waits: u32,
    /// The longest `Retry-After` the client waits; a longer one fails at once with `RateLimited`.
    pub max_retry_after: Duration,
    /// Wait used for a 429 that carries no usable `Retry-After`.
    pub default_retry_after: Duration,
    /// First backoff step for retries; it doubles per attempt up to `backoff_cap`.
    pub backoff_base: Duration,
    /// Largest backoff between two retries.
    pub backoff_cap: Duration,
    /// Largest response body accepted (after gzip decoding), in bytes.
    pub max_response_bytes: u64,
    /// `per_page` sent to the incremental exports (1..=1000).
    pub export_page_size: u32,
    /// `page[size]` sent to cursor-paginated list endpoints (groups, ratings).
    pub list_page_size: u32,
    /// The User-Agent header.
    pub user_agent: String,
}

impl ClientSettings {
    /// Settings for `https://{subdomain}.zendesk.com`, validating the subdomain.
    pub fn for_subdomain(subdomain: &str) -> Result<Self, ZendeskError> {
        Ok(Self::with_base_url_unchecked(subdomain_base_url(
            subdomain,
        )?))
    }

    /// Settings for an explicit base URL: only the daemon's config file may give one.
    pub fn for_base_url(base_url: &str) -> Result<Self, ZendeskError> {
        Ok(Self::with_base_url_unchecked(parse_base_url(base_url)?))
    }

    fn with_base_url_unchecked(base_url: Url) -> Self {
        Self {
            base_url,
            requests_per_minute: Some(DEFAULT_EXPORT_REQUESTS_PER_MINUTE),
            other_requests_per_minute: Some(DEFAULT_OTHER_REQUESTS_PER_MINUTE),
            reserve_for_other_apps: DEFAULT_RESERVE_FOR_OTHER_APPS,
            rate_window: super::account_limit::WINDOW,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_attempts: 5,
            max_rate_limit_waits: 10,
            max_retry_after: Duration::from_secs(15 * 60),
            default_retry_after: Duration::from_secs(60),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            max_response_bytes: 64 * 1024 * 1024,
            export_page_size: MAX_EXPORT_PAGE_SIZE,
            list_page_size: 100,
            user_agent: default_user_agent(),
        }
    }

    /// Checks the values that would otherwise misbehave at run time.
    pub fn validate(&self) -> Result<(), ZendeskError> {
        let invalid = |what: &str| Err(ZendeskError::InvalidSettings(what.to_owned()));
        if self.max_attempts == 0 {
            return invalid("max_attempts must be at least 1");
        }
        if self.export_page_size == 0 || self.export_page_size > MAX_EXPORT_PAGE_SIZE {
            return invalid("export_page_size must be between 1 and 1000");
        }
        if self.list_page_size == 0 || self.list_page_size > 100 {
            return invalid("list_page_size must be between 1 and 100");
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return invalid("timeouts must be positive");
        }
        if self.max_response_bytes == 0 {
            return invalid("max_response_bytes must be positive");
        }
        if self.reserve_for_other_apps > MAX_RESERVE_FOR_OTHER_APPS {
            return invalid("reserve_for_other_apps must be between 0 and 90 (percent)");
        }
        if self.user_agent.is_empty() {
            return invalid("user_agent must not be empty");
        }
        Ok(())
    }

    /// The absolute URL of `path` (which starts with `/`) under the base URL.
    pub(crate) fn url(&self, path: &str) -> Result<Url, ZendeskError> {
        let base = self.base_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}")).map_err(|err| {
            ZendeskError::InvalidSettings(format!("cannot build URL for {path}: {err}"))
        })
    }
}

/// `zdsync/<crate version>`.
pub fn default_user_agent() -> String {
    format!("zdsync/{}", env!("CARGO_PKG_VERSION"))
}

/// Lower-cases and validates a subdomain against `^[a-z0-9][a-z0-9-]{0,62}$`.
pub fn validate_subdomain(subdomain: &str) -> Result<String, ZendeskError> {
    let lowered = subdomain.to_ascii_lowercase();
    let mut chars = lowered.chars();
    let first_ok = chars
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !first_ok || !rest_ok || lowered.len() > 63 {
        return Err(ZendeskError::InvalidSettings(format!(
            "subdomain {} must match ^[a-z0-9][a-z0-9-]{{0,62}}$ (no dots, no scheme)",
            crate::domain::text::quote(subdomain)
        )));
    }
    Ok(lowered)
}

/// `https://{subdomain}.zendesk.com` for a valid subdomain.
pub fn subdomain_base_url(subdomain: &str) -> Result<Url, ZendeskError> {
    let subdomain = validate_subdomain(subdomain)?;
    parse_base_url(&format!("https://{subdomain}.zendesk.com"))
}

fn parse_base_url(raw: &str) -> Result<Url, ZendeskError> {
    let url = Url::parse(raw)
        .map_err(|err| ZendeskError::InvalidSettings(format!("base_url {raw:?}: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ZendeskError::InvalidSettings(format!(
            "base_url {raw:?} must be http or https"
        )));
    }
    if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(ZendeskError::InvalidSettings(format!(
            "base_url {raw:?} must have a host and no query or fragment"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ZendeskError::InvalidSettings(
            "base_url must not carry credentials".to_owned(),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomain_rules() {
        assert_eq!(validate_subdomain("Acme-1").ok().as_deref(), Some("acme-1"));
        for bad in [
            "",
            "-acme",
            "acme.evil.com",
            "https://acme",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(validate_subdomain(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_subdomain(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn validate_refuses_unusable_values() {
        let Ok(good) = ClientSettings::for_subdomain("acme") else {
            panic!("valid subdomain refused");
        };
        assert!(good.validate().is_ok());
        let tweaks: [fn(&mut ClientSettings); 6] = [
            |s| s.reserve_for_other_apps = 91,
            |s| s.max_attempts = 0,
            |s| s.export_page_size = 1001,
            |s| s.list_page_size = 0,
            |s| s.timeout = Duration::ZERO,
            |s| s.user_agent.clear(),
        ];
        for tweak in tweaks {
            let mut bad = good.clone();
            tweak(&mut bad);
            assert!(matches!(
                bad.validate(),
                Err(ZendeskError::InvalidSettings(_))
            ));
        }
        assert!(good.user_agent.starts_with("zdsync/"));
    }

    #[test]
    fn base_urls() {
        let settings = ClientSettings::for_subdomain("acme").map_err(|e| e.to_string());
        let settings = settings.as_ref().map(|s| s.base_url.as_str());
        assert_eq!(settings, Ok("https://acme.zendesk.com/"));
        let local = ClientSettings::for_base_url("http://127.0.0.1:8080/");
        let url = local.map(|s| s.url("/api/v2/groups.json").map(|u| u.to_string()));
        assert_eq!(
            url.ok().and_then(Result::ok).as_deref(),
            Some("http://127.0.0.1:8080/api/v2/groups.json")
        );
        assert!(ClientSettings::for_base_url("ftp://x").is_err());
        assert!(ClientSettings::for_base_url("http://u:p@x").is_err());
    }
}
