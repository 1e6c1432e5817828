//! The one place where module errors become gRPC status codes.
use tonic::Status;

use crate::domain::account::FieldError;
use crate::store::StoreError;

/// `INVALID_ARGUMENT` naming the field.
pub fn invalid_field(error: &FieldError) -> Status {
    Status::invalid_argument(format!("{}: {}", error.field, error.reason))
}

/// Maps a store failure to a status, keeping internal detail out of client messages where it does not help.
pub fn from_store(error: StoreError) -> Status {
    match error {
        StoreError::AttributeKindConflict(field) => invalid_field(&field),
        StoreError::NewerSchema { .. } | StoreError::Open { .. } => {
            Status::unavailable(error.to_string())
        }
        StoreError::Corrupt { .. } | StoreError::Database(_) => {
            tracing::error!(error = %error, "store failure");
            Status::internal(format!("store failure: {error}"))
        }
    }
}

/// A blocking task that panicked or was cancelled.
pub fn from_join(error: tokio::task::JoinError) -> Status {
    tracing::error!(error = %error, "blocking task failed");
    Status::internal("internal task failed")
}
