//! Serve WSGI-shaped legacy applications as a [`tower`] `Service` over hyper.
//!
//! Code ported from Python keeps its WSGI shape: an [`Environ`], a
//! [`StartResponse`] that returns a [`Writer`], and an iterable [`Body`] with
//! `close()`. [`WsgiService`] runs it on a bounded thread pool and applies
//! Werkzeug's `run_wsgi` response rules to the hyper response, correctly
//! where Werkzeug and hyper each get them wrong: exact `Content-Length`
//! framing, no body bytes for HEAD, 204 and 304, no 1xx final statuses, no
//! header injection, truncation the client can see, `close()` exactly once.
//!
//! [`tower`]: https://docs.rs/tower
//!
//! # Example
//!
//! ```no_run
//! use tower_wsgi::{Body, BoxError, Environ, StartResponse};
//!
//! // def hello(environ, start_response):
//! //     start_response("200 OK", [("Content-Type", "text/plain")])
//! //     return [b"Hello, " + environ["PATH_INFO"].encode("latin-1")]
//! fn hello(environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
//!     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
//!     Ok(format!("Hello, {}", environ.path_info()).into())
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     tower_wsgi::serve("127.0.0.1:8000", hello).await
//! }
//! ```
//!
//! The service is an ordinary tower service, so it can be called in-process:
//!
//! ```
//! use http_body_util::{BodyExt, Empty};
//! use tower::ServiceExt;
//! use tower_wsgi::{Body, BoxError, Environ, StartResponse, WsgiService};
//!
//! fn stream(_environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
//!     let write = start_response.start("200 OK", [("Content-Type", "text/plain")])?;
//!     write.write("written, ")?;
//!     Ok(Body::from_chunks(["then ", "iterated"]))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let request = http::Request::get("/").body(Empty::<bytes::Bytes>::new()).unwrap();
//! let response = WsgiService::new(stream).oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()["connection"], "close"); // no Content-Length: the seed's rule
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(body, "written, then iterated");
//! # }
//! ```
//!
//! # axum
//!
//! With the cargo feature `axum`, [`WsgiService`] mounts under axum 0.8's
//! `Router::route_service`, `nest_service` and `fallback_service` (also in
//! nested routers), so a legacy app can be ported one route at a time.
//! Under a nest, `SCRIPT_NAME` is the mount point and `PATH_INFO` the rest,
//! taken from the URI the client sent (axum's `OriginalUri`) and the nest
//! pattern (`NestedPath`): `/app` gives `PATH_INFO` `""`, `/app/` gives `/`,
//! `/app//x` gives `//x`, and `/api/{version}` takes the version into
//! `SCRIPT_NAME`. `REMOTE_ADDR` and `REMOTE_PORT` come from
//! `ConnectInfo<SocketAddr>` when [`RemoteAddr`] is absent
//! (`into_make_service_with_connect_info::<SocketAddr>()`).
//! `examples/axum_mount.rs` shows the whole migration shape.
//!
#![cfg_attr(feature = "axum", doc = "```")]
#![cfg_attr(not(feature = "axum"), doc = "```ignore")]
//! use axum::{routing::get, Router};
//! use tower_wsgi::{Body, BoxError, Environ, StartResponse, WsgiService};
//!
//! fn legacy(environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
//!     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
//!     Ok(format!("{} + {}", environ.script_name(), environ.path_info()).into())
//! }
//!
//! let legacy = WsgiService::new(legacy);
//! let app: Router = Router::new()
//!     .route("/health", get(|| async { "ok" })) // already ported
//!     .nest_service("/legacy", legacy.clone()) // SCRIPT_NAME=/legacy
//!     .fallback_service(legacy); // everything else, SCRIPT_NAME empty
//! ```
//!
//! # tower middleware
//!
//! [`WsgiService`] is a plain tower service, so tower and tower-http layers
//! stack on it: `TraceLayer`, `CompressionLayer` (streamed bodies without
//! `Content-Length` compress too), `RequestBodyLimitLayer`, `TimeoutLayer`
//! (on timeout the application's next `write` fails and its body is
//! closed), `ConcurrencyLimit` and `LoadShed`. `examples/tower_stack.rs`
//! shows such a stack.
//!
//! # The rules
//!
//! Every rule of the project's rule book holds on HTTP/1.0, 1.1 and 2:
//!
//! - **Connection.** Without `Content-Length` (and not HEAD, 204 or 304) an
//!   HTTP/1 response carries `Connection: close`, as Werkzeug does;
//!   [`ConnectionPolicy::KeepAliveChunked`] keeps HTTP/1.1 connections open
//!   with chunked framing instead.
//! - **Server and Date** are added when the application set none.
//! - **Status.** `"NNN reason"` or `"NNN"`; the application's reason phrase goes
//!   out on HTTP/1. An invalid or 1xx status is a 500, cause logged.
//! - **Headers** must be tokens with values free of CR, LF and NUL; hop-by-hop
//!   headers are an application error ([`HopByHop`]).
//! - **HEAD, 204, 304** never send body bytes; the body is closed unread.
//! - **Content-Length is enforced**: never a byte past it (the connection then
//!   ends), and a short body aborts the response so the client sees it.
//! - **Headers go out late**, with the first non-empty chunk, so `exc_info`
//!   can still replace them.
//! - **Errors** before the headers are a 500 with `Content-Length`; after, the
//!   response is aborted (an unterminated chunked body, or a reset).
//!
//! # Middleware
//!
//! WSGI middleware is an app that calls another app, and ports as one: an
//! [`App`] generic over the app it wraps, changing the environ, wrapping
//! `start_response` ([`StartResponse::map_head`]) or the body.
//! [`Dispatcher`] mounts several apps by path prefix, as Werkzeug's
//! `DispatcherMiddleware` does. A [`Middleware`] receives the app it wraps
//! as [`Next`], and [`WsgiMiddlewareLayer`] puts it in front of any tower
//! service, an axum `Router` included: the environ it passes on becomes the
//! inner request, the inner response comes back through `start_response`,
//! and the rules are applied once, at the edge.
//!
//! # Differences from Werkzeug
//!
//! The crate ports Werkzeug 1.0.1's `run_wsgi`, and a differential test
//! (`tests/conformance.rs`) holds it to Werkzeug's answers request for request.
//! Where Werkzeug puts wrong bytes on the wire, or the project's rule book
//! decides otherwise, the crate deliberately differs:
//!
//! | case | Werkzeug 1.0.1 sends | tower-wsgi sends |
//! |---|---|---|
//! | `HEAD` | the body after the headers, read by a keep-alive client as the next response | no body; the app's `Content-Length` kept |
//! | 204 / 304 with a body | the body bytes, breaking keep-alive | no body (and no `Content-Length` on 204); the connection stays usable |
//! | body longer than `Content-Length` | every byte: the surplus is parsed as the next response | the declared bytes only, then the connection ends; logged |
//! | body shorter than `Content-Length` | the short body; the client waits for bytes that never come | the response is aborted (the client sees the cut), or a 500 if nothing was sent; logged |
//! | status `abc`, `99 X`, `1000 X` | nothing, and the connection drops | 500, the cause logged |
//! | 1xx final status (`103 Early Hints`) | the 1xx as if final; the client hangs | 500, the cause logged (hyper has no server API for 1xx) |
//! | `Expect: 100-continue` | `100 Continue` twice (stdlib and Werkzeug), before the app runs | one `100 Continue`, when the app first reads `wsgi.input`; none if it never reads |
//! | failure after the headers | a close-delimited body cut short: an HTTP/1.1 client that saw `Connection: close` cannot tell | an unterminated chunked body (or an incomplete `Content-Length` body) and a closed connection |
//! | CR or LF in a header value | the value verbatim: header injection | 500, the header named in the log |
//! | hop-by-hop header from the app | passed through (`Transfer-Encoding` breaks the framing) | 500 by default ([`HopByHop`]) |
//! | unread request body on a keep-alive connection | parsed as the next request | drained if already received, else the connection closes: never a request |
//! | `Cookie` sent as several lines (HTTP/2 crumbs) | `HTTP_COOKIE` joined with `,` | joined with `; ` |
//! | request header names with `_` | merged with their `-` twin (`X_User` spoofs `X-User`) | dropped ([`Builder::keep_underscore_headers`] keeps them) |
//! | `PATH_INFO` with invalid UTF-8 (`%FF`) | U+FFFD's UTF-8 bytes: lossy | the byte itself (`\u{ff}`): lossless, as PEP 3333 and gunicorn |
//! | `//x` in the path | collapsed to `/x` by Python 3.11's `http.server` | kept: `PATH_INFO` is `//x` |
//! | raw (unescaped) non-ASCII bytes in the request target | decoded twice: `?q=\xc3\xa9` gives `QUERY_STRING` `q=Ã\x83Â©` | one char per byte, lossless (`q=Ã©`); raw bytes that are not UTF-8 are rejected by hyper with 400 |
//! | interleaved repeated headers (`A`, `B`, `A`) | in the order given | grouped by name (`A`, `A`, `B`): hyper writes a `HeaderMap`. RFC 9110 section 5.3 makes only the order of same-name lines significant, and that is kept |
//! | no `Content-Length` | `Connection: close`, close-delimited body | `Connection: close` with a chunked body on HTTP/1.1 (the end is visible); close-delimited on HTTP/1.0 |
//! | `Server` | `Werkzeug/1.0.1 Python/3.x` | `tower-wsgi/VERSION`, configurable ([`Builder::server_header`]) |
//! | header name case | as the app wrote it | lowercase (hyper); names are case-insensitive |
//!
//! # Behind a proxy
//!
//! [`ProxyFix`] wraps an application like Werkzeug's `ProxyFix`: the client's
//! address, scheme, host and prefix come from `X-Forwarded-*` and `Forwarded`
//! headers, each believed for a configured number of proxy hops and ignored
//! by default. See the [`proxy_fix`] module.
//!
//! # Testing
//!
//! [`test_client::TestClient`] calls a service in-process, like
//! `werkzeug.test.Client`: every rule applies, no socket is opened, and it
//! works in `#[tokio::test]`s and plain `#[test]`s alike.
//!
//! # HTTP/2 and TLS
//!
//! [`Server`] speaks HTTP/1 and HTTP/2 on the same port (h2c with prior
//! knowledge), and the rules above hold on both. With the `tls` feature
//! (rustls, ring provider), `Server::tls` with a `TlsConfig`, or
//! `serve_tls` with two PEM files, serves TLS only, HTTP/2 or HTTP/1.1
//! chosen by ALPN; requests that came over TLS carry the [`Https`] extension
//! and see `wsgi.url_scheme` `https`.
//!
//! # Dispatch
//!
//! Applications run on a bounded pool of threads, since legacy code blocks:
//! a thread per core starts at once, more only when queued requests stop
//! starting (every thread blocked), up to [`Builder::max_threads`]; a full
//! pool and queue answer 503. [`Builder::inline`] runs applications that
//! never block on the async worker instead, with no hand-off.
//!
//! # Python apps
//!
//! With the cargo feature `python`, `python::PyApp` hosts the real Python
//! WSGI application in-process (Flask, Django, any PEP 3333 callable), as an
//! [`App`] like any other, so the rules above hold for its responses too.
//! The `tower_wsgi::python` module says how the interpreter, `libpython` and
//! the application's packages (`PYTHONPATH`, virtualenvs) are found at build
//! and run time, and which thread settings a Python app needs.
//!
//! # Observability
//!
//! Each request runs in a `tracing` span named `wsgi` with `method` and `uri`;
//! `status`, `bytes_sent` and `duration_ms` are recorded on it as the
//! response ends, with a `DEBUG` event "response sent", a `WARN` event
//! "response aborted" naming the cause chain, or an `INFO` event when the
//! client went away first. Application errors are logged with their cause
//! chain, and `wsgi.errors` writes go to the target `tower_wsgi::errors`.
//!
//! # Cancel safety
//!
//! When the client goes away, hyper drops the [`ResponseFuture`] or the
//! [`ResponseBody`]. The application's next [`Writer::write`] then fails with
//! [`ErrorKind::ClientDisconnected`], iteration stops, the body's `close()`
//! runs, and its thread returns to the pool. An application busy computing
//! is not interrupted: the disconnect is seen at its next write or chunk.
//!
//! # Panics
//!
//! Panics in the application (in the call, the iterator or `close()`) are
//! caught and treated as errors; they need `panic = "unwind"` (the default).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod app;
#[cfg(feature = "axum")]
mod axum;
mod body;
mod config;
mod dispatch;
mod dispatcher;
mod environ;
mod error;
mod errors;
mod input;
mod middleware;
mod pool;
/// The porting guide: WSGI idioms side by side with their tower-wsgi port.
///
#[doc = include_str!("../docs/porting.md")]
pub mod porting_guide {}
pub mod proxy_fix;
#[cfg(feature = "python")]
#[cfg_attr(docsrs, doc(cfg(feature = "python")))]
pub mod python;
mod response;
mod serve;
mod service;
mod start_response;
pub mod test_client;
#[cfg(feature = "tls")]
mod tls;

