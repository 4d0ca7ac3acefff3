//! An in-process test client, like `werkzeug.test.Client`: build a request,
//! run it through the service, read status, headers and body. No socket.
//!
//! The request goes through the whole [`WsgiService`]: the environ is built,
//! the application runs on the pool, and every response rule applies, so a
//! test sees what hyper would be handed to put on the wire (`Connection:
//! close` without a `Content-Length`, no body for HEAD, 500 pages for
//! application errors, `Server` and `Date`, the application's reason phrase).
//! Only hyper's own framing is missing: the `Transfer-Encoding: chunked` it
//! adds on HTTP/1.1 and the status line itself.
//!
//! [`TestClient::new`] hosts an application with the default options;
//! [`TestClient::from_service`] takes a service from a
//! [`Builder`](crate::Builder), or any tower service stacked around one.
//!
//! # Async or blocking
//!
//! [`TestRequest::send`] is async, for `#[tokio::test]` (either flavour).
//! [`TestRequest::send_blocking`] waits on the calling thread and needs no
//! runtime, for plain `#[test]`s and doc tests, as Werkzeug's client does.
//! Both work because the application runs on the crate's own threads and
//! the service's channels do not depend on a runtime; a request body is
//! held in memory, so `wsgi.input` never waits for I/O. Call
//! `send_blocking` outside async code: inside a runtime it blocks that
//! runtime's thread, which deadlocks a stack whose layers need the runtime
//! (timers, spawned tasks).
//!
//! # Example
//!
//! ```
//! use tower_wsgi::test_client::TestClient;
//! use tower_wsgi::{AppBody, BoxError, Environ, StartResponse};
//!
//! fn app(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
//!     let write = start_response.start("201 Made It", [("Content-Type", "text/plain")])?;
//!     write.write(format!("{} {}", environ.request_method(), environ.query_string()))?;
//!     Ok(AppBody::empty())
//! }
//!
//! let client = TestClient::new(app);
//! let response = client.post("/items?draft=1").body("{}").send_blocking();
//! assert_eq!(response.status(), 201);
//! assert_eq!(response.reason(), "Made It");
//! assert_eq!(response.header("connection"), Some("close")); // no Content-Length
//! assert_eq!(response.text(), "POST draft=1");
//! ```
//!
//! In an async test:
//!
//! ```
//! # use tower_wsgi::test_client::TestClient;
//! # use tower_wsgi::{AppBody, BoxError, Environ, StartResponse};
//! # fn app(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
//! #     start_response.start("200 OK", [("Content-Length", "2")])?;
//! #     Ok("ok".into())
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let client = TestClient::new(app);
//! let response = client.head("/").send().await;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.header("content-length"), Some("2"));
//! assert!(response.body().is_empty()); // HEAD: never a body
//! # }
//! ```

use std::fmt;
use std::future::poll_fn;
use std::net::{Ipv4Addr, SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};
use http::{
    header, request, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version,
};
use http_body_util::{BodyExt, Full};
use tower_service::Service;

use crate::app::App;
use crate::error::BoxError;
use crate::service::WsgiService;

/// The client address requests carry unless told otherwise: `127.0.0.1`,
/// port 0 (`REMOTE_ADDR` and `REMOTE_PORT`).
pub const DEFAULT_REMOTE_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// Calls a service in-process; see the [module docs](crate::test_client).
///
/// Requests carry a `Host: localhost` header and a
/// [`RemoteAddr`](crate::environ::RemoteAddr) of [`DEFAULT_REMOTE_ADDR`] unless the
/// test sets others; a body gets a `Content-Length`.
#[derive(Clone)]
pub struct TestClient<S> {
    service: S,
    remote_addr: Option<SocketAddr>,
}

impl<A: App> TestClient<WsgiService<A>> {
    /// A client of `app` hosted with the default options.
    pub fn new(app: A) -> Self {
        Self::from_service(WsgiService::new(app))
    }
}

