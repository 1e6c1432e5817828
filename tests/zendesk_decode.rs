//! Decodes every recorded and documented Zendesk payload in the shared fixtures with the decoder
//! zdsync uses for it, and checks the facts the fixtures' README names.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use zdsync::zendesk::decode::decode_json;
use zdsync::zendesk::envelope::{
    CurrentUserEnvelope, GroupListPage, NextLink, OrganizationListPage, OrganizationTimePage,
    PageEnvelope, SatisfactionRatingEnvelope, SatisfactionRatingListPage, TicketAuditListPage,
    TicketCursorPage, TicketEventTimePage, TicketMetricEnvelope, TicketMetricEventTimePage,
    TicketMetricListPage, TicketTimePage, UserCursorPage, UserTimePage,
};
use zdsync::zendesk::error::error_message;
use zdsync::zendesk::payload::{
    ChangeKind, FieldChange, SatisfactionScore, TicketPriority, TicketSatisfaction, TicketStatus,
};
use zdsync::zendesk::retry::parse_retry_after;
use zdsync::zendesk::ZendeskError;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/zendesk");

fn read(relative: &str) -> Vec<u8> {
    let path = Path::new(FIXTURES).join(relative);
    std::fs::read(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

fn decode<T: DeserializeOwned>(relative: &str) -> T {
    match decode_json::<T>(relative, &read(relative)) {
        Ok(value) => value,
        Err(err) => panic!("{relative}: {err}"),
    }
}

fn check<T: DeserializeOwned>(relative: &str) -> Result<(), ZendeskError> {
    decode_json::<T>(relative, &read(relative)).map(|_| ())
}

fn check_error_body(relative: &str) -> Result<(), ZendeskError> {
    let message = error_message(&read(relative));
    assert!(
        !message.is_empty() && message != "no message",
        "{relative}: {message}"
    );
    Ok(())
}

fn check_response_meta(relative: &str) -> Result<(), ZendeskError> {
    decode_json::<serde_json::Value>(relative, &read(relative)).map(|_| ())
}

type Decoder = fn(&str) -> Result<(), ZendeskError>;

/// Every fixture file and the decoder zdsync uses for its endpoint.
const DECODERS: &[(&str, Decoder)] = &[
    (
        "incremental_tickets_cursor/zenpy_start_time_0_single_page.json",
        check::<TicketCursorPage>,
    ),
    (
        "incremental_tickets_cursor/zenpy_per_page_1_page_1.json",
        check::<TicketCursorPage>,
    ),
    (
        "incremental_tickets_cursor/zenpy_per_page_1_page_2.json",
        check::<TicketCursorPage>,
    ),
    (
        "incremental_tickets_cursor/zendesk_oas_example.json",
        check::<TicketCursorPage>,
    ),
    (
        "incremental_tickets_time/zenpy_start_time_0_single_page.json",
        check::<TicketTimePage>,
    ),
    (
        "incremental_tickets_time/zenpy_per_page_1_start_time_0.json",
        check::<TicketTimePage>,
    ),
    (
        "incremental_tickets_time/zendesk_oas_example.json",
        check::<TicketTimePage>,
    ),
    (
        "incremental_ticket_events/zendesk_oas_example.json",
        check::<TicketEventTimePage>,
    ),
    (
        "incremental_ticket_metric_events/zendesk_oas_example.json",
        check::<TicketMetricEventTimePage>,
    ),
    (
        "incremental_organizations/zendesk_oas_example.json",
        check::<OrganizationTimePage>,
    ),
    (
        "organizations/zendesk_api_client_rb_list.json",
        check::<OrganizationListPage>,
    ),
    (
        "incremental_users/zenpy_cursor_per_page_1_page_1.json",
        check::<UserCursorPage>,
    ),
    (
        "incremental_users/zenpy_cursor_per_page_1_page_2.json",
        check::<UserCursorPage>,
    ),
    (
        "incremental_users/zenpy_time_per_page_1_start_time_0.json",
        check::<UserTimePage>,
    ),
    (
        "incremental_users/zendesk_oas_example_cursor.json",
        check::<UserCursorPage>,
    ),
    (
        "incremental_users/zendesk_oas_example_time.json",
        check::<UserTimePage>,
    ),
    (
        "satisfaction_ratings/zendesk_api_client_rb_list.json",
        check::<SatisfactionRatingListPage>,
    ),
    (
        "satisfaction_ratings/zendesk_api_client_rb_show.json",
        check::<SatisfactionRatingEnvelope>,
    ),
    (
        "satisfaction_ratings/zendesk_api_client_rb_received.json",
        check::<SatisfactionRatingListPage>,
    ),
    (
        "satisfaction_ratings/zendesk_oas_example_list.json",
        check::<SatisfactionRatingListPage>,
    ),
    (
        "satisfaction_ratings/zendesk_oas_example_show.json",
        check::<SatisfactionRatingEnvelope>,
    ),
    (
        "users_me/zendesk_api_client_rb.json",
        check::<CurrentUserEnvelope>,
    ),
    (
        "users_me/zendesk_oas_example.json",
        check::<CurrentUserEnvelope>,
    ),
    ("groups/zendesk_api_client_rb.json", check::<GroupListPage>),
    ("groups/zendesk_oas_example.json", check::<GroupListPage>),
    (
        "ticket_audits/zendesk_api_client_rb_ticket_1.json",
        check::<TicketAuditListPage>,
    ),
    (
        "ticket_audits/zendesk_api_client_rb_ticket_1_include_users.json",
        check::<TicketAuditListPage>,
    ),
    (
        "ticket_audits/zendesk_oas_example.json",
        check::<TicketAuditListPage>,
    ),
    (
        "ticket_metrics/zendesk_api_client_rb_list.json",
        check::<TicketMetricListPage>,
    ),
    (
        "ticket_metrics/zendesk_api_client_rb_ticket_1.json",
        check::<TicketMetricEnvelope>,
    ),
    (
        "ticket_metrics/zendesk_oas_example_list.json",
        check::<TicketMetricListPage>,
    ),
    (
        "ticket_metrics/zendesk_oas_example_show.json",
        check::<TicketMetricEnvelope>,
    ),
    ("errors/404_record_not_found.json", check_error_body),
    (
        "errors/422_record_invalid_blank_value.json",
        check_error_body,
    ),
    (
        "errors/422_record_invalid_duplicate_value.json",
        check_error_body,
    ),
    (
        "errors/400_invalid_attribute_error_object.json",
        check_error_body,
    ),
    ("errors/429_api_rate_limit_exceeded.json", check_error_body),
    (
        "errors/429_api_rate_limit_exceeded.response_meta.json",
        check_response_meta,
    ),
    (
        "errors/429_errors_array_oas_update_organization.json",
        check_error_body,
    ),
    (
        "errors/403_errors_array_oas_trigger_categories.json",
        check_error_body,
    ),
];

fn fixture_files(dir: &Path, found: &mut BTreeSet<String>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()));
    for entry in entries.flatten() {
        let path: PathBuf = entry.path();
        if path.is_dir() {
            fixture_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "json") {
            let relative = path
                .strip_prefix(FIXTURES)
                .map(|p| p.to_string_lossy().into_owned());
            found.insert(relative.unwrap_or_default());
        }
    }
}

