//! `zdsync demo`: the simulator and the daemon in one process, configured and synced, ready to query.
//!
//! Everything lives in a private temporary directory that is removed on exit, so a newcomer can
//! try every RPC without touching a real Zendesk or a real data directory.
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::codegen::InterceptedService;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};

use crate::config::{Config, ConfigError};
use crate::daemon::DaemonError;
use crate::proto::v1 as pb;
use crate::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;
use crate::proto::v1::integration_service_client::IntegrationServiceClient;
use crate::secrets::{self, SecretError};
use crate::simulator::{self, SimulatorConfig, SimulatorControl, SimulatorError, SimulatorHandle};

/// Tickets the demo's simulator generates.
pub const DEMO_TICKETS: u32 = 3_000;
/// Organizations the demo's simulator generates.
pub const DEMO_ORGANIZATIONS: u32 = 50;
/// End-users the demo's simulator generates.
pub const DEMO_USERS: u32 = 500;
/// Seed of the demo's data set, so every demo shows the same data.
pub const DEMO_SEED: u64 = 42;
/// Zendesk subdomain the demo configures (the simulator ignores it: the base URL points at it).
pub const DEMO_SUBDOMAIN: &str = "demo";
/// Account users taken from each matching organization's end-users.
const USERS_PER_ACCOUNT: usize = 3;
/// The most accounts one `UpsertAccounts` call may carry.
const UPSERT_BATCH: usize = 1_000;
/// How long the first sync may take before the demo gives up.
const FIRST_SYNC_DEADLINE: Duration = Duration::from_secs(300);
/// Time between two `GetStatus` polls while the first sync runs.
const STATUS_POLL: Duration = Duration::from_millis(100);
/// How long the daemon may take to stop after the demo asks it to.
const DAEMON_STOP_DEADLINE: Duration = Duration::from_secs(30);

/// What `zdsync demo` was asked for on the command line.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Address the daemon's gRPC server listens on; port 0 picks a free port.
    pub listen: SocketAddr,
}

