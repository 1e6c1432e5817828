//! `zdsync events` (a page of the timeline as a table, CSV or JSON) and `zdsync watch` (follow it live).
use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use crate::proto::v1 as pb;
use crate::proto::v1::list_timeline_events_request::Scope as ListScope;
use crate::proto::v1::metrics_service_client::MetricsServiceClient;
use crate::proto::v1::watch_timeline_events_request::Scope as WatchScope;

use super::{CliError, ConnectArgs, Connection};

/// Whose events: one account, one owner's portfolio, or every account.
#[derive(Debug, Clone, clap::Args)]
pub struct Scope {
    /// Only this account's events.
    #[arg(long, value_name = "ID", conflicts_with = "owner")]
    account: Option<String>,
    /// Only events of the accounts this email owns (the portfolio feed).
    #[arg(long, value_name = "EMAIL")]
    owner: Option<String>,
    /// Only these kinds (repeat or separate by commas): HIGH_URGENT_TICKET_CREATED, HIGH_URGENT_TICKET_SOLVED,
    /// HIGH_URGENT_TICKET_REOPENED, BAD_SATISFACTION_RATING, or created, solved, reopened, bad_rating.
    #[arg(long = "kind", value_name = "K", value_delimiter = ',', value_parser = parse_kind)]
    kinds: Vec<pb::TimelineEventKind>,
}

/// Flags of `zdsync events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    #[command(flatten)]
    scope: Scope,
    /// Only events that occurred at or after T: RFC 3339, a date (YYYY-MM-DD, UTC) or an age such as 7d or 12h.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// Only events that occurred before T (same forms as --since).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
    /// At most this many events, newest first; 0 for all.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Write CSV (one row per event, with a header) instead of the table (or JSON).
    #[arg(long)]
    csv: bool,
}

/// Flags of `zdsync watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    scope: Scope,
    /// Resume strictly after this cursor (printed with every event); without it only new events are shown.
    #[arg(long, value_name = "CURSOR")]
    from: Option<String>,
    /// Without --from: replay every stored event first.
    #[arg(long, conflicts_with = "from")]
    history: bool,
}

/// Parses an event kind: the contract's name (any case) or a short alias.
pub fn parse_kind(text: &str) -> Result<pb::TimelineEventKind, String> {
    let upper = text.trim().to_ascii_uppercase().replace('-', "_");
    let kind = match upper.as_str() {
        "CREATED" => Some(pb::TimelineEventKind::HighUrgentTicketCreated),
        "SOLVED" => Some(pb::TimelineEventKind::HighUrgentTicketSolved),
        "REOPENED" => Some(pb::TimelineEventKind::HighUrgentTicketReopened),
        "BAD_RATING" => Some(pb::TimelineEventKind::BadSatisfactionRating),
        other => pb::TimelineEventKind::from_str_name(other)
            .filter(|kind| *kind != pb::TimelineEventKind::Unspecified),
    };
    kind.ok_or_else(|| {
        format!("unknown event kind {text:?}: expected HIGH_URGENT_TICKET_CREATED, HIGH_URGENT_TICKET_SOLVED, HIGH_URGENT_TICKET_REOPENED, BAD_SATISFACTION_RATING (or created, solved, reopened, bad_rating)")
    })
}

/// Parses a point in time: RFC 3339, a UTC date, or an age before now (`7d`, `12h`, `30m`).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    let age = humantime::parse_duration(text).map_err(|_| {
        format!("{text:?} is not a time: give RFC 3339 (2026-01-31T09:00:00Z), a date (2026-01-31) or an age (7d, 12h)")
    })?;
    let age = chrono::TimeDelta::from_std(age).map_err(|_| format!("{text:?} is too long ago"))?;
    Utc::now()
        .checked_sub_signed(age)
        .ok_or_else(|| format!("{text:?} is too long ago"))
}

fn time(value: Option<&prost_types::Timestamp>) -> String {
    value
        .and_then(crate::grpc::convert::timestamp_from_proto)
        .map_or_else(String::new, |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
}

fn kind_name(kind: i32) -> &'static str {
    pb::TimelineEventKind::try_from(kind).map_or("UNKNOWN", |k| k.as_str_name())
}

