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
//! Like Werkzeug's client it keeps a cookie jar (`Set-Cookie` stored and
//! sent back, by domain, path and expiry), builds form and multipart
//! bodies ([`TestRequest::form`], [`TestRequest::multipart`] with
//! [`FormData`]), and follows redirects when asked
//! ([`TestClient::follow_redirects`]).
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
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::{BufMut, Bytes, BytesMut};
use http::{
    header, request, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version,
};
use http_body_util::{BodyExt, Full};
use tower_service::Service;

use crate::app::App;
use crate::error::BoxError;
use crate::poison::lock;
use crate::service::WsgiService;

mod cookies;
mod form;

pub use form::FormData;

/// Redirects followed at most, by default ([`TestClient::max_redirects`]).
pub const DEFAULT_MAX_REDIRECTS: usize = 10;

/// The client address requests carry unless told otherwise: `127.0.0.1`,
/// port 0 (`REMOTE_ADDR` and `REMOTE_PORT`).
pub const DEFAULT_REMOTE_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// Calls a service in-process; see the [module docs](crate::test_client).
///
/// Requests carry a `Host: localhost` header and a
/// [`RemoteAddr`](crate::environ::RemoteAddr) of [`DEFAULT_REMOTE_ADDR`] unless the
/// test sets others; a body gets a `Content-Length`.
///
/// Like `werkzeug.test.Client`, it keeps the cookies responses set and
/// sends them back ([`without_cookies`](TestClient::without_cookies) turns
/// that off), and can follow redirects
/// ([`follow_redirects`](TestClient::follow_redirects)). Clones share the
/// cookie jar.
#[derive(Clone)]
pub struct TestClient<S> {
    service: S,
    remote_addr: Option<SocketAddr>,
    cookies: Option<Arc<Mutex<cookies::Jar>>>,
    follow_redirects: bool,
    max_redirects: usize,
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
            cookies: Some(Arc::default()),
            follow_redirects: false,
            max_redirects: DEFAULT_MAX_REDIRECTS,
        }
    }

    /// A client that neither stores nor sends cookies (Werkzeug's
    /// `use_cookies=False`).
    #[must_use]
    pub fn without_cookies(mut self) -> Self {
        self.cookies = None;
        self
    }

    /// Whether requests follow redirects by default (Werkzeug's
    /// `follow_redirects=True`); [`TestRequest::follow_redirects`] decides
    /// for one request. See there for the rules.
    #[must_use]
    pub fn follow_redirects(mut self, follow: bool) -> Self {
        self.follow_redirects = follow;
        self
    }

    /// How many redirects a request follows before the client panics
    /// (default [`DEFAULT_MAX_REDIRECTS`]).
    #[must_use]
    pub fn max_redirects(mut self, hops: usize) -> Self {
        self.max_redirects = hops;
        self
    }

    /// The value of the stored cookie `name` (the first, if several
    /// domains or paths hold one), unless it has expired.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let jar = self.cookies.as_ref()?;
        let jar = lock(jar);
        let value = jar
            .live(SystemTime::now())
            .find(|cookie| cookie.name == name)
            .map(|cookie| cookie.value.clone());
        value
    }

    /// Stores cookie `name` for `domain` (and its subdomains), path `/`, as
    /// if a response had set it: Werkzeug's `set_cookie(server_name, key,
    /// value)`. Requests carry `Host: localhost` unless told otherwise.
    ///
    /// # Panics
    ///
    /// If the client was made [`without_cookies`](TestClient::without_cookies).
    pub fn set_cookie(&self, domain: &str, name: &str, value: &str) {
        let jar = self.cookies.as_ref().expect("this client keeps no cookies");
        lock(jar).set(name, value, domain);
    }

    /// Removes every stored cookie named `name`.
    pub fn delete_cookie(&self, name: &str) {
        if let Some(jar) = &self.cookies {
            lock(jar).remove(name);
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
            follow_redirects: self.follow_redirects,
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

    /// A `PUT` request.
    pub fn put(&self, target: &str) -> TestRequest<'_, S> {
        self.request(Method::PUT, target)
    }

    /// A `DELETE` request.
    pub fn delete(&self, target: &str) -> TestRequest<'_, S> {
        self.request(Method::DELETE, target)
    }
}

