//! [`Builder`]: a [`WsgiService`] with options other than the defaults.

use std::num::NonZeroUsize;
use std::time::Duration;

use http::HeaderValue;

use super::pool::{ThreadBody, ThreadPool};
use super::WsgiService;
use crate::app::App;
use crate::environ::EnvironOptions;
use crate::latin1;
use crate::response::{ConnectionPolicy, HeadRules, HopByHop, ResponseOptions, DEFAULT_SERVER};

/// The options as set; what each part of the crate needs is derived from
/// them once, when a service is built.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    connection_policy: ConnectionPolicy,
    /// `SERVER_SOFTWARE`, and the `Server` header when `send_server` is set.
    server_token: HeaderValue,
    send_server: bool,
    hop_by_hop: HopByHop,
    passthrough_errors: bool,
    keep_underscore_headers: bool,
    pub(crate) max_request_body: Option<u64>,
    /// Percent-decoded, one char per byte, no trailing `/`.
    script_name: String,
    https: bool,
    max_threads: usize,
    max_queue: usize,
    idle_thread_timeout: Duration,
    /// Replaces a pool of the service's own, set up by the three above.
    shared_pool: Option<ThreadPool>,
    response_buffer: usize,
    pub(crate) inline: bool,
    pub(crate) join_edge: bool,
    pub(crate) lenient_requests: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            connection_policy: ConnectionPolicy::default(),
            server_token: HeaderValue::from_static(DEFAULT_SERVER),
            send_server: true,
            hop_by_hop: HopByHop::default(),
            passthrough_errors: false,
            keep_underscore_headers: false,
            max_request_body: None,
            script_name: String::new(),
            https: false,
            max_threads: 64,
            max_queue: 256,
            idle_thread_timeout: super::pool::IDLE_TIMEOUT,
            shared_pool: None,
            response_buffer: 4,
            inline: false,
            join_edge: true,
            lenient_requests: false,
        }
    }
}

impl Options {
    pub(crate) fn environ(&self) -> EnvironOptions {
        EnvironOptions {
            script_name: self.script_name.clone(),
            https: self.https,
            server_software: latin1::decode(self.server_token.as_bytes()),
            keep_underscore_headers: self.keep_underscore_headers,
        }
    }

    pub(crate) fn response(&self) -> ResponseOptions {
        ResponseOptions {
            head: HeadRules {
                connection_policy: self.connection_policy,
                server: self.send_server.then(|| self.server_token.clone()),
                hop_by_hop: self.hop_by_hop,
            },
            passthrough_errors: self.passthrough_errors,
            response_buffer: self.response_buffer,
        }
    }

    /// The shared pool, or a pool of the service's own whose threads run
    /// inside `thread_body`, for an app that computes at most `parallelism`
    /// requests at once.
    pub(crate) fn pool(
        &self,
        thread_body: ThreadBody,
        parallelism: Option<NonZeroUsize>,
    ) -> ThreadPool {
        match &self.shared_pool {
            Some(pool) => pool.clone(),
            None => ThreadPool::with_thread_body(
                self.max_threads,
                self.max_queue,
                self.idle_thread_timeout,
                Some(thread_body),
                parallelism,
            ),
        }
    }
}

/// Builds a [`WsgiService`] with options other than the defaults.
///
/// ```
/// use tower_wsgi::{AppBody, BoxError, Builder, ConnectionPolicy, Environ, StartResponse};
///
/// fn app(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
///     Ok("hello".into())
/// }
///
/// let service = Builder::new()
///     .connection_policy(ConnectionPolicy::KeepAliveChunked)
///     .server_header(Some("legacy-app"))
///     .max_request_body(10 * 1024 * 1024)
///     .max_threads(16)
///     .build(app);
/// # drop(service);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    options: Options,
}

