//! Ported WSGI middleware in front of any tower service (or legacy app).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as HttpBody;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::ext::ReasonPhrase;
use percent_encoding::{AsciiSet, CONTROLS};
use tokio::runtime::Handle;
use tower_layer::Layer;
use tower_service::Service;

use crate::app::App;
use crate::body::{Body, Iterable};
use crate::config::Builder;
use crate::environ::{self, latin1, Environ};
use crate::error::BoxError;
use crate::input::{block_on, boxed_bytes_body, InputBody};
use crate::response::{ResponseBody, ResponseFuture};
use crate::service::WsgiService;
use crate::start_response::StartResponse;

/// A ported WSGI middleware: an app that receives the app it wraps as `next`.
///
/// Implemented for closures `Fn(Environ, StartResponse, &Next) -> Result<Body, BoxError>`
/// (wrap them in [`middleware_fn`] so the argument types are inferred). The
/// middleware calls `next.call(environ, start_response)` exactly where the
/// Python code calls the wrapped app, or answers on its own without it.
/// [`WsgiMiddlewareLayer`] puts one in front of a tower service,
/// [`MiddlewareApp`] in front of a legacy [`App`].
pub trait Middleware: Send + Sync + 'static {
    /// Handles one request, calling `next` or not.
    fn call(
        &self,
        environ: Environ,
        start_response: StartResponse,
        next: &Next,
    ) -> Result<Body, BoxError>;
}

impl<F> Middleware for F
where
    F: Fn(Environ, StartResponse, &Next) -> Result<Body, BoxError> + Send + Sync + 'static,
{
    fn call(
        &self,
        environ: Environ,
        start_response: StartResponse,
        next: &Next,
    ) -> Result<Body, BoxError> {
        self(environ, start_response, next)
    }
}

impl<M: Middleware + ?Sized> Middleware for Arc<M> {
    fn call(
        &self,
        environ: Environ,
        start_response: StartResponse,
        next: &Next,
    ) -> Result<Body, BoxError> {
        (**self).call(environ, start_response, next)
    }
}

/// Turns a closure into a [`Middleware`], with its argument types inferred.
///
/// ```
/// use tower_wsgi::middleware_fn;
///
/// // environ["PATH_INFO"] = environ["PATH_INFO"].lower(); return app(environ, start_response)
/// let lowercase_paths = middleware_fn(|mut environ, start_response, next| {
///     let lowered = environ.path_info().to_lowercase();
///     environ.insert("PATH_INFO", lowered);
///     next.call(environ, start_response)
/// });
/// # drop(lowercase_paths);
/// ```
pub fn middleware_fn<F>(f: F) -> MiddlewareFn<F>
where
    F: Fn(Environ, StartResponse, &Next) -> Result<Body, BoxError> + Send + Sync + 'static,
{
    MiddlewareFn(f)
}

/// A [`Middleware`] made from a closure by [`middleware_fn`].
#[derive(Clone, Copy)]
pub struct MiddlewareFn<F>(F);

impl<F> Middleware for MiddlewareFn<F>
where
    F: Fn(Environ, StartResponse, &Next) -> Result<Body, BoxError> + Send + Sync + 'static,
{
    fn call(
        &self,
        environ: Environ,
        start_response: StartResponse,
        next: &Next,
    ) -> Result<Body, BoxError> {
        (self.0)(environ, start_response, next)
    }
}

impl<F> fmt::Debug for MiddlewareFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MiddlewareFn")
            .field(&std::any::type_name::<F>())
            .finish()
    }
}

// ===== Next =====

/// The app a [`Middleware`] wraps: a tower service or a legacy [`App`].
///
/// It is an [`App`] itself: `next.call(environ, start_response)` is the
/// Python `app(environ, start_response)`. In front of a tower service the
/// call turns the environ into the service's request, waits for its
/// response on this thread, gives the status and headers to
/// `start_response`, and returns a body that pulls the response body (see
/// [`WsgiMiddlewareLayer`] for the exact mapping). A
/// middleware may call it more than once, or not at all.
#[derive(Clone)]
pub struct Next {
    inner: NextInner,
}

#[derive(Clone)]
enum NextInner {
    Service(Arc<dyn CallService>),
    App(Arc<dyn App>),
}

impl Next {
    /// `next` for a legacy app: calls go straight to `app`.
    pub fn from_app(app: impl App) -> Self {
        Self {
            inner: NextInner::App(Arc::new(app)),
        }
    }

