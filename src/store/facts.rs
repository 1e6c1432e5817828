//! Stored records read as domain facts: the one place where the store's encodings (status and
//! priority codes, Unix seconds, change field codes) turn into the types the pure rules take.
use chrono::{DateTime, Utc};

use crate::domain::events::{FieldChange, HistoryEntry};
use crate::domain::matching::OrgKeys;
use crate::domain::metrics::{RatingFacts, RatingScore, TicketFacts};
use crate::domain::ticket::{Priority, Status};

use super::zendesk_records::{
    ChangeRecord, OrganizationRecord, RatingRecord, TicketRecord, CHANGE_FIELD_PRIORITY,
    CHANGE_FIELD_STATUS,
};
use super::StoreError;

/// Why a stored record could not be read as domain facts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactsError {
    /// The ticket's status code is none of the known ones.
    #[error("ticket {ticket_id}: field status: unknown status code {code}")]
    UnknownStatus {
        /// The ticket.
        ticket_id: u64,
        /// The code found.
        code: u32,
    },
    /// The ticket's priority code is none of the known ones.
    #[error("ticket {ticket_id}: field priority: unknown priority code {code}")]
    UnknownPriority {
        /// The ticket.
        ticket_id: u64,
        /// The code found.
        code: u32,
    },
    /// A Unix timestamp is outside what chrono can represent.
    #[error("{record} {id}: field {field}: timestamp {value} out of range")]
    TimestampOutOfRange {
        /// `ticket`, `rating` or `ticket change`.
        record: &'static str,
        /// The record id (the ticket's for a change).
        id: u64,
        /// The field name.
        field: &'static str,
        /// The stored value.
        value: i64,
    },
    /// The change's field code is neither status nor priority.
    #[error("ticket {ticket_id}: ticket change field code {field} is unknown")]
    UnknownChangeField {
        /// The ticket.
        ticket_id: u64,
        /// The code found.
        field: u32,
    },
    /// A status code in a change is unknown.
    #[error("ticket {ticket_id}: status change field {side}: unknown status code {code}")]
    UnknownChangeStatus {
        /// The ticket.
        ticket_id: u64,
        /// `from` or `to`.
        side: &'static str,
        /// The code found.
        code: u32,
    },
    /// A priority code in a change is unknown.
    #[error("ticket {ticket_id}: priority change field {side}: unknown priority code {code}")]
    UnknownChangePriority {
        /// The ticket.
        ticket_id: u64,
        /// `from` or `to`.
        side: &'static str,
        /// The code found.
        code: u32,
    },
}

fn timestamp(
    record: &'static str,
    id: u64,
    field: &'static str,
    value: i64,
) -> Result<DateTime<Utc>, FactsError> {
    DateTime::from_timestamp(value, 0).ok_or(FactsError::TimestampOutOfRange {
        record,
        id,
        field,
        value,
    })
}

/// Reads a stored ticket; unknown status/priority codes or impossible times are errors.
pub(crate) fn ticket_facts(id: u64, record: &TicketRecord) -> Result<TicketFacts, FactsError> {
    let status = Status::from_code(record.status).ok_or(FactsError::UnknownStatus {
        ticket_id: id,
        code: record.status,
    })?;
    let priority = Priority::from_code(record.priority).ok_or(FactsError::UnknownPriority {
        ticket_id: id,
        code: record.priority,
    })?;
    let solved_at = match record.solved_at {
        0 => None,
        secs => Some(timestamp("ticket", id, "solved_at", secs)?),
    };
    Ok(TicketFacts {
        id,
        status,
        priority,
        created_at: timestamp("ticket", id, "created_at", record.created_at)?,
        updated_at: timestamp("ticket", id, "updated_at", record.updated_at)?,
        reopens: record.reopens,
        solved_at,
        gone: record.gone,
    })
}

