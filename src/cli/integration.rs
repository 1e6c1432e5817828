//! `zdsync status|configure|sync|pause|resume|delete|oauth`: the integration from the command line.
use std::io::Write;
use std::path::PathBuf;

use serde_json::json;

use crate::proto::v1 as pb;
use crate::proto::v1::integration_service_client::IntegrationServiceClient;

use super::{labelled, CliError, ConnectArgs, Connection, Output};

/// The integration subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum IntegrationCommand {
    /// Show the sync status.
    Status,
    /// Configure the integration ("save & sync"): verifies the credentials and starts the first full sync.
    Configure(ConfigureArgs),
    /// Start a run now (incremental unless --full).
    Sync {
        /// Run the nightly full validation instead of an incremental sync.
        #[arg(long)]
        full: bool,
        /// Follow the run with a progress bar until it ends; fails unless it succeeds.
        #[arg(long)]
        wait: bool,
    },
    /// Pause the schedule; a run in progress stops at its next page boundary.
    Pause,
    /// Resume the schedule.
    Resume,
    /// List the Zendesk organizations that matched no account or more than one.
    Unmatched {
        /// Write CSV (organization_id,organization_name,reason,key_value,candidate_account_ids).
        #[arg(long)]
        csv: bool,
    },
    /// Delete the integration (configuration, credentials, cursors, tickets); metrics and events stay.
    Delete {
        /// The integration's subdomain, to confirm.
        #[arg(long, value_name = "SUBDOMAIN")]
        confirm: String,
    },
}

/// Flags of `zdsync configure`. Secrets are read from files (or stdin with `-`), never from arguments.
#[derive(Debug, clap::Args)]
pub struct ConfigureArgs {
    /// Zendesk subdomain (the instance is https://SUBDOMAIN.zendesk.com).
    #[arg(long)]
    subdomain: String,
    /// OAuth client id (client-credentials grant, recommended).
    #[arg(long, requires = "client_secret_file", conflicts_with_all = ["api_token_email"])]
    client_id: Option<String>,
    /// File holding the OAuth client secret.
    #[arg(long, value_name = "PATH")]
    client_secret_file: Option<PathBuf>,
    /// Agent email of a legacy API token (Zendesk switches API tokens off on 2027-04-30).
    #[arg(long, requires = "api_token_file")]
    api_token_email: Option<String>,
    /// File holding the legacy API token.
    #[arg(long, value_name = "PATH")]
    api_token_file: Option<PathBuf>,
    #[command(flatten)]
    setup: SetupArgs,
}

/// The integration's settings, given where a command may create the integration (`configure`, `login`).
#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// Zendesk side of the match key: id, name, external_id, domain_names or organization_fields.<key>.
    #[arg(long, default_value = "organization_fields.account_id")]
    match_zendesk_field: String,
    /// Account side of the match key: id or attributes.<name>.
    #[arg(long, default_value = "id")]
    match_account_attribute: String,
    /// Metric window in days: 7, 14, 30, 90 or 180.
    #[arg(long, default_value_t = 30)]
    pub(crate) timeframe_days: u32,
    /// Compute satisfaction scores.
    #[arg(long)]
    pub(crate) satisfaction: bool,
}

impl SetupArgs {
    /// The match key as the requests carry it.
    pub(crate) fn match_key(&self) -> pb::MatchKey {
        pb::MatchKey {
            zendesk_field: self.match_zendesk_field.clone(),
            account_attribute: self.match_account_attribute.clone(),
        }
    }
}

/// Reads a secret from a file (or stdin with `-`), without its line ending.
pub(crate) fn read_secret(path: &PathBuf) -> Result<String, CliError> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_line(&mut text)?;
        text
    } else {
        std::fs::read_to_string(path).map_err(|err| CliError::Input {
            path: path.clone(),
            message: err.to_string(),
        })?
    };
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