impl<S> TestClient<S> {
    /// A client of `service`: a [`WsgiService`] built with a
    /// [`Builder`](crate::Builder), or a tower stack around one.
    ///
    /// ```
    /// # use tower_wsgi::{app_fn, Builder};
    /// use tower_wsgi::test_client::TestClient;
    ///
    /// let app = app_fn(|environ, start_response| {
    ///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
    ///     Ok(format!("{}|{}", environ.script_name(), environ.path_info()).into())
    /// });
    /// let client = TestClient::from_service(Builder::new().script_name("/app").build(app));
    /// assert_eq!(client.get("/app/x").send_blocking().text(), "/app|/x");
    /// assert_eq!(client.get("/elsewhere").send_blocking().status(), 404);
    /// ```
    pub fn from_service(service: S) -> Self {
        Self {
            service,
            remote_addr: Some(DEFAULT_REMOTE_ADDR),
        }
    }

    /// The client address of every request (`None`: no
    /// [`RemoteAddr`](crate::environ::RemoteAddr), so no `REMOTE_ADDR`).
    #[must_use]
    pub fn remote_addr(mut self, addr: Option<SocketAddr>) -> Self {
        self.remote_addr = addr;
        self
    }

    /// The service.
    pub fn get_ref(&self) -> &S {
        &self.service
    }

    /// A request with any method; `target` is the path with its query
    /// (`/a?b=c`), or an absolute URL (`http://host/a`).
    pub fn request(&self, method: Method, target: &str) -> TestRequest<'_, S> {
        let mut request = Request::builder().method(method).uri(target);
        if let Some(addr) = self.remote_addr {
            request = request.extension(crate::environ::RemoteAddr(addr));
        }
        TestRequest {
            client: self,
            request,
            body: Bytes::new(),
        }
    }

    /// A `GET` request.
    pub fn get(&self, target: &str) -> TestRequest<'_, S> {
        self.request(Method::GET, target)
    }

    /// A `POST` request; set its body with [`TestRequest::body`].
    pub fn post(&self, target: &str) -> TestRequest<'_, S> {
        self.request(Method::POST, target)
    }

    /// A `HEAD` request.
    pub fn head(&self, target: &str) -> TestRequest<'_, S> {
        self.request(Method::HEAD, target)
    }
}

impl<S> fmt::Debug for TestClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("service", &std::any::type_name::<S>())
            .field("remote_addr", &self.remote_addr)
            .finish()
    }
}

/// A request being built by a [`TestClient`]; send it with
/// [`send`](TestRequest::send) or [`send_blocking`](TestRequest::send_blocking).
#[must_use = "a request does nothing until it is sent"]
pub struct TestRequest<'c, S> {
    client: &'c TestClient<S>,
    request: request::Builder,
    body: Bytes,
}

impl<S> TestRequest<'_, S> {
    /// Adds a header (repeat it for several fields of one name).
    pub fn header<V>(mut self, name: &str, value: V) -> Self
    where
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.request = self.request.header(name, value);
        self
    }

    /// The request body, sent with a `Content-Length`.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The HTTP version (default HTTP/1.1).
    pub fn version(mut self, version: Version) -> Self {
        self.request = self.request.version(version);
        self
    }

    /// The client address of this request.
    pub fn remote_addr(mut self, addr: SocketAddr) -> Self {
        self.request = self.request.extension(crate::environ::RemoteAddr(addr));
        self
    }

    /// A request extension, as a server or a layer would add
    /// ([`LocalAddr`](crate::environ::LocalAddr), say); the environ carries it.
    pub fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.request = self.request.extension(value);
        self
    }

    /// The `http::Request` as the service receives it.
    ///
    /// # Panics
    ///
    /// If the method, target or a header is invalid.
    pub fn into_request(self) -> Request<Full<Bytes>> {
        let mut request = self
            .request
            .body(Full::new(self.body.clone()))
            .unwrap_or_else(|error| panic!("invalid test request: {error}"));
        let headers = request.headers_mut();
        if !headers.contains_key(header::HOST) {
            headers.insert(header::HOST, HeaderValue::from_static("localhost"));
        }
        let has_body = !self.body.is_empty()
            || matches!(
                *request.method(),
                Method::POST | Method::PUT | Method::PATCH
            );
        let framed = request.headers().contains_key(header::CONTENT_LENGTH)
            || request.headers().contains_key(header::TRANSFER_ENCODING);
        if has_body && !framed {
            request
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(self.body.len()));
        }
        request
    }
}

