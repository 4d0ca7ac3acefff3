//! The limits [`Server`] enforces against hostile and careless clients: open
//! connections, idle connections, the size of an HTTP/1 request's head, and
//! HTTP/2's stream and header limits.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use http::{header, HeaderValue, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Empty};
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_service::Service;

use super::Server;
use crate::error::BoxError;

/// The limits' values, with their defaults.
#[derive(Clone, Debug)]
pub(super) struct Limits {
    pub(super) max_connections: usize,
    pub(super) idle_timeout: Duration,
    pub(super) http1_max_header_size: usize,
    pub(super) http2_max_concurrent_streams: u32,
    pub(super) http2_max_header_list_size: u32,
    pub(super) http2_max_pending_accept_reset_streams: usize,
    pub(super) http2_max_local_error_reset_streams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            idle_timeout: Duration::from_secs(30),
            // waitress's `max_request_header_size`: room for hyper's longest
            // request target (64 KiB, 414 past it) and headers.
            http1_max_header_size: 256 * 1024,
            // RFC 9113 5.1.2 asks for no fewer than 100.
            http2_max_concurrent_streams: 100,
            http2_max_header_list_size: 32 * 1024,
            // h2's own defaults, set here so they are the crate's promise.
            http2_max_pending_accept_reset_streams: 20,
            http2_max_local_error_reset_streams: 1024,
        }
    }
}

/// hyper's HTTP/1 read buffer limit, unless set: it refuses a head that
/// is still incomplete at that size (and only then: a larger head read in
/// one go passes, hence [`Track`]'s own check).
const HYPER_MAX_BUF_SIZE: usize = 8192 + 4096 * 100;

impl Limits {
    pub(super) fn apply(&self, builder: &mut auto::Builder<TokioExecutor>) {
        if self.http1_max_header_size > HYPER_MAX_BUF_SIZE {
            builder.http1().max_buf_size(self.http1_max_header_size);
        }
        builder
            .http2()
            .max_concurrent_streams(self.http2_max_concurrent_streams)
            .max_header_list_size(self.http2_max_header_list_size)
            .max_pending_accept_reset_streams(self.http2_max_pending_accept_reset_streams)
            .max_local_error_reset_streams(self.http2_max_local_error_reset_streams);
    }
}

impl Server {
    /// The most connections open at once (default 1024). Past it the server
    /// stops accepting: new connections wait in the listen backlog (and are
    /// refused by the kernel once it is full) until one closes, so a flood
    /// never grows the number of tasks or file descriptors.
    ///
    /// # Panics
    ///
    /// If `connections` is 0.
    #[must_use]
    pub fn max_connections(mut self, connections: usize) -> Self {
        assert!(connections > 0, "max_connections must be at least 1");
        self.limits.max_connections = connections;
        self
    }

    /// How long a connection may stay open with no request in flight
    /// (default 30 s): a connection that never sends a byte, an idle
    /// keep-alive connection, or an HTTP/2 connection with no open stream
    /// (one that only pings, or trickles a header block it never ends) is
    /// closed after it. A request in flight (its response still streaming)
    /// keeps the connection, however long it takes.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = timeout;
        self
    }

    /// HTTP/1: the largest request head a client may send, in bytes
    /// (default 256 KiB, as waitress's `max_request_header_size`), counted
    /// as the request line and a `Name: value` line per header. A larger one
    /// is answered 431 and the connection closed, with a log line naming
    /// the cause; the application never sees it. hyper refuses a request
    /// target over 64 KiB (414) and more than 100 headers (431) on its own,
    /// and HTTP/2 has [`http2_max_header_list_size`](Server::http2_max_header_list_size).
    ///
    /// # Panics
    ///
    /// If `bytes` is 0.
    #[must_use]
    pub fn http1_max_header_size(mut self, bytes: usize) -> Self {
        assert!(bytes > 0, "http1_max_header_size must be at least 1");
        self.limits.http1_max_header_size = bytes;
        self
    }

    /// HTTP/2: the most streams a client may open at once on one connection
    /// (default 100, `SETTINGS_MAX_CONCURRENT_STREAMS`).
    #[must_use]
    pub fn http2_max_concurrent_streams(mut self, streams: u32) -> Self {
        self.limits.http2_max_concurrent_streams = streams;
        self
    }

    /// HTTP/2: the largest header list a request may carry, in bytes as
    /// RFC 9113 counts them (default 32 KiB, `SETTINGS_MAX_HEADER_LIST_SIZE`).
    #[must_use]
    pub fn http2_max_header_list_size(mut self, bytes: u32) -> Self {
        self.limits.http2_max_header_list_size = bytes;
        self
    }

    /// HTTP/2: how many streams the client may reset before the server
    /// accepted them (default 20). Past it the connection ends with
    /// `GOAWAY(ENHANCE_YOUR_CALM)`: the guard against rapid-reset floods
    /// (CVE-2023-44487).
    #[must_use]
    pub fn http2_max_pending_accept_reset_streams(mut self, streams: usize) -> Self {
        self.limits.http2_max_pending_accept_reset_streams = streams;
        self
    }

    /// HTTP/2: how many streams the server may reset for the client's
    /// protocol errors on one connection (default 1024). Past it the
    /// connection ends with `GOAWAY(ENHANCE_YOUR_CALM)` (CVE-2025-8671,
    /// "MadeYouReset").
    #[must_use]
    pub fn http2_max_local_error_reset_streams(mut self, streams: usize) -> Self {
        self.limits.http2_max_local_error_reset_streams = streams;
        self
    }
}

