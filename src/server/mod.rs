//! Serving a [`WsgiService`] (or any stack around it)
//! over TCP (feature `server`, on by default): hyper-util's auto builder
//! (HTTP/1 and h2c, or TLS with the `tls` feature), a header read timeout,
//! client addresses in the environ, and graceful shutdown.
//!
//! An application served from axum (`axum::serve`) or any other hyper
//! server needs none of this: turn the feature off with
//! `default-features = false`.

#[cfg(feature = "tls")]
mod tls;

#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::TlsConfig;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, ToSocketAddrs};
use tower_service::Service;

use crate::app::App;
use crate::environ::{Https, LocalAddr, RemoteAddr};
use crate::error::BoxError;
use crate::service::WsgiService;

mod graceful;
mod limits;
mod woken;

/// Serves `app` on `addr` until Ctrl-C or SIGTERM, with the default options.
///
/// In-flight requests finish before it returns (up to 30 seconds).
///
/// ```no_run
/// use tower_wsgi::{AppBody, BoxError, Environ, StartResponse};
///
/// fn hello(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
///     Ok("Hello, World!".into())
/// }
///
/// #[tokio::main]
/// async fn main() -> std::io::Result<()> {
///     tower_wsgi::server::serve("127.0.0.1:8000", hello).await
/// }
/// ```
pub async fn serve<A: App>(addr: impl ToSocketAddrs, app: A) -> io::Result<()> {
    Server::bind(addr).await?.serve(WsgiService::new(app)).await
}

/// Serves `app` over TLS on `addr` until Ctrl-C or SIGTERM, with the
/// certificate chain and private key of two PEM files.
///
/// HTTP/2 and HTTP/1.1 are offered by ALPN; `wsgi.url_scheme` is `https`.
/// For more options, build a [`TlsConfig`] and use
/// [`Server::tls`].
///
/// ```no_run
/// use tower_wsgi::{AppBody, BoxError, Environ, StartResponse};
///
/// fn hello(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
///     Ok(format!("Hello over {}", environ.url_scheme()).into())
/// }
///
/// #[tokio::main]
/// async fn main() -> std::io::Result<()> {
///     tower_wsgi::server::serve_tls("0.0.0.0:8443", hello, "cert.pem", "key.pem").await
/// }
/// ```
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub async fn serve_tls<A: App>(
    addr: impl ToSocketAddrs,
    app: A,
    cert_chain_path: impl AsRef<std::path::Path>,
    key_path: impl AsRef<std::path::Path>,
) -> io::Result<()> {
    let tls = TlsConfig::from_pem_files(cert_chain_path, key_path)?;
    Server::bind(addr)
        .await?
        .tls(tls)
        .serve(WsgiService::new(app))
        .await
}

/// A TCP server for a tower service: the building block behind [`serve`].
///
/// ```no_run
/// use tower_wsgi::server::Server;
/// use tower_wsgi::{AppBody, BoxError, Builder, Environ, StartResponse};
///
/// fn hello(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
///     Ok("Hello, World!".into())
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let server = Server::bind("127.0.0.1:0").await?;
/// println!("listening on {}", server.local_addr()?);
/// let service = Builder::new().max_threads(8).build(hello);
/// server.serve_with_shutdown(service, async { /* a shutdown signal */ }).await
/// # }
/// ```
pub struct Server {
    listener: TcpListener,
    header_read_timeout: Duration,
    grace_period: Duration,
    limits: limits::Limits,
    #[cfg(feature = "tls")]
    tls: Option<TlsConfig>,
}

