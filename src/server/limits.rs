//! The limits [`Server`] enforces against hostile and careless clients: open
//! connections, idle connections, and HTTP/2's stream and header limits.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower_service::Service;

use super::Server;

/// The limits' values, with their defaults.
#[derive(Clone, Debug)]
pub(super) struct Limits {
    pub(super) max_connections: usize,
    pub(super) idle_timeout: Duration,
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
            // RFC 9113 5.1.2 asks for no fewer than 100.
            http2_max_concurrent_streams: 100,
            http2_max_header_list_size: 32 * 1024,
            // h2's own defaults, set here so they are the crate's promise.
            http2_max_pending_accept_reset_streams: 20,
            http2_max_local_error_reset_streams: 1024,
        }
    }
}

impl Limits {
    pub(super) fn apply(&self, builder: &mut auto::Builder<TokioExecutor>) {
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

/// Counts a connection's requests in flight (a response future or body alive).
pub(super) fn activity() -> (Arc<watch::Sender<usize>>, watch::Receiver<usize>) {
    let (tx, rx) = watch::channel(0);
    (Arc::new(tx), rx)
}

/// Completes once no request has been in flight for `timeout`.
pub(super) async fn idle(mut in_flight: watch::Receiver<usize>, timeout: Duration) {
    loop {
        let idle = *in_flight.borrow_and_update() == 0;
        if idle {
            tokio::select! {
                () = tokio::time::sleep(timeout) => return,
                changed = in_flight.changed() => if changed.is_err() { return },
            }
        } else if in_flight.changed().await.is_err() {
            return;
        }
    }
}

/// A request in flight, until dropped.
struct InFlight(Arc<watch::Sender<usize>>);

impl InFlight {
    fn new(activity: &Arc<watch::Sender<usize>>) -> Self {
        activity.send_modify(|n| *n += 1);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// Marks each request in flight from its call to the end of its response body.
#[derive(Clone)]
pub(super) struct Track<S> {
    inner: S,
    activity: Arc<watch::Sender<usize>>,
}

impl<S> Track<S> {
    pub(super) fn new(inner: S, activity: Arc<watch::Sender<usize>>) -> Self {
        Self { inner, activity }
    }
}

impl<S, R, B> Service<Request<R>> for Track<S>
where
    S: Service<Request<R>, Response = Response<B>>,
{
    type Response = Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<R>) -> Self::Future {
        let in_flight = InFlight::new(&self.activity);
        TrackedFuture {
            inner: self.inner.call(req),
            in_flight: Some(in_flight),
        }
    }
}

pin_project_lite::pin_project! {
    pub(super) struct TrackedFuture<F> {
        #[pin]
        inner: F,
        in_flight: Option<InFlight>,
    }
}

impl<F, B, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<TrackedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let in_flight = this.in_flight.take();
        Poll::Ready(Ok(response.map(|body| TrackedBody {
            inner: body,
            _in_flight: in_flight,
        })))
    }
}

pin_project_lite::pin_project! {
    pub(super) struct TrackedBody<B> {
        #[pin]
        inner: B,
        _in_flight: Option<InFlight>,
    }
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

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
