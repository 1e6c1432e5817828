//! The account directory aggregate: upsert, delete, get and list accounts, keeping attribute kinds consistent.
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, WriteTransaction};

use crate::domain::account::{kind_conflict, Account, AttributeKind};

use super::records::{decode_account, encode_account};
use super::tables::{ACCOUNTS, ATTRIBUTE_KINDS};
use super::{matching, Store, StoreError};

/// What an upsert changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertOutcome {
    /// Accounts that did not exist before.
    pub created: u64,
    /// Accounts that replaced an existing one.
    pub updated: u64,
}

/// What a delete changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// Accounts that existed and are gone.
    pub deleted: u64,
    /// Ids that named no account.
    pub not_found: Vec<String>,
}

/// One page of accounts in id order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountPage {
    /// The accounts of the page.
    pub accounts: Vec<Account>,
    /// Id of the last account when more follow.
    pub last_id_if_more: Option<String>,
    /// Number of accounts in the directory.
    pub total: u64,
}

impl Store {
    /// Stores `accounts` in one transaction: all or none. Field paths in errors are `accounts[i]` of this slice,
    /// offset by `index_base` so a streamed import can name the position in the whole stream.
    pub fn upsert_accounts(
        &self,
        accounts: &[Account],
        index_base: usize,
    ) -> Result<UpsertOutcome, StoreError> {
        let txn = self.db().begin_write()?;
        let outcome = upsert_in(&txn, accounts, index_base, self.now_ms())?;
        self.commit(txn)?;
        self.publish_event_tip()?;
        Ok(outcome)
    }

    /// Deletes the accounts named by `ids` in one transaction.
    pub fn delete_accounts(&self, ids: &[String]) -> Result<DeleteOutcome, StoreError> {
        let txn = self.db().begin_write()?;
        let mut outcome = DeleteOutcome::default();
        {
            let mut table = txn.open_table(ACCOUNTS)?;
            let mut kinds = txn.open_table(ATTRIBUTE_KINDS)?;
            let key = matching::current_key(&txn)?;
            let mut rematch = Vec::new();
            for id in ids {
                let removed = table.remove(id.as_str())?.map(|old| old.value().to_vec());
                match removed {
                    Some(bytes) => {
                        let old = decode_account(id, &bytes)?;
                        release_kinds(&mut kinds, &old)?;
                        rematch.extend(matching::index_account(
                            &txn,
                            key.as_ref(),
                            Some(&old),
                            None,
                        )?);
                        outcome.deleted += 1;
                    }
                    None => outcome.not_found.push(id.clone()),
                }
            }
            // Re-matching in the same transaction: a deleted account never leaves a stale match behind.
            rematch.sort_unstable();
            rematch.dedup();
            matching::rematch_values(&txn, &rematch, self.now_ms())?;
        }
        self.commit(txn)?;
        self.publish_event_tip()?;
        Ok(outcome)
    }

    /// The account with `id`, if any.
    pub fn get_account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(ACCOUNTS)?;
        let value = table.get(id)?;
        value
            .map(|bytes| decode_account(id, bytes.value()))
            .transpose()
    }

    /// Up to `limit` accounts with ids after `after` (exclusive), in id order.
    pub fn list_accounts(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<AccountPage, StoreError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(ACCOUNTS)?;
        let total = table.len()?;
        let range = match after {
            Some(after) => table
                .range::<&str>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))?,
            None => table.range::<&str>(..)?,
        };
        let mut accounts = Vec::with_capacity(limit.min(1024));
        let mut more = false;
        for entry in range {
            let (key, value) = entry?;
            if accounts.len() == limit {
                more = true;
                break;
            }
            accounts.push(decode_account(key.value(), value.value())?);
        }
        let last_id_if_more = if more {
            accounts.last().map(|a| a.id.clone())
        } else {
            None
        };
        Ok(AccountPage {
            accounts,
            last_id_if_more,
            total,
        })
    }

    /// Number of accounts in the directory.
    pub fn account_count(&self) -> Result<u64, StoreError> {
        let txn = self.db().begin_read()?;
        Ok(txn.open_table(ACCOUNTS)?.len()?)
    }
}

