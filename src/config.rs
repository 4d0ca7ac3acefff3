//! Options for [`WsgiService`](crate::WsgiService), set through [`Builder`].

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;

use crate::app::App;
use crate::environ::EnvironOptions;
use crate::service::WsgiService;

/// What happens to the connection after a response whose length the
/// application did not declare (RULES.md 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionPolicy {
    /// Werkzeug's rule (the default): on HTTP/1 the response carries
    /// `Connection: close` and the connection closes after it.
    #[default]
    CloseWithoutLength,
    /// gunicorn's rule: on HTTP/1.1 the body is chunked and the connection
    /// stays open. HTTP/1.0 has no chunking, so it still closes there.
    KeepAliveChunked,
}

/// What happens to a hop-by-hop header (`Connection`, `Keep-Alive`,
/// `Proxy-Connection`, `Transfer-Encoding`, `Upgrade`, `TE`, `Trailer`) set by
/// the application (RULES.md 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HopByHop {
    /// A fatal application error, as PEP 3333 says (the default): 500.
    #[default]
    Reject,
    /// The header is dropped with a warning and the response goes on.
    Drop,
}

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) connection_policy: ConnectionPolicy,
    pub(crate) server: Option<HeaderValue>,
    pub(crate) server_software: String,
    pub(crate) hop_by_hop: HopByHop,
    pub(crate) passthrough_errors: bool,
    pub(crate) keep_underscore_headers: bool,
    pub(crate) max_request_body: Option<u64>,
    pub(crate) script_name: String,
    pub(crate) url_scheme: &'static str,
    /// The environ's share of the above, made once per service.
    pub(crate) environ: Arc<EnvironOptions>,
    pub(crate) max_threads: usize,
    pub(crate) max_queue: usize,
    pub(crate) response_buffer: usize,
    pub(crate) inline: bool,
}

/// The default `Server` token: `tower-wsgi/VERSION`.
const DEFAULT_SERVER: &str = concat!("tower-wsgi/", env!("CARGO_PKG_VERSION"));

impl Default for Config {
    fn default() -> Self {
        let mut config = Self {
            connection_policy: ConnectionPolicy::default(),
            server: Some(HeaderValue::from_static(DEFAULT_SERVER)),
            server_software: DEFAULT_SERVER.to_owned(),
            hop_by_hop: HopByHop::default(),
            passthrough_errors: false,
            keep_underscore_headers: false,
            max_request_body: None,
            script_name: String::new(),
            url_scheme: "http",
            environ: Arc::default(),
            max_threads: 64,
            max_queue: 256,
            response_buffer: 4,
            inline: false,
        };
        config.environ = Arc::new(config.environ_options());
        config
    }
}

impl Config {
    pub(crate) fn environ_options(&self) -> EnvironOptions {
        EnvironOptions {
            script_name: self.script_name.clone(),
            https: self.url_scheme == "https",
            server_software: self.server_software.clone(),
            keep_underscore_headers: self.keep_underscore_headers,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("connection_policy", &self.connection_policy)
            .field("server", &self.server)
            .field("hop_by_hop", &self.hop_by_hop)
            .field("passthrough_errors", &self.passthrough_errors)
            .field("keep_underscore_headers", &self.keep_underscore_headers)
            .field("max_request_body", &self.max_request_body)
            .field("script_name", &self.script_name)
            .field("url_scheme", &self.url_scheme)
            .field("max_threads", &self.max_threads)
            .field("max_queue", &self.max_queue)
            .field("response_buffer", &self.response_buffer)
            .field("inline", &self.inline)
            .finish()
    }
}

/// Builds a [`WsgiService`] with options other than the defaults.
///
/// ```
/// use tower_wsgi::{Body, BoxError, Builder, ConnectionPolicy, Environ, StartResponse};
///
/// fn app(_environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
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
    config: Config,
}

impl Builder {
    /// A builder with the default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// What happens after a response without `Content-Length` (default:
    /// [`ConnectionPolicy::CloseWithoutLength`], Werkzeug's rule).
    #[must_use]
    pub fn connection_policy(mut self, policy: ConnectionPolicy) -> Self {
        self.config.connection_policy = policy;
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
        self.config.server =
            token.map(|t| HeaderValue::from_str(t).expect("invalid Server header token"));
        if let Some(token) = token {
            token.clone_into(&mut self.config.server_software);
        }
        self
    }

    /// What to do with hop-by-hop headers from the application (default:
    /// [`HopByHop::Reject`]).
    #[must_use]
    pub fn hop_by_hop(mut self, policy: HopByHop) -> Self {
        self.config.hop_by_hop = policy;
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
        self.config.passthrough_errors = enabled;
        self
    }

    /// Keep request headers whose names contain `_` (default: dropped, the
    /// spoofing guard of current Werkzeug and gunicorn: `X_User` would
    /// otherwise collide with `X-User` as `HTTP_X_USER`).
    #[must_use]
    pub fn keep_underscore_headers(mut self, keep: bool) -> Self {
        self.config.keep_underscore_headers = keep;
        self
    }

    /// The largest request body the application may read, in bytes (default:
    /// no limit; bodies stream, so none is ever buffered whole). A declared
    /// `Content-Length` above it is answered 413 without running the
    /// application; a chunked body that grows past it makes `wsgi.input`
    /// fail, and the response is 413 unless the headers already went out.
    #[must_use]
    pub fn max_request_body(mut self, bytes: u64) -> Self {
        self.config.max_request_body = Some(bytes);
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
        prefix
            .trim_end_matches('/')
            .clone_into(&mut self.config.script_name);
        self
    }

    /// `wsgi.url_scheme` for every request: `true` gives `https` (set it when
    /// TLS ends in front of this service).
    #[must_use]
    pub fn https(mut self, https: bool) -> Self {
        self.config.url_scheme = if https { "https" } else { "http" };
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
        self.config.max_threads = threads;
        self
    }

    /// How many requests may wait for a free thread (default 256). Past that,
    /// requests are answered 503 with `Retry-After`.
    #[must_use]
    pub fn max_queue(mut self, requests: usize) -> Self {
        self.config.max_queue = requests;
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
        self.config.response_buffer = chunks;
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
    /// use tower_wsgi::{Body, BoxError, Builder, Environ, StartResponse};
    ///
    /// fn hello(_environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
    ///     start_response.start("200 OK", [("Content-Length", "5")])?;
    ///     Ok("hello".into())
    /// }
    ///
    /// let service = Builder::new().inline(true).build(hello);
    /// # drop(service);
    /// ```
    #[must_use]
    pub fn inline(mut self, inline: bool) -> Self {
        self.config.inline = inline;
        self
    }

    /// The service, hosting `app` with these options.
    ///
    /// # Panics
    ///
    /// With [`inline`](Builder::inline) on, if `app` must run on the pool's
    /// threads only ([`App::allows_inline`] is `false`).
    pub fn build<A: App>(&self, app: A) -> WsgiService<A> {
        WsgiService::with_config(app, self.config.clone())
    }
}