/// Why the demo could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The temporary data directory could not be created or removed.
    #[error("temporary data directory: {0}")]
    TempDir(std::io::Error),
    /// The simulator could not start or stop.
    #[error(transparent)]
    Simulator(#[from] SimulatorError),
    /// An address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bound listener's address could not be read.
    #[error("cannot read the gRPC listener's address: {0}")]
    ListenerAddress(std::io::Error),
    /// The daemon configuration the demo builds was refused.
    #[error("daemon configuration: {0}")]
    Config(#[from] ConfigError),
    /// The admin token could not be written or read.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The daemon failed to start or while running.
    #[error("daemon: {0}")]
    Daemon(#[from] DaemonError),
    /// The daemon stopped before the demo asked it to.
    #[error("the daemon stopped unexpectedly")]
    DaemonStopped,
    /// The daemon did not stop in time after the demo asked it to.
    #[error("the daemon did not stop within {0:?}")]
    DaemonStopTimeout(Duration),
    /// A background task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The gRPC connection to the daemon could not be set up.
    #[error("cannot connect to the daemon at {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// What the transport reported.
        source: tonic::transport::Error,
    },
    /// A gRPC call to the daemon failed.
    #[error("{rpc}: {}: {}", .status.code(), .status.message())]
    Rpc {
        /// The RPC that failed.
        rpc: &'static str,
        /// What the daemon answered.
        status: tonic::Status,
    },
    /// A record the simulator rendered did not have the expected shape.
    #[error("simulator {kind} {id}: {message}")]
    SimulatorData {
        /// `organization` or `user`.
        kind: &'static str,
        /// The record id.
        id: u64,
        /// What is wrong with it.
        message: String,
    },
    /// The admin token cannot be sent as gRPC metadata.
    #[error("the admin token holds characters gRPC metadata cannot carry")]
    TokenNotAscii,
    /// The first sync failed.
    #[error("the first sync failed: {0}")]
    FirstSyncFailed(String),
    /// The first sync did not finish in time.
    #[error("the first sync did not finish within {0:?}")]
    FirstSyncTimeout(Duration),
    /// The guide could not be written to stdout.
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
}

/// Runs the demo until `shutdown` completes, then stops the daemon and the simulator and removes the data directory.
pub async fn run(
    options: DemoOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DemoError> {
    // The gRPC address is the one the user chose: a clash is reported before any other work.
    let listener = bind(options.listen).await?;
    let workdir = tempfile::Builder::new()
        .prefix("zdsync-demo-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(DemoError::TempDir)?;
    let result = run_in(workdir.path(), listener, shutdown).await;
    let removed = workdir.close().map_err(DemoError::TempDir);
    result.and(removed)
}

/// The demo with its data directory given; the caller removes the directory.
async fn run_in(
    data_dir: &Path,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DemoError> {
    let sim_listener = bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await?;
    let sim = simulator::start(
        SimulatorConfig {
            seed: DEMO_SEED,
            tickets: DEMO_TICKETS,
            organizations: DEMO_ORGANIZATIONS,
            users: DEMO_USERS,
            ..SimulatorConfig::default()
        },
        sim_listener,
    )
    .await?;
    let result = run_daemon(data_dir, listener, &sim, shutdown).await;
    let stopped = sim.shutdown().await.map_err(DemoError::from);
    result.and(stopped)
}

/// Starts the daemon on `listener` against `sim`, sets it up, prints the guide and waits for `shutdown`.
async fn run_daemon(
    data_dir: &Path,
    listener: TcpListener,
    sim: &SimulatorHandle,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DemoError> {
    let config = daemon_config(data_dir, sim.base_url())?;
    let token_path = crate::daemon::admin_token_path(&config);
    let token = admin_token(data_dir.to_owned()).await?;
    let bound = listener.local_addr().map_err(DemoError::ListenerAddress)?;
    let grpc_addr = connect_addr(bound);

    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let mut daemon: JoinHandle<Result<(), DaemonError>> =
        tokio::spawn(crate::daemon::run(config, listener, async move {
            let _ = stop_rx.await;
        }));

    let session = async {
        tokio::pin!(shutdown);
        let (status, example) = tokio::select! {
            status = set_up(grpc_addr, &token, sim.control()) => status?,
            () = &mut shutdown => return Ok(()),
        };
        print_guide(&Guide {
            grpc_addr,
            bound,
            token_path: &token_path,
            data_dir,
            simulator_url: sim.base_url(),
            status: &status,
            example: &example,
        })
        .map_err(DemoError::Stdout)?;
        shutdown.await;
        tracing::info!("stopping the demo");
        Ok(())
    };
    let (result, daemon_done) = tokio::select! {
        result = session => (result, None),
        ended = &mut daemon => (Err(DemoError::DaemonStopped), Some(ended)),
    };
    let _ = stop_tx.send(());
    let ended = match daemon_done {
        Some(ended) => ended,
        None => tokio::time::timeout(DAEMON_STOP_DEADLINE, daemon)
            .await
            .map_err(|_| DemoError::DaemonStopTimeout(DAEMON_STOP_DEADLINE))?,
    };
    // A daemon error explains more than "stopped unexpectedly", so it wins.
    ended??;
    result
}

/// The daemon's configuration: the temporary data directory, the simulator as Zendesk, no request budget.
fn daemon_config(data_dir: &Path, base_url: &str) -> Result<Config, DemoError> {
    let toml = format!(
        "data_dir = {data_dir:?}\n[zendesk]\nbase_url = {base_url:?}\nrequests_per_minute = 0\ntimeout = \"10s\"\n",
        data_dir = data_dir.display().to_string(),
    );
    // No environment: a `ZDSYNC_*` variable meant for a real daemon must not leak into the demo.
    let no_env: [(&str, &str); 0] = [];
    Ok(Config::from_toml(&toml, &no_env)?)
}

/// Generates the admin token in the data directory (the daemon then uses it) and returns it.
async fn admin_token(data_dir: PathBuf) -> Result<String, DemoError> {
    let token = tokio::task::spawn_blocking(move || -> Result<String, SecretError> {
        secrets::ensure_private_dir(&data_dir)?;
        let (token, _, _) = secrets::load_or_create_admin_token(&data_dir)?;
        Ok(token)
    })
    .await??;
    Ok(token)
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, DemoError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| DemoError::Listen { addr, source })
}

/// The address a local client dials: a wildcard bind is reached through loopback.
fn connect_addr(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), bound.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), bound.port())
        }
        _ => bound,
    }
}

