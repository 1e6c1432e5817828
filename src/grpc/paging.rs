//! Paging shared by the list RPCs: page sizes checked against their bounds, and opaque page tokens
//! (URL-safe base64 of a prefixed text, so a token of one RPC is refused by another).
use base64::Engine;
use tonic::Status;

/// The largest page any list RPC returns.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The page size a request asks for: 0 is `default`, more than [`MAX_PAGE_SIZE`] is refused.
pub(super) fn page_size(requested: impl TryInto<usize>, default: usize) -> Result<usize, Status> {
    match requested.try_into().unwrap_or(usize::MAX) {
        0 => Ok(default),
        size if size <= MAX_PAGE_SIZE => Ok(size),
        size => Err(Status::invalid_argument(format!(
            "page_size: at most {MAX_PAGE_SIZE}, got {size}"
        ))),
    }
}

/// A page token carrying `body` under `prefix`.
pub(super) fn encode_token(prefix: &str, body: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{prefix}{body}"))
}

/// The text of a page token, prefix included; `bad` is the error for anything that is not one.
pub(super) fn token_text(token: &str, bad: impl Fn() -> Status) -> Result<String, Status> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    String::from_utf8(bytes).map_err(|_| bad())
}

/// The part of a token's `text` after `prefix`; a token of an earlier format (`earlier` prefix) is refused
/// saying to list again from the start, anything else with `bad`.
pub(super) fn token_body<'t>(
    text: &'t str,
    prefix: &str,
    earlier: &str,
    bad: impl Fn() -> Status,
) -> Result<&'t str, Status> {
    match text.strip_prefix(prefix) {
        Some(rest) => Ok(rest),
        None if text.starts_with(earlier) => Err(Status::invalid_argument(
            "page_token: issued by an earlier version of zdsync; list again without page_token",
        )),
        None => Err(bad()),
    }
}

/// The body of a page token issued under `prefix`; `bad` is the error for anything else.
pub(super) fn decode_token(
    token: &str,
    prefix: &str,
    bad: impl Fn() -> Status,
) -> Result<String, Status> {
    let text = token_text(token, &bad)?;
    text.strip_prefix(prefix).map(str::to_owned).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_tokens() {
        assert_eq!(page_size(0, 50).expect("default"), 50);
        assert_eq!(page_size(7, 50).expect("given"), 7);
        assert!(page_size(-1, 50)
            .expect_err("negative")
            .message()
            .starts_with("page_size: "));
        assert!(page_size(1001, 50).is_err());
        let bad = || Status::invalid_argument("page_token: bad");
        let token = encode_token("x:", "42");
        assert_eq!(decode_token(&token, "x:", bad).expect("body"), "42");
        assert!(decode_token(&token, "y:", bad).is_err());
        assert!(decode_token("%%%", "x:", bad).is_err());
    }
}
