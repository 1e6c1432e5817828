//! The one error type of the Zendesk client, and the parsing of Zendesk's error bodies.
use std::time::Duration;

use serde::Deserialize;

/// Everything that can go wrong talking to Zendesk. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum ZendeskError {
    /// The credentials were refused (HTTP 401), or a token could not be minted or refreshed.
    #[error("Zendesk refused the credentials (HTTP {status}): {message}")]
    Authentication {
        /// HTTP status Zendesk answered with (401, or the token endpoint's status).
        status: u16,
        /// Zendesk's own reason, or ours when Zendesk gave none.
        message: String,
    },
    /// The credentials are valid but may not do this (HTTP 403, or an end-user / anonymous identity).
    #[error("Zendesk denied access: {message}")]
    PermissionDenied {
        /// Zendesk's own reason, or ours when Zendesk gave none.
        message: String,
    },
    /// Zendesk kept answering 429 beyond what the client is willing to wait.
    #[error("Zendesk rate limit exceeded on {endpoint} (retry after {retry_after:?})")]
    RateLimited {
        /// Endpoint that was rate limited.
        endpoint: String,
        /// The wait Zendesk asked for on its last answer, if it said.
        retry_after: Option<Duration>,
    },
    /// Connecting, sending or receiving failed below HTTP (after the allowed retries).
    #[error("could not reach Zendesk at {endpoint}: {message}")]
    Transport {
        /// Endpoint that was being called.
        endpoint: String,
        /// What went wrong, without URLs' query strings or headers.
        message: String,
    },
    /// The request did not complete within the configured timeout (after the allowed retries).
    #[error("Zendesk did not answer {endpoint} in time")]
    Timeout {
        /// Endpoint that timed out.
        endpoint: String,
    },
    /// Zendesk answered with a 5xx status (after the allowed retries).
    #[error("Zendesk server error on {endpoint} (HTTP {status}): {message}")]
    Server {
        /// Endpoint that failed.
        endpoint: String,
        /// The 5xx status.
        status: u16,
        /// Zendesk's message, if its body had one.
        message: String,
    },
    /// Zendesk answered with a status zdsync does not expect (404, 422, 3xx, ...). Never retried.
    #[error("unexpected answer from Zendesk on {endpoint} (HTTP {status}): {message}")]
    UnexpectedStatus {
        /// Endpoint that answered.
        endpoint: String,
        /// The status.
        status: u16,
        /// Zendesk's message, if its body had one.
        message: String,
    },
    /// A response body did not have the shape zdsync needs.
    #[error("malformed Zendesk response from {endpoint}{}: {detail}", record_id.map(|id| format!(" (record {id})")).unwrap_or_default())]
    Malformed {
        /// Endpoint that answered.
        endpoint: String,
        /// Id of the record that was bad, when the bad part belongs to one.
        record_id: Option<u64>,
        /// The field path and what was wrong with it.
        detail: String,
    },
    /// The response body grew past the configured cap.
    #[error("Zendesk response from {endpoint} exceeded {limit} bytes")]
    TooLarge {
        /// Endpoint that answered.
        endpoint: String,
        /// The configured cap in bytes.
        limit: u64,
    },
    /// The client settings or credentials given are unusable.
    #[error("invalid Zendesk client settings: {0}")]
    InvalidSettings(String),
    /// Rotated OAuth tokens could not be stored, so they were not used.
    #[error("could not persist the rotated OAuth tokens: {0}")]
    TokenPersist(String),
}

/// The broad class of a [`ZendeskError`], as the sync engine and `GetStatus` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZendeskErrorKind {
    /// The credentials failed or lack permission: stop until the login changes.
    Authentication,
    /// Zendesk's rate limit, a network fault, a timeout or a 5xx: try again later.
    Unavailable,
    /// Zendesk's answer could not be used: a bug or an API change.
    Malformed,
    /// The configuration is wrong.
    Configuration,
}

impl ZendeskError {
    /// The broad class of this error.
    pub fn kind(&self) -> ZendeskErrorKind {
        match self {
            Self::Authentication { .. } | Self::PermissionDenied { .. } => {
                ZendeskErrorKind::Authentication
            }
            Self::RateLimited { .. }
            | Self::Transport { .. }
            | Self::Timeout { .. }
            | Self::Server { .. }
            | Self::TokenPersist(_) => ZendeskErrorKind::Unavailable,
            Self::Malformed { .. } | Self::TooLarge { .. } | Self::UnexpectedStatus { .. } => {
                ZendeskErrorKind::Malformed
            }
            Self::InvalidSettings(_) => ZendeskErrorKind::Configuration,
        }
    }