/// Loads the account directory, configures the integration and waits for the first sync.
async fn set_up(
    grpc_addr: SocketAddr,
    token: &str,
    control: &SimulatorControl,
) -> Result<(pb::IntegrationStatus, pb::Account), DemoError> {
    let connect_error = |source| DemoError::Connect {
        addr: grpc_addr,
        source,
    };
    let channel = Endpoint::try_from(format!("http://{grpc_addr}"))
        .map_err(connect_error)?
        .connect()
        .await
        .map_err(connect_error)?;
    let authorize = BearerAuth::new(token)?;

    let accounts = demo_accounts(control)?;
    let mut directory =
        AccountDirectoryServiceClient::with_interceptor(channel.clone(), authorize.clone());
    for batch in accounts.chunks(UPSERT_BATCH) {
        directory
            .upsert_accounts(pb::UpsertAccountsRequest {
                accounts: batch.to_vec(),
            })
            .await
            .map_err(|status| DemoError::Rpc {
                rpc: "UpsertAccounts",
                status,
            })?;
    }
    tracing::info!(accounts = accounts.len(), "demo account directory loaded");

    let mut integration = IntegrationServiceClient::with_interceptor(channel, authorize);
    integration
        .configure(configure_request())
        .await
        .map_err(|status| DemoError::Rpc {
            rpc: "Configure",
            status,
        })?;
    let status = wait_for_first_sync(&mut integration).await?;
    // The guide's metrics examples use the account with the most users, so they show real figures.
    let example = accounts
        .iter()
        .max_by_key(|account| account.users.len())
        .cloned()
        .unwrap_or_default();
    Ok((status, example))
}

/// Adds the admin token to every call.
#[derive(Clone)]
struct BearerAuth(MetadataValue<Ascii>);

impl BearerAuth {
    fn new(token: &str) -> Result<Self, DemoError> {
        format!("Bearer {token}")
            .parse()
            .map(Self)
            .map_err(|_| DemoError::TokenNotAscii)
    }
}

impl Interceptor for BearerAuth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// The integration the demo configures: the simulator's OAuth client, matched on `organization_fields.account_id`.
fn configure_request() -> pb::ConfigureRequest {
    pb::ConfigureRequest {
        subdomain: DEMO_SUBDOMAIN.into(),
        credentials: Some(pb::configure_request::Credentials::OauthClient(
            pb::OAuthClientCredentials {
                client_id: simulator::DEFAULT_CLIENT_ID.into(),
                client_secret: simulator::DEFAULT_CLIENT_SECRET.into(),
            },
        )),
        match_key: Some(pb::MatchKey {
            zendesk_field: "organization_fields.account_id".into(),
            account_attribute: "id".into(),
        }),
        timeframe_days: 30,
        include_satisfaction: true,
    }
}

/// Polls `GetStatus` until a run has succeeded and none is running.
async fn wait_for_first_sync(
    client: &mut IntegrationServiceClient<InterceptedService<Channel, BearerAuth>>,
) -> Result<pb::IntegrationStatus, DemoError> {
    let deadline = tokio::time::Instant::now() + FIRST_SYNC_DEADLINE;
    loop {
        let status = client
            .get_status(pb::GetStatusRequest {})
            .await
            .map_err(|status| DemoError::Rpc {
                rpc: "GetStatus",
                status,
            })?
            .into_inner();
        let succeeded = status
            .history
            .iter()
            .any(|run| run.outcome == pb::RunOutcome::Succeeded as i32);
        if succeeded && status.current_run.is_none() {
            return Ok(status);
        }
        if status.state == pb::SyncState::Failed as i32 {
            let message = status
                .last_error
                .map_or_else(|| "no error message".into(), |error| error.message);
            return Err(DemoError::FirstSyncFailed(message));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DemoError::FirstSyncTimeout(FIRST_SYNC_DEADLINE));
        }
        tokio::time::sleep(STATUS_POLL).await;
    }
}

/// The parts of a simulator organization the account directory is built from.
#[derive(Debug, Deserialize)]
struct SimOrganization {
    name: String,
    #[serde(default)]
    organization_fields: SimOrganizationFields,
}

/// The custom organization fields the simulator generates.
#[derive(Debug, Default, Deserialize)]
struct SimOrganizationFields {
    account_id: Option<String>,
    tier: Option<String>,
}

/// The parts of a simulator user the account directory is built from.
#[derive(Debug, Deserialize)]
struct SimUser {
    name: String,
    email: String,
    organization_id: Option<u64>,
    role: String,
}

/// First id of each simulator record kind (see SIMULATOR_API.md: ids are dense from there).
const SIM_FIRST_USER_ID: u64 = 10_000_001;
const SIM_FIRST_ORGANIZATION_ID: u64 = 20_000_001;

fn decode<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    id: u64,
    value: Option<serde_json::Value>,
) -> Result<T, DemoError> {
    let value = value.ok_or_else(|| DemoError::SimulatorData {
        kind,
        id,
        message: "missing".into(),
    })?;
    serde_json::from_value(value).map_err(|err| DemoError::SimulatorData {
        kind,
        id,
        message: err.to_string(),
    })
}