impl<S> fmt::Debug for TestClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("service", &std::any::type_name::<S>())
            .field("remote_addr", &self.remote_addr)
            .field("cookies", &self.cookies.is_some())
            .field("follow_redirects", &self.follow_redirects)
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
    follow_redirects: bool,
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

    /// A form body, `application/x-www-form-urlencoded`: Werkzeug's
    /// `data={...}` without files.
    ///
    /// ```
    /// use tower_wsgi::{app_fn, test_client::TestClient};
    ///
    /// let client = TestClient::new(app_fn(|mut environ, start_response| {
    ///     let body = environ.input().read_all()?;
    ///     let content_type = environ.content_type().unwrap_or("").to_owned();
    ///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
    ///     Ok(format!("{content_type} {}", String::from_utf8(body)?).into())
    /// }));
    /// let response = client.post("/").form([("q", "a b"), ("lang", "caf\u{e9}")]).send_blocking();
    /// assert_eq!(response.text(), "application/x-www-form-urlencoded q=a+b&lang=caf%C3%A9");
    /// ```
    pub fn form<I, K, V>(self, pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let body = form::urlencoded(pairs);
        self.header(
            header::CONTENT_TYPE.as_str(),
            "application/x-www-form-urlencoded",
        )
        .body(body)
    }

    /// A `multipart/form-data` body: Werkzeug's `data={...}` with files.
    pub fn multipart(self, form: FormData) -> Self {
        let content_type = form.content_type();
        self.header(header::CONTENT_TYPE.as_str(), content_type)
            .body(form.to_bytes())
    }

    /// Whether this request follows redirects (default: the client's
    /// [`follow_redirects`](TestClient::follow_redirects)), as Werkzeug's
    /// `follow_redirects=True` does.
    ///
    /// On 301, 302, 303 and 305 the next request is a `GET` (`HEAD` stays
    /// `HEAD`) without the body and its `Content-Type`; on 307 and 308 it
    /// keeps the method, body and headers. The `Location` is resolved
    /// against the request's URL; its host, if any, becomes the `Host`
    /// header, and every request goes to this client's service. The
    /// cookie jar is used and updated at each hop. The response is the
    /// last one; [`TestResponse::redirects`] lists the hops.
    ///
    /// # Panics
    ///
    /// At `send`, when a redirect repeats (a loop) or there are more than
    /// [`max_redirects`](TestClient::max_redirects), as Werkzeug raises
    /// `ClientRedirectError`; or when a redirect has no valid `Location`.
    pub fn follow_redirects(mut self, follow: bool) -> Self {
        self.follow_redirects = follow;
        self
    }

    /// The `http::Request` as the service receives it, with the cookies of
    /// the client's jar that apply to it.
    ///
    /// # Panics
    ///
    /// If the method, target or a header is invalid.
    pub fn into_request(self) -> Request<Full<Bytes>> {
        let client = self.client;
        let prepared = self.prepare();
        client.with_cookies(&prepared)
    }

    /// The request as built, before cookies: what a redirect starts from.
    fn prepare(self) -> Prepared {
        let request = self
            .request
            .body(())
            .unwrap_or_else(|error| panic!("invalid test request: {error}"));
        let (mut parts, ()) = request.into_parts();
        let headers = &mut parts.headers;
        if !headers.contains_key(header::HOST) {
            headers.insert(header::HOST, HeaderValue::from_static("localhost"));
        }
        let has_body = !self.body.is_empty()
            || matches!(parts.method, Method::POST | Method::PUT | Method::PATCH);
        let framed = headers.contains_key(header::CONTENT_LENGTH)
            || headers.contains_key(header::TRANSFER_ENCODING);
        if has_body && !framed {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(self.body.len()));
        }
        Prepared {
            parts,
            body: self.body,
        }
    }
}