impl Builder {
    /// A builder with the default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// What happens after a response without `Content-Length` (default:
    /// [`ConnectionPolicy::CloseWithoutLength`], Werkzeug's rule).
    ///
    /// The default costs a new connection per response of the most common
    /// WSGI shape, `return [body]` without `Content-Length`: the client
    /// reconnects (and with TLS, handshakes) every time.
    /// [`ConnectionPolicy::KeepAliveChunked`] (gunicorn's rule) sends such
    /// bodies chunked on HTTP/1.1 and keeps the connection;
    /// [`ConnectionPolicy::ComputeLength`] (waitress's) also gives a body of
    /// one chunk its `Content-Length`. Declaring `Content-Length` keeps the
    /// connection under any policy.
    ///
    /// Only the outermost edge decides, since the client's connection is
    /// its: behind a [`MiddlewareLayer`](crate::middleware::MiddlewareLayer)
    /// the inner services answer through the edge's rules (see
    /// [`join_edge`](Builder::join_edge)), or, as edges of their own, have
    /// their `Connection` header dropped as hop-by-hop, so the policy of the
    /// builder given to
    /// [`MiddlewareLayer::with_builder`](crate::middleware::MiddlewareLayer::with_builder)
    /// applies to every route behind it. Services mounted side by side (in
    /// an axum `Router`) are each an edge: build them from one `Builder`,
    /// cloned.
    ///
    /// ```
    /// use tower_wsgi::{AppBody, BoxError, Builder, ConnectionPolicy, Environ, StartResponse};
    ///
    /// fn app(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    ///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
    ///     Ok("no length".into()) // chunked, and the connection stays open
    /// }
    ///
    /// let edge = Builder::new().connection_policy(ConnectionPolicy::KeepAliveChunked);
    /// let service = edge.clone().build(app);
    /// # drop(service);
    /// ```
    #[must_use]
    pub fn connection_policy(mut self, policy: ConnectionPolicy) -> Self {
        self.options.connection_policy = policy;
        self
    }

    /// The `Server` header added when the application set none
    /// (default `tower-wsgi/VERSION`); `None` adds no `Server` header.
    ///
    /// # Panics
    ///
    /// If the token holds characters a header value cannot (control characters).
    #[must_use]
    pub fn server_header(mut self, token: Option<&str>) -> Self {
        self.options.send_server = token.is_some();
        if let Some(token) = token {
            self.options.server_token =
                HeaderValue::from_str(token).expect("invalid Server header token");
        }
        self
    }

    /// What to do with hop-by-hop headers from the application (default:
    /// [`HopByHop::Reject`]).
    #[must_use]
    pub fn hop_by_hop(mut self, policy: HopByHop) -> Self {
        self.options.hop_by_hop = policy;
        self
    }

    /// Werkzeug's `passthrough_errors`, for tests and debugging (default off).
    ///
    /// An application error or panic before the headers went out is not
    /// turned into a 500: it is raised again in the task that awaits the
    /// response future (as a panic carrying the error chain, or the
    /// original panic), so a test sees the real failure. Under a server
    /// this drops the connection without a response: never use it in
    /// production.
    #[must_use]
    pub fn passthrough_errors(mut self, enabled: bool) -> Self {
        self.options.passthrough_errors = enabled;
        self
    }

    /// Keep request headers whose names contain `_` (default: dropped, the
    /// spoofing guard of current Werkzeug and gunicorn: `X_User` would
    /// otherwise collide with `X-User` as `HTTP_X_USER`).
    #[must_use]
    pub fn keep_underscore_headers(mut self, keep: bool) -> Self {
        self.options.keep_underscore_headers = keep;
        self
    }

    /// The largest request body the application may read, in bytes (default:
    /// no limit; bodies stream, so none is ever buffered whole). A declared
    /// `Content-Length` above it is answered 413 without running the
    /// application; a chunked body that grows past it makes `wsgi.input`
    /// fail, and the response is 413 unless the headers already went out.
    #[must_use]
    pub fn max_request_body(mut self, bytes: u64) -> Self {
        self.options.max_request_body = Some(bytes);
        self
    }

