//! Matching kept in the store: key-value indexes on both sides, each organization's match, and the
//! account -> organizations map, updated in the same write transaction as whatever changed them.
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use prost::Message;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

use crate::domain::account::Account;
use crate::domain::matching::{decide, match_org, AccountIndex, MatchKey, OrgMatch};

use super::records::decode_account;
use super::sync_state::IntegrationRecord;
use super::tables::{self, meta_keys};
use super::zendesk_records::OrganizationRecord;
use super::{Store, StoreError};

/// An organization's match as stored.
#[derive(Clone, PartialEq, Message)]
pub struct OrgMatchRecord {
    /// 1 matched, 2 unmatched, 3 ambiguous.
    #[prost(uint32, tag = "1")]
    pub state: u32,
    /// The matched account.
    #[prost(string, tag = "2")]
    pub account_id: String,
    /// Candidate accounts of an ambiguous organization, sorted.
    #[prost(string, repeated, tag = "3")]
    pub candidates: Vec<String>,
    /// The organization's key values under the current key, sorted.
    #[prost(string, repeated, tag = "4")]
    pub key_values: Vec<String>,
}

const MATCHED: u32 = 1;
const UNMATCHED: u32 = 2;
const AMBIGUOUS: u32 = 3;

impl OrgMatchRecord {
    /// The stored form of `found`, with the organization's key values under the current key.
    fn of(found: &OrgMatch, key_values: Vec<String>) -> Self {
        let (state, account_id, candidates) = match found {
            OrgMatch::Matched { account_id } => (MATCHED, account_id.clone(), Vec::new()),
            OrgMatch::Unmatched { .. } => (UNMATCHED, String::new(), Vec::new()),
            OrgMatch::Ambiguous { candidates } => (AMBIGUOUS, String::new(), candidates.clone()),
        };
        Self {
            state,
            account_id,
            candidates,
            key_values,
        }
    }

    /// The domain view of the stored match.
    pub fn to_match(&self) -> OrgMatch {
        match self.state {
            MATCHED => OrgMatch::Matched {
                account_id: self.account_id.clone(),
            },
            AMBIGUOUS => OrgMatch::Ambiguous {
                candidates: self.candidates.clone(),
            },
            _ => OrgMatch::Unmatched {
                key_values: self.key_values.clone(),
            },
        }
    }
}

/// Match statistics as `GetStatus` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatchCounts {
    /// Organizations stored.
    pub organizations_total: u64,
    /// Matched to exactly one account.
    pub matched: u64,
    /// Matched to none.
    pub unmatched: u64,
    /// Matched to more than one.
    pub ambiguous: u64,
    /// Accounts with at least one organization.
    pub accounts_with_org: u64,
    /// Accounts without one.
    pub accounts_without_org: u64,
    /// Zendesk users whose email is a user of the account their organization matched.
    pub users_matched: u64,
}

/// An organization `ListUnmatched` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmatchedOrg {
    /// Organization id.
    pub id: u64,
    /// Organization name.
    pub name: String,
    /// Its key values (empty when it has none).
    pub key_values: Vec<String>,
    /// Candidate accounts when ambiguous (empty when unmatched).
    pub candidates: Vec<String>,
    /// Whether it is ambiguous (else unmatched).
    pub ambiguous: bool,
}

/// The match key of the configured integration, if any (an unreadable one matches nothing).
pub(crate) fn current_key(txn: &WriteTransaction) -> Result<Option<MatchKey>, StoreError> {
    let table = txn.open_table(tables::INTEGRATION)?;
    let Some(bytes) = table.get(meta_keys::INTEGRATION)? else {
        return Ok(None);
    };
    let record =
        super::codec::decode::<IntegrationRecord>("integration", "integration", bytes.value())?;
    Ok(MatchKey::parse(&record.match_zendesk_field, &record.match_account_attribute).ok())
}

