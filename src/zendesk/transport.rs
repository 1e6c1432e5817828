//! One HTTP exchange with Zendesk, with the budget, 429 waits, retries, timeouts and size cap.
//!
//! Statuses that are not retried (2xx, 4xx other than 429) come back as a [`RawResponse`] for the
//! caller to interpret; 429 and 5xx are handled here.
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use tracing::Instrument;

use super::account_limit::{AccountLimit, RateLimitHeaders};
use super::budget::{Budgets, EndpointClass};
use super::error::{error_message, ZendeskError};
use super::observe::{ClientObserver, StatsCounters, WaitReason};
use super::retry::{backoff_with_jitter, parse_retry_after, Sleeper};
use super::settings::ClientSettings;
use crate::clock::SharedClock;
use crate::secrets::Secret;

/// A response whose status the transport does not handle itself.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
}

/// What to send.
pub(crate) struct RequestSpec<'a> {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) class: EndpointClass,
    /// The path, used in logs and errors (never the query, never a header).
    pub(crate) endpoint: &'a str,
    /// The whole `Authorization` header value, if any.
    pub(crate) authorization: Option<&'a Secret>,
    pub(crate) json_body: Option<&'a serde_json::Value>,
}

/// The HTTP side of the client, shared by the API calls and the token requests.
#[derive(Debug)]
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    pub(crate) settings: ClientSettings,
    pub(crate) budgets: Budgets,
    /// The account-wide limit Zendesk reports, shared with the customer's other apps.
    pub(crate) account: AccountLimit,
    pub(crate) sleeper: Arc<dyn Sleeper>,
    pub(crate) clock: SharedClock,
    pub(crate) stats: StatsCounters,
    pub(crate) observer: Option<Arc<dyn ClientObserver>>,
}

enum AttemptError {
    Retryable(ZendeskError),
    Final(ZendeskError),
}

impl Transport {
    /// Builds the HTTP client: rustls, gzip, timeouts, no redirects (credentials stay on the host).
    pub(crate) fn new(
        settings: ClientSettings,
        sleeper: Arc<dyn Sleeper>,
        clock: SharedClock,
        observer: Option<Arc<dyn ClientObserver>>,
    ) -> Result<Self, ZendeskError> {
        settings.validate()?;
        let http = reqwest::Client::builder()
            .user_agent(settings.user_agent.clone())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .gzip(true)
            .build()
            .map_err(|err| {
                ZendeskError::InvalidSettings(format!("HTTP client: {}", err.without_url()))
            })?;
        let budgets = Budgets::new(
            settings.requests_per_minute,
            settings.other_requests_per_minute,
            settings.rate_window,
        );
        let account = AccountLimit::new(settings.reserve_for_other_apps);
        Ok(Self {
            http,
            settings,
            budgets,
            account,
            sleeper,
            clock,
            stats: StatsCounters::default(),
            observer,
        })
    }

    /// Sends `spec`, waiting out the budget and 429s and retrying 5xx and network faults.
    pub(crate) async fn send(&self, spec: &RequestSpec<'_>) -> Result<RawResponse, ZendeskError> {
        let mut failed_attempts = 0u32;
        let mut rate_limit_waits = 0u32;
        loop {
            let budget_wait = self.budgets.bucket(spec.class).reserve();
            if let Some(left) = self.budgets.bucket(spec.class).remaining() {
                let class = match spec.class {
                    EndpointClass::Export => "export",
                    EndpointClass::Other => "other",
                };
                crate::telemetry::budget_remaining(class, left);
            }
            if !budget_wait.is_zero() {
                StatsCounters::bump(&self.stats.budget_waits);
                self.wait(spec.endpoint, WaitReason::Budget, budget_wait)
                    .await;
            }
            // After the budget's wait, which may have crossed the account window's reset.
            let account_wait = self.account.reserve(Instant::now());
            if !account_wait.is_zero() {
                tracing::debug!(
                    endpoint = spec.endpoint,
                    wait_secs = account_wait.as_secs_f64(),
                    reserve_percent = self.settings.reserve_for_other_apps,
                    "leaving the rest of Zendesk's account limit to other apps until it resets"
                );
                StatsCounters::bump(&self.stats.budget_waits);
                self.wait(spec.endpoint, WaitReason::Budget, account_wait)
                    .await;
            }
            let attempt = failed_attempts + 1;
            let span = tracing::debug_span!("zendesk_request", endpoint = spec.endpoint, attempt);
            let outcome = self.attempt(spec).instrument(span).await;
            let error = match outcome {
                Ok(response) if response.status == StatusCode::TOO_MANY_REQUESTS => {
                    self.budgets.bucket(spec.class).drain();
                    rate_limit_waits += 1;
                    let wait = response
                        .retry_after
                        .unwrap_or(self.settings.default_retry_after);
                    if rate_limit_waits > self.settings.max_rate_limit_waits
                        || wait > self.settings.max_retry_after
                    {
                        return Err(ZendeskError::RateLimited {
                            endpoint: spec.endpoint.to_owned(),
                            retry_after: response.retry_after,
                        });
                    }
                    tracing::info!(
                        endpoint = spec.endpoint,
                        wait_secs = wait.as_secs_f64(),
                        "Zendesk rate limit: waiting Retry-After"
                    );
                    StatsCounters::bump(&self.stats.rate_limit_waits);
                    self.wait(spec.endpoint, WaitReason::RateLimited, wait)
                        .await;
                    continue;
                }
                Ok(response) if response.status.is_server_error() => {
                    AttemptError::Retryable(ZendeskError::Server {
                        endpoint: spec.endpoint.to_owned(),
                        status: response.status.as_u16(),
                        message: error_message(&response.body),
                    })
                }
                Ok(response) => {
                    return Ok(RawResponse {
                        status: response.status,
                        body: response.body,
                    })
                }
                Err(error) => error,
            };
            match error {
                AttemptError::Retryable(err) if attempt < self.settings.max_attempts => {
                    failed_attempts += 1;
                    StatsCounters::bump(&self.stats.retries);
                    let wait = backoff_with_jitter(
                        attempt,
                        self.settings.backoff_base,
                        self.settings.backoff_cap,
                    );
                    tracing::warn!(endpoint = spec.endpoint, attempt, error = %err, wait_ms = wait.as_millis() as u64, "retrying Zendesk request");
                    self.wait(spec.endpoint, WaitReason::Backoff, wait).await;
                }
                AttemptError::Retryable(err) | AttemptError::Final(err) => return Err(err),
            }
        }
    }

