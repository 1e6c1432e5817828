//! Timeline events: detected in the page transaction, stored once by deterministic key, listed and watched.
//!
//! What a sync detects is a fact, stored once under its deterministic key (`EVENTS`) and indexed by
//! organization (`ORG_FACTS`). A fact goes on the timeline of the account its organization matches
//! when it is recorded: a `TIMELINE` entry with the next sequence number (the watch cursor) and that
//! account, written once per (fact, account) and never changed. A re-match only decides where later
//! facts go; an organization newly matched to an account backfills its past year of facts onto that
//! account's timeline (`backfill = true`). See DESIGN 1.4.
use std::collections::BTreeSet;

use prost::Message;

use crate::domain::events::EventKind;

use super::tables::meta_keys;
use super::StoreError;

/// A timeline event as stored: what was detected plus a snapshot of the ticket when it occurred.
#[derive(Clone, PartialEq, Message)]
pub struct EventRecord {
    /// Position in recording order (the watch cursor).
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    /// The kind, as the `TimelineEventKind` number of the contract.
    #[prost(uint32, tag = "2")]
    pub kind: u32,
    /// The ticket.
    #[prost(uint64, tag = "3")]
    pub ticket_id: u64,
    /// The rating, for bad-rating events; 0 otherwise.
    #[prost(uint64, tag = "4")]
    pub rating_id: u64,
    /// The ticket's organization when the event was detected (0: none).
    #[prost(uint64, tag = "5")]
    pub organization_id: u64,
    /// The ticket's requester.
    #[prost(uint64, tag = "6")]
    pub requester_id: u64,
    /// When it happened in Zendesk (Unix ms).
    #[prost(int64, tag = "7")]
    pub occurred_at_ms: i64,
    /// When zdsync recorded it (Unix ms).
    #[prost(int64, tag = "8")]
    pub detected_at_ms: i64,
    /// Recorded by the first sync's backfill.
    #[prost(bool, tag = "9")]
    pub backfill: bool,
    /// A created event of a ticket raised to high/urgent after creation.
    #[prost(bool, tag = "10")]
    pub escalated: bool,
    /// The rating's score (`bad` or `bad_with_comment`); empty for ticket events.
    #[prost(string, tag = "11")]
    pub score: String,
    /// The rating's comment.
    #[prost(string, tag = "12")]
    pub comment: String,
    /// The ticket's subject.
    #[prost(string, tag = "13")]
    pub subject: String,
    /// The ticket's priority name when the event occurred (empty: none).
    #[prost(string, tag = "14")]
    pub priority: String,
    /// The ticket's status name when the event occurred.
    #[prost(string, tag = "15")]
    pub status: String,
    /// The requester's name.
    #[prost(string, tag = "16")]
    pub requester_name: String,
    /// The requester's email.
    #[prost(string, tag = "17")]
    pub requester_email: String,
    /// When the ticket was created (Unix ms).
    #[prost(int64, tag = "18")]
    pub reported_at_ms: i64,
    /// The name of the ticket's group (empty: none).
    #[prost(string, tag = "19")]
    pub group_name: String,
    /// The name of the ticket's assignee (empty: none).
    #[prost(string, tag = "20")]
    pub assignee_name: String,
    /// The deterministic key (of the fact; a timeline entry is known by this key and its account).
    #[prost(string, tag = "21")]
    pub key: String,
    /// The account whose timeline holds the entry; empty on a fact.
    #[prost(string, tag = "22")]
    pub account_id: String,
    /// The requester's email (lower-cased) when it was a user of that account at recording; empty otherwise.
    #[prost(string, tag = "23")]
    pub user_email: String,
}

/// A fact's stored value in `EVENTS`: the record without its key, which is the row's key (schema 6; the
/// key was a sixth of a fact's bytes). `fact` is as it was when this returns.
pub(crate) fn encode_fact(fact: &mut EventRecord) -> Vec<u8> {
    let key = std::mem::take(&mut fact.key);
    let encoded = fact.encode_to_vec();
    fact.key = key;
    encoded
}

/// The fact stored under `key` with `bytes` as its value, its key restored.
pub(crate) fn decode_fact(key: &[u8], bytes: &[u8]) -> Result<EventRecord, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "events",
        key: String::from_utf8_lossy(key).into_owned(),
        detail,
    };
    let mut fact = EventRecord::decode(bytes).map_err(|err| corrupt(err.to_string()))?;
    fact.key = std::str::from_utf8(key)
        .map_err(|err| corrupt(err.to_string()))?
        .to_owned();
    Ok(fact)
}