/// Keeps `ACCOUNT_OWNERS`, `ACCOUNT_EMAILS` and (under `key`) `ACCOUNT_KEYS` in step with one account change; returns the key
/// values whose organizations must be re-matched.
pub(crate) fn index_account(
    txn: &WriteTransaction,
    key: Option<&MatchKey>,
    old: Option<&Account>,
    new: Option<&Account>,
) -> Result<Vec<String>, StoreError> {
    {
        let mut owners = txn.open_table(tables::ACCOUNT_OWNERS)?;
        if let Some(old) = old.filter(|a| !a.owner.is_empty()) {
            owners.remove((old.owner.to_lowercase().as_str(), old.id.as_str()))?;
        }
        if let Some(new) = new.filter(|a| !a.owner.is_empty()) {
            owners.insert((new.owner.to_lowercase().as_str(), new.id.as_str()), ())?;
        }
    }
    {
        let mut emails = txn.open_table(tables::ACCOUNT_EMAILS)?;
        if let Some(old) = old {
            for user in &old.users {
                emails.remove((user.email.to_lowercase().as_str(), old.id.as_str()))?;
            }
        }
        if let Some(new) = new {
            for user in &new.users {
                emails.insert((user.email.to_lowercase().as_str(), new.id.as_str()), ())?;
            }
        }
    }
    let Some(key) = key else {
        return Ok(Vec::new());
    };
    let values = crate::domain::matching::values_to_rematch(key, old, new);
    if values.is_empty() {
        return Ok(values);
    }
    let mut keys = txn.open_table(tables::ACCOUNT_KEYS)?;
    if let Some(old) = old {
        if let Some(value) = key.account_value(old) {
            keys.remove((value, old.id.as_str()))?;
        }
    }
    if let Some(new) = new {
        if let Some(value) = key.account_value(new) {
            keys.insert((value, new.id.as_str()), ())?;
        }
    }
    Ok(values)
}

/// Matches organization key `values` against `ACCOUNT_KEYS`: no account, one, or several.
fn match_values(txn: &WriteTransaction, values: &[String]) -> Result<OrgMatch, StoreError> {
    let keys = txn.open_table(tables::ACCOUNT_KEYS)?;
    let mut candidates = BTreeSet::new();
    for value in values {
        super::scan::for_each_second(&keys, value, |account| {
            candidates.insert(account.to_owned());
            Ok(())
        })?;
    }
    Ok(decide(candidates, || values.to_vec()))
}

/// Stores `new` as the organization's match, moving it in `ACCOUNT_ORGS`; an account it newly matches gets
/// the organization's past year of events (backfill, DESIGN 1.4).
fn set_match(
    txn: &WriteTransaction,
    org_id: u64,
    new: &OrgMatch,
    values: Vec<String>,
    now_ms: i64,
) -> Result<(), StoreError> {
    let newly_matched = {
        let mut matches = txn.open_table(tables::ORG_MATCHES)?;
        let mut account_orgs = txn.open_table(tables::ACCOUNT_ORGS)?;
        let old = match matches.get(org_id)? {
            Some(bytes) => Some(super::codec::decode::<OrgMatchRecord>(
                "org_matches",
                org_id,
                bytes.value(),
            )?),
            None => None,
        };
        let record = OrgMatchRecord::of(new, values);
        if old.as_ref() == Some(&record) {
            // Re-writing the same match would dirty copy-on-write pages for nothing.
            return Ok(());
        }
        let was_matched_to = old
            .as_ref()
            .filter(|old| old.state == MATCHED)
            .map(|old| old.account_id.clone());
        if let Some(old_account) = &was_matched_to {
            account_orgs.remove((old_account.as_str(), org_id))?;
        }
        if record.state == MATCHED {
            account_orgs.insert((record.account_id.as_str(), org_id), ())?;
        }
        matches.insert(org_id, record.encode_to_vec().as_slice())?;
        (record.state == MATCHED && was_matched_to.as_deref() != Some(record.account_id.as_str()))
            .then_some(record.account_id)
    };
    if let Some(account) = newly_matched {
        super::timeline::backfill(txn, &[(org_id, account)], now_ms)?;
    }
    Ok(())
}

/// Re-indexes and re-matches one organization after it was written.
pub(crate) fn upsert_org(
    txn: &WriteTransaction,
    key: &MatchKey,
    org_id: u64,
    org: &OrganizationRecord,
    now_ms: i64,
) -> Result<(), StoreError> {
    let old_values = stored_match(txn, org_id)?
        .map(|stored| stored.key_values)
        .unwrap_or_default();
    let keys = super::facts::org_keys(org_id, org);
    let values: Vec<String> = key
        .org_values(&keys)
        .into_iter()
        .map(std::borrow::Cow::into_owned)
        .collect();
    if values != old_values {
        let mut org_keys = txn.open_table(tables::ORG_KEYS)?;
        for value in &old_values {
            org_keys.remove((value.as_str(), org_id))?;
        }
        for value in &values {
            org_keys.insert((value.as_str(), org_id), ())?;
        }
    }
    let matched = match_values(txn, &values)?;
    set_match(txn, org_id, &matched, values, now_ms)
}

