//! Scans of the `(text, text)` index tables (`ACCOUNT_KEYS`, `ACCOUNT_EMAILS`, `ACCOUNT_OWNERS`).
use redb::ReadableTable;

use super::StoreError;

/// Calls `each` with the second part of every `(first, second)` key whose first part is `first`.
pub(crate) fn for_each_second(
    table: &impl ReadableTable<(&'static str, &'static str), ()>,
    first: &str,
    mut each: impl FnMut(&str) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    // Second parts are non-empty, so "" sorts before every one and the range starts exactly at `first`.
    for row in table.range((first, "")..)? {
        let (key, _) = row?;
        let (row_first, second) = key.value();
        if row_first != first {
            break;
        }
        each(second)?;
    }
    Ok(())
}
