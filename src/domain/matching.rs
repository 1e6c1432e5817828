//! Matching Zendesk organizations to accounts by a match key, and users by email within a matched account.
//!
//! Pure rules: no I/O. The caller keeps an [`AccountIndex`] (key value -> account ids) and an
//! [`OrgIndex`] (key value -> organization ids) next to its stored data and updates both in the
//! same transaction as the records, so a changed account re-matches only the organizations that
//! share one of its old or new key values.
//!
//! Values compare exactly (case-sensitive, untrimmed). An empty value is treated as no value on
//! either side, so blank fields never tie organizations to accounts.
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use crate::domain::account::{Account, AttributeKind, AttributeValue};

const ORGANIZATION_FIELDS_PREFIX: &str = "organization_fields.";
const ATTRIBUTES_PREFIX: &str = "attributes.";

/// The organization field a match key reads on the Zendesk side.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ZendeskField {
    /// The organization's numeric id, compared as its decimal string.
    Id,
    /// The organization's name.
    Name,
    /// The organization's external id.
    ExternalId,
    /// Any one of the organization's domain names.
    DomainNames,
    /// A custom organization field, by its key.
    OrganizationField(String),
}

/// The account attribute a match key reads on the account side.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountAttribute {
    /// The account id.
    Id,
    /// A text attribute, by its name.
    Attribute(String),
}

/// One Zendesk organization field paired with one account attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MatchKey {
    /// What is read on the organization.
    pub zendesk_field: ZendeskField,
    /// What is read on the account.
    pub account_attribute: AccountAttribute,
}

/// Why a match key was refused; `field()` names the side at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchKeyError {
    /// The Zendesk side is none of the known fields.
    #[error("zendesk_field: {given:?} is not one of id, name, external_id, domain_names, organization_fields.<key>")]
    UnknownZendeskField {
        /// The text given.
        given: String,
    },
    /// `organization_fields.` with nothing after it.
    #[error(
        "zendesk_field: organization_fields.<key> needs a non-empty field key without white space"
    )]
    EmptyOrganizationFieldKey,
    /// The account side is neither `id` nor `attributes.<name>`.
    #[error("account_attribute: {given:?} is not one of id, attributes.<name>")]
    UnknownAccountAttribute {
        /// The text given.
        given: String,
    },
    /// `attributes.` followed by a name no attribute can have.
    #[error("account_attribute: {name:?} is not a valid attribute name (1 to {max} bytes of A-Z, a-z, 0-9, `_`, `-`)", max = crate::domain::account::MAX_ATTRIBUTE_NAME_BYTES)]
    InvalidAttributeName {
        /// The name given.
        name: String,
    },
    /// The named attribute exists but is not text.
    #[error("account_attribute: attributes.{name} is a {} attribute; a match key needs a text attribute", kind.name())]
    NotTextAttribute {
        /// The attribute name.
        name: String,
        /// Its actual kind.
        kind: AttributeKind,
    },
}

impl FromStr for ZendeskField {
    type Err = MatchKeyError;

    /// Parses the exact spelling (no trimming, case-sensitive).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "id" => Ok(ZendeskField::Id),
            "name" => Ok(ZendeskField::Name),
            "external_id" => Ok(ZendeskField::ExternalId),
            "domain_names" => Ok(ZendeskField::DomainNames),
            _ => match text.strip_prefix(ORGANIZATION_FIELDS_PREFIX) {
                Some(key) if key.is_empty() || key.chars().any(char::is_whitespace) => {
                    Err(MatchKeyError::EmptyOrganizationFieldKey)
                }
                Some(key) => Ok(ZendeskField::OrganizationField(key.to_owned())),
                None => Err(MatchKeyError::UnknownZendeskField {
                    given: text.to_owned(),
                }),
            },
        }
    }
}

impl fmt::Display for ZendeskField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZendeskField::Id => f.write_str("id"),
            ZendeskField::Name => f.write_str("name"),
            ZendeskField::ExternalId => f.write_str("external_id"),
            ZendeskField::DomainNames => f.write_str("domain_names"),
            ZendeskField::OrganizationField(key) => write!(f, "{ORGANIZATION_FIELDS_PREFIX}{key}"),
        }
    }
}

