//! Every redb table of zdsync, defined in one place.
use redb::TableDefinition;

/// Store-wide facts: the schema version and small settings. Key: a name from `meta_keys`.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The account directory. Key: account id; value: an encoded `AccountRecord`.
pub const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");

/// The kind every attribute name has across accounts, and how many accounts use it.
/// Key: attribute name; value: (`AttributeKind` code, number of accounts).
pub const ATTRIBUTE_KINDS: TableDefinition<&str, (u8, u64)> =
    TableDefinition::new("attribute_kinds");

/// Names of the rows of `META`.
pub mod meta_keys {
    /// The schema version the file was written with (u32, little-endian).
    pub const SCHEMA_VERSION: &str = "schema_version";
    /// The integration settings row of `INTEGRATION`.
    pub const INTEGRATION: &str = "integration";
    /// The sync state row of `SYNC_STATE`.
    pub const SYNC_STATE: &str = "state";
    /// The last configured metric window in days (u32, little-endian), kept after a delete.
    pub const METRICS_TIMEFRAME: &str = "metrics_timeframe";
    /// Whether satisfaction scores are computed (one byte, 1 = yes), kept after a delete.
    pub const METRICS_SATISFACTION: &str = "metrics_satisfaction";
    /// The sequence number of the last recorded timeline event (u64, little-endian).
    pub const EVENT_SEQ: &str = "event_seq";
    /// Bumped (u64, little-endian) by every write that moves the rollups outside the nightly check, so a
    /// check that read the store before such a write knows its comparison is stale.
    pub const ROLLUP_GENERATION: &str = "rollup_generation";
}

/// The one integration's settings. Key: `meta_keys::INTEGRATION`; value: an encoded `IntegrationRecord`.
pub const INTEGRATION: TableDefinition<&str, &[u8]> = TableDefinition::new("integration");

/// Durable sync state (pause, last runs, errors, the run in progress). Key: `meta_keys::SYNC_STATE`.
pub const SYNC_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("sync_state");

/// Where each Zendesk stream resumes. Key: a stream name from `cursor_keys`; value: JSON of its position.
pub const CURSORS: TableDefinition<&str, &[u8]> = TableDefinition::new("cursors");

/// Zendesk tickets. Key: ticket id; value: an encoded `TicketRecord`.
pub const TICKETS: TableDefinition<u64, &[u8]> = TableDefinition::new("tickets");

/// Zendesk organizations. Key: organization id; value: an encoded `OrganizationRecord`.
pub const ORGANIZATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("organizations");

/// Zendesk users. Key: user id; value: an encoded `ZendeskUserRecord`.
pub const USERS: TableDefinition<u64, &[u8]> = TableDefinition::new("users");

/// Zendesk groups. Key: group id; value: an encoded `GroupRecord`.
pub const GROUPS: TableDefinition<u64, &[u8]> = TableDefinition::new("groups");

/// Satisfaction ratings. Key: rating id; value: an encoded `RatingRecord`.
pub const RATINGS: TableDefinition<u64, &[u8]> = TableDefinition::new("ratings");

/// The tables of Zendesk records keyed by their Zendesk id.
pub const ZENDESK_RECORDS: [TableDefinition<u64, &[u8]>; 5] =
    [TICKETS, ORGANIZATIONS, USERS, GROUPS, RATINGS];

/// Status and priority changes from the ticket events export, one row per ticket (schema 5). Key: ticket
/// id; value: a `HistoryRecord` as its `PackedHistory` (schema 6).
///
/// A row per change cost a B-tree insert per change (a first sync's ticket events carry 1.33 changes each,
/// about 5 per ticket): a third of its page apply. A ticket's changes mostly arrive together, around its
/// creation, and detection reads them together.
pub const TICKET_HISTORY: TableDefinition<u64, &[u8]> = TableDefinition::new("ticket_history");

/// Tickets the running nightly validation has seen. Key: ticket id; value: the validation run id.
pub const VALIDATION_SEEN: TableDefinition<u64, u64> = TableDefinition::new("validation_seen");