/// The stored match of an organization, if it has one.
fn stored_match(txn: &WriteTransaction, org_id: u64) -> Result<Option<OrgMatchRecord>, StoreError> {
    super::codec::get_by_id(&txn.open_table(tables::ORG_MATCHES)?, "org_matches", org_id)
}

/// Re-matches every organization carrying one of `values` (after accounts changed).
pub(crate) fn rematch_values(
    txn: &WriteTransaction,
    values: &[String],
    now_ms: i64,
) -> Result<(), StoreError> {
    let mut orgs = BTreeSet::new();
    {
        let org_keys = txn.open_table(tables::ORG_KEYS)?;
        for value in values {
            orgs.extend(super::scan::ids_under(&org_keys, value)?);
        }
    }
    for org_id in orgs {
        let Some(values) = stored_match(txn, org_id)?.map(|stored| stored.key_values) else {
            continue;
        };
        let matched = match_values(txn, &values)?;
        set_match(txn, org_id, &matched, values, now_ms)?;
    }
    Ok(())
}

/// Drops every match and re-matches all organizations against all accounts under `key` (a key change);
/// each (organization, account) pair that is new gets the organization's past year of events (backfill).
/// Tables are opened once and the account side is held in memory, so 100,000 x 100,000 stays well under a second.
pub(crate) fn rebuild(
    txn: &WriteTransaction,
    key: Option<&MatchKey>,
    now_ms: i64,
) -> Result<(), StoreError> {
    let old_pairs: BTreeSet<(String, u64)> = {
        let account_orgs = txn.open_table(tables::ACCOUNT_ORGS)?;
        let mut pairs = BTreeSet::new();
        for row in account_orgs.iter()? {
            let (key, _) = row?;
            let (account, org) = key.value();
            pairs.insert((account.to_owned(), org));
        }
        pairs
    };
    super::clear_table(txn, tables::ACCOUNT_KEYS)?;
    super::clear_table(txn, tables::ORG_KEYS)?;
    super::clear_table(txn, tables::ORG_MATCHES)?;
    super::clear_table(txn, tables::ACCOUNT_ORGS)?;
    let Some(key) = key else { return Ok(()) };
    let index = {
        let table = txn.open_table(tables::ACCOUNTS)?;
        let mut accounts = Vec::with_capacity(usize::try_from(table.len()?).unwrap_or(0));
        for entry in table.iter()? {
            crate::background::step_aside();
            let (id, bytes) = entry?;
            accounts.push(decode_account(id.value(), bytes.value())?);
        }
        // Inserting in key order keeps the B-tree writes sequential.
        let mut entries: Vec<(&str, &str)> = accounts
            .iter()
            .filter_map(|account| {
                key.account_value(account)
                    .map(|value| (value, account.id.as_str()))
            })
            .collect();
        entries.sort_unstable();
        let mut account_keys = txn.open_table(tables::ACCOUNT_KEYS)?;
        for entry in entries {
            crate::background::step_aside();
            account_keys.insert(entry, ())?;
        }
        AccountIndex::build(key.clone(), &accounts)
    };
    let orgs = txn.open_table(tables::ORGANIZATIONS)?;
    let mut matches = txn.open_table(tables::ORG_MATCHES)?;
    let mut value_entries: Vec<(String, u64)> = Vec::new();
    let mut account_entries: Vec<(String, u64)> = Vec::new();
    for entry in orgs.iter()? {
        crate::background::step_aside();
        let (id, bytes) = entry?;
        let org_id = id.value();
        let record =
            super::codec::decode::<OrganizationRecord>("organizations", org_id, bytes.value())?;
        let keys = super::facts::org_keys(org_id, &record);
        let values: Vec<String> = key
            .org_values(&keys)
            .into_iter()
            .map(std::borrow::Cow::into_owned)
            .collect();
        value_entries.extend(values.iter().map(|value| (value.clone(), org_id)));
        let found = match_org(&keys, &index);
        if let OrgMatch::Matched { account_id } = &found {
            account_entries.push((account_id.clone(), org_id));
        }
        let stored = OrgMatchRecord::of(&found, values);
        // Organization ids come in key order, so this insert appends.
        matches.insert(org_id, stored.encode_to_vec().as_slice())?;
    }
    value_entries.sort_unstable();
    account_entries.sort_unstable();
    let mut org_keys = txn.open_table(tables::ORG_KEYS)?;
    for (value, org_id) in &value_entries {
        crate::background::step_aside();
        org_keys.insert((value.as_str(), *org_id), ())?;
    }
    let mut account_orgs = txn.open_table(tables::ACCOUNT_ORGS)?;
    for (account_id, org_id) in &account_entries {
        crate::background::step_aside();
        account_orgs.insert((account_id.as_str(), *org_id), ())?;
    }
    let new_pairs: Vec<(u64, String)> = account_entries
        .into_iter()
        .filter(|(account, org)| !old_pairs.contains(&(account.clone(), *org)))
        .map(|(account, org)| (org, account))
        .collect();
    super::timeline::backfill(txn, &new_pairs, now_ms)?;
    Ok(())
}

