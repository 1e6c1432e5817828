//! Timeline events: detected in the page transaction, stored once by deterministic key, listed and watched.
use redb::WriteTransaction;

use super::pages::{PageContext, TicketChange, Written};
use super::zendesk_records::{RatingRecord, TicketRecord};
use super::StoreError;

/// Detects and records the events of a page; returns how many new events were recorded.
pub(crate) fn apply(
    _txn: &WriteTransaction,
    _tickets: &[Written<TicketRecord>],
    _ratings: &[Written<RatingRecord>],
    _changes: &[TicketChange],
    _context: &PageContext,
) -> Result<u64, StoreError> {
    Ok(0)
}
