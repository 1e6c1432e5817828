//! How the nightly rollup check learns that the rollups moved under it: every page that moves them bumps a
//! generation in META, and a reset of every rollup also restarts the check (`store::validation`). A leaf
//! module, so the rollups can tell the check without importing it.
use redb::{ReadableTable, WriteTransaction};

use super::tables::{self, meta_keys, validation_keys as keys};
use super::StoreError;

/// How often the rollups moved outside the check (see `meta_keys::ROLLUP_GENERATION`).
pub(super) fn generation(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<u64, StoreError> {
    Ok(meta
        .get(meta_keys::ROLLUP_GENERATION)?
        .and_then(|value| <[u8; 8]>::try_from(value.value()).ok())
        .map_or(0, u64::from_le_bytes))
}

/// Tells a check under way that `txn` moves the rollups (a page's deltas).
pub(super) fn rollups_moved(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut meta = txn.open_table(tables::META)?;
    let next = generation(&meta)?.wrapping_add(1);
    meta.insert(meta_keys::ROLLUP_GENERATION, next.to_le_bytes().as_slice())?;
    Ok(())
}

/// `txn` drops every rollup: a check under way starts over from the first organization, and counts
/// what differs from the empty rollups, as if the reset had come before it.
pub(super) fn rollups_reset(txn: &WriteTransaction) -> Result<(), StoreError> {
    rollups_moved(txn)?;
    let mut table = txn.open_table(tables::VALIDATION_PROGRESS)?;
    if table.get(keys::ROLLUPS_DONE)?.is_none() {
        table.remove(keys::ROLLUPS_NEXT_ORG)?;
        table.remove(keys::ROLLUPS_DRIFT)?;
    }
    Ok(())
}
