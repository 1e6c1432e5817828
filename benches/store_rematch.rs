//! Re-match in the store: a match-key change re-matches 100,000 organizations against 100,000 accounts
//! in one write transaction (indexes rebuilt, every organization matched, account -> organization map written).
use std::collections::BTreeMap;
use std::time::Instant;

use zdsync::domain::account::{Account, AttributeValue};
use zdsync::store::page::PageWrite;
use zdsync::store::sync_state::IntegrationRecord;
use zdsync::store::zendesk_records::OrganizationRecord;
use zdsync::store::Store;

const N: usize = 100_000;

fn integration(zendesk_field: &str, account_attribute: &str) -> IntegrationRecord {
    IntegrationRecord {
        subdomain: "bench".into(),
        match_zendesk_field: zendesk_field.into(),
        match_account_attribute: account_attribute.into(),
        ..Default::default()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let accounts: Vec<Account> = (0..N)
        .map(|i| Account {
            id: format!("acct-{i:06}"),
            name: format!("Account {i}"),
            owner: String::new(),
            attributes: BTreeMap::from([(
                "zendesk_org".to_owned(),
                AttributeValue::Text(format!("Org {i}")),
            )]),
            users: vec![],
        })
        .collect();
    for chunk in accounts.chunks(1000) {
        store.upsert_accounts(chunk, 0)?;
    }
    for chunk in (0..N).collect::<Vec<_>>().chunks(1000) {
        let organizations = chunk
            .iter()
            .map(|i| {
                let org = OrganizationRecord {
                    name: format!("Org {i}"),
                    fields: BTreeMap::from([("account_id".to_owned(), format!("acct-{i:06}"))]),
                    updated_at: 1,
                    ..Default::default()
                };
                (*i as u64 + 1, org)
            })
            .collect();
        store.apply_page(&PageWrite {
            organizations,
            ..Default::default()
        })?;
    }
    println!("store re-match, {N} organizations x {N} accounts, one transaction per key change");
    let keys = [
        ("organization_fields.account_id", "id"),
        ("name", "attributes.zendesk_org"),
        ("organization_fields.account_id", "id"),
        ("name", "attributes.zendesk_org"),
    ];
    for (zendesk_field, account_attribute) in keys {
        let started = Instant::now();
        store.put_integration(&integration(zendesk_field, account_attribute))?;
        let elapsed = started.elapsed();
        let counts = store.match_counts()?;
        println!(
            "  {zendesk_field} = {account_attribute}: {:>7.1} ms, matched {}",
            elapsed.as_secs_f64() * 1000.0,
            counts.matched
        );
        assert_eq!(counts.matched, N as u64);
    }
    Ok(())
}
