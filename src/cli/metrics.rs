//! `zdsync metrics ACCOUNT`, `zdsync metrics --top N --by METRIC` and `zdsync user-metrics EMAIL`.
use std::io::Write;

use crate::proto::v1 as pb;
use crate::proto::v1::metrics_service_client::MetricsServiceClient;

use super::{CliError, ConnectArgs, Connection};

/// The metric `--by` sorts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum SortMetric {
    /// Tickets currently unsolved.
    OpenTickets,
    /// Tickets that exist now.
    TotalTickets,
    /// Tickets created in the window.
    TicketsCreated,
    /// High/urgent tickets currently unsolved.
    OpenHighUrgentTickets,
    /// High/urgent tickets created in the window.
    HighUrgentTicketsCreated,
    /// Satisfaction score over the window.
    SatisfactionScore,
    /// Satisfaction score of high/urgent tickets.
    SatisfactionScoreHighUrgent,
    /// Good ratings in the window.
    GoodRatings,
    /// Bad ratings in the window.
    BadRatings,
    /// The account id.
    AccountId,
}

impl SortMetric {
    fn key(self) -> pb::MetricSortKey {
        match self {
            SortMetric::OpenTickets => pb::MetricSortKey::OpenTickets,
            SortMetric::TotalTickets => pb::MetricSortKey::TotalTickets,
            SortMetric::TicketsCreated => pb::MetricSortKey::TicketsCreated,
            SortMetric::OpenHighUrgentTickets => pb::MetricSortKey::OpenHighUrgentTickets,
            SortMetric::HighUrgentTicketsCreated => pb::MetricSortKey::HighUrgentTicketsCreated,
            SortMetric::SatisfactionScore => pb::MetricSortKey::SatisfactionScore,
            SortMetric::SatisfactionScoreHighUrgent => {
                pb::MetricSortKey::SatisfactionScoreHighUrgent
            }
            SortMetric::GoodRatings => pb::MetricSortKey::GoodRatings,
            SortMetric::BadRatings => pb::MetricSortKey::BadRatings,
            SortMetric::AccountId => pb::MetricSortKey::AccountId,
        }
    }
}

/// Flags of `zdsync metrics`.
#[derive(Debug, clap::Args)]
pub struct MetricsArgs {
    /// The account whose metrics to show.
    #[arg(required_unless_present = "top", conflicts_with = "top")]
    account: Option<String>,
    /// Show the N accounts that rank highest by `--by` instead (lowest with `--ascending`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    top: Option<u32>,
    /// The metric `--top` ranks by.
    #[arg(
        long,
        value_name = "METRIC",
        default_value = "open_high_urgent_tickets"
    )]
    by: SortMetric,
    /// Rank smallest first.
    #[arg(long, requires = "top")]
    ascending: bool,
}

/// Flags of `zdsync user-metrics`.
#[derive(Debug, clap::Args)]
pub struct UserMetricsArgs {
    /// The account user's email.
    email: String,
    /// The user's account, when the email belongs to users of several accounts.
    #[arg(long, value_name = "ID")]
    account: Option<String>,
}

fn time(value: Option<&prost_types::Timestamp>) -> String {
    value
        .and_then(crate::grpc::convert::timestamp_from_proto)
        .map_or_else(|| "-".into(), |t| t.to_rfc3339())
}

fn score(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |s| format!("{s:.1}%"))
}

/// An account's metrics as `--json` prints them.
pub fn account_json(m: &pb::AccountMetrics) -> serde_json::Value {
    serde_json::json!({
        "account_id": m.account_id,
        "timeframe_days": m.timeframe_days,
        "computed_at": time(m.computed_at.as_ref()),
        "zendesk_organization_ids": m.zendesk_organization_ids,
        "open_tickets": m.open_tickets,
        "total_tickets": m.total_tickets,
        "tickets_created": m.tickets_created,
        "open_high_urgent_tickets": m.open_high_urgent_tickets,
        "high_urgent_tickets_created": m.high_urgent_tickets_created,
        "satisfaction_score": m.satisfaction_score,
        "satisfaction_score_high_urgent": m.satisfaction_score_high_urgent,
        "good_ratings": m.good_ratings,
        "bad_ratings": m.bad_ratings,
    })
}