#[test]
fn every_fixture_has_a_decoder_and_decodes() {
    let mut found = BTreeSet::new();
    fixture_files(Path::new(FIXTURES), &mut found);
    let covered: BTreeSet<String> = DECODERS
        .iter()
        .map(|(path, _)| (*path).to_owned())
        .collect();
    assert_eq!(
        found, covered,
        "fixture files without a decoder (or decoders without a file)"
    );
    assert_eq!(found.len(), 40);
    for (path, decoder) in DECODERS {
        if let Err(err) = decoder(path) {
            panic!("{path}: {err}");
        }
    }
}

#[test]
fn cursor_ticket_export_single_page() {
    let page: TicketCursorPage =
        decode("incremental_tickets_cursor/zenpy_start_time_0_single_page.json");
    assert_eq!(page.tickets.len(), 87);
    let count = |status| page.tickets.iter().filter(|t| t.status == status).count();
    assert_eq!(count(TicketStatus::Deleted), 1);
    assert_eq!(
        (
            count(TicketStatus::New),
            count(TicketStatus::Pending),
            count(TicketStatus::Open)
        ),
        (77, 8, 1)
    );
    assert_eq!(
        page.tickets.iter().filter(|t| t.priority.is_none()).count(),
        80
    );
    let high = page
        .tickets
        .iter()
        .filter(|t| t.priority == Some(TicketPriority::High))
        .count();
    assert_eq!(high, 6);
    assert!(page.end_of_stream);
    assert_eq!(
        page.after_cursor.as_deref(),
        Some("MTcwNzI3MTc0MS4wfHw0MDQ1fA==")
    );
    let deleted = page
        .tickets
        .iter()
        .find(|t| t.status == TicketStatus::Deleted)
        .map(|t| t.id);
    assert_eq!(deleted, Some(4034));
    let scrubbed = page
        .tickets
        .iter()
        .find(|t| t.subject.as_deref() == Some("SCRUBBED"))
        .map(|t| t.id);
    assert_eq!(scrubbed, Some(4034));
    assert_eq!(
        page.tickets.iter().map(|t| t.generated_timestamp).max(),
        Some(1_707_271_741)
    );
    assert!(page.users.is_empty() && page.groups.is_empty() && page.metric_sets.is_empty());
    assert!(
        page.tickets.iter().all(|t| t.satisfaction_rating.is_none()),
        "the recording writes satisfaction_rating null on every ticket"
    );
}