fn is_valid_attribute_name(name: &str) -> bool {
    // Same rule the account directory applies, so a key can only name an attribute that can exist.
    !name.is_empty()
        && name.len() <= crate::domain::account::MAX_ATTRIBUTE_NAME_BYTES
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl FromStr for AccountAttribute {
    type Err = MatchKeyError;

    /// Parses the exact spelling (no trimming, case-sensitive).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "id" {
            return Ok(AccountAttribute::Id);
        }
        match text.strip_prefix(ATTRIBUTES_PREFIX) {
            Some(name) if is_valid_attribute_name(name) => {
                Ok(AccountAttribute::Attribute(name.to_owned()))
            }
            Some(name) => Err(MatchKeyError::InvalidAttributeName {
                name: name.to_owned(),
            }),
            None => Err(MatchKeyError::UnknownAccountAttribute {
                given: text.to_owned(),
            }),
        }
    }
}

impl fmt::Display for AccountAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountAttribute::Id => f.write_str("id"),
            AccountAttribute::Attribute(name) => write!(f, "{ATTRIBUTES_PREFIX}{name}"),
        }
    }
}

impl MatchKey {
    /// Parses both sides; the Zendesk side is checked first.
    pub fn parse(zendesk_field: &str, account_attribute: &str) -> Result<Self, MatchKeyError> {
        Ok(MatchKey {
            zendesk_field: zendesk_field.parse()?,
            account_attribute: account_attribute.parse()?,
        })
    }

    /// Refuses an account attribute whose kind (by `kind_of`) is not text; an attribute no account has yet is accepted.
    pub fn validate_against(
        &self,
        kind_of: &dyn Fn(&str) -> Option<AttributeKind>,
    ) -> Result<(), MatchKeyError> {
        match &self.account_attribute {
            AccountAttribute::Id => Ok(()),
            AccountAttribute::Attribute(name) => match kind_of(name) {
                None | Some(AttributeKind::Text) => Ok(()),
                Some(kind) => Err(MatchKeyError::NotTextAttribute {
                    name: name.clone(),
                    kind,
                }),
            },
        }
    }

    /// The organization's key values: sorted, without duplicates, without empty strings.
    pub fn org_values<'a>(&self, org: &'a OrgKeys) -> Vec<Cow<'a, str>> {
        let mut values: Vec<Cow<'a, str>> = match &self.zendesk_field {
            ZendeskField::Id => vec![Cow::Owned(org.id.to_string())],
            ZendeskField::Name => vec![Cow::Borrowed(org.name.as_str())],
            ZendeskField::ExternalId => org
                .external_id
                .as_deref()
                .map(Cow::Borrowed)
                .into_iter()
                .collect(),
            ZendeskField::DomainNames => org
                .domain_names
                .iter()
                .map(|domain| Cow::Borrowed(domain.as_str()))
                .collect(),
            ZendeskField::OrganizationField(key) => org
                .fields
                .get(key)
                .map(|value| Cow::Borrowed(value.as_str()))
                .into_iter()
                .collect(),
        };
        // A blank is no identifier: matching blanks would tie every blank org to every blank account.
        values.retain(|value| !value.is_empty());
        values.sort_unstable();
        values.dedup();
        values
    }

    /// Calls `visit` with each non-empty key value of the organization, unsorted, repeats included.
    fn for_each_org_value(&self, org: &OrgKeys, mut visit: impl FnMut(&str)) {
        let mut visit_filled = |value: &str| {
            if !value.is_empty() {
                visit(value);
            }
        };
        match &self.zendesk_field {
            ZendeskField::Id => visit_filled(&org.id.to_string()),
            ZendeskField::Name => visit_filled(&org.name),
            ZendeskField::ExternalId => org.external_id.iter().for_each(|v| visit_filled(v)),
            ZendeskField::DomainNames => org.domain_names.iter().for_each(|v| visit_filled(v)),
            ZendeskField::OrganizationField(key) => {
                org.fields.get(key).iter().for_each(|v| visit_filled(v))
            }
        }
    }

    /// The account's key value: its id or the text attribute; none when absent, not text, or empty.
    pub fn account_value<'a>(&self, account: &'a Account) -> Option<&'a str> {
        let value = match &self.account_attribute {
            AccountAttribute::Id => account.id.as_str(),
            AccountAttribute::Attribute(name) => match account.attributes.get(name) {
                Some(AttributeValue::Text(text)) => text.as_str(),
                _ => return None,
            },
        };
        (!value.is_empty()).then_some(value)
    }
}