    /// `next` for a tower service taking `Request<InputBody>`.
    pub fn from_service<S, B>(service: S) -> Self
    where
        S: Service<Request<InputBody>, Response = Response<B>> + Clone + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: 'static,
        B: HttpBody + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self {
            inner: NextInner::Service(Arc::new(InnerService(Mutex::new(service)))),
        }
    }
}

impl Next {
    /// Calls the wrapped app or service: Python's `app(environ, start_response)`.
    pub fn call(&self, environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
        match &self.inner {
            NextInner::App(app) => app.call(environ, start_response),
            NextInner::Service(service) => call_service(&**service, environ, start_response),
        }
    }
}

impl App for Next {
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
        Next::call(self, environ, start_response)
    }

    fn allows_inline(&self) -> bool {
        match &self.inner {
            NextInner::App(app) => app.allows_inline(),
            NextInner::Service(_) => true,
        }
    }

    fn run_thread(&self, thread: &mut (dyn FnMut() + Send)) {
        match &self.inner {
            NextInner::App(app) => app.run_thread(thread),
            NextInner::Service(_) => thread(),
        }
    }
}

impl fmt::Debug for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner {
            NextInner::Service(_) => "service",
            NextInner::App(_) => "app",
        };
        f.debug_struct("Next").field("kind", &kind).finish()
    }
}

type InnerResponse = Response<UnsyncBoxBody<Bytes, BoxError>>;
type InnerFuture = Pin<Box<dyn Future<Output = Result<InnerResponse, BoxError>>>>;

/// The inner tower service, type-erased so [`Next`] has one type.
trait CallService: Send + Sync + 'static {
    fn call(&self, request: Request<InputBody>) -> InnerFuture;
}

/// A `Mutex` so any `Send` service will do (not only `Sync` ones): each call
/// works on its own clone, as tower's `oneshot` would.
struct InnerService<S>(Mutex<S>);

impl<S, B> CallService for InnerService<S>
where
    S: Service<Request<InputBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: 'static,
    B: HttpBody + Send + 'static,
    B::Error: Into<BoxError>,
{
    fn call(&self, request: Request<InputBody>) -> InnerFuture {
        let mut service = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Box::pin(async move {
            poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            let response = service.call(request).await.map_err(Into::into)?;
            Ok(response.map(boxed_bytes_body))
        })
    }
}

/// What the edge knows about the request and the app thread cannot: the
/// original header lines and the runtime. A private request extension, taken
/// out again before the inner service sees the request.
#[derive(Clone)]
struct Edge {
    headers: Arc<HeaderMap>,
    runtime: Option<Handle>,
}

fn call_service(
    service: &dyn CallService,
    mut environ: Environ,
    start_response: StartResponse,
) -> Result<Body, BoxError> {
    let edge = environ.extensions_mut().remove::<Edge>();
    let runtime = edge
        .as_ref()
        .and_then(|edge| edge.runtime.clone())
        .or_else(|| Handle::try_current().ok());
    let request = inner_request(&mut environ, edge.as_ref().map(|e| &*e.headers))?;
    let is_head = request.method() == Method::HEAD;

    let response = {
        let _context = runtime.as_ref().map(Handle::enter);
        block_on(service.call(request))?
    };
    let (parts, body) = response.into_parts();
    let status = status_line(parts.status, parts.extensions.get::<ReasonPhrase>());
    let headers = response_headers(parts.status, parts.headers, &body, is_head);
    start_response.start(status, headers)?;
    Ok(Body::new(InnerBody {
        body: Some(body),
        runtime,
    }))
}

// ===== environ → request =====

/// Path bytes that go out percent-encoded: what a path segment cannot hold
/// raw, and `%` itself (`PATH_INFO` is already decoded).
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Query bytes that go out percent-encoded: `QUERY_STRING` is raw, so `%`
/// and the delimiters stay as they are.
const QUERY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

