//! `zdsync metrics ACCOUNT`, `zdsync metrics --top N --by METRIC` and `zdsync user-metrics EMAIL`.
use std::io::Write;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};

use crate::proto::v1 as pb;
use crate::proto::v1::metrics_service_client::MetricsServiceClient;

use super::{labelled, CliError, ConnectArgs, Connection, Output};

/// The values `--by` takes: each names a contract sort key (as `MetricSortKey` spells it, without the
/// `METRIC_SORT_KEY_` prefix, in lower case), with its line in `--help`.
#[rustfmt::skip]
const SORT_KEYS: [(pb::MetricSortKey, &str, &str); 10] = {
    use pb::MetricSortKey as K;
    [
        (K::OpenTickets, "open_tickets", "Tickets currently unsolved"),
        (K::TotalTickets, "total_tickets", "Tickets that exist now"),
        (K::TicketsCreated, "tickets_created", "Tickets created in the window"),
        (K::OpenHighUrgentTickets, "open_high_urgent_tickets", "High/urgent tickets currently unsolved"),
        (K::HighUrgentTicketsCreated, "high_urgent_tickets_created", "High/urgent tickets created in the window"),
        (K::SatisfactionScore, "satisfaction_score", "Satisfaction score over the window"),
        (K::SatisfactionScoreHighUrgent, "satisfaction_score_high_urgent", "Satisfaction score of high/urgent tickets"),
        (K::GoodRatings, "good_ratings", "Good ratings in the window"),
        (K::BadRatings, "bad_ratings", "Bad ratings in the window"),
        (K::AccountId, "account_id", "The account id"),
    ]
};

/// Parses `--by` into the contract's sort key.
fn sort_key() -> impl TypedValueParser<Value = pb::MetricSortKey> {
    let values = SORT_KEYS.map(|(_, name, help)| PossibleValue::new(name).help(help));
    PossibleValuesParser::new(values).map(|name| {
        SORT_KEYS
            .iter()
            .find(|(_, known, _)| *known == name)
            .map_or(pb::MetricSortKey::Unspecified, |(key, ..)| *key)
    })
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
        default_value = "open_high_urgent_tickets",
        value_parser = sort_key()
    )]
    by: pb::MetricSortKey,
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

/// The [`Figures`] of an `AccountMetrics` or a `UserMetrics`: the two messages share the fields but no type.
macro_rules! figures {
    ($m:expr) => {
        Figures {
            timeframe_days: $m.timeframe_days,
            open_tickets: $m.open_tickets,
            total_tickets: $m.total_tickets,
            tickets_created: $m.tickets_created,
            open_high_urgent_tickets: $m.open_high_urgent_tickets,
            high_urgent_tickets_created: $m.high_urgent_tickets_created,
            satisfaction_score: $m.satisfaction_score,
            satisfaction_score_high_urgent: $m.satisfaction_score_high_urgent,
            good_ratings: $m.good_ratings,
            bad_ratings: $m.bad_ratings,
        }
    };
}

/// An account's metrics as `--json` prints them.
pub fn account_json(m: &pb::AccountMetrics) -> serde_json::Value {
    with_figures(
        serde_json::json!({
            "account_id": m.account_id,
            "timeframe_days": m.timeframe_days,
            "computed_at": time(m.computed_at.as_ref()),
            "zendesk_organization_ids": m.zendesk_organization_ids,
        }),
        &figures!(m),
    )
}

/// A user's metrics as `--json` prints them.
pub fn user_json(m: &pb::UserMetrics) -> serde_json::Value {
    with_figures(
        serde_json::json!({
            "email": m.email,
            "account_id": m.account_id,
            "zendesk_user_id": m.zendesk_user_id,
            "timeframe_days": m.timeframe_days,
            "computed_at": time(m.computed_at.as_ref()),
        }),
        &figures!(m),
    )
}

/// `head` followed by the figures both kinds of metrics share.
fn with_figures(mut head: serde_json::Value, f: &Figures) -> serde_json::Value {
    let figures = serde_json::json!({
        "open_tickets": f.open_tickets,
        "total_tickets": f.total_tickets,
        "tickets_created": f.tickets_created,
        "open_high_urgent_tickets": f.open_high_urgent_tickets,
        "high_urgent_tickets_created": f.high_urgent_tickets_created,
        "satisfaction_score": f.satisfaction_score,
        "satisfaction_score_high_urgent": f.satisfaction_score_high_urgent,
        "good_ratings": f.good_ratings,
        "bad_ratings": f.bad_ratings,
    });
    if let (Some(head), serde_json::Value::Object(figures)) = (head.as_object_mut(), figures) {
        head.extend(figures);
    }
    head
}

/// The figures both kinds of metrics share.
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
    Ok(labelled(out, 31, label, value)?)
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
    print_figures(out, &figures!(m))
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
pub async fn run(args: MetricsArgs, connect: &ConnectArgs) -> Result<(), CliError> {
    let (connection, mut client) = Connection::client(connect, MetricsServiceClient::new).await?;
    let mut out = Output::new(connect);
    match (args.account, args.top) {
        (Some(account_id), _) => {
            let metrics = client
                .get_account_metrics(
                    connection.request(pb::GetAccountMetricsRequest { account_id }),
                )
                .await?
                .into_inner();
            out.print(&account_json(&metrics), |out| print_account(out, &metrics))?;
        }
        (None, top) => {
            let page = client
                .list_account_metrics(connection.request(pb::ListAccountMetricsRequest {
                    page_size: top.unwrap_or(10),
                    page_token: String::new(),
                    sort_by: args.by as i32,
                    descending: !args.ascending,
                }))
                .await?
                .into_inner();
            if !connect.json {
                writeln!(out, "{TOP_HEADER}")?;
            }
            for metrics in &page.metrics {
                out.print(&account_json(metrics), |out| print_row(out, metrics))?;
            }
        }
    }
    Ok(())
}

/// Runs `zdsync user-metrics`.
pub async fn run_user(args: UserMetricsArgs, connect: &ConnectArgs) -> Result<(), CliError> {
    let (connection, mut client) = Connection::client(connect, MetricsServiceClient::new).await?;
    let metrics = client
        .get_user_metrics(connection.request(pb::GetUserMetricsRequest {
            email: args.email,
            account_id: args.account.unwrap_or_default(),
        }))
        .await?
        .into_inner();
    Output::new(connect).print(&user_json(&metrics), |out| print_user(out, &metrics))
}

fn print_user(out: &mut impl Write, m: &pb::UserMetrics) -> Result<(), CliError> {
    line(out, "user", &m.email)?;
    line(out, "account", &m.account_id)?;
    line(
        out,
        "zendesk user",
        if m.zendesk_user_id == 0 {
            "none matched".to_owned()
        } else {
            m.zendesk_user_id.to_string()
        },
    )?;
    line(out, "computed at", time(m.computed_at.as_ref()))?;
    print_figures(out, &figures!(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_offers_every_sort_key_under_its_contract_name() {
        let keys: Vec<pb::MetricSortKey> = (1..)
            .map_while(|number| pb::MetricSortKey::try_from(number).ok())
            .collect();
        assert_eq!(keys.len(), SORT_KEYS.len());
        for key in keys {
            let name = SORT_KEYS
                .iter()
                .find(|(known, ..)| *known == key)
                .map(|(_, name, _)| *name);
            let contract = key.as_str_name().strip_prefix("METRIC_SORT_KEY_");
            assert_eq!(
                name.map(str::to_ascii_uppercase).as_deref(),
                contract,
                "{key:?}"
            );
        }
    }
}
