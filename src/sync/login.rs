//! Logging in to Zendesk on an admin's behalf: credential checks, the OAuth authorization-code flow
//! with its PKCE state, and the conversion between stored credentials and the client's.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};

use crate::clock::SharedClock;
use crate::secrets::Secret;
use crate::store::credentials::{CredentialsRecord, OAuthClientRecord};
use crate::zendesk::{OAuthClient, OAuthTokens, ZendeskClient, ZendeskError};

use super::credentials::{to_client, to_client_oauth, tokens_record};
use super::settings::{client_settings, EngineSettings};

/// The date Zendesk switches every API token off.
pub const API_TOKEN_SWITCH_OFF: &str = "2027-04-30";

/// How long a `BeginOAuth` state stays usable.
pub const OAUTH_STATE_TTL: TimeDelta = TimeDelta::minutes(10);

/// Why a login step failed; each kind maps to one gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// A field the admin gave is unusable; the message names it.
    #[error("{0}")]
    InvalidArgument(String),
    /// Zendesk refused the credentials (401).
    #[error("Zendesk refused the credentials: {0}")]
    Unauthenticated(String),
    /// Zendesk denied access (403).
    #[error("Zendesk denied access: {0}")]
    PermissionDenied(String),
    /// Zendesk could not be reached or answered with an error.
    #[error("cannot reach Zendesk to verify the credentials: {0}")]
    Unavailable(String),
}

impl From<ZendeskError> for LoginError {
    fn from(error: ZendeskError) -> Self {
        match &error {
            ZendeskError::Authentication { .. } => Self::Unauthenticated(error.to_string()),
            ZendeskError::PermissionDenied { .. } => Self::PermissionDenied(error.to_string()),
            ZendeskError::InvalidSettings(_) => Self::InvalidArgument(error.to_string()),
            _ => Self::Unavailable(error.to_string()),
        }
    }
}

/// Credentials Zendesk accepted, with who they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `name-or-email (role)` of the Zendesk user.
    pub authenticated_as: String,
    /// What to store: a pair Zendesk rotated during the check replaces the one given.
    pub credentials: CredentialsRecord,
}

/// The settings of an integration a `BeginOAuth` will create once its code comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSettings {
    /// Match key, Zendesk side.
    pub zendesk_field: String,
    /// Match key, account side.
    pub account_attribute: String,
    /// Metric window in days.
    pub timeframe_days: u32,
    /// Whether satisfaction scores are computed.
    pub include_satisfaction: bool,
}

/// An authorization flow begun: where to send the admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begun {
    /// The authorize URL.
    pub authorize_url: String,
    /// The state the redirect must bring back.
    pub state: String,
    /// When the state stops being usable.
    pub expires_at: DateTime<Utc>,
}

/// An authorization flow completed: the token pair and what the flow was begun for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    /// The subdomain the flow was begun for.
    pub subdomain: String,
    /// The token pair (not yet verified).
    pub credentials: CredentialsRecord,
    /// The settings of the integration to create, when none existed at `BeginOAuth`.
    pub settings: Option<PendingSettings>,
}

/// An OAuth flow begun and not yet completed.
struct PendingFlow {
    client: OAuthClient,
    redirect_uri: String,
    code_verifier: Secret,
    subdomain: String,
    settings: Option<PendingSettings>,
    expires_at: DateTime<Utc>,
}

/// Credential checks and the OAuth flows in progress.
pub struct Login {
    settings: EngineSettings,
    clock: SharedClock,
    flows: Mutex<HashMap<String, PendingFlow>>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").finish_non_exhaustive()
    }
}

impl Login {
    /// Logins against the Zendesk the engine settings point at.
    pub fn new(settings: EngineSettings, clock: SharedClock) -> Self {
        Self {
            settings,
            clock,
            flows: Mutex::new(HashMap::new()),
        }
    }

