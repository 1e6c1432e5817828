//! Hostile request values: a huge bad value is quoted back short, never echoed whole.
mod common;

use common::inproc::{configure_request, Daemon, ADMIN_TOKEN};
use common::with_token;
use tonic::Code;
use zdsync::proto::v1 as pb;

/// A daemon whose Zendesk is unreachable: every request of these tests fails validation before
/// Zendesk would be contacted.
async fn daemon_without_zendesk() -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(
        dir.path(),
        "http://127.0.0.1:9",
        "",
        zdsync::clock::system(),
    )
    .await;
    (dir, daemon)
}

#[tokio::test]
async fn huge_bad_values_are_quoted_at_most_a_hundred_characters() {
    let (_dir, daemon) = daemon_without_zendesk().await;
    let mut client = daemon.integration().await;
    let huge = format!("evil\n{}", "x".repeat(500_000));
    let requests = [
        pb::ConfigureRequest {
            subdomain: huge.clone(),
            ..configure_request()
        },
        pb::ConfigureRequest {
            match_key: Some(pb::MatchKey {
                zendesk_field: huge.clone(),
                account_attribute: "id".into(),
            }),
            ..configure_request()
        },
        pb::ConfigureRequest {
            match_key: Some(pb::MatchKey {
                zendesk_field: "name".into(),
                account_attribute: format!("attributes.{huge}"),
            }),
            ..configure_request()
        },
    ];
    for request in requests {
        let status = client
            .configure(with_token(request, ADMIN_TOKEN))
            .await
            .expect_err("invalid");
        assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
        assert!(
            status.message().chars().count() < 400,
            "message of {} characters",
            status.message().len()
        );
        assert!(
            !status.message().contains('\n'),
            "{:.120}",
            status.message()
        );
    }
    daemon.stop().await;
}

/// Sends already-encoded protobuf bytes as a unary request and reads the reply as bytes.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        prost::bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, Self::Error> {
        let bytes = prost::bytes::Buf::copy_to_bytes(src, prost::bytes::Buf::remaining(src));
        Ok(Some(bytes.to_vec()))
    }
}

async fn raw_call(daemon: &Daemon, path: &'static str, body: Vec<u8>) -> tonic::Status {
    let mut grpc =
        tonic::client::Grpc::new(daemon.channel().await).max_encoding_message_size(usize::MAX);
    grpc.ready().await.expect("ready");
    grpc.unary::<Vec<u8>, Vec<u8>, _>(
        with_token(body, ADMIN_TOKEN),
        http::uri::PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .expect_err("refused")
}

#[tokio::test]
async fn undecodable_and_oversized_requests_get_the_contracts_codes() {
    let (_dir, daemon) = daemon_without_zendesk().await;
    let path = "/zdsync.v1.AccountDirectoryService/GetAccount";
    // Field 1 (`id`, a string) holding bytes that are not UTF-8.
    let invalid_utf8 = vec![0x0a, 0x02, 0xff, 0xfe];
    let status = raw_call(&daemon, path, invalid_utf8).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    // A length prefix that promises more bytes than the message has.
    let truncated = vec![0x0a, 0x10, b'a'];
    let status = raw_call(&daemon, path, truncated).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    // More than the 4 MiB a request may carry.
    let mut oversized = vec![0x0a, 0x80, 0x80, 0x80, 0x03];
    oversized.extend(std::iter::repeat_n(b'a', 6 * 1024 * 1024));
    let status = raw_call(&daemon, path, oversized).await;
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "{}",
        status.message()
    );
    daemon.stop().await;
}
