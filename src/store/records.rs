//! Compact binary encodings of stored records (prost messages, so fields can be added compatibly).
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use prost::Message;

use crate::domain::account::{Account, AccountUser, AttributeKind, AttributeValue};

use super::StoreError;

/// An account as stored; the id is the table key.
#[derive(Clone, PartialEq, Message)]
pub struct AccountRecord {
    /// Display name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Owner email.
    #[prost(string, tag = "2")]
    pub owner: String,
    /// Attributes in name order.
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<AttributeRecord>,
    /// Users in the order given.
    #[prost(message, repeated, tag = "4")]
    pub users: Vec<UserRecord>,
}

/// One stored attribute.
#[derive(Clone, PartialEq, Message)]
pub struct AttributeRecord {
    /// Attribute name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// `AttributeKind` code.
    #[prost(uint32, tag = "2")]
    pub kind: u32,
    /// Value of a text attribute.
    #[prost(string, tag = "3")]
    pub text: String,
    /// Value of a number attribute.
    #[prost(double, tag = "4")]
    pub number: f64,
    /// Value of a date attribute, microseconds since the Unix epoch.
    #[prost(sint64, tag = "5")]
    pub date_micros: i64,
}

/// One stored account user.
#[derive(Clone, PartialEq, Message)]
pub struct UserRecord {
    /// Email as given.
    #[prost(string, tag = "1")]
    pub email: String,
    /// Display name.
    #[prost(string, tag = "2")]
    pub name: String,
}

/// Encodes an account for the `ACCOUNTS` table.
pub fn encode_account(account: &Account) -> Vec<u8> {
    let record = AccountRecord {
        name: account.name.clone(),
        owner: account.owner.clone(),
        attributes: account
            .attributes
            .iter()
            .map(|(name, value)| {
                let mut record = AttributeRecord {
                    name: name.clone(),
                    kind: u32::from(value.kind().code()),
                    ..Default::default()
                };
                match value {
                    AttributeValue::Text(text) => record.text = text.clone(),
                    AttributeValue::Number(number) => record.number = *number,
                    AttributeValue::Date(date) => record.date_micros = date.timestamp_micros(),
                }
                record
            })
            .collect(),
        users: account
            .users
            .iter()
            .map(|user| UserRecord {
                email: user.email.clone(),
                name: user.name.clone(),
            })
            .collect(),
    };
    record.encode_to_vec()
}

/// Decodes an account stored under `id`.
pub fn decode_account(id: &str, bytes: &[u8]) -> Result<Account, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "accounts",
        key: id.to_owned(),
        detail,
    };
    let record = AccountRecord::decode(bytes).map_err(|err| corrupt(err.to_string()))?;
    let mut attributes = BTreeMap::new();
    for attribute in record.attributes {
        let kind = u8::try_from(attribute.kind)
            .ok()
            .and_then(AttributeKind::from_code)
            .ok_or_else(|| {
                corrupt(format!(
                    "attribute {} has unknown kind {}",
                    attribute.name, attribute.kind
                ))
            })?;
        let value = match kind {
            AttributeKind::Text => AttributeValue::Text(attribute.text),
            AttributeKind::Number => AttributeValue::Number(attribute.number),
            AttributeKind::Date => AttributeValue::Date(
                DateTime::<Utc>::from_timestamp_micros(attribute.date_micros).ok_or_else(|| {
                    corrupt(format!(
                        "attribute {} has an out-of-range date",
                        attribute.name
                    ))
                })?,
            ),
        };
        attributes.insert(attribute.name, value);
    }
    Ok(Account {
        id: id.to_owned(),
        name: record.name,
        owner: record.owner,
        attributes,
        users: record.users.into_iter().map(AccountUser::from).collect(),
    })
}

impl From<UserRecord> for AccountUser {
    fn from(user: UserRecord) -> Self {
        AccountUser {
            email: user.email,
            name: user.name,
        }
    }
}
