//! `ListTimelineEvents` and `WatchTimelineEvents`: validation, paging and the watch stream.
//!
//! The metrics service delegates to [`list`] and [`watch`].
use std::collections::BTreeSet;
use std::time::Duration;

use chrono::DateTime;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch as tip};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::proto::v1 as pb;
use crate::store::events::{EventFilter, EventPosition, EventScope, StoredEvent};
use crate::store::Store;

use super::convert::{timestamp_from_proto, timestamp_to_proto};
use super::status::{from_join, from_store};

/// Events per page when the request leaves `page_size` at 0.
pub const DEFAULT_PAGE_SIZE: usize = 100;
pub use super::paging::MAX_PAGE_SIZE;
/// Responses a watcher may have in flight before it counts as too slow.
pub const WATCH_CAPACITY: usize = 256;
/// How long a watch waits for a full stream to drain before it gives up on the consumer.
pub const WATCH_STALL_GRACE: Duration = Duration::from_secs(10);
/// Log entries a watch reads from the store at a time.
const WATCH_BATCH: usize = 256;

/// Longest heartbeat period a watcher may ask for.
const MAX_HEARTBEAT_SECONDS: u32 = 3600;

/// Marks the current page token format; a token without it is not ours or predates filter binding.
const PAGE_TOKEN_PREFIX: &str = "timeline.v2:";
/// The prefix of tokens issued before they were bound to their filters.
const UNBOUND_PAGE_TOKEN_PREFIX: &str = "timeline:";
/// Bytes of the filter's SHA-256 a token carries: enough to tell filters apart, short enough for URLs.
const FILTER_DIGEST_BYTES: usize = 8;

/// Lists timeline events newest first, one page at a time.
pub async fn list(
    store: Store,
    request: pb::ListTimelineEventsRequest,
) -> Result<pb::ListTimelineEventsResponse, Status> {
    let scope = list_scope(request.scope)?;
    let since_ms = instant_ms("since", request.since.as_ref())?;
    let until_ms = instant_ms("until", request.until.as_ref())?;
    if let (Some(since), Some(until)) = (since_ms, until_ms) {
        if since >= until {
            return Err(Status::invalid_argument("until: must be after since"));
        }
    }
    let kinds = kinds(&request.kinds)?;
    let page_size = super::paging::page_size(request.page_size, DEFAULT_PAGE_SIZE)?;
    let filter = EventFilter {
        scope,
        since_ms,
        until_ms,
        kinds,
    };
    let after = if request.page_token.is_empty() {
        None
    } else {
        Some(decode_page_token(&request.page_token, &filter)?)
    };
    tokio::task::spawn_blocking(move || {
        check_account(&store, &filter.scope)?;
        let page = store
            .list_events(&filter, after, page_size)
            .map_err(from_store)?;
        Ok(pb::ListTimelineEventsResponse {
            events: page.events.into_iter().map(event_to_proto).collect(),
            next_page_token: page
                .next
                .map(|next| encode_page_token(next, &filter))
                .unwrap_or_default(),
        })
    })
    .await
    .map_err(from_join)?
}

/// Streams timeline events in recording order, resumable from a cursor.
pub fn watch(
    store: Store,
    request: pb::WatchTimelineEventsRequest,
    shutdown: tip::Receiver<bool>,
) -> Result<ReceiverStream<Result<pb::WatchTimelineEventsResponse, Status>>, Status> {
    watch_with(store, request, shutdown, WATCH_CAPACITY, WATCH_STALL_GRACE)
}