fn credentials(args: &ConfigureArgs) -> Result<pb::configure_request::Credentials, CliError> {
    match (&args.client_id, &args.client_secret_file, &args.api_token_email, &args.api_token_file) {
        (Some(client_id), Some(secret), None, _) => Ok(pb::configure_request::Credentials::OauthClient(
            pb::OAuthClientCredentials {
                client_id: client_id.clone(),
                client_secret: read_secret(secret)?,
            },
        )),
        (None, _, Some(email), Some(token)) => Ok(pb::configure_request::Credentials::ApiToken(pb::ApiTokenCredentials {
            email: email.clone(),
            token: read_secret(token)?,
        })),
        _ => Err(CliError::Input {
            path: PathBuf::from("-"),
            message: "give --client-id with --client-secret-file, or --api-token-email with --api-token-file".into(),
        }),
    }
}

fn timestamp(value: &Option<prost_types::Timestamp>) -> String {
    value
        .as_ref()
        .and_then(crate::grpc::convert::timestamp_from_proto)
        .map_or_else(|| "-".into(), |t| t.to_rfc3339())
}

fn state_name(state: i32) -> &'static str {
    pb::SyncState::try_from(state).map_or("UNKNOWN", |s| s.as_str_name())
}

fn print_status(out: &mut impl Write, status: &pb::IntegrationStatus) -> Result<(), CliError> {
    let w = super::progress::STATUS_WIDTH;
    labelled(out, w, "state", state_name(status.state))?;
    labelled(out, w, "subdomain", &status.subdomain)?;
    let last_success = timestamp(&status.last_successful_sync_at);
    labelled(out, w, "last successful sync", last_success)?;
    let next_incremental = timestamp(&status.next_incremental_at);
    labelled(out, w, "next incremental", next_incremental)?;
    let next_full = timestamp(&status.next_full_validation_at);
    labelled(out, w, "next full validation", next_full)?;
    if let Some(run) = &status.current_run {
        let (id, pages, tickets, requests) = (&run.id, run.pages, run.tickets, run.requests);
        let running = format!("{id} ({pages} pages, {tickets} tickets, {requests} requests)");
        labelled(out, w, "running", running)?;
        if let Some(progress) = &run.progress {
            super::progress::print_progress(out, progress)?;
        }
    }
    if let Some(s) = &status.stored {
        let (tickets, orgs, users, ratings) = (s.tickets, s.organizations, s.users, s.ratings);
        let stored =
            format!("{tickets} tickets, {orgs} organizations, {users} users, {ratings} ratings");
        labelled(out, w, "stored", stored)?;
    }
    if let Some(error) = &status.last_error {
        let at = timestamp(&error.at);
        labelled(
            out,
            w,
            "last error",
            format_args!("{} at {at}", error.message),
        )?;
    }
    for warning in &status.warnings {
        labelled(out, w, "warning", warning)?;
    }
    for run in status.history.iter().take(5) {
        let outcome = pb::RunOutcome::try_from(run.outcome).map_or("?", |o| o.as_str_name());
        let started = timestamp(&run.started_at);
        let (id, tickets, requests) = (&run.id, run.tickets, run.requests);
        let history = format!("{id} {started} {outcome} {tickets} tickets, {requests} requests");
        labelled(out, w, "history", history)?;
    }
    Ok(())
}

