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
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use crate::domain::account::{Account, AccountUser, AttributeKind, AttributeValue};
use crate::store::zendesk_records::OrganizationRecord;

/// Name of the Zendesk side of a match key, as used in error messages and settings.
pub const ZENDESK_FIELD: &str = "zendesk_field";
/// Name of the account side of a match key, as used in error messages and settings.
pub const ACCOUNT_ATTRIBUTE: &str = "account_attribute";

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
    #[error("zendesk_field: organization_fields.<key> needs a non-empty field key")]
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

impl MatchKeyError {
    /// Which side of the key is at fault: [`ZENDESK_FIELD`] or [`ACCOUNT_ATTRIBUTE`].
    pub fn field(&self) -> &'static str {
        match self {
            MatchKeyError::UnknownZendeskField { .. }
            | MatchKeyError::EmptyOrganizationFieldKey => ZENDESK_FIELD,
            MatchKeyError::UnknownAccountAttribute { .. }
            | MatchKeyError::InvalidAttributeName { .. }
            | MatchKeyError::NotTextAttribute { .. } => ACCOUNT_ATTRIBUTE,
        }
    }
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
                Some("") => Err(MatchKeyError::EmptyOrganizationFieldKey),
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

impl From<(u64, &OrganizationRecord)> for OrgKeys {
    fn from((id, record): (u64, &OrganizationRecord)) -> Self {
        OrgKeys {
            id,
            name: record.name.clone(),
            external_id: record.has_external_id.then(|| record.external_id.clone()),
            domain_names: record.domain_names.clone(),
            fields: record.fields.clone(),
        }
    }
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

