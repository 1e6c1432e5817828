//! Stored records decoded, an unreadable one reported as corrupt with its table and key.
use prost::Message;

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
