//! HTTP plumbing every route shares: Zendesk's JSON responses and error bodies, query
//! parameters and URL encoding. A leaf: it imports no other simulator module.
use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::Query;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The query string of a request, by name.
pub(crate) type Params = Query<HashMap<String, String>>;

/// A JSON response with Zendesk's content type.
pub(crate) fn json_body(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// `value` serialized into a 200 JSON response (`capacity` is a size hint); a 500 if it cannot
/// be encoded.
pub(crate) fn serialize_body<T: Serialize>(value: &T, capacity: usize) -> Response {
    let mut body = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => json_body(StatusCode::OK, body),
        Err(e) => zendesk_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            &format!("cannot encode the response: {e}"),
        ),
    }
}

/// `{"error": code, "description": text}` with `status`.
pub(crate) fn zendesk_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "description": description });
    json_body(status, body.to_string().into_bytes())
}

/// `{"error": code, "error_description": text}`, the OAuth error shape.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description });
    json_body(status, body.to_string().into_bytes())
}

/// A 404 `RecordNotFound` with `description`.
pub(crate) fn not_found(description: &str) -> Response {
    zendesk_error(StatusCode::NOT_FOUND, "RecordNotFound", description)
}

/// 401 exactly as Zendesk words it.
pub(crate) fn unauthorized() -> Response {
    json_body(
        StatusCode::UNAUTHORIZED,
        br#"{"error":"Couldn't authenticate you"}"#.to_vec(),
    )
}

/// 403 exactly as Zendesk words it.
pub(crate) fn forbidden() -> Response {
    zendesk_error(
        StatusCode::FORBIDDEN,
        "Forbidden",
        "You do not have access to this page. Please contact the account owner of this help desk for further help.",
    )
}

/// 429 with `Retry-After`.
pub(crate) fn too_many_requests(retry_after_secs: u32) -> Response {
    let mut response = zendesk_error(
        StatusCode::TOO_MANY_REQUESTS,
        "APIRateLimitExceeded",
        "Number of allowed API requests per minute exceeded",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

/// A 400 with Zendesk's `{"error", "description"}` body, kept small until it is rendered.
#[derive(Debug)]
pub(crate) struct BadRequest {
    error: &'static str,
    description: String,
}

impl BadRequest {
    /// A 400 with `error` and `description`.
    pub(crate) fn new(error: &'static str, description: &str) -> Self {
        Self {
            error,
            description: description.to_string(),
        }
    }
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        zendesk_error(StatusCode::BAD_REQUEST, self.error, &self.description)
    }
}

/// The page size in `params[key]`: `max` when absent, at most `max`, at least 1.
pub(crate) fn per_page(
    params: &HashMap<String, String>,
    key: &str,
    max: usize,
) -> Result<usize, BadRequest> {
    match params.get(key) {
        None => Ok(max),
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n.min(max)),
            _ => Err(BadRequest::new(
                "InvalidPaginationParameter",
                &format!("{key} must be a positive integer"),
            )),
        },
    }
}

/// The Unix time in `params[key]`, if present.
pub(crate) fn unix_param(
    params: &HashMap<String, String>,
    key: &str,
) -> Result<Option<i64>, BadRequest> {
    params
        .get(key)
        .map(|raw| {
            raw.trim().parse::<i64>().map_err(|_| {
                BadRequest::new(
                    "InvalidValue",
                    &format!("{key} must be a Unix epoch time in seconds"),
                )
            })
        })
        .transpose()
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `&per_page=N` when the request named a page size (next-page links keep it).
pub(crate) fn per_page_suffix(per_page: Option<&String>) -> String {
    per_page.map_or_else(String::new, |n| format!("&per_page={}", percent_encode(n)))
}

/// Whether a peer may use the control API.
pub(crate) fn is_local_peer(peer: SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_peers_are_local() {
        assert!(is_local_peer("127.0.0.1:5".parse().unwrap()));
        assert!(is_local_peer("[::1]:5".parse().unwrap()));
        assert!(is_local_peer("[::ffff:127.0.0.1]:5".parse().unwrap()));
        assert!(!is_local_peer("10.0.0.1:5".parse().unwrap()));
        assert!(!is_local_peer("[2001:db8::1]:5".parse().unwrap()));
    }

    #[test]
    fn query_helpers() {
        assert_eq!(percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(percent_encode("AZaz09-._~"), "AZaz09-._~");
        let params: HashMap<String, String> = [("per_page".to_string(), "5000".to_string())].into();
        assert_eq!(per_page(&params, "per_page", 1000).unwrap(), 1000);
        assert_eq!(per_page(&params, "page[size]", 100).unwrap(), 100);
        let zero: HashMap<String, String> = [("per_page".to_string(), "0".to_string())].into();
        assert!(per_page(&zero, "per_page", 1000).is_err());
        assert_eq!(per_page_suffix(None), "");
        assert_eq!(per_page_suffix(Some(&"7".to_string())), "&per_page=7");
    }
}
