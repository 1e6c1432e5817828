//! A Rust server-reflection client (what grpcurl does for `list` and `describe`), over both protocol versions.
use prost::Message;
use tonic::transport::Channel;

/// The reflection protocol version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// `grpc.reflection.v1`.
    V1,
    /// `grpc.reflection.v1alpha` (grpcurl before 1.9 speaks only this one).
    V1Alpha,
}

/// One answer of the reflection stream, reduced to what the tests look at.
enum Answer {
    Services(Vec<String>),
    Files(Vec<Vec<u8>>),
    Error(String),
}

/// One reflection exchange against the API in module `$r` (v1 and v1alpha have the same shapes).
macro_rules! ask_with {
    ($r:path, $channel:expr, $request:expr) => {{
        use $r as r;
        let (channel, request) = ($channel, $request);
        let message = match request {
            Request::List => {
                r::server_reflection_request::MessageRequest::ListServices(String::new())
            }
            Request::Symbol(symbol) => {
                r::server_reflection_request::MessageRequest::FileContainingSymbol(symbol)
            }
        };
        let mut client = r::server_reflection_client::ServerReflectionClient::new(channel);
        let outbound = tokio_stream::iter([r::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(message),
        }]);
        let mut inbound = client
            .server_reflection_info(outbound)
            .await
            .expect("reflection call")
            .into_inner();
        // tonic's server answers an unknown symbol with a status on the stream, grpc-go's with an
        // error response: both are an error to the caller.
        let response = match inbound.message().await {
            Ok(response) => response.expect("one answer"),
            Err(status) => return Answer::Error(status.message().to_owned()),
        };
        match response.message_response.expect("a message response") {
            r::server_reflection_response::MessageResponse::ListServicesResponse(list) => {
                Answer::Services(list.service.into_iter().map(|s| s.name).collect())
            }
            r::server_reflection_response::MessageResponse::FileDescriptorResponse(files) => {
                Answer::Files(files.file_descriptor_proto)
            }
            r::server_reflection_response::MessageResponse::ErrorResponse(error) => {
                Answer::Error(error.error_message)
            }
            other => panic!("unexpected reflection answer {other:?}"),
        }
    }};
}

/// Sends one reflection request and returns its answer.
async fn ask(channel: Channel, version: Version, request: Request) -> Answer {
    match version {
        Version::V1 => ask_with!(tonic_reflection::pb::v1, channel, request),
        Version::V1Alpha => ask_with!(tonic_reflection::pb::v1alpha, channel, request),
    }
}

enum Request {
    List,
    Symbol(String),
}

/// The services the server lists, sorted (grpcurl's `list`).
pub(crate) async fn list_services(channel: Channel, version: Version) -> Vec<String> {
    match ask(channel, version, Request::List).await {
        Answer::Services(mut names) => {
            names.sort_unstable();
            names
        }
        Answer::Error(message) => panic!("list services: {message}"),
        Answer::Files(_) => panic!("list services answered with files"),
    }
}

/// The file descriptors that declare `symbol`, with their dependencies (grpcurl's `describe`).
pub(crate) async fn files_containing(
    channel: Channel,
    version: Version,
    symbol: &str,
) -> Result<Vec<prost_types::FileDescriptorProto>, String> {
    match ask(channel, version, Request::Symbol(symbol.to_owned())).await {
        Answer::Files(files) => Ok(files
            .iter()
            .map(|bytes| {
                prost_types::FileDescriptorProto::decode(bytes.as_slice())
                    .expect("a FileDescriptorProto")
            })
            .collect()),
        Answer::Error(message) => Err(message),
        Answer::Services(_) => Err("describe answered with a service list".into()),
    }
}

/// The leading comment of the message `name` (or of its field `field`) in `file`, as grpcurl's `describe` shows it.
pub(crate) fn leading_comment(
    file: &prost_types::FileDescriptorProto,
    message: &str,
    field: Option<&str>,
) -> Option<String> {
    // Paths of source_code_info: [4, message index] for a message, [4, i, 2, field index] for its field.
    let index = file.message_type.iter().position(|m| m.name() == message)?;
    let mut path = vec![4, i32::try_from(index).ok()?];
    if let Some(field) = field {
        let field_index = file.message_type[index]
            .field
            .iter()
            .position(|f| f.name() == field)?;
        path.extend([2, i32::try_from(field_index).ok()?]);
    }
    file.source_code_info
        .as_ref()?
        .location
        .iter()
        .find(|location| location.path == path)
        .and_then(|location| location.leading_comments.clone())
}

/// The methods of `service` as declared in `file`.
pub(crate) fn methods(file: &prost_types::FileDescriptorProto, service: &str) -> Vec<String> {
    file.service
        .iter()
        .filter(|s| s.name() == service)
        .flat_map(|s| s.method.iter().map(|m| m.name().to_owned()))
        .collect()
}