    /// Removes `id`; true when no id is left.
    fn remove(&mut self, id: &T) -> bool {
        match self {
            IdSet::One(existing) => existing == id,
            IdSet::Many(ids) => {
                ids.remove(id);
                if ids.len() == 1 {
                    if let Some(last) = ids.pop_first() {
                        *self = IdSet::One(last);
                    }
                    return false;
                }
                ids.is_empty()
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
    /// An empty index for `key`.
    pub fn new(key: MatchKey) -> Self {
        AccountIndex {
            key,
            by_value: HashMap::new(),
        }
    }

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

    /// The key this index is built on.
    pub fn key(&self) -> &MatchKey {
        &self.key
    }

    /// The ids of the accounts whose key value is `value`, sorted.
    pub fn accounts_with(&self, value: &str) -> impl Iterator<Item = &str> {
        self.by_value
            .get(value)
            .into_iter()
            .flat_map(IdSet::iter)
            .map(String::as_str)
    }

    /// Records `new` in place of `old` (the account as this index last saw it, if any).
    /// Returns the key values whose organizations must be re-matched.
    pub fn upsert_account(&mut self, old: Option<&Account>, new: &Account) -> Vec<String> {
        let affected = values_to_rematch(&self.key, old, Some(new));
        if let Some(old) = old {
            self.remove(old);
        }
        self.insert(new);
        affected
    }

    /// Forgets `account`. Returns the key values whose organizations must be re-matched.
    pub fn remove_account(&mut self, account: &Account) -> Vec<String> {
        let affected = values_to_rematch(&self.key, Some(account), None);
        self.remove(account);
        affected
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

    fn remove(&mut self, account: &Account) {
        if let Some(value) = self.key.account_value(account) {
            if let Some(ids) = self.by_value.get_mut(value) {
                if ids.remove(&account.id) {
                    self.by_value.remove(value);
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
    match (union, first) {
        // Two unequal non-empty sets merged always hold at least two accounts.
        (Some(union), _) => OrgMatch::Ambiguous {
            candidates: union.into_iter().map(str::to_owned).collect(),
        },
        (None, Some(IdSet::One(account_id))) => OrgMatch::Matched {
            account_id: account_id.clone(),
        },
        (None, Some(IdSet::Many(ids))) => OrgMatch::Ambiguous {
            candidates: ids.iter().cloned().collect(),
        },
        (None, None) => unmatched_org(index, org),
    }
}

fn unmatched_org(index: &AccountIndex, org: &OrgKeys) -> OrgMatch {
    OrgMatch::Unmatched {
        key_values: index
            .key
            .org_values(org)
            .into_iter()
            .map(Cow::into_owned)
            .collect(),
    }
}

/// Matches every organization from scratch against `index`, in the order given.
pub fn match_all<'a>(
    orgs: impl IntoIterator<Item = &'a OrgKeys>,
    index: &AccountIndex,
) -> Vec<(u64, OrgMatch)> {
    orgs.into_iter()
        .map(|org| (org.id, match_org(org, index)))
        .collect()
}

/// Key value -> ids of the organizations carrying it, for one match key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgIndex {
    key: MatchKey,
    by_value: HashMap<String, IdSet<u64>>,
}

impl OrgIndex {
    /// An empty index for `key`.
    pub fn new(key: MatchKey) -> Self {
        OrgIndex {
            key,
            by_value: HashMap::new(),
        }
    }

    /// An index of `orgs` under `key`.
    pub fn build<'a>(key: MatchKey, orgs: impl IntoIterator<Item = &'a OrgKeys>) -> Self {
        let orgs = orgs.into_iter();
        let mut index = OrgIndex {
            key,
            by_value: HashMap::with_capacity(orgs.size_hint().0),
        };
        for org in orgs {
            index.insert(org);
        }
        index
    }

    /// The key this index is built on.
    pub fn key(&self) -> &MatchKey {
        &self.key
    }

    /// Records `new` in place of `old` (the organization as this index last saw it, if any).
    pub fn upsert_org(&mut self, old: Option<&OrgKeys>, new: &OrgKeys) {
        if let Some(old) = old {
            self.remove(old);
        }
        self.insert(new);
    }

    /// Forgets `org`.
    pub fn remove_org(&mut self, org: &OrgKeys) {
        self.remove(org);
    }

    /// The organizations carrying any of `values`, sorted.
    pub fn orgs_with<'v>(&self, values: impl IntoIterator<Item = &'v str>) -> BTreeSet<u64> {
        values
            .into_iter()
            .filter_map(|value| self.by_value.get(value))
            .flat_map(IdSet::iter)
            .copied()
            .collect()
    }

    fn insert(&mut self, org: &OrgKeys) {
        let by_value = &mut self.by_value;
        self.key
            .for_each_org_value(org, |value| match by_value.get_mut(value) {
                Some(ids) => ids.insert(org.id),
                None => {
                    by_value.insert(value.to_owned(), IdSet::One(org.id));
                }
            });
    }

    fn remove(&mut self, org: &OrgKeys) {
        let by_value = &mut self.by_value;
        self.key.for_each_org_value(org, |value| {
            // A repeated domain finds its entry already gone: removing twice is harmless.
            if let Some(ids) = by_value.get_mut(value) {
                if ids.remove(&org.id) {
                    by_value.remove(value);
                }
            }
        });
    }
}

/// The account user a Zendesk user with `email` is, inside `account`: whole address, compared lower-cased.
pub fn match_user<'a>(email: &str, account: &'a Account) -> Option<&'a AccountUser> {
    if email.is_empty() {
        return None;
    }
    account
        .users
        .iter()
        .find(|user| same_email(&user.email, email))
}

/// The account and account user of a Zendesk user, looked up only in the account that
/// `org_match` (the user's or the ticket's organization) matched; `find_account` resolves an id.
pub fn match_user_in_org<'a>(
    email: &str,
    org_match: Option<&OrgMatch>,
    find_account: impl FnOnce(&str) -> Option<&'a Account>,
) -> Option<(&'a Account, &'a AccountUser)> {
    let account = find_account(org_match?.account_id()?)?;
    match_user(email, account).map(|user| (account, user))
}

fn same_email(left: &str, right: &str) -> bool {
    left.chars()
        .flat_map(char::to_lowercase)
        .eq(right.chars().flat_map(char::to_lowercase))
}

/// Counts of a matching run, as `GetStatus` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatchStats {
    /// Organizations considered.
    pub organizations_total: u64,
    /// Organizations matched to exactly one account.
    pub matched: u64,
    /// Organizations with no account.
    pub unmatched: u64,
    /// Organizations with more than one candidate account.
    pub ambiguous: u64,
    /// Accounts matched by at least one organization.
    pub accounts_with_org: u64,
    /// Accounts matched by no organization.
    pub accounts_without_org: u64,
}

