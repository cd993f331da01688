//! The accept loop shared by the three servers, with the connection limits every one of them
//! needs even on a laptop: a client that sends half a request, or opens a connection and says
//! nothing, must not hold a task and a socket forever (an outside probe kept 100 half-sent
//! requests open indefinitely, and 1,100 silent connections at `ulimit -n 1024` made all three
//! services time out for 40 s while "Too many open files" was logged 1,661 times).
//!
//! - **header read timeout** ([`HttpTimeouts::header_read`]): a connection whose first request
//!   head is not complete in time is closed, also one that never sends a byte. hyper's own timer
//!   only starts once hyper-util's `auto` builder has told HTTP/1 from HTTP/2 by the first bytes
//!   (hyperium/hyper#3962), so [`FirstBytesDeadline`] bounds that wait with the same limit. hyper
//!   restarts its timer whenever it waits for a request head, so it also closes keep-alive
//!   connections that stay **idle** that long;
//! - **body timeouts** ([`TimedBody`]): a pause longer than [`HttpTimeouts::body_idle`] between
//!   two pieces of a body, or a body still unfinished after [`HttpTimeouts::body_total`], ends
//!   the body with an error; the handler answers 4xx and the connection closes;
//! - **connection cap** ([`HttpTimeouts::max_connections`]): at most that many open connections
//!   per server. When a new one arrives at the cap, the oldest connection with no request in
//!   progress (one that never sent a request first, else an idle keep-alive one) is closed to
//!   make room, as nginx does with idle keep-alive connections under pressure: a flood of silent
//!   connections then costs the server `max_connections` sockets, and a client that sends its
//!   request at once is still served. When every connection is busy the newcomer is answered
//!   503 and closed. The default cap is a quarter of the open-file limit (so the three servers
//!   of `jukebox up` stay well under it together, with room for files), or
//!   `JUKEBOX_MAX_CONNECTIONS`;
//! - **accept errors** (out of file descriptors): an idle connection is closed to free one, and
//!   the loop backs off (10 ms, doubling up to 160 ms) instead of spinning; the error is logged once,
//!   then as a count at most every 10 s.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
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

/// Read deadlines and the connection cap for one server's connections; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// Time allowed for a complete request head (counted from the connection's start for the
    /// first one), and for an idle keep-alive connection before it is closed.
    pub header_read: Duration,
    /// Longest pause allowed between two pieces of a request body.
    pub body_idle: Duration,
    /// Time allowed for a whole request body; `None` = no limit (large S3 uploads).
    pub body_total: Option<Duration>,
    /// Most connections open at once; `None` = [`default_max_connections`].
    pub max_connections: Option<usize>,
}

impl HttpTimeouts {
    /// For the JSON APIs (model server, registry): bodies are small, so a slow one is a stuck or
    /// hostile client.
    pub const API: Self = Self {
        header_read: Duration::from_secs(30),
        body_idle: Duration::from_secs(30),
        body_total: Some(Duration::from_secs(120)),
        max_connections: None,
    };
    /// For S3: uploads can be large and take long, so only pauses are bounded.
    pub const STORAGE: Self = Self {
        header_read: Duration::from_secs(30),
        body_idle: Duration::from_secs(60),
        body_total: None,
        max_connections: None,
    };

    /// All three limits set to `limit` (tests use short ones), the default connection cap.
    pub fn uniform(limit: Duration) -> Self {
        Self { header_read: limit, body_idle: limit, body_total: Some(limit), max_connections: None }
    }

    /// The connection cap in force: [`Self::max_connections`] or the default.
    pub fn connection_cap(&self) -> usize {
        self.max_connections.unwrap_or_else(default_max_connections).max(1)
    }
}