    /// Mounts the application under `prefix`: `SCRIPT_NAME` is the prefix,
    /// `PATH_INFO` the rest; requests outside it are answered 404.
    /// A trailing `/` is ignored; `""` or `"/"` mounts at the root.
    ///
    /// Under axum's `nest_service` (feature `axum`) the prefix is matched
    /// below the nest: nested at `/api` with script name `/v1`, `/api/v1/x`
    /// gives `SCRIPT_NAME=/api/v1`, `PATH_INFO=/x`, and `/api/x` is a 404.
    #[must_use]
    pub fn script_name(mut self, prefix: &str) -> Self {
        // Compared with the decoded path, so decoded the same way.
        self.options.script_name = latin1::percent_decode(prefix.trim_end_matches('/'));
        self
    }

    /// `wsgi.url_scheme` for every request: `true` gives `https` (set it when
    /// TLS ends in front of this service).
    #[must_use]
    pub fn https(mut self, https: bool) -> Self {
        self.options.https = https;
        self
    }

    /// The most application threads running at once (default 64).
    ///
    /// # Panics
    ///
    /// If `threads` is 0.
    #[must_use]
    pub fn max_threads(mut self, threads: usize) -> Self {
        assert!(threads > 0, "max_threads must be at least 1");
        self.options.max_threads = threads;
        self.options.shared_pool = None;
        self
    }

    /// How many requests may wait for a free thread (default 256). Past that,
    /// requests are answered 503 with `Retry-After`.
    #[must_use]
    pub fn max_queue(mut self, requests: usize) -> Self {
        self.options.max_queue = requests;
        self.options.shared_pool = None;
        self
    }

    /// How long an application thread waits for work before it ends
    /// (default 10 s). A thread's state ends with it: a hosted Python app's
    /// `threading.local` values, a connection kept per thread. Longer keeps
    /// them through quiet spells, at the cost of the idle threads' memory.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_wsgi::{AppBody, BoxError, Builder, Environ, StartResponse};
    ///
    /// fn app(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    ///     start_response.start("200 OK", [("Content-Length", "2")])?;
    ///     Ok("ok".into())
    /// }
    ///
    /// let service = Builder::new()
    ///     .idle_thread_timeout(Duration::from_secs(600))
    ///     .build(app);
    /// # drop(service);
    /// ```
    #[must_use]
    pub fn idle_thread_timeout(mut self, timeout: Duration) -> Self {
        self.options.idle_thread_timeout = timeout;
        self.options.shared_pool = None;
        self
    }

    /// How many response chunks may wait for a slow client before `write`
    /// and iteration block (default 4).
    ///
    /// # Panics
    ///
    /// If `chunks` is 0.
    #[must_use]
    pub fn response_buffer(mut self, chunks: usize) -> Self {
        assert!(chunks > 0, "response_buffer must be at least 1");
        self.options.response_buffer = chunks;
        self
    }

    /// Inline dispatch, for applications that never block (default off).
    ///
    /// The application runs on the async worker that received the request,
    /// with no hand-off to a pool thread: the fastest path, for code that
    /// only computes (no I/O, no sleeping, no locks held for long). A blocked
    /// worker stalls every connection it serves, so anything else belongs on
    /// the pool, the default. Even inline:
    ///
    /// - requests with a body run on the pool, since reading `wsgi.input` waits
    ///   for the client;
    /// - a body longer than the response buffer moves to a pool thread when the
    ///   buffer fills, so a slow client never blocks the worker;
    /// - `write` never waits: past the response buffer, before the
    ///   application returns, it fails with
    ///   [`ErrorKind::WouldBlock`](crate::ErrorKind::WouldBlock).
    ///
    /// ```
    /// use tower_wsgi::{AppBody, BoxError, Builder, Environ, StartResponse};
    ///
    /// fn hello(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    ///     start_response.start("200 OK", [("Content-Length", "5")])?;
    ///     Ok("hello".into())
    /// }
    ///
    /// let service = Builder::new().inline(true).build(hello);
    /// # drop(service);
    /// ```
    #[must_use]
    pub fn inline(mut self, inline: bool) -> Self {
        self.options.inline = inline;
        self
    }