/// Runs an integration subcommand against the daemon.
pub async fn run(command: IntegrationCommand, connect: &ConnectArgs) -> Result<(), CliError> {
    let (connection, mut client) =
        Connection::client(connect, IntegrationServiceClient::new).await?;
    let mut out = Output::new(connect);
    match command {
        IntegrationCommand::Status => {
            let status = client
                .get_status(connection.request(pb::GetStatusRequest {}))
                .await?
                .into_inner();
            let value = json!({
                "state": state_name(status.state),
                "subdomain": status.subdomain,
                "last_successful_sync_at": timestamp(&status.last_successful_sync_at),
                "next_incremental_at": timestamp(&status.next_incremental_at),
                "current_run": status.current_run.as_ref().map(|r| r.id.clone()),
                "current_run_progress": status
                    .current_run
                    .as_ref()
                    .and_then(|r| r.progress.as_ref())
                    .map(super::progress::progress_json),
                "stored_tickets": status.stored.as_ref().map(|s| s.tickets),
                "last_error": status.last_error.as_ref().map(|e| e.message.clone()),
                "warnings": status.warnings,
            });
            out.print(&value, |out| print_status(out, &status))?;
        }
        IntegrationCommand::Configure(args) => {
            let request = pb::ConfigureRequest {
                subdomain: args.subdomain.clone(),
                credentials: Some(credentials(&args)?),
                match_key: Some(args.setup.match_key()),
                timeframe_days: args.setup.timeframe_days,
                include_satisfaction: args.setup.satisfaction,
            };
            let response = client
                .configure(connection.request(request))
                .await?
                .into_inner();
            let run_id = response.run_id;
            out.print(&json!({ "run_id": run_id }), |out| {
                writeln!(out, "configured; first full sync started as {run_id}")
            })?;
        }
        IntegrationCommand::Sync { full, wait } => {
            let kind = if full {
                pb::SyncKind::FullValidation
            } else {
                pb::SyncKind::Incremental
            };
            let run_id = client
                .force_sync(connection.request(pb::ForceSyncRequest { kind: kind as i32 }))
                .await?
                .into_inner()
                .run_id;
            if wait {
                super::progress::wait_for_run(
                    &mut client,
                    &connection,
                    &run_id,
                    out.json,
                    &mut out,
                )
                .await?;
            } else {
                out.print(&json!({ "run_id": run_id }), |out| {
                    writeln!(out, "started {run_id}")
                })?;
            }
        }
        IntegrationCommand::Pause => {
            let stopping = client
                .pause(connection.request(pb::PauseRequest {}))
                .await?
                .into_inner()
                .stopping_run_id;
            let value = json!({ "stopping_run_id": stopping });
            out.print(&value, |out| {
                if stopping.is_empty() {
                    writeln!(out, "paused")
                } else {
                    writeln!(out, "paused; {stopping} stops at its next page boundary")
                }
            })?;
        }
        IntegrationCommand::Resume => {
            client
                .resume(connection.request(pb::ResumeRequest {}))
                .await?;
            out.print(&json!({ "resumed": true }), |out| writeln!(out, "resumed"))?;
        }
        IntegrationCommand::Unmatched { csv } => {
            let mut stream = client
                .list_unmatched(connection.request(pb::ListUnmatchedRequest::default()))
                .await?
                .into_inner();
            let mut writer = csv.then(|| ::csv::Writer::from_writer(Vec::new()));
            if let Some(writer) = writer.as_mut() {
                writer
                    .write_record([
                        "organization_id",
                        "organization_name",
                        "reason",
                        "key_value",
                        "candidate_account_ids",
                    ])
                    .map_err(|err| std::io::Error::other(err.to_string()))?;
            }
            while let Some(item) = tokio_stream::StreamExt::next(&mut stream).await {
                let item = item?;
                let reason =
                    pb::UnmatchedReason::try_from(item.reason).map_or("?", |r| r.as_str_name());
                let key_value = item.key_value.clone().unwrap_or_default();
                let candidates = item.candidate_account_ids.join(";");
                if let Some(writer) = writer.as_mut() {
                    writer
                        .write_record([
                            item.organization_id.to_string().as_str(),
                            &item.organization_name,
                            reason,
                            &key_value,
                            &candidates,
                        ])
                        .map_err(|err| std::io::Error::other(err.to_string()))?;
                    continue;
                }
                let value = json!({
                    "organization_id": item.organization_id,
                    "organization_name": item.organization_name,
                    "reason": reason,
                    "key_value": item.key_value,
                    "candidate_account_ids": item.candidate_account_ids,
                });
                out.print(&value, |out| {
                    let shown = item
                        .key_value
                        .as_deref()
                        .map_or_else(|| "(no key value)".into(), |v| format!("{v:?}"));
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}\t{}",
                        item.organization_id, item.organization_name, reason, shown, candidates
                    )
                })?;
            }
            if let Some(writer) = writer {
                let bytes = writer
                    .into_inner()
                    .map_err(|err| std::io::Error::other(err.to_string()))?;
                out.write_all(&bytes)?;
            }
        }
        IntegrationCommand::Delete { confirm } => {
            let subdomain = client
                .delete_integration(connection.request(pb::DeleteIntegrationRequest {
                    confirm_subdomain: confirm,
                }))
                .await?
                .into_inner()
                .subdomain;
            out.print(&json!({ "deleted": subdomain }), |out| {
                writeln!(out, "deleted the integration with {subdomain}")
            })?;
        }
    }
    Ok(())
}