fn inner_request(
    environ: &mut Environ,
    original: Option<&HeaderMap>,
) -> Result<Request<InputBody>, BoxError> {
    let method = Method::from_bytes(environ.request_method().as_bytes()).map_err(|_| {
        format!(
            "REQUEST_METHOD {:?} is not an HTTP method",
            environ.request_method()
        )
    })?;
    let version = match environ.server_protocol() {
        "HTTP/1.0" => Version::HTTP_10,
        "HTTP/2" | "HTTP/2.0" => Version::HTTP_2,
        _ => Version::HTTP_11,
    };
    let uri = target(environ)?;
    let mut headers = request_headers(environ, original)?;
    let body = environ.take_input().into_body();
    match body.size_hint().exact() {
        // A known length is the truth, whatever CONTENT_LENGTH says.
        Some(length) if length > 0 || headers.contains_key(header::CONTENT_LENGTH) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            headers.remove(header::TRANSFER_ENCODING);
        }
        _ => {}
    }
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    *request.extensions_mut() = std::mem::take(environ.extensions_mut());
    Ok(request)
}

fn target(environ: &Environ) -> Result<Uri, BoxError> {
    let path = format!("{}{}", environ.script_name(), environ.path_info());
    let path = latin1_bytes(&path).ok_or("SCRIPT_NAME or PATH_INFO holds a char past U+00FF")?;
    let query =
        latin1_bytes(environ.query_string()).ok_or("QUERY_STRING holds a char past U+00FF")?;
    let mut target = String::with_capacity(path.len() + query.len() + 2);
    if !path.starts_with(b"/") {
        target.push('/');
    }
    target.extend(percent_encoding::percent_encode(&path, PATH));
    if !query.is_empty() {
        target.push('?');
        target.extend(percent_encoding::percent_encode(&query, QUERY));
    }
    target
        .parse::<Uri>()
        .map_err(|error| format!("request target {target:?} is not a URI: {error}").into())
}

fn request_headers(environ: &Environ, original: Option<&HeaderMap>) -> Result<HeaderMap, BoxError> {
    // The environ the edge built from the original lines: a variable still
    // equal to it goes on as those lines.
    let mut unchanged = BTreeMap::new();
    if let Some(original) = original {
        environ::add_headers(&mut unchanged, original, false);
    }
    let mut headers = HeaderMap::new();
    for (key, value) in environ {
        let name = match key {
            "CONTENT_TYPE" | "CONTENT_LENGTH" => key,
            "HTTP_CONTENT_TYPE" | "HTTP_CONTENT_LENGTH" => continue,
            _ => match key.strip_prefix("HTTP_") {
                Some(name) => name,
                None => continue,
            },
        };
        let name = HeaderName::from_bytes(name.replace('_', "-").as_bytes())
            .map_err(|_| format!("environ key {key:?} does not name a header"))?;
        if let (Some(original), Some(joined)) = (original, unchanged.get(key)) {
            if joined == value {
                let mut values = original.get_all(&name).iter();
                if key.starts_with("CONTENT_") {
                    // The environ kept the last one.
                    if let Some(last) = values.next_back() {
                        headers.insert(name, last.clone());
                    }
                } else {
                    for original_value in values {
                        headers.append(name.clone(), original_value.clone());
                    }
                }
                continue;
            }
        }
        let value = latin1_bytes(value)
            .and_then(|bytes| HeaderValue::from_bytes(&bytes).ok())
            .ok_or_else(|| format!("environ {key:?} is not a valid header value"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

// ===== response → start_response =====

fn status_line(status: StatusCode, reason: Option<&ReasonPhrase>) -> String {
    match (reason, status.canonical_reason()) {
        (Some(reason), _) => format!("{} {}", status.as_str(), latin1(reason.as_bytes())),
        (None, Some(canonical)) => format!("{} {canonical}", status.as_str()),
        (None, None) => status.as_str().to_owned(),
    }
}

/// The headers that describe a connection rather than the response.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
];

fn response_headers(
    status: StatusCode,
    mut headers: HeaderMap,
    body: &UnsyncBoxBody<Bytes, BoxError>,
    is_head: bool,
) -> Vec<(String, String)> {
    let named_by_connection: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named_by_connection) {
        if headers.remove(name).is_some() {
            tracing::debug!(header = %name, "dropped a hop-by-hop header of the inner response");
        }
    }
    let body_allowed = !status.is_informational()
        && status != StatusCode::NO_CONTENT
        && status != StatusCode::NOT_MODIFIED;
    if body_allowed && !headers.contains_key(header::CONTENT_LENGTH) {
        // hyper would frame an exact hint with this length; a HEAD answer's
        // empty body says nothing about the length of the GET.
        match body.size_hint().exact() {
            Some(length) if !is_head || length > 0 => {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            }
            _ => {}
        }
    }
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), latin1(value.as_bytes())))
        .collect()
}

