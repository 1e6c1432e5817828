//! Credentials and the `Authorization` header: API token, OAuth client credentials, and OAuth
//! access + refresh tokens with rotation persisted before use. Also the authorization-code flow.
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore;
use reqwest::{Method, Url};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::budget::EndpointClass;
use super::decode::decode_json_redacted;
use super::error::{error_message, ZendeskError};
use super::observe::StatsCounters;
use super::retry::BoxFuture;
use super::transport::{RequestSpec, Transport};
use crate::secrets::Secret;

/// The token endpoint.
pub const TOKEN_PATH: &str = "/oauth/tokens";
/// The authorization endpoint of the authorization-code flow.
pub const AUTHORIZE_PATH: &str = "/oauth/authorizations/new";
/// The only scope zdsync asks for.
pub const SCOPE: &str = "read";
/// Access tokens are renewed this long before they expire.
const RENEW_MARGIN: chrono::Duration = chrono::Duration::seconds(60);

/// A confidential OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// The client's unique identifier.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
}

/// An OAuth access + refresh token pair from the authorization-code flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthTokens {
    /// The bearer token.
    pub access_token: Secret,
    /// The refresh token (single use: Zendesk rotates it on every refresh).
    pub refresh_token: Secret,
    /// When the access token expires, if known.
    pub expires_at: Option<DateTime<Utc>>,
    /// The client the tokens were issued to; Zendesk's refresh grant needs it.
    pub client: Option<OAuthClient>,
}

/// The three kinds of credentials of DESIGN 1.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// OAuth client-credentials grant: the client mints its own access tokens.
    OAuthClient(OAuthClient),
    /// Tokens from the authorization-code flow, refreshed (and rotated) when they expire.
    OAuthTokens(OAuthTokens),
    /// Legacy API token, sent as HTTP basic `email/token:TOKEN`.
    ApiToken {
        /// The agent's email.
        email: String,
        /// The API token.
        token: Secret,
    },
}

