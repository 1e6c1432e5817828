//! Timeline RPCs of `MetricsService` (listing and watching events).
use tonic::Status;

use crate::proto::v1 as pb;
use crate::store::Store;

/// Lists timeline events.
pub async fn list(
    _store: Store,
    _request: pb::ListTimelineEventsRequest,
) -> Result<pb::ListTimelineEventsResponse, Status> {
    Err(Status::unimplemented(
        "timeline events are not available in this build",
    ))
}

/// Streams timeline events.
pub fn watch(
    _store: Store,
    _request: pb::WatchTimelineEventsRequest,
    _shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<
    tokio_stream::wrappers::ReceiverStream<Result<pb::WatchTimelineEventsResponse, Status>>,
    Status,
> {
    Err(Status::unimplemented(
        "timeline events are not available in this build",
    ))
}