/// The inner response body, pulled frame by frame on the application thread.
struct InnerBody {
    /// `None` once ended or closed: an ended body is never polled again.
    body: Option<UnsyncBoxBody<Bytes, BoxError>>,
    runtime: Option<Handle>,
}

impl Iterable for InnerBody {
    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
        loop {
            let body = self.body.as_mut()?;
            let frame = {
                let _context = self.runtime.as_ref().map(Handle::enter);
                block_on(body.frame())
            };
            match frame {
                None => {
                    self.body = None;
                    return None;
                }
                Some(Err(error)) => {
                    self.body = None;
                    return Some(Err(error));
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => return Some(Ok(data)),
                    // Trailers and empty frames: the legacy body has no place for them.
                    _ => continue,
                },
            }
        }
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.body = None;
        Ok(())
    }
}

/// One char per byte, or `None` if a char is past U+00FF.
fn latin1_bytes(text: &str) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

// ===== MiddlewareApp =====

/// A [`Middleware`] in front of a legacy [`App`]: an [`App`] itself.
///
/// The same middleware type serves both ways: in front of tower services
/// through [`WsgiMiddlewareLayer`], in front of legacy apps through this.
///
/// ```
/// use tower_wsgi::{app_fn, middleware_fn, Body, MiddlewareApp, WsgiService};
///
/// let app = app_fn(|environ, start_response| {
///     let user = environ.get("REMOTE_USER").unwrap_or("nobody").to_owned();
///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
///     Ok(user.into())
/// });
/// let trust_proxy_user = middleware_fn(|mut environ, start_response, next| {
///     if let Some(user) = environ.get("HTTP_X_REMOTE_USER").map(str::to_owned) {
///         environ.insert("REMOTE_USER", user);
///     }
///     next.call(environ, start_response)
/// });
/// let service = WsgiService::new(MiddlewareApp::new(trust_proxy_user, app));
/// # drop(service);
/// ```
pub struct MiddlewareApp<M> {
    middleware: M,
    next: Next,
}

impl<M: Middleware> MiddlewareApp<M> {
    /// `middleware` wrapping `app`.
    pub fn new(middleware: M, app: impl App) -> Self {
        Self {
            middleware,
            next: Next::from_app(app),
        }
    }
}

impl<M: Middleware> App for MiddlewareApp<M> {
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
        self.middleware.call(environ, start_response, &self.next)
    }

    fn allows_inline(&self) -> bool {
        self.next.allows_inline()
    }

    fn run_thread(&self, thread: &mut (dyn FnMut() + Send)) {
        self.next.run_thread(thread)
    }
}

impl<M: fmt::Debug> fmt::Debug for MiddlewareApp<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MiddlewareApp")
            .field("middleware", &self.middleware)
            .field("next", &self.next)
            .finish()
    }
}

// ===== WsgiMiddlewareLayer =====