impl Server {
    /// Binds a listener on `addr`.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Ok(Self::from_listener(TcpListener::bind(addr).await?))
    }

    /// Serves on a listener bound elsewhere.
    pub fn from_listener(listener: TcpListener) -> Self {
        Self {
            listener,
            header_read_timeout: Duration::from_secs(30),
            grace_period: Duration::from_secs(30),
            limits: limits::Limits::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// How long an HTTP/1 client may take to send a request's head (default
    /// 30 s), counted from the connection's opening or the end of its
    /// previous response: a connection that sends none in time is closed.
    /// Only while it is shorter than [`idle_timeout`](Server::idle_timeout)
    /// does it decide anything; HTTP/2 connections go by the idle timeout.
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a shutdown waits for in-flight requests (default 30 s).
    #[must_use]
    pub fn grace_period(mut self, period: Duration) -> Self {
        self.grace_period = period;
        self
    }

    /// Serves TLS only: each connection's handshake runs in its own task
    /// (a slow client never holds up the others), and its requests get
    /// `wsgi.url_scheme` `https`.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[must_use]
    pub fn tls(mut self, config: TlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Serves `service` until Ctrl-C or SIGTERM.
    pub async fn serve<S, B>(self, service: S) -> io::Result<()>
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        self.serve_with_shutdown(service, shutdown_signal()).await
    }

    /// Serves `service` until `signal` completes, then stops accepting,
    /// lets in-flight requests finish (within the grace period) and returns.
    pub async fn serve_with_shutdown<S, B, F>(self, service: S, signal: F) -> io::Result<()>
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
        F: Future<Output = ()>,
    {
        let local = self.listener.local_addr()?;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            // The connection's activity watcher keeps the header read
            // timeout (see `serve_connection`).
            .header_read_timeout(None)
            .keep_alive(true);
        builder.http2().timer(TokioTimer::new());
        self.limits.apply(&mut builder);
        let mut gate = limits::Gate::new(&self.limits);
        let timeouts = limits::Timeouts {
            idle: self.limits.idle_timeout,
            header_read: self.header_read_timeout,
        };
        let max_head = self.limits.http1_max_header_size;
        let graceful_shutdown = graceful::Shutdown::new();
        // Dropped at shutdown: handshakes still under way are abandoned.
        #[cfg(feature = "tls")]
        let (stop_handshakes, _) = tokio::sync::watch::channel(());
        let mut signal = pin!(signal);
        tracing::info!(%local, "listening");
        loop {
            // At the limit, connections wait in the backlog rather than as tasks.
            let permit = tokio::select! {
                permit = gate.admit() => permit,
                () = &mut signal => break,
            };
            let (stream, remote) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut signal => break,
            };
            let _ = stream.set_nodelay(true);
            let service = AddAddrs {
                inner: service.clone(),
                remote,
                local,
                https: false,
            };
            let builder = builder.clone();
            let watcher = graceful_shutdown.watcher();
            #[cfg(feature = "tls")]
            if let Some(tls) = self.tls.clone() {
                let mut stop = stop_handshakes.subscribe();
                tokio::spawn(async move {
                    let _permit = permit;
                    let accepted = tokio::select! {
                        accepted = tls.accept(stream) => accepted,
                        _ = stop.changed() => return,
                    };
                    match accepted {
                        Ok(stream) => {
                            let service = AddAddrs {
                                https: true,
                                ..service
                            };
                            serve_connection(
                                &builder, stream, service, watcher, timeouts, max_head,
                            )
                            .await;
                        }
                        Err(error) => {
                            tracing::info!(%remote, %error, "TLS handshake failed");
                        }
                    }
                });
                continue;
            }
            tokio::spawn(async move {
                let _permit = permit;
                serve_connection(&builder, stream, service, watcher, timeouts, max_head).await;
            });
        }
        drop(self.listener);
        #[cfg(feature = "tls")]
        drop(stop_handshakes);
        tracing::info!("shutting down: waiting for in-flight requests");
        tokio::select! {
            () = graceful_shutdown.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(self.grace_period) => tracing::warn!("grace period over; connections dropped"),
        }
        Ok(())
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("Server");
        f.field("local_addr", &self.listener.local_addr().ok())
            .field("header_read_timeout", &self.header_read_timeout)
            .field("grace_period", &self.grace_period)
            .field("limits", &self.limits);
        #[cfg(feature = "tls")]
        f.field("tls", &self.tls);
        f.finish()
    }
}

