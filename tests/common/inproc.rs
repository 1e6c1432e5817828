//! In-process harness: the simulator and the daemon in the test's runtime, with an injectable clock.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use zdsync::clock::SharedClock;
use zdsync::config::{Config, ProcessEnv};
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::integration_service_client::IntegrationServiceClient;
use zdsync::simulator::{self, SimulatorConfig, SimulatorHandle};

#[allow(unused_imports)] // each test binary uses a different part
pub(crate) use super::harness::{
    configure_and_sync, member, new_ticket, organization_with_requester, sized, upsert_accounts,
    upsert_accounts_named, watch_with_history, Harness,
};

use super::{with_token, DEADLINE};

/// The admin token the in-process daemons use.
pub(crate) const ADMIN_TOKEN: &str = "in-process-admin-token-0123456789";

/// Starts a simulator on an ephemeral loopback port.
pub(crate) async fn simulator(config: SimulatorConfig) -> SimulatorHandle {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind simulator");
    simulator::start(config, listener)
        .await
        .expect("start simulator")
}

/// A daemon running in this process.
pub(crate) struct Daemon {
    /// Its gRPC address.
    pub addr: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Daemon {
    /// Starts a daemon on `data_dir` against the simulator at `base_url`, with `extra` TOML lines.
    pub(crate) async fn start(
        data_dir: &Path,
        base_url: &str,
        extra: &str,
        clock: SharedClock,
    ) -> Daemon {
        Self::start_adjusted(data_dir, base_url, extra, clock, |_| {}).await
    }

    /// A channel to the daemon (retried until it accepts).
    pub(crate) async fn channel(&self) -> Channel {
        super::eventually("the daemon to accept connections", || async {
            Channel::from_shared(format!("http://{}", self.addr))
                .expect("uri")
                .connect()
                .await
                .ok()
        })
        .await
    }

    /// An integration client.
    pub(crate) async fn integration(&self) -> IntegrationServiceClient<Channel> {
        IntegrationServiceClient::new(self.channel().await)
    }

    /// Stops the daemon and waits for it.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(DEADLINE, task)
                .await
                .expect("daemon stops")
                .expect("daemon task");
        }
    }
}

/// `GetStatus` with the admin token.
pub(crate) async fn status(
    client: &mut IntegrationServiceClient<Channel>,
) -> pb::IntegrationStatus {
    client
        .get_status(with_token(pb::GetStatusRequest {}, ADMIN_TOKEN))
        .await
        .expect("status")
        .into_inner()
}

/// Waits until the run count of successful runs reaches `runs` and nothing is running; returns the status.
pub(crate) async fn wait_for_successful_runs(
    client: &mut IntegrationServiceClient<Channel>,
    runs: usize,
) -> pb::IntegrationStatus {
    super::eventually(&format!("{runs} successful run(s)"), || {
        let mut client = client.clone();
        async move {
            let status = status(&mut client).await;
            let done = status
                .history
                .iter()
                .filter(|run| run.outcome == pb::RunOutcome::Succeeded as i32)
                .count();
            (done >= runs && status.current_run.is_none()).then_some(status)
        }
    })
    .await
}

/// Configure with the simulator's OAuth client and a match key on `organization_fields.account_id`.
pub(crate) fn configure_request() -> pb::ConfigureRequest {
    pb::ConfigureRequest {
        subdomain: "acme".into(),
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

/// How long the tests let a poll run before failing.
pub(crate) const POLL: Duration = Duration::from_millis(20);

impl Daemon {
    /// Like `start`, but lets the test change the parsed config (for instance the export budget) first.
    pub(crate) async fn start_adjusted(
        data_dir: &Path,
        base_url: &str,
        extra: &str,
        clock: SharedClock,
        adjust: impl FnOnce(&mut Config),
    ) -> Daemon {
        Self::start_with_options(
            data_dir,
            base_url,
            extra,
            clock,
            adjust,
            zdsync::daemon::RunOptions::default(),
        )
        .await
    }

    /// Like `start_adjusted`, with the daemon's test hooks (a disk that fills on demand, for instance).
    pub(crate) async fn start_with_options(
        data_dir: &Path,
        base_url: &str,
        extra: &str,
        clock: SharedClock,
        adjust: impl FnOnce(&mut Config),
        options: zdsync::daemon::RunOptions,
    ) -> Daemon {
        let toml = format!(
            "data_dir = {:?}\n[zendesk]\nbase_url = {base_url:?}\nrequests_per_minute = 0\ntimeout = \"5s\"\n{extra}",
            data_dir.display().to_string()
        );
        let mut config = Config::from_toml(&toml, &ProcessEnv).expect("config");
        config.auth.admin_token = Some(ADMIN_TOKEN.into());
        adjust(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind daemon");
        let addr = listener.local_addr().expect("addr").to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            zdsync::daemon::run_with_options(
                config,
                listener,
                async {
                    let _ = stopped.await;
                },
                clock,
                options,
            )
            .await
            .expect("daemon run");
        });
        Daemon {
            addr,
            data_dir: data_dir.to_owned(),
            stop: Some(stop),
            task: Some(task),
        }
    }
}

/// `ForceSync` of `kind` with the admin token.
pub(crate) async fn force(
    client: &mut IntegrationServiceClient<Channel>,
    kind: pb::SyncKind,
) -> Result<pb::ForceSyncResponse, tonic::Status> {
    client
        .force_sync(with_token(
            pb::ForceSyncRequest { kind: kind as i32 },
            ADMIN_TOKEN,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Polls `GetStatus` until `check` accepts it; returns that status.
pub(crate) async fn wait_for_status(
    client: &mut IntegrationServiceClient<Channel>,
    what: &str,
    check: impl Fn(&pb::IntegrationStatus) -> bool,
) -> pb::IntegrationStatus {
    let check = &check;
    super::eventually(what, || {
        let mut client = client.clone();
        async move {
            let status = status(&mut client).await;
            check(&status).then_some(status)
        }
    })
    .await
}

/// Configures the integration with `configure_request()` and returns the first run's id.
pub(crate) async fn configure(client: &mut IntegrationServiceClient<Channel>) -> String {
    client
        .configure(with_token(configure_request(), ADMIN_TOKEN))
        .await
        .expect("configure")
        .into_inner()
        .run_id
}

/// Opens the store of a stopped daemon.
pub(crate) fn open_store(data_dir: &Path) -> zdsync::store::Store {
    zdsync::store::Store::open(data_dir).expect("open the store of the stopped daemon")
}

/// A proto timestamp as a UTC instant.
pub(crate) fn instant(timestamp: &prost_types::Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(
        timestamp.seconds,
        u32::try_from(timestamp.nanos).unwrap_or(0),
    )
    .expect("timestamp in range")
}
