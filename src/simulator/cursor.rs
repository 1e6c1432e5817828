//! The opaque export cursor: base64 of `<timestamp>.0||<id>|`, as Zendesk's recordings show.
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Encodes "everything after `(timestamp, id)`".
pub(crate) fn encode(key: (i64, u64)) -> String {
    STANDARD.encode(format!("{}.0||{}|", key.0, key.1))
}

/// Decodes a cursor made by [`encode`]; None for anything else.
pub(crate) fn decode(cursor: &str) -> Option<(i64, u64)> {
    let bytes = STANDARD.decode(cursor.trim()).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let (timestamp, rest) = text.split_once("||")?;
    let timestamp = timestamp.strip_suffix(".0").unwrap_or(timestamp);
    let id = rest.strip_suffix('|')?;
    Some((timestamp.parse().ok()?, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_recorded_cursor() {
        assert_eq!(encode((1_695_052_663, 28)), "MTY5NTA1MjY2My4wfHwyOHw=");
        assert_eq!(
            decode("MTY5NTA1MjY2My4wfHwyOHw="),
            Some((1_695_052_663, 28))
        );
        assert_eq!(
            decode("MTY5NDMwMzUyNi4wfHw2MTMwODY5MTY4OTIyfA=="),
            Some((1_694_303_526, 6_130_869_168_922))
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(decode("not base64!"), None);
        assert_eq!(decode(&STANDARD.encode("12||x|")), None);
        assert_eq!(decode(""), None);
    }
}