/// [`watch`] with its stream capacity and stall grace chosen by the caller (tests use small ones).
pub fn watch_with(
    store: Store,
    request: pb::WatchTimelineEventsRequest,
    shutdown: tip::Receiver<bool>,
    capacity: usize,
    stall_grace: Duration,
) -> Result<ReceiverStream<Result<pb::WatchTimelineEventsResponse, Status>>, Status> {
    let scope = watch_scope(request.scope)?;
    let kinds = kinds(&request.kinds)?;
    let cursor = if request.after_cursor.is_empty() {
        None
    } else {
        Some(request.after_cursor.parse::<u64>().map_err(|_| {
            Status::invalid_argument("after_cursor: not a cursor returned by WatchTimelineEvents")
        })?)
    };
    let heartbeat = match request.heartbeat_seconds {
        0 => None,
        seconds @ 1..=MAX_HEARTBEAT_SECONDS => Some(Duration::from_secs(u64::from(seconds))),
        seconds => {
            return Err(Status::invalid_argument(format!(
                "heartbeat_seconds: {seconds} is not 0 (none) or 1 to {MAX_HEARTBEAT_SECONDS}"
            )))
        }
    };
    check_account(&store, &scope)?;
    // Subscribe before reading the tip, so nothing recorded in between is missed.
    let tip = store.subscribe_events();
    let start = match cursor {
        Some(cursor) => cursor,
        None if request.include_history => 0,
        None => store.last_event_seq().map_err(from_store)?,
    };
    let filter = EventFilter {
        scope,
        since_ms: None,
        until_ms: None,
        kinds,
    };
    // One slot stays free for the error that ends the stream of a consumer that stopped reading.
    let (sender, receiver) = mpsc::channel(capacity.max(2));
    let watcher = Watcher {
        store,
        filter,
        sender,
        tip,
        shutdown,
        stall_grace,
        delivered: start,
        heartbeat,
    };
    if heartbeat.is_some() {
        // The resume point, before any event: the channel is new, so this never waits.
        let _ = watcher.sender.try_send(Ok(heartbeat_message(start)));
    }
    tokio::spawn(watcher.run(start));
    Ok(ReceiverStream::new(receiver))
}

type WatchItem = Result<pb::WatchTimelineEventsResponse, Status>;

struct Watcher {
    store: Store,
    filter: EventFilter,
    sender: mpsc::Sender<WatchItem>,
    tip: tip::Receiver<u64>,
    shutdown: tip::Receiver<bool>,
    stall_grace: Duration,
    /// The cursor of the last event handed to the stream (the resume point the client has).
    delivered: u64,
    /// How long a quiet stream waits before it sends a heartbeat; `None` sends none.
    heartbeat: Option<Duration>,
}

/// A message with no event, carrying the position to resume from.
fn heartbeat_message(position: u64) -> pb::WatchTimelineEventsResponse {
    pb::WatchTimelineEventsResponse {
        event: None,
        cursor: position.to_string(),
    }
}

/// Why a watch ends.
enum End {
    /// The client went away, the daemon shuts down, or an error was sent.
    Done,
}