/// A user's metrics as `--json` prints them.
pub fn user_json(m: &pb::UserMetrics) -> serde_json::Value {
    serde_json::json!({
        "email": m.email,
        "account_id": m.account_id,
        "zendesk_user_id": m.zendesk_user_id,
        "timeframe_days": m.timeframe_days,
        "computed_at": time(m.computed_at.as_ref()),
        "open_tickets": m.open_tickets,
        "total_tickets": m.total_tickets,
        "tickets_created": m.tickets_created,
        "open_high_urgent_tickets": m.open_high_urgent_tickets,
        "high_urgent_tickets_created": m.high_urgent_tickets_created,
        "satisfaction_score": m.satisfaction_score,
        "satisfaction_score_high_urgent": m.satisfaction_score_high_urgent,
        "good_ratings": m.good_ratings,
        "bad_ratings": m.bad_ratings,
    })
}

/// The figures both kinds of metrics share, for the human layout.
struct Figures {
    timeframe_days: u32,
    open_tickets: u64,
    total_tickets: u64,
    tickets_created: u64,
    open_high_urgent_tickets: u64,
    high_urgent_tickets_created: u64,
    satisfaction_score: Option<f64>,
    satisfaction_score_high_urgent: Option<f64>,
    good_ratings: u64,
    bad_ratings: u64,
}

/// One `label:  value` line of the human layout.
fn line(out: &mut impl Write, label: &str, value: impl std::fmt::Display) -> Result<(), CliError> {
    writeln!(out, "{:<31}{value}", format!("{label}:"))?;
    Ok(())
}

fn print_figures(out: &mut impl Write, f: &Figures) -> Result<(), CliError> {
    let days = f.timeframe_days;
    line(out, "open tickets", f.open_tickets)?;
    line(out, "total tickets", f.total_tickets)?;
    line(
        out,
        &format!("tickets created ({days}d)"),
        f.tickets_created,
    )?;
    line(out, "open high/urgent tickets", f.open_high_urgent_tickets)?;
    line(
        out,
        &format!("high/urgent created ({days}d)"),
        f.high_urgent_tickets_created,
    )?;
    line(
        out,
        &format!("satisfaction ({days}d)"),
        format!(
            "{} ({} good, {} bad)",
            score(f.satisfaction_score),
            f.good_ratings,
            f.bad_ratings
        ),
    )?;
    line(
        out,
        "satisfaction high/urgent",
        score(f.satisfaction_score_high_urgent),
    )
}

fn print_account(out: &mut impl Write, m: &pb::AccountMetrics) -> Result<(), CliError> {
    line(out, "account", &m.account_id)?;
    let orgs: Vec<String> = m
        .zendesk_organization_ids
        .iter()
        .map(ToString::to_string)
        .collect();
    line(
        out,
        "zendesk organizations",
        if orgs.is_empty() {
            "none matched".to_owned()
        } else {
            orgs.join(", ")
        },
    )?;
    line(out, "computed at", time(m.computed_at.as_ref()))?;
    print_figures(
        out,
        &Figures {
            timeframe_days: m.timeframe_days,
            open_tickets: m.open_tickets,
            total_tickets: m.total_tickets,
            tickets_created: m.tickets_created,
            open_high_urgent_tickets: m.open_high_urgent_tickets,
            high_urgent_tickets_created: m.high_urgent_tickets_created,
            satisfaction_score: m.satisfaction_score,
            satisfaction_score_high_urgent: m.satisfaction_score_high_urgent,
            good_ratings: m.good_ratings,
            bad_ratings: m.bad_ratings,
        },
    )
}

/// The header of the `--top` table.
pub const TOP_HEADER: &str =
    "ACCOUNT                  OPEN  TOTAL  CREATED  OPEN_HU  HU_CREATED  CSAT    CSAT_HU";