impl Credentials {
    /// Checks that no part is empty.
    pub fn validate(&self) -> Result<(), ZendeskError> {
        let empty = match self {
            Self::OAuthClient(client) => {
                client.client_id.is_empty() || client.client_secret.is_empty()
            }
            Self::OAuthTokens(tokens) => {
                tokens.access_token.is_empty() || tokens.refresh_token.is_empty()
            }
            Self::ApiToken { email, token } => email.is_empty() || token.is_empty(),
        };
        if empty {
            return Err(ZendeskError::InvalidSettings(
                "credentials have an empty part".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Stores a rotated token pair durably; the client uses the new pair only after this returns Ok.
pub type PersistTokens =
    Arc<dyn Fn(OAuthTokens) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Wraps an async closure as a [`PersistTokens`] callback.
pub fn persist_tokens_with<F, Fut>(persist: F) -> PersistTokens
where
    F: Fn(OAuthTokens) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move |tokens| Box::pin(persist(tokens)))
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
}

enum AuthState {
    Basic(Secret),
    ClientCredentials {
        client: OAuthClient,
        access: Option<(Secret, Option<DateTime<Utc>>)>,
    },
    Tokens(OAuthTokens),
}

/// Holds the current credentials and produces (and renews) the `Authorization` header.
pub(crate) struct Authenticator {
    state: Mutex<AuthState>,
    persist: Option<PersistTokens>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    pub(crate) fn new(
        credentials: Credentials,
        persist: Option<PersistTokens>,
    ) -> Result<Self, ZendeskError> {
        credentials.validate()?;
        let state = match credentials {
            Credentials::ApiToken { email, token } => {
                let basic = STANDARD.encode(format!("{email}/token:{}", token.expose()));
                AuthState::Basic(Secret::new(format!("Basic {basic}")))
            }
            Credentials::OAuthClient(client) => AuthState::ClientCredentials {
                client,
                access: None,
            },
            Credentials::OAuthTokens(tokens) => AuthState::Tokens(tokens),
        };
        Ok(Self {
            state: Mutex::new(state),
            persist,
        })
    }

    /// The header to send now, minting or refreshing first when the token is (nearly) expired.
    pub(crate) async fn header(&self, transport: &Transport) -> Result<Secret, ZendeskError> {
        let mut state = self.state.lock().await;
        let now = transport.clock.now();
        let expiring = |expires_at: Option<DateTime<Utc>>| {
            expires_at.is_some_and(|at| at - RENEW_MARGIN <= now)
        };
        match &mut *state {
            AuthState::Basic(header) => Ok(header.clone()),
            AuthState::ClientCredentials { client, access } => {
                let fresh = access
                    .as_ref()
                    .filter(|(_, expires_at)| !expiring(*expires_at));
                if let Some((token, _)) = fresh {
                    return Ok(bearer(token));
                }
                let (token, expires_at) = mint_client_credentials(transport, client).await?;
                let header = bearer(&token);
                *access = Some((token, expires_at));
                Ok(header)
            }
            AuthState::Tokens(tokens) => {
                if expiring(tokens.expires_at) {
                    self.refresh(transport, tokens).await?;
                }
                Ok(bearer(&tokens.access_token))
            }
        }
    }

    /// After a 401 for `rejected`: renews the token once. Ok(true) means retry with a new header.
    pub(crate) async fn renew_after_unauthorized(
        &self,
        transport: &Transport,
        rejected: &Secret,
    ) -> Result<bool, ZendeskError> {
        let mut state = self.state.lock().await;
        match &mut *state {
            AuthState::Basic(_) => Ok(false),
            AuthState::ClientCredentials { client, access } => {
                if access
                    .as_ref()
                    .is_some_and(|(token, _)| bearer(token) != *rejected)
                {
                    return Ok(true);
                }
                *access = None;
                let minted = mint_client_credentials(transport, client).await?;
                *access = Some(minted);
                Ok(true)
            }
            AuthState::Tokens(tokens) => {
                if bearer(&tokens.access_token) != *rejected {
                    return Ok(true);
                }
                self.refresh(transport, tokens).await?;
                Ok(true)
            }
        }
    }

    /// Refresh-token grant; the rotated pair is persisted before it replaces the current one.
    async fn refresh(
        &self,
        transport: &Transport,
        tokens: &mut OAuthTokens,
    ) -> Result<(), ZendeskError> {
        let mut body = serde_json::json!({
            "grant_type": "refresh_token",
            "refresh_token": tokens.refresh_token.expose(),
        });
        if let Some(client) = &tokens.client {
            body["client_id"] = client.client_id.clone().into();
            body["client_secret"] = client.client_secret.expose().into();
        }
        let response = token_request(transport, &body).await?;
        // Zendesk rotates the refresh token on every refresh; should it ever not, the old one
        // stays valid and is kept.
        let refresh_token = response
            .refresh_token
            .filter(|token| !token.is_empty())
            .map_or_else(|| tokens.refresh_token.clone(), Secret::new);
        let rotated = OAuthTokens {
            access_token: Secret::new(response.access_token),
            refresh_token,
            expires_at: expiry(transport, response.expires_in),
            client: tokens.client.clone(),
        };
        if let Some(persist) = &self.persist {
            persist(rotated.clone())
                .await
                .map_err(ZendeskError::TokenPersist)?;
        }
        tracing::info!("OAuth access token refreshed and the rotated pair persisted");
        *tokens = rotated;
        Ok(())
    }
}

fn bearer(token: &Secret) -> Secret {
    Secret::new(format!("Bearer {}", token.expose()))
}

fn expiry(transport: &Transport, expires_in: Option<i64>) -> Option<DateTime<Utc>> {
    expires_in
        .filter(|seconds| *seconds > 0)
        .map(|seconds| transport.clock.now() + chrono::Duration::seconds(seconds))
}

async fn mint_client_credentials(
    transport: &Transport,
    client: &OAuthClient,
) -> Result<(Secret, Option<DateTime<Utc>>), ZendeskError> {
    let body = serde_json::json!({
        "grant_type": "client_credentials",
        "client_id": client.client_id,
        "client_secret": client.client_secret.expose(),
        "scope": SCOPE,
    });
    let response = token_request(transport, &body).await?;
    tracing::info!("OAuth access token minted (client credentials)");
    Ok((
        Secret::new(response.access_token),
        expiry(transport, response.expires_in),
    ))
}

/// POSTs a grant to the token endpoint; any refusal is an `Authentication` error.
async fn token_request(
    transport: &Transport,
    body: &serde_json::Value,
) -> Result<TokenResponse, ZendeskError> {
    let url = transport.settings.url(TOKEN_PATH)?;
    StatsCounters::bump(&transport.stats.token_renewals);
    let spec = RequestSpec {
        method: Method::POST,
        url,
        class: EndpointClass::Other,
        endpoint: TOKEN_PATH,
        authorization: None,
        json_body: Some(body),
    };
    let response = transport.send(&spec).await?;
    if !response.status.is_success() {
        return Err(ZendeskError::Authentication {
            status: response.status.as_u16(),
            message: error_message(&response.body),
        });
    }
    let decoded: TokenResponse = decode_json_redacted(TOKEN_PATH, &response.body)?;
    if decoded.access_token.is_empty() {
        return Err(ZendeskError::Authentication {
            status: response.status.as_u16(),
            message: "the token endpoint returned an empty access token".to_owned(),
        });
    }
    Ok(decoded)
}

/// Everything an admin needs to start the authorization-code flow.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// Where to send the admin's browser.
    pub url: Url,
    /// Random state to compare with the one the redirect brings back.
    pub state: String,
    /// PKCE verifier to keep (secret) until the code is exchanged.
    pub code_verifier: Secret,
}

/// Builds the authorize URL (`response_type=code`, `scope=read`, random `state`, PKCE S256).
pub fn authorize_request(
    base_url: &Url,
    client_id: &str,
    redirect_uri: &str,
) -> Result<AuthorizeRequest, ZendeskError> {
    let state = random_token(24);
    let code_verifier = Secret::new(random_token(48));
    let base = base_url.as_str().trim_end_matches('/');
    let mut url = Url::parse(&format!("{base}{AUTHORIZE_PATH}"))
        .map_err(|err| ZendeskError::InvalidSettings(format!("authorize URL: {err}")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", SCOPE)
        .append_pair("state", &state)
        .append_pair("code_challenge", &pkce_challenge(code_verifier.expose()))
        .append_pair("code_challenge_method", "S256");
    Ok(AuthorizeRequest {
        url,
        state,
        code_verifier,
    })
}

/// The S256 PKCE challenge of a verifier: base64url without padding of its SHA-256.
pub fn pkce_challenge(code_verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(code_verifier.as_bytes()))
}

/// `bytes` random bytes as base64url text.
fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

/// The authorization-code exchange: the code from the redirect becomes an access + refresh pair.
pub(crate) async fn exchange_code(
    transport: &Transport,
    client: &OAuthClient,
    code: &str,
    redirect_uri: &str,
    code_verifier: &Secret,
) -> Result<OAuthTokens, ZendeskError> {
    let body = serde_json::json!({
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client.client_id,
        "client_secret": client.client_secret.expose(),
        "redirect_uri": redirect_uri,
        "scope": SCOPE,
        "code_verifier": code_verifier.expose(),
    });
    let response = token_request(transport, &body).await?;
    let refresh_token =
        response
            .refresh_token
            .map(Secret::new)
            .ok_or_else(|| ZendeskError::Authentication {
                status: 200,
                message: "the code exchange returned no refresh token".to_owned(),
            })?;
    Ok(OAuthTokens {
        access_token: Secret::new(response.access_token),
        refresh_token,
        expires_at: expiry(transport, response.expires_in),
        client: Some(client.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_an_independent_sha256_base64url() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mJ0kjdpn95Ca5wGXPCGbiOTb3vlfaw"),
            // python3: base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
            "E_j7o2lDdXjMnMdB8Dugx9545mklGu9WndJEX0ZUvvw"
        );
    }

    #[test]
    fn authorize_url_carries_the_flow_parameters() {
        let base = Url::parse("https://acme.zendesk.com").map_err(|e| e.to_string());
        let request = base.and_then(|b| {
            authorize_request(&b, "cid", "https://app/cb").map_err(|e| e.to_string())
        });
        let Ok(request) = request else {
            panic!("{request:?}")
        };
        let pairs: std::collections::HashMap<String, String> =
            request.url.query_pairs().into_owned().collect();
        assert_eq!(request.url.path(), AUTHORIZE_PATH);
        assert_eq!(pairs.get("response_type").map(String::as_str), Some("code"));
        assert_eq!(pairs.get("scope").map(String::as_str), Some("read"));
        assert_eq!(pairs.get("state"), Some(&request.state));
        assert_eq!(
            pairs.get("code_challenge_method").map(String::as_str),
            Some("S256")
        );
        assert_eq!(
            pairs.get("code_challenge"),
            Some(&pkce_challenge(request.code_verifier.expose()))
        );
        assert!(!request
            .url
            .as_str()
            .contains(request.code_verifier.expose()));
    }
}
