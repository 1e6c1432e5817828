//! Customer accounts of the team's directory and the rules a valid account follows.
use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};

/// Longest account id, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// Longest account or user name, in characters.
pub const MAX_NAME_CHARS: usize = 512;
/// Most attributes one account may carry.
pub const MAX_ATTRIBUTES: usize = 64;
/// Longest attribute name, in bytes.
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 64;
/// Longest text attribute value, in bytes.
pub const MAX_TEXT_VALUE_BYTES: usize = 1024;
/// Most users one account may list.
pub const MAX_USERS: usize = 1000;

/// A customer account of the team.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// Stable id from the team's own systems.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Email of the account manager (may be empty).
    pub owner: String,
    /// Typed attributes by name.
    pub attributes: BTreeMap<String, AttributeValue>,
    /// People of the account.
    pub users: Vec<AccountUser>,
}

/// A person of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountUser {
    /// Email address, as given.
    pub email: String,
    /// Display name.
    pub name: String,
}

/// The value of one attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// Text; the only kind a match key may use.
    Text(String),
    /// A finite number.
    Number(f64),
    /// An instant.
    Date(DateTime<Utc>),
}

/// The type of an attribute, which must be the same on every account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeKind {
    /// Text values.
    Text,
    /// Numeric values.
    Number,
    /// Date values.
    Date,
}

impl AttributeKind {
    /// A stable one-byte code for storage.
    pub fn code(self) -> u8 {
        match self {
            AttributeKind::Text => 1,
            AttributeKind::Number => 2,
            AttributeKind::Date => 3,
        }
    }

    /// The kind stored as `code`, if any.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(AttributeKind::Text),
            2 => Some(AttributeKind::Number),
            3 => Some(AttributeKind::Date),
            _ => None,
        }
    }

    /// Lower-case name for messages.
    pub fn name(self) -> &'static str {
        match self {
            AttributeKind::Text => "text",
            AttributeKind::Number => "number",
            AttributeKind::Date => "date",
        }
    }
}

impl AttributeValue {
    /// The kind of this value.
    pub fn kind(&self) -> AttributeKind {
        match self {
            AttributeValue::Text(_) => AttributeKind::Text,
            AttributeValue::Number(_) => AttributeKind::Number,
            AttributeValue::Date(_) => AttributeKind::Date,
        }
    }
}

/// A field that breaks a rule: its path relative to the account (`users[2].email`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// Path of the offending field.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl FieldError {
    /// A field error at `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error with `prefix.` put before the field path.
    pub fn within(self, prefix: &str) -> Self {
        Self {
            field: format!("{prefix}.{}", self.field),
            reason: self.reason,
        }
    }
}

/// Checks an account id: 1 to 128 bytes, no control characters.
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!(
            "must be at most {MAX_ID_BYTES} bytes, got {}",
            id.len()
        ));
    }
    if id.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if let Some(format) = id.chars().find(|c| super::text::is_format_char(*c)) {
        return Err(format!(
            "must not contain invisible formatting characters (found U+{:04X}), which can disguise an id in CLI and CSV output",
            u32::from(format)
        ));
    }
    Ok(())
}

/// Checks an email address (RFC 5322 addr-spec, as the `email_address` crate reads it).
pub fn validate_email(email: &str) -> Result<(), String> {
    if email.len() > 254 {
        return Err("must be at most 254 bytes".into());
    }
    email_address::EmailAddress::parse_with_options(
        email,
        email_address::Options::default().without_display_text(),
    )
    .map(|_| ())
    .map_err(|err| {
        format!(
            "{} is not a valid email address ({err})",
            super::text::quote(email)
        )
    })
}

