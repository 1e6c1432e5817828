//! Codes for what tonic rejects before a handler runs, as the contract names them: a request over the
//! size limit is `RESOURCE_EXHAUSTED` (tonic says `OUT_OF_RANGE`), and a message that does not decode
//! (invalid UTF-8 in a string field, a truncated frame) is `INVALID_ARGUMENT` (tonic says `INTERNAL`).
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::HeaderValue;

/// The start of tonic's message for a request over the decoding limit.
const TOO_LARGE: &str = "Error, decoded message length too large";
/// The start of tonic's message for a request that does not decode.
const UNDECODABLE: &str = "failed to decode Protobuf message";

/// The code a trailers-only answer should carry instead of its own, when tonic chose it.
fn corrected(code: &str, message: &str) -> Option<&'static str> {
    match code {
        // OUT_OF_RANGE -> RESOURCE_EXHAUSTED
        "11" if message.starts_with(TOO_LARGE) => Some("8"),
        // INTERNAL -> INVALID_ARGUMENT
        "13" if message.starts_with(UNDECODABLE) => Some("3"),
        _ => None,
    }
}

crate::telemetry::grpc::routes_layer! {
    /// The layer to add to the gRPC server builder.
    StatusCodesLayer =>
    /// The service [`StatusCodesLayer`] wraps around the server's routes.
    StatusCodes;
    type Response = S::Response;
    type Future = CorrectedFuture<S::Future>;
    fn call(&mut this, request) {
        CorrectedFuture {
            inner: this.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`StatusCodes`].
    #[derive(Debug)]
    pub struct CorrectedFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, ResBody, E> Future for CorrectedFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut result = std::task::ready!(self.project().inner.poll(cx));
        if let Ok(response) = result.as_mut() {
            // Errors tonic raises before a handler answers are trailers-only: the status is a header.
            let headers = response.headers_mut();
            let code = headers.get("grpc-status").and_then(|v| v.to_str().ok());
            let message = headers
                .get("grpc-message")
                .and_then(|v| v.to_str().ok())
                .map(|m| percent_decoded_prefix(m, 64));
            if let (Some(code), Some(message)) = (code, message) {
                if let Some(new) = corrected(code, &message) {
                    headers.insert("grpc-status", HeaderValue::from_static(new));
                }
            }
        }
        Poll::Ready(result)
    }
}

/// The first `max` bytes of a percent-encoded `grpc-message`, decoded (enough to recognise tonic's
/// messages, which are ASCII).
fn percent_decoded_prefix(message: &str, max: usize) -> String {
    let bytes = message.as_bytes();
    let mut out = Vec::with_capacity(max);
    let mut i = 0;
    while i < bytes.len() && out.len() < max {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => {
                let decoded = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                if let Some(byte) = decoded {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            (byte, _) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tonics_own_rejections_are_recoded() {
        assert_eq!(
            corrected(
                "11",
                "Error, decoded message length too large: found 5 bytes"
            ),
            Some("8")
        );
        assert_eq!(
            corrected("13", "failed to decode Protobuf message: invalid string"),
            Some("3")
        );
        assert_eq!(corrected("13", "store failure: boom"), None);
        assert_eq!(corrected("11", "timeframe out of range"), None);
        assert_eq!(
            percent_decoded_prefix("failed%20to%20decode%20Protobuf", 64),
            "failed to decode Protobuf"
        );
    }
}