/// Reads a stored rating; impossible times are errors.
pub(crate) fn rating_facts(id: u64, record: &RatingRecord) -> Result<RatingFacts, FactsError> {
    Ok(RatingFacts {
        id,
        ticket_id: record.ticket_id,
        score: RatingScore::from_name(&record.score),
        created_at: timestamp("rating", id, "created_at", record.created_at)?,
        updated_at: timestamp("rating", id, "updated_at", record.updated_at)?,
    })
}

/// Reads a stored change of ticket `ticket_id` (at its position in the ticket's `TICKET_HISTORY` row).
///
/// A status change with `from` code 0 is the ticket's `Create` entry.
pub(crate) fn history_entry(
    ticket_id: u64,
    at: i64,
    event_id: u64,
    index: u32,
    record: &ChangeRecord,
) -> Result<HistoryEntry, FactsError> {
    let at = timestamp("ticket change", ticket_id, "at", at)?;
    let status = |side: &'static str, code: u32| {
        Status::from_code(code).ok_or(FactsError::UnknownChangeStatus {
            ticket_id,
            side,
            code,
        })
    };
    let priority = |side: &'static str, code: u32| {
        Priority::from_code(code).ok_or(FactsError::UnknownChangePriority {
            ticket_id,
            side,
            code,
        })
    };
    let change = match record.field {
        CHANGE_FIELD_STATUS => FieldChange::Status {
            from: match record.from {
                0 => None,
                code => Some(status("from", code)?),
            },
            to: status("to", record.to)?,
        },
        CHANGE_FIELD_PRIORITY => FieldChange::Priority {
            from: priority("from", record.from)?,
            to: priority("to", record.to)?,
        },
        field => return Err(FactsError::UnknownChangeField { ticket_id, field }),
    };
    Ok(HistoryEntry {
        at,
        event_id,
        index,
        change,
    })
}

/// The parts of a stored organization that a match key can read.
pub(crate) fn org_keys(id: u64, record: &OrganizationRecord) -> OrgKeys {
    OrgKeys {
        id,
        name: record.name.clone(),
        external_id: record.has_external_id.then(|| record.external_id.clone()),
        domain_names: record.domain_names.clone(),
        fields: record.fields.clone(),
    }
}

fn corrupt(table: &'static str, key: String, err: &FactsError) -> StoreError {
    StoreError::Corrupt {
        table,
        key,
        detail: err.to_string(),
    }
}

/// [`ticket_facts`] of a row of `TICKETS`, an unreadable one reported as corrupt.
pub(crate) fn stored_ticket(id: u64, record: &TicketRecord) -> Result<TicketFacts, StoreError> {
    ticket_facts(id, record).map_err(|err| corrupt("tickets", id.to_string(), &err))
}

/// [`rating_facts`] of a row of `RATINGS`, an unreadable one reported as corrupt.
pub(crate) fn stored_rating(id: u64, record: &RatingRecord) -> Result<RatingFacts, StoreError> {
    rating_facts(id, record).map_err(|err| corrupt("ratings", id.to_string(), &err))
}