#[test]
fn cursor_ticket_export_per_page_1_walk() {
    let first: TicketCursorPage = decode("incremental_tickets_cursor/zenpy_per_page_1_page_1.json");
    let second: TicketCursorPage =
        decode("incremental_tickets_cursor/zenpy_per_page_1_page_2.json");
    assert_eq!(
        first.tickets.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![28]
    );
    assert!(!first.end_of_stream);
    assert_eq!(
        first.after_cursor.as_deref(),
        Some("MTY5NTA1MjY2My4wfHwyOHw=")
    );
    let ticket = &first.tickets[0];
    assert_eq!(
        (ticket.status, ticket.priority, ticket.organization_id),
        (TicketStatus::New, None, Some(6_130_869_157_658))
    );
    assert_eq!(ticket.created_at.to_rfc3339(), "2023-09-18T15:57:42+00:00");
    assert_eq!(
        second.tickets.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![29]
    );
    assert_eq!(
        second.tickets[0].generated_timestamp,
        ticket.generated_timestamp
    );
    assert!(!second.end_of_stream);
}

#[test]
fn cursor_ticket_export_doc_example() {
    let page: TicketCursorPage = decode("incremental_tickets_cursor/zendesk_oas_example.json");
    assert!(page.end_of_stream);
    assert_eq!(
        page.after_cursor.as_deref(),
        Some("MTU3NjYxMzUzOS4wfHw0Njd8")
    );
    let ticket = &page.tickets[0];
    assert_eq!(
        (ticket.id, ticket.priority, ticket.status),
        (35436, Some(TicketPriority::High), TicketStatus::Open)
    );
    assert_eq!(
        (ticket.group_id, ticket.requester_id),
        (Some(98738), Some(20_978_392))
    );
    let rating = Some(TicketSatisfaction {
        id: Some(1234),
        score: SatisfactionScore::Good,
        comment: Some("Great support!".to_owned()),
    });
    assert_eq!(ticket.satisfaction_rating, rating);
    let doc: TicketTimePage = decode("incremental_tickets_time/zendesk_oas_example.json");
    let (tickets, _) = doc.into_parts();
    assert_eq!(tickets[0].satisfaction_rating, rating);
}

#[test]
fn time_based_ticket_exports() {
    let whole: TicketTimePage =
        decode("incremental_tickets_time/zenpy_start_time_0_single_page.json");
    let (tickets, meta) = whole.into_parts();
    assert_eq!(tickets.len(), 87);
    assert_eq!(
        (meta.end_time, meta.end_of_stream, meta.count),
        (Some(1_707_271_741), Some(true), Some(87))
    );
    let grouped: TicketTimePage =
        decode("incremental_tickets_time/zenpy_per_page_1_start_time_0.json");
    let (tickets, meta) = grouped.into_parts();
    assert_eq!(tickets.len(), 7, "records sharing one second are not split");
    assert!(tickets
        .iter()
        .all(|t| t.generated_timestamp == 1_695_052_663));
    assert_eq!(
        (meta.end_time, meta.end_of_stream),
        (Some(1_695_052_664), Some(false))
    );
    let doc: TicketTimePage = decode("incremental_tickets_time/zendesk_oas_example.json");
    let (tickets, meta) = doc.into_parts();
    assert_eq!(
        (tickets.len(), meta.count),
        (1, Some(2)),
        "the doc example's count disagrees with its array"
    );
}

#[test]
fn ticket_events_doc_example_has_metric_event_records() {
    let page: TicketEventTimePage = decode("incremental_ticket_events/zendesk_oas_example.json");
    let (events, meta) = page.into_parts();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!((event.id, event.ticket_id), (926_256_957_613, 155));
    assert!(
        event.changes.is_empty(),
        "a metric-event shaped record carries no status/priority change"
    );
    assert_eq!(
        event.occurred_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2020-10-26T12:53:12+00:00")
    );
    assert_eq!(
        (meta.end_time, meta.end_of_stream),
        (Some(1_601_357_503), Some(true))
    );
}

