//! Turning response bodies into typed values, with errors that name the endpoint, record and field.
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ZendeskError;

/// Decodes a JSON body; on failure names the field path, its problem and the record id.
///
/// The fast path is plain `serde_json`; only a failing body is decoded again to find the path
/// and the id of the record the bad field belongs to, so good pages pay nothing for it.
pub fn decode_json<T: DeserializeOwned>(endpoint: &str, body: &[u8]) -> Result<T, ZendeskError> {
    match from_body(body) {
        Ok(value) => Ok(value),
        Err(_) => Err(explain_failure::<T>(endpoint, body, true)),
    }
}

/// Like [`decode_json`], but the error names only the field path and the kind of problem,
/// never a value: for bodies that carry secrets (token responses).
pub fn decode_json_redacted<T: DeserializeOwned>(
    endpoint: &str,
    body: &[u8],
) -> Result<T, ZendeskError> {
    match from_body(body) {
        Ok(value) => Ok(value),
        Err(_) => Err(explain_failure::<T>(endpoint, body, false)),
    }
}

/// `serde_json` over the body checked as UTF-8 once, as a whole.
///
/// Decoding from bytes checks every string it hands out (each member name of each record) as UTF-8 on its
/// own, about a fifth of a ticket page's decoding; a body checked whole is decoded as text, which checks
/// nothing again. A body that is not UTF-8 is decoded from bytes as before (its error names the place).
fn from_body<T: DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

fn explain_failure<T: DeserializeOwned>(
    endpoint: &str,
    body: &[u8],
    show_message: bool,
) -> ZendeskError {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let (path, message, segments) = match result {
        Ok(_) => match deserializer.end() {
            Ok(()) => (
                ".".to_owned(),
                "could not be decoded".to_owned(),
                Vec::new(),
            ),
            Err(err) => (".".to_owned(), err.to_string(), Vec::new()),
        },
        Err(err) => {
            let path = err.path().to_string();
            let segments = err.path().iter().cloned().collect::<Vec<_>>();
            let inner = err.into_inner();
            let message = if show_message {
                inner.to_string()
            } else {
                format!("{:?} error", inner.classify())
            };
            (path, message, segments)
        }
    };
    ZendeskError::Malformed {
        endpoint: endpoint.to_owned(),
        record_id: record_id_along(body, &segments),
        detail: format!("field `{path}`: {message}"),
    }
}

/// The `id` of the outermost object with a numeric id on the way down `segments`.
fn record_id_along(body: &[u8], segments: &[serde_path_to_error::Segment]) -> Option<u64> {
    if segments.is_empty() {
        return None;
    }
    let root: Value = serde_json::from_slice(body).ok()?;
    let mut current = &root;
    for segment in segments {
        current = match segment {
            serde_path_to_error::Segment::Seq { index } => current.get(*index)?,
            serde_path_to_error::Segment::Map { key } => current.get(key.as_str())?,
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {
                return None
            }
        };
        if let Some(id) = current.get("id").and_then(Value::as_u64) {
            return Some(id);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zendesk::envelope::TicketCursorPage;

    const TICKET: &str = r#"{"id": 41, "status": "open", "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2020-01-01T00:00:00Z", "generated_timestamp": 5}"#;

    fn malformed(body: &str) -> (Option<u64>, String) {
        match decode_json::<TicketCursorPage>("tickets", body.as_bytes()) {
            Err(ZendeskError::Malformed {
                record_id,
                detail,
                endpoint,
            }) => {
                assert_eq!(endpoint, "tickets");
                (record_id, detail)
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn names_record_and_field() {
        let bad = TICKET.replace("\"open\"", "\"exploded\"");
        let body = format!(r#"{{"tickets": [{TICKET}, {bad}], "end_of_stream": true}}"#);
        let (id, detail) = malformed(&body);
        assert_eq!(id, Some(41));
        assert!(detail.contains("tickets[1].status"), "{detail}");
    }

    #[test]
    fn names_missing_fields() {
        let bad = TICKET.replace(r#""generated_timestamp": 5"#, r#""subject": "x""#);
        let (id, detail) = malformed(&format!(
            r#"{{"tickets": [{bad}], "end_of_stream": false}}"#
        ));
        assert_eq!(id, Some(41));
        assert!(detail.contains("generated_timestamp"), "{detail}");
        let (id, detail) = malformed(r#"{"tickets": []}"#);
        assert_eq!(id, None);
        assert!(detail.contains("end_of_stream"), "{detail}");
    }

    #[test]
    fn not_json_and_trailing_garbage() {
        assert!(malformed("<html>").1.contains("field"));
        assert!(malformed(r#"{"tickets": [], "end_of_stream": true} x"#)
            .1
            .contains("trailing"));
    }

    /// A ticket page whose ticket has `member` set to a string holding a byte that is not UTF-8.
    fn page_with_invalid_utf8(member: &str) -> Vec<u8> {
        let marker = "\u{fffd}";
        let ticket = TICKET.replace(
            r#""status""#,
            &format!(r#""{member}": "caf{marker}", "status""#),
        );
        let mut body = format!(r#"{{"tickets": [{ticket}], "end_of_stream": true}}"#).into_bytes();
        let at = body
            .windows(marker.len())
            .position(|window| window == marker.as_bytes())
            .expect("marker");
        body.splice(at..at + marker.len(), [0xff]);
        assert!(std::str::from_utf8(&body).is_err());
        body
    }

    #[test]
    fn a_body_that_is_not_utf8_decodes_as_bytes_did() {
        // Invalid UTF-8 in a member zdsync skips is no error; in a field it keeps, it names the field.
        let page: TicketCursorPage =
            decode_json("tickets", &page_with_invalid_utf8("description")).expect("skipped member");
        assert_eq!(page.tickets[0].id, 41);
        match decode_json::<TicketCursorPage>("tickets", &page_with_invalid_utf8("subject")) {
            Err(ZendeskError::Malformed { detail, .. }) => {
                assert!(detail.contains("tickets[0].subject"), "{detail}");
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn redacted_hides_values() {
        #[derive(Debug, serde::Deserialize)]
        struct Token {
            #[allow(dead_code)]
            expires_in: u64,
        }
        let err = decode_json_redacted::<Token>("token", br#"{"expires_in": "supersecretvalue"}"#);
        let text = err.map_or_else(|e| e.to_string(), |_| String::new());
        assert!(
            !text.contains("supersecretvalue") && text.contains("expires_in"),
            "{text}"
        );
    }
}
