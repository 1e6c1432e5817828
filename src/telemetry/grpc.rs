//! A tower layer that counts the gRPC server's RPCs as grpc-ecosystem's go-grpc-prometheus names them:
//! `grpc_server_started_total`, `grpc_server_handled_total` and `grpc_server_handling_seconds`, labelled
//! `grpc_type`, `grpc_service`, `grpc_method` (and `grpc_code` once handled).
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use prost::Message;

/// go-grpc-prometheus's code names (grpc-go's `codes.Code.String()`), by code number.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// The go-grpc-prometheus name of a gRPC status code number.
pub fn code_name(code: i32) -> &'static str {
    usize::try_from(code)
        .ok()
        .and_then(|index| CODE_NAMES.get(index))
        .copied()
        .unwrap_or("Unknown")
}

/// `grpc_type` of every served method (`/package.Service/Method`), from the served descriptor sets.
fn method_types() -> &'static HashMap<String, &'static str> {
    static TYPES: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    TYPES.get_or_init(|| {
        let mut types = HashMap::new();
        for encoded in [
            crate::proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            // The sets are compiled in; one that does not decode leaves its methods labelled `unary`.
            let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
                continue;
            };
            for file in &set.file {
                for service in &file.service {
                    for method in &service.method {
                        let kind = match (
                            method.client_streaming.unwrap_or(false),
                            method.server_streaming.unwrap_or(false),
                        ) {
                            (false, false) => "unary",
                            (true, false) => "client_stream",
                            (false, true) => "server_stream",
                            (true, true) => "bidi_stream",
                        };
                        types.insert(
                            format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                            kind,
                        );
                    }
                }
            }
        }
        types
    })
}

/// The labels of one RPC: `grpc_type`, `grpc_service`, `grpc_method`.
#[derive(Debug, Clone)]
struct Rpc {
    labels: super::Labels<3>,
}

impl Rpc {
    fn from_path(path: &str) -> Self {
        let kind = method_types().get(path).copied().unwrap_or("unary");
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or((path, ""));
        Self {
            labels: [
                ("grpc_type", kind.to_owned()),
                ("grpc_service", service.to_owned()),
                ("grpc_method", method.to_owned()),
            ],
        }
    }
}

/// One RPC being handled: counted as handled exactly once, with `Canceled` if dropped unfinished.
#[derive(Debug)]
struct Tracker {
    rpc: Rpc,
    started: Instant,
    done: bool,
}

impl Tracker {
    fn start(rpc: Rpc) -> Self {
        super::metrics()
            .grpc_started
            .get_or_create(&rpc.labels)
            .inc();
        Self {
            rpc,
            started: Instant::now(),
            done: false,
        }
    }

    fn finish(&mut self, code: &'static str) {
        if self.done {
            return;
        }
        self.done = true;
        let m = super::metrics();
        let [kind, service, method] = self.rpc.labels.clone();
        m.grpc_handled
            .get_or_create(&[
                kind.clone(),
                service.clone(),
                method.clone(),
                ("grpc_code", code.to_owned()),
            ])
            .inc();
        m.grpc_handling_seconds
            .get_or_create(&[kind, service, method])
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        // The client went away (or the server cut the call) before a status was sent.
        self.finish("Canceled");
    }
}

fn status_in(headers: &http::HeaderMap) -> Option<&'static str> {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<i32>().ok())
        .map(code_name)
}

/// The layer to add to the gRPC server builder.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower_layer::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

/// The service [`GrpcMetricsLayer`] wraps around the server's routes.
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for GrpcMetrics<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = MeteredFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let tracker = Tracker::start(Rpc::from_path(request.uri().path()));
        MeteredFuture {
            inner: self.inner.call(request),
            tracker: Some(tracker),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`GrpcMetrics`].
    #[derive(Debug)]
    pub struct MeteredFuture<F> {
        #[pin]
        inner: F,
        tracker: Option<Tracker>,
    }
}

impl<F, ResBody, E> Future for MeteredFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = Result<http::Response<MeteredBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let mut tracker = this.tracker.take();
        Poll::Ready(match result {
            Ok(response) => {
                // A trailers-only answer (every error tonic returns before streaming) carries its status here.
                if let (Some(code), Some(tracker)) =
                    (status_in(response.headers()), tracker.as_mut())
                {
                    tracker.finish(code);
                }
                Ok(response.map(|inner| MeteredBody { inner, tracker }))
            }
            Err(err) => {
                if let Some(tracker) = tracker.as_mut() {
                    tracker.finish("Unknown");
                }
                Err(err)
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that records the RPC's status when its trailers pass.
    #[derive(Debug)]
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        tracker: Option<Tracker>,
    }
}

impl<B: http_body::Body> http_body::Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Some(tracker) = this.tracker.as_mut() {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(code) = frame.trailers_ref().and_then(status_in) {
                        tracker.finish(code);
                    }
                }
                Poll::Ready(Some(Err(_))) => tracker.finish("Unknown"),
                // A gRPC answer always ends with a status; a body that ends without one is not a success.
                Poll::Ready(None) => tracker.finish("Unknown"),
                Poll::Pending => {}
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
