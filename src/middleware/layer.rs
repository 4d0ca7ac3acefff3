//! [`MiddlewareLayer`]: a [`Middleware`] in front of a tower service.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body as HttpBody;
use tokio::runtime::Handle;
use tower_layer::Layer;
use tower_service::Service;

use super::next::Edge;
use super::{Middleware, MiddlewareApp, Next};
use crate::environ::InputBody;
use crate::error::BoxError;
use crate::response::{ResponseBody, ResponseFuture};
use crate::service::{Builder, WsgiService};

/// Puts a [`Middleware`] in front of a tower service: a [`Layer`] producing
/// [`MiddlewareService`].
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
/// as [`Next`]. [`MiddlewareLayer`] puts it in front of a tower service
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
/// use tower_wsgi::environ::InputBody;
/// use tower_wsgi::middleware::{from_fn, MiddlewareLayer};
/// use tower_wsgi::AppBody;
///
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 1)]
/// # async fn main() {
/// let require_token = from_fn(|environ, start_response, next| {
///     if environ.get("HTTP_AUTHORIZATION") != Some("Bearer s3cret") {
///         start_response.start("401 Unauthorized", [("Content-Length", "0")])?;
///         return Ok(AppBody::empty());
///     }
///     next.call(environ, start_response)
/// });
///
/// // Any tower service: here a plain one; an axum `Router` works the same.
/// let handler = service_fn(|request: Request<InputBody>| async move {
///     let path = request.uri().path().to_owned();
///     Ok::<_, std::convert::Infallible>(Response::new(Full::new(bytes::Bytes::from(path))))
/// });
/// let service = MiddlewareLayer::new(require_token).layer(handler);
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
///   [`Environ::extensions_mut`](crate::Environ::extensions_mut), which become the request's extensions.
/// - **Body**: `wsgi.input` as an [`InputBody`], the original request body
///   itself unless the middleware replaced or read it. When its length is
///   known exactly (always after
///   [`Input::from_bytes`](crate::environ::Input::from_bytes)), `Content-Length` is
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
///
/// # One edge, whatever the nesting
///
/// A [`WsgiService`] reached behind the layer (directly, through an axum
/// `Router`, under more middleware layers) runs its app on that same
/// thread: one application thread, one span and one set of events per
/// request, and every rule applied once, here, to what finally goes out.
/// Its answer passes through the layers in between as an ordinary response
/// (the mapping above is skipped for it: the rules judge its headers,
/// hop-by-hop ones included), and an error of its app comes back as the
/// `Err` of `next.call`. See [`Builder::join_edge`] for what stays the inner
/// service's and when it is an edge of its own instead.
pub struct MiddlewareLayer<M> {
    middleware: Arc<M>,
    builder: Builder,
}

impl<M> Clone for MiddlewareLayer<M> {
    fn clone(&self) -> Self {
        Self {
            middleware: self.middleware.clone(),
            builder: self.builder.clone(),
        }
    }
}

impl<M: Middleware> MiddlewareLayer<M> {
    /// The layer, with the edge's default options.
    pub fn new(middleware: M) -> Self {
        Self::with_builder(middleware, Builder::new())
    }

    /// The layer, with the edge's options taken from `builder` (thread pool,
    /// body limit, `Server` token, ...).
    ///
    /// The edge's [`connection_policy`](Builder::connection_policy) is the
    /// one the client's connection follows, for every service behind the
    /// layer: the `WsgiService`s behind it answer through the edge's rules,
    /// and any other service's `Connection` header describes a connection
    /// that does not exist, and is dropped.
    pub fn with_builder(middleware: M, builder: Builder) -> Self {
        Self {
            middleware: Arc::new(middleware),
            builder,
        }
    }
}

impl<M> fmt::Debug for MiddlewareLayer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MiddlewareLayer")
            .field("middleware", &std::any::type_name::<M>())
            .field("builder", &self.builder)
            .finish()
    }
}

impl<S, B, M> Layer<S> for MiddlewareLayer<M>
where
    M: Middleware,
    S: Service<Request<InputBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: 'static,
    B: HttpBody + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Service = MiddlewareService<M>;

    fn layer(&self, inner: S) -> Self::Service {
        let app = MiddlewareApp {
            middleware: self.middleware.clone(),
            next: Next::from_service(inner),
        };
        MiddlewareService {
            service: self.builder.build(app),
        }
    }
}

/// A [`Middleware`] in front of a tower service, made by [`MiddlewareLayer`].
///
/// A [`WsgiService`] whose app is the middleware, and whose `next` is the
/// inner service: it never fails (`Error = Infallible`), and every response,
/// the inner service's included, passes the rules once, here.
pub struct MiddlewareService<M> {
    service: WsgiService<MiddlewareApp<Arc<M>>>,
}

impl<M> Clone for MiddlewareService<M> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
        }
    }
}

impl<M> fmt::Debug for MiddlewareService<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MiddlewareService")
            .field("middleware", &std::any::type_name::<M>())
            .field("service", &self.service)
            .finish()
    }
}

impl<M, B> Service<Request<B>> for MiddlewareService<M>
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