/// Names of the rows of `CURSORS`.
pub mod cursor_keys {
    /// The ticket export (cursor-based).
    pub const TICKETS: &str = "tickets";
    /// The ticket export of the running nightly validation.
    pub const VALIDATION_TICKETS: &str = "validation_tickets";
    /// The user export (cursor-based).
    pub const USERS: &str = "users";
    /// The organization export (time-based).
    pub const ORGANIZATIONS: &str = "organizations";
    /// The ticket events export (time-based).
    pub const TICKET_EVENTS: &str = "ticket_events";
    /// The group list of the running run.
    pub const GROUPS: &str = "groups";
    /// The satisfaction rating list of the running run.
    pub const RATINGS: &str = "ratings";
    /// Unix time from which the next run lists satisfaction ratings.
    pub const RATINGS_SINCE: &str = "ratings_since";
}

/// Account side of the match key: (key value, account id) for every account that has a value.
pub const ACCOUNT_KEYS: TableDefinition<(&str, &str), ()> = TableDefinition::new("account_keys");

/// Zendesk side of the match key: (key value, organization id) for every organization that has one.
pub const ORG_KEYS: TableDefinition<(&str, u64), ()> = TableDefinition::new("org_keys");

/// How each organization matched. Key: organization id; value: an encoded `OrgMatchRecord`.
pub const ORG_MATCHES: TableDefinition<u64, &[u8]> = TableDefinition::new("org_matches");

/// The organizations matched to each account: (account id, organization id).
pub const ACCOUNT_ORGS: TableDefinition<(&str, u64), ()> = TableDefinition::new("account_orgs");

/// Account users by email: (lower-cased email, account id).
pub const ACCOUNT_EMAILS: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("account_emails");

/// Current figures per organization: (open, total, open high/urgent).
pub const ORG_COUNTERS: TableDefinition<u64, (u64, u64, u64)> =
    TableDefinition::new("org_counters");

/// Tickets created per UTC day per organization: (day, organization) -> (created, high/urgent created).
///
/// Day first (schema 3): a batch of tickets shares a few creation days, so it dirties a few adjacent
/// leaves; keyed by organization first, every batch of a first sync rewrote most of the table.
pub const ORG_TICKET_DAYS: TableDefinition<(i64, u64), (u64, u64)> =
    TableDefinition::new("day_org_tickets");

/// One day of ratings: (good, bad, high/urgent good, high/urgent bad).
pub type RatingDay = (u64, u64, u64, u64);

/// Ratings per UTC day per organization: (day, organization), day first as in [`ORG_TICKET_DAYS`].
pub const ORG_RATING_DAYS: TableDefinition<(i64, u64), RatingDay> =
    TableDefinition::new("day_org_ratings");

/// The tickets of each requester: (ticket id >> [`REQUESTER_BLOCK_BITS`], requester id, ticket id), read by
/// `GetUserMetrics`, which computes one user's figures from that user's tickets (schema 9).
///
/// Schema 8 kept rollups per (organization, requester) instead, and every commit of a first sync moved the
/// rows of some 6,000 requesters spread over all 100,000 of them at 1,000,000 tickets: `user_counters`
/// alone rewrote all of its 1,240 leaves per commit, and the day rows per requester 370-1,380 more. The
/// block of ticket ids first keeps a batch's rows together: tickets are numbered in creation order, and a
/// batch's tickets were created within a few weeks, so its rows land on the leaves of a few blocks. One
/// requester's rows are a range per block ([`super::requester_tickets::tickets_of`]).
pub const REQUESTER_TICKETS: TableDefinition<(u64, u64, u64), ()> =
    TableDefinition::new("block_requester_tickets");

/// Ticket ids per block of [`REQUESTER_TICKETS`] keys: 2^12 = 4,096, so a requester's tickets among
/// 1,000,000 are 245 ranges to read, and a batch's rows the leaves of its blocks alone.
pub const REQUESTER_BLOCK_BITS: u32 = 12;

