//! Stored forms of Zendesk records: only the fields zdsync uses, compactly encoded as prost messages.
use prost::Message;

/// A ticket as stored (id is the key). Times are Unix seconds.
#[derive(Clone, PartialEq, Message)]
pub struct TicketRecord {
    /// Subject line.
    #[prost(string, tag = "1")]
    pub subject: String,
    /// `TicketState` code of the status.
    #[prost(uint32, tag = "2")]
    pub status: u32,
    /// Priority code: 0 none, 1 low, 2 normal, 3 high, 4 urgent.
    #[prost(uint32, tag = "3")]
    pub priority: u32,
    /// Requester user id (0 when none).
    #[prost(uint64, tag = "4")]
    pub requester_id: u64,
    /// Assignee user id (0 when none).
    #[prost(uint64, tag = "5")]
    pub assignee_id: u64,
    /// Group id (0 when none).
    #[prost(uint64, tag = "6")]
    pub group_id: u64,
    /// Organization id (0 when none).
    #[prost(uint64, tag = "7")]
    pub organization_id: u64,
    /// Creation time.
    #[prost(int64, tag = "8")]
    pub created_at: i64,
    /// Last update with a ticket event.
    #[prost(int64, tag = "9")]
    pub updated_at: i64,
    /// Last change of any kind; the copy with the highest one wins.
    #[prost(int64, tag = "10")]
    pub generated_timestamp: i64,
    /// How often the ticket was reopened (from the side-loaded metric set).
    #[prost(uint32, tag = "11")]
    pub reopens: u32,
    /// When it was last solved (0 when never), from the metric set.
    #[prost(int64, tag = "12")]
    pub solved_at: i64,
    /// Set by the nightly validation when Zendesk no longer returns the ticket; it then counts nowhere.
    #[prost(bool, tag = "13")]
    pub gone: bool,
}

/// An organization as stored.
#[derive(Clone, PartialEq, Message)]
pub struct OrganizationRecord {
    /// Unique name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// External id (empty when none).
    #[prost(string, tag = "2")]
    pub external_id: String,
    /// Whether `external_id` is set (an empty string is a value too).
    #[prost(bool, tag = "3")]
    pub has_external_id: bool,
    /// Email domains.
    #[prost(string, repeated, tag = "4")]
    pub domain_names: Vec<String>,
    /// Custom organization fields with a text (or number/boolean, as text) value.
    #[prost(btree_map = "string, string", tag = "5")]
    pub fields: std::collections::BTreeMap<String, String>,
    /// Last update (Unix seconds); the newest copy wins.
    #[prost(int64, tag = "6")]
    pub updated_at: i64,
}

/// A Zendesk user as stored.
#[derive(Clone, PartialEq, Message)]
pub struct ZendeskUserRecord {
    /// Display name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Primary email (empty when none).
    #[prost(string, tag = "2")]
    pub email: String,
    /// `end-user`, `agent` or `admin`.
    #[prost(string, tag = "3")]
    pub role: String,
    /// Organization id (0 when none).
    #[prost(uint64, tag = "4")]
    pub organization_id: u64,
    /// False for deleted users.
    #[prost(bool, tag = "5")]
    pub active: bool,
    /// Last update (Unix seconds); the newest copy wins.
    #[prost(int64, tag = "6")]
    pub updated_at: i64,
}

/// A group as stored.
#[derive(Clone, PartialEq, Message)]
pub struct GroupRecord {
    /// Group name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Whether the group is deleted.
    #[prost(bool, tag = "2")]
    pub deleted: bool,
}

/// A satisfaction rating as stored.
#[derive(Clone, PartialEq, Message)]
pub struct RatingRecord {
    /// The rated ticket.
    #[prost(uint64, tag = "1")]
    pub ticket_id: u64,
    /// Score as Zendesk names it (`good`, `bad`, `offered`, ...).
    #[prost(string, tag = "2")]
    pub score: String,
    /// Comment (empty when none).
    #[prost(string, tag = "3")]
    pub comment: String,
    /// The requester who rated.
    #[prost(uint64, tag = "4")]
    pub requester_id: u64,
    /// When it was created (Unix seconds).
    #[prost(int64, tag = "5")]
    pub created_at: i64,
    /// Last update (Unix seconds), when the current score was given; the newest copy wins.
    #[prost(int64, tag = "6")]
    pub updated_at: i64,
    /// The copy comes from the ticket export's `satisfaction_rating`, where `updated_at` is the ticket's
    /// (the latest the score can have been given): the rating list's own copy replaces it.
    #[prost(bool, tag = "7")]
    pub from_ticket: bool,
}

