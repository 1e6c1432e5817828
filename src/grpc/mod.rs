//! The gRPC server: services, auth interceptor, health, reflection and the proto <-> domain conversion.
use std::sync::Arc;

use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::Router;
use tonic::transport::{Identity, Server, ServerTlsConfig};

pub mod accounts;
pub mod auth;
pub mod convert;
mod credentials;
pub mod incoming;
pub mod integration;
pub mod metrics;
mod paging;
pub mod progress;
pub mod status;
pub mod status_codes;
pub mod timeline;

use crate::clock::SharedClock;
use crate::proto::v1::account_directory_service_server::AccountDirectoryServiceServer;
use crate::proto::v1::integration_service_server::IntegrationServiceServer;
use crate::proto::v1::metrics_service_server::MetricsServiceServer;
use crate::store::Store;
use crate::sync::SyncHandle;

/// Largest request message the daemon decodes.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Concurrent streams one client connection may open.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 64;
/// Largest response message the daemon encodes.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Fully-qualified names of the zdsync services this build serves (each with every RPC implemented).
pub const SERVED_SERVICES: &[&str] = &[
    "zdsync.v1.AccountDirectoryService",
    "zdsync.v1.IntegrationService",
    "zdsync.v1.MetricsService",
];

/// The server's router, every RPC counted by [`crate::telemetry::grpc::GrpcMetricsLayer`] after
/// [`status_codes::StatusCodesLayer`] gave tonic's own rejections the contract's codes.
pub type MeteredRouter = Router<
    tower_layer::Stack<
        status_codes::StatusCodesLayer,
        tower_layer::Stack<crate::telemetry::grpc::GrpcMetricsLayer, tower_layer::Identity>,
    >,
>;

/// Why the gRPC server could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// The TLS files could not be read or used.
    #[error("TLS: {0}")]
    Tls(String),
    /// Reflection could not read the embedded descriptors.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// What the services need from the rest of the daemon.
#[derive(Debug, Clone)]
pub struct ServiceDeps {
    /// The open store.
    pub store: Store,
    /// Accepted tokens.
    pub tokens: Arc<auth::Tokens>,
    /// Turns true when the daemon starts draining, so long streams can end.
    pub shutdown: watch::Receiver<bool>,
    /// The sync engine.
    pub engine: SyncHandle,
    /// The clock.
    pub clock: SharedClock,
}

/// Reads the PEM certificate chain and key into a TLS config.
pub fn load_tls(
    cert_file: &std::path::Path,
    key_file: &std::path::Path,
) -> Result<ServerTlsConfig, GrpcError> {
    let cert = std::fs::read(cert_file)
        .map_err(|err| GrpcError::Tls(format!("{}: {err}", cert_file.display())))?;
    let key = std::fs::read(key_file)
        .map_err(|err| GrpcError::Tls(format!("{}: {err}", key_file.display())))?;
    Ok(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
}

/// Builds the router with every served service, and the health reporter that controls `grpc.health.v1.Health`.
pub fn router(
    deps: ServiceDeps,
    tls: Option<ServerTlsConfig>,
) -> Result<(MeteredRouter, tonic_health::server::HealthReporter), GrpcError> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();

    let mut builder = Server::builder()
        .concurrency_limit_per_connection(256)
        // Streams per connection are capped too (a Health/Watch each is cheap, thousands are not).
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .layer(crate::telemetry::grpc::GrpcMetricsLayer)
        .layer(status_codes::StatusCodesLayer);
    if let Some(tls) = tls {
        builder = builder
            .tls_config(tls)
            .map_err(|err| GrpcError::Tls(err.to_string()))?;
    }

    // Every service refuses requests over MAX_REQUEST_BYTES and never sends more than MAX_RESPONSE_BYTES.
    macro_rules! limited {
        ($server:expr) => {
            $server
                .max_decoding_message_size(MAX_REQUEST_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES)
        };
    }
    let accounts = limited!(AccountDirectoryServiceServer::new(
        accounts::AccountDirectory::new(deps.store.clone(), deps.shutdown.clone())
    ));
    let integration = limited!(IntegrationServiceServer::new(
        integration::Integration::new(deps.store.clone(), deps.engine.clone(), deps.clock.clone(),)
    ));
    let metrics = limited!(MetricsServiceServer::new(metrics::Metrics::new(
        deps.store.clone(),
        deps.clock.clone(),
        deps.shutdown.clone(),
    )));

    let router = builder
        .add_service(health_service)
        .add_service(reflection_builder().build_v1()?)
        .add_service(reflection_builder().build_v1alpha()?)
        .add_service(InterceptedService::new(
            accounts,
            auth::RequireRole::admin(deps.tokens.clone()),
        ))
        .add_service(InterceptedService::new(
            integration,
            auth::RequireRole::admin(deps.tokens.clone()),
        ))
        .add_service(InterceptedService::new(
            metrics,
            auth::RequireRole::read(deps.tokens),
        ));
    Ok((router, health_reporter))
}

fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .with_service_name("grpc.reflection.v1alpha.ServerReflection");
    // Only services whose every RPC is implemented are advertised.
    for name in SERVED_SERVICES {
        builder = builder.with_service_name(*name);
    }
    builder
}

/// Marks the daemon and every served service SERVING.
pub async fn set_serving(reporter: &tonic_health::server::HealthReporter) {
    set_status(reporter, tonic_health::ServingStatus::Serving).await;
}

/// Marks the daemon and every served service NOT_SERVING (draining).
pub async fn set_not_serving(reporter: &tonic_health::server::HealthReporter) {
    set_status(reporter, tonic_health::ServingStatus::NotServing).await;
}

async fn set_status(
    reporter: &tonic_health::server::HealthReporter,
    status: tonic_health::ServingStatus,
) {
    for name in std::iter::once("").chain(SERVED_SERVICES.iter().copied()) {
        reporter.set_service_status(name, status).await;
    }
}