#[test]
fn ticket_metric_events_doc_example() {
    let page: TicketMetricEventTimePage =
        decode("incremental_ticket_metric_events/zendesk_oas_example.json");
    let (events, meta) = page.into_parts();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.ticket_id == 155));
    assert_eq!(events[1].kind, "activate");
    assert_eq!(
        meta.end_of_stream, None,
        "no end_of_stream key on this endpoint's example"
    );
}

#[test]
fn organizations() {
    let page: OrganizationTimePage = decode("incremental_organizations/zendesk_oas_example.json");
    let (organizations, meta) = page.into_parts();
    let org = &organizations[0];
    assert_eq!(
        (org.id, org.name.as_str(), org.external_id.as_deref()),
        (4_112_492, "Groablet Enterprises", Some("ABC198"))
    );
    assert_eq!(org.domain_names, vec!["remain.com".to_owned()]);
    assert_eq!(
        org.organization_fields
            .get("datepudding")
            .and_then(|v| v.as_str()),
        Some("2018-11-04T00:00:00+00:00")
    );
    assert_eq!(org.organization_fields.len(), 3);
    assert_eq!(meta.end_time, Some(1_601_357_503));
    let list: OrganizationListPage = decode("organizations/zendesk_api_client_rb_list.json");
    let (organizations, meta) = list.into_parts();
    assert_eq!(organizations.len(), 2);
    assert!(organizations.iter().all(|o| o.external_id.is_none()
        && o.organization_fields.is_empty()
        && o.domain_names.is_empty()));
    assert_eq!((meta.next(), meta.count), (None, Some(2)));
}

#[test]
fn users() {
    let first: UserCursorPage = decode("incremental_users/zenpy_cursor_per_page_1_page_1.json");
    let second: UserCursorPage = decode("incremental_users/zenpy_cursor_per_page_1_page_2.json");
    let user = &first.users[0];
    assert_eq!(
        (user.id, user.role.as_deref(), user.email.as_deref()),
        (
            6_130_869_168_922,
            Some("end-user"),
            Some("customer@example.com")
        )
    );
    assert!(!first.end_of_stream && !second.end_of_stream);
    assert_eq!(
        first.after_cursor.as_deref(),
        Some("MTY5NDMwMzUyNi4wfHw2MTMwODY5MTY4OTIyfA==")
    );
    assert_eq!(second.users[0].name.as_deref(), Some("tom"));
    let time: UserTimePage = decode("incremental_users/zenpy_time_per_page_1_start_time_0.json");
    let (users, meta) = time.into_parts();
    assert_eq!(
        (users.len(), meta.end_time, meta.end_of_stream),
        (1, Some(1_694_303_527), Some(false))
    );
    let doc: UserCursorPage = decode("incremental_users/zendesk_oas_example_cursor.json");
    assert!(doc.end_of_stream && doc.after_cursor.is_some());
    assert_eq!(
        (doc.users[0].role.as_deref(), doc.users[0].organization_id),
        (Some("agent"), Some(57542))
    );
    let doc_time: UserTimePage = decode("incremental_users/zendesk_oas_example_time.json");
    assert_eq!(doc_time.users.len(), 1);
}