/// The fact stored under `key` in `facts` (the `EVENTS` table), if any.
pub(crate) fn get_fact(
    facts: &impl redb::ReadableTable<&'static [u8], &'static [u8]>,
    key: &str,
) -> Result<Option<EventRecord>, StoreError> {
    facts
        .get(key.as_bytes())?
        .map(|bytes| decode_fact(key.as_bytes(), bytes.value()))
        .transpose()
}

/// The `TimelineEventKind` number of a kind (the contract's enum values).
pub fn kind_number(kind: EventKind) -> u32 {
    match kind {
        EventKind::HighUrgentTicketCreated => 1,
        EventKind::HighUrgentTicketSolved => 2,
        EventKind::HighUrgentTicketReopened => 3,
        EventKind::BadSatisfactionRating => 4,
    }
}

/// Whose events to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventScope {
    /// Events of every account (facts of organizations that matched no account are left out).
    AllAccounts,
    /// Events of one account.
    Account(String),
    /// Events of every account this owner email owns (compared lower-cased).
    Owner(String),
}

/// Which events a list or watch returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// Whose events.
    pub scope: EventScope,
    /// Only events that occurred at or after this Unix ms.
    pub since_ms: Option<i64>,
    /// Only events that occurred before this Unix ms.
    pub until_ms: Option<i64>,
    /// Only these kind numbers; empty means every kind.
    pub kinds: BTreeSet<u32>,
}

/// Where a newest-first list continues: strictly older than this (occurred ms, seq).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventPosition {
    /// Occurred at (Unix ms).
    pub occurred_ms: i64,
    /// Sequence number.
    pub seq: u64,
}

/// A timeline entry as read.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The stored entry (its `account_id` and `user_email` are set).
    pub record: EventRecord,
}

impl StoredEvent {
    /// The account whose timeline holds the event.
    pub fn account_id(&self) -> &str {
        &self.record.account_id
    }
}

/// One page of a newest-first list.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// The events, newest first.
    pub events: Vec<StoredEvent>,
    /// Where the next page continues; `None` on the last page.
    pub next: Option<EventPosition>,
}

/// What a scan of the log in recording order found.
#[derive(Debug, Clone, PartialEq)]
pub struct LogBatch {
    /// The events in scope, in recording order.
    pub events: Vec<StoredEvent>,
    /// The last sequence number scanned (in scope or not); the given one when nothing was scanned.
    pub scanned_to: u64,
}

pub(super) use super::codec::decode;

