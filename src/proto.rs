//! Code generated from the gRPC contract in `proto/zdsync/v1`.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Package `zdsync.v1`.
pub mod v1 {
    tonic::include_proto!("zdsync.v1");
}

/// Serialized descriptors of every zdsync message and service, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("zdsync_descriptor");