/// A request ready to send, kept whole so that a redirect can be made from it.
struct Prepared {
    parts: request::Parts,
    body: Bytes,
}

impl Prepared {
    fn to_request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.parts.method.clone();
        *request.uri_mut() = self.parts.uri.clone();
        *request.version_mut() = self.parts.version;
        *request.headers_mut() = self.parts.headers.clone();
        *request.extensions_mut() = self.parts.extensions.clone();
        request
    }

    /// Host (lowercase, no port), path and whether it is HTTPS: what the
    /// cookie jar matches on.
    fn host(&self) -> String {
        let from_header = self
            .parts
            .headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .and_then(|host| host.parse::<http::uri::Authority>().ok());
        let host = match (&from_header, self.parts.uri.host()) {
            (_, Some(host)) => host,
            (Some(authority), None) => authority.host(),
            (None, None) => "localhost",
        };
        host.to_ascii_lowercase()
    }

    fn is_https(&self) -> bool {
        self.parts.uri.scheme() == Some(&http::uri::Scheme::HTTPS)
            || self
                .parts
                .extensions
                .get::<crate::environ::Https>()
                .is_some()
    }

    /// The request that follows redirect `status` to `location`.
    fn redirected(&self, status: StatusCode, location: &str) -> Prepared {
        let base = match self.parts.uri.path_and_query() {
            Some(pq) => pq.as_str().to_owned(),
            None => "/".to_owned(),
        };
        let target = resolve(&base, location);
        let mut parts = Request::new(()).into_parts().0;
        parts.version = self.parts.version;
        parts.headers = self.parts.headers.clone();
        parts.extensions = self.parts.extensions.clone();
        let uri: http::Uri = target.parse().unwrap_or_else(|error| {
            panic!("redirect to an invalid Location {location:?}: {error}")
        });
        if let Some(authority) = uri.authority() {
            let host = HeaderValue::from_str(authority.as_str())
                .unwrap_or_else(|error| panic!("redirect to an invalid host: {error}"));
            parts.headers.insert(header::HOST, host);
            if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
                parts.extensions.insert(crate::environ::Https);
            } else {
                parts.extensions.remove::<crate::environ::Https>();
            }
        }
        parts.uri = uri.path_and_query().map_or_else(
            || http::Uri::from_static("/"),
            |pq| http::Uri::try_from(pq.as_str()).unwrap_or_else(|_| http::Uri::from_static("/")),
        );
        let keep = matches!(
            status,
            StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
        );
        if keep {
            parts.method = self.parts.method.clone();
            return Prepared {
                parts,
                body: self.body.clone(),
            };
        }
        parts.method = if self.parts.method == Method::HEAD {
            Method::HEAD
        } else {
            Method::GET
        };
        for name in [
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
        ] {
            parts.headers.remove(name);
        }
        Prepared {
            parts,
            body: Bytes::new(),
        }
    }
}

/// `location` resolved against the request target `base` (a path with
/// its query): absolute URLs and absolute paths as they are, relative
/// references against `base`'s directory (RFC 3986 section 5.2, without
/// dot-segment removal).
fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") || location.starts_with('/') {
        return location.to_owned();
    }
    let path = base.split('?').next().unwrap_or("/");
    if location.starts_with('?') {
        return format!("{path}{location}");
    }
    let directory = path.rfind('/').map_or("/", |last| &path[..=last]);
    format!("{directory}{location}")
}

impl<S> TestClient<S> {
    /// The request of `prepared`, with the jar's cookies added.
    fn with_cookies(&self, prepared: &Prepared) -> Request<Full<Bytes>> {
        let mut request = prepared.to_request();
        let Some(jar) = &self.cookies else {
            return request;
        };
        let host = prepared.host();
        let target = cookies::Target {
            host: &host,
            path: prepared.parts.uri.path(),
            secure: prepared.is_https(),
        };
        let header = lock(jar).header_for(&target, SystemTime::now());
        if let Some(value) = header.and_then(|value| HeaderValue::from_str(&value).ok()) {
            request.headers_mut().append(header::COOKIE, value);
        }
        request
    }

