//! Credentials in requests and replies: every field checked and named, secrets masked on the way out.
use tonic::Status;

use crate::proto::v1 as pb;
use crate::secrets::{mask, Secret};
use crate::store::credentials::{CredentialsRecord, OAuthClientRecord, OAuthTokensRecord};

use super::convert::timestamp_to_proto;

/// The longest secret accepted.
const MAX_SECRET_LEN: usize = 4096;

pub(super) fn secret_field(field: &str, value: &str) -> Result<Secret, Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!("{field}: required")));
    }
    if value.len() > MAX_SECRET_LEN || value.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!(
            "{field}: must be at most {MAX_SECRET_LEN} printable characters"
        )));
    }
    Ok(Secret::new(value))
}

pub(super) fn plain_field(field: &str, value: &str) -> Result<String, Status> {
    secret_field(field, value).map(|secret| secret.expose().to_owned())
}

fn oauth_client(
    prefix: &str,
    message: &pb::OAuthClientCredentials,
) -> Result<CredentialsRecord, Status> {
    Ok(CredentialsRecord::OAuthClient(OAuthClientRecord {
        client_id: plain_field(&format!("{prefix}.client_id"), &message.client_id)?,
        client_secret: secret_field(&format!("{prefix}.client_secret"), &message.client_secret)?,
    }))
}

fn oauth_tokens(prefix: &str, message: &pb::OAuthTokens) -> Result<CredentialsRecord, Status> {
    let client = match (
        message.client_id.is_empty(),
        message.client_secret.is_empty(),
    ) {
        (true, true) => None,
        (false, false) => Some(OAuthClientRecord {
            client_id: plain_field(&format!("{prefix}.client_id"), &message.client_id)?,
            client_secret: secret_field(
                &format!("{prefix}.client_secret"),
                &message.client_secret,
            )?,
        }),
        (true, false) => {
            return Err(Status::invalid_argument(format!(
                "{prefix}.client_id: required with client_secret"
            )))
        }
        (false, true) => {
            return Err(Status::invalid_argument(format!(
                "{prefix}.client_secret: required with client_id"
            )))
        }
    };
    Ok(CredentialsRecord::OAuthTokens(OAuthTokensRecord {
        access_token: secret_field(&format!("{prefix}.access_token"), &message.access_token)?,
        refresh_token: secret_field(&format!("{prefix}.refresh_token"), &message.refresh_token)?,
        expires_at: None,
        client,
    }))
}

fn api_token(prefix: &str, message: &pb::ApiTokenCredentials) -> Result<CredentialsRecord, Status> {
    crate::domain::account::validate_email(&message.email)
        .map_err(|reason| Status::invalid_argument(format!("{prefix}.email: {reason}")))?;
    Ok(CredentialsRecord::ApiToken {
        email: message.email.clone(),
        token: secret_field(&format!("{prefix}.token"), &message.token)?,
    })
}

/// The credentials oneof of a request (`ConfigureRequest`, `ChangeLoginRequest`), checked and named.
pub(super) trait CredentialsOneof {
    /// The chosen kind, as its three possible messages.
    fn kind(&self) -> CredentialsKind<'_>;
}

/// The credentials a request chose, borrowed from it.
pub(super) enum CredentialsKind<'a> {
    /// `oauth_client`.
    OAuthClient(&'a pb::OAuthClientCredentials),
    /// `oauth`.
    OAuth(&'a pb::OAuthTokens),
    /// `api_token`.
    ApiToken(&'a pb::ApiTokenCredentials),
}

macro_rules! credentials_oneof {
    ($($oneof:ty),*) => {$(
        impl CredentialsOneof for $oneof {
            fn kind(&self) -> CredentialsKind<'_> {
                match self {
                    Self::OauthClient(message) => CredentialsKind::OAuthClient(message),
                    Self::Oauth(message) => CredentialsKind::OAuth(message),
                    Self::ApiToken(message) => CredentialsKind::ApiToken(message),
                }
            }
        }
    )*};
}

credentials_oneof!(
    pb::configure_request::Credentials,
    pb::change_login_request::Credentials
);

/// The credentials of a request as the store keeps them; every field checked and named.
pub(super) fn request_credentials(
    credentials: Option<&impl CredentialsOneof>,
) -> Result<CredentialsRecord, Status> {
    match credentials.map(CredentialsOneof::kind) {
        Some(CredentialsKind::OAuthClient(message)) => oauth_client("oauth_client", message),
        Some(CredentialsKind::OAuth(message)) => oauth_tokens("oauth", message),
        Some(CredentialsKind::ApiToken(message)) => api_token("api_token", message),
        None => Err(Status::invalid_argument(
            "credentials: one of oauth_client, oauth or api_token is required",
        )),
    }
}

pub(super) fn masked_credentials(credentials: &CredentialsRecord) -> pb::MaskedCredentials {
    match credentials {
        CredentialsRecord::OAuthClient(client) => pb::MaskedCredentials {
            kind: pb::CredentialKind::OauthClient as i32,
            client_id: client.client_id.clone(),
            client_secret_masked: mask(client.client_secret.expose()),
            ..Default::default()
        },
        CredentialsRecord::OAuthTokens(tokens) => pb::MaskedCredentials {
            kind: pb::CredentialKind::Oauth as i32,
            client_id: tokens
                .client
                .as_ref()
                .map(|c| c.client_id.clone())
                .unwrap_or_default(),
            client_secret_masked: tokens
                .client
                .as_ref()
                .map(|c| mask(c.client_secret.expose()))
                .unwrap_or_default(),
            access_token_masked: mask(tokens.access_token.expose()),
            refresh_token_masked: mask(tokens.refresh_token.expose()),
            access_token_expires_at: tokens.expires_at.map(timestamp_to_proto),
            ..Default::default()
        },
        CredentialsRecord::ApiToken { email, token } => pb::MaskedCredentials {
            kind: pb::CredentialKind::ApiToken as i32,
            email: email.clone(),
            token_masked: mask(token.expose()),
            ..Default::default()
        },
    }
}
