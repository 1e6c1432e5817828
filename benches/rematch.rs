//! Re-matching 100,000 organizations against 100,000 accounts from scratch, as a key change does.
use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use zdsync::domain::account::{Account, AccountUser, AttributeValue};
use zdsync::domain::matching::{match_all, AccountIndex, MatchKey, MatchStats, OrgIndex, OrgKeys};

const COUNT: usize = 100_000;

fn accounts() -> Vec<Account> {
    (0..COUNT)
        .map(|i| Account {
            id: format!("acct-{i:06}"),
            name: format!("Customer {i}"),
            owner: "manager@example.com".into(),
            attributes: BTreeMap::from([
                (
                    "zendesk_org".to_owned(),
                    AttributeValue::Text(format!("Customer {i}")),
                ),
                (
                    "domain".to_owned(),
                    // Every 100th account shares its domain with the next one: some ambiguity.
                    AttributeValue::Text(format!(
                        "customer{}.test",
                        if i % 100 == 1 { i - 1 } else { i }
                    )),
                ),
                ("seats".to_owned(), AttributeValue::Number(i as f64)),
            ]),
            users: vec![AccountUser {
                email: format!("admin@customer{i}.test"),
                name: "Admin".into(),
            }],
        })
        .collect()
}

fn orgs() -> Vec<OrgKeys> {
    (0..COUNT)
        .map(|i| OrgKeys {
            id: 360_000_000 + i as u64,
            // Every 10th organization has a name no account carries.
            name: if i % 10 == 0 {
                format!("Unknown {i}")
            } else {
                format!("Customer {i}")
            },
            external_id: Some(format!("ext-{i}")),
            domain_names: vec![
                format!("customer{i}.test"),
                format!("mail.customer{i}.test"),
            ],
            fields: BTreeMap::from([("account_id".to_owned(), format!("acct-{i:06}"))]),
        })
        .collect()
}

fn key(zendesk_field: &str, account_attribute: &str) -> MatchKey {
    MatchKey::parse(zendesk_field, account_attribute).expect("bench keys are valid")
}

fn rematch_from_scratch(c: &mut Criterion) {
    let accounts = accounts();
    let orgs = orgs();
    let mut group = c.benchmark_group("rematch_100k_orgs_100k_accounts");
    group.sample_size(10);
    for (label, key) in [
        (
            "org_field_to_account_id",
            key("organization_fields.account_id", "id"),
        ),
        ("name_to_attribute", key("name", "attributes.zendesk_org")),
        (
            "domains_to_attribute",
            key("domain_names", "attributes.domain"),
        ),
    ] {
        // What a key change costs: both indexes rebuilt, every organization matched, stats counted.
        group.bench_function(label, |b| {
            b.iter(|| {
                let account_index = AccountIndex::build(key.clone(), &accounts);
                let org_index = OrgIndex::build(key.clone(), &orgs);
                let matches = match_all(&orgs, &account_index);
                let stats =
                    MatchStats::from_matches(matches.iter().map(|(_, m)| m), accounts.len() as u64);
                black_box((org_index, matches, stats))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, rematch_from_scratch);
criterion_main!(benches);