    /// Stores the cookies a response to `prepared` set.
    fn store_cookies(&self, prepared: &Prepared, headers: &HeaderMap) {
        let Some(jar) = &self.cookies else {
            return;
        };
        let host = prepared.host();
        let target = cookies::Target {
            host: &host,
            path: prepared.parts.uri.path(),
            secure: prepared.is_https(),
        };
        let mut jar = lock(jar);
        let now = SystemTime::now();
        for value in headers.get_all(header::SET_COOKIE) {
            jar.store(&crate::latin1::decode(value.as_bytes()), &target, now);
        }
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
        let client = self.client;
        let follow = self.follow_redirects;
        let mut prepared = self.prepare();
        let mut redirects: Vec<(String, StatusCode)> = Vec::new();
        loop {
            let mut service = client.service.clone();
            let request = client.with_cookies(&prepared);
            let called = async {
                poll_fn(|cx| service.poll_ready(cx)).await?;
                service.call(request).await
            };
            let response = called
                .await
                .unwrap_or_else(|error| panic!("the service failed: {error:?}"));
            client.store_cookies(&prepared, response.headers());
            let mut response = TestResponse::read(response).await;
            let status = response.status;
            let redirect = matches!(status.as_u16(), 301 | 302 | 303 | 305 | 307 | 308);
            if !follow || !redirect {
                response.redirects = redirects;
                return response;
            }
            let location = response
                .header_latin1("location")
                .unwrap_or_else(|| panic!("a {status} redirect without a Location header"));
            let hop = (location, status);
            assert!(
                !redirects.contains(&hop),
                "redirect loop detected: {} {} seen before",
                hop.1,
                hop.0
            );
            assert!(
                redirects.len() < client.max_redirects,
                "more than {} redirects",
                client.max_redirects
            );
            prepared = prepared.redirected(status, &hop.0);
            redirects.push(hop);
        }
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
            .field("follow_redirects", &self.follow_redirects)
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
    redirects: Vec<(String, StatusCode)>,
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
            redirects: Vec::new(),
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

    /// The first value of header `name` as a native string, one char per
    /// byte (latin-1), as the application passed it to `start_response`
    /// and as Werkzeug's `response.headers[name]` reads it.
    ///
    /// ```
    /// use tower_wsgi::{app_fn, test_client::TestClient};
    ///
    /// let client = TestClient::new(app_fn(|_environ, start_response| {
    ///     start_response.start("200 OK", [("X-Name", "caf\u{e9}"), ("Content-Length", "0")])?;
    ///     Ok(tower_wsgi::AppBody::empty())
    /// }));
    /// let response = client.get("/").send_blocking();
    /// assert_eq!(response.header("x-name"), None); // not visible ASCII
    /// assert_eq!(response.header_latin1("x-name").as_deref(), Some("caf\u{e9}"));
    /// ```
    pub fn header_latin1(&self, name: &str) -> Option<String> {
        let value = self.headers.get(name)?;
        Some(crate::latin1::decode(value.as_bytes()))
    }

    /// Every value of header `name`, in order, as native strings (see
    /// [`header_latin1`](TestResponse::header_latin1)).
    pub fn header_all_latin1(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|value| crate::latin1::decode(value.as_bytes()))
            .collect()
    }

    /// The redirects followed to get this response, in order: each
    /// `Location` and the status that sent it (Werkzeug's
    /// `response.history`, as pairs). Empty unless redirects were followed.
    pub fn redirects(&self) -> &[(String, StatusCode)] {
        &self.redirects
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
            .field("redirects", &self.redirects)
            .finish()
    }
}