pub use app::{app_fn, App, AppFn};
pub use body::{Body, Iterable};
pub use config::{Builder, ConnectionPolicy, HopByHop};
pub use dispatcher::Dispatcher;
pub use environ::{Environ, Https, Iter, LocalAddr, RemoteAddr};
pub use error::{BoxError, Error, ErrorKind};
pub use errors::Errors;
pub use input::{Input, InputBody};
pub use middleware::{
    middleware_fn, Middleware, MiddlewareApp, MiddlewareFn, Next, WsgiMiddleware,
    WsgiMiddlewareLayer,
};
pub use proxy_fix::{ProxyFix, ProxyFixOrig};
pub use response::{ResponseBody, ResponseFuture};
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use serve::serve_tls;
pub use serve::{serve, Server};
pub use service::WsgiService;
pub use start_response::{StartResponse, Writer};
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::TlsConfig;

/// Internals for the crate's micro-benchmarks (`benches/micro.rs`); not an API.
#[cfg(feature = "__bench")]
#[doc(hidden)]
pub mod __bench {
    use crate::config::Config;
    use crate::environ;
    use crate::response::head::{self, RequestFacts};
    use crate::{Environ, Input};

    /// The environ of a request, as the service builds it with the default options.
    pub fn environ(parts: http::request::Parts) -> Environ {
        let options = std::sync::Arc::new(Config::default().environ_options());
        environ::build(parts, Input::from_bytes(bytes::Bytes::new()), &options)
            .unwrap_or_else(|_| unreachable!("no script name is configured"))
    }

    /// `start_response`'s checks and the head they produce (RULES.md 1 to 6).
    pub fn prepare_head(status: &str, headers: &[(&str, &str)]) -> bool {
        let facts = RequestFacts {
            is_head: false,
            version: http::Version::HTTP_11,
        };
        head::prepare(status, headers.iter().copied(), facts, &Config::default()).is_ok()
    }
}