/// The figures of the Zendesk users matched to accounts, frozen when the integration was deleted (its tickets
/// go, and `GetUserMetrics` reads these instead): (organization, requester) -> (open, total, open high/urgent).
pub const FROZEN_USER_COUNTERS: TableDefinition<(u64, u64), (u64, u64, u64)> =
    TableDefinition::new("frozen_user_counters");

/// Tickets created per (day, organization, requester), frozen as [`FROZEN_USER_COUNTERS`].
pub const FROZEN_USER_TICKET_DAYS: TableDefinition<(i64, u64, u64), (u64, u64)> =
    TableDefinition::new("frozen_day_user_tickets");

/// Ratings per (day, organization, requester), frozen as [`FROZEN_USER_COUNTERS`].
pub const FROZEN_USER_RATING_DAYS: TableDefinition<(i64, u64, u64), RatingDay> =
    TableDefinition::new("frozen_day_user_ratings");

/// Calls macro `$each` with the names of the rollup tables and of the ticket -> ratings and requester ->
/// tickets indexes: the derived state the nightly validation checks.
macro_rules! with_rollup_tables {
    ($each:ident) => {
        $each!(
            ORG_COUNTERS,
            ORG_TICKET_DAYS,
            ORG_RATING_DAYS,
            REQUESTER_TICKETS,
            TICKET_RATINGS
        )
    };
}
pub(crate) use with_rollup_tables;

/// The ratings of each ticket: (ticket id, rating id), so a ticket's change moves its ratings' contribution.
pub const TICKET_RATINGS: TableDefinition<(u64, u64), ()> = TableDefinition::new("ticket_ratings");

/// Zendesk users by email: (lower-cased email, user id).
pub const USERS_BY_EMAIL: TableDefinition<(&str, u64), ()> = TableDefinition::new("users_by_email");

/// Detected events (facts) by their deterministic key (its UTF-8 bytes); value: an encoded `EventRecord` with
/// no account and, from schema 6, no key (it is the row's; `events::decode_fact` restores it). A fact is kept whether or not its organization matches an account, so a later match can
/// backfill it.
///
/// Keys are bytes, not `&str` (schema 4), here and in [`ACCOUNT_TIMELINE`]: redb checks
/// a `&str` key as UTF-8 on every comparison, 7 % of an incremental sync's page apply (callgrind). Bytes
/// sort as the strings do.
pub const EVENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("facts");

/// Facts per organization: (UTC day, organization id, occurred at in Unix ms, fact key), what a new match
/// backfills ([`fact_day`] gives the day).
///
/// Day first (schema 3): a batch's facts occurred on a few days, so they land on a few adjacent leaves;
/// keyed by organization first, every batch of a first sync rewrote most of the table. A backfill looks
/// up each day of the year for a few organizations, or reads the year once for many.
pub const ORG_FACTS: TableDefinition<(i64, u64, i64, &str), ()> =
    TableDefinition::new("day_org_facts");

/// The UTC day number of a fact's `occurred_at` (Unix ms), the first part of its [`ORG_FACTS`] key.
pub fn fact_day(occurred_at_ms: i64) -> i64 {
    occurred_at_ms.div_euclid(24 * 60 * 60 * 1000)
}

/// The timeline: events as recorded for an account, by sequence number (the watch cursor); value: an
/// encoded `EventRecord` with its account. An entry never changes once written.
pub const TIMELINE: TableDefinition<u64, &[u8]> = TableDefinition::new("timeline");

/// The timeline per account: (period, account id, occurred at in Unix ms, sequence number), the period
/// being [`timeline_period`] of the time ([`account_timeline_key`] builds a key).
///
/// Period first (schema 8): a sync's events occurred within a few weeks, so a commit's rows land on the leaves
/// of one or two periods. Keyed by account first they landed all over the tree: in the events phase of a first
/// sync of 1,000,000 tickets, 1,100 to 3,100 of its pages were rewritten per commit, and leaving the table out
/// altogether made that sync 2.3 s (of 32) faster (`benches/initial_sync.rs`). One account's entries are read
/// period by period.
///
/// Also how a backfill knows a fact is on an account's timeline already (schema 7): a fact's entries share
/// its occurrence time, so the entries of (account, that time) are the only ones to look at.
pub const ACCOUNT_TIMELINE: TableDefinition<(i64, &[u8], i64, u64), ()> =
    TableDefinition::new("period_account_entries");