fn print_row(out: &mut impl Write, m: &pb::AccountMetrics) -> Result<(), CliError> {
    writeln!(
        out,
        "{:<22} {:>6} {:>6} {:>8} {:>8} {:>11}  {:<7} {}",
        m.account_id,
        m.open_tickets,
        m.total_tickets,
        m.tickets_created,
        m.open_high_urgent_tickets,
        m.high_urgent_tickets_created,
        score(m.satisfaction_score),
        score(m.satisfaction_score_high_urgent)
    )?;
    Ok(())
}

/// Runs `zdsync metrics`.
pub async fn run(args: MetricsArgs, connect: ConnectArgs) -> anyhow::Result<()> {
    run_metrics(args, &connect)
        .await
        .map_err(anyhow::Error::from)
}

async fn run_metrics(args: MetricsArgs, connect: &ConnectArgs) -> Result<(), CliError> {
    let connection = Connection::open(connect).await?;
    let mut client = MetricsServiceClient::new(connection.channel.clone());
    let mut out = std::io::stdout().lock();
    match (args.account, args.top) {
        (Some(account_id), _) => {
            let metrics = client
                .get_account_metrics(
                    connection.request(pb::GetAccountMetricsRequest { account_id }),
                )
                .await?
                .into_inner();
            if connect.json {
                writeln!(out, "{}", account_json(&metrics))?;
            } else {
                print_account(&mut out, &metrics)?;
            }
        }
        (None, top) => {
            let page = client
                .list_account_metrics(connection.request(pb::ListAccountMetricsRequest {
                    page_size: top.unwrap_or(10),
                    page_token: String::new(),
                    sort_by: args.by.key() as i32,
                    descending: !args.ascending,
                }))
                .await?
                .into_inner();
            if !connect.json {
                writeln!(out, "{TOP_HEADER}")?;
            }
            for metrics in &page.metrics {
                if connect.json {
                    writeln!(out, "{}", account_json(metrics))?;
                } else {
                    print_row(&mut out, metrics)?;
                }
            }
        }
    }
    Ok(())
}

/// Runs `zdsync user-metrics`.
pub async fn run_user(args: UserMetricsArgs, connect: ConnectArgs) -> anyhow::Result<()> {
    run_user_metrics(args, &connect)
        .await
        .map_err(anyhow::Error::from)
}

async fn run_user_metrics(args: UserMetricsArgs, connect: &ConnectArgs) -> Result<(), CliError> {
    let connection = Connection::open(connect).await?;
    let mut client = MetricsServiceClient::new(connection.channel.clone());
    let metrics = client
        .get_user_metrics(connection.request(pb::GetUserMetricsRequest {
            email: args.email,
            account_id: args.account.unwrap_or_default(),
        }))
        .await?
        .into_inner();
    let mut out = std::io::stdout().lock();
    if connect.json {
        writeln!(out, "{}", user_json(&metrics))?;
        return Ok(());
    }
    line(&mut out, "user", &metrics.email)?;
    line(&mut out, "account", &metrics.account_id)?;
    line(
        &mut out,
        "zendesk user",
        if metrics.zendesk_user_id == 0 {
            "none matched".to_owned()
        } else {
            metrics.zendesk_user_id.to_string()
        },
    )?;
    line(&mut out, "computed at", time(metrics.computed_at.as_ref()))?;
    print_figures(
        &mut out,
        &Figures {
            timeframe_days: metrics.timeframe_days,
            open_tickets: metrics.open_tickets,
            total_tickets: metrics.total_tickets,
            tickets_created: metrics.tickets_created,
            open_high_urgent_tickets: metrics.open_high_urgent_tickets,
            high_urgent_tickets_created: metrics.high_urgent_tickets_created,
            satisfaction_score: metrics.satisfaction_score,
            satisfaction_score_high_urgent: metrics.satisfaction_score_high_urgent,
            good_ratings: metrics.good_ratings,
            bad_ratings: metrics.bad_ratings,
        },
    )
}