/// The default connection cap of each server: `JUKEBOX_MAX_CONNECTIONS` when set to a positive
/// number (for `jukebox up` and `jukebox serve`), else a quarter of this process's open-file
/// limit, between 32 and 1,024 (256 at `ulimit -n 1024`: the three servers of `jukebox up` then
/// hold at most 768 sockets and keep the rest for files, the database and ONNX Runtime).
pub fn default_max_connections() -> usize {
    static CAP: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CAP.get_or_init(|| {
        let configured = std::env::var("JUKEBOX_MAX_CONNECTIONS").ok().and_then(|v| v.trim().parse::<usize>().ok());
        match configured.filter(|&n| n > 0) {
            Some(n) => n,
            None => open_file_limit().map_or(256, |limit| (limit / 4).clamp(32, 1024) as usize),
        }
    })
}

/// The soft `Max open files` limit of this process (Linux: `/proc/self/limits`).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
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
    RB: Body + Send + Unpin + 'static,
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
    let table = Arc::new(ConnectionTable::new(timeouts.connection_cap()));
    let mut accept_errors = AcceptErrors::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _peer)) => {
                    accept_errors.succeeded();
                    socket
                }
                Err(error) => {
                    // Out of file descriptors (EMFILE, ENFILE), or a connection reset before it
                    // was accepted: free a descriptor if an idle connection holds one, back off.
                    if matches!(error.raw_os_error(), Some(23 | 24)) {
                        table.evict_idle();
                    }
                    let pause = accept_errors.failed(name, &error);
                    tokio::select! {
                        () = tokio::time::sleep(pause) => continue,
                        () = shutdown.as_mut() => break,
                    }
                }
            },
            () = shutdown.as_mut() => break,
        };
        let Some(slot) = table.admit() else {
            refuse_busy(socket, name);
            continue;
        };
        // Small JSON answers: without TCP_NODELAY, Nagle's algorithm adds up to 40 ms each.
        let _ = socket.set_nodelay(true);
        let io = FirstBytesDeadline::new(socket, timeouts.header_read);
        let service = service.clone();
        let state = slot.state.clone();
        let hyper_service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let busy = Busy::start(&state);
            let request = request.map(|body| TimedBody::new(body, &timeouts));
            let response = tower::ServiceExt::oneshot(service.clone(), request);
            async move {
                // The connection counts as busy until the answer's body is sent (or dropped).
                let response = response.await?;
                Ok::<_, S::Error>(response.map(|body| BusyBody { inner: body, _busy: busy }))
            }
        });
        let connection = http.serve_connection_with_upgrades(TokioIo::new(io), hyper_service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let Slot { close, _entry: entry, .. } = slot;
            // Closed to make room for a newer connection ([`ConnectionTable::admit`]): drop it.
            let evicted = async {
                if close.await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                result = connection => {
                    // hyper's own errors (malformed HTTP, a client gone mid-body, a timeout) in the
                    // log at debug: hyper emits no events itself without --cfg hyper_unstable_tracing.
                    if let Err(error) = result {
                        tracing::debug!(service = name, "connection ended with an error: {error}");
                    }
                }
                () = evicted => {}
            }
            drop(entry);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

/// Answers 503 on a connection over the cap and closes it, without waiting: the socket is new,
/// so its send buffer is empty and a short answer goes out at once (written on the std socket:
/// tokio's `try_write` would wait for the reactor to report it writable first).
fn refuse_busy(socket: TcpStream, name: &str) {
    use std::io::Write as _;
    let body = format!("{{\"error\":\"the {name} has too many open connections, all busy; retry in a moment\"}}");
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Ok(mut socket) = socket.into_std() {
        let _ = socket.write(answer.as_bytes());
    }
}

/// The accept loop's back-off after an accept error, and its log lines: the first error of a
/// run is logged, later ones only as a count at most every [`Self::LOG_EVERY`].
#[derive(Default)]
struct AcceptErrors {
    /// Errors since the last success.
    in_a_row: u32,
    /// Errors not logged yet, and when the last line was written.
    unlogged: u64,
    logged_at: Option<std::time::Instant>,
}

impl AcceptErrors {
    const LOG_EVERY: Duration = Duration::from_secs(10);

    fn succeeded(&mut self) {
        self.in_a_row = 0;
    }

    /// Logs (or counts) `error`; returns how long to pause: 10 ms, doubling up to 160 ms.
    fn failed(&mut self, name: &str, error: &std::io::Error) -> Duration {
        self.in_a_row = self.in_a_row.saturating_add(1);
        self.unlogged += 1;
        let due = self.logged_at.is_none_or(|at| at.elapsed() >= Self::LOG_EVERY);
        if due {
            if self.unlogged == 1 {
                tracing::warn!("jukebox {name}: cannot accept a connection: {error}");
            } else {
                tracing::warn!(
                    "jukebox {name}: cannot accept a connection: {error} ({} times in the last {} s)",
                    self.unlogged,
                    Self::LOG_EVERY.as_secs()
                );
            }
            self.unlogged = 0;
            self.logged_at = Some(std::time::Instant::now());
        }
        Duration::from_millis(10 << self.in_a_row.saturating_sub(1).min(4))
    }
}

/// What the accept loop and a connection's requests share about one connection.
#[derive(Default)]
struct ConnectionState {
    /// Requests whose answer is not sent yet.
    busy: AtomicUsize,
    /// Whether a request ever arrived (a connection that never sent one is closed first).
    served: AtomicBool,
}

/// Marks a connection busy while it lives (from a request's arrival to its answer's end).
struct Busy(Arc<ConnectionState>);

impl Busy {
    fn start(state: &Arc<ConnectionState>) -> Self {
        state.served.store(true, Ordering::Relaxed);
        state.busy.fetch_add(1, Ordering::AcqRel);
        Self(state.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body that keeps its connection marked busy until hyper has sent (or dropped) it:
/// a large S3 download is never closed to make room.
struct BusyBody<B> {
    inner: B,
    _busy: Busy,
}

impl<B: Body + Unpin> Body for BusyBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The open connections of one server, oldest first, for the cap (see the module docs).
struct ConnectionTable {
    cap: usize,
    inner: Mutex<TableInner>,
}

#[derive(Default)]
struct TableInner {
    next_id: u64,
    open: BTreeMap<u64, (Arc<ConnectionState>, oneshot::Sender<()>)>,
}

/// A connection's place in the table: `close` fires when it is closed to make room; dropping
/// `_entry` (when the connection ends) frees the place.
struct Slot {
    state: Arc<ConnectionState>,
    close: oneshot::Receiver<()>,
    _entry: TableEntry,
}

struct TableEntry {
    table: Arc<ConnectionTable>,
    id: u64,
}

impl Drop for TableEntry {
    fn drop(&mut self) {
        self.table.lock().open.remove(&self.id);
    }
}

impl ConnectionTable {
    fn new(cap: usize) -> Self {
        Self { cap, inner: Mutex::new(TableInner::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TableInner> {
        // A panic while holding this lock leaves the table consistent (single map operations).
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A place for a new connection, closing an idle one when the table is full; `None` when
    /// every open connection is busy.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut inner = self.lock();
        if inner.open.len() >= self.cap && !Self::evict_locked(&mut inner) {
            return None;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let state = Arc::new(ConnectionState::default());
        let (close_tx, close) = oneshot::channel();
        inner.open.insert(id, (state.clone(), close_tx));
        Some(Slot { state, close, _entry: TableEntry { table: self.clone(), id } })
    }

    /// Closes the oldest idle connection, if there is one (to free a file descriptor).
    fn evict_idle(&self) -> bool {
        Self::evict_locked(&mut self.lock())
    }

    /// The oldest connection that never sent a request, else the oldest idle keep-alive one.
    fn evict_locked(inner: &mut TableInner) -> bool {
        let idle = |state: &ConnectionState| state.busy.load(Ordering::Acquire) == 0;
        let victim = inner
            .open
            .iter()
            .find(|(_, (state, _))| idle(state) && !state.served.load(Ordering::Relaxed))
            .or_else(|| inner.open.iter().find(|(_, (state, _))| idle(state)))
            .map(|(id, _)| *id);
        match victim.and_then(|id| inner.open.remove(&id)) {
            Some((_, close)) => {
                let _ = close.send(());
                true
            }
            None => false,
        }
    }
}

/// The HTTP/2 connection preface: hyper-util's `auto` builder reads up to these bytes to tell
/// HTTP/2 from HTTP/1, with no timer of its own.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A socket whose reads fail with `TimedOut` if the bytes that tell HTTP/1 from HTTP/2 (the
/// first byte that differs from the HTTP/2 preface, or the whole preface) have not arrived
/// within `limit` of the connection's start. After that, reads pass through, and hyper's header
/// read timeout (HTTP/1) or keep-alive pings (HTTP/2) take over.
pub(crate) struct FirstBytesDeadline<T> {
    inner: T,
    /// Preface bytes matched so far; the deadline is gone once the protocol is known.
    matched: usize,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<T> FirstBytesDeadline<T> {
    pub(crate) fn new(inner: T, limit: Duration) -> Self {
        Self { inner, matched: 0, deadline: Some(Box::pin(tokio::time::sleep(limit))) }
    }

    /// Follows the new bytes; true once they tell the protocol.
    fn decided(&mut self, new: &[u8]) -> bool {
        if new.is_empty() {
            return true; // end of stream
        }
        for &byte in new {
            if byte != H2_PREFACE[self.matched] {
                return true;
            }
            self.matched += 1;
            if self.matched == H2_PREFACE.len() {
                return true;
            }
        }
        false
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for FirstBytesDeadline<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.deadline.is_none() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.decided(&buf.filled()[before..]) {
                    this.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => match this.deadline.as_mut().map(|d| d.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no request head within the header read timeout",
                ))),
                _ => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FirstBytesDeadline<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_is_known_at_the_first_byte_off_the_preface_or_the_whole_preface() {
        let mut io = FirstBytesDeadline { inner: (), matched: 0, deadline: None };
        assert!(io.decided(b"G"));
        let mut io = FirstBytesDeadline { inner: (), matched: 0, deadline: None };
        assert!(!io.decided(b"PRI * HT"));
        assert!(!io.decided(b"TP/2.0\r\n"));
        assert!(io.decided(b"\r\nSM\r\n\r\n"));
        let mut io = FirstBytesDeadline { inner: (), matched: 0, deadline: None };
        assert!(io.decided(b"PUT /models/x HTTP/1.1\r\n"));
        assert!(io.decided(b""));
    }

    #[test]
    fn a_full_table_closes_the_oldest_silent_connection_then_idle_ones_and_refuses_when_all_are_busy() {
        let table = Arc::new(ConnectionTable::new(2));
        let mut first = table.admit().unwrap();
        let mut second = table.admit().unwrap();
        let _busy_second = Busy::start(&second.state);
        // Full: the first (silent, idle) goes.
        let mut third = table.admit().unwrap();
        assert!(first.close.try_recv().is_ok());
        drop(first);
        assert!(second.close.try_recv().is_err());
        // Full again, the second busy, the third silent: the third goes.
        let _busy_fourth;
        {
            let fourth = table.admit().unwrap();
            assert!(third.close.try_recv().is_ok());
            _busy_fourth = Busy::start(&fourth.state);
            // Both busy: refused.
            assert!(table.admit().is_none());
            drop(fourth);
        }
        assert_eq!(table.lock().open.len(), 1);
    }

    #[test]
    fn accept_errors_back_off_up_to_160_ms() {
        let mut errors = AcceptErrors::default();
        let error = std::io::Error::from_raw_os_error(24);
        let pauses: Vec<u128> = (0..8).map(|_| errors.failed("test", &error).as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 160, 160, 160]);
        assert_eq!(errors.unlogged, 7, "only the first error is logged within 10 s");
        errors.succeeded();
        assert_eq!(errors.failed("test", &error).as_millis(), 10);
    }
}