pub(super) fn decode_seq(bytes: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_le_bytes)
        .map_err(|_| StoreError::Corrupt {
            table: "meta",
            key: meta_keys::EVENT_SEQ.into(),
            detail: "not an 8-byte sequence number".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::matching::OrgMatchRecord;
    use crate::store::page::{PageContext, PageWrite, TicketChange};
    use crate::store::tables;
    use crate::store::zendesk_records::{
        ChangeRecord, GroupRecord, RatingRecord, TicketRecord, ZendeskUserRecord,
    };
    use crate::store::Store;
    use redb::{ReadableDatabase, ReadableTable};

    const NOW: i64 = 1_800_000_000;
    const HOUR: i64 = 3600;
    const STATUS: u32 = crate::store::zendesk_records::CHANGE_FIELD_STATUS;
    const PRIORITY: u32 = crate::store::zendesk_records::CHANGE_FIELD_PRIORITY;
    const OPEN: u32 = 2;
    const SOLVED: u32 = 5;
    const NORMAL: u32 = 2;
    const URGENT: u32 = 4;

    fn ticket(status: u32, priority: u32, created: i64, generated: i64) -> TicketRecord {
        TicketRecord {
            subject: "Printer on fire".into(),
            status,
            priority,
            requester_id: 7,
            assignee_id: 8,
            group_id: 9,
            organization_id: 100,
            created_at: created,
            updated_at: generated,
            generated_timestamp: generated,
            ..Default::default()
        }
    }

    fn change(
        ticket_id: u64,
        at: i64,
        event_id: u64,
        field: u32,
        from: u32,
        to: u32,
    ) -> TicketChange {
        TicketChange {
            ticket_id,
            at,
            event_id,
            index: 0,
            change: ChangeRecord { field, from, to },
        }
    }

    fn context(first_sync: bool, snapshot_events: bool, now: i64) -> PageContext {
        PageContext {
            first_sync,
            snapshot_events,
            now_ms: now * 1000,
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        (dir, store)
    }

    fn people(store: &Store) -> PageWrite {
        let user = |name: &str, email: &str| ZendeskUserRecord {
            name: name.into(),
            email: email.into(),
            ..Default::default()
        };
        let page = PageWrite {
            users: vec![
                (7, user("Rita Requester", "Rita@Example.com")),
                (8, user("Agent Smith", "smith@support.test")),
            ],
            groups: vec![(
                9,
                GroupRecord {
                    name: "Tier 2".into(),
                    deleted: false,
                },
            )],
            ..Default::default()
        };
        store.apply_page(&page).expect("people");
        page
    }

    /// Ticket 1: created urgent at `created`, solved an hour later, reopened two hours later.
    fn history_page(first_sync: bool, now: i64, created: i64) -> PageWrite {
        PageWrite {
            tickets: vec![(1, ticket(OPEN, URGENT, created, created + 2 * HOUR))],
            changes: vec![
                change(1, created, 10, STATUS, 0, 1),
                TicketChange {
                    index: 1,
                    ..change(1, created, 10, PRIORITY, 0, URGENT)
                },
                change(1, created + HOUR, 11, STATUS, OPEN, SOLVED),
                change(1, created + 2 * HOUR, 12, STATUS, SOLVED, OPEN),
            ],
            context: context(first_sync, false, now),
            ..Default::default()
        }
    }

    /// The facts recorded, in time order.
    fn all_events(store: &Store) -> Vec<EventRecord> {
        let txn = store.db().begin_read().expect("read");
        let events = txn.open_table(tables::EVENTS).expect("events");
        let mut facts: Vec<EventRecord> = events
            .iter()
            .expect("iter")
            .map(|row| {
                let (key, value) = row.expect("row");
                decode_fact(key.value(), value.value()).expect("decode")
            })
            .collect();
        facts.sort_by_key(|e| (e.occurred_at_ms, e.kind, e.ticket_id));
        facts
    }

    /// Ticket 1 raised to urgent, solved while urgent, lowered again; the history arrives over three pages.
    fn lowered_after_solve(created: i64) -> [Vec<TicketChange>; 3] {
        [
            vec![
                change(1, created, 10, STATUS, 0, OPEN),
                change(1, created + HOUR, 11, PRIORITY, NORMAL, URGENT),
            ],
            vec![change(1, created + 2 * HOUR, 12, STATUS, OPEN, SOLVED)],
            vec![change(1, created + 3 * HOUR, 13, PRIORITY, URGENT, NORMAL)],
        ]
    }

    fn kinds(store: &Store) -> Vec<(u32, i64)> {
        all_events(store)
            .iter()
            .map(|e| (e.kind, e.occurred_at_ms / 1000))
            .collect()
    }

    /// Stores `stored` as ticket 1, then applies the first `pages` pages of `lowered_after_solve`; returns the
    /// events recorded (kind, occurred at).
    fn apply_lowering(stored: TicketRecord, created: i64, pages: usize) -> Vec<(u32, i64)> {
        let (_dir, store) = store();
        people(&store);
        let apply = |page: PageWrite| {
            store
                .apply_page(&PageWrite {
                    context: context(false, false, NOW),
                    ..page
                })
                .expect("apply");
        };
        apply(PageWrite {
            tickets: vec![(1, stored)],
            ..Default::default()
        });
        for changes in lowered_after_solve(created).into_iter().take(pages) {
            apply(PageWrite {
                changes,
                ..Default::default()
            });
        }
        kinds(&store)
    }

    #[test]
    fn a_ticket_lowered_after_its_events_still_yields_them_when_the_lowering_arrives() {
        let created = NOW - 10 * HOUR;
        // The stored copy is the final one (normal, solved): the pages before the lowering yield nothing, the
        // lowering's page reads the whole history. Raised to urgent (an escalated "created"), solved while urgent.
        let final_copy = ticket(SOLVED, NORMAL, created, created + 3 * HOUR);
        assert_eq!(
            apply_lowering(final_copy, created, 3),
            [(1, created + HOUR), (2, created + 2 * HOUR)]
        );
    }

    #[test]
    fn a_stored_copy_older_than_the_changes_does_not_hide_their_events() {
        let created = NOW - 10 * HOUR;
        // The stored copy predates the raise (normal, open); the solve page, before any lowering, must be read.
        let stale = ticket(OPEN, NORMAL, created, created);
        assert_eq!(
            apply_lowering(stale, created, 2),
            [(1, created + HOUR), (2, created + 2 * HOUR)]
        );
    }

    #[test]
    fn history_events_are_recorded_once_with_real_times_and_a_ticket_snapshot() {
        let (dir, store) = store();
        people(&store);
        link(&store, "acct", 100, "owner@example.com", "rita@example.com");
        let created = NOW - 10 * HOUR;
        let page = history_page(true, NOW, created);
        assert_eq!(store.apply_page(&page).expect("apply").events_recorded, 3);
        let events = all_events(&store);
        let kinds: Vec<(u32, i64, bool)> = events
            .iter()
            .map(|e| (e.kind, e.occurred_at_ms / 1000, e.backfill))
            .collect();
        assert_eq!(
            kinds,
            [
                (1, created, true),
                (2, created + HOUR, true),
                (3, created + 2 * HOUR, true)
            ]
        );
        let solved = &events[1];
        assert_eq!(
            solved.status, "solved",
            "the status when the event occurred"
        );
        assert_eq!(solved.priority, "urgent");
        assert_eq!(solved.requester_name, "Rita Requester");
        assert_eq!(solved.requester_email, "Rita@Example.com");
        assert_eq!(solved.assignee_name, "Agent Smith");
        assert_eq!(solved.group_name, "Tier 2");
        assert_eq!(solved.reported_at_ms, created * 1000);
        assert_eq!(solved.organization_id, 100);
        assert_eq!(solved.detected_at_ms, NOW * 1000);
        assert_eq!(
            store.last_event_seq().expect("tip"),
            3,
            "on the account's timeline"
        );

        // The same page again, and a later page repeating the history plus a new solve.
        assert_eq!(store.apply_page(&page).expect("again").events_recorded, 0);
        let mut later = history_page(false, NOW + HOUR, created);
        later.tickets[0].1 = ticket(SOLVED, URGENT, created, NOW + HOUR);
        later.changes.push(change(1, NOW, 13, STATUS, OPEN, SOLVED));
        assert_eq!(store.apply_page(&later).expect("later").events_recorded, 1);
        let events = all_events(&store);
        assert_eq!(events.len(), 4);
        assert_eq!((events[3].kind, events[3].backfill), (2, false));
        assert!(
            events[..3]
                .iter()
                .all(|fact| fact.detected_at_ms == NOW * 1000 && fact.backfill),
            "a fact detected again keeps what it was first recorded with: {events:?}"
        );
        assert_eq!(store.last_event_seq().expect("tip"), 4);

        // A restart: the counter and the keys survive, so nothing repeats.
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(store.last_event_seq().expect("tip"), 4);
        assert_eq!(*store.subscribe_events().borrow(), 4);
        assert_eq!(
            store
                .apply_page(&later)
                .expect("after restart")
                .events_recorded,
            0
        );
        // Only the new change in a page: the stored history is used, the same keys come out.
        let only_new = PageWrite {
            changes: vec![change(1, NOW, 13, STATUS, OPEN, SOLVED)],
            context: context(false, false, NOW + 2 * HOUR),
            ..Default::default()
        };
        assert_eq!(
            store
                .apply_page(&only_new)
                .expect("overlap")
                .events_recorded,
            0
        );
        assert_eq!(store.event_count().expect("count"), 4);
    }

    #[test]
    fn the_first_sync_backfills_the_past_year_only_and_later_syncs_never_record_older_events() {
        let (_dir, store) = store();
        let old = NOW - 400 * 24 * HOUR;
        let page = history_page(true, NOW, old);
        assert_eq!(store.apply_page(&page).expect("apply").events_recorded, 0);
        let later = history_page(false, NOW + HOUR, old);
        assert_eq!(store.apply_page(&later).expect("later").events_recorded, 0);
    }

    #[test]
    fn a_ticket_without_organization_still_gets_events() {
        let (_dir, store) = store();
        let mut page = history_page(false, NOW, NOW - HOUR);
        page.tickets[0].1.organization_id = 0;
        assert_eq!(store.apply_page(&page).expect("apply").events_recorded, 3);
        assert!(all_events(&store)
            .iter()
            .all(|e| e.organization_id == 0 && !e.backfill));
    }

    #[test]
    fn snapshot_mode_compares_the_stored_and_the_new_ticket() {
        let (_dir, store) = store();
        let created = NOW - HOUR;
        let first = PageWrite {
            tickets: vec![(2, ticket(OPEN, NORMAL, created, created))],
            context: context(false, true, NOW),
            ..Default::default()
        };
        assert_eq!(store.apply_page(&first).expect("first").events_recorded, 0);
        let mut raised = ticket(OPEN, URGENT, created, NOW);
        raised.updated_at = NOW;
        let second = PageWrite {
            tickets: vec![(2, raised.clone())],
            context: context(false, true, NOW + 60),
            ..Default::default()
        };
        assert_eq!(store.apply_page(&second).expect("raise").events_recorded, 1);
        let mut solved = raised.clone();
        solved.status = SOLVED;
        solved.solved_at = NOW + 100;
        solved.updated_at = NOW + 100;
        solved.generated_timestamp = NOW + 100;
        let third = PageWrite {
            tickets: vec![(2, solved)],
            context: context(false, true, NOW + 200),
            ..Default::default()
        };
        assert_eq!(store.apply_page(&third).expect("solve").events_recorded, 1);
        assert_eq!(store.apply_page(&third).expect("again").events_recorded, 0);
        let events = all_events(&store);
        assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), [1, 2]);
        assert!(events[0].escalated);
        assert_eq!(events[1].occurred_at_ms, (NOW + 100) * 1000);
        assert_eq!(events[1].status, "solved");
    }

    #[test]
    fn a_bad_rating_is_one_event_however_often_it_is_rewritten() {
        let (_dir, store) = store();
        people(&store);
        let tickets = PageWrite {
            tickets: vec![(3, ticket(SOLVED, NORMAL, NOW - HOUR, NOW - HOUR))],
            context: context(false, false, NOW),
            ..Default::default()
        };
        store.apply_page(&tickets).expect("ticket");
        let rating = |score: &str, comment: &str, updated: i64| RatingRecord {
            ticket_id: 3,
            score: score.into(),
            comment: comment.into(),
            requester_id: 7,
            created_at: NOW - 30,
            updated_at: updated,
            from_ticket: false,
        };
        let page = |score, comment, updated| PageWrite {
            ratings: vec![(50, rating(score, comment, updated))],
            context: context(false, false, NOW),
            ..Default::default()
        };
        assert_eq!(
            store
                .apply_page(&page("good", "", NOW - 20))
                .expect("good")
                .events_recorded,
            0
        );
        assert_eq!(
            store
                .apply_page(&page("bad", "", NOW - 10))
                .expect("bad")
                .events_recorded,
            1
        );
        let rewritten = page("bad_with_comment", "still broken", NOW);
        assert_eq!(
            store
                .apply_page(&rewritten)
                .expect("rewritten")
                .events_recorded,
            0
        );
        let events = all_events(&store);
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!((event.kind, event.rating_id, event.ticket_id), (4, 50, 3));
        assert_eq!(event.score, "bad");
        assert_eq!(event.requester_name, "Rita Requester");
        assert_eq!(event.key, format!("r50:bad:{}", NOW - 10));
    }

    #[test]
    fn a_rating_that_turns_bad_again_is_a_new_event_at_the_new_score() {
        let (_dir, store) = store();
        people(&store);
        store
            .apply_page(&PageWrite {
                tickets: vec![(3, ticket(SOLVED, NORMAL, NOW - HOUR, NOW - HOUR))],
                context: context(false, false, NOW),
                ..Default::default()
            })
            .expect("ticket");
        let page = |score: &str, updated: i64| PageWrite {
            ratings: vec![(
                50,
                RatingRecord {
                    ticket_id: 3,
                    score: score.into(),
                    created_at: NOW - 100,
                    updated_at: updated,
                    ..Default::default()
                },
            )],
            context: context(false, false, NOW),
            ..Default::default()
        };
        let recorded = |page: PageWrite| store.apply_page(&page).expect("apply").events_recorded;
        assert_eq!(recorded(page("bad", NOW - 90)), 1);
        assert_eq!(recorded(page("good", NOW - 50)), 0);
        assert_eq!(recorded(page("bad", NOW - 10)), 1);
        assert_eq!(recorded(page("bad", NOW - 10)), 0, "the same copy again");
        let times: Vec<i64> = all_events(&store)
            .iter()
            .map(|e| e.occurred_at_ms / 1000)
            .collect();
        assert_eq!(times, [NOW - 90, NOW - 10]);
    }

    /// The organization 100 rating days: (day number, good, bad).
    fn rating_days(store: &Store) -> Vec<(i64, u64, u64)> {
        crate::store::tests::rows_of(
            store,
            tables::ORG_RATING_DAYS,
            |(day, _), (good, bad, _, _)| (day, good, bad),
        )
    }

    #[test]
    fn a_score_given_after_the_rating_was_listed_comes_with_the_ticket_and_counts_on_its_day() {
        use crate::store::page::TicketRating;
        const DAY: i64 = 24 * HOUR;
        let (_dir, store) = store();
        people(&store);
        let offered_at = NOW - 3 * DAY;
        let listed = PageWrite {
            tickets: vec![(3, ticket(SOLVED, URGENT, offered_at - HOUR, offered_at))],
            ratings: vec![(
                50,
                RatingRecord {
                    ticket_id: 3,
                    score: "offered".into(),
                    requester_id: 7,
                    created_at: offered_at,
                    updated_at: offered_at,
                    from_ticket: false,
                    ..Default::default()
                },
            )],
            context: context(false, false, offered_at + 60),
            ..Default::default()
        };
        assert_eq!(
            store.apply_page(&listed).expect("listed").events_recorded,
            0
        );
        // Two days later the requester answers bad: the rating list (by creation time) no longer returns it,
        // the ticket export does, with the ticket's update time.
        let scored_at = NOW - DAY;
        let seen = |score: &str, at: i64, first_sync: bool| PageWrite {
            tickets: vec![(3, ticket(SOLVED, URGENT, offered_at - HOUR, at))],
            ticket_ratings: vec![TicketRating {
                rating_id: 50,
                ticket_id: 3,
                score: score.into(),
                comment: "Still broken".into(),
                seen_at: at,
            }],
            context: context(first_sync, false, at + 60),
            ..Default::default()
        };
        assert_eq!(
            store
                .apply_page(&seen("bad", scored_at, false))
                .expect("scored")
                .events_recorded,
            1
        );
        let event = all_events(&store).pop().expect("the bad rating");
        assert_eq!(
            (
                event.kind,
                event.occurred_at_ms,
                event.score.as_str(),
                event.comment.as_str()
            ),
            (4, scored_at * 1000, "bad", "Still broken")
        );
        assert_eq!(rating_days(&store), [(scored_at.div_euclid(DAY), 0, 1)]);
        // The same ticket again, or a later copy with the same score: nothing new.
        assert_eq!(
            store
                .apply_page(&seen("bad", scored_at, false))
                .expect("again")
                .events_recorded,
            0
        );
        assert_eq!(
            store
                .apply_page(&seen("bad", NOW, false))
                .expect("later")
                .events_recorded,
            0
        );
        // The list's own copy (exact time, same score) replaces the ticket's: the day moves, no new event.
        let exact = PageWrite {
            ratings: vec![(
                50,
                RatingRecord {
                    ticket_id: 3,
                    score: "bad".into(),
                    comment: "Still broken".into(),
                    requester_id: 7,
                    created_at: offered_at,
                    updated_at: scored_at - DAY,
                    from_ticket: false,
                },
            )],
            context: context(false, false, NOW),
            ..Default::default()
        };
        assert_eq!(store.apply_page(&exact).expect("exact").events_recorded, 0);
        assert_eq!(
            rating_days(&store),
            [((scored_at - DAY).div_euclid(DAY), 0, 1)]
        );
        // Re-scored good, then bad again: a second event, at the second bad score.
        assert_eq!(
            store
                .apply_page(&seen("good", NOW - HOUR, false))
                .expect("good")
                .events_recorded,
            0
        );
        assert_eq!(
            store
                .apply_page(&seen("bad", NOW, false))
                .expect("bad again")
                .events_recorded,
            1
        );
        assert_eq!(all_events(&store).len(), 2);
        // A rating the list never returned (older than the year the first sync lists) is not taken from a
        // ticket, whose update time may be long after the score.
        let unknown = PageWrite {
            ticket_ratings: vec![TicketRating {
                rating_id: 51,
                ticket_id: 3,
                score: "bad".into(),
                comment: String::new(),
                seen_at: NOW,
            }],
            context: context(true, false, NOW),
            ..Default::default()
        };
        assert_eq!(
            store
                .apply_page(&unknown)
                .expect("first sync")
                .events_recorded,
            0
        );
    }

    #[test]
    fn a_bad_rating_of_a_deleted_ticket_is_no_event() {
        const DELETED: u32 = 7;
        let (_dir, store) = store();
        let rated = |ticket_id: u64| PageWrite {
            ratings: vec![(
                60 + ticket_id,
                RatingRecord {
                    ticket_id,
                    score: "bad".into(),
                    created_at: NOW - 30,
                    updated_at: NOW - 30,
                    ..Default::default()
                },
            )],
            context: context(false, false, NOW),
            ..Default::default()
        };
        let tickets = PageWrite {
            tickets: vec![
                (4, ticket(DELETED, URGENT, NOW - HOUR, NOW - 10)),
                (5, ticket(SOLVED, URGENT, NOW - HOUR, NOW - 10)),
            ],
            context: context(false, false, NOW),
            ..Default::default()
        };
        store.apply_page(&tickets).expect("tickets");
        assert_eq!(
            store
                .apply_page(&rated(4))
                .expect("deleted")
                .events_recorded,
            0
        );
        assert_eq!(
            store.apply_page(&rated(5)).expect("live").events_recorded,
            1
        );
        // A ticket zdsync has not stored yet: the event waits for it, then carries its fields.
        assert_eq!(
            store
                .apply_page(&rated(6))
                .expect("unknown")
                .events_recorded,
            0
        );
        let arrives = PageWrite {
            tickets: vec![(6, ticket(SOLVED, NORMAL, NOW - HOUR, NOW - 5))],
            context: context(false, false, NOW + 60),
            ..Default::default()
        };
        assert_eq!(
            store.apply_page(&arrives).expect("ticket").events_recorded,
            1
        );
        assert_eq!(
            store.apply_page(&arrives).expect("again").events_recorded,
            0
        );
        assert_eq!(
            store.apply_page(&rated(6)).expect("replay").events_recorded,
            0
        );
        let completed = all_events(&store)
            .into_iter()
            .find(|e| e.ticket_id == 6)
            .expect("completed event");
        assert_eq!(
            (
                completed.subject.as_str(),
                completed.organization_id,
                completed.occurred_at_ms
            ),
            ("Printer on fire", 100, (NOW - 30) * 1000)
        );
    }

    fn link(store: &Store, account: &str, org: u64, owner: &str, email: &str) {
        let txn = store.db().begin_write().expect("write");
        {
            let record = OrgMatchRecord {
                state: 1,
                account_id: account.into(),
                ..Default::default()
            };
            txn.open_table(tables::ORG_MATCHES)
                .expect("matches")
                .insert(org, record.encode_to_vec().as_slice())
                .expect("match");
            txn.open_table(tables::ACCOUNT_ORGS)
                .expect("orgs")
                .insert((account, org), ())
                .expect("org");
            txn.open_table(tables::ACCOUNT_OWNERS)
                .expect("owners")
                .insert((owner, account), ())
                .expect("owner");
            txn.open_table(tables::ACCOUNT_EMAILS)
                .expect("emails")
                .insert((email, account), ())
                .expect("email");
        }
        store.commit(txn).expect("commit");
    }

    /// Tickets 1..=n, each created urgent at its own hour, in organization 100 + id % 2.
    fn created_events(store: &Store, n: u64) {
        let mut page = PageWrite {
            context: context(false, false, NOW),
            ..Default::default()
        };
        for id in 1..=n {
            let at = NOW - 100 * HOUR + i64::try_from(id).expect("small") * HOUR;
            let mut record = ticket(OPEN, URGENT, at, at);
            record.organization_id = 100 + id % 2;
            page.tickets.push((id, record));
            page.changes.push(change(id, at, id * 10, STATUS, 0, 1));
            page.changes.push(TicketChange {
                index: 1,
                ..change(id, at, id * 10, PRIORITY, 0, URGENT)
            });
        }
        store.apply_page(&page).expect("apply");
    }

    fn filter(scope: EventScope) -> EventFilter {
        EventFilter {
            scope,
            since_ms: None,
            until_ms: None,
            kinds: BTreeSet::new(),
        }
    }

    fn ticket_ids(events: &[StoredEvent]) -> Vec<u64> {
        events.iter().map(|e| e.record.ticket_id).collect()
    }

    #[test]
    fn lists_page_newest_first_per_scope_with_the_account_recorded() {
        let (_dir, store) = store();
        people(&store);
        link(
            &store,
            "acct-odd",
            101,
            "owner@example.com",
            "rita@example.com",
        );
        link(
            &store,
            "acct-even",
            100,
            "other@example.com",
            "nobody@example.com",
        );
        created_events(&store, 7);
        let all = filter(EventScope::AllAccounts);
        let first = store.list_events(&all, None, 3).expect("first");
        assert_eq!(ticket_ids(&first.events), [7, 6, 5]);
        let second = store.list_events(&all, first.next, 3).expect("second");
        assert_eq!(ticket_ids(&second.events), [4, 3, 2]);
        let third = store.list_events(&all, second.next, 3).expect("third");
        assert_eq!(ticket_ids(&third.events), [1]);
        assert_eq!(third.next, None);

        let odd = store
            .list_events(&filter(EventScope::Account("acct-odd".into())), None, 2)
            .expect("odd");
        assert_eq!(ticket_ids(&odd.events), [7, 5]);
        assert_eq!(odd.events[0].account_id(), "acct-odd");
        assert_eq!(odd.events[0].record.user_email, "rita@example.com");
        let odd_rest = store
            .list_events(
                &filter(EventScope::Account("acct-odd".into())),
                odd.next,
                10,
            )
            .expect("odd rest");
        assert_eq!(ticket_ids(&odd_rest.events), [3, 1]);

        let even = store
            .list_events(
                &filter(EventScope::Owner("Other@Example.com".into())),
                None,
                10,
            )
            .expect("owner");
        assert_eq!(ticket_ids(&even.events), [6, 4, 2]);
        assert_eq!(
            even.events[0].record.user_email, "",
            "the requester is no user of that account"
        );

        let mut window = filter(EventScope::AllAccounts);
        window.since_ms = Some((NOW - 98 * HOUR) * 1000);
        window.until_ms = Some((NOW - 95 * HOUR) * 1000);
        let page = store.list_events(&window, None, 10).expect("window");
        assert_eq!(ticket_ids(&page.events), [4, 3, 2]);
        let mut solved_only = filter(EventScope::AllAccounts);
        solved_only.kinds = BTreeSet::from([2]);
        assert!(store
            .list_events(&solved_only, None, 10)
            .expect("kinds")
            .events
            .is_empty());
    }

    /// Organization 101 matched to `acct-odd`, 100 to `acct-even`.
    fn link_odd_and_even(store: &Store) {
        link(store, "acct-odd", 101, "owner@example.com", "x@example.com");
        link(
            store,
            "acct-even",
            100,
            "owner@example.com",
            "x@example.com",
        );
    }

    #[test]
    fn the_log_is_read_in_recording_order_after_a_sequence_number() {
        let (_dir, store) = store();
        link_odd_and_even(&store);
        created_events(&store, 5);
        let all = filter(EventScope::Account("acct-odd".into()));
        let batch = store.events_after(0, 2, &all).expect("batch");
        assert_eq!(batch.scanned_to, 2);
        assert_eq!(ticket_ids(&batch.events), [1]);
        let batch = store.events_after(2, 10, &all).expect("rest");
        assert_eq!(batch.scanned_to, 5);
        assert_eq!(ticket_ids(&batch.events), [3, 5]);
        let batch = store.events_after(5, 10, &all).expect("none");
        assert_eq!((batch.scanned_to, batch.events.len()), (5, 0));
    }

    #[tokio::test]
    async fn watchers_hear_of_each_commit_that_records_events() {
        let (_dir, store) = store();
        let mut tip = store.subscribe_events();
        assert_eq!(*tip.borrow_and_update(), 0);
        link_odd_and_even(&store);
        created_events(&store, 2);
        tokio::time::timeout(std::time::Duration::from_secs(5), tip.changed())
            .await
            .expect("notified")
            .expect("sender alive");
        assert_eq!(*tip.borrow_and_update(), 2);
    }
}
