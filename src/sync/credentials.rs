//! Stored credentials and the Zendesk client's, converted both ways at the sync's boundary.
use crate::store::credentials::{CredentialsRecord, OAuthClientRecord, OAuthTokensRecord};
use crate::zendesk::{Credentials, OAuthClient, OAuthTokens};

/// An OAuth client as the Zendesk client takes it.
pub(crate) fn to_client_oauth(client: OAuthClientRecord) -> OAuthClient {
    OAuthClient {
        client_id: client.client_id,
        client_secret: client.client_secret,
    }
}

fn client_record(client: OAuthClient) -> OAuthClientRecord {
    OAuthClientRecord {
        client_id: client.client_id,
        client_secret: client.client_secret,
    }
}

/// A token pair as the store keeps it.
pub(crate) fn tokens_record(tokens: OAuthTokens) -> OAuthTokensRecord {
    OAuthTokensRecord {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        expires_at: tokens.expires_at,
        client: tokens.client.map(client_record),
    }
}

/// Stored credentials as the Zendesk client takes them.
pub(crate) fn to_client(credentials: CredentialsRecord) -> Credentials {
    match credentials {
        CredentialsRecord::OAuthClient(client) => Credentials::OAuthClient(to_client_oauth(client)),
        CredentialsRecord::OAuthTokens(tokens) => Credentials::OAuthTokens(OAuthTokens {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: tokens.expires_at,
            client: tokens.client.map(to_client_oauth),
        }),
        CredentialsRecord::ApiToken { email, token } => Credentials::ApiToken { email, token },
    }
}
