//! A change of the integration's settings as one use case: the record, the metric window, and (for a
//! new match key) a re-match of every organization with the rollups it moves, in one transaction.
use prost::Message;
use redb::ReadableTable;

use super::sync_state::IntegrationRecord;
use super::tables::{self, meta_keys};
use super::{Store, StoreError};

impl Store {
    /// Stores the integration's settings; a changed match key re-matches everything in the same transaction.
    pub fn put_integration(&self, record: &IntegrationRecord) -> Result<(), StoreError> {
        let txn = self.db().begin_write()?;
        let old_key = super::matching::current_key(&txn)?;
        {
            let mut table = txn.open_table(tables::INTEGRATION)?;
            let fresh = table.get(meta_keys::INTEGRATION)?.is_none();
            table.insert(meta_keys::INTEGRATION, record.encode_to_vec().as_slice())?;
            if fresh {
                // A new integration starts from zero: rollups of an earlier one (kept after a delete) go.
                super::rollups::clear_all(&txn)?;
            }
            let mut meta = txn.open_table(tables::META)?;
            meta.insert(
                meta_keys::METRICS_TIMEFRAME,
                record.timeframe_days.to_le_bytes().as_slice(),
            )?;
            meta.insert(
                meta_keys::METRICS_SATISFACTION,
                [u8::from(record.include_satisfaction)].as_slice(),
            )?;
        }
        let new_key = super::matching::current_key(&txn)?;
        // A new key re-matches every organization from the store, in this same transaction.
        if old_key != new_key {
            super::matching::rebuild(&txn, new_key.as_ref(), self.now_ms())?;
        }
        self.commit(txn)?;
        self.publish_event_tip()?;
        Ok(())
    }
}