/// One status or priority change of a ticket, from the ticket events export.
#[derive(Clone, PartialEq, Message)]
pub struct ChangeRecord {
    /// 1 status, 2 priority.
    #[prost(uint32, tag = "1")]
    pub field: u32,
    /// Previous value code (0 when none), same codes as `TicketRecord`.
    #[prost(uint32, tag = "2")]
    pub from: u32,
    /// New value code.
    #[prost(uint32, tag = "3")]
    pub to: u32,
}

/// A ticket's stored status and priority changes (its row of `TICKET_HISTORY`), in the order of their
/// (time, event id, index in the event). Stored as a [`PackedHistory`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryRecord {
    /// The changes, in order, each (time, event id, index) once.
    pub changes: Vec<HistoryChangeRecord>,
}

/// Why a stored history row cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryDecodeError {
    /// The bytes are not a packed history.
    #[error(transparent)]
    Message(#[from] prost::DecodeError),
    /// The values do not come six per change.
    #[error("{0} history values, not six per change")]
    Length(usize),
    /// An index, field or value code does not fit its `u32`.
    #[error("history value {0} out of range")]
    OutOfRange(i64),
}

/// How a [`HistoryRecord`] is stored (schema 6): one packed column of six values per change, the time and
/// the event id as steps from the change before.
///
/// A change as a message of its own took about 20 bytes, with a tag per field and a length; here it
/// takes about 9. A ticket's history row was the store's second-largest cost per ticket after a year
/// of hourly syncs (`store_growth`). One column, not one per field: one allocation to read a row.
#[derive(Clone, PartialEq, Message)]
pub struct PackedHistory {
    /// Per change: `at` minus the previous change's (the first: `at`), `event_id` minus the previous one's
    /// (wrapping, as `i64`), `index`, `field`, `from`, `to`.
    #[prost(sint64, repeated, tag = "1")]
    pub values: Vec<i64>,
}

/// Values [`PackedHistory`] stores per change.
const VALUES_PER_CHANGE: usize = 6;

impl HistoryRecord {
    /// The row's stored bytes (a [`PackedHistory`]), exactly as prost encodes one.
    ///
    /// Written straight from the changes, with prost's varint encoder: through a `PackedHistory` the values
    /// went to a vector first and prost walked them twice (length, then bytes), 3 % of an incremental
    /// sync's event commit.
    pub fn encode_to_vec(&self) -> Vec<u8> {
        use prost::encoding::{encode_key, encode_varint, WireType};
        if self.changes.is_empty() {
            // prost writes no field for an empty packed column.
            return Vec::new();
        }
        let mut payload = Vec::with_capacity(self.changes.len() * 12);
        let (mut at, mut event_id) = (0_i64, 0_u64);
        for change in &self.changes {
            for value in [
                change.at.wrapping_sub(at),
                // Event ids are u64: the step wraps, and wraps back when read.
                change.event_id.wrapping_sub(event_id) as i64,
                i64::from(change.index),
                i64::from(change.field),
                i64::from(change.from),
                i64::from(change.to),
            ] {
                encode_varint(zigzag(value), &mut payload);
            }
            (at, event_id) = (change.at, change.event_id);
        }
        let mut row = Vec::with_capacity(payload.len() + 11);
        encode_key(PACKED_VALUES_TAG, WireType::LengthDelimited, &mut row);
        encode_varint(payload.len() as u64, &mut row);
        row.extend_from_slice(&payload);
        row
    }

    /// A row as [`HistoryRecord::encode_to_vec`] stored it.
    pub fn decode(bytes: &[u8]) -> Result<Self, HistoryDecodeError> {
        match packed_payload(bytes) {
            Some(payload) => Self::from_payload(payload),
            // Any other shape prost reads as a `PackedHistory` (unpacked values, fields in pieces) is read
            // the general way.
            None => Self::from_values(&PackedHistory::decode(bytes)?.values),
        }
    }

    /// The changes of a packed column's payload: zigzag varints, six per change, read as they come.
    fn from_payload(mut payload: &[u8]) -> Result<Self, HistoryDecodeError> {
        // A value takes a byte at least, a change six.
        let mut changes = Vec::with_capacity(payload.len() / VALUES_PER_CHANGE);
        let (mut at, mut event_id, mut count) = (0_i64, 0_u64, 0_usize);
        let mut change = [0_i64; VALUES_PER_CHANGE];
        while !payload.is_empty() {
            let value = unzigzag(prost::encoding::decode_varint(&mut payload)?);
            change[count % VALUES_PER_CHANGE] = value;
            count += 1;
            if count.is_multiple_of(VALUES_PER_CHANGE) {
                at = at.wrapping_add(change[0]);
                event_id = event_id.wrapping_add(change[1] as u64);
                changes.push(change_at(at, event_id, &change)?);
            }
        }
        if !count.is_multiple_of(VALUES_PER_CHANGE) {
            return Err(HistoryDecodeError::Length(count));
        }
        Ok(Self { changes })
    }

