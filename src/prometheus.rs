//! `[prometheus] listen`: plain HTTP `GET /metrics` in the Prometheus text format (OpenMetrics 1.0).
//!
//! Counters and histograms are recorded as the daemon works (`crate::telemetry`); the gauges that describe
//! its state (sync state, last success, drift, matches, stored counts, store size and writability, the run in
//! progress) are read at each scrape from the same `GetStatus` an admin sees, so the two never disagree.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::proto::v1 as pb;
use crate::proto::v1::integration_service_server::IntegrationService;
use crate::telemetry::{metrics, Labels, StateGauges};

/// The content type of the OpenMetrics text format, which Prometheus scrapes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// The listen address could not be bound.
    #[error("[prometheus] listen {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Parses `[prometheus] listen`: `HOST:PORT`, or a bare `PORT` (or `:PORT`) on the loopback interface.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let bare = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = bare.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse::<SocketAddr>()
        .map_err(|_| "expected HOST:PORT or a port on loopback, e.g. 127.0.0.1:9464 or 9464".into())
}

/// Where the scrape reads the daemon's state.
#[derive(Clone)]
pub struct Source {
    /// The integration service (its `GetStatus`).
    pub integration: Arc<dyn StatusSource>,
    /// The data directory (store file size, writability probe).
    pub data_dir: PathBuf,
}

/// Something that answers `GetStatus`.
#[tonic::async_trait]
pub trait StatusSource: Send + Sync {
    /// The integration's status.
    async fn status(&self) -> Result<pb::IntegrationStatus, tonic::Status>;
}

#[tonic::async_trait]
impl<T: IntegrationService> StatusSource for T {
    async fn status(&self) -> Result<pb::IntegrationStatus, tonic::Status> {
        self.get_status(tonic::Request::new(pb::GetStatusRequest {}))
            .await
            .map(tonic::Response::into_inner)
    }
}

/// Binds `addr` and serves `/metrics` until `shutdown` turns true; returns the bound address.
pub async fn spawn(
    addr: SocketAddr,
    source: Source,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), PrometheusError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| PrometheusError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| PrometheusError::Bind { addr, source })?;
    let router = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(source);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|stopping| *stopping).await;
            })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "metrics endpoint stopped");
        }
    });
    tracing::info!(addr = %bound, "prometheus metrics at http://{bound}/metrics");
    Ok((bound, task))
}

async fn scrape(State(source): State<Source>) -> Response {
    match source.integration.status().await {
        Ok(status) => refresh_status(&metrics().state, &status),
        Err(err) => tracing::warn!(error = %err, "metrics: status unavailable"),
    }
    let data_dir = source.data_dir.clone();
    let (size, writable) = tokio::task::spawn_blocking(move || {
        let size = std::fs::metadata(data_dir.join(crate::store::DATABASE_FILE))
            .map_or(0, |meta| meta.len());
        (size, probe_writable(&data_dir))
    })
    .await
    .unwrap_or((0, false));
    let state = &metrics().state;
    state
        .store_file_bytes
        .set(i64::try_from(size).unwrap_or(i64::MAX));
    state.store_writable.set(i64::from(writable));
    match metrics().encode() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

/// Whether the data directory accepts a durable write: a small file written, fsynced and removed. A full disk,
/// a read-only remount or an I/O error makes it fail, as they make the store's commits fail.
fn probe_writable(data_dir: &std::path::Path) -> bool {
    use std::io::Write;
    let path = data_dir.join(".metrics-write-probe");
    let written = std::fs::File::create(&path)
        .and_then(|mut file| {
            file.write_all(b"zdsync")?;
            file.sync_all()
        })
        .is_ok();
    let removed = std::fs::remove_file(&path).is_ok();
    written && removed
}

fn gauge_value(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Sets one series of `family` per `(value of label, count)`.
fn set_labelled<const N: usize>(
    family: &Family<Labels<1>, Gauge>,
    label: &'static str,
    counts: [(&str, u64); N],
) {
    for (value, count) in counts {
        family
            .get_or_create(&[(label, value.to_owned())])
            .set(gauge_value(count));
    }
}

/// Sets the state gauges from a `GetStatus` answer.
pub fn refresh_status(gauges: &StateGauges, status: &pb::IntegrationStatus) {
    let current = status.state();
    for state in [
        pb::SyncState::NotConfigured,
        pb::SyncState::Idle,
        pb::SyncState::Syncing,
        pb::SyncState::Paused,
        pb::SyncState::Failed,
    ] {
        gauges
            .sync_state
            .get_or_create(&[("state", state.as_str_name().to_owned())])
            .set(i64::from(state == current));
    }
    gauges.last_successful_sync.clear();
    if let Some(at) = &status.last_successful_sync_at {
        #[allow(clippy::cast_precision_loss)]
        let seconds = at.seconds as f64 + f64::from(at.nanos) / 1e9;
        gauges.last_successful_sync.get_or_create(&[]).set(seconds);
    }
    gauges.last_error.clear();
    if let Some(error) = &status.last_error {
        gauges
            .last_error
            .get_or_create(&[("kind", error.kind().as_str_name().to_owned())])
            .set(1);
    }
    if let Some(drift) = &status.drift {
        set_labelled(
            &gauges.drift,
            "what",
            [
                ("tickets_added", drift.tickets_added),
                ("tickets_updated", drift.tickets_updated),
                ("tickets_gone", drift.tickets_gone),
                ("rollups_corrected", drift.rollups_corrected),
            ],
        );
    }
    if let Some(stats) = &status.match_stats {
        set_labelled(
            &gauges.organizations,
            "match",
            [
                ("total", stats.organizations_total),
                ("matched", stats.organizations_matched),
                ("unmatched", stats.organizations_unmatched),
                ("ambiguous", stats.organizations_ambiguous),
            ],
        );
        set_labelled(
            &gauges.accounts,
            "organization",
            [
                ("with_organization", stats.accounts_with_organization),
                ("without_organization", stats.accounts_without_organization),
            ],
        );
        gauges.users_matched.set(gauge_value(stats.users_matched));
    }
    if let Some(stored) = &status.stored {
        set_labelled(
            &gauges.stored,
            "kind",
            [
                ("tickets", stored.tickets),
                ("organizations", stored.organizations),
                ("users", stored.users),
                ("ratings", stored.ratings),
                ("events", stored.events),
            ],
        );
    }
    let progress = status
        .current_run
        .as_ref()
        .and_then(|run| run.progress.as_ref());
    gauges
        .run_in_progress
        .set(i64::from(status.current_run.is_some()));
    gauges
        .run_phase_pages
        .set(progress.map_or(0, |p| gauge_value(p.phase_pages)));
    gauges.run_eta_seconds.clear();
    if let Some(eta) = progress.and_then(|p| p.eta_seconds) {
        gauges.run_eta_seconds.get_or_create(&[]).set(eta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_takes_an_address_or_a_loopback_port() {
        assert_eq!(
            parse_listen("9464").expect("port"),
            "127.0.0.1:9464".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(
            parse_listen(":9464").expect("port"),
            "127.0.0.1:9464".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(
            parse_listen("0.0.0.0:9100").expect("addr"),
            "0.0.0.0:9100".parse::<SocketAddr>().expect("addr")
        );
        assert!(parse_listen("localhost").is_err());
    }

    #[test]
    fn the_probe_sees_a_writable_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(probe_writable(dir.path()));
        assert!(!probe_writable(&dir.path().join("missing")));
    }
}