impl MatchStats {
    /// The statistics of `matches` (one per organization) over `account_count` accounts.
    pub fn from_matches<'a>(
        matches: impl IntoIterator<Item = &'a OrgMatch>,
        account_count: u64,
    ) -> Self {
        let mut stats = MatchStats::default();
        let mut accounts_with_org: HashSet<&str> = HashSet::new();
        for org_match in matches {
            stats.organizations_total += 1;
            match org_match {
                OrgMatch::Matched { account_id } => {
                    stats.matched += 1;
                    accounts_with_org.insert(account_id);
                }
                OrgMatch::Unmatched { .. } => stats.unmatched += 1,
                OrgMatch::Ambiguous { .. } => stats.ambiguous += 1,
            }
        }
        stats.accounts_with_org = accounts_with_org.len() as u64;
        stats.accounts_without_org = account_count.saturating_sub(stats.accounts_with_org);
        stats
    }
}

/// Running statistics that follow match changes one organization at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchTally {
    organizations_total: u64,
    matched: u64,
    unmatched: u64,
    ambiguous: u64,
    account_count: u64,
    // Matched organizations per account: an account leaves "with org" only when its last one goes.
    orgs_per_account: HashMap<String, u64>,
}

impl MatchTally {
    /// A tally with no organizations over `account_count` accounts.
    pub fn new(account_count: u64) -> Self {
        MatchTally {
            account_count,
            ..MatchTally::default()
        }
    }