#[test]
fn satisfaction_ratings() {
    let list: SatisfactionRatingListPage =
        decode("satisfaction_ratings/zendesk_api_client_rb_list.json");
    let (ratings, meta) = list.into_parts();
    assert_eq!(ratings.len(), 65);
    let offered = ratings
        .iter()
        .filter(|r| r.score == SatisfactionScore::Offered)
        .collect::<Vec<_>>();
    assert_eq!(offered.len(), 64);
    assert!(offered.iter().all(|r| r.comment.is_none()));
    let good = ratings
        .iter()
        .filter(|r| r.score.is_good())
        .collect::<Vec<_>>();
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].comment.as_deref(), Some("Satisfaction!"));
    assert_eq!(ratings.iter().filter(|r| r.score.is_bad()).count(), 0);
    assert_eq!((meta.next(), meta.count), (None, Some(65)));

    let show: SatisfactionRatingEnvelope =
        decode("satisfaction_ratings/zendesk_api_client_rb_show.json");
    let rating = show.satisfaction_rating.into_first();
    assert_eq!(
        rating.map(|r| (r.id, r.ticket_id, r.score)),
        Some((20_001_907, 35, SatisfactionScore::Good))
    );
    let received: SatisfactionRatingListPage =
        decode("satisfaction_ratings/zendesk_api_client_rb_received.json");
    assert_eq!(received.satisfaction_ratings.len(), 1);
    let doc_list: SatisfactionRatingListPage =
        decode("satisfaction_ratings/zendesk_oas_example_list.json");
    assert_eq!(
        doc_list
            .satisfaction_ratings
            .iter()
            .filter(|r| r.score.is_good())
            .count(),
        2
    );
    assert_eq!(
        doc_list.meta.next(),
        None,
        "no pagination keys means a single page"
    );
    let doc_show: SatisfactionRatingEnvelope =
        decode("satisfaction_ratings/zendesk_oas_example_show.json");
    assert_eq!(
        doc_show.satisfaction_rating.0.len(),
        1,
        "the doc example wraps the rating in an array"
    );
    assert_eq!(
        doc_show.satisfaction_rating.into_first().map(|r| r.id),
        Some(35436)
    );
}

#[test]
fn users_me() {
    let recorded: CurrentUserEnvelope = decode("users_me/zendesk_api_client_rb.json");
    assert_eq!(recorded.user.id, Some(20_014_182));
    assert_eq!(recorded.user.role.as_deref(), Some("admin"));
    assert_eq!(
        recorded.user.email.as_deref(),
        Some("sdavidovitz+qa@zendesk.com")
    );
    let doc: CurrentUserEnvelope = decode("users_me/zendesk_oas_example.json");
    assert_eq!(
        (doc.user.id, doc.user.role.as_deref()),
        (Some(35436), Some("agent"))
    );
}

#[test]
fn groups() {
    let recorded: GroupListPage = decode("groups/zendesk_api_client_rb.json");
    let (groups, meta) = recorded.into_parts();
    assert_eq!(groups.len(), 3);
    assert!(groups.iter().all(|g| !g.deleted));
    assert_eq!(groups.iter().filter(|g| g.name == "My Group").count(), 2);
    assert_eq!((meta.next(), meta.count), (None, Some(3)));
    let doc: GroupListPage = decode("groups/zendesk_oas_example.json");
    assert_eq!(
        doc.groups.iter().map(|g| g.id).collect::<Vec<_>>(),
        vec![211, 122]
    );
}

#[test]
fn ticket_audits_yield_status_and_priority_changes() {
    let page: TicketAuditListPage = decode("ticket_audits/zendesk_api_client_rb_ticket_1.json");
    assert_eq!(page.audits.len(), 100);
    assert_eq!(page.meta.count, Some(6310));
    assert!(matches!(page.meta.next(), Some(NextLink::Url(ref url)) if url.ends_with("page=2")));
    let changes: Vec<&FieldChange> = page.audits.iter().flat_map(|a| a.changes.iter()).collect();
    assert!(changes.contains(&&FieldChange::Priority {
        kind: ChangeKind::Change,
        from: Some(TicketPriority::Normal),
        to: Some(TicketPriority::High)
    }));
    assert!(changes.contains(&&FieldChange::Status {
        kind: ChangeKind::Change,
        from: Some(TicketStatus::Open),
        to: TicketStatus::Pending
    }));
    assert!(changes.contains(&&FieldChange::Status {
        kind: ChangeKind::Create,
        from: None,
        to: TicketStatus::Open
    }));
    assert_eq!(
        changes.len(),
        4,
        "tag changes and comments are not status/priority changes"
    );
    let with_users: TicketAuditListPage =
        decode("ticket_audits/zendesk_api_client_rb_ticket_1_include_users.json");
    assert_eq!(with_users.users.len(), 2);
    let doc: TicketAuditListPage = decode("ticket_audits/zendesk_oas_example.json");
    let doc_changes: Vec<&FieldChange> = doc.audits.iter().flat_map(|a| a.changes.iter()).collect();
    assert_eq!(
        doc_changes,
        vec![&FieldChange::Status {
            kind: ChangeKind::Change,
            from: Some(TicketStatus::New),
            to: TicketStatus::Open
        }],
        "the custom_status_id change with integer values is skipped"
    );
}