/// The length of an [`ACCOUNT_TIMELINE`] period in ms: 30 days, so a year of one account's timeline is 13
/// ranges to read, and the rows of a period's month of events a few hundred leaves at 1,000,000 tickets.
pub const TIMELINE_PERIOD_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// The [`ACCOUNT_TIMELINE`] period of an entry that occurred at `occurred_at_ms` (Unix ms).
pub fn timeline_period(occurred_at_ms: i64) -> i64 {
    occurred_at_ms.div_euclid(TIMELINE_PERIOD_MS)
}

/// The [`ACCOUNT_TIMELINE`] key of `account`'s entry `seq`, which occurred at `occurred_at_ms`.
pub fn account_timeline_key(
    account: &[u8],
    occurred_at_ms: i64,
    seq: u64,
) -> (i64, &[u8], i64, u64) {
    (
        timeline_period(occurred_at_ms),
        account,
        occurred_at_ms,
        seq,
    )
}

/// The timeline by time alone: (occurred at in Unix ms, sequence number) (the all-accounts feed).
pub const TIMELINE_TIMES: TableDefinition<(i64, u64), ()> = TableDefinition::new("timeline_times");

/// A held bad rating: (rating id, score time in Unix seconds, backfill, score, comment).
pub type PendingRating = (u64, i64, bool, &'static str, &'static str);

/// Bad ratings whose ticket is not stored yet: (ticket id, fact key) -> (rating id, score time in Unix
/// seconds, backfill, score, comment). Recorded when the ticket arrives, so the event carries the
/// ticket's fields and goes to its organization's account.
pub const PENDING_RATING_EVENTS: TableDefinition<(u64, &str), PendingRating> =
    TableDefinition::new("pending_rating_events");

/// Schema 1's tables, dropped by the migration to schema 2.
pub mod schema1 {
    use redb::TableDefinition;

    /// Schema 1's log: sequence number -> fact key.
    pub const EVENT_LOG: TableDefinition<u64, &str> = TableDefinition::new("event_log");
    /// Schema 1's index by organization: (organization id, occurred ms, sequence number).
    pub const ORG_EVENTS: TableDefinition<(u64, i64, u64), ()> = TableDefinition::new("org_events");
    /// Schema 1's index by time: (occurred ms, sequence number) -> organization id.
    pub const EVENT_TIMES: TableDefinition<(i64, u64), u64> = TableDefinition::new("event_times");
}

/// Schema 2's tables keyed by owner first (the day rollups, the facts per organization) or by account first
/// (the timeline's fact index); the migration to schema 3 rekeys them.
pub mod schema2 {
    use redb::TableDefinition;

    use super::RatingDay;

    /// Schema 2's (organization, day) -> (created, high/urgent created).
    pub const ORG_TICKET_DAYS: TableDefinition<(u64, i64), (u64, u64)> =
        TableDefinition::new("org_ticket_days");
    /// Schema 2's (organization, day) -> ratings.
    pub const ORG_RATING_DAYS: TableDefinition<(u64, i64), RatingDay> =
        TableDefinition::new("org_rating_days");
    /// Schema 2's (organization, requester, day) -> (created, high/urgent created).
    pub const USER_TICKET_DAYS: TableDefinition<(u64, u64, i64), (u64, u64)> =
        TableDefinition::new("user_ticket_days");
    /// Schema 2's facts per organization: (organization id, occurred at in Unix ms, fact key).
    pub const ORG_FACTS: TableDefinition<(u64, i64, &str), ()> = TableDefinition::new("org_facts");
    /// Schema 2's (account id, fact key) -> sequence number.
    pub const TIMELINE_KEYS: TableDefinition<(&str, &str), u64> =
        TableDefinition::new("timeline_keys");
    /// Schema 2's (organization, requester, day) -> ratings.
    pub const USER_RATING_DAYS: TableDefinition<(u64, u64, i64), RatingDay> =
        TableDefinition::new("user_rating_days");
}

