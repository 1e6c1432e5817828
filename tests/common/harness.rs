//! The preamble of most end-to-end tests in one place: a simulator, a temporary data directory
//! and an in-process daemon configured against the simulator, with an integration client.
use std::path::PathBuf;

use tonic::transport::Channel;

use zdsync::clock::SharedClock;
use zdsync::config::Config;
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;
use zdsync::proto::v1::integration_service_client::IntegrationServiceClient;
use zdsync::proto::v1::metrics_service_client::MetricsServiceClient;
use zdsync::simulator::{
    NewTicket, OrganizationInput, Priority, SimulatorConfig, SimulatorControl, SimulatorHandle,
    UserInput,
};

use super::inproc::{configure_request, simulator, wait_for_successful_runs, Daemon, ADMIN_TOKEN};
use super::with_token;

/// A simulator of `tickets`, `organizations` and `users`, every other setting at its default.
pub(crate) fn sized(tickets: u32, organizations: u32, users: u32) -> SimulatorConfig {
    SimulatorConfig {
        tickets,
        organizations,
        users,
        ..SimulatorConfig::default()
    }
}

/// A simulator and a daemon on `dir/data` that talks to it, both in this process.
///
/// Tests usually take it apart with [`Harness::into_parts`].
pub(crate) struct Harness {
    /// The simulator.
    pub sim: SimulatorHandle,
    /// The temporary directory that holds the daemon's data directory (`data`).
    pub dir: tempfile::TempDir,
    /// The daemon.
    pub daemon: Daemon,
    /// An integration client of the daemon.
    pub client: IntegrationServiceClient<Channel>,
}

impl Harness {
    /// Starts a simulator with `config` and a daemon against it (system clock, no extra config).
    pub(crate) async fn start(config: SimulatorConfig) -> Harness {
        Self::start_with(config, "", zdsync::clock::system()).await
    }

    /// Like [`Harness::start`], with `extra` TOML lines for the daemon and its `clock`.
    pub(crate) async fn start_with(
        config: SimulatorConfig,
        extra: &str,
        clock: SharedClock,
    ) -> Harness {
        Self::around(simulator(config).await, extra, clock, |_| {}).await
    }

    /// Like [`Harness::start`], letting the test change the daemon's parsed config first.
    pub(crate) async fn start_adjusted(
        config: SimulatorConfig,
        adjust: impl FnOnce(&mut Config),
    ) -> Harness {
        Self::around(simulator(config).await, "", zdsync::clock::system(), adjust).await
    }

    /// Starts a daemon against `sim`, already running (and perhaps changed by the test), with the
    /// system clock and no extra config.
    pub(crate) async fn with_simulator(sim: SimulatorHandle) -> Harness {
        Self::around(sim, "", zdsync::clock::system(), |_| {}).await
    }

    /// Starts a daemon against `sim`, already running (and perhaps changed by the test), with
    /// `extra` TOML lines, its `clock` and a change to its parsed config.
    pub(crate) async fn around(
        sim: SimulatorHandle,
        extra: &str,
        clock: SharedClock,
        adjust: impl FnOnce(&mut Config),
    ) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let daemon = Daemon::start_adjusted(
            &dir.path().join("data"),
            sim.base_url(),
            extra,
            clock,
            adjust,
        )
        .await;
        let client = daemon.integration().await;
        Harness {
            sim,
            dir,
            daemon,
            client,
        }
    }

    /// The parts, for a test to take apart in one line: `(sim, dir, daemon, client)`. Keep
    /// `dir` bound (`_dir`) for as long as the daemon runs.
    pub(crate) fn into_parts(
        self,
    ) -> (
        SimulatorHandle,
        tempfile::TempDir,
        Daemon,
        IntegrationServiceClient<Channel>,
    ) {
        (self.sim, self.dir, self.daemon, self.client)
    }

    /// The daemon's data directory.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Configures the integration and waits for the first sync; returns the status after it.
    pub(crate) async fn configure_and_sync(&mut self) -> pb::IntegrationStatus {
        configure_and_sync(&mut self.client).await
    }

    /// Stops the daemon, then the simulator.
    pub(crate) async fn stop(self) {
        self.daemon.stop().await;
        self.sim.shutdown().await.expect("simulator stops");
    }
}

/// Configures the integration with `configure_request()` and waits for the first successful
/// run; returns the status after it.
pub(crate) async fn configure_and_sync(
    client: &mut IntegrationServiceClient<Channel>,
) -> pb::IntegrationStatus {
    client
        .configure(with_token(configure_request(), ADMIN_TOKEN))
        .await
        .expect("configure");
    wait_for_successful_runs(client, 1).await
}

/// Creates an organization `name` whose `organization_fields.account_id` is `account_id`, and
/// an end-user `user_name` <`email`> in it; returns (organization id, user id).
pub(crate) fn organization_with_requester(
    control: &SimulatorControl,
    name: &str,
    account_id: &str,
    user_name: &str,
    email: &str,
) -> (u64, u64) {
    let mut fields = serde_json::Map::new();
    fields.insert("account_id".into(), account_id.into());
    let organization = control
        .create_organization(OrganizationInput {
            name: Some(name.into()),
            organization_fields: Some(fields),
            ..Default::default()
        })
        .expect("create organization");
    (
        organization,
        member(control, user_name, email, organization),
    )
}

/// Creates an end-user `name` <`email`> in `organization`; returns the user id.
pub(crate) fn member(
    control: &SimulatorControl,
    name: &str,
    email: &str,
    organization: u64,
) -> u64 {
    control
        .create_user(UserInput {
            name: Some(name.into()),
            email: Some(email.into()),
            organization_id: Some(Some(organization)),
            ..Default::default()
        })
        .expect("create user")
}

/// Creates a ticket `subject` of `requester` with `priority`; returns the ticket id.
pub(crate) fn new_ticket(
    control: &SimulatorControl,
    subject: &str,
    requester: u64,
    priority: Priority,
) -> u64 {
    control
        .create_ticket(NewTicket {
            subject: Some(subject.into()),
            requester_id: Some(requester),
            priority: Some(priority),
            ..Default::default()
        })
        .expect("create ticket")
}

/// `WatchTimelineEvents` from the start of the log (history first), with the admin token.
pub(crate) async fn watch_with_history(
    metrics: &mut MetricsServiceClient<Channel>,
) -> tonic::Streaming<pb::WatchTimelineEventsResponse> {
    metrics
        .watch_timeline_events(with_token(
            pb::WatchTimelineEventsRequest {
                include_history: true,
                ..Default::default()
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("watch timeline events")
        .into_inner()
}

/// `UpsertAccounts` of one account per id in `ids`, each named after its id.
pub(crate) async fn upsert_accounts_named(daemon: &Daemon, ids: &[String]) {
    let accounts = ids
        .iter()
        .map(|id| pb::Account {
            id: id.clone(),
            name: id.clone(),
            ..Default::default()
        })
        .collect();
    upsert_accounts(daemon, accounts).await;
}

/// `UpsertAccounts` of `accounts` with the admin token.
pub(crate) async fn upsert_accounts(daemon: &Daemon, accounts: Vec<pb::Account>) {
    AccountDirectoryServiceClient::new(daemon.channel().await)
        .upsert_accounts(with_token(
            pb::UpsertAccountsRequest { accounts },
            ADMIN_TOKEN,
        ))
        .await
        .expect("upsert accounts");
}