/// Admits connections up to the limit.
#[derive(Debug)]
pub(super) struct Gate {
    permits: Arc<Semaphore>,
    saturated: bool,
}

impl Gate {
    pub(super) fn new(limits: &Limits) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limits.max_connections)),
            saturated: false,
        }
    }

    /// A place for one more connection, once one is free. Held by the
    /// connection's task until it ends.
    pub(super) async fn admit(&mut self) -> OwnedSemaphorePermit {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            self.saturated = false;
            return permit;
        }
        if !self.saturated {
            self.saturated = true;
            tracing::warn!("connection limit reached; new connections wait in the backlog");
        }
        match self.permits.clone().acquire_owned().await {
            Ok(permit) => permit,
            // The semaphore is never closed.
            Err(_) => std::future::pending().await,
        }
    }
}

/// A connection's requests in flight (a response future or body alive),
/// and when the last one ended: counted with atomics, so that a request
/// costs no timer and no wake-up of the connection's task.
#[derive(Debug)]
pub(super) struct Activity {
    in_flight: AtomicUsize,
    /// When `in_flight` last fell to 0, as time since `opened`.
    idle_since_nanos: AtomicU64,
    opened: Instant,
    /// A request came as HTTP/2: the header read timeout is HTTP/1's.
    http2: AtomicBool,
}

impl Activity {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            idle_since_nanos: AtomicU64::new(0),
            opened: Instant::now(),
            http2: AtomicBool::new(false),
        })
    }

    /// When the connection went idle, or `None` while a request is in flight.
    fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let nanos = self.idle_since_nanos.load(Ordering::Acquire);
        Some(self.opened + Duration::from_nanos(nanos))
    }
}

/// How long a connection may go without a request in flight.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeouts {
    /// Any connection ([`Server::idle_timeout`]).
    pub(super) idle: Duration,
    /// An HTTP/1 connection, waiting for a request's head
    /// ([`Server::header_read_timeout`]).
    pub(super) header_read: Duration,
}

/// Which of the [`Timeouts`] ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expired {
    Idle,
    HeaderRead,
}

impl Timeouts {
    fn of(&self, activity: &Activity) -> (Duration, Expired) {
        if self.header_read < self.idle && !activity.http2.load(Ordering::Relaxed) {
            (self.header_read, Expired::HeaderRead)
        } else {
            (self.idle, Expired::Idle)
        }
    }
}

/// Completes once no request has been in flight for the connection's
/// timeout. Between requests an HTTP/1 connection waits for the next
/// request's head, so that time is also the header read timeout's: kept
/// here rather than by hyper, whose timer costs each request a timer
/// registration and an allocation. Wakes only when the timeout could have
/// run out: once per timeout on a busy connection.
pub(super) async fn idle(activity: Arc<Activity>, timeouts: Timeouts) -> Expired {
    let sleep = tokio::time::sleep(timeouts.of(&activity).0);
    tokio::pin!(sleep);
    loop {
        sleep.as_mut().await;
        let (timeout, expired) = timeouts.of(&activity);
        let now = Instant::now();
        let due = match activity.idle_since() {
            Some(since) if now.saturating_duration_since(since) >= timeout => return expired,
            Some(since) => since + timeout,
            None => now + timeout,
        };
        sleep.as_mut().reset(due.into());
    }
}