    /// Behind a [`MiddlewareLayer`](crate::middleware::MiddlewareLayer),
    /// whether the app runs on the edge's thread (default on).
    ///
    /// When a middleware's `next` reaches this service (directly, or through
    /// an axum `Router` and tower layers), the middleware's thread waits for
    /// the answer anyway, so by default the app runs right there: one
    /// application thread for the whole request, one span, one set of
    /// events, and the response rules applied once, by the edge, to what
    /// finally goes out. The app's answer passes through whatever sits in
    /// between as an ordinary response, and an error of the app reaches the
    /// middleware as the `Err` of `next.call`, as a Python exception reaches
    /// the middleware that called the app. This service's request checks,
    /// body limit and environ options still apply; its response options
    /// (connection policy, `Server`, hop-by-hop policy, `passthrough_errors`)
    /// give way to the edge's. The app runs inside this service's `call`, so
    /// a timeout layer between the edge and this service cannot cut it
    /// short: put timeouts in front of the edge.
    ///
    /// Off, or when the app needs threads of its own
    /// ([`App::allows_inline`] is `false`, as for a Python app), or when a
    /// layer in between moved the call to a task of its own, the service is
    /// an edge of its own: its own pool thread (the middleware's waits for
    /// it), span and rules. Turn it off for an app that sends more than
    /// 1 MiB through `write()` before returning: on the edge's thread,
    /// nothing can send that on before the app returns, so past 1 MiB
    /// `write` fails with [`ErrorKind::WouldBlock`](crate::ErrorKind::WouldBlock).
    #[must_use]
    pub fn join_edge(mut self, join: bool) -> Self {
        self.options.join_edge = join;
        self
    }

    /// Runs the applications on `pool`, shared with every other service
    /// given the same pool, instead of a pool of the service's own
    /// (replacing [`max_threads`](Builder::max_threads),
    /// [`max_queue`](Builder::max_queue) and
    /// [`idle_thread_timeout`](Builder::idle_thread_timeout); setting any of
    /// them afterwards goes back to a pool of its own).
    #[must_use]
    pub fn thread_pool(mut self, pool: ThreadPool) -> Self {
        self.options.shared_pool = Some(pool);
        self
    }

    /// Werkzeug's leniency about request heads (default off).
    ///
    /// By default a request breaking one of RFC 9112's request rules is
    /// refused before the application runs, the cause logged: 400 for an
    /// HTTP/1.1 request without `Host`, more than one `Host` or
    /// `Content-Type` field, a `Host` that is not `host[:port]`, a target
    /// carrying userinfo (`http://user:pass@host/`), `*` with a method other
    /// than OPTIONS, or `host:port` with a method other than CONNECT. On,
    /// those requests reach the application as Werkzeug lets them (a target's
    /// userinfo still never reaches `HTTP_HOST`).
    ///
    /// `Transfer-Encoding` is checked either way, since it decides where the
    /// body ends: `chunked` must be applied exactly once, as the last coding
    /// (else 400), and no other coding is implemented (501).
    ///
    /// A missing `Host` is refused only on requests that came over a
    /// connection (a hyper `Incoming` body, or a client address from
    /// [`Server`](crate::server::Server), axum's `ConnectInfo` or the test client): an
    /// `http::Request` built in-process and called with `oneshot` needs none.
    #[must_use]
    pub fn lenient_requests(mut self, lenient: bool) -> Self {
        self.options.lenient_requests = lenient;
        self
    }

    /// The service, hosting `app` with these options.
    ///
    /// # Panics
    ///
    /// With [`inline`](Builder::inline) on, if `app` must run on the pool's
    /// threads only ([`App::allows_inline`] is `false`).
    pub fn build<A: App>(&self, app: A) -> WsgiService<A> {
        WsgiService::with_options(app, &self.options)
    }
}