/// One account per distinct `organization_fields.account_id`, owned by an agent, with a few of its organizations' end-users.
fn demo_accounts(control: &SimulatorControl) -> Result<Vec<pb::Account>, DemoError> {
    let stats = control.stats();
    let mut organizations = Vec::with_capacity(stats.organizations);
    for id in (SIM_FIRST_ORGANIZATION_ID..).take(stats.organizations) {
        let organization: SimOrganization =
            decode("organization", id, control.organization_json(id))?;
        organizations.push((id, organization));
    }
    let mut users = Vec::with_capacity(stats.users);
    for id in (SIM_FIRST_USER_ID..).take(stats.users) {
        users.push(decode::<SimUser>("user", id, control.user_json(id))?);
    }
    Ok(build_accounts(&organizations, &users))
}

/// Builds the accounts from simulator records; pure, so the rules are easy to read.
fn build_accounts(organizations: &[(u64, SimOrganization)], users: &[SimUser]) -> Vec<pb::Account> {
    let owners: Vec<&str> = {
        let agents: Vec<&str> = users
            .iter()
            .filter(|user| user.role == "agent")
            .map(|user| user.email.as_str())
            .collect();
        if agents.is_empty() {
            // A data set without agents still has its admin.
            users
                .iter()
                .filter(|user| user.role == "admin")
                .map(|user| user.email.as_str())
                .collect()
        } else {
            agents
        }
    };
    let mut end_users: BTreeMap<u64, Vec<&SimUser>> = BTreeMap::new();
    for user in users.iter().filter(|user| user.role == "end-user") {
        if let Some(organization_id) = user.organization_id {
            end_users.entry(organization_id).or_default().push(user);
        }
    }

    // Organizations sharing an account id (the simulator generates a few) form one account.
    let mut accounts: BTreeMap<&str, pb::Account> = BTreeMap::new();
    for (id, organization) in organizations {
        let Some(account_id) = organization.organization_fields.account_id.as_deref() else {
            continue;
        };
        let index = accounts.len();
        let account = accounts.entry(account_id).or_insert_with(|| {
            let mut attributes = std::collections::HashMap::new();
            attributes.insert("zendesk_org".to_owned(), text(&organization.name));
            if let Some(tier) = &organization.organization_fields.tier {
                attributes.insert("tier".to_owned(), text(tier));
            }
            pb::Account {
                id: account_id.to_owned(),
                name: organization.name.clone(),
                owner: owners.get(index % owners.len().max(1)).map_or_else(
                    || simulator::DEFAULT_API_TOKEN_EMAIL.to_owned(),
                    |owner| (*owner).to_owned(),
                ),
                attributes,
                users: Vec::new(),
            }
        });
        for user in end_users.get(id).into_iter().flatten() {
            if account.users.len() >= USERS_PER_ACCOUNT {
                break;
            }
            account.users.push(pb::User {
                email: user.email.clone(),
                name: user.name.clone(),
            });
        }
    }
    accounts.into_values().collect()
}

fn text(value: &str) -> pb::AttributeValue {
    pb::AttributeValue {
        value: Some(pb::attribute_value::Value::Text(value.to_owned())),
    }
}

/// What the guide shows.
struct Guide<'a> {
    grpc_addr: SocketAddr,
    bound: SocketAddr,
    token_path: &'a Path,
    data_dir: &'a Path,
    simulator_url: &'a str,
    status: &'a pb::IntegrationStatus,
    example: &'a pb::Account,
}

/// Prints the ready line, then how to use the demo; flushed so a script sees it at once.
fn print_guide(guide: &Guide<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(render_guide(guide).as_bytes())?;
    out.flush()
}

