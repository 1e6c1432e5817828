//! The OAuth endpoints `/oauth/tokens` and `/oauth/authorizations/new`.
use std::sync::Arc;

use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::admission::admit;
use super::endpoint::Endpoint;
use super::http::{oauth_error, percent_encode};
use super::state::Shared;
use super::tokens::{
    constant_eq, random_token, AccessToken, AuthorizationCode, RefreshToken, CODE_TTL, REFRESH_TTL,
};

/// The fields of a token request, JSON or form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
}

/// Client credentials from HTTP basic (`client_secret_basic`), if sent that way.
fn basic_client(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(credentials.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// `POST /oauth/tokens`.
pub(crate) async fn tokens(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let headers = request.headers().clone();
    let admission = match admit(&shared, Endpoint::OauthTokens, &headers, false).await {
        Ok(admission) => admission,
        Err(response) => return response,
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let body = if is_json {
        Json::<TokenRequest>::from_request(request, &())
            .await
            .map(|Json(b)| b)
            .map_err(|e| e.body_text())
    } else {
        Form::<TokenRequest>::from_request(request, &())
            .await
            .map(|Form(b)| b)
            .map_err(|e| e.body_text())
    };
    let mut body = match body {
        Ok(body) => body,
        Err(reason) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("unreadable token request: {reason}"),
            )
        }
    };
    if body.client_id.is_none() {
        if let Some((id, secret)) = basic_client(&headers) {
            body.client_id = Some(id);
            body.client_secret = Some(secret);
        }
    }
    let response = token_grant(&shared, &body);
    admission.finish(response)
}

fn token_grant(shared: &Shared, body: &TokenRequest) -> Response {
    let expected = &shared.credentials;
    let client_ok = body
        .client_id
        .as_deref()
        .is_some_and(|id| id == expected.client_id)
        && body
            .client_secret
            .as_deref()
            .is_some_and(|s| constant_eq(s, &expected.client_secret));
    let grant = body.grant_type.as_deref().unwrap_or("");
    if !matches!(
        grant,
        "client_credentials" | "authorization_code" | "refresh_token"
    ) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        );
    }
    if !client_ok {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
        );
    }
    if let Some(scope) = body.scope.as_deref() {
        if scope
            .split([' ', ','])
            .any(|s| !s.is_empty() && s != "read")
        {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "The requested scope is invalid, unknown, or malformed.",
            );
        }
    }
    let now = shared.now_unix();
    let mut store = shared.tokens();
    store.prune(now);
    let with_refresh = match grant {
        "client_credentials" => false,
        "authorization_code" => {
            let Some(code) = body.code.as_deref() else {
                return invalid_grant("code is missing");
            };
            // A code is single-use: taken out whether or not the rest checks out.
            let Some(issued) = store.codes.remove(code) else {
                return invalid_grant("The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.");
            };
            if issued.expires_at <= now || issued.client_id != expected.client_id {
                return invalid_grant("The authorization code has expired.");
            }
            if body
                .redirect_uri
                .as_deref()
                .is_some_and(|r| r != issued.redirect_uri)
            {
                return invalid_grant("The redirect_uri does not match the authorization request.");
            }
            if let Some(challenge) = &issued.code_challenge {
                let Some(verifier) = body.code_verifier.as_deref() else {
                    return invalid_grant("code_verifier is missing.");
                };
                let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                if !constant_eq(&computed, challenge) {
                    return invalid_grant("The code_verifier does not match the code_challenge.");
                }
            }
            true
        }
        _ => {
            let Some(token) = body.refresh_token.as_deref() else {
                return invalid_grant("refresh_token is missing");
            };
            let Some(old) = store.refresh.remove(token) else {
                return invalid_grant("The provided refresh token is invalid, expired or revoked.");
            };
            if old.client_id != expected.client_id {
                return invalid_grant("The refresh token was issued to another client.");
            }
            // Rotation: the old pair stops working.
            store.access.remove(&old.access_token);
            true
        }
    };
    let ttl = i64::try_from(shared.access_token_ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let access_token = random_token("sim_at_");
    store.access.insert(
        access_token.clone(),
        AccessToken {
            expires_at: now.saturating_add(ttl),
        },
    );
    let mut out = serde_json::json!({
        "access_token": access_token,
        "token_type": "bearer",
        "scope": "read",
        "expires_in": ttl,
    });
    if with_refresh {
        let refresh_token = random_token("sim_rt_");
        store.refresh.insert(
            refresh_token.clone(),
            RefreshToken {
                client_id: expected.client_id.clone(),
                access_token,
                expires_at: now + REFRESH_TTL,
            },
        );
        out["refresh_token"] = refresh_token.into();
        out["refresh_token_expires_in"] = REFRESH_TTL.into();
    }
    (StatusCode::OK, Json(out)).into_response()
}

/// Query of `GET /oauth/authorizations/new`.
#[derive(Debug, Deserialize)]
pub(crate) struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// `GET /oauth/authorizations/new`: approves at once and redirects with a code.
pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<AuthorizeQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let admission = match admit(&shared, Endpoint::OauthAuthorize, &headers, false).await {
        Ok(admission) => admission,
        Err(response) => return response,
    };
    let Ok(Query(query)) = query else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unreadable query",
        );
    };
    let bad = |d: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", d);
    if query.response_type.as_deref() != Some("code") {
        return bad("response_type must be code");
    }
    if query.client_id.as_deref() != Some(shared.credentials.client_id.as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "unknown client_id",
        );
    }
    let Some(redirect_uri) = query.redirect_uri.filter(|r| r.starts_with("http")) else {
        return bad("redirect_uri is missing or not an http(s) URL");
    };
    if query
        .scope
        .as_deref()
        .is_some_and(|s| s.split([' ', ',']).any(|p| !p.is_empty() && p != "read"))
    {
        return bad("only the read scope is available");
    }
    if query.code_challenge.is_some()
        && query.code_challenge_method.as_deref().unwrap_or("S256") != "S256"
    {
        return bad("code_challenge_method must be S256");
    }
    let code = random_token("sim_code_");
    let now = shared.now_unix();
    {
        let mut store = shared.tokens();
        store.prune(now);
        store.codes.insert(
            code.clone(),
            AuthorizationCode {
                client_id: shared.credentials.client_id.clone(),
                redirect_uri: redirect_uri.clone(),
                code_challenge: query.code_challenge,
                expires_at: now + CODE_TTL,
            },
        );
    }
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let mut location = format!("{redirect_uri}{separator}code={}", percent_encode(&code));
    if let Some(state) = query.state {
        location.push_str(&format!("&state={}", percent_encode(&state)));
    }
    admission.finish((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
}