/// A request in flight, until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        // Stamped before the count falls, so `idle_since` never reads an old stamp.
        let ended = activity.opened.elapsed().as_nanos();
        activity
            .idle_since_nanos
            .store(u64::try_from(ended).unwrap_or(u64::MAX), Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Marks each request in flight from its call to the end of its response
/// body, and answers an HTTP/1 head over [`Server::http1_max_header_size`]
/// itself.
#[derive(Clone)]
pub(super) struct Track<S> {
    inner: S,
    activity: Arc<Activity>,
    remote: SocketAddr,
    max_head: usize,
}

impl<S> Track<S> {
    pub(super) fn new(
        inner: S,
        activity: Arc<Activity>,
        remote: SocketAddr,
        max_head: usize,
    ) -> Self {
        Self {
            inner,
            activity,
            remote,
            max_head,
        }
    }
}

impl<S, R, B> Service<Request<R>> for Track<S>
where
    S: Service<Request<R>, Response = Response<B>>,
    B: Body,
{
    type Response = Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<R>) -> Self::Future {
        let in_flight = Some(InFlight::new(&self.activity));
        if req.version() == Version::HTTP_2 {
            self.activity.http2.store(true, Ordering::Relaxed);
        } else if head_size(&req) > self.max_head {
            tracing::warn!(
                remote = %self.remote,
                head_bytes = head_size(&req),
                limit = self.max_head,
                cause = super::HEAD_TOO_LARGE,
                "rejected a malformed request"
            );
            return TrackedFuture::HeadTooLarge { in_flight };
        }
        TrackedFuture::Called {
            inner: self.inner.call(req),
            in_flight,
        }
    }
}

/// The size of an HTTP/1 request's head as [`Server::http1_max_header_size`]
/// counts it.
fn head_size<R>(req: &Request<R>) -> usize {
    // "METHOD target HTTP/1.1\r\n", then "Name: value\r\n" each, then "\r\n".
    let target = req
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len())
        + req.uri().scheme_str().map_or(0, |scheme| scheme.len() + 3)
        + req
            .uri()
            .authority()
            .map_or(0, |authority| authority.as_str().len());
    let line = req.method().as_str().len() + 1 + target + 1 + "HTTP/1.1\r\n".len();
    req.headers().iter().fold(line + 2, |size, (name, value)| {
        size.saturating_add(name.as_str().len() + value.len() + 4)
    })
}

pin_project_lite::pin_project! {
    #[project = TrackedFutureProj]
    pub(super) enum TrackedFuture<F> {
        Called {
            #[pin]
            inner: F,
            in_flight: Option<InFlight>,
        },
        HeadTooLarge {
            in_flight: Option<InFlight>,
        },
    }
}

impl<F, B, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<TrackedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            TrackedFutureProj::Called { inner, in_flight } => {
                let response = ready!(inner.poll(cx))?;
                let in_flight = in_flight.take();
                Poll::Ready(Ok(response.map(|body| TrackedBody {
                    inner: Either::Left(body),
                    _in_flight: in_flight,
                })))
            }
            TrackedFutureProj::HeadTooLarge { in_flight } => {
                let mut response = Response::new(TrackedBody {
                    inner: Either::Right(Empty::new()),
                    _in_flight: in_flight.take(),
                });
                *response.status_mut() = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
                // As hyper answers the heads it refuses itself.
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                Poll::Ready(Ok(response))
            }
        }
    }
}

pin_project_lite::pin_project! {
    pub(super) struct TrackedBody<B: Body> {
        #[pin]
        inner: Either<B, Empty<B::Data>>,
        _in_flight: Option<InFlight>,
    }
}

impl<B> Body for TrackedBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_counted_as_its_bytes_on_the_wire() {
        let wire = "GET /a?b=c HTTP/1.1\r\nHost: t\r\nX-Long: abc\r\n\r\n";
        let req = Request::get("/a?b=c")
            .header("host", "t")
            .header("x-long", "abc")
            .body(())
            .unwrap();
        assert_eq!(head_size(&req), wire.len());
        let proxied = Request::get("http://t:8/a").body(()).unwrap();
        assert_eq!(
            head_size(&proxied),
            "GET http://t:8/a HTTP/1.1\r\n\r\n".len()
        );
    }
}
