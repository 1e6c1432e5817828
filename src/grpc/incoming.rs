//! Accepting gRPC connections without letting idle or abusive clients exhaust the process: at most
//! [`MAX_CONNECTIONS`] at once, a connection that sends nothing within [`HANDSHAKE_TIMEOUT`] is
//! closed, and running out of file descriptors backs off with a (rate-limited) log line instead of
//! spinning the accept loop.
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Most client connections served at once; further clients wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 256;

/// How long a new connection may stay silent before it is closed (a client that never sends the
/// HTTP/2 preface holds a descriptor for nothing).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// First pause after the process runs out of descriptors; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Least time between two "out of file descriptors" log lines.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The accepted connections of `listener`, for `serve_with_incoming`; the accept loop ends with the
/// stream's consumer.
pub fn incoming(listener: TcpListener) -> ReceiverStream<io::Result<GuardedConn>> {
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(accept_loop(
        listener,
        sender,
        Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        HANDSHAKE_TIMEOUT,
    ));
    ReceiverStream::new(receiver)
}

async fn accept_loop(
    listener: TcpListener,
    sender: mpsc::Sender<io::Result<GuardedConn>>,
    slots: Arc<Semaphore>,
    handshake_timeout: Duration,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut last_log: Option<Instant> = None;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if should_log(&mut last_log) {
                    tracing::warn!(
                        max = MAX_CONNECTIONS,
                        "connection cap reached; new clients wait until one closes"
                    );
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => return,
                    },
                    () = sender.closed() => return,
                }
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = sender.closed() => return,
        };
        match accepted {
            Ok((stream, _peer)) => {
                backoff = FIRST_BACKOFF;
                // tonic ignores `tcp_nodelay` for an incoming stream: set it per connection, or small
                // replies wait for the client's delayed ACK (about 40 ms).
                let _ = stream.set_nodelay(true);
                let conn = GuardedConn::new(stream, slot, handshake_timeout);
                if sender.send(Ok(conn)).await.is_err() {
                    return;
                }
            }
            Err(error) if is_out_of_descriptors(&error) => {
                if should_log(&mut last_log) {
                    tracing::error!(%error, backoff_ms = backoff.as_millis() as u64, "out of file descriptors: not accepting connections for a moment (raise LimitNOFILE= or close idle clients)");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(error) => {
                // A client that reset before we accepted it, for instance: nothing to do but go on.
                tracing::debug!(%error, "accept failed");
            }
        }
    }
}

fn is_out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Whether a rate-limited log line may be written now.
fn should_log(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    if last.is_some_and(|at| now.duration_since(at) < LOG_EVERY) {
        return false;
    }
    *last = Some(now);
    true
}

/// An accepted connection: holds one of the [`MAX_CONNECTIONS`] slots until it closes, and fails
/// its first read when the client stays silent past the handshake timeout.
#[derive(Debug)]
pub struct GuardedConn {
    stream: TcpStream,
    /// Set until the first byte arrives.
    handshake: Option<Pin<Box<Sleep>>>,
    _slot: OwnedSemaphorePermit,
}

impl GuardedConn {
    fn new(stream: TcpStream, slot: OwnedSemaphorePermit, handshake_timeout: Duration) -> Self {
        Self {
            stream,
            handshake: Some(Box::pin(tokio::time::sleep(handshake_timeout))),
            _slot: slot,
        }
    }
}

impl AsyncRead for GuardedConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.handshake = None;
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let timed_out = this
                    .handshake
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if timed_out {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client sent nothing within the handshake timeout",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for GuardedConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl Connected for GuardedConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}