/// Serves one connection to its end (or to shutdown), logging why it failed.
async fn serve_connection<I, S, B>(
    builder: &auto::Builder<TokioExecutor>,
    stream: I,
    service: AddAddrs<S>,
    watcher: graceful::Watcher,
    timeouts: limits::Timeouts,
    max_head: usize,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let remote = service.remote;
    let activity = limits::Activity::new();
    let service = TowerToHyperService::new(limits::Track::new(
        service,
        activity.clone(),
        remote,
        max_head,
    ));
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::select! {
        biased;
        ended = watcher.watch(conn.into_owned()) => if let Err(error) = ended {
            log_connection_error(remote, &*error);
        },
        expired = woken::PolledWhenWoken::new(limits::idle(activity, timeouts)) => match expired {
            limits::Expired::Idle => tracing::debug!(
                %remote,
                idle_timeout = ?timeouts.idle,
                "closed a connection idle for the idle timeout"
            ),
            limits::Expired::HeaderRead => tracing::info!(
                %remote,
                header_read_timeout = ?timeouts.header_read,
                "closed a connection that sent no request in time"
            ),
        }
    }
}

/// Requests hyper rejected itself (400, 414, 431) get a line naming the cause;
/// clients that simply went away do not.
fn log_connection_error(remote: SocketAddr, error: &(dyn std::error::Error + 'static)) {
    match error.downcast_ref::<hyper::Error>() {
        Some(e) if e.is_parse() || e.is_parse_too_large() => {
            tracing::warn!(%remote, error = %crate::error::chain(e), cause = parse_cause(e), "rejected a malformed request");
        }
        _ => {
            tracing::debug!(%remote, error = %crate::error::chain(error), "connection ended with an error")
        }
    }
}

/// The cause logged for a request head over the size limit (or with more
/// than 100 headers).
const HEAD_TOO_LARGE: &str = "the request head is too large";

/// What hyper's parse error means for the client, in words.
fn parse_cause(error: &hyper::Error) -> &'static str {
    let message = error.to_string();
    if message.starts_with("invalid URI") {
        // The `http` crate's fixed character tables: not configurable.
        "the URI parser refuses the request target (raw `<`, `>`, `` ` `` or DEL in the \
         path; `\"`, `<`, `>` or DEL in the query; bytes that are not UTF-8): \
         percent-encoded they pass"
    } else if message.starts_with("URI too long") {
        "the request target is too long"
    } else if error.is_parse_too_large() {
        HEAD_TOO_LARGE
    } else if message.starts_with("invalid HTTP header") {
        "a header line is malformed"
    } else if message.starts_with("invalid content-length") {
        "Content-Length is invalid or given twice with different values"
    } else if message.contains("transfer-encoding") {
        "Transfer-Encoding does not end in chunked, or is sent on HTTP/1.0"
    } else if message.starts_with("invalid HTTP method") {
        "the method is not a token"
    } else if message.starts_with("invalid HTTP version") {
        "the HTTP version is not HTTP/1.0 or HTTP/1.1"
    } else {
        "the request head is malformed"
    }
}

/// Puts the connection's addresses (and [`Https`] on TLS) into every request.
#[derive(Clone)]
struct AddAddrs<S> {
    inner: S,
    remote: SocketAddr,
    local: SocketAddr,
    https: bool,
}

impl<S, B> Service<Request<B>> for AddAddrs<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if req.extensions().is_empty() {
            // The room of a finished request's (see `crate::recycled`).
            if let Some(spare) = crate::recycled::extensions() {
                *req.extensions_mut() = spare;
            }
        }
        req.extensions_mut().insert(RemoteAddr(self.remote));
        req.extensions_mut().insert(LocalAddr(self.local));
        if self.https {
            req.extensions_mut().insert(Https);
        }
        self.inner.call(req)
    }
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