/// Schema 3's tables keyed by `&str`; the migration to schema 4 moves their rows to byte keys.
pub mod schema3 {
    use redb::TableDefinition;

    /// Schema 3's facts by key.
    pub const EVENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("events");
    /// Schema 3's (fact key, account id) -> sequence number.
    pub const TIMELINE_KEYS: TableDefinition<(&str, &str), u64> =
        TableDefinition::new("fact_timelines");
    /// Schema 3's (account id, occurred at in Unix ms, sequence number).
    pub const ACCOUNT_TIMELINE: TableDefinition<(&str, i64, u64), ()> =
        TableDefinition::new("account_timeline");
}

/// Schema 4's history, one row per change; the migration to schema 5 groups it per ticket.
pub mod schema4 {
    use redb::TableDefinition;

    /// Schema 4's (ticket id, Unix seconds, event id, index in the event) -> encoded `ChangeRecord`.
    pub const TICKET_CHANGES: TableDefinition<(u64, i64, u64, u32), &[u8]> =
        TableDefinition::new("ticket_changes");
}

/// Schema 6's index of the timeline by fact; the migration to schema 7 drops it.
pub mod schema6 {
    use redb::TableDefinition;

    /// Schema 4 to 6's (fact key, account id) -> sequence number: an insert per timeline entry, read only
    /// by a backfill, which [`super::ACCOUNT_TIMELINE`] answers as well.
    pub const TIMELINE_KEYS: TableDefinition<(&[u8], &[u8]), u64> =
        TableDefinition::new("fact_account_entries");
}

/// Tables as schema 4 to 7 kept them.
pub mod schema7 {
    use redb::TableDefinition;

    /// Schema 4 to 7's timeline per account: (account id, occurred at in Unix ms, sequence number).
    pub const ACCOUNT_TIMELINE: TableDefinition<(&[u8], i64, u64), ()> =
        TableDefinition::new("account_entries");
}

/// Accounts by owner: (lower-cased owner email, account id), for the portfolio feed.
pub const ACCOUNT_OWNERS: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("account_owners");

/// Where the running nightly validation's post-export steps stand, so a restart resumes them: a name
/// from `validation_keys` and its value. Each step's position commits with the writes it covers.
pub const VALIDATION_PROGRESS: TableDefinition<&str, u64> =
    TableDefinition::new("validation_progress");

/// Names of the rows of `VALIDATION_PROGRESS`.
pub mod validation_keys {
    /// The first ticket id the marking of unseen tickets has not scanned yet.
    pub const MISSING_NEXT: &str = "missing_next";
    /// Tickets marked gone so far.
    pub const MISSING_COUNT: &str = "missing_count";
    /// 1 once every ticket was scanned for being unseen.
    pub const MISSING_DONE: &str = "missing_done";
    /// The first organization id the rollup check has not compared yet.
    pub const ROLLUPS_NEXT_ORG: &str = "rollups_next_org";
    /// Rollup rows found different (and repaired) so far.
    pub const ROLLUPS_DRIFT: &str = "rollups_drift";
    /// 1 once every organization's rollups were compared.
    pub const ROLLUPS_DONE: &str = "rollups_done";
}

/// Schema 8's rollups per (organization, requester); the migration to schema 9 drops them for
/// [`REQUESTER_TICKETS`].
pub mod schema8 {
    use redb::TableDefinition;

    use super::RatingDay;

    /// Schema 8's current figures per (organization, requester): (open, total, open high/urgent).
    pub const USER_COUNTERS: TableDefinition<(u64, u64), (u64, u64, u64)> =
        TableDefinition::new("user_counters");
    /// Schema 8's tickets created per (day, organization, requester).
    pub const USER_TICKET_DAYS: TableDefinition<(i64, u64, u64), (u64, u64)> =
        TableDefinition::new("day_user_tickets");
    /// Schema 8's ratings per (day, organization, requester).
    pub const USER_RATING_DAYS: TableDefinition<(i64, u64, u64), RatingDay> =
        TableDefinition::new("day_user_ratings");
}
