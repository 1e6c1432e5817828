//! Credentials on a request: the API token (HTTP basic), OAuth access tokens (Bearer), and the
//! store of issued tokens and codes.
use std::collections::HashMap;

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::Rng;
use subtle::ConstantTimeEq;

use super::credentials::Credentials;

/// Authorization codes live this long (seconds).
pub(crate) const CODE_TTL: i64 = 600;
/// Refresh tokens live this long (seconds).
pub(crate) const REFRESH_TTL: i64 = 30 * 86_400;

/// A minted access token.
#[derive(Debug, Clone)]
pub(crate) struct AccessToken {
    pub(crate) expires_at: i64,
}

/// A minted refresh token and the access token it came with.
#[derive(Debug, Clone)]
pub(crate) struct RefreshToken {
    pub(crate) client_id: String,
    pub(crate) access_token: String,
    pub(crate) expires_at: i64,
}

/// An authorization code waiting for its exchange.
#[derive(Debug, Clone)]
pub(crate) struct AuthorizationCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: Option<String>,
    pub(crate) expires_at: i64,
}

/// Issued tokens and codes.
#[derive(Debug, Default)]
pub(crate) struct TokenStore {
    pub(crate) access: HashMap<String, AccessToken>,
    pub(crate) refresh: HashMap<String, RefreshToken>,
    pub(crate) codes: HashMap<String, AuthorizationCode>,
}

impl TokenStore {
    /// Drops every expired token and code.
    pub(crate) fn prune(&mut self, now: i64) {
        self.access.retain(|_, t| t.expires_at > now);
        self.refresh.retain(|_, t| t.expires_at > now);
        self.codes.retain(|_, c| c.expires_at > now);
    }

    /// Whether `token` is a live access token.
    pub(crate) fn access_valid(&self, token: &str, now: i64) -> bool {
        self.access.get(token).is_some_and(|t| t.expires_at > now)
    }
}

/// A fresh random token with `prefix`.
pub(crate) fn random_token(prefix: &str) -> String {
    let bytes: [u8; 24] = rand::rng().random();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// String equality in constant time.
pub(crate) fn constant_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Whether the request carries the API token or a live Bearer token.
///
/// `bearer_valid` says whether a Bearer token is live.
pub(crate) fn authenticated(
    headers: &HeaderMap,
    expected: &Credentials,
    bearer_valid: impl FnOnce(&str) -> bool,
) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return bearer_valid(credentials);
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let Some(decoded) = STANDARD
            .decode(credentials)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        else {
            return false;
        };
        let Some((user, token)) = decoded.split_once(':') else {
            return false;
        };
        let Some(email) = user.strip_suffix("/token") else {
            return false;
        };
        return email.eq_ignore_ascii_case(&expected.api_token_email)
            && constant_eq(token, &expected.api_token);
    }
    false
}