fn render_guide(guide: &Guide<'_>) -> String {
    let addr = guide.grpc_addr;
    let token = guide.token_path.display();
    let stored = guide.status.stored.unwrap_or_default();
    let auth = r#"-H "authorization: Bearer $TOKEN""#;
    let listening = if guide.bound == guide.grpc_addr {
        String::new()
    } else {
        format!(" (listening on {})", guide.bound)
    };
    format!(
        "zdsync demo ready: grpc={addr} admin_token_file={token}

  zdsync gRPC (plaintext):  {addr}{listening}
  Zendesk simulator (HTTP): {sim}
  admin token file:         {token}
  data directory:           {data} (removed on exit)
  first sync done:          {tickets} tickets, {organizations} organizations, {users} users stored

Try (copy and paste):
  TOKEN=$(cat {token})
  grpcurl -plaintext {addr} list
  grpcurl -plaintext {auth} {addr} zdsync.v1.IntegrationService/GetStatus
  grpcurl -plaintext {auth} -d '{{\"page_size\":5}}' {addr} zdsync.v1.AccountDirectoryService/ListAccounts
  grpcurl -plaintext {auth} -d '{{\"account_id\":\"{account}\"}}' {addr} zdsync.v1.MetricsService/GetAccountMetrics
  grpcurl -plaintext {auth} -d '{{\"sort_by\":\"METRIC_SORT_KEY_OPEN_HIGH_URGENT_TICKETS\",\"descending\":true,\"page_size\":5}}' {addr} zdsync.v1.MetricsService/ListAccountMetrics
  grpcurl -plaintext {auth} -d '{{\"owner\":\"{owner}\",\"page_size\":5}}' {addr} zdsync.v1.MetricsService/ListTimelineEvents
  grpcurl -plaintext {auth} {addr} zdsync.v1.IntegrationService/ForceSync
  grpcurl -plaintext {auth} {addr} zdsync.v1.IntegrationService/Pause
  grpcurl -plaintext {auth} {addr} zdsync.v1.IntegrationService/Resume

Or with the CLI:
  {exe} status {connect}
  {exe} metrics --top 5 --by open_high_urgent_tickets {connect}
  {exe} metrics {account} {connect}
  {exe} events --owner {owner} --limit 5 {connect}
  {exe} sync --wait {connect}

Change Zendesk data through the simulator, then ForceSync:
  curl -s {sim}/_sim/stats
  curl -s -X PATCH {sim}/_sim/tickets/17 -H 'content-type: application/json' -d '{{\"status\":\"solved\"}}'

Ctrl-C stops the daemon and the simulator and removes the data directory.
",
        sim = guide.simulator_url,
        data = guide.data_dir.display(),
        tickets = stored.tickets,
        organizations = stored.organizations,
        users = stored.users,
        account = guide.example.id,
        owner = guide.example.owner,
        // The running binary, so the lines work from `cargo run` too (where no zdsync is on PATH).
        exe = std::env::current_exe().map_or_else(|_| "zdsync".into(), |path| path.display().to_string()),
        connect = format_args!("--addr {addr} --token-file {token}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn organization(name: &str, account_id: Option<&str>) -> SimOrganization {
        SimOrganization {
            name: name.into(),
            organization_fields: SimOrganizationFields {
                account_id: account_id.map(Into::into),
                tier: Some("gold".into()),
            },
        }
    }

    fn user(email: &str, role: &str, organization_id: Option<u64>) -> SimUser {
        SimUser {
            name: email.split('@').next().unwrap_or_default().into(),
            email: email.into(),
            organization_id,
            role: role.into(),
        }
    }

    #[test]
    fn accounts_follow_account_ids_with_agent_owners_and_a_few_end_users() {
        let organizations = vec![
            (1, organization("Acme", Some("acct-0001"))),
            (2, organization("Acme West", Some("acct-0001"))),
            (3, organization("Nobody", None)),
            (4, organization("Globex", Some("acct-0002"))),
        ];
        let users = vec![
            user("admin@example.com", "admin", None),
            user("agent1@support.example.com", "agent", None),
            user("agent2@support.example.com", "agent", None),
            user("a@acme.example", "end-user", Some(1)),
            user("b@acme.example", "end-user", Some(1)),
            user("c@acme.example", "end-user", Some(2)),
            user("d@acme.example", "end-user", Some(2)),
            user("n@nobody.example", "end-user", Some(3)),
            user("g@globex.example", "end-user", Some(4)),
        ];
        let accounts = build_accounts(&organizations, &users);
        let ids: Vec<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["acct-0001", "acct-0002"]);
        let acme = &accounts[0];
        assert_eq!(acme.name, "Acme");
        assert_eq!(acme.owner, "agent1@support.example.com");
        let emails: Vec<&str> = acme.users.iter().map(|u| u.email.as_str()).collect();
        assert_eq!(
            emails,
            ["a@acme.example", "b@acme.example", "c@acme.example"]
        );
        assert_eq!(accounts[1].owner, "agent2@support.example.com");
        assert_eq!(accounts[1].users[0].email, "g@globex.example");
        assert_eq!(acme.attributes.get("tier"), Some(&text("gold")));
    }

    #[test]
    fn wildcard_binds_are_dialled_through_loopback() {
        let any: SocketAddr = "0.0.0.0:5".parse().expect("address");
        assert_eq!(connect_addr(any).to_string(), "127.0.0.1:5");
        let local: SocketAddr = "127.0.0.1:6".parse().expect("address");
        assert_eq!(connect_addr(local), local);
    }
}