fn upsert_in(
    txn: &WriteTransaction,
    accounts: &[Account],
    index_base: usize,
    now_ms: i64,
) -> Result<UpsertOutcome, StoreError> {
    let mut outcome = UpsertOutcome::default();
    let key = matching::current_key(txn)?;
    let mut rematch = Vec::new();
    let mut table = txn.open_table(ACCOUNTS)?;
    let mut kinds = txn.open_table(ATTRIBUTE_KINDS)?;
    for (offset, account) in accounts.iter().enumerate() {
        let previous = table
            .get(account.id.as_str())?
            .map(|bytes| decode_account(&account.id, bytes.value()))
            .transpose()?;
        if let Some(old) = &previous {
            release_kinds(&mut kinds, old)?;
        }
        for (name, value) in &account.attributes {
            let kind = value.kind();
            let existing = kinds.get(name.as_str())?.map(|v| v.value());
            let count = match existing {
                Some((code, count)) => {
                    let stored =
                        AttributeKind::from_code(code).ok_or_else(|| StoreError::Corrupt {
                            table: "attribute_kinds",
                            key: name.clone(),
                            detail: format!("unknown kind code {code}"),
                        })?;
                    if stored != kind {
                        return Err(StoreError::AttributeKindConflict(kind_conflict(
                            &format!("accounts[{}]", index_base + offset),
                            name,
                            kind,
                            stored,
                            "other accounts",
                        )));
                    }
                    count
                }
                None => 0,
            };
            kinds.insert(name.as_str(), (kind.code(), count + 1))?;
        }
        table.insert(account.id.as_str(), encode_account(account).as_slice())?;
        rematch.extend(matching::index_account(
            txn,
            key.as_ref(),
            previous.as_ref(),
            Some(account),
        )?);
        if previous.is_some() {
            outcome.updated += 1;
        } else {
            outcome.created += 1;
        }
    }
    rematch.sort_unstable();
    rematch.dedup();
    matching::rematch_values(txn, &rematch, now_ms)?;
    Ok(outcome)
}

/// Drops one use of each attribute of `old`, forgetting a name's kind when no account uses it any more.
fn release_kinds(kinds: &mut Table<&str, (u8, u64)>, old: &Account) -> Result<(), StoreError> {
    for name in old.attributes.keys() {
        let current = kinds.get(name.as_str())?.map(|v| v.value());
        match current {
            Some((_, count)) if count <= 1 => {
                kinds.remove(name.as_str())?;
            }
            Some((code, count)) => {
                kinds.insert(name.as_str(), (code, count - 1))?;
            }
            None => {}
        }
    }
    Ok(())
}

impl Store {
    /// The kind an attribute name has across accounts, if any account uses it.
    pub fn attribute_kind(&self, name: &str) -> Result<Option<AttributeKind>, StoreError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(ATTRIBUTE_KINDS)?;
        let value = table.get(name)?;
        Ok(value.and_then(|v| AttributeKind::from_code(v.value().0)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::account::AttributeValue;

    fn account(id: &str, tier: AttributeValue) -> Account {
        Account {
            id: id.into(),
            name: format!("Account {id}"),
            owner: String::new(),
            attributes: BTreeMap::from([("tier".to_owned(), tier)]),
            users: vec![],
        }
    }

    #[test]
    fn attribute_kinds_follow_the_accounts_that_use_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let text = AttributeValue::Text("gold".into());
        let number = AttributeValue::Number(3.0);
        store
            .upsert_accounts(&[account("a", text.clone()), account("b", text.clone())], 0)
            .expect("upsert");
        let err = store
            .upsert_accounts(&[account("c", number.clone())], 5)
            .expect_err("conflict");
        assert!(err.to_string().contains("accounts[5]"), "{err}");
        assert!(
            store.get_account("c").expect("get").is_none(),
            "nothing of a failed batch is stored"
        );
        store.delete_accounts(&["a".into()]).expect("delete");
        assert!(store
            .upsert_accounts(&[account("c", number.clone())], 0)
            .is_err());
        // Replacing the last text user frees the name for another kind.
        store
            .upsert_accounts(&[account("b", number.clone())], 0)
            .expect("retype");
        store
            .upsert_accounts(&[account("c", number)], 0)
            .expect("now numbers");
    }

    #[test]
    fn list_pages_in_id_order_and_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let batch: Vec<Account> = (0..25)
            .map(|i| account(&format!("acct-{i:03}"), AttributeValue::Text(i.to_string())))
            .collect();
        let outcome = store.upsert_accounts(&batch, 0).expect("upsert");
        assert_eq!(
            outcome,
            UpsertOutcome {
                created: 25,
                updated: 0
            }
        );
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.list_accounts(after.as_deref(), 10).expect("list");
            assert_eq!(page.total, 25);
            seen.extend(page.accounts.iter().map(|a| a.id.clone()));
            match page.last_id_if_more {
                Some(last) => after = Some(last),
                None => break,
            }
        }
        let expected: Vec<String> = batch.iter().map(|a| a.id.clone()).collect();
        assert_eq!(seen, expected);
        assert_eq!(
            store
                .upsert_accounts(&batch[..2], 0)
                .expect("again")
                .updated,
            2
        );
    }
}