impl Watcher {
    async fn run(mut self, start: u64) {
        let mut position = start;
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            let store = self.store.clone();
            let filter = self.filter.clone();
            let batch = tokio::task::spawn_blocking(move || {
                store.events_after(position, WATCH_BATCH, &filter)
            })
            .await;
            let batch = match batch {
                Ok(Ok(batch)) => batch,
                Ok(Err(error)) => {
                    let _ = self.sender.try_send(Err(from_store(error)));
                    return;
                }
                Err(error) => {
                    let _ = self.sender.try_send(Err(from_join(error)));
                    return;
                }
            };
            for event in batch.events {
                if let Err(End::Done) = self.deliver(event).await {
                    return;
                }
            }
            if batch.scanned_to > position {
                position = batch.scanned_to;
                continue;
            }
            if let Err(End::Done) = self.wait_for_tip(position).await {
                return;
            }
        }
    }

    /// Waits until an event after `position` is recorded, sending heartbeats (the position scanned
    /// so far) while it waits.
    async fn wait_for_tip(&mut self, position: u64) -> Result<(), End> {
        loop {
            if *self.tip.borrow_and_update() > position {
                return Ok(());
            }
            let quiet = async {
                match self.heartbeat {
                    Some(period) => tokio::time::sleep(period).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = quiet => {
                    // A full stream already tells the client enough; the heartbeat is skipped then.
                    let _ = self.sender.try_send(Ok(heartbeat_message(position)));
                }
                changed = self.tip.changed() => {
                    if changed.is_err() {
                        return Err(End::Done);
                    }
                }
                changed = self.shutdown.changed() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        return Err(End::Done);
                    }
                }
                () = self.sender.closed() => return Err(End::Done),
            }
        }
    }

    /// Hands one event to the stream, or ends the stream when the consumer does not keep up.
    async fn deliver(&mut self, event: StoredEvent) -> Result<(), End> {
        let seq = event.record.seq;
        let response = pb::WatchTimelineEventsResponse {
            event: Some(event_to_proto(event)),
            cursor: seq.to_string(),
        };
        // Two free slots: one for the event, one kept for the error a stalled consumer gets.
        let reserved = tokio::select! {
            reserved = tokio::time::timeout(self.stall_grace, self.sender.reserve_many(2)) => reserved,
            changed = self.shutdown.changed() => {
                if changed.is_err() || *self.shutdown.borrow() {
                    return Err(End::Done);
                }
                // Not a shutdown: wait again, with a fresh grace.
                tokio::time::timeout(self.stall_grace, self.sender.reserve_many(2)).await
            }
        };
        match reserved {
            Ok(Ok(mut permits)) => {
                if let Some(permit) = permits.next() {
                    permit.send(Ok(response));
                }
                self.delivered = seq;
                Ok(())
            }
            Ok(Err(_closed)) => Err(End::Done),
            Err(_elapsed) => {
                tracing::warn!(
                    cursor = self.delivered,
                    "timeline watcher too slow, ending its stream"
                );
                let _ = self.sender.try_send(Err(Status::resource_exhausted(format!(
                    "consumer too slow; resume from cursor {}",
                    self.delivered
                ))));
                Err(End::Done)
            }
        }
    }
}

/// The scope of a request's `scope` oneof (list and watch requests have their own, alike).
macro_rules! request_scope {
    ($name:ident, $scope:ty) => {
        fn $name(scope: Option<$scope>) -> Result<EventScope, Status> {
            type Scope = $scope;
            match scope {
                None => Ok(EventScope::AllAccounts),
                Some(Scope::AccountId(id)) => account_scope(id),
                Some(Scope::Owner(owner)) => owner_scope(owner),
            }
        }
    };
}

request_scope!(list_scope, pb::list_timeline_events_request::Scope);
request_scope!(watch_scope, pb::watch_timeline_events_request::Scope);

fn account_scope(id: String) -> Result<EventScope, Status> {
    if id.trim().is_empty() {
        return Err(Status::invalid_argument("account_id: must not be empty"));
    }
    Ok(EventScope::Account(id))
}

fn owner_scope(owner: String) -> Result<EventScope, Status> {
    if owner.trim().is_empty() {
        return Err(Status::invalid_argument("owner: must not be empty"));
    }
    Ok(EventScope::Owner(owner.trim().to_lowercase()))
}

/// NOT_FOUND for an account scope naming no account of the directory, unless it is a deleted account
/// whose timeline is kept (events are facts: they stay readable, DESIGN 1.4).
fn check_account(store: &Store, scope: &EventScope) -> Result<(), Status> {
    if let EventScope::Account(id) = scope {
        if store.get_account(id).map_err(from_store)?.is_none()
            && !store.has_timeline(id).map_err(from_store)?
        {
            return Err(Status::not_found(format!("account_id: no account {id:?}")));
        }
    }
    Ok(())
}

fn instant_ms(
    field: &str,
    timestamp: Option<&prost_types::Timestamp>,
) -> Result<Option<i64>, Status> {
    timestamp
        .map(|timestamp| {
            timestamp_from_proto(timestamp)
                .map(|instant| instant.timestamp_millis())
                .ok_or_else(|| Status::invalid_argument(format!("{field}: timestamp out of range")))
        })
        .transpose()
}