#[test]
fn ticket_metrics() {
    let list: TicketMetricListPage = decode("ticket_metrics/zendesk_api_client_rb_list.json");
    let (metrics, meta) = list.into_parts();
    assert_eq!((metrics.len(), meta.count), (100, Some(6036)));
    assert!(metrics.iter().all(|m| m.solved_at.is_none()));
    let one: TicketMetricEnvelope = decode("ticket_metrics/zendesk_api_client_rb_ticket_1.json");
    let metric = one.ticket_metric.into_first();
    assert_eq!(
        metric.map(|m| (m.ticket_id, m.replies, m.solved_at)),
        Some((1, Some(555), None))
    );
    let doc_list: TicketMetricListPage = decode("ticket_metrics/zendesk_oas_example_list.json");
    assert_eq!(
        doc_list
            .ticket_metrics
            .iter()
            .map(|m| (m.id, m.reopens))
            .collect::<Vec<_>>(),
        vec![(33, Some(0)), (34, Some(0))]
    );
    let doc_show: TicketMetricEnvelope = decode("ticket_metrics/zendesk_oas_example_show.json");
    assert_eq!(
        doc_show.ticket_metric.0.len(),
        1,
        "the doc example wraps the metric in an array"
    );
    assert!(doc_show
        .ticket_metric
        .into_first()
        .and_then(|m| m.solved_at)
        .is_some());
}

#[test]
fn error_bodies_parse_to_their_messages() {
    let message = |relative: &str| error_message(&read(relative));
    assert_eq!(
        message("errors/404_record_not_found.json"),
        "RecordNotFound: Not found"
    );
    assert_eq!(
        message("errors/422_record_invalid_blank_value.json"),
        "RecordInvalid: Record validation errors"
    );
    assert_eq!(
        message("errors/422_record_invalid_duplicate_value.json"),
        "RecordInvalid: Record validation errors"
    );
    assert_eq!(
        message("errors/400_invalid_attribute_error_object.json"),
        "Invalid attribute: You passed an invalid value for the password attribute. must be a string"
    );
    assert_eq!(
        message("errors/429_api_rate_limit_exceeded.json"),
        "APIRateLimitExceeded: Number of allowed incremental export API requests per minute exceeded"
    );
    assert_eq!(
        message("errors/429_errors_array_oas_update_organization.json"),
        "TooManyRequests: Too many requests to update"
    );
    assert_eq!(
        message("errors/403_errors_array_oas_trigger_categories.json"),
        "TriggerCategoriesNotEnabled: Ticket trigger categories are not enabled for your account"
    );
}

#[test]
fn recorded_429_asks_for_ten_seconds() {
    let meta: serde_json::Value = decode("errors/429_api_rate_limit_exceeded.response_meta.json");
    assert_eq!(meta["status"]["code"], 429);
    let retry_after = meta["headers"]["retry-after"][0]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        parse_retry_after(retry_after, chrono::Utc::now()),
        Some(Duration::from_secs(10))
    );
}

#[test]
fn a_bad_record_in_a_fixture_is_named_by_endpoint_id_and_field() {
    let relative = "incremental_tickets_cursor/zenpy_per_page_1_page_1.json";
    let text =
        String::from_utf8_lossy(&read(relative)).replace("\"status\": \"new\"", "\"status\": 17");
    match decode_json::<TicketCursorPage>(
        "/api/v2/incremental/tickets/cursor.json",
        text.as_bytes(),
    ) {
        Err(ZendeskError::Malformed {
            endpoint,
            record_id,
            detail,
        }) => {
            assert_eq!(endpoint, "/api/v2/incremental/tickets/cursor.json");
            assert_eq!(record_id, Some(28));
            assert!(detail.contains("tickets[0].status"), "{detail}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn a_mistyped_satisfaction_rating_is_named_by_endpoint_id_and_field() {
    let relative = "incremental_tickets_cursor/zendesk_oas_example.json";
    let text = String::from_utf8_lossy(&read(relative)).into_owned();
    let start = text
        .find("\"satisfaction_rating\": {")
        .expect("the doc example carries a rating");
    let end = start + text[start..].find('}').expect("the rating object ends") + 1;
    let mistyped = format!(
        "{}\"satisfaction_rating\": \"good\"{}",
        &text[..start],
        &text[end..]
    );
    match decode_json::<TicketCursorPage>(
        "/api/v2/incremental/tickets/cursor.json",
        mistyped.as_bytes(),
    ) {
        Err(ZendeskError::Malformed {
            record_id, detail, ..
        }) => {
            assert_eq!(record_id, Some(35436));
            assert!(
                detail.contains("tickets[0].satisfaction_rating"),
                "{detail}"
            );
            assert!(detail.contains("invalid type: string"), "{detail}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}
