//! Conversion between protobuf messages and domain types, with field-named errors.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::domain::account::{Account, AccountUser, AttributeValue, FieldError};
use crate::proto::v1 as pb;

/// A domain account from its message; the id and every rule are checked later by `domain::account`.
pub fn account_from_proto(message: pb::Account) -> Result<Account, FieldError> {
    let mut attributes = BTreeMap::new();
    for (name, value) in message.attributes {
        let field = format!("attributes[{name:?}]");
        let value = match value.value {
            Some(pb::attribute_value::Value::Text(text)) => AttributeValue::Text(text),
            Some(pb::attribute_value::Value::Number(number)) => AttributeValue::Number(number),
            Some(pb::attribute_value::Value::Date(date)) => AttributeValue::Date(
                timestamp_from_proto(&date)
                    .ok_or_else(|| FieldError::new(&field, "date is out of range"))?,
            ),
            None => {
                return Err(FieldError::new(
                    field,
                    "must hold one of `text`, `number` or `date`",
                ))
            }
        };
        attributes.insert(name, value);
    }
    Ok(Account {
        id: message.id,
        name: message.name,
        owner: message.owner,
        attributes,
        users: message.users.into_iter().map(user_from_proto).collect(),
    })
}

/// The message of a domain account.
pub fn account_to_proto(account: Account) -> pb::Account {
    pb::Account {
        id: account.id,
        name: account.name,
        owner: account.owner,
        attributes: account
            .attributes
            .into_iter()
            .map(|(name, value)| {
                let value = match value {
                    AttributeValue::Text(text) => pb::attribute_value::Value::Text(text),
                    AttributeValue::Number(number) => pb::attribute_value::Value::Number(number),
                    AttributeValue::Date(date) => {
                        pb::attribute_value::Value::Date(timestamp_to_proto(date))
                    }
                };
                (name, pb::AttributeValue { value: Some(value) })
            })
            .collect(),
        users: account.users.into_iter().map(user_to_proto).collect(),
    }
}

fn user_from_proto(user: pb::User) -> AccountUser {
    AccountUser {
        email: user.email,
        name: user.name,
    }
}

fn user_to_proto(user: AccountUser) -> pb::User {
    pb::User {
        email: user.email,
        name: user.name,
    }
}

/// A protobuf timestamp as a UTC instant, if it is in range.
pub fn timestamp_from_proto(timestamp: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(timestamp.nanos).ok()?;
    DateTime::<Utc>::from_timestamp(timestamp.seconds, nanos)
}

/// A UTC instant as a protobuf timestamp.
pub fn timestamp_to_proto(instant: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: instant.timestamp(),
        nanos: i32::try_from(instant.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Converts a batch, naming `accounts[i]` (offset by `index_base`) in errors.
pub fn accounts_from_proto(
    messages: Vec<pb::Account>,
    index_base: usize,
) -> Result<Vec<Account>, FieldError> {
    messages
        .into_iter()
        .enumerate()
        .map(|(index, message)| {
            account_from_proto(message)
                .map_err(|err| err.within(&format!("accounts[{}]", index_base + index)))
        })
        .collect()
}
