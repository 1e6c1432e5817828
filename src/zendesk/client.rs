//! The Zendesk client: credentials + transport, `verify`, and the entry points of the streams.
use std::sync::Arc;

use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

use super::auth::{
    self, Authenticator, AuthorizeRequest, Credentials, OAuthClient, OAuthTokens, PersistTokens,
};
use super::budget::EndpointClass;
use super::decode::decode_json;
use super::envelope::CurrentUserEnvelope;
use super::error::{error_message, ZendeskError};
use super::observe::{ClientObserver, ClientStats};
use super::retry::{Sleeper, TokioSleeper};
use super::settings::ClientSettings;
use super::transport::{RequestSpec, Transport};
use crate::clock::{self, SharedClock};
use crate::secrets::Secret;

/// The path of the identity check.
pub const USERS_ME_PATH: &str = "/api/v2/users/me.json";

/// Who a set of credentials belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Zendesk user id.
    pub id: u64,
    /// Display name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// `agent` or `admin` (end-users are refused).
    pub role: String,
    /// Whether the user is an admin (the incremental exports need one).
    pub is_admin: bool,
}

/// A cheap-to-clone handle on one Zendesk instance with one set of credentials.
#[derive(Debug, Clone)]
pub struct ZendeskClient {
    inner: Arc<ClientInner>,
}

#[derive(Debug)]
struct ClientInner {
    transport: Transport,
    auth: Authenticator,
}

/// Builds a [`ZendeskClient`], with injectable sleeper, clock, observer and token persistence.
pub struct ZendeskClientBuilder {
    settings: ClientSettings,
    credentials: Credentials,
    sleeper: Arc<dyn Sleeper>,
    clock: SharedClock,
    observer: Option<Arc<dyn ClientObserver>>,
    persist: Option<PersistTokens>,
}

impl ZendeskClientBuilder {
    /// Waits through `sleeper` instead of `tokio::time::sleep` (tests record the waits).
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Reads "now" (token expiry, `Retry-After` dates, the 60-second rule) from `clock`.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Reports requests and waits to `observer`.
    pub fn observer(mut self, observer: Arc<dyn ClientObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Stores rotated OAuth tokens; required for `Credentials::OAuthTokens`, since Zendesk
    /// revokes the old refresh token on every refresh.
    pub fn persist_tokens(mut self, persist: PersistTokens) -> Self {
        self.persist = Some(persist);
        self
    }

    /// The client.
    pub fn build(self) -> Result<ZendeskClient, ZendeskError> {
        if matches!(self.credentials, Credentials::OAuthTokens(_)) && self.persist.is_none() {
            return Err(ZendeskError::InvalidSettings(
                "OAuth token credentials need a persist_tokens callback: refresh rotates them"
                    .to_owned(),
            ));
        }
        let transport = Transport::new(self.settings, self.sleeper, self.clock, self.observer)?;
        let auth = Authenticator::new(self.credentials, self.persist)?;
        Ok(ZendeskClient {
            inner: Arc::new(ClientInner { transport, auth }),
        })
    }
}

impl ZendeskClient {
    /// A builder with the real sleeper and the system clock.
    pub fn builder(settings: ClientSettings, credentials: Credentials) -> ZendeskClientBuilder {
        ZendeskClientBuilder {
            settings,
            credentials,
            sleeper: Arc::new(TokioSleeper),
            clock: clock::system(),
            observer: None,
            persist: None,
        }
    }

    /// The settings the client runs with.
    pub fn settings(&self) -> &ClientSettings {
        &self.inner.transport.settings
    }

    /// The counters: requests made, waits, retries, token renewals.
    pub fn stats(&self) -> ClientStats {
        self.inner.transport.stats.snapshot()
    }

    /// Who the credentials belong to (`GET /api/v2/users/me.json`).
    ///
    /// Zendesk answers some bad credentials with 200 and an anonymous user: an identity with no
    /// id is `Authentication`, an end-user is `PermissionDenied`.
    pub async fn verify(&self) -> Result<Identity, ZendeskError> {
        let url = self.settings().url(USERS_ME_PATH)?;
        let envelope: CurrentUserEnvelope = self
            .get_json(EndpointClass::Other, USERS_ME_PATH, url)
            .await?;
        let user = envelope.user;
        let Some(id) = user.id else {
            return Err(ZendeskError::Authentication {
                status: 200,
                message:
                    "Zendesk answered as the anonymous user: the credentials were not accepted"
                        .to_owned(),
            });
        };
        let role = user.role.unwrap_or_default();
        if role.is_empty() || role == "end-user" {
            return Err(ZendeskError::PermissionDenied {
                message: format!("user {id} is an end-user; zdsync needs an agent or admin"),
            });
        }
        Ok(Identity {
            id,
            name: user.name,
            email: user.email,
            is_admin: role == "admin",
            role,
        })
    }