impl fmt::Display for MatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.zendesk_field, self.account_attribute)
    }
}

/// The parts of a Zendesk organization that a match key can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgKeys {
    /// Zendesk organization id.
    pub id: u64,
    /// Organization name.
    pub name: String,
    /// External id, when set (an empty one is treated as no value when matching).
    pub external_id: Option<String>,
    /// Email domains.
    pub domain_names: Vec<String>,
    /// Custom organization fields with a value, as text.
    pub fields: BTreeMap<String, String>,
}

/// The outcome of matching one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgMatch {
    /// Exactly one account shares a key value with the organization.
    Matched {
        /// The matched account.
        account_id: String,
    },
    /// No account shares a key value.
    Unmatched {
        /// The organization's key values, sorted (empty when it has none).
        key_values: Vec<String>,
    },
    /// More than one account shares a key value; the organization is not matched.
    Ambiguous {
        /// The accounts it could be, sorted.
        candidates: Vec<String>,
    },
}

impl OrgMatch {
    /// The matched account id, when matched.
    pub fn account_id(&self) -> Option<&str> {
        match self {
            OrgMatch::Matched { account_id } => Some(account_id),
            OrgMatch::Unmatched { .. } | OrgMatch::Ambiguous { .. } => None,
        }
    }
}

/// The ids carrying one key value: almost always one, so a single id is kept without a set.
/// Canonical form (one id is always `One`) keeps equal contents equal.
#[derive(Debug, Clone, PartialEq, Eq)]
enum IdSet<T: Ord> {
    One(T),
    Many(BTreeSet<T>),
}