impl<S, B> TestRequest<'_, S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: fmt::Debug,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    /// Sends the request and reads the whole response.
    ///
    /// # Panics
    ///
    /// If the request is invalid or the service returns an error (a
    /// [`WsgiService`] never does; with
    /// [`passthrough_errors`](crate::Builder::passthrough_errors) the
    /// application's own panic or error comes through here).
    pub async fn send(self) -> TestResponse {
        let mut service = self.client.service.clone();
        let request = self.into_request();
        let called = async {
            poll_fn(|cx| service.poll_ready(cx)).await?;
            service.call(request).await
        };
        let response = called
            .await
            .unwrap_or_else(|error| panic!("the service failed: {error:?}"));
        TestResponse::read(response).await
    }

    /// [`send`](TestRequest::send), waiting on this thread; no runtime needed.
    ///
    /// # Panics
    ///
    /// As [`send`](TestRequest::send).
    pub fn send_blocking(self) -> TestResponse {
        crate::environ::block_on(self.send())
    }
}

impl<S> fmt::Debug for TestRequest<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestRequest")
            .field("request", &self.request)
            .field("body", &self.body.len())
            .finish()
    }
}

/// A response read whole by a [`TestClient`].
pub struct TestResponse {
    status: StatusCode,
    reason: String,
    version: Version,
    headers: HeaderMap,
    extensions: http::Extensions,
    body: Bytes,
    body_error: Option<BoxError>,
}

impl TestResponse {
    async fn read<B>(response: Response<B>) -> Self
    where
        B: http_body::Body,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = response.into_parts();
        let reason = match parts.extensions.get::<hyper::ext::ReasonPhrase>() {
            Some(reason) => crate::latin1::decode(reason.as_bytes()),
            None => parts.status.canonical_reason().unwrap_or("").to_owned(),
        };
        let mut data = BytesMut::new();
        let mut body_error = None;
        let mut body = std::pin::pin!(body);
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Ok(chunk) = frame.into_data() {
                        data.put(chunk);
                    }
                }
                Err(error) => {
                    body_error = Some(error.into());
                    break;
                }
            }
        }
        Self {
            status: parts.status,
            reason,
            version: parts.version,
            headers: parts.headers,
            extensions: parts.extensions,
            body: data.freeze(),
            body_error,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reason phrase as it goes out on HTTP/1: the application's own
    /// (`"404 NOT FOUND"` gives `NOT FOUND`), else the standard one.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// `NNN reason`, WSGI's status string.
    pub fn status_line(&self) -> String {
        format!("{} {}", self.status.as_str(), self.reason)
    }

    /// The response version (HTTP/1.0 answers HTTP/1.0 requests).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of header `name`, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The response extensions.
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// The body bytes received (up to a failure, if there was one).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Why the body ended early: the response was aborted after its
    /// headers (an application error mid-body, a short body). On the wire
    /// the client sees a cut-off response.
    pub fn body_error(&self) -> Option<&BoxError> {
        self.body_error.as_ref()
    }
}

impl fmt::Debug for TestResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestResponse")
            .field("status", &self.status)
            .field("reason", &self.reason)
            .field("version", &self.version)
            .field("headers", &self.headers)
            .field("body", &self.body)
            .field("body_error", &self.body_error)
            .finish()
    }
}
