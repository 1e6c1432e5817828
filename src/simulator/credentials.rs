//! The credentials the simulator accepts, and their defaults.

/// Email of the API-token user (HTTP basic `admin@example.com/token:simulator-token`).
pub const DEFAULT_API_TOKEN_EMAIL: &str = "admin@example.com";
/// The API token accepted by default.
pub const DEFAULT_API_TOKEN: &str = "simulator-token";
/// The OAuth client id accepted by default.
pub const DEFAULT_CLIENT_ID: &str = "zdsync-sim";
/// The OAuth client secret accepted by default.
pub const DEFAULT_CLIENT_SECRET: &str = "simulator-secret";

/// The credentials the simulator accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Email half of the API-token basic credentials.
    pub api_token_email: String,
    /// The API token.
    pub api_token: String,
    /// The confidential OAuth client's id.
    pub client_id: String,
    /// The confidential OAuth client's secret.
    pub client_secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("api_token_email", &self.api_token_email)
            .field("api_token", &"<redacted>")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            api_token_email: DEFAULT_API_TOKEN_EMAIL.into(),
            api_token: DEFAULT_API_TOKEN.into(),
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
        }
    }
}