impl<T: Ord + Clone> IdSet<T> {
    fn insert(&mut self, id: T) {
        match self {
            IdSet::One(existing) if *existing == id => {}
            IdSet::One(existing) => {
                let first = existing.clone();
                *self = IdSet::Many(BTreeSet::from([first, id]));
            }
            IdSet::Many(ids) => {
                ids.insert(id);
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        let (one, many) = match self {
            IdSet::One(id) => (Some(id), None),
            IdSet::Many(ids) => (None, Some(ids.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

/// Key value -> ids of the accounts carrying it, for one match key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountIndex {
    key: MatchKey,
    by_value: HashMap<String, IdSet<String>>,
}

impl AccountIndex {
    /// An index of `accounts` under `key`.
    pub fn build<'a>(key: MatchKey, accounts: impl IntoIterator<Item = &'a Account>) -> Self {
        let accounts = accounts.into_iter();
        let mut index = AccountIndex {
            key,
            by_value: HashMap::with_capacity(accounts.size_hint().0),
        };
        for account in accounts {
            index.insert(account);
        }
        index
    }

    fn insert(&mut self, account: &Account) {
        if let Some(value) = self.key.account_value(account) {
            // Look up by &str first so the "value already present" case does not allocate a key.
            match self.by_value.get_mut(value) {
                Some(ids) => ids.insert(account.id.clone()),
                None => {
                    self.by_value
                        .insert(value.to_owned(), IdSet::One(account.id.clone()));
                }
            }
        }
    }
}

/// The key values whose organizations need re-matching when an account goes from `old` to `new`
/// (`None` = absent): both values if the account's value or id changed, none if neither did.
pub fn values_to_rematch(
    key: &MatchKey,
    old: Option<&Account>,
    new: Option<&Account>,
) -> Vec<String> {
    let old_entry = old.and_then(|a| key.account_value(a).map(|v| (v, a.id.as_str())));
    let new_entry = new.and_then(|a| key.account_value(a).map(|v| (v, a.id.as_str())));
    if old_entry == new_entry {
        return Vec::new();
    }
    let mut values: Vec<String> = old_entry
        .into_iter()
        .chain(new_entry)
        .map(|(value, _)| value.to_owned())
        .collect();
    values.sort_unstable();
    values.dedup();
    values
}

/// Matches one organization against the accounts of `index`, under the index's key.
pub fn match_org(org: &OrgKeys, index: &AccountIndex) -> OrgMatch {
    let mut first: Option<&IdSet<String>> = None;
    let mut union: Option<BTreeSet<&str>> = None;
    index.key.for_each_org_value(org, |value| {
        let Some(ids) = index.by_value.get(value) else {
            return;
        };
        // The usual case is one value hitting one account; only merge when a second set appears.
        match (&mut union, first) {
            (Some(union), _) => union.extend(ids.iter().map(String::as_str)),
            (None, None) => first = Some(ids),
            (None, Some(seen)) if seen == ids => {}
            (None, Some(seen)) => {
                let mut merged: BTreeSet<&str> = seen.iter().map(String::as_str).collect();
                merged.extend(ids.iter().map(String::as_str));
                union = Some(merged);
            }
        }
    });
    let candidates: BTreeSet<&str> = match (union, first) {
        (Some(union), _) => union,
        (None, Some(ids)) => ids.iter().map(String::as_str).collect(),
        (None, None) => BTreeSet::new(),
    };
    decide(candidates, || {
        index
            .key
            .org_values(org)
            .into_iter()
            .map(Cow::into_owned)
            .collect()
    })
}

/// The ambiguity decision: an organization whose key values hit no account is unmatched (with
/// its values, from `key_values`), one account is a match, more than one is ambiguous.
pub fn decide<S: AsRef<str> + Ord>(
    candidates: BTreeSet<S>,
    key_values: impl FnOnce() -> Vec<String>,
) -> OrgMatch {
    let mut candidates = candidates.into_iter();
    match (candidates.next(), candidates.next()) {
        (None, _) => OrgMatch::Unmatched {
            key_values: key_values(),
        },
        (Some(account_id), None) => OrgMatch::Matched {
            account_id: account_id.as_ref().to_owned(),
        },
        (Some(first), Some(second)) => OrgMatch::Ambiguous {
            candidates: [first, second]
                .into_iter()
                .chain(candidates)
                .map(|id| id.as_ref().to_owned())
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn key(zendesk_field: &str, account_attribute: &str) -> MatchKey {
        MatchKey::parse(zendesk_field, account_attribute).expect("valid key")
    }

    fn account(id: &str, attributes: &[(&str, &str)]) -> Account {
        Account {
            id: id.into(),
            name: format!("Account {id}"),
            owner: String::new(),
            attributes: attributes
                .iter()
                .map(|(name, value)| ((*name).to_owned(), AttributeValue::Text((*value).into())))
                .collect(),
            users: Vec::new(),
        }
    }

    fn org(id: u64, name: &str) -> OrgKeys {
        OrgKeys {
            id,
            name: name.into(),
            external_id: None,
            domain_names: Vec::new(),
            fields: BTreeMap::new(),
        }
    }

    fn matched(account_id: &str) -> OrgMatch {
        OrgMatch::Matched {
            account_id: account_id.into(),
        }
    }

    fn unmatched(key_values: &[&str]) -> OrgMatch {
        OrgMatch::Unmatched {
            key_values: key_values.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    fn ambiguous(candidates: &[&str]) -> OrgMatch {
        OrgMatch::Ambiguous {
            candidates: candidates.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    fn match_one(key: MatchKey, accounts: &[Account], org: &OrgKeys) -> OrgMatch {
        match_org(org, &AccountIndex::build(key, accounts))
    }

    #[test]
    fn every_key_spelling_parses_and_prints_back() {
        let cases = [
            ("id", ZendeskField::Id),
            ("name", ZendeskField::Name),
            ("external_id", ZendeskField::ExternalId),
            ("domain_names", ZendeskField::DomainNames),
            (
                "organization_fields.account_id",
                ZendeskField::OrganizationField("account_id".into()),
            ),
        ];
        for (text, field) in cases {
            assert_eq!(text.parse::<ZendeskField>(), Ok(field.clone()));
            assert_eq!(field.to_string(), text);
        }
        assert_eq!("id".parse::<AccountAttribute>(), Ok(AccountAttribute::Id));
        assert_eq!(
            "attributes.zendesk_org".parse::<AccountAttribute>(),
            Ok(AccountAttribute::Attribute("zendesk_org".into()))
        );
        let parsed = key("organization_fields.acct", "attributes.zd-Org_1");
        assert_eq!(parsed.account_attribute.to_string(), "attributes.zd-Org_1");
        assert_eq!(
            parsed.to_string(),
            "organization_fields.acct = attributes.zd-Org_1"
        );
    }

    #[test]
    fn bad_keys_are_refused_naming_the_side_at_fault() {
        for bad in [
            "",
            "ID",
            " id",
            "id ",
            "names",
            "organization_fields",
            "tags",
        ] {
            let err = MatchKey::parse(bad, "id").expect_err(bad);
            assert!(err.to_string().starts_with("zendesk_field: "), "{bad:?}");
            assert!(err.to_string().starts_with("zendesk_field: "), "{err}");
        }
        let err = MatchKey::parse("organization_fields.", "id").expect_err("empty key");
        assert_eq!(err, MatchKeyError::EmptyOrganizationFieldKey);
        assert!(err.to_string().starts_with("zendesk_field: "));

        for bad in ["", "Id", "name", "attribute.x", "attributes"] {
            let err = MatchKey::parse("name", bad).expect_err(bad);
            assert!(
                err.to_string().starts_with("account_attribute: "),
                "{bad:?}"
            );
            assert!(err.to_string().starts_with("account_attribute: "), "{err}");
        }
        for bad in ["attributes.", "attributes.has space", "attributes.a.b"] {
            let err = MatchKey::parse("name", bad).expect_err(bad);
            assert!(
                matches!(err, MatchKeyError::InvalidAttributeName { .. }),
                "{bad:?}: {err:?}"
            );
            assert!(err.to_string().starts_with("account_attribute: "));
        }
        // Both sides wrong: the Zendesk side is reported first.
        assert!(MatchKey::parse("nope", "nope")
            .expect_err("both")
            .to_string()
            .starts_with("zendesk_field: "));
    }

    #[test]
    fn only_text_attributes_may_be_keys() {
        let kinds: BTreeMap<&str, AttributeKind> = [
            ("zendesk_org", AttributeKind::Text),
            ("seats", AttributeKind::Number),
            ("renewal", AttributeKind::Date),
        ]
        .into();
        let lookup = |name: &str| kinds.get(name).copied();
        assert_eq!(
            key("name", "attributes.zendesk_org").validate_against(&lookup),
            Ok(())
        );
        assert_eq!(key("name", "id").validate_against(&lookup), Ok(()));
        // No account carries it yet: nothing contradicts a text attribute.
        assert_eq!(
            key("name", "attributes.later").validate_against(&lookup),
            Ok(())
        );
        for (name, kind, word) in [
            ("seats", AttributeKind::Number, "number"),
            ("renewal", AttributeKind::Date, "date"),
        ] {
            let err = key("name", &format!("attributes.{name}"))
                .validate_against(&lookup)
                .expect_err(name);
            assert_eq!(
                err,
                MatchKeyError::NotTextAttribute {
                    name: name.into(),
                    kind
                }
            );
            assert!(err.to_string().starts_with("account_attribute: "));
            let message = err.to_string();
            assert!(message.contains(&format!("attributes.{name}")), "{message}");
            assert!(message.contains(word), "{message}");
        }
    }

    #[test]
    fn org_values_per_zendesk_field() {
        let mut acme = org(1234, "Acme");
        acme.external_id = Some("ext-1".into());
        acme.domain_names = vec!["b.test".into(), "a.test".into(), "b.test".into()];
        acme.fields.insert("account_id".into(), "A-1".into());
        let values = |field: &str, acme: &OrgKeys| -> Vec<String> {
            key(field, "id")
                .org_values(acme)
                .into_iter()
                .map(Cow::into_owned)
                .collect()
        };
        assert_eq!(values("id", &acme), ["1234"]);
        assert_eq!(values("name", &acme), ["Acme"]);
        assert_eq!(values("external_id", &acme), ["ext-1"]);
        assert_eq!(values("domain_names", &acme), ["a.test", "b.test"]);
        assert_eq!(values("organization_fields.account_id", &acme), ["A-1"]);
        assert!(values("organization_fields.missing", &acme).is_empty());
        acme.external_id = None;
        assert!(values("external_id", &acme).is_empty());
    }

    #[test]
    fn every_zendesk_field_kind_matches() {
        let accounts = [
            account("A-1", &[("zendesk", "1234")]),
            account("A-2", &[("zendesk", "Acme")]),
            account("A-3", &[("zendesk", "ext-1")]),
            account("A-4", &[("zendesk", "acme.test")]),
        ];
        let mut acme = org(1234, "Acme");
        acme.external_id = Some("ext-1".into());
        acme.domain_names = vec!["mail.acme.test".into(), "acme.test".into()];
        acme.fields.insert("account_id".into(), "A-2".into());
        let by = |field: &str, attribute: &str| match_one(key(field, attribute), &accounts, &acme);
        assert_eq!(by("id", "attributes.zendesk"), matched("A-1"));
        assert_eq!(by("name", "attributes.zendesk"), matched("A-2"));
        assert_eq!(by("external_id", "attributes.zendesk"), matched("A-3"));
        assert_eq!(by("domain_names", "attributes.zendesk"), matched("A-4"));
        assert_eq!(by("organization_fields.account_id", "id"), matched("A-2"));
        assert_eq!(
            by("organization_fields.other", "id"),
            unmatched(&[]),
            "no such field on the org"
        );
    }

    #[test]
    fn key_stored_in_zendesk_as_an_org_field_holding_the_account_id() {
        let accounts = [account("acct-17", &[]), account("acct-18", &[])];
        let mut acme = org(1, "Acme");
        acme.fields.insert("account_id".into(), "acct-17".into());
        let mut globex = org(2, "Globex");
        globex.fields.insert("account_id".into(), "acct-99".into());
        let key = key("organization_fields.account_id", "id");
        assert_eq!(match_one(key.clone(), &accounts, &acme), matched("acct-17"));
        assert_eq!(match_one(key, &accounts, &globex), unmatched(&["acct-99"]));
    }

    #[test]
    fn key_stored_on_the_account_as_the_org_name_or_id() {
        let accounts = [
            account("A", &[("zendesk_org", "Acme Inc")]),
            account("B", &[("zendesk_org", "360001")]),
        ];
        assert_eq!(
            match_one(
                key("name", "attributes.zendesk_org"),
                &accounts,
                &org(7, "Acme Inc")
            ),
            matched("A")
        );
        assert_eq!(
            match_one(
                key("id", "attributes.zendesk_org"),
                &accounts,
                &org(360001, "Whatever")
            ),
            matched("B")
        );
        assert_eq!(
            match_one(
                key("id", "attributes.zendesk_org"),
                &accounts,
                &org(360002, "Acme Inc")
            ),
            unmatched(&["360002"])
        );
    }

    #[test]
    fn comparison_is_case_sensitive_and_untrimmed() {
        let accounts = [account("A", &[("zendesk_org", "Acme")])];
        let key = key("name", "attributes.zendesk_org");
        assert_eq!(
            match_one(key.clone(), &accounts, &org(1, "Acme")),
            matched("A")
        );
        for other in ["acme", "ACME", " Acme", "Acme ", "Acme\n"] {
            assert_eq!(
                match_one(key.clone(), &accounts, &org(1, other)),
                unmatched(&[other]),
                "{other:?}"
            );
        }
        let padded = [account("A", &[("zendesk_org", " Acme ")])];
        assert_eq!(
            match_one(key.clone(), &padded, &org(1, "Acme")),
            unmatched(&["Acme"])
        );
        assert_eq!(match_one(key, &padded, &org(1, " Acme ")), matched("A"));
    }

    #[test]
    fn blank_values_match_nothing() {
        let accounts = [account("A", &[("zendesk_org", "")]), account("B", &[])];
        let mut blank = org(1, "");
        blank.external_id = Some(String::new());
        blank.domain_names = vec![String::new()];
        blank.fields.insert("account_id".into(), String::new());
        for field in [
            "name",
            "external_id",
            "domain_names",
            "organization_fields.account_id",
        ] {
            assert_eq!(
                match_one(key(field, "attributes.zendesk_org"), &accounts, &blank),
                unmatched(&[]),
                "{field}"
            );
        }
    }

    #[test]
    fn non_text_attribute_values_carry_no_key() {
        let mut numeric = account("A", &[]);
        numeric
            .attributes
            .insert("zendesk_org".into(), AttributeValue::Number(5.0));
        let mut dated = account("B", &[]);
        dated.attributes.insert(
            "zendesk_org".into(),
            AttributeValue::Date(Utc.timestamp_opt(5, 0).single().expect("valid time")),
        );
        let key = key("id", "attributes.zendesk_org");
        assert_eq!(key.account_value(&numeric), None);
        assert_eq!(key.account_value(&dated), None);
        assert_eq!(
            match_one(key, &[numeric, dated], &org(5, "x")),
            unmatched(&["5"])
        );
    }

    #[test]
    fn an_org_matching_two_accounts_is_ambiguous() {
        let accounts = [
            account("B", &[("zendesk_org", "Acme")]),
            account("A", &[("zendesk_org", "Acme")]),
            account("C", &[("zendesk_org", "Globex")]),
        ];
        let key = key("name", "attributes.zendesk_org");
        assert_eq!(
            match_one(key.clone(), &accounts, &org(1, "Acme")),
            ambiguous(&["A", "B"])
        );
        assert_eq!(match_one(key, &accounts, &org(2, "Globex")), matched("C"));
    }

    #[test]
    fn domains_match_when_any_one_hits_and_are_ambiguous_across_accounts() {
        let accounts = [
            account("A", &[("domain", "acme.test")]),
            account("B", &[("domain", "globex.test")]),
            account("C", &[("domain", "acme.test")]),
        ];
        let key = key("domain_names", "attributes.domain");
        let mut one_hit = org(1, "Acme");
        one_hit.domain_names = vec!["unknown.test".into(), "globex.test".into()];
        assert_eq!(match_one(key.clone(), &accounts, &one_hit), matched("B"));

        let mut two_accounts = org(2, "Both");
        two_accounts.domain_names = vec!["globex.test".into(), "acme.test".into()];
        assert_eq!(
            match_one(key.clone(), &accounts[..2], &two_accounts),
            ambiguous(&["A", "B"])
        );
        assert_eq!(
            match_one(key.clone(), &accounts, &two_accounts),
            ambiguous(&["A", "B", "C"])
        );

        let same = [
            account("A", &[("domain", "acme.test")]),
            account("Z", &[("domain", "other.test")]),
        ];
        let mut two_domains_one_account = org(3, "Acme");
        two_domains_one_account.domain_names = vec!["acme.test".into(), "acme.test".into()];
        assert_eq!(
            match_one(key.clone(), &same, &two_domains_one_account),
            matched("A")
        );

        let mut none = org(4, "None");
        none.domain_names = vec!["z.test".into(), "y.test".into()];
        assert_eq!(
            match_one(key, &same, &none),
            unmatched(&["y.test", "z.test"])
        );
    }

    #[test]
    fn several_orgs_may_match_one_account() {
        let accounts = [account("A", &[("domain", "acme.test")]), account("B", &[])];
        let index = AccountIndex::build(key("domain_names", "attributes.domain"), &accounts);
        let mut first = org(1, "Acme EU");
        first.domain_names = vec!["acme.test".into()];
        let mut second = org(2, "Acme US");
        second.domain_names = vec!["acme.test".into(), "acme-us.test".into()];
        let third = org(3, "Stray");
        let results: Vec<_> = [&first, &second, &third]
            .into_iter()
            .map(|org| (org.id, match_org(org, &index)))
            .collect();
        assert_eq!(
            results,
            vec![(1, matched("A")), (2, matched("A")), (3, unmatched(&[]))]
        );
    }

    #[test]
    fn the_ambiguity_decision_counts_distinct_accounts() {
        let set = |ids: &[&str]| {
            ids.iter()
                .map(|id| (*id).to_owned())
                .collect::<BTreeSet<_>>()
        };
        let values = || vec!["v".to_owned()];
        assert_eq!(decide(set(&[]), values), unmatched(&["v"]));
        assert_eq!(decide(set(&["A", "A"]), values), matched("A"));
        assert_eq!(decide(set(&["B", "A"]), values), ambiguous(&["A", "B"]));
    }

    #[test]
    fn account_changes_name_the_values_to_rematch() {
        let key = key("name", "attributes.zendesk_org");
        let before = account("A", &[("zendesk_org", "Acme")]);
        let renamed = account("A", &[("zendesk_org", "Acme Inc")]);
        let mut unrelated_change = before.clone();
        unrelated_change.name = "New display name".into();
        assert!(values_to_rematch(&key, Some(&before), Some(&unrelated_change)).is_empty());
        assert_eq!(
            values_to_rematch(&key, Some(&unrelated_change), Some(&renamed)),
            ["Acme", "Acme Inc"]
        );
        let added = account("B", &[("zendesk_org", "Globex")]);
        assert_eq!(values_to_rematch(&key, None, Some(&added)), ["Globex"]);
        assert_eq!(values_to_rematch(&key, Some(&renamed), None), ["Acme Inc"]);
        let keyless = account("C", &[]);
        assert!(values_to_rematch(&key, None, Some(&keyless)).is_empty());
        assert!(values_to_rematch(&key, None, None).is_empty());
    }
}