/// [`history_entry`] of a change in `TICKET_HISTORY`, an unreadable one reported as corrupt.
pub(crate) fn stored_change(
    (ticket_id, at, event_id, index): (u64, i64, u64, u32),
    record: &ChangeRecord,
) -> Result<HistoryEntry, StoreError> {
    history_entry(ticket_id, at, event_id, index, record).map_err(|err| {
        corrupt(
            "ticket_history",
            format!("{ticket_id}/{at}/{event_id}/{index}"),
            &err,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000;

    #[test]
    fn tickets_and_ratings_convert() {
        let record = TicketRecord {
            status: 2,
            priority: 4,
            created_at: 1_700_000_000,
            updated_at: 1_700_000_100,
            reopens: 2,
            solved_at: 0,
            ..TicketRecord::default()
        };
        let facts = ticket_facts(9, &record).expect("valid");
        assert_eq!(
            (facts.status, facts.priority),
            (Status::Open, Priority::Urgent)
        );
        assert_eq!(facts.solved_at, None);
        assert_eq!(facts.created_at.timestamp(), 1_700_000_000);
        assert_eq!(
            ticket_facts(
                9,
                &TicketRecord {
                    status: 0,
                    ..record.clone()
                }
            ),
            Err(FactsError::UnknownStatus {
                ticket_id: 9,
                code: 0
            })
        );
        assert_eq!(
            ticket_facts(
                9,
                &TicketRecord {
                    priority: 5,
                    ..record.clone()
                }
            ),
            Err(FactsError::UnknownPriority {
                ticket_id: 9,
                code: 5
            })
        );
        assert!(matches!(
            ticket_facts(
                9,
                &TicketRecord {
                    created_at: i64::MAX,
                    ..record
                }
            ),
            Err(FactsError::TimestampOutOfRange {
                field: "created_at",
                ..
            })
        ));
        let rating = rating_facts(
            3,
            &RatingRecord {
                ticket_id: 9,
                score: "bad_with_comment".to_owned(),
                created_at: 10,
                updated_at: 20,
                ..RatingRecord::default()
            },
        )
        .expect("valid");
        assert_eq!(rating.score, RatingScore::BadWithComment);
        assert_eq!(RatingScore::from_name("something_new"), RatingScore::Other);
    }

    #[test]
    fn change_records_convert() {
        let create = ChangeRecord {
            field: CHANGE_FIELD_STATUS,
            from: 0,
            to: Status::New.code(),
        };
        let entry = history_entry(42, T0, 7, 0, &create).expect("valid");
        assert_eq!(
            entry.change,
            FieldChange::Status {
                from: None,
                to: Status::New
            }
        );
        let cleared = ChangeRecord {
            field: CHANGE_FIELD_PRIORITY,
            from: Priority::High.code(),
            to: 0,
        };
        let entry = history_entry(42, T0, 7, 1, &cleared).expect("valid");
        assert_eq!(
            entry.change,
            FieldChange::Priority {
                from: Priority::High,
                to: Priority::None
            }
        );
        let change = |field, from, to| ChangeRecord { field, from, to };
        assert_eq!(
            history_entry(42, T0, 7, 1, &change(3, 0, 1)),
            Err(FactsError::UnknownChangeField {
                ticket_id: 42,
                field: 3
            })
        );
        assert_eq!(
            history_entry(42, T0, 7, 1, &change(1, 9, 1)),
            Err(FactsError::UnknownChangeStatus {
                ticket_id: 42,
                side: "from",
                code: 9
            })
        );
        assert_eq!(
            history_entry(42, T0, 7, 1, &change(2, 0, 8)),
            Err(FactsError::UnknownChangePriority {
                ticket_id: 42,
                side: "to",
                code: 8
            })
        );
        assert!(matches!(
            history_entry(42, i64::MAX, 7, 1, &create),
            Err(FactsError::TimestampOutOfRange { .. })
        ));
    }

    #[test]
    fn org_keys_come_from_the_stored_record() {
        let record = OrganizationRecord {
            name: "Acme".into(),
            external_id: String::new(),
            has_external_id: false,
            domain_names: vec!["acme.test".into()],
            fields: [("account_id".to_owned(), "A-1".to_owned())].into(),
            updated_at: 5,
        };
        let keys = org_keys(42, &record);
        assert_eq!(keys.id, 42);
        assert_eq!(keys.name, "Acme");
        assert_eq!(keys.external_id, None);
        assert_eq!(keys.domain_names, vec!["acme.test".to_owned()]);
        assert_eq!(
            keys.fields.get("account_id").map(String::as_str),
            Some("A-1")
        );
        let with_external = OrganizationRecord {
            external_id: "ext-9".into(),
            has_external_id: true,
            ..record
        };
        assert_eq!(
            org_keys(42, &with_external).external_id.as_deref(),
            Some("ext-9")
        );
    }
}