impl Store {
    /// Match statistics over the stored organizations, accounts and users.
    ///
    /// Kept between the commits that may change them: counting walks every organization's match and every
    /// account, and `GetStatus` is polled while a sync commits pages that change neither (at 200,000
    /// tickets and the bench's 50 Hz poll the walk was 6 % of the daemon's CPU in the ticket-events phase).
    pub fn match_counts(&self) -> Result<MatchCounts, StoreError> {
        let shared = &self.reads;
        // Read before the transaction begins: counts labelled with it are at least as new as it says.
        let inputs = shared.match_inputs.load(Ordering::Acquire);
        if let Some((at, counts)) = *super::locked(&shared.match_counts) {
            if at == inputs {
                return Ok(counts);
            }
        }
        let counts = self.count_matches()?;
        *super::locked(&shared.match_counts) = Some((inputs, counts));
        Ok(counts)
    }

    /// [`Store::match_counts`] computed from the newest committed state.
    fn count_matches(&self) -> Result<MatchCounts, StoreError> {
        let txn = self.db().begin_read()?;
        let mut counts = MatchCounts::default();
        let matches = txn.open_table(tables::ORG_MATCHES)?;
        counts.organizations_total = txn.open_table(tables::ORGANIZATIONS)?.len()?;
        for entry in matches.iter()? {
            let (id, bytes) = entry?;
            let record =
                super::codec::decode::<OrgMatchRecord>("org_matches", id.value(), bytes.value())?;
            match record.state {
                MATCHED => counts.matched += 1,
                AMBIGUOUS => counts.ambiguous += 1,
                _ => counts.unmatched += 1,
            }
        }
        // Organizations stored before any key existed have no match row yet: they are unmatched.
        counts.unmatched += counts
            .organizations_total
            .saturating_sub(counts.matched + counts.ambiguous + counts.unmatched);
        let account_orgs = txn.open_table(tables::ACCOUNT_ORGS)?;
        let mut last: Option<String> = None;
        for entry in account_orgs.iter()? {
            let (key, _) = entry?;
            let account = key.value().0;
            if last.as_deref() != Some(account) {
                counts.accounts_with_org += 1;
                last = Some(account.to_owned());
            }
        }
        let accounts = txn.open_table(tables::ACCOUNTS)?.len()?;
        counts.accounts_without_org = accounts.saturating_sub(counts.accounts_with_org);
        // A user is matched when its organization matched the account that lists its email. Walked from the
        // directory's emails (far fewer than Zendesk's users, who include every end user) so that GetStatus
        // never scans the users.
        let users = txn.open_table(tables::USERS)?;
        let users_by_email = txn.open_table(tables::USERS_BY_EMAIL)?;
        let emails = txn.open_table(tables::ACCOUNT_EMAILS)?;
        for entry in emails.iter()? {
            let (key, _) = entry?;
            let (email, account_id) = key.value();
            for user_id in super::scan::ids_under(&users_by_email, email)? {
                let Some(bytes) = users.get(user_id)? else {
                    continue;
                };
                let user = super::codec::decode::<super::zendesk_records::ZendeskUserRecord>(
                    "users",
                    user_id,
                    bytes.value(),
                )?;
                if user.organization_id == 0 {
                    continue;
                }
                let Some(org_match) = matches.get(user.organization_id)? else {
                    continue;
                };
                let record = super::codec::decode::<OrgMatchRecord>(
                    "org_matches",
                    user.organization_id,
                    org_match.value(),
                )?;
                if record.state == MATCHED && record.account_id == account_id {
                    counts.users_matched += 1;
                }
            }
        }
        Ok(counts)
    }