    /// A tally of `matches` (one per organization) over `account_count` accounts.
    pub fn from_matches<'a>(
        matches: impl IntoIterator<Item = &'a OrgMatch>,
        account_count: u64,
    ) -> Self {
        let mut tally = MatchTally::new(account_count);
        for org_match in matches {
            tally.apply(None, Some(org_match));
        }
        tally
    }

    /// Sets how many accounts exist; re-match the removed account's organizations too, or
    /// `accounts_with_org` still counts it.
    pub fn set_account_count(&mut self, account_count: u64) {
        self.account_count = account_count;
    }

    /// Records one organization's match going from `old` to `new` (`None` = organization absent).
    pub fn apply(&mut self, old: Option<&OrgMatch>, new: Option<&OrgMatch>) {
        if let Some(old) = old {
            self.organizations_total = self.organizations_total.saturating_sub(1);
            match old {
                OrgMatch::Matched { account_id } => {
                    self.matched = self.matched.saturating_sub(1);
                    if let Some(count) = self.orgs_per_account.get_mut(account_id) {
                        *count = count.saturating_sub(1);
                        if *count == 0 {
                            self.orgs_per_account.remove(account_id);
                        }
                    }
                }
                OrgMatch::Unmatched { .. } => self.unmatched = self.unmatched.saturating_sub(1),
                OrgMatch::Ambiguous { .. } => self.ambiguous = self.ambiguous.saturating_sub(1),
            }
        }
        if let Some(new) = new {
            self.organizations_total += 1;
            match new {
                OrgMatch::Matched { account_id } => {
                    self.matched += 1;
                    *self.orgs_per_account.entry(account_id.clone()).or_default() += 1;
                }
                OrgMatch::Unmatched { .. } => self.unmatched += 1,
                OrgMatch::Ambiguous { .. } => self.ambiguous += 1,
            }
        }
    }

    /// The statistics as they stand.
    pub fn stats(&self) -> MatchStats {
        let accounts_with_org = self.orgs_per_account.len() as u64;
        MatchStats {
            organizations_total: self.organizations_total,
            matched: self.matched,
            unmatched: self.unmatched,
            ambiguous: self.ambiguous,
            accounts_with_org,
            accounts_without_org: self.account_count.saturating_sub(accounts_with_org),
        }
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
            assert_eq!(err.field(), ZENDESK_FIELD, "{bad:?}");
            assert!(err.to_string().starts_with("zendesk_field: "), "{err}");
        }
        let err = MatchKey::parse("organization_fields.", "id").expect_err("empty key");
        assert_eq!(err, MatchKeyError::EmptyOrganizationFieldKey);
        assert_eq!(err.field(), ZENDESK_FIELD);

        for bad in ["", "Id", "name", "attribute.x", "attributes"] {
            let err = MatchKey::parse("name", bad).expect_err(bad);
            assert_eq!(err.field(), ACCOUNT_ATTRIBUTE, "{bad:?}");
            assert!(err.to_string().starts_with("account_attribute: "), "{err}");
        }
        for bad in ["attributes.", "attributes.has space", "attributes.a.b"] {
            let err = MatchKey::parse("name", bad).expect_err(bad);
            assert!(
                matches!(err, MatchKeyError::InvalidAttributeName { .. }),
                "{bad:?}: {err:?}"
            );
            assert_eq!(err.field(), ACCOUNT_ATTRIBUTE);
        }
        // Both sides wrong: the Zendesk side is reported first.
        assert_eq!(
            MatchKey::parse("nope", "nope").expect_err("both").field(),
            ZENDESK_FIELD
        );
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
            assert_eq!(err.field(), ACCOUNT_ATTRIBUTE);
            let message = err.to_string();
            assert!(message.contains(&format!("attributes.{name}")), "{message}");
            assert!(message.contains(word), "{message}");
        }
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
        let keys = OrgKeys::from((42, &record));
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
            OrgKeys::from((42, &with_external)).external_id.as_deref(),
            Some("ext-9")
        );
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
        let results = match_all([&first, &second, &third], &index);
        assert_eq!(
            results,
            vec![(1, matched("A")), (2, matched("A")), (3, unmatched(&[]))]
        );
        let stats = MatchStats::from_matches(results.iter().map(|(_, m)| m), 2);
        assert_eq!(
            stats,
            MatchStats {
                organizations_total: 3,
                matched: 2,
                unmatched: 1,
                ambiguous: 0,
                accounts_with_org: 1,
                accounts_without_org: 1,
            }
        );
    }

    fn with_users(mut account: Account, emails: &[&str]) -> Account {
        account.users = emails
            .iter()
            .map(|email| AccountUser {
                email: (*email).into(),
                name: String::new(),
            })
            .collect();
        account
    }

    #[test]
    fn users_match_by_whole_email_ignoring_case() {
        let acme = with_users(account("A", &[]), &["Jane.Doe@Acme.test", "bob@acme.test"]);
        assert_eq!(
            match_user("jane.doe@acme.test", &acme).map(|u| u.email.as_str()),
            Some("Jane.Doe@Acme.test")
        );
        assert_eq!(
            match_user("BOB@ACME.TEST", &acme).map(|u| u.email.as_str()),
            Some("bob@acme.test")
        );
        for other in [
            "jane@acme.test",
            "bob@acme.test ",
            "bob@acme",
            "ob@acme.test",
            "",
        ] {
            assert_eq!(match_user(other, &acme), None, "{other:?}");
        }
        let unicode = with_users(account("U", &[]), &["ÄRGER@acme.test"]);
        assert!(match_user("ärger@ACME.test", &unicode).is_some());
    }

    #[test]
    fn users_match_only_inside_the_matched_account() {
        let accounts = [
            with_users(account("A", &[]), &["jane@acme.test"]),
            with_users(account("B", &[]), &["joe@globex.test"]),
        ];
        let find = |id: &str| accounts.iter().find(|account| account.id == id);
        let in_a = matched("A");
        let found = match_user_in_org("JANE@acme.test", Some(&in_a), find)
            .map(|(account, user)| (account.id.as_str(), user.email.as_str()));
        assert_eq!(found, Some(("A", "jane@acme.test")));
        // Joe exists, but under B: a user of org matched to A is not Joe of B.
        assert_eq!(
            match_user_in_org("joe@globex.test", Some(&in_a), find),
            None
        );
        assert_eq!(
            match_user_in_org("jane@acme.test", Some(&unmatched(&["x"])), find),
            None
        );
        assert_eq!(
            match_user_in_org("jane@acme.test", Some(&ambiguous(&["A", "B"])), find),
            None
        );
        assert_eq!(match_user_in_org("jane@acme.test", None, find), None);
        assert_eq!(
            match_user_in_org("jane@acme.test", Some(&matched("gone")), find),
            None
        );
    }

    #[test]
    fn account_changes_name_the_values_to_rematch() {
        let key = key("name", "attributes.zendesk_org");
        let before = account("A", &[("zendesk_org", "Acme")]);
        let renamed = account("A", &[("zendesk_org", "Acme Inc")]);
        let mut index = AccountIndex::build(key.clone(), [&before]);
        let mut unrelated_change = before.clone();
        unrelated_change.name = "New display name".into();
        assert!(index
            .upsert_account(Some(&before), &unrelated_change)
            .is_empty());
        assert_eq!(
            index.upsert_account(Some(&unrelated_change), &renamed),
            ["Acme", "Acme Inc"]
        );
        assert_eq!(index.accounts_with("Acme").count(), 0);
        assert_eq!(index.accounts_with("Acme Inc").collect::<Vec<_>>(), ["A"]);
        let added = account("B", &[("zendesk_org", "Globex")]);
        assert_eq!(index.upsert_account(None, &added), ["Globex"]);
        assert_eq!(index.remove_account(&renamed), ["Acme Inc"]);
        assert_eq!(index, AccountIndex::build(key.clone(), [&added]));
        let keyless = account("C", &[]);
        assert!(index.upsert_account(None, &keyless).is_empty());
        assert!(values_to_rematch(&key, None, None).is_empty());
    }

    #[test]
    fn org_index_finds_orgs_by_any_value() {
        let key = key("domain_names", "id");
        let mut first = org(1, "One");
        first.domain_names = vec!["a.test".into(), "b.test".into()];
        let mut second = org(2, "Two");
        second.domain_names = vec!["b.test".into()];
        let mut index = OrgIndex::build(key.clone(), [&first, &second]);
        assert_eq!(index.orgs_with(["b.test"]), BTreeSet::from([1, 2]));
        assert_eq!(index.orgs_with(["a.test", "zzz"]), BTreeSet::from([1]));
        let mut moved = first.clone();
        moved.domain_names = vec!["c.test".into()];
        index.upsert_org(Some(&first), &moved);
        assert_eq!(index.orgs_with(["a.test"]), BTreeSet::new());
        assert_eq!(
            index.orgs_with(["b.test", "c.test"]),
            BTreeSet::from([1, 2])
        );
        index.remove_org(&second);
        assert_eq!(index, OrgIndex::build(key, [&moved]));
    }

    #[test]
    fn tally_follows_match_changes() {
        let mut tally = MatchTally::new(3);
        tally.apply(None, Some(&matched("A")));
        tally.apply(None, Some(&matched("A")));
        tally.apply(None, Some(&ambiguous(&["A", "B"])));
        tally.apply(None, Some(&unmatched(&[])));
        assert_eq!(
            tally.stats(),
            MatchStats {
                organizations_total: 4,
                matched: 2,
                unmatched: 1,
                ambiguous: 1,
                accounts_with_org: 1,
                accounts_without_org: 2,
            }
        );
        tally.apply(Some(&matched("A")), Some(&matched("B")));
        assert_eq!(tally.stats().accounts_with_org, 2);
        tally.apply(Some(&matched("A")), None);
        tally.apply(Some(&ambiguous(&["A", "B"])), Some(&matched("C")));
        tally.set_account_count(4);
        assert_eq!(
            tally.stats(),
            MatchStats {
                organizations_total: 3,
                matched: 2,
                unmatched: 1,
                ambiguous: 0,
                accounts_with_org: 2,
                accounts_without_org: 2,
            }
        );
        let same = MatchStats::from_matches([&matched("B"), &matched("C"), &unmatched(&[])], 4);
        assert_eq!(tally.stats(), same);
    }
}

