//! Zendesk's timestamps (`2023-09-18T15:57:42Z`) decoded through chrono's strict RFC 3339 parser first.
//!
//! chrono's own `Deserialize` for `DateTime<Utc>` goes through its relaxed `FromStr`, a generic format-item
//! parser: about 150 ns a timestamp against 30 ns for `DateTime::parse_from_rfc3339` on this machine, and a
//! first sync decodes several per ticket and per side-loaded record. Anything the strict parser refuses
//! goes to `FromStr` as before, so the values accepted, and the error of a bad one, stay chrono's.
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Parses a timestamp as chrono's `FromStr` for `DateTime<Utc>` does, taking the strict RFC 3339 path first.
pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    match DateTime::parse_from_rfc3339(text) {
        Ok(instant) => Ok(instant.with_timezone(&Utc)),
        Err(_) => text.parse(),
    }
}

/// A timestamp decoded by [`parse`]; the form `Option` wraps so that null and a missing field stay `None`.
struct Instant(DateTime<Utc>);

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InstantVisitor;

        impl Visitor<'_> for InstantVisitor {
            type Value = Instant;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an RFC 3339 date and time string")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Instant, E> {
                parse(text).map(Instant).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(InstantVisitor)
    }
}

/// `deserialize_with` for a required timestamp field.
pub fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    Instant::deserialize(deserializer).map(|instant| instant.0)
}

/// `deserialize_with` for an optional timestamp field (with `#[serde(default)]` for a missing one).
pub fn optional<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    Option::<Instant>::deserialize(deserializer).map(|instant| instant.map(|instant| instant.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Stamped {
        #[serde(deserialize_with = "required")]
        at: DateTime<Utc>,
        #[serde(default, deserialize_with = "optional")]
        maybe: Option<DateTime<Utc>>,
    }

    fn decode(json: &str) -> Result<Stamped, String> {
        serde_json::from_str(json).map_err(|err| err.to_string())
    }

    #[test]
    fn every_form_chrono_accepts_decodes_to_the_same_instant() {
        for text in [
            "2023-09-18T15:57:42Z",
            "2023-09-18T15:57:42.250Z",
            "2023-09-18T17:57:42+02:00",
            "2023-09-18t15:57:42z",
            "2023-09-18 15:57:42Z",
            "2023-09-18T15:57:42 +00:00",
            " 2023-09-18T15:57:42Z",
        ] {
            let chrono_reads: Result<DateTime<Utc>, _> =
                serde_json::from_value(serde_json::Value::String(text.into()));
            let ours = decode(&format!(r#"{{"at": "{text}"}}"#)).map(|s| s.at);
            assert_eq!(ours.ok(), chrono_reads.ok(), "{text}");
        }
        assert_eq!(
            decode(r#"{"at": "2023-09-18T15:57:42Z"}"#)
                .expect("decodes")
                .at
                .timestamp(),
            1_695_052_662
        );
    }

    #[test]
    fn a_bad_timestamp_fails_with_chronos_message_and_null_is_none() {
        let chrono_says = "2023-13-18T15:57:42Z"
            .parse::<DateTime<Utc>>()
            .expect_err("bad month")
            .to_string();
        let err = decode(r#"{"at": "2023-13-18T15:57:42Z"}"#).expect_err("bad month");
        assert!(err.contains(&chrono_says), "{err}");
        assert!(decode(r#"{"at": 1695052662}"#).is_err(), "a number");
        let stamped = decode(r#"{"at": "2023-09-18T15:57:42Z", "maybe": null}"#).expect("null");
        assert_eq!(stamped.maybe, None);
        let stamped = decode(r#"{"at": "2023-09-18T15:57:42Z"}"#).expect("missing");
        assert_eq!(stamped.maybe, None);
        let stamped = decode(r#"{"at": "2023-09-18T15:57:42Z", "maybe": "2023-09-18T15:57:43Z"}"#)
            .expect("given");
        assert_eq!(stamped.maybe.map(|at| at.timestamp()), Some(1_695_052_663));
    }
}
