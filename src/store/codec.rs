//! Stored records decoded, an unreadable one reported as corrupt with its table and key.
use prost::Message;
use redb::ReadableTable;

use super::StoreError;

/// Decodes a stored record; the key is only formatted when the record is corrupt.
pub(crate) fn decode<M: Message + Default>(
    table: &'static str,
    key: impl std::fmt::Display,
    bytes: &[u8],
) -> Result<M, StoreError> {
    M::decode(bytes).map_err(|err| StoreError::Corrupt {
        table,
        key: key.to_string(),
        detail: err.to_string(),
    })
}

/// The record stored under id `id` in `table` (named `name`), decoded; `None` when there is none.
pub(crate) fn get_by_id<M: Message + Default>(
    table: &impl ReadableTable<u64, &'static [u8]>,
    name: &'static str,
    id: u64,
) -> Result<Option<M>, StoreError> {
    let value = table.get(id)?;
    value
        .map(|bytes| decode::<M>(name, id, bytes.value()))
        .transpose()
}