fn kinds(kinds: &[i32]) -> Result<BTreeSet<u32>, Status> {
    kinds
        .iter()
        .map(|&kind| match pb::TimelineEventKind::try_from(kind) {
            Ok(pb::TimelineEventKind::Unspecified) | Err(_) => Err(Status::invalid_argument(
                format!("kinds: {kind} is not a timeline event kind"),
            )),
            Ok(kind) => Ok(u32::try_from(kind as i32).unwrap_or(0)),
        })
        .collect()
}

/// A token for the page after `position`, bound to `filter` so it cannot continue another query.
fn encode_page_token(position: EventPosition, filter: &EventFilter) -> String {
    super::paging::encode_token(
        PAGE_TOKEN_PREFIX,
        &format!(
            "{}:{}:{}",
            position.occurred_ms,
            position.seq,
            filter_digest(filter)
        ),
    )
}

/// The position a token continues from, refused unless it was issued for this same `filter`.
fn decode_page_token(token: &str, filter: &EventFilter) -> Result<EventPosition, Status> {
    let bad = || Status::invalid_argument("page_token: not a token returned by ListTimelineEvents");
    let text = super::paging::token_text(token, bad)?;
    let rest = super::paging::token_body(&text, PAGE_TOKEN_PREFIX, UNBOUND_PAGE_TOKEN_PREFIX, bad)?;
    let mut parts = rest.split(':');
    let (Some(occurred_ms), Some(seq), Some(digest), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let position = EventPosition {
        occurred_ms: occurred_ms.parse().map_err(|_| bad())?,
        seq: seq.parse().map_err(|_| bad())?,
    };
    if digest != filter_digest(filter) {
        return Err(Status::invalid_argument(
            "page_token: the filters changed since this token was issued (scope, kinds, since and \
             until must stay as they were); list again without page_token",
        ));
    }
    Ok(position)
}

/// A short hex digest of the normalised filter (page size left out: it may change between pages).
fn filter_digest(filter: &EventFilter) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"zdsync.timeline.filter.v1");
    // Tags and length prefixes keep distinct filters from hashing the same bytes.
    match &filter.scope {
        EventScope::AllAccounts => hasher.update([0u8]),
        EventScope::Account(id) => {
            hasher.update([1u8]);
            hash_text(&mut hasher, id);
        }
        EventScope::Owner(owner) => {
            hasher.update([2u8]);
            hash_text(&mut hasher, owner);
        }
    }
    for bound in [filter.since_ms, filter.until_ms] {
        match bound {
            None => hasher.update([0u8]),
            Some(ms) => {
                hasher.update([1u8]);
                hasher.update(ms.to_be_bytes());
            }
        }
    }
    hasher.update((filter.kinds.len() as u64).to_be_bytes());
    for kind in &filter.kinds {
        hasher.update(kind.to_be_bytes());
    }
    hasher.finalize()[..FILTER_DIGEST_BYTES]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn hash_text(hasher: &mut Sha256, text: &str) {
    hasher.update((text.len() as u64).to_be_bytes());
    hasher.update(text.as_bytes());
}

fn millis(ms: i64) -> Option<prost_types::Timestamp> {
    DateTime::from_timestamp_millis(ms).map(timestamp_to_proto)
}