    /// The "now" of the client's clock.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.transport.clock.now()
    }

    /// GETs `url` with credentials and decodes the body.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        class: EndpointClass,
        endpoint: &str,
        url: Url,
    ) -> Result<T, ZendeskError> {
        let body = self.get(class, endpoint, url).await?;
        decode_json(endpoint, &body)
    }

    /// GETs `url` with credentials; one token renewal on a 401, then 401/403 are errors.
    async fn get(
        &self,
        class: EndpointClass,
        endpoint: &str,
        url: Url,
    ) -> Result<Vec<u8>, ZendeskError> {
        let transport = &self.inner.transport;
        let mut renewed = false;
        loop {
            let header = self.authorization().await?;
            let spec = RequestSpec {
                method: Method::GET,
                url: url.clone(),
                class,
                endpoint,
                authorization: Some(&header),
                json_body: None,
            };
            let response = transport.send(&spec).await?;
            match response.status {
                status if status.is_success() => return Ok(response.body),
                StatusCode::UNAUTHORIZED => {
                    if !renewed && self.renew(&header).await? {
                        renewed = true;
                        continue;
                    }
                    return Err(ZendeskError::Authentication {
                        status: 401,
                        message: error_message(&response.body),
                    });
                }
                StatusCode::FORBIDDEN => {
                    return Err(ZendeskError::PermissionDenied {
                        message: error_message(&response.body),
                    })
                }
                status => {
                    return Err(ZendeskError::UnexpectedStatus {
                        endpoint: endpoint.to_owned(),
                        status: status.as_u16(),
                        message: error_message(&response.body),
                    })
                }
            }
        }
    }

    /// The `Authorization` header, minted or refreshed on a task of its own: a caller that stops waiting (a
    /// paused run drops its fetch) must not cut a refresh between Zendesk rotating the refresh token and the
    /// rotated pair being persisted.
    async fn authorization(&self) -> Result<Secret, ZendeskError> {
        self.on_own_task(|inner| async move { inner.auth.header(&inner.transport).await })
            .await
    }

    async fn renew(&self, rejected: &Secret) -> Result<bool, ZendeskError> {
        tracing::info!("Zendesk answered 401: renewing the access token once");
        let rejected = rejected.clone();
        // On a task of its own for the same reason as `authorization`.
        self.on_own_task(|inner| async move {
            inner
                .auth
                .renew_after_unauthorized(&inner.transport, &rejected)
                .await
        })
        .await
    }

    /// Runs token work on a task of its own, which finishes even if the caller stops waiting.
    async fn on_own_task<T, F>(
        &self,
        work: impl FnOnce(Arc<ClientInner>) -> F,
    ) -> Result<T, ZendeskError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, ZendeskError>> + Send + 'static,
    {
        tokio::spawn(work(self.inner.clone()))
            .await
            .map_err(|err| ZendeskError::TokenPersist(format!("token task failed: {err}")))?
    }
}

/// Starts the authorization-code flow: the authorize URL, its `state` and the PKCE verifier.
pub fn begin_authorization(
    settings: &ClientSettings,
    client_id: &str,
    redirect_uri: &str,
) -> Result<AuthorizeRequest, ZendeskError> {
    auth::authorize_request(&settings.base_url, client_id, redirect_uri)
}

/// Exchanges an authorization code (with the PKCE verifier) for an access + refresh token pair.
///
/// The expiry is dated by `clock`, the one the caller's clients later compare it with.
pub async fn exchange_authorization_code(
    settings: ClientSettings,
    clock: SharedClock,
    client: &OAuthClient,
    code: &str,
    redirect_uri: &str,
    code_verifier: &Secret,
) -> Result<OAuthTokens, ZendeskError> {
    let transport = Transport::new(settings, Arc::new(TokioSleeper), clock, None)?;
    auth::exchange_code(&transport, client, code, redirect_uri, code_verifier).await
}
