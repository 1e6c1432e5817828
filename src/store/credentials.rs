//! The Zendesk credentials file in the data directory: 0600, written atomically, never logged.
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::secrets::{self, Secret, SecretError};

/// File name of the credentials inside the data directory.
pub const CREDENTIALS_FILE: &str = "zendesk-credentials.json";

/// Why the credentials file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Reading or writing failed, or the file is too open.
    #[error(transparent)]
    File(#[from] SecretError),
    /// The file is not what zdsync writes.
    #[error("{path}: not a zdsync credentials file ({detail})")]
    Format {
        /// The file.
        path: PathBuf,
        /// What failed to parse (no secret values).
        detail: String,
    },
}

/// Zendesk credentials as zdsync keeps them (the sync converts them to the client's at its boundary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsRecord {
    /// An OAuth client for the client-credentials grant.
    OAuthClient(OAuthClientRecord),
    /// A token pair from the authorization-code flow.
    OAuthTokens(OAuthTokensRecord),
    /// A legacy API token.
    ApiToken {
        /// The agent's email.
        email: String,
        /// The API token.
        token: Secret,
    },
}

/// A confidential OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClientRecord {
    /// The client's id.
    pub client_id: String,
    /// The client's secret.
    pub client_secret: Secret,
}

/// An OAuth token pair, with the client that refreshes it when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthTokensRecord {
    /// The access token.
    pub access_token: Secret,
    /// The refresh token (Zendesk rotates both on each refresh).
    pub refresh_token: Secret,
    /// When the access token expires, when Zendesk said.
    pub expires_at: Option<DateTime<Utc>>,
    /// The client the pair was issued to (the refresh grant needs it).
    pub client: Option<OAuthClientRecord>,
}

impl CredentialsRecord {
    /// The kind's name as `GetIntegration` and the integration record spell it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::OAuthClient(_) => "oauth_client",
            Self::OAuthTokens(_) => "oauth",
            Self::ApiToken { .. } => "api_token",
        }
    }
}

/// The file's JSON shape.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredCredentials {
    OauthClient {
        client_id: String,
        client_secret: String,
    },
    Oauth {
        access_token: String,
        refresh_token: String,
        expires_at: Option<DateTime<Utc>>,
        client_id: Option<String>,
        client_secret: Option<String>,
    },
    ApiToken {
        email: String,
        token: String,
    },
}

impl From<&CredentialsRecord> for StoredCredentials {
    fn from(credentials: &CredentialsRecord) -> Self {
        match credentials {
            CredentialsRecord::OAuthClient(client) => StoredCredentials::OauthClient {
                client_id: client.client_id.clone(),
                client_secret: client.client_secret.expose().to_owned(),
            },
            CredentialsRecord::OAuthTokens(tokens) => StoredCredentials::Oauth {
                access_token: tokens.access_token.expose().to_owned(),
                refresh_token: tokens.refresh_token.expose().to_owned(),
                expires_at: tokens.expires_at,
                client_id: tokens.client.as_ref().map(|c| c.client_id.clone()),
                client_secret: tokens
                    .client
                    .as_ref()
                    .map(|c| c.client_secret.expose().to_owned()),
            },
            CredentialsRecord::ApiToken { email, token } => StoredCredentials::ApiToken {
                email: email.clone(),
                token: token.expose().to_owned(),
            },
        }
    }
}

impl From<StoredCredentials> for CredentialsRecord {
    fn from(stored: StoredCredentials) -> Self {
        match stored {
            StoredCredentials::OauthClient {
                client_id,
                client_secret,
            } => CredentialsRecord::OAuthClient(OAuthClientRecord {
                client_id,
                client_secret: Secret::new(client_secret),
            }),
            StoredCredentials::Oauth {
                access_token,
                refresh_token,
                expires_at,
                client_id,
                client_secret,
            } => CredentialsRecord::OAuthTokens(OAuthTokensRecord {
                access_token: Secret::new(access_token),
                refresh_token: Secret::new(refresh_token),
                expires_at,
                client: match (client_id, client_secret) {
                    (Some(client_id), Some(secret)) => Some(OAuthClientRecord {
                        client_id,
                        client_secret: Secret::new(secret),
                    }),
                    _ => None,
                },
            }),
            StoredCredentials::ApiToken { email, token } => CredentialsRecord::ApiToken {
                email,
                token: Secret::new(token),
            },
        }
    }
}

/// Path of the credentials file in `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(CREDENTIALS_FILE)
}

/// Writes the credentials durably (temp file, fsync, rename) with mode 0600.
pub fn save(data_dir: &Path, credentials: &CredentialsRecord) -> Result<(), CredentialsError> {
    let json = serde_json::to_vec(&StoredCredentials::from(credentials)).map_err(|err| {
        CredentialsError::Format {
            path: path(data_dir),
            detail: err.to_string(),
        }
    })?;
    secrets::write_private_file(&path(data_dir), &json)?;
    Ok(())
}

/// Reads the credentials, if the file exists; refuses a file group or others can read.
pub fn load(data_dir: &Path) -> Result<Option<CredentialsRecord>, CredentialsError> {
    let file = path(data_dir);
    if !file.exists() {
        return Ok(None);
    }
    let bytes = secrets::read_private_file(&file)?;
    let stored: StoredCredentials =
        serde_json::from_slice(&bytes).map_err(|err| CredentialsError::Format {
            path: file.clone(),
            // serde_json's message names a line and column, never the value.
            detail: format!("line {} column {}", err.line(), err.column()),
        })?;
    Ok(Some(stored.into()))
}

/// Removes the credentials file (a missing file is fine).
pub fn remove(data_dir: &Path) -> Result<(), CredentialsError> {
    let file = path(data_dir);
    match std::fs::remove_file(&file) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SecretError::Io { path: file, source }.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn every_kind_round_trips_through_a_0600_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kinds = [
            CredentialsRecord::OAuthClient(OAuthClientRecord {
                client_id: "id".into(),
                client_secret: Secret::new("secret"),
            }),
            CredentialsRecord::OAuthTokens(OAuthTokensRecord {
                access_token: Secret::new("access"),
                refresh_token: Secret::new("refresh"),
                expires_at: DateTime::from_timestamp(1_800_000_000, 0),
                client: Some(OAuthClientRecord {
                    client_id: "id".into(),
                    client_secret: Secret::new("secret"),
                }),
            }),
            CredentialsRecord::ApiToken {
                email: "a@b.test".into(),
                token: Secret::new("tok"),
            },
        ];
        for credentials in kinds {
            save(dir.path(), &credentials).expect("save");
            let mode = std::fs::metadata(path(dir.path()))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
            assert_eq!(load(dir.path()).expect("load"), Some(credentials));
        }
        remove(dir.path()).expect("remove");
        assert_eq!(load(dir.path()).expect("load"), None);
    }
}