    /// The Zendesk base URL `subdomain` is reached at (the config's `base_url` wins), without a
    /// trailing slash; empty for a subdomain no URL can be made of.
    pub fn base_url(&self, subdomain: &str) -> String {
        client_settings(&self.settings, subdomain)
            .map(|s| s.base_url.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_default()
    }

    /// Checks credentials against `GET /api/v2/users/me.json`.
    pub async fn verify(
        &self,
        subdomain: &str,
        credentials: CredentialsRecord,
    ) -> Result<Verified, LoginError> {
        let settings = client_settings(&self.settings, subdomain)
            .map_err(|err| LoginError::InvalidArgument(format!("subdomain: {err}")))?;
        let rotated: Arc<Mutex<Option<OAuthTokens>>> = Arc::default();
        let keep = rotated.clone();
        let persist = crate::zendesk::persist_tokens_with(move |tokens| {
            let keep = keep.clone();
            async move {
                *keep.lock().unwrap_or_else(PoisonError::into_inner) = Some(tokens);
                Ok(())
            }
        });
        let client = ZendeskClient::builder(settings, to_client(credentials.clone()))
            .clock(self.clock.clone())
            .persist_tokens(persist)
            .build()
            .map_err(|err| LoginError::InvalidArgument(format!("credentials: {err}")))?;
        let identity = client.verify().await?;
        let who = identity
            .email
            .clone()
            .or(identity.name.clone())
            .unwrap_or_else(|| format!("user {}", identity.id));
        let rotated = rotated
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        Ok(Verified {
            authenticated_as: format!("{who} ({})", identity.role),
            credentials: match rotated {
                Some(tokens) => CredentialsRecord::OAuthTokens(tokens_record(tokens)),
                None => credentials,
            },
        })
    }

    /// Starts an authorization-code flow for `client` on `subdomain` (a random state, PKCE S256).
    pub fn begin(
        &self,
        subdomain: String,
        client: OAuthClientRecord,
        redirect_uri: String,
        settings: Option<PendingSettings>,
    ) -> Result<Begun, LoginError> {
        let client_settings = client_settings(&self.settings, &subdomain)
            .map_err(|err| LoginError::InvalidArgument(format!("subdomain: {err}")))?;
        let authorize =
            crate::zendesk::begin_authorization(&client_settings, &client.client_id, &redirect_uri)
                .map_err(|err| LoginError::InvalidArgument(err.to_string()))?;
        let expires_at = self.clock.now() + OAUTH_STATE_TTL;
        let begun = Begun {
            authorize_url: authorize.url.to_string(),
            state: authorize.state.clone(),
            expires_at,
        };
        self.flows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                authorize.state,
                PendingFlow {
                    client: to_client_oauth(client),
                    redirect_uri,
                    code_verifier: authorize.code_verifier,
                    subdomain,
                    settings,
                    expires_at,
                },
            );
        Ok(begun)
    }

    /// Exchanges the code a redirect brought back with `state` for a token pair.
    pub async fn complete(&self, code: &str, state: &str) -> Result<Completed, LoginError> {
        let flow = self.take(state)?;
        let settings = client_settings(&self.settings, &flow.subdomain)
            .map_err(|err| LoginError::InvalidArgument(format!("subdomain: {err}")))?;
        let mut tokens = crate::zendesk::exchange_authorization_code(
            settings,
            self.clock.clone(),
            &flow.client,
            code,
            &flow.redirect_uri,
            &flow.code_verifier,
        )
        .await?;
        tokens.client = Some(flow.client.clone());
        Ok(Completed {
            subdomain: flow.subdomain,
            credentials: CredentialsRecord::OAuthTokens(tokens_record(tokens)),
            settings: flow.settings,
        })
    }

    fn take(&self, state: &str) -> Result<PendingFlow, LoginError> {
        let now = self.clock.now();
        let mut flows = self.flows.lock().unwrap_or_else(PoisonError::into_inner);
        flows.retain(|_, flow| flow.expires_at > now);
        flows.remove(state).ok_or_else(|| {
            LoginError::InvalidArgument(
                "state: unknown, expired or already used; call BeginOAuth again".into(),
            )
        })
    }
}

/// The subdomain, lower-cased, if Zendesk could have it (`^[a-z0-9][a-z0-9-]{0,62}$`).
pub fn validate_subdomain(subdomain: &str) -> Result<String, LoginError> {
    if subdomain.is_empty() {
        return Err(LoginError::InvalidArgument("subdomain: required".into()));
    }
    crate::zendesk::settings::validate_subdomain(subdomain)
        .map_err(|err| LoginError::InvalidArgument(format!("subdomain: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::credentials::OAuthTokensRecord;
    use crate::zendesk::Credentials;

    #[test]
    fn credentials_cross_the_boundary_unchanged() {
        let client = OAuthClientRecord {
            client_id: "id".into(),
            client_secret: Secret::new("secret"),
        };
        let tokens = OAuthTokensRecord {
            access_token: Secret::new("access"),
            refresh_token: Secret::new("refresh"),
            expires_at: DateTime::from_timestamp(1_800_000_000, 0),
            client: Some(client.clone()),
        };
        let Credentials::OAuthTokens(converted) =
            to_client(CredentialsRecord::OAuthTokens(tokens.clone()))
        else {
            panic!("a token pair stays a token pair");
        };
        assert_eq!(tokens_record(converted), tokens);
        assert!(matches!(
            to_client(CredentialsRecord::OAuthClient(client)),
            Credentials::OAuthClient(OAuthClient { client_id, .. }) if client_id == "id"
        ));
    }

    #[test]
    fn subdomains_are_lower_cased_and_checked() {
        assert_eq!(validate_subdomain("Acme").expect("valid"), "acme");
        assert!(matches!(
            validate_subdomain("acme.evil.com"),
            Err(LoginError::InvalidArgument(message)) if message.starts_with("subdomain: ")
        ));
    }
}
