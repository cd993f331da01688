//! The accept loop shared by the three servers, with the connection limits every one of them
//! needs even on a laptop: a client that sends half a request, or opens a connection and says
//! nothing, must not hold a task and a socket forever (an outside probe kept 100 half-sent
//! requests open indefinitely).
//!
//! - **header read timeout** ([`HttpTimeouts::header_read`]): hyper closes a connection whose
//!   request head is not complete in time. hyper starts that timer whenever it waits for a request
//!   head, so it also closes keep-alive connections that stay **idle** that long;
//! - **body timeouts** ([`TimedBody`]): a pause longer than [`HttpTimeouts::body_idle`] between
//!   two pieces of a body, or a body still unfinished after [`HttpTimeouts::body_total`], ends
//!   the body with an error; the handler answers 4xx and the connection closes.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};

/// Completes on Ctrl-C (SIGINT) or SIGTERM: what stops `jukebox up` and `jukebox serve` (and
/// what Kubernetes sends a pod). An error only when the handlers cannot be installed.
pub async fn termination_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// How long the servers wait for in-flight requests after shutdown is asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

type BoxError = Box<dyn StdError + Send + Sync>;

/// Read deadlines for one server's connections; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// Time allowed for a complete request head, and for an idle keep-alive connection before
    /// it is closed.
    pub header_read: Duration,
    /// Longest pause allowed between two pieces of a request body.
    pub body_idle: Duration,
    /// Time allowed for a whole request body; `None` = no limit (large S3 uploads).
    pub body_total: Option<Duration>,
}

impl HttpTimeouts {
    /// For the JSON APIs (model server, registry): bodies are small, so a slow one is a stuck or
    /// hostile client.
    pub const API: Self = Self {
        header_read: Duration::from_secs(30),
        body_idle: Duration::from_secs(30),
        body_total: Some(Duration::from_secs(120)),
    };
    /// For S3: uploads can be large and take long, so only pauses are bounded.
    pub const STORAGE: Self =
        Self { header_read: Duration::from_secs(30), body_idle: Duration::from_secs(60), body_total: None };

    /// All three limits set to `limit` (tests use short ones).
    pub fn uniform(limit: Duration) -> Self {
        Self { header_read: limit, body_idle: limit, body_total: Some(limit) }
    }
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        Self::API
    }
}

/// Why a request body ended early.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    #[error("the request body paused for more than {0:?}; the connection is closed")]
    Idle(Duration),
    #[error("the request body took longer than {0:?}; the connection is closed")]
    Total(Duration),
    #[error("{0}")]
    Inner(BoxError),
}

/// True when axum could not read a body because a [`TimedBody`] deadline passed.
pub(crate) fn is_body_timeout(rejection: &axum::extract::rejection::BytesRejection) -> bool {
    use std::error::Error as _;
    let mut source: Option<&(dyn StdError + 'static)> = rejection.source();
    while let Some(error) = source {
        if let Some(BodyReadError::Idle(_) | BodyReadError::Total(_)) = error.downcast_ref::<BodyReadError>() {
            return true;
        }
        source = error.source();
    }
    let text = rejection.body_text();
    text.contains("the request body paused") || text.contains("the request body took longer")
}

/// A request body with the deadlines of [`HttpTimeouts`].
pub struct TimedBody<B> {
    inner: B,
    idle: Duration,
    idle_sleep: Pin<Box<Sleep>>,
    total: Option<(Duration, Pin<Box<Sleep>>)>,
    failed: bool,
}

impl<B> TimedBody<B> {
    pub fn new(inner: B, timeouts: &HttpTimeouts) -> Self {
        let now = Instant::now();
        Self {
            inner,
            idle: timeouts.body_idle,
            idle_sleep: Box::pin(tokio::time::sleep_until(now + timeouts.body_idle)),
            total: timeouts.body_total.map(|d| (d, Box::pin(tokio::time::sleep_until(now + d)))),
            failed: false,
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BodyReadError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyReadError>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let deadline = Instant::now() + self.idle;
                self.idle_sleep.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyReadError::Inner(e.into())))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let this = &mut *self;
                if let Some((limit, sleep)) = this.total.as_mut() {
                    if sleep.as_mut().poll(cx).is_ready() {
                        this.failed = true;
                        return Poll::Ready(Some(Err(BodyReadError::Total(*limit))));
                    }
                }
                if this.idle_sleep.as_mut().poll(cx).is_ready() {
                    this.failed = true;
                    return Poll::Ready(Some(Err(BodyReadError::Idle(this.idle))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `service` on `listener` with `timeouts` until `shutdown` completes, then lets in-flight
/// requests finish (up to [`SHUTDOWN_GRACE`]). A failed connection (client gone, malformed HTTP,
/// a timeout) ends that connection only.
pub(crate) async fn serve_http<S, RB>(
    listener: TcpListener,
    service: S,
    timeouts: HttpTimeouts,
    name: &'static str,
    shutdown: impl Future<Output = ()> + Send,
) where
    S: tower::Service<Request<TimedBody<Incoming>>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    RB: Body + Send + 'static,
    RB::Data: Send,
    RB::Error: Into<BoxError>,
{
    let mut http = ConnBuilder::new(TokioExecutor::new());
    http.http1().timer(TokioTimer::new()).header_read_timeout(timeouts.header_read);
    // HTTP/2 (prior knowledge) connections: pings find dead peers, then close.
    http.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(timeouts.header_read))
        .keep_alive_timeout(timeouts.header_read);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _peer)) => socket,
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    eprintln!("jukebox {name}: cannot accept a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.as_mut() => break,
        };
        // Small JSON answers: without TCP_NODELAY, Nagle's algorithm adds up to 40 ms each.
        let _ = socket.set_nodelay(true);
        let service = service.clone();
        let hyper_service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let request = request.map(|body| TimedBody::new(body, &timeouts));
            tower::ServiceExt::oneshot(service.clone(), request)
        });
        let connection = http.serve_connection_with_upgrades(TokioIo::new(socket), hyper_service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}