/// A stored event as the contract shows it.
pub fn event_to_proto(event: StoredEvent) -> pb::TimelineEvent {
    let record = event.record;
    let satisfaction =
        (record.kind == pb::TimelineEventKind::BadSatisfactionRating as u32).then(|| {
            pb::EventSatisfaction {
                score: record.score.clone(),
                comment: record.comment.clone(),
            }
        });
    pb::TimelineEvent {
        event_id: record.key,
        kind: i32::try_from(record.kind).unwrap_or(0),
        account_id: record.account_id,
        user_email: record.user_email,
        occurred_at: millis(record.occurred_at_ms),
        detected_at: millis(record.detected_at_ms),
        backfill: record.backfill,
        escalated: record.escalated,
        ticket: Some(pb::EventTicket {
            id: i64::try_from(record.ticket_id).unwrap_or(i64::MAX),
            subject: record.subject,
            priority: record.priority,
            status: record.status,
            reporter: Some(pb::EventReporter {
                name: record.requester_name,
                email: record.requester_email,
            }),
            reported_at: millis(record.reported_at_ms),
            assigned_group: record.group_name,
            assignee: record.assignee_name,
        }),
        satisfaction,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn filter(scope: EventScope) -> EventFilter {
        EventFilter {
            scope,
            since_ms: Some(1_000),
            until_ms: Some(9_000),
            kinds: BTreeSet::from([1, 3]),
        }
    }

    const POSITION: EventPosition = EventPosition {
        occurred_ms: -5,
        seq: 42,
    };

    fn refused(token: &str, filter: &EventFilter) -> Status {
        let error = decode_page_token(token, filter).expect_err(token);
        assert_eq!(error.code(), tonic::Code::InvalidArgument, "{error:?}");
        assert!(error.message().starts_with("page_token: "), "{error:?}");
        error
    }

    #[test]
    fn page_tokens_round_trip_with_their_filters_and_stay_url_safe() {
        let issued_for = filter(EventScope::Owner("owner@example.com".into()));
        let token = encode_page_token(POSITION, &issued_for);
        assert!(
            token
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'),
            "{token}"
        );
        // An equal filter built afresh, as the next request builds it.
        let same = filter(EventScope::Owner("owner@example.com".into()));
        assert_eq!(decode_page_token(&token, &same).expect("valid"), POSITION);
    }

    #[test]
    fn page_tokens_are_refused_with_other_filters() {
        let issued_for = filter(EventScope::Account("acct-1".into()));
        let token = encode_page_token(POSITION, &issued_for);
        let others = [
            filter(EventScope::Account("acct-2".into())),
            filter(EventScope::Owner("acct-1".into())),
            filter(EventScope::AllAccounts),
            EventFilter {
                kinds: BTreeSet::from([1]),
                ..issued_for.clone()
            },
            EventFilter {
                kinds: BTreeSet::new(),
                ..issued_for.clone()
            },
            EventFilter {
                since_ms: Some(1_001),
                ..issued_for.clone()
            },
            EventFilter {
                since_ms: None,
                ..issued_for.clone()
            },
            EventFilter {
                until_ms: Some(8_999),
                ..issued_for.clone()
            },
            EventFilter {
                until_ms: None,
                ..issued_for.clone()
            },
        ];
        for other in &others {
            let error = refused(&token, other);
            assert!(
                error.message().contains("filters changed"),
                "{other:?}: {error:?}"
            );
        }
    }

    #[test]
    fn unbound_tokens_of_the_old_format_are_refused() {
        let old = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("timeline:-5:42");
        let error = refused(&old, &filter(EventScope::AllAccounts));
        assert!(error.message().contains("earlier version"), "{error:?}");
    }

    #[test]
    fn page_tokens_reject_garbage() {
        let any = filter(EventScope::AllAccounts);
        let encode = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
        let digest = filter_digest(&any);
        let garbage = [
            String::new(),
            "!!".into(),
            encode("x:1"),
            encode("timeline.v2:"),
            encode("timeline.v2:1:2"),
            encode(&format!("timeline.v2:x:2:{digest}")),
            encode(&format!("timeline.v2:1:-2:{digest}")),
            encode(&format!("timeline.v2:1:2:{digest}:3")),
        ];
        for token in &garbage {
            refused(token, &any);
        }
        // The well-formed neighbour of those is accepted, so each was refused for its own flaw.
        assert_eq!(
            decode_page_token(&encode(&format!("timeline.v2:1:2:{digest}")), &any).expect("valid"),
            EventPosition {
                occurred_ms: 1,
                seq: 2
            }
        );
    }

    #[test]
    fn kinds_reject_unspecified_and_unknown() {
        assert_eq!(kinds(&[1, 4]).expect("valid"), BTreeSet::from([1, 4]));
        assert!(kinds(&[0]).is_err());
        assert!(kinds(&[9]).is_err());
    }
}