/// An event as `--json` prints it.
pub fn event_json(event: &pb::TimelineEvent) -> serde_json::Value {
    let ticket = event.ticket.clone().unwrap_or_default();
    let reporter = ticket.reporter.clone().unwrap_or_default();
    serde_json::json!({
        "event_id": event.event_id,
        "kind": kind_name(event.kind),
        "account_id": event.account_id,
        "user_email": event.user_email,
        "occurred_at": time(event.occurred_at.as_ref()),
        "detected_at": time(event.detected_at.as_ref()),
        "backfill": event.backfill,
        "escalated": event.escalated,
        "ticket": {
            "id": ticket.id,
            "subject": ticket.subject,
            "priority": ticket.priority,
            "status": ticket.status,
            "reporter": {"name": reporter.name, "email": reporter.email},
            "reported_at": time(ticket.reported_at.as_ref()),
            "assigned_group": ticket.assigned_group,
            "assignee": ticket.assignee,
        },
        "satisfaction": event.satisfaction.as_ref().map(|s| serde_json::json!({"score": s.score, "comment": s.comment})),
    })
}

/// The CSV header of `zdsync events --csv`.
pub const CSV_HEADER: [&str; 18] = [
    "event_id",
    "kind",
    "account_id",
    "user_email",
    "occurred_at",
    "detected_at",
    "backfill",
    "escalated",
    "ticket_id",
    "subject",
    "priority",
    "status",
    "reporter_name",
    "reporter_email",
    "reported_at",
    "assigned_group",
    "assignee",
    "satisfaction",
];

fn csv_row(event: &pb::TimelineEvent) -> Vec<String> {
    let ticket = event.ticket.clone().unwrap_or_default();
    let reporter = ticket.reporter.clone().unwrap_or_default();
    vec![
        event.event_id.clone(),
        kind_name(event.kind).to_owned(),
        event.account_id.clone(),
        event.user_email.clone(),
        time(event.occurred_at.as_ref()),
        time(event.detected_at.as_ref()),
        event.backfill.to_string(),
        event.escalated.to_string(),
        ticket.id.to_string(),
        ticket.subject,
        ticket.priority,
        ticket.status,
        reporter.name,
        reporter.email,
        time(ticket.reported_at.as_ref()),
        ticket.assigned_group,
        ticket.assignee,
        event
            .satisfaction
            .as_ref()
            .map(|s| {
                if s.comment.is_empty() {
                    s.score.clone()
                } else {
                    format!("{}: {}", s.score, s.comment)
                }
            })
            .unwrap_or_default(),
    ]
}

/// The header of the human table.
pub const TABLE_HEADER: &str = "OCCURRED_AT           KIND                         ACCOUNT          TICKET    PRIORITY  SUBJECT";

/// One event as a line of the human table.
pub fn table_line(event: &pb::TimelineEvent) -> String {
    let ticket = event.ticket.clone().unwrap_or_default();
    let mut flags = Vec::new();
    if event.backfill {
        flags.push("backfill");
    }
    if event.escalated {
        flags.push("escalated");
    }
    let flags = if flags.is_empty() {
        String::new()
    } else {
        format!(" [{}]", flags.join(", "))
    };
    format!(
        "{:<21} {:<28} {:<16} #{:<8} {:<9} {}{flags}",
        time(event.occurred_at.as_ref()),
        kind_name(event.kind),
        event.account_id,
        ticket.id,
        ticket.priority,
        ticket.subject
    )
}

/// The request's scope: the list and watch requests each have their own type of it, with the same two cases.
fn scope<T>(
    scope: &Scope,
    account: impl FnOnce(String) -> T,
    owner: impl FnOnce(String) -> T,
) -> Option<T> {
    match (&scope.account, &scope.owner) {
        (Some(id), _) => Some(account(id.clone())),
        (None, Some(email)) => Some(owner(email.clone())),
        (None, None) => None,
    }
}

fn kinds(scope: &Scope) -> Vec<i32> {
    scope.kinds.iter().map(|kind| *kind as i32).collect()
}