#[cfg(test)]
mod incremental_equals_scratch {
    use super::*;
    use proptest::prelude::*;

    const ACCOUNT_IDS: [&str; 6] = ["a0", "a1", "a2", "a3", "1", "2"];
    // Small pools so values collide often, including case and whitespace near-misses and blanks.
    const VALUES: [&str; 9] = ["1", "2", "3", "a0", "a1", "x", "X", " x", ""];
    const KEYS: [(&str, &str); 7] = [
        ("id", "attributes.zendesk_org"),
        ("name", "attributes.zendesk_org"),
        ("external_id", "attributes.zendesk_org"),
        ("domain_names", "attributes.domain"),
        ("organization_fields.account_id", "id"),
        ("organization_fields.account_id", "attributes.zendesk_org"),
        ("domain_names", "id"),
    ];

    #[derive(Debug, Clone)]
    enum Op {
        UpsertAccount {
            id: usize,
            zendesk_org: Option<usize>,
            domain: Option<usize>,
            numeric: bool,
        },
        RemoveAccount(usize),
        UpsertOrg {
            id: u64,
            name: usize,
            external_id: Option<usize>,
            domains: Vec<usize>,
            field: Option<usize>,
        },
        RemoveOrg(u64),
        ChangeKey(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let value = 0..VALUES.len();
        prop_oneof![
            4 => (
                0..ACCOUNT_IDS.len(),
                proptest::option::of(value.clone()),
                proptest::option::of(value.clone()),
                proptest::bool::weighted(0.15),
            )
                .prop_map(|(id, zendesk_org, domain, numeric)| Op::UpsertAccount {
                    id,
                    zendesk_org,
                    domain,
                    numeric,
                }),
            1 => (0..ACCOUNT_IDS.len()).prop_map(Op::RemoveAccount),
            4 => (
                1..=5u64,
                value.clone(),
                proptest::option::of(value.clone()),
                proptest::collection::vec(value.clone(), 0..4),
                proptest::option::of(value),
            )
                .prop_map(|(id, name, external_id, domains, field)| Op::UpsertOrg {
                    id,
                    name,
                    external_id,
                    domains,
                    field,
                }),
            1 => (1..=5u64).prop_map(Op::RemoveOrg),
            1 => (0..KEYS.len()).prop_map(Op::ChangeKey),
        ]
    }