    /// Every organization that is unmatched or ambiguous, in id order.
    pub fn unmatched_orgs(&self) -> Result<Vec<UnmatchedOrg>, StoreError> {
        let txn = self.db().begin_read()?;
        let orgs = txn.open_table(tables::ORGANIZATIONS)?;
        let matches = txn.open_table(tables::ORG_MATCHES)?;
        let mut found = Vec::new();
        for entry in orgs.iter()? {
            let (id, bytes) = entry?;
            let id = id.value();
            let record = match matches.get(id)? {
                Some(m) => super::codec::decode::<OrgMatchRecord>("org_matches", id, m.value())?,
                None => OrgMatchRecord {
                    state: UNMATCHED,
                    ..Default::default()
                },
            };
            if record.state == MATCHED {
                continue;
            }
            let org =
                super::codec::decode::<OrganizationRecord>("organizations", id, bytes.value())?;
            found.push(UnmatchedOrg {
                id,
                name: org.name,
                key_values: record.key_values,
                candidates: record.candidates,
                ambiguous: record.state == AMBIGUOUS,
            });
        }
        Ok(found)
    }

    /// The organizations matched to an account, in id order.
    pub fn account_org_ids(&self, account_id: &str) -> Result<Vec<u64>, StoreError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(tables::ACCOUNT_ORGS)?;
        super::scan::ids_under(&table, account_id)
    }

    /// The stored match of an organization.
    pub fn org_match(&self, org_id: u64) -> Result<Option<OrgMatch>, StoreError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(tables::ORG_MATCHES)?;
        let value = table.get(org_id)?;
        let stored = value
            .map(|bytes| {
                super::codec::decode::<OrgMatchRecord>("org_matches", org_id, bytes.value())
            })
            .transpose()?;
        Ok(stored.as_ref().map(OrgMatchRecord::to_match))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::domain::account::{Account, AttributeValue};
    use crate::domain::matching::{match_org, AccountIndex};
    use crate::store::page::PageWrite;

    const KEYS: [(&str, &str); 3] = [
        ("organization_fields.crm", "attributes.crm"),
        ("name", "attributes.crm"),
        ("domain_names", "id"),
    ];
    const VALUES: [&str; 4] = ["a", "b", "A", "c"];

    #[derive(Debug, Clone)]
    enum Op {
        UpsertAccount {
            id: usize,
            crm: Option<usize>,
        },
        DeleteAccount {
            id: usize,
        },
        UpsertOrg {
            id: u64,
            name: usize,
            crm: Option<usize>,
            domains: Vec<usize>,
        },
        ChangeKey {
            key: usize,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..4usize, proptest::option::of(0..4usize))
                .prop_map(|(id, crm)| Op::UpsertAccount { id, crm }),
            (0..4usize).prop_map(|id| Op::DeleteAccount { id }),
            (
                1..6u64,
                0..4usize,
                proptest::option::of(0..4usize),
                proptest::collection::vec(0..4usize, 0..3)
            )
                .prop_map(|(id, name, crm, domains)| Op::UpsertOrg {
                    id,
                    name,
                    crm,
                    domains
                }),
            (0..3usize).prop_map(|key| Op::ChangeKey { key }),
        ]
    }

    fn account_id(id: usize) -> String {
        // Account ids double as domain values so the `domain_names = id` key can match.
        VALUES[id].to_owned()
    }

    fn integration(key: usize) -> IntegrationRecord {
        IntegrationRecord {
            subdomain: "acme".into(),
            match_zendesk_field: KEYS[key].0.into(),
            match_account_attribute: KEYS[key].1.into(),
            ..Default::default()
        }
    }

    #[test]
    fn users_matched_counts_listed_users_of_orgs_matched_to_their_account() {
        use crate::domain::account::AccountUser;
        use crate::store::zendesk_records::ZendeskUserRecord;

        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        store.put_integration(&integration(0)).expect("integration");
        let account = |id: &str, crm: &str, emails: &[&str]| Account {
            id: id.into(),
            name: String::new(),
            owner: String::new(),
            attributes: BTreeMap::from([("crm".to_owned(), AttributeValue::Text(crm.into()))]),
            users: emails
                .iter()
                .map(|email| AccountUser {
                    email: (*email).into(),
                    name: String::new(),
                })
                .collect(),
        };
        store
            .upsert_accounts(
                &[
                    account("acct-a", "a", &["Alice@Example.com"]),
                    account("acct-b", "b", &["bob@example.com", "alice@example.com"]),
                ],
                0,
            )
            .expect("accounts");
        let org = |crm: &str| OrganizationRecord {
            fields: [("crm".to_owned(), crm.to_owned())].into_iter().collect(),
            ..Default::default()
        };
        let user = |email: &str, org: u64, updated_at: i64| ZendeskUserRecord {
            email: email.into(),
            organization_id: org,
            updated_at,
            ..Default::default()
        };
        store
            .apply_page(&PageWrite {
                organizations: vec![(1, org("a")), (2, org("b")), (3, org("c"))],
                users: vec![
                    (11, user("alice@example.com", 1, 1)), // acct-a lists her: matched
                    (12, user("bob@example.com", 1, 1)),   // acct-a does not list bob
                    (13, user("bob@example.com", 2, 1)),   // acct-b lists bob: matched
                    (14, user("alice@example.com", 3, 1)), // org 3 matched no account
                    (15, user("carol@example.com", 2, 1)), // listed nowhere
                    (16, user("ALICE@example.com", 2, 1)), // acct-b lists alice, any case: matched
                    (17, user("", 1, 1)),                  // no email
                    (18, user("alice@example.com", 0, 1)), // no organization
                ],
                ..Default::default()
            })
            .expect("apply");
        assert_eq!(store.match_counts().expect("counts").users_matched, 3);
        store
            .apply_page(&PageWrite {
                users: vec![(13, user("dave@example.com", 2, 2))],
                ..Default::default()
            })
            .expect("email change");
        assert_eq!(store.match_counts().expect("counts").users_matched, 2);
        store
            .delete_accounts(&["acct-b".to_owned()])
            .expect("delete");
        assert_eq!(store.match_counts().expect("counts").users_matched, 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn incremental_matching_equals_a_match_from_scratch(ops in proptest::collection::vec(op(), 1..30)) {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open(dir.path()).expect("open");
            let mut key = 0;
            store.put_integration(&integration(key)).expect("integration");
            for op in ops {
                match op {
                    Op::UpsertAccount { id, crm } => {
                        let mut attributes = BTreeMap::new();
                        if let Some(crm) = crm {
                            attributes.insert("crm".to_owned(), AttributeValue::Text(VALUES[crm].into()));
                        }
                        let account = Account { id: account_id(id), name: String::new(), owner: String::new(), attributes, users: vec![] };
                        store.upsert_accounts(&[account], 0).expect("upsert");
                    }
                    Op::DeleteAccount { id } => {
                        store.delete_accounts(&[account_id(id)]).expect("delete");
                    }
                    Op::UpsertOrg { id, name, crm, domains } => {
                        let org = OrganizationRecord {
                            name: VALUES[name].into(),
                            domain_names: domains.iter().map(|d| VALUES[*d].to_owned()).collect(),
                            fields: crm.map(|c| ("crm".to_owned(), VALUES[c].to_owned())).into_iter().collect(),
                            ..Default::default()
                        };
                        store.apply_page(&PageWrite { organizations: vec![(id, org)], ..Default::default() }).expect("apply");
                    }
                    Op::ChangeKey { key: new } => {
                        key = new;
                        store.put_integration(&integration(key)).expect("key change");
                    }
                }
                // Kept between the ops: a count left over from before a change must not be served.
                prop_assert_eq!(store.match_counts().expect("counts"), store.count_matches().expect("fresh"));
            }
            let match_key = MatchKey::parse(KEYS[key].0, KEYS[key].1).expect("key");
            let accounts = store.list_accounts(None, 100).expect("accounts").accounts;
            let index = AccountIndex::build(match_key.clone(), &accounts);
            let txn = store.db().begin_read().expect("read");
            let table = txn.open_table(tables::ORGANIZATIONS).expect("orgs");
            let mut orgs = Vec::new();
            for entry in table.iter().expect("iter") {
                let (id, bytes) = entry.expect("entry");
                let record = OrganizationRecord::decode(bytes.value()).expect("decode");
                orgs.push(crate::store::facts::org_keys(id.value(), &record));
            }
            for (id, expected) in orgs.iter().map(|org| (org.id, match_org(org, &index))) {
                prop_assert_eq!(store.org_match(id).expect("match"), Some(expected), "org {}", id);
            }
            let with_org: BTreeSet<String> = accounts
                .iter()
                .filter(|a| !store.account_org_ids(&a.id).expect("orgs").is_empty())
                .map(|a| a.id.clone())
                .collect();
            let counts = store.match_counts().expect("counts");
            prop_assert_eq!(counts.accounts_with_org, with_org.len() as u64);
        }
    }
}
