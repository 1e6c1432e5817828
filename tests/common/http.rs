//! HTTP plumbing of the tests that talk to the simulator directly.
use serde_json::Value;

/// Sends `request` and parses its JSON body (panics on a transport or decoding error).
pub async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("send the request")
        .json()
        .await
        .expect("a JSON body")
}

/// Sends `request` with the simulator's default API token and parses its JSON body; `what`
/// names the request in a failure.
pub async fn api_json(request: reqwest::RequestBuilder, what: &str) -> Value {
    request
        .basic_auth(
            format!("{}/token", zdsync::simulator::DEFAULT_API_TOKEN_EMAIL),
            Some(zdsync::simulator::DEFAULT_API_TOKEN),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .error_for_status()
        .unwrap_or_else(|e| panic!("{what} answers 200: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{what} body: {e}"))
}