    /// Whether Zendesk answered 403: for the ticket events export this means "fall back to
    /// snapshots" (DESIGN 1.4) rather than "stop the run".
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Self::PermissionDenied { .. })
    }

    /// Whether this error means the credentials must change before syncing can go on.
    pub fn is_auth_failure(&self) -> bool {
        self.kind() == ZendeskErrorKind::Authentication
    }
}

/// The message out of a Zendesk error body, whichever of its shapes it uses.
///
/// Shapes: `{"error": "Code", "description": "text"}`, `{"error": {"title", "message"}}`,
/// `{"errors": [{"code", "title", "detail"}]}`, and anything else (plain text, HTML), which
/// yields a short, single-line excerpt.
pub fn error_message(body: &[u8]) -> String {
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
        if let Some(message) = parsed.message() {
            // Zendesk's text is remote input: one line, escaped and capped wherever it is shown.
            return crate::domain::text::remote(&message);
        }
    }
    plain_excerpt(body)
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<ErrorField>,
    #[serde(default, alias = "error_description")]
    description: Option<String>,
    #[serde(default)]
    errors: Option<Vec<ErrorItem>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorField {
    Code(String),
    Object {
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        message: Option<String>,
    },
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

impl ErrorBody {
    fn message(&self) -> Option<String> {
        let from_error = match &self.error {
            Some(ErrorField::Code(code)) => {
                Some(join_parts([Some(code), self.description.as_ref()]))
            }
            Some(ErrorField::Object { title, message }) => {
                Some(join_parts([title.as_ref(), message.as_ref()]))
            }
            None => self.description.clone(),
        };
        let from_errors = self.errors.as_ref().map(|items| {
            items
                .iter()
                .map(|item| {
                    join_parts([
                        item.code.as_ref(),
                        item.title.as_ref(),
                        item.detail.as_ref(),
                    ])
                })
                .filter(|text| !text.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        });
        [from_error, from_errors]
            .into_iter()
            .flatten()
            .find(|text| !text.is_empty())
    }
}

fn join_parts<const N: usize>(parts: [Option<&String>; N]) -> String {
    parts
        .into_iter()
        .flatten()
        .map(|part| part.trim())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

fn plain_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        return "no message".to_owned();
    }
    crate::domain::text::remote(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::text::REMOTE_TEXT_CHARS as EXCERPT_CHARS;

    #[test]
    fn classic_shape_joins_code_and_description() {
        let body = br#"{"error":"RecordNotFound","description":"Not found"}"#;
        assert_eq!(error_message(body), "RecordNotFound: Not found");
    }

    #[test]
    fn object_shape_joins_title_and_message() {
        let body = br#"{"error":{"title":"Invalid attribute","message":"bad"}}"#;
        assert_eq!(error_message(body), "Invalid attribute: bad");
    }

    #[test]
    fn errors_array_shape() {
        let body = br#"{"errors":[{"code":"TooManyRequests","title":"Slow down"},{"code":"X","detail":"y"}]}"#;
        assert_eq!(error_message(body), "TooManyRequests: Slow down; X: y");
    }

    #[test]
    fn json_messages_are_escaped_and_capped_too() {
        let huge = format!(
            r#"{{"error":"Forged","description":"line\n2026-12-06T00:00:00Z ERROR fake \u001b[31m{}"}}"#,
            "z".repeat(3_000_000)
        );
        let message = error_message(huge.as_bytes());
        assert!(
            !message.contains('\n') && !message.contains('\u{1b}'),
            "{message:.80}"
        );
        assert!(message.chars().count() <= EXCERPT_CHARS + 1);
        assert!(message.starts_with("Forged: line\\n2026"), "{message:.80}");
    }

    #[test]
    fn plain_text_is_excerpted_on_one_line() {
        assert_eq!(
            error_message(b"<html>\n Too   many\n</html>"),
            "<html> Too many </html>"
        );
        assert_eq!(error_message(b""), "no message");
        let long = "a".repeat(500);
        assert_eq!(
            error_message(long.as_bytes()).chars().count(),
            EXCERPT_CHARS + 1
        );
    }
}
