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
        // The engine logs the fault (rate-limited); the client gets it in plain words.
        StoreError::Unwritable(message) => Status::unavailable(message),
        StoreError::Corrupt { .. } | StoreError::Database(_) => {
            tracing::error!(error = %error, "store failure");
            Status::internal(format!("store failure: {error}"))
        }
    }
}

/// Runs blocking store work off the async runtime.
pub(super) async fn on_store<T: Send + 'static>(
    store: &crate::store::Store,
    work: impl FnOnce(crate::store::Store) -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    let store = store.clone();
    let explain = store.clone();
    tokio::task::spawn_blocking(move || work(store))
        .await
        .map_err(from_join)?
        .map_err(|status| explain_unavailable(&explain, status))
}

/// An `UNAVAILABLE` answer while the store cannot write says why in the store's words (full disk, free
/// space), which a failure deep in redb could not know.
fn explain_unavailable(store: &crate::store::Store, status: Status) -> Status {
    if status.code() != tonic::Code::Unavailable {
        return status;
    }
    match store.write_fault_message() {
        Some(message) => Status::unavailable(message),
        None => status,
    }
}

/// `INVALID_ARGUMENT` naming `field` when a batch holds more than `max` items.
pub(super) fn check_batch(field: &str, len: usize, max: usize, hint: &str) -> Result<(), Status> {
    if len > max {
        return Err(Status::invalid_argument(format!(
            "{field}: at most {max} per call, got {len}{hint}"
        )));
    }
    Ok(())
}

/// A blocking task that panicked or was cancelled.
pub fn from_join(error: tokio::task::JoinError) -> Status {
    tracing::error!(error = %error, "blocking task failed");
    Status::internal("internal task failed")
}