/// Runs `zdsync events`.
pub async fn run(args: EventsArgs, connect: &ConnectArgs) -> Result<(), CliError> {
    let (connection, mut client) = Connection::client(connect, MetricsServiceClient::new).await?;
    let mut out = std::io::stdout().lock();
    let mut csv = args.csv.then(|| ::csv::Writer::from_writer(Vec::new()));
    let csv_error = |err: ::csv::Error| std::io::Error::other(err.to_string());
    if let Some(writer) = csv.as_mut() {
        writer.write_record(CSV_HEADER).map_err(csv_error)?;
    } else if !connect.json {
        writeln!(out, "{TABLE_HEADER}")?;
    }
    let mut printed = 0usize;
    let mut page_token = String::new();
    loop {
        let remaining = if args.limit == 0 {
            1000
        } else {
            args.limit.saturating_sub(printed).min(1000)
        };
        if remaining == 0 {
            break;
        }
        let page = client
            .list_timeline_events(connection.request(pb::ListTimelineEventsRequest {
                scope: scope(&args.scope, ListScope::AccountId, ListScope::Owner),
                since: args.since.map(crate::grpc::convert::timestamp_to_proto),
                until: args.until.map(crate::grpc::convert::timestamp_to_proto),
                kinds: kinds(&args.scope),
                page_size: u32::try_from(remaining).unwrap_or(1000),
                page_token,
            }))
            .await?
            .into_inner();
        for event in &page.events {
            if let Some(writer) = csv.as_mut() {
                writer.write_record(csv_row(event)).map_err(csv_error)?;
            } else if connect.json {
                writeln!(out, "{}", event_json(event))?;
            } else {
                writeln!(out, "{}", table_line(event))?;
            }
            printed += 1;
        }
        if page.next_page_token.is_empty() || page.events.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if let Some(writer) = csv {
        let bytes = writer
            .into_inner()
            .map_err(|err| std::io::Error::other(err.to_string()))?;
        out.write_all(&bytes)?;
    }
    Ok(())
}

/// First and longest pause before reconnecting.
const RECONNECT_FIRST: Duration = Duration::from_millis(250);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// Whether a failed watch is worth resuming: the connection or the daemon went away, or the daemon cut a
/// consumer that fell behind. Bad arguments and refused tokens are not.
fn resumable(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::Unknown
            | tonic::Code::Internal
            | tonic::Code::Cancelled
            | tonic::Code::ResourceExhausted
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Aborted
    )
}

/// Seconds of quiet after which the daemon sends `watch` a heartbeat with its resume point.
const WATCH_HEARTBEAT_SECONDS: u32 = 30;

/// Runs `zdsync watch`.
pub async fn watch(args: WatchArgs, connect: &ConnectArgs) -> Result<(), CliError> {
    let (connection, mut client) = Connection::client(connect, MetricsServiceClient::new).await?;
    let mut cursor = args.from.clone().unwrap_or_default();
    let mut include_history = args.history;
    let mut pause = RECONNECT_FIRST;
    loop {
        let request = pb::WatchTimelineEventsRequest {
            after_cursor: cursor.clone(),
            include_history,
            kinds: kinds(&args.scope),
            scope: scope(&args.scope, WatchScope::AccountId, WatchScope::Owner),
            heartbeat_seconds: WATCH_HEARTBEAT_SECONDS,
        };
        let failure = match client
            .watch_timeline_events(connection.request(request))
            .await
        {
            Err(status) => status,
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(item)) => {
                            pause = RECONNECT_FIRST;
                            let Some(event) = item.event else {
                                // A heartbeat: the resume point even before any event arrives.
                                cursor = item.cursor;
                                include_history = false;
                                continue;
                            };
                            let mut out = std::io::stdout().lock();
                            if connect.json {
                                writeln!(
                                    out,
                                    "{}",
                                    serde_json::json!({"cursor": item.cursor, "event": event_json(&event)})
                                )?;
                            } else {
                                writeln!(out, "{}  cursor={}", table_line(&event), item.cursor)?;
                            }
                            out.flush()?;
                            cursor = item.cursor;
                            // From here on, the cursor says where to resume.
                            include_history = false;
                        }
                        Ok(None) => {
                            break tonic::Status::unavailable("the daemon ended the stream")
                        }
                        Err(status) => break status,
                    }
                }
            }
        };
        if !resumable(&failure) {
            return Err(CliError::Rpc(failure));
        }
        let from = if cursor.is_empty() {
            "the start (no event seen yet)".to_owned()
        } else {
            format!("cursor {cursor}")
        };
        eprintln!(
            "zdsync watch: {}: {}; resuming after {from} in {} ms",
            failure.code(),
            failure.message(),
            pause.as_millis()
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RECONNECT_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_take_contract_names_and_aliases() {
        assert_eq!(
            parse_kind("high_urgent_ticket_solved"),
            Ok(pb::TimelineEventKind::HighUrgentTicketSolved)
        );
        assert_eq!(
            parse_kind("bad-rating"),
            Ok(pb::TimelineEventKind::BadSatisfactionRating)
        );
        assert!(parse_kind("TIMELINE_EVENT_KIND_UNSPECIFIED").is_err());
        assert!(parse_kind("urgent").is_err());
    }

    #[test]
    fn times_take_rfc3339_dates_and_ages() {
        assert_eq!(
            parse_time("2026-01-31T09:00:00Z").map(|t| t.timestamp()),
            Ok(1_769_850_000)
        );
        assert_eq!(
            parse_time("2026-01-31").map(|t| t.timestamp()),
            Ok(1_769_817_600)
        );
        let week = parse_time("7d").expect("an age");
        let expected = Utc::now() - chrono::TimeDelta::days(7);
        assert!((week - expected).num_seconds().abs() < 5);
        assert!(parse_time("yesterday").is_err());
    }
}