    /// The changes of a column of values.
    fn from_values(values: &[i64]) -> Result<Self, HistoryDecodeError> {
        if !values.len().is_multiple_of(VALUES_PER_CHANGE) {
            return Err(HistoryDecodeError::Length(values.len()));
        }
        let (mut at, mut event_id) = (0_i64, 0_u64);
        let mut changes = Vec::with_capacity(values.len() / VALUES_PER_CHANGE);
        for change in values.chunks_exact(VALUES_PER_CHANGE) {
            at = at.wrapping_add(change[0]);
            event_id = event_id.wrapping_add(change[1] as u64);
            changes.push(change_at(at, event_id, change)?);
        }
        Ok(Self { changes })
    }
}

/// The tag of [`PackedHistory::values`].
const PACKED_VALUES_TAG: u32 = 1;

/// The payload of a row that holds one packed `values` field and nothing else (every row zdsync writes);
/// `None` for any other shape.
fn packed_payload(bytes: &[u8]) -> Option<&[u8]> {
    use prost::encoding::{decode_key, decode_varint, WireType};
    let mut rest = bytes;
    let (tag, wire_type) = decode_key(&mut rest).ok()?;
    if tag != PACKED_VALUES_TAG || wire_type != WireType::LengthDelimited {
        return None;
    }
    let length = usize::try_from(decode_varint(&mut rest).ok()?).ok()?;
    (length == rest.len()).then_some(rest)
}

/// The change whose six stored values are `values`, at `at` with `event_id`.
fn change_at(
    at: i64,
    event_id: u64,
    values: &[i64],
) -> Result<HistoryChangeRecord, HistoryDecodeError> {
    let code = |value: i64| u32::try_from(value).map_err(|_| HistoryDecodeError::OutOfRange(value));
    Ok(HistoryChangeRecord {
        at,
        event_id,
        index: code(values[2])?,
        field: code(values[3])?,
        from: code(values[4])?,
        to: code(values[5])?,
    })
}

/// `value` as protobuf's `sint64` stores it.
fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// A `sint64` as stored, back to its value.
fn unzigzag(stored: u64) -> i64 {
    ((stored >> 1) as i64) ^ -((stored & 1) as i64)
}

/// A ticket's history row as schema 5 stored it: a message per change. Read only by the migration to
/// schema 6.
#[derive(Clone, PartialEq, Message)]
pub struct Schema5HistoryRecord {
    /// The changes, in order.
    #[prost(message, repeated, tag = "1")]
    pub changes: Vec<HistoryChangeRecord>,
}

/// One change of a ticket's stored history (a message of its own in schema 5's rows).
#[derive(Clone, PartialEq, Message)]
pub struct HistoryChangeRecord {
    /// When it happened (Unix seconds).
    #[prost(int64, tag = "1")]
    pub at: i64,
    /// The Zendesk ticket event it belongs to.
    #[prost(uint64, tag = "2")]
    pub event_id: u64,
    /// Position within the event.
    #[prost(uint32, tag = "3")]
    pub index: u32,
    /// 1 status, 2 priority, as in `ChangeRecord`.
    #[prost(uint32, tag = "4")]
    pub field: u32,
    /// Previous value code (0 when none).
    #[prost(uint32, tag = "5")]
    pub from: u32,
    /// New value code.
    #[prost(uint32, tag = "6")]
    pub to: u32,
}

impl HistoryChangeRecord {
    /// `change` at `(time, event id, index)` in its ticket's history.
    pub fn at_position((at, event_id, index): (i64, u64, u32), change: &ChangeRecord) -> Self {
        Self {
            at,
            event_id,
            index,
            field: change.field,
            from: change.from,
            to: change.to,
        }
    }

    /// Where the change sorts in its ticket's history: (time, event id, index).
    pub fn position(&self) -> (i64, u64, u32) {
        (self.at, self.event_id, self.index)
    }

    /// The change itself.
    pub fn change(&self) -> ChangeRecord {
        ChangeRecord {
            field: self.field,
            from: self.from,
            to: self.to,
        }
    }
}

/// Field code of a status change.
pub const CHANGE_FIELD_STATUS: u32 = 1;
/// Field code of a priority change.
pub const CHANGE_FIELD_PRIORITY: u32 = 2;