    fn key_at(index: usize) -> MatchKey {
        let (zendesk_field, account_attribute) = KEYS[index];
        MatchKey::parse(zendesk_field, account_attribute).expect("test keys are valid")
    }

    /// The stored data plus everything kept incrementally beside it.
    struct World {
        accounts: BTreeMap<String, Account>,
        orgs: BTreeMap<u64, OrgKeys>,
        account_index: AccountIndex,
        org_index: OrgIndex,
        matches: BTreeMap<u64, OrgMatch>,
        tally: MatchTally,
    }

    impl World {
        fn new(key: MatchKey) -> Self {
            World {
                accounts: BTreeMap::new(),
                orgs: BTreeMap::new(),
                account_index: AccountIndex::new(key.clone()),
                org_index: OrgIndex::new(key),
                matches: BTreeMap::new(),
                tally: MatchTally::new(0),
            }
        }

        fn rematch(&mut self, org_ids: BTreeSet<u64>) {
            for id in org_ids {
                let org = &self.orgs[&id];
                let new = match_org(org, &self.account_index);
                let old = self.matches.insert(id, new.clone());
                self.tally.apply(old.as_ref(), Some(&new));
            }
        }

        fn apply(&mut self, op: Op) {
            match op {
                Op::UpsertAccount {
                    id,
                    zendesk_org,
                    domain,
                    numeric,
                } => {
                    let mut new = Account {
                        id: ACCOUNT_IDS[id].into(),
                        name: String::new(),
                        owner: String::new(),
                        attributes: BTreeMap::new(),
                        users: Vec::new(),
                    };
                    if let Some(value) = zendesk_org {
                        let value = if numeric {
                            AttributeValue::Number(value as f64)
                        } else {
                            AttributeValue::Text(VALUES[value].into())
                        };
                        new.attributes.insert("zendesk_org".into(), value);
                    }
                    if let Some(value) = domain {
                        new.attributes
                            .insert("domain".into(), AttributeValue::Text(VALUES[value].into()));
                    }
                    let old = self.accounts.insert(new.id.clone(), new.clone());
                    let values = self.account_index.upsert_account(old.as_ref(), &new);
                    self.tally.set_account_count(self.accounts.len() as u64);
                    let affected = self.org_index.orgs_with(values.iter().map(String::as_str));
                    self.rematch(affected);
                }
                Op::RemoveAccount(id) => {
                    if let Some(old) = self.accounts.remove(ACCOUNT_IDS[id]) {
                        let values = self.account_index.remove_account(&old);
                        self.tally.set_account_count(self.accounts.len() as u64);
                        let affected = self.org_index.orgs_with(values.iter().map(String::as_str));
                        self.rematch(affected);
                    }
                }
                Op::UpsertOrg {
                    id,
                    name,
                    external_id,
                    domains,
                    field,
                } => {
                    let new = OrgKeys {
                        id,
                        name: VALUES[name].into(),
                        external_id: external_id.map(|value| VALUES[value].into()),
                        domain_names: domains.iter().map(|&value| VALUES[value].into()).collect(),
                        fields: field
                            .map(|value| ("account_id".to_owned(), VALUES[value].to_owned()))
                            .into_iter()
                            .collect(),
                    };
                    let old = self.orgs.insert(id, new.clone());
                    self.org_index.upsert_org(old.as_ref(), &new);
                    self.rematch(BTreeSet::from([id]));
                }
                Op::RemoveOrg(id) => {
                    if let Some(old) = self.orgs.remove(&id) {
                        self.org_index.remove_org(&old);
                        let old_match = self.matches.remove(&id);
                        self.tally.apply(old_match.as_ref(), None);
                    }
                }
                Op::ChangeKey(index) => {
                    // A new key changes every value: both indexes and all matches are rebuilt.
                    let key = key_at(index);
                    self.account_index = AccountIndex::build(key.clone(), self.accounts.values());
                    self.org_index = OrgIndex::build(key, self.orgs.values());
                    self.matches = match_all(self.orgs.values(), &self.account_index)
                        .into_iter()
                        .collect();
                    self.tally =
                        MatchTally::from_matches(self.matches.values(), self.accounts.len() as u64);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn incremental_matches_equal_a_rematch_from_scratch(
            start in 0..KEYS.len(),
            ops in proptest::collection::vec(op(), 0..60),
        ) {
            let mut world = World::new(key_at(start));
            for op in ops {
                world.apply(op);
            }
            let key = world.account_index.key().clone();
            let scratch_accounts = AccountIndex::build(key.clone(), world.accounts.values());
            prop_assert_eq!(&world.account_index, &scratch_accounts);
            prop_assert_eq!(&world.org_index, &OrgIndex::build(key, world.orgs.values()));
            let scratch: BTreeMap<u64, OrgMatch> = match_all(world.orgs.values(), &scratch_accounts)
                .into_iter()
                .collect();
            prop_assert_eq!(&world.matches, &scratch);
            prop_assert_eq!(
                world.tally.stats(),
                MatchStats::from_matches(scratch.values(), world.accounts.len() as u64)
            );
        }
    }
}