    async fn wait(&self, endpoint: &str, reason: WaitReason, duration: Duration) {
        if let Some(observer) = &self.observer {
            observer.on_wait(endpoint, reason, duration);
        }
        self.sleeper.sleep(duration).await;
    }

    async fn attempt(&self, spec: &RequestSpec<'_>) -> Result<AttemptResponse, AttemptError> {
        StatsCounters::bump(&self.stats.requests);
        let started = Instant::now();
        let result = self.exchange(spec).await;
        let status = result
            .as_ref()
            .ok()
            .map(|response| response.status.as_u16());
        tracing::debug!(
            endpoint = spec.endpoint,
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Zendesk answered"
        );
        if let Some(observer) = &self.observer {
            observer.on_response(spec.endpoint, status);
        }
        result
    }

    async fn exchange(&self, spec: &RequestSpec<'_>) -> Result<AttemptResponse, AttemptError> {
        let mut request = self
            .http
            .request(spec.method.clone(), spec.url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(authorization) = spec.authorization {
            let mut value = HeaderValue::from_str(authorization.expose()).map_err(|_| {
                AttemptError::Final(ZendeskError::InvalidSettings(
                    "credentials contain characters not allowed in an HTTP header".to_owned(),
                ))
            })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        if let Some(body) = spec.json_body {
            request = request.json(body);
        }
        let mut response = request
            .send()
            .await
            .map_err(|err| self.network_error(spec, &err))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, self.clock.now()));
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
        };
        self.account.observe(
            RateLimitHeaders::parse(
                header("x-rate-limit"),
                header("x-rate-limit-remaining"),
                header("ratelimit-reset"),
            ),
            Instant::now(),
        );
        let limit = self.settings.max_response_bytes;
        let too_large = || {
            AttemptError::Final(ZendeskError::TooLarge {
                endpoint: spec.endpoint.to_owned(),
                limit,
            })
        };
        if response
            .content_length()
            .is_some_and(|length| length > limit)
        {
            return Err(too_large());
        }
        let capacity = response.content_length().unwrap_or(0).min(limit);
        let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| self.network_error(spec, &err))?
        {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(AttemptResponse {
            status,
            retry_after,
            body,
        })
    }

    fn network_error(&self, spec: &RequestSpec<'_>, err: &reqwest::Error) -> AttemptError {
        if err.is_timeout() {
            return AttemptError::Retryable(ZendeskError::Timeout {
                endpoint: spec.endpoint.to_owned(),
            });
        }
        let error = ZendeskError::Transport {
            endpoint: spec.endpoint.to_owned(),
            message: describe_reqwest_error(err),
        };
        if err.is_builder() {
            AttemptError::Final(error)
        } else {
            AttemptError::Retryable(error)
        }
    }
}

struct AttemptResponse {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

/// The error and its causes on one line, without the URL (whose query is nobody's business).
fn describe_reqwest_error(err: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut current: Option<&dyn std::error::Error> = Some(err);
    while let Some(error) = current {
        let part = if let Some(reqwest_error) = error.downcast_ref::<reqwest::Error>() {
            let mut copy = format!("{reqwest_error}");
            if let Some(url) = reqwest_error.url() {
                copy = copy
                    .replace(&format!(" ({url})"), "")
                    .replace(url.as_str(), "<url>");
            }
            copy
        } else {
            error.to_string()
        };
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        current = error.source();
    }
    text
}
