//! Serve WSGI-shaped legacy applications as a [`tower`] `Service` over hyper.
//!
//! Code ported from Python keeps its WSGI shape: an [`Environ`], a
//! [`StartResponse`] that returns a [`Writer`], and an iterable [`AppBody`]
//! with `close()`. [`WsgiService`] runs it on a bounded thread pool and
//! applies Werkzeug's `run_wsgi` response rules to the hyper response,
//! correctly where Werkzeug and hyper each get them wrong: exact
//! `Content-Length` framing, no body bytes for HEAD, 204 and 304, no 1xx
//! final statuses, no header injection, truncation the client can see,
//! `close()` exactly once.
//!
//! [`tower`]: https://docs.rs/tower
//! [`RemoteAddr`]: environ::RemoteAddr
//! [`Https`]: environ::Https
//! [`Dispatcher`]: middleware::Dispatcher
//! [`Middleware`]: middleware::Middleware
//! [`Next`]: middleware::Next
//! [`MiddlewareLayer`]: middleware::MiddlewareLayer
//! [`ProxyFix`]: middleware::ProxyFix
//! [`Server`]: server::Server
//!
//! # Example
//!
#![cfg_attr(feature = "server", doc = "```no_run")]
#![cfg_attr(not(feature = "server"), doc = "```ignore")]
//! use tower_wsgi::{AppBody, BoxError, Environ, StartResponse};
//!
//! // def hello(environ, start_response):
//! //     start_response("200 OK", [("Content-Type", "text/plain")])
//! //     return [b"Hello, " + environ["PATH_INFO"].encode("latin-1")]
//! fn hello(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
//!     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
//!     Ok([&b"Hello, "[..], &environ.path_info_bytes()].concat().into())
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     tower_wsgi::server::serve("127.0.0.1:8000", hello).await
//! }
//! ```
//!
//! The service is an ordinary tower service, so it can be called in-process:
//!
//! ```
//! use http_body_util::{BodyExt, Empty};
//! use tower::ServiceExt;
//! use tower_wsgi::{AppBody, BoxError, Environ, StartResponse, WsgiService};
//!
//! fn stream(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
//!     let write = start_response.start("200 OK", [("Content-Type", "text/plain")])?;
//!     write.write("written, ")?;
//!     Ok(AppBody::from_chunks(["then ", "iterated"]))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let request = http::Request::get("/").body(Empty::<bytes::Bytes>::new()).unwrap();
//! let response = WsgiService::new(stream).oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()["connection"], "close"); // no Content-Length: rule 1
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(body, "written, then iterated");
//! # }
//! ```
//!
//! # Modules
//!
//! The WSGI core is at the root: [`App`], [`AppBody`], [`Environ`],
//! [`StartResponse`], [`Writer`], and [`WsgiService`] with its [`Builder`].
//!
//! | module | what it holds |
//! |---|---|
//! | [`environ`] | the environ's parts: `wsgi.input` ([`environ::Input`]), `wsgi.errors` ([`environ::ErrorStream`]), and the request extensions it reads ([`environ::RemoteAddr`], [`environ::LocalAddr`], [`environ::Https`], [`environ::MountPoint`]) |
//! | [`middleware`] | ported WSGI middleware: [`middleware::Middleware`] and [`middleware::Next`], [`middleware::MiddlewareLayer`] in front of tower services, [`middleware::Dispatcher`], [`middleware::ProxyFix`] |
//! | `server` | feature `server`: the crate's own hyper server, with TLS under `tls` |
//! | `mount` | feature `axum`: mounting under axum's `nest_service` |
//! | `python` | feature `python`: hosting the Python app itself |
//! | [`util`] | `wsgiref.util`, cookies, conditional requests |
//! | `multipart` | feature `multipart`: uploads, as `cgi.FieldStorage` reads them |
//! | [`latin1`] | native strings and bytes, both ways |
//! | [`test_client`] | `werkzeug.test.Client`: requests through every rule, no socket |
//! | [`porting_guide`] | WSGI idioms beside their port |
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `server` | yes | `server::Server` and `server::serve`: hyper-util's auto builder, HTTP/1 and h2c, graceful shutdown. Not needed when axum or another server serves the service. |
//! | `axum` | no | `mount::AxumMount`: `SCRIPT_NAME`/`PATH_INFO` under axum 0.8's `nest_service`, `REMOTE_ADDR` from `ConnectInfo` |
//! | `tls` | no | `server::TlsConfig`, `Server::tls`, `server::serve_tls` (rustls, ring provider); implies `server` |
//! | `python` | no | `python::PyApp`: a Python WSGI application hosted in-process, under the same rules |
//! | `multipart` | no | `multipart::Multipart`: `multipart/form-data` read from the blocking `wsgi.input` |
//!
//! No feature changes what an environ holds: mounting under axum is
//! explicit (`mount::AxumMount`).
//!
//! The minimum supported Rust version is 1.82.
//!
//! # axum
//!
//! [`WsgiService`] mounts under axum 0.8's `Router::route_service`,
//! `nest_service` and `fallback_service` (also in nested routers), so a
//! legacy app can be ported one route at a time. Wrapped in
//! `mount::AxumMount` (feature `axum`), a nested service sees `SCRIPT_NAME`
//! as the mount point and `PATH_INFO` as the rest, taken from the URI the
//! client sent, and `REMOTE_ADDR` from `ConnectInfo<SocketAddr>`.
//!
#![cfg_attr(feature = "axum", doc = "```")]
#![cfg_attr(not(feature = "axum"), doc = "```ignore")]
//! use axum::{routing::get, Router};
//! use tower_wsgi::mount::AxumMount;
//! use tower_wsgi::{AppBody, BoxError, Environ, StartResponse, WsgiService};
//!
//! fn legacy(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
//!     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
//!     Ok(format!("{} + {}", environ.script_name(), environ.path_info()).into())
//! }
//!
//! let legacy = AxumMount::new(WsgiService::new(legacy));
//! let app: Router = Router::new()
//!     .route("/health", get(|| async { "ok" })) // already ported
//!     .nest_service("/legacy", legacy.clone()) // SCRIPT_NAME=/legacy
//!     .fallback_service(legacy); // everything else, SCRIPT_NAME empty
//! # drop(app);
//! ```
//!
//! # tower middleware
//!
//! [`WsgiService`] is a plain tower service, so tower and tower-http layers
//! stack on it: `TraceLayer`, `CompressionLayer` (streamed bodies without
//! `Content-Length` compress too), `RequestBodyLimitLayer`, `TimeoutLayer`
//! (on timeout the application's next `write` fails and its body is
//! closed), `ConcurrencyLimit` and `LoadShed`.
//!
//! The other way round, a ported WSGI middleware goes in front of a whole
//! router with `MiddlewareLayer::new(m).layer(router)`: it then runs before
//! routing (so a middleware that rewrites `PATH_INFO` re-routes), and the
//! rules are applied once, at that edge. `router.layer(...)` would instead
//! build one edge per route and method, after routing.
//!
//! # The rules
//!
//! Every rule holds on HTTP/1.0, 1.1 and 2. Tests are named after them
//! (`rule6_...`).
//!
//! **The response**
//!
//! 1. **Connection.** Without `Content-Length` (and not HEAD, 1xx, 204 or
//!    304) an HTTP/1 response carries `Connection: close` and the connection
//!    closes after it, as Werkzeug does;
//!    [`ConnectionPolicy::KeepAliveChunked`] keeps HTTP/1.1 connections open
//!    with chunked framing instead, and [`ConnectionPolicy::ComputeLength`]
//!    also gives a body of one chunk its `Content-Length`. HTTP/2 never gets
//!    a `Connection` header.
//! 2. **Server and Date** are added when the application set none, never
//!    doubled; the `Server` token is configurable ([`Builder::server_header`]).
//! 3. **Status.** `"NNN reason"` or `"NNN"`; the application's reason phrase
//!    goes out on HTTP/1. An unparsable, out-of-range or 1xx status is a 500,
//!    the cause logged.
//! 4. **Headers** must be tokens with values free of CR, LF and NUL; a bad
//!    header is a 500 naming it in the log. Hop-by-hop headers from the
//!    application are an error by default ([`HopByHop`]).
//! 5. **HEAD, 204, 304** never send body bytes. HEAD keeps the app's
//!    `Content-Length`, 204 never carries one, 304 may. The body is still
//!    closed.
//! 6. **Content-Length is enforced**: never a byte past it (the surplus is
//!    cut, logged, and the connection ends), and a short body aborts the
//!    response so the client sees it. An unparsable or contradictory value is
//!    a 500 before anything is sent.
//! 7. **Headers go out late**, with the first non-empty chunk (from `write` or
//!    the iterable) or the end of the body, so `exc_info` can still replace
//!    them.
//! 8. **start_response.** A second call without `exc_info` is an application
//!    error; with `exc_info` it replaces the head before the headers went out,
//!    and raises the error again after. [`Writer`] exists only once
//!    `start_response` was called.
//! 9. **Errors and panics** before the headers are a 500 with a short body
//!    and a `Content-Length`, the cause logged; after, the response is
//!    aborted (an unterminated chunked body, or a reset stream).
//!    [`Builder::passthrough_errors`] surfaces them to the caller instead.
//! 10. **close() exactly once** for every body an application returned, on
//!     every path; a failing `close()` is logged and spoils nothing already
//!     sent.
//! 11. **Client gone.** When hyper drops the response, the application's
//!     next `write` fails, iteration stops, `close()` runs, and its thread
//!     returns to the pool.
//!
//! **The environ**
//!
//! 12. PEP 3333's keys plus Werkzeug's extras (`REQUEST_URI`, `RAW_URI`,
//!     `REMOTE_PORT`): `PATH_INFO` percent-decoded with one char per byte,
//!     `QUERY_STRING` raw, `SERVER_PROTOCOL` the request's own version,
//!     repeated headers joined with `,` (`Cookie` with `; `), header names
//!     with `_` dropped unless [`Builder::keep_underscore_headers`].
//! 13. **wsgi.input** streams the request body with backpressure, ends at the
//!     body's end, turns a broken body into an I/O error, and answers 413 past
//!     [`Builder::max_request_body`]. `100 Continue` goes out on the first
//!     read, once, and never when the application does not read.
//! 14. An unread request body is never parsed as the next request.
//! 15. **Mounted** under a prefix ([`Builder::script_name`], a
//!     [`environ::MountPoint`] from a router), `SCRIPT_NAME` is the prefix and
//!     `PATH_INFO` the rest.
//!
//! **Running applications**
//!
//! 16. Applications run off the async workers on a bounded pool with bounded
//!     buffers both ways: a slow client never grows memory, and a flood gets
//!     back-pressure or a 503, not an unbounded queue. [`Builder::inline`]
//!     serves applications that never block at bare-hyper speed.
//!
//! **Requests refused before the application runs**
//!
//! 17. RFC 9112's request rules: an HTTP/1.1 request without `Host`, with
//!     more than one, or with one that is not `uri-host [ ":" port ]` is
//!     400; an absolute-form target's authority replaces `Host` and may not
//!     carry userinfo; `Transfer-Encoding` must end in `chunked` applied
//!     once (else 400) and name no other coding (501); a repeated
//!     `Content-Type` is 400; `*` is for OPTIONS and `host:port` for CONNECT
//!     only. Each refusal logs its cause ([`Builder::lenient_requests`]
//!     keeps Werkzeug's leniency, framing aside). An unread body whose rest
//!     has arrived, or arrives within a small bound, is drained so the next
//!     pipelined request is answered.
//!
//! A middleware may also own the `start_response` and `write` it hands on
//! ([`StartResponse::from_fn`], [`Writer::from_fn`]) to transform every
//! chunk, as PEP 3333's Latinator does ([`middleware::map_chunks`] in one
//! piece), or capture the whole answer to inspect or replace it
//! ([`middleware::Captured`], [`Next::call_captured`](middleware::Next::call_captured)).
//!
//! # Differences from Werkzeug
//!
//! The crate ports Werkzeug 1.0.1's `run_wsgi`, and a differential test holds
//! it to Werkzeug's answers request for request. Where Werkzeug puts wrong
//! bytes on the wire, the crate deliberately differs:
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
//! | unread request body on a keep-alive connection | parsed as the next request | drained when the rest arrives within 1 s and 1 MiB, so the next pipelined request is answered; else the connection closes: never a request |
//! | HTTP/1.1 request without `Host` | the app runs without `HTTP_HOST` | 400 before the app, the cause logged ([`Builder::lenient_requests`] lets it through) |
//! | two `Host` lines, or a `Host` that is not `host[:port]` (`a/b`, `a b`, `u@a`) | `HTTP_HOST` joined with `,` (`a,b`), or as given | 400 (lenient: as Werkzeug) |
//! | absolute-form target with userinfo (`http://user:pass@host/`) | `HTTP_HOST` `user:pass@host` | 400; even lenient, the userinfo never reaches `HTTP_HOST` |
//! | `Transfer-Encoding: chunked, chunked`, or a coding besides `chunked` (`identity, chunked`, `gzip, chunked`) | not dechunked: the app reads the raw chunked bytes | 400 for `chunked` not applied exactly once and last, 501 for another coding, connection closed; lenient or not |
//! | two `Content-Type` lines | the last one wins | 400 (lenient: the last one wins) |
//! | `GET *`, or `GET host:port` (asterisk-form without OPTIONS, authority-form without CONNECT) | the app runs | 400 (lenient: the app runs) |
//! | raw `"`, `<`, `>`, DEL in the query, or `<`, `>`, `` ` ``, DEL in the path | passed to the app | 400 before the app, the log naming the cause: the `http` crate's URI parser refuses them and has no option to accept them (hyperium/http issue 342); percent-encoded they pass |
//! | `#fragment` in the request target | kept in `REQUEST_URI` and `RAW_URI` | dropped: the `http` crate's URI keeps no fragment (`PATH_INFO` and `QUERY_STRING` match Werkzeug's) |
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
//! [`middleware::ProxyFix`] wraps an application like Werkzeug's `ProxyFix`:
//! the client's address, scheme, host and prefix come from `X-Forwarded-*`
//! and `Forwarded` headers, each believed for a configured number of proxy
//! hops and ignored by default.
//!
//! # Hostile clients
//!
//! Requests breaking RFC 9112's request rules are refused before the
//! application runs, with a status and a log line naming the cause (see
//! the table above and [`Builder::lenient_requests`]). The crate's
//! [`Server`](crate::server::Server) bounds
//! what a client can hold: open connections ([`Server::max_connections`](crate::server::Server::max_connections),
//! beyond which new ones wait in the listen backlog), the time to send a
//! request head ([`Server::header_read_timeout`](crate::server::Server::header_read_timeout))
//! and its size ([`Server::http1_max_header_size`](crate::server::Server::http1_max_header_size), 431 past it),
//! idle connections ([`Server::idle_timeout`](crate::server::Server::idle_timeout)), and on HTTP/2 the streams
//! per connection, the header list size and the reset streams that make a
//! rapid-reset flood ([`Server::http2_max_concurrent_streams`](crate::server::Server::http2_max_concurrent_streams) and the
//! methods after it).
//!
//! # Testing
//!
//! [`test_client::TestClient`] calls a service in-process, like
//! `werkzeug.test.Client`: every rule applies, no socket is opened, and it
//! works in `#[tokio::test]`s and plain `#[test]`s alike. It builds form
//! and multipart bodies, keeps cookies and can follow redirects.
//!
//! # Porting toolbox
//!
//! [`util`] has the `wsgiref.util` functions, Werkzeug's cookie parsing
//! and conditional requests; [`Environ::copy_with_buffered_input`] is
//! `environ.copy()` for sub-requests; [`AppBody::from_file`] is
//! `wsgi.file_wrapper`; with the `multipart` feature, `tower_wsgi::multipart` reads
//! uploads from `wsgi.input` as `cgi.FieldStorage` does. The
//! [porting guide](porting_guide) shows each beside its Python original.
//!
//! # HTTP/2 and TLS
//!
//! The crate's `server::Server` (feature `server`) speaks HTTP/1 and HTTP/2
//! on the same port (h2c with prior knowledge), and the rules hold on both.
//! With the `tls` feature (rustls, ring provider), `Server::tls` with a
//! `TlsConfig`, or `serve_tls` with two PEM files, serves TLS only, HTTP/2 or
//! HTTP/1.1 chosen by ALPN; requests that came over TLS carry the
//! [`environ::Https`] extension and see `wsgi.url_scheme` `https`.
//!
//! # Dispatch
//!
//! Applications run on a bounded pool of threads, since legacy code blocks:
//! a thread per core starts at once (fewer for an app that says it computes
//! fewer requests at once, [`App::parallelism`]: a hosted Python app under
//! its GIL computes one), more only when queued requests stop
//! starting (every thread blocked), up to [`Builder::max_threads`]; a full
//! pool and queue answer 503. Services built with the same [`ThreadPool`]
//! share one. [`Builder::inline`] runs applications that never block on the
//! async worker instead, with no hand-off.
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
//! Each request runs in a `DEBUG` span named `wsgi` with `method` and `uri`
//! (the level tower-http's `TraceLayer` gives its spans); `status`,
//! `bytes_sent` and `duration_ms` are recorded on it as the response ends,
//! with a `DEBUG` event "response sent", a `WARN` event "response aborted"
//! naming the cause chain, or an `INFO` event when the client went away
//! first. Application errors are logged at `ERROR` with their cause chain,
//! and `wsgi.errors` writes go to the target `tower_wsgi::errors`.
//!
//! Under the usual `INFO` filter a request that goes well costs nothing in
//! `tracing`: no span is created and nothing is formatted. The warnings and
//! errors still go out, without the span around them; to see every request
//! with its span, enable `DEBUG` for the crate (`RUST_LOG=info,tower_wsgi=debug`).
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
mod body;
pub mod environ;
mod error;
mod fnv;
mod headers;
pub mod latin1;
pub mod middleware;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod mount;
/// The porting guide: WSGI idioms side by side with their tower-wsgi port.
///
/// Its examples use every feature; built without them, only this line shows.
#[cfg_attr(
    all(feature = "server", feature = "axum"),
    doc = include_str!("../docs/porting.md")
)]
pub mod porting_guide {}
#[cfg(feature = "multipart")]
#[cfg_attr(docsrs, doc(cfg(feature = "multipart")))]
pub mod multipart;
mod poison;
#[cfg(feature = "python")]
#[cfg_attr(docsrs, doc(cfg(feature = "python")))]
pub mod python;
mod recycled;
mod response;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod server;
mod service;
pub mod test_client;
#[cfg(test)]
mod test_wakers;
pub mod util;

pub use app::{app_fn, App, AppFn, BoxApp};
pub use body::{AppBody, Iterable, VecInto};
pub use environ::Environ;
pub use error::{BoxError, Error, ErrorKind};
pub use response::{
    ConnectionPolicy, Header, HopByHop, ResponseBody, ResponseFuture, StartResponse, Writer,
};
pub use service::{Builder, ThreadPool, WsgiService};
