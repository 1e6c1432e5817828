//! A tower layer that counts the gRPC server's RPCs as grpc-ecosystem's go-grpc-prometheus names them:
//! `grpc_server_started_total`, `grpc_server_handled_total` and `grpc_server_handling_seconds`, labelled
//! `grpc_type`, `grpc_service`, `grpc_method` (and `grpc_code` once handled).
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
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

/// The series of one method, created once: recording an RPC takes no lock and allocates nothing.
#[derive(Debug)]
struct MethodMetrics {
    labels: super::Labels<3>,
    started: Counter,
    handling: Histogram,
    /// `grpc_server_handled_total` by code number, created at the first RPC that ends with that code.
    handled: [OnceLock<Counter>; 17],
}

impl MethodMetrics {
    fn new(kind: &str, service: &str, method: &str) -> Self {
        let labels = [
            ("grpc_type", kind.to_owned()),
            ("grpc_service", service.to_owned()),
            ("grpc_method", method.to_owned()),
        ];
        let m = super::metrics();
        Self {
            started: m.grpc_started.get_or_create_owned(&labels),
            handling: m.grpc_handling_seconds.get_or_create_owned(&labels),
            handled: std::array::from_fn(|_| OnceLock::new()),
            labels,
        }
    }

    fn handled(&self, code: usize) -> &Counter {
        let code = code.min(CODE_NAMES.len() - 1);
        self.handled[code].get_or_init(|| {
            let [kind, service, method] = self.labels.clone();
            super::metrics().grpc_handled.get_or_create_owned(&[
                kind,
                service,
                method,
                ("grpc_code", CODE_NAMES[code].to_owned()),
            ])
        })
    }
}

/// The series of every served method by path (`/package.Service/Method`), and one for any other path: a client
/// cannot create series by calling made-up methods.
struct Methods {
    by_path: HashMap<String, Arc<MethodMetrics>>,
    unknown: Arc<MethodMetrics>,
}

fn methods() -> &'static Methods {
    static METHODS: OnceLock<Methods> = OnceLock::new();
    METHODS.get_or_init(|| Methods {
        by_path: method_types()
            .iter()
            .map(|(path, kind)| {
                let (service, method) = path
                    .trim_start_matches('/')
                    .split_once('/')
                    .unwrap_or((path.as_str(), ""));
                (
                    path.clone(),
                    Arc::new(MethodMetrics::new(kind, service, method)),
                )
            })
            .collect(),
        unknown: Arc::new(MethodMetrics::new("unary", "unknown", "unknown")),
    })
}

/// Code numbers by go-grpc-prometheus name.
const CANCELED: usize = 1;
const UNKNOWN: usize = 2;

/// One RPC being handled: counted as handled exactly once, with `Canceled` if dropped unfinished.
#[derive(Debug)]
struct Tracker {
    method: Arc<MethodMetrics>,
    started: Instant,
    done: bool,
}

impl Tracker {
    fn start(path: &str) -> Self {
        let all = methods();
        let method = all.by_path.get(path).unwrap_or(&all.unknown).clone();
        method.started.inc();
        Self {
            method,
            started: Instant::now(),
            done: false,
        }
    }

    fn finish(&mut self, code: usize) {
        if self.done {
            return;
        }
        self.done = true;
        self.method.handled(code).inc();
        self.method
            .handling
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        // The client went away (or the server cut the call) before a status was sent.
        self.finish(CANCELED);
    }
}

/// The code number of a `grpc-status` header or trailer (`Unknown` for a value that is not one).
fn status_in(headers: &http::HeaderMap) -> Option<usize> {
    headers.get("grpc-status").map(|value| {
        value
            .to_str()
            .ok()
            .and_then(|text| text.parse::<usize>().ok())
            .filter(|code| *code < CODE_NAMES.len())
            .unwrap_or(UNKNOWN)
    })
}

/// Declares a stateless tower layer for the gRPC server builder and the service it wraps around the
/// server's routes; the middlewares differ only in what they answer and how a call starts.
macro_rules! routes_layer {
    (
        $(#[$layer_doc:meta])* $layer:ident => $(#[$service_doc:meta])* $service:ident;
        type Response = $response:ty;
        type Future = $future:ty;
        fn call(&mut $this:ident, $request:ident) $call:block
    ) => {
        $(#[$layer_doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $layer;

        impl<S> tower_layer::Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> Self::Service {
                $service { inner }
            }
        }

        $(#[$service_doc])*
        #[derive(Debug, Clone)]
        pub struct $service<S> {
            inner: S,
        }

        impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for $service<S>
        where
            S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
        {
            type Response = $response;
            type Error = S::Error;
            type Future = $future;

            fn poll_ready(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                self.inner.poll_ready(cx)
            }

            fn call(&mut self, $request: http::Request<ReqBody>) -> Self::Future {
                let $this = self;
                $call
            }
        }
    };
}
pub(crate) use routes_layer;

routes_layer! {
    /// The layer to add to the gRPC server builder.
    GrpcMetricsLayer =>
    /// The service [`GrpcMetricsLayer`] wraps around the server's routes.
    GrpcMetrics;
    type Response = http::Response<MeteredBody<ResBody>>;
    type Future = MeteredFuture<S::Future>;
    fn call(&mut this, request) {
        let tracker = Tracker::start(request.uri().path());
        MeteredFuture {
            inner: this.inner.call(request),
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
                    tracker.finish(UNKNOWN);
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
                Poll::Ready(Some(Err(_))) => tracker.finish(UNKNOWN),
                // A gRPC answer always ends with a status; a body that ends without one is not a success.
                Poll::Ready(None) => tracker.finish(UNKNOWN),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_methods_have_their_streaming_type_and_other_paths_share_one_series() {
        let all = methods();
        let watch = &all.by_path["/zdsync.v1.MetricsService/WatchTimelineEvents"];
        assert_eq!(watch.labels[0].1, "server_stream");
        assert_eq!(watch.labels[1].1, "zdsync.v1.MetricsService");
        assert_eq!(watch.labels[2].1, "WatchTimelineEvents");
        let import = &all.by_path["/zdsync.v1.AccountDirectoryService/ImportAccounts"];
        assert_eq!(import.labels[0].1, "client_stream");
        let reflection = &all.by_path["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"];
        assert_eq!(reflection.labels[0].1, "bidi_stream");
        assert_eq!(
            all.by_path["/grpc.health.v1.Health/Check"].labels[0].1,
            "unary"
        );
        assert!(!all.by_path.contains_key("/made.Up/Method"));
        assert_eq!(all.unknown.labels[2].1, "unknown");
    }

    #[test]
    fn status_codes_come_from_the_grpc_status_header() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_in(&headers), None);
        headers.insert("grpc-status", http::HeaderValue::from_static("16"));
        assert_eq!(
            status_in(&headers).map(|c| CODE_NAMES[c]),
            Some("Unauthenticated")
        );
        headers.insert("grpc-status", http::HeaderValue::from_static("99"));
        assert_eq!(status_in(&headers), Some(UNKNOWN));
    }
}