/// Puts a [`Middleware`] in front of a tower service: a [`Layer`] producing
/// [`WsgiMiddleware`].
///
/// The inner service takes `Request<InputBody>` and may fail with any error
/// (an error is the edge's 500). An axum `Router` qualifies as it is.
///
/// A WSGI middleware is an app that calls another app:
///
/// ```python
/// def require_token(app):
///     def middleware(environ, start_response):
///         if environ.get("HTTP_AUTHORIZATION") != "Bearer s3cret":
///             start_response("401 Unauthorized", [("Content-Length", "0")])
///             return []
///         return app(environ, start_response)
///     return middleware
/// ```
///
/// Its port is a [`Middleware`]: the same code, with the wrapped app passed in
/// as [`Next`]. [`WsgiMiddlewareLayer`] puts it in front of a tower service
/// (an axum `Router`, a handler, anything taking `Request<InputBody>`):
/// the environ the middleware hands to `next` becomes the inner service's
/// request, and the inner response comes back through `start_response` and
/// the body, so the middleware sees and can rewrite both. The edge is a
/// [`WsgiService`]: every response rule applies once, there.
///
/// ```
/// use http::{Request, Response};
/// use http_body_util::{BodyExt, Empty, Full};
/// use tower::{service_fn, Layer, ServiceExt};
/// use tower_wsgi::{middleware_fn, Body, InputBody, WsgiMiddlewareLayer};
///
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 1)]
/// # async fn main() {
/// let require_token = middleware_fn(|environ, start_response, next| {
///     if environ.get("HTTP_AUTHORIZATION") != Some("Bearer s3cret") {
///         start_response.start("401 Unauthorized", [("Content-Length", "0")])?;
///         return Ok(Body::empty());
///     }
///     next.call(environ, start_response)
/// });
///
/// // Any tower service: here a plain one; an axum `Router` works the same.
/// let handler = service_fn(|request: Request<InputBody>| async move {
///     let path = request.uri().path().to_owned();
///     Ok::<_, std::convert::Infallible>(Response::new(Full::new(bytes::Bytes::from(path))))
/// });
/// let service = WsgiMiddlewareLayer::new(require_token).layer(handler);
///
/// let request = Request::get("/private")
///     .header("Authorization", "Bearer s3cret")
///     .body(Empty::<bytes::Bytes>::new())
///     .unwrap();
/// let response = service.clone().oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.headers()["content-length"], "8");
/// assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "/private");
///
/// let refused = Request::get("/private").body(Empty::<bytes::Bytes>::new()).unwrap();
/// assert_eq!(service.oneshot(refused).await.unwrap().status(), 401);
/// # }
/// ```
///
/// # From the environ to the inner request
///
/// - **Method** from `REQUEST_METHOD`, **version** from `SERVER_PROTOCOL`.
/// - **Target**: `SCRIPT_NAME + PATH_INFO`, each char one byte (latin-1),
///   percent-encoded where a path needs it (`%`, `?`, `#`, spaces, controls,
///   bytes past ASCII), then `?QUERY_STRING` (bytes a URI cannot hold raw are
///   percent-encoded). The target is in origin form; the host is in `Host`.
/// - **Headers**: `HTTP_*` back to names (`HTTP_X_USER` → `x-user`),
///   `CONTENT_TYPE` and `CONTENT_LENGTH`. The environ joins repeated headers
///   into one value; a variable the middleware left as it was goes on as the
///   original lines, one per value, and one it changed or added goes on as a
///   single line. Variables that are not headers (`REMOTE_USER`,
///   `myapp.user`) stay behind: hand typed values on through
///   [`Environ::extensions_mut`], which become the request's extensions.
/// - **Body**: `wsgi.input` as an [`InputBody`], the original request body
///   itself unless the middleware replaced or read it. When its length is
///   known exactly (always after
///   [`Input::from_bytes`](crate::Input::from_bytes)), `Content-Length` is
///   set to it, so a rewritten body never carries a stale length.
///
/// # From the inner response to `start_response`
///
/// - The status with its reason phrase (hyper's `ReasonPhrase` extension,
///   else the canonical one), every header value in order.
/// - **Content-Length** is added from an exact size hint, as hyper would
///   have: without it the edge would end the connection after the response.
/// - **Hop-by-hop headers** (`Connection` and the headers it names,
///   `Keep-Alive`, `Transfer-Encoding`, ...) describe the inner service's own
///   connection, of which there is none: they are dropped (logged at debug),
///   and the edge frames the response itself.
/// - **Date** and **Server** pass through when the inner service set them;
///   the edge adds the missing ones, so neither is ever doubled.
/// - The body is pulled frame by frame on the application thread (trailers
///   are dropped: the legacy body has no place for them). An error from the
///   inner service, or from its body before anything was sent, is the
///   edge's 500; after, the response is aborted. When the client goes away,
///   pulling stops and the inner body is dropped.
/// - A 1xx answer (`101 Switching Protocols`) is the edge's 500: upgrades do
///   not pass through a legacy middleware.
///
/// The inner service's future runs on the application thread (blocking it,
/// as a legacy app would), inside the runtime the edge was called from.
pub struct WsgiMiddlewareLayer<M> {
    middleware: Arc<M>,
    builder: Builder,
}

impl<M> Clone for WsgiMiddlewareLayer<M> {
    fn clone(&self) -> Self {
        Self {
            middleware: self.middleware.clone(),
            builder: self.builder.clone(),
        }
    }
}

impl<M: Middleware> WsgiMiddlewareLayer<M> {
    /// The layer, with the edge's default options.
    pub fn new(middleware: M) -> Self {
        Self::with_builder(middleware, Builder::new())
    }

    /// The layer, with the edge's options taken from `builder` (thread pool,
    /// body limit, `Server` token, ...).
    pub fn with_builder(middleware: M, builder: Builder) -> Self {
        Self {
            middleware: Arc::new(middleware),
            builder,
        }
    }
}