fn validate_name(name: &str) -> Result<(), String> {
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("must be at most {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

fn validate_attribute_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_ATTRIBUTE_NAME_BYTES {
        return Err(format!(
            "attribute names must have 1 to {MAX_ATTRIBUTE_NAME_BYTES} bytes"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "attribute name {} may use only A-Z, a-z, 0-9, `_` and `-`",
            super::text::quote(name)
        ));
    }
    Ok(())
}

/// Checks every rule of one account on its own (not the rules across accounts).
pub fn validate_account(account: &Account) -> Result<(), FieldError> {
    validate_id(&account.id).map_err(|reason| FieldError::new("id", reason))?;
    validate_name(&account.name).map_err(|reason| FieldError::new("name", reason))?;
    if !account.owner.is_empty() {
        validate_email(&account.owner).map_err(|reason| FieldError::new("owner", reason))?;
    }
    if account.attributes.len() > MAX_ATTRIBUTES {
        return Err(FieldError::new(
            "attributes",
            format!(
                "at most {MAX_ATTRIBUTES} attributes, got {}",
                account.attributes.len()
            ),
        ));
    }
    for (name, value) in &account.attributes {
        let field = format!("attributes[{name:?}]");
        validate_attribute_name(name).map_err(|reason| FieldError::new(&field, reason))?;
        match value {
            AttributeValue::Text(text) if text.len() > MAX_TEXT_VALUE_BYTES => {
                return Err(FieldError::new(
                    field,
                    format!("text must be at most {MAX_TEXT_VALUE_BYTES} bytes"),
                ));
            }
            AttributeValue::Number(number) if !number.is_finite() => {
                return Err(FieldError::new(field, "number must be finite"));
            }
            _ => {}
        }
    }
    if account.users.len() > MAX_USERS {
        return Err(FieldError::new(
            "users",
            format!("at most {MAX_USERS} users, got {}", account.users.len()),
        ));
    }
    let mut seen = HashSet::with_capacity(account.users.len());
    for (index, user) in account.users.iter().enumerate() {
        validate_email(&user.email)
            .map_err(|reason| FieldError::new(format!("users[{index}].email"), reason))?;
        validate_name(&user.name)
            .map_err(|reason| FieldError::new(format!("users[{index}].name"), reason))?;
        if !seen.insert(user.email.to_lowercase()) {
            return Err(FieldError::new(
                format!("users[{index}].email"),
                format!("{:?} is listed twice in this account", user.email),
            ));
        }
    }
    Ok(())
}

/// Checks a batch: every account valid, ids unique, and each attribute name of one kind across the batch.
/// Field paths are prefixed `accounts[i]`.
pub fn validate_batch(accounts: &[Account]) -> Result<(), FieldError> {
    let mut ids = HashSet::with_capacity(accounts.len());
    let mut kinds: BTreeMap<&str, (AttributeKind, usize)> = BTreeMap::new();
    for (index, account) in accounts.iter().enumerate() {
        let prefix = format!("accounts[{index}]");
        validate_account(account).map_err(|err| err.within(&prefix))?;
        if !ids.insert(account.id.as_str()) {
            return Err(FieldError::new(
                format!("{prefix}.id"),
                format!("{:?} appears more than once in this batch", account.id),
            ));
        }
        for (name, value) in &account.attributes {
            let kind = value.kind();
            match kinds.get(name.as_str()) {
                Some((first, first_index)) if *first != kind => {
                    return Err(kind_conflict(
                        &prefix,
                        name,
                        kind,
                        *first,
                        &format!("accounts[{first_index}]"),
                    ));
                }
                Some(_) => {}
                None => {
                    kinds.insert(name, (kind, index));
                }
            }
        }
    }
    Ok(())
}

/// The error for an attribute whose kind differs from the one it already has elsewhere.
pub fn kind_conflict(
    prefix: &str,
    name: &str,
    given: AttributeKind,
    existing: AttributeKind,
    where_: &str,
) -> FieldError {
    FieldError::new(
        format!("{prefix}.attributes[{name:?}]"),
        format!(
            "is a {} here but a {} in {where_}: an attribute keeps one type across all accounts",
            given.name(),
            existing.name()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str) -> Account {
        Account {
            id: id.into(),
            name: "Acme".into(),
            owner: "owner@example.com".into(),
            attributes: BTreeMap::new(),
            users: vec![AccountUser {
                email: "jane@acme.test".into(),
                name: "Jane".into(),
            }],
        }
    }

    fn field_of(result: Result<(), FieldError>) -> String {
        result.expect_err("should be invalid").field
    }

    #[test]
    fn a_plain_account_is_valid() {
        assert_eq!(validate_account(&account("acct-1")), Ok(()));
    }

    #[test]
    fn ids_are_checked() {
        assert_eq!(field_of(validate_account(&account(""))), "id");
        assert_eq!(field_of(validate_account(&account(&"x".repeat(129)))), "id");
        assert!(validate_account(&account(&"x".repeat(128))).is_ok());
        assert_eq!(field_of(validate_account(&account("a\nb"))), "id");
    }

    #[test]
    fn emails_are_checked() {
        let mut bad_owner = account("a");
        bad_owner.owner = "not-an-email".into();
        assert_eq!(field_of(validate_account(&bad_owner)), "owner");
        let mut bad_user = account("a");
        bad_user.users.push(AccountUser {
            email: "x@".into(),
            name: String::new(),
        });
        assert_eq!(field_of(validate_account(&bad_user)), "users[1].email");
        let mut twice = account("a");
        twice.users.push(AccountUser {
            email: "JANE@acme.test".into(),
            name: String::new(),
        });
        assert_eq!(field_of(validate_account(&twice)), "users[1].email");
    }

    #[test]
    fn attributes_are_checked() {
        let mut too_many = account("a");
        for i in 0..=MAX_ATTRIBUTES {
            too_many
                .attributes
                .insert(format!("a{i}"), AttributeValue::Number(1.0));
        }
        assert_eq!(field_of(validate_account(&too_many)), "attributes");
        let mut bad_name = account("a");
        bad_name
            .attributes
            .insert("has space".into(), AttributeValue::Text("x".into()));
        assert_eq!(
            field_of(validate_account(&bad_name)),
            "attributes[\"has space\"]"
        );
        let mut nan = account("a");
        nan.attributes
            .insert("n".into(), AttributeValue::Number(f64::NAN));
        assert_eq!(field_of(validate_account(&nan)), "attributes[\"n\"]");
    }

    #[test]
    fn batches_reject_duplicates_and_kind_changes_with_the_index() {
        assert_eq!(
            field_of(validate_batch(&[account("a"), account("b"), account("a")])),
            "accounts[2].id"
        );
        let mut text = account("a");
        text.attributes
            .insert("tier".into(), AttributeValue::Text("gold".into()));
        let mut number = account("b");
        number
            .attributes
            .insert("tier".into(), AttributeValue::Number(1.0));
        let err = validate_batch(&[text, number]).expect_err("conflict");
        assert_eq!(err.field, "accounts[1].attributes[\"tier\"]");
        assert!(err.reason.contains("accounts[0]"), "{}", err.reason);
        let mut bad = account("c");
        bad.owner = "nope".into();
        assert_eq!(
            field_of(validate_batch(&[account("a"), bad])),
            "accounts[1].owner"
        );
    }

    #[test]
    fn ids_refuse_invisible_formatting_characters() {
        for spoof in [
            "acct\u{202E}1",
            "\u{200B}acct",
            "ac\u{2066}ct",
            "acct\u{FEFF}",
        ] {
            let err = validate_id(spoof).expect_err(spoof);
            assert!(err.contains("invisible formatting"), "{err}");
        }
        assert!(validate_id("acct-é-日本").is_ok());
    }
}
