//! [`Next`]: the app a middleware wraps, and the translation between an
//! environ and a tower service's request and response.

use std::collections::BTreeMap;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as HttpBody;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::ext::ReasonPhrase;
use percent_encoding::{AsciiSet, CONTROLS};
use tokio::runtime::Handle;
use tower_service::Service;

use crate::app::App;
use crate::body::{AppBody, Iterable};
use crate::environ::{self, block_on, boxed_bytes_body, Environ, InputBody};
use crate::error::BoxError;
use crate::headers;
use crate::latin1;
use crate::response::{Failure, StartResponse};
use crate::service::{NestedCall, Unruled};

/// The app a [`Middleware`](super::Middleware) wraps: a tower service or a legacy [`App`].
///
/// It is an [`App`] itself: `next.call(environ, start_response)` is the
/// Python `app(environ, start_response)`. In front of a tower service the
/// call turns the environ into the service's request, waits for its
/// response on this thread, gives the status and headers to
/// `start_response`, and returns a body that pulls the response body (see
/// [`MiddlewareLayer`](super::MiddlewareLayer) for the exact mapping). A
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
    pub fn call(
        &self,
        environ: Environ,
        start_response: StartResponse,
    ) -> Result<AppBody, BoxError> {
        match &self.inner {
            NextInner::App(app) => app.call(environ, start_response),
            NextInner::Service(service) => call_service(&**service, environ, start_response),
        }
    }

    /// Calls the wrapped app or service with a `start_response` of the
    /// middleware's own and returns its whole answer: see [`Captured`].
    ///
    /// [`Captured`]: super::Captured
    pub fn call_captured(&self, environ: Environ) -> Result<super::Captured, BoxError> {
        super::Captured::call(self, environ)
    }
}

impl App for Next {
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
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

    fn parallelism(&self) -> Option<std::num::NonZeroUsize> {
        match &self.inner {
            NextInner::App(app) => app.parallelism(),
            NextInner::Service(_) => None,
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
        let mut service = crate::poison::lock(&self.0).clone();
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
pub(super) struct Edge {
    pub(super) headers: Arc<HeaderMap>,
    pub(super) runtime: Option<Handle>,
}

fn call_service(
    service: &dyn CallService,
    mut environ: Environ,
    start_response: StartResponse,
) -> Result<AppBody, BoxError> {
    let edge = environ.extensions_mut().remove::<Edge>();
    let runtime = edge
        .as_ref()
        .and_then(|edge| edge.runtime.clone())
        .or_else(|| Handle::try_current().ok());
    let mut request = inner_request(&mut environ, edge.as_ref().map(|e| &*e.headers))?;
    let is_head = request.method() == Method::HEAD;
    // This thread waits for the answer: a WsgiService reached with it may
    // run its app here (one edge, whatever the nesting).
    request.extensions_mut().insert(NestedCall::here());

    let response = {
        let _context = runtime.as_ref().map(Handle::enter);
        block_on(service.call(request))?
    };
    let (mut parts, body) = response.into_parts();
    let unruled = parts.extensions.remove::<Unruled>();
    if let Some(failure) = unruled.as_ref().and_then(Unruled::take_failure) {
        // The nested app's failure, raised where the middleware called it.
        return match failure {
            Failure::Error(error) => Err(error),
            Failure::Panic(payload) => std::panic::resume_unwind(payload),
        };
    }
    let status = status_line(parts.status, parts.extensions.get::<ReasonPhrase>());
    let headers = match unruled {
        // The app's own answer: the edge's rules judge every header.
        Some(_) => wsgi_headers(&parts.headers),
        None => response_headers(parts.status, parts.headers, &body, is_head),
    };
    start_response.start(status, headers)?;
    Ok(AppBody::new(InnerBody {
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
    let path = latin1::encode(&path).ok_or("SCRIPT_NAME or PATH_INFO holds a char past U+00FF")?;
    let query =
        latin1::encode(environ.query_string()).ok_or("QUERY_STRING holds a char past U+00FF")?;
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
        let Some(name) = environ::header_name_of(key) else {
            continue;
        };
        let name = name.map_err(|_| format!("environ key {key:?} does not name a header"))?;
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
        let value = latin1::encode(value)
            .and_then(|bytes| HeaderValue::from_bytes(&bytes).ok())
            .ok_or_else(|| format!("environ {key:?} is not a valid header value"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

// ===== response → start_response =====

fn status_line(status: StatusCode, reason: Option<&ReasonPhrase>) -> String {
    match (reason, status.canonical_reason()) {
        (Some(reason), _) => format!("{} {}", status.as_str(), latin1::decode(reason.as_bytes())),
        (None, Some(canonical)) => format!("{} {canonical}", status.as_str()),
        (None, None) => status.as_str().to_owned(),
    }
}

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
    for name in headers::HOP_BY_HOP.iter().chain(&named_by_connection) {
        if headers.remove(name).is_some() {
            tracing::debug!(header = %name, "dropped a hop-by-hop header of the inner response");
        }
    }
    // HEAD is decided below: its empty body says nothing of the GET's length.
    if headers::body_allowed(status, false) && !headers.contains_key(header::CONTENT_LENGTH) {
        // hyper would frame an exact hint with this length; a HEAD answer's
        // empty body says nothing about the length of the GET.
        match body.size_hint().exact() {
            Some(length) if !is_head || length > 0 => {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            }
            _ => {}
        }
    }
    wsgi_headers(&headers)
}

fn wsgi_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), latin1::decode(value.as_bytes())))
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