impl<M> fmt::Debug for WsgiMiddlewareLayer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsgiMiddlewareLayer")
            .field("middleware", &std::any::type_name::<M>())
            .field("builder", &self.builder)
            .finish()
    }
}

impl<S, B, M> Layer<S> for WsgiMiddlewareLayer<M>
where
    M: Middleware,
    S: Service<Request<InputBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: 'static,
    B: HttpBody + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Service = WsgiMiddleware<M>;

    fn layer(&self, inner: S) -> Self::Service {
        let app = MiddlewareApp {
            middleware: self.middleware.clone(),
            next: Next::from_service(inner),
        };
        WsgiMiddleware {
            service: self.builder.build(app),
        }
    }
}

/// A [`Middleware`] in front of a tower service, made by [`WsgiMiddlewareLayer`].
///
/// A [`WsgiService`] whose app is the middleware, and whose `next` is the
/// inner service: it never fails (`Error = Infallible`), and every response,
/// the inner service's included, passes the rules once, here.
pub struct WsgiMiddleware<M> {
    service: WsgiService<MiddlewareApp<Arc<M>>>,
}

impl<M> Clone for WsgiMiddleware<M> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
        }
    }
}

impl<M> fmt::Debug for WsgiMiddleware<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsgiMiddleware")
            .field("middleware", &std::any::type_name::<M>())
            .field("service", &self.service)
            .finish()
    }
}

impl<M, B> Service<Request<B>> for WsgiMiddleware<M>
where
    M: Middleware,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request<B>>::poll_ready(&mut self.service, cx)
    }

    fn call(&mut self, mut request: Request<B>) -> ResponseFuture {
        let edge = Edge {
            headers: Arc::new(request.headers().clone()),
            runtime: Handle::try_current().ok(),
        };
        request.extensions_mut().insert(edge);
        self.service.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environ_with(vars: &[(&str, &str)]) -> Environ {
        let mut environ = Environ::default();
        for (key, value) in vars {
            environ.insert(*key, *value);
        }
        environ
    }

    #[test]
    fn target_reencodes_decoded_latin1_paths() {
        let environ = environ_with(&[
            ("SCRIPT_NAME", "/caf\u{c3}\u{a9}"),
            ("PATH_INFO", "/a b/%/?/#/\u{ff}"),
            ("QUERY_STRING", "q=%20a&r=\u{c3}\u{a9} x"),
        ]);
        assert_eq!(
            target(&environ).unwrap(),
            "/caf%C3%A9/a%20b/%25/%3F/%23/%FF?q=%20a&r=%C3%A9%20x"
        );
        let outside = environ_with(&[("PATH_INFO", "/\u{100}")]);
        assert!(target(&outside).is_err());
    }

    #[test]
    fn unchanged_headers_keep_their_lines_and_changed_ones_are_one() {
        let mut original = HeaderMap::new();
        for (name, value) in [("x-a", "1"), ("x-a", "2"), ("x-b", "1"), ("x-b", "2")] {
            original.append(name, HeaderValue::from_static(value));
        }
        original.append("content-type", HeaderValue::from_static("a/b"));
        let environ = environ_with(&[
            ("HTTP_X_A", "1,2"),
            ("HTTP_X_B", "3"),
            ("HTTP_X_NEW", "n"),
            ("CONTENT_TYPE", "a/b"),
            ("REMOTE_USER", "ada"),
        ]);
        let headers = request_headers(&environ, Some(&original)).unwrap();
        let all = |name: &str| -> Vec<_> { headers.get_all(name).iter().collect() };
        assert_eq!(all("x-a"), ["1", "2"]);
        assert_eq!(all("x-b"), ["3"]);
        assert_eq!(all("x-new"), ["n"]);
        assert_eq!(all("content-type"), ["a/b"]);
        assert_eq!(headers.len(), 5);
    }

    #[test]
    fn hop_by_hop_headers_of_the_inner_response_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("close, x-private"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        let body = UnsyncBoxBody::new(
            http_body_util::Full::new(Bytes::from_static(b"abc")).map_err(|e| match e {}),
        );
        let out = response_headers(StatusCode::OK, headers, &body, false);
        assert_eq!(
            out,
            [
                ("x-kept".to_owned(), "1".to_owned()),
                ("content-length".to_owned(), "3".to_owned())
            ]
        );
    }
}
