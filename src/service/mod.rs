//! [`WsgiService`]: a legacy application as a tower `Service`.

use std::any::TypeId;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use tower_service::Service;

use crate::app::App;
use crate::environ::{self, EnvironError, EnvironOptions, FaultHolder, Input};
use crate::error::BoxError;
use crate::response::{
    simple_response, Failure, RequestFacts, RequestTrace, Responder, ResponseBody, ResponseFuture,
    ResponseOptions,
};

mod builder;
mod driver;
mod nested;
mod pool;
mod validate;

pub use builder::Builder;
pub(crate) use nested::{NestedCall, Unruled};
use pool::ThreadBody;
pub use pool::ThreadPool;

use builder::Options;

/// A WSGI-shaped [`App`] as a tower [`Service`].
///
/// `Clone` (clones share the application and its thread pool), never fails
/// (`Error = Infallible`: every problem is an HTTP answer), and generic over
/// the request body, so it serves `hyper::body::Incoming` and
/// `axum::body::Body` alike. Each request runs the application on the pool;
/// the response streams back through [`ResponseBody`].
///
/// [`Builder`](crate::Builder) sets options other than the defaults. See the
/// [crate docs](crate) for an example.
pub struct WsgiService<A> {
    app: Arc<A>,
    shared: Arc<Shared>,
}

/// What every clone of a service shares besides the application.
#[derive(Debug)]
struct Shared {
    environ: Arc<EnvironOptions>,
    response: Arc<ResponseOptions>,
    max_request_body: Option<u64>,
    inline: bool,
    join_edge: bool,
    lenient_requests: bool,
    pool: ThreadPool,
    /// The warning for a nest without a mount point went out.
    #[cfg(feature = "axum")]
    warned_unmounted_nest: std::sync::atomic::AtomicBool,
}

impl<A: App> WsgiService<A> {
    /// Hosts `app` with the default options.
    pub fn new(app: A) -> Self {
        Self::with_options(app, &Options::default())
    }

    /// A [`Builder`], for options other than the defaults.
    pub fn builder() -> Builder {
        Builder::new()
    }

    fn with_options(app: A, options: &Options) -> Self {
        assert!(
            !options.inline || app.allows_inline(),
            "Builder::inline(true) cannot host {}: it must run on the pool's threads only",
            std::any::type_name::<A>()
        );
        let join_edge = options.join_edge && app.allows_inline();
        let app = Arc::new(app);
        let thread_app = app.clone();
        let thread_body: ThreadBody = Arc::new(move |thread| thread_app.run_thread(thread));
        let pool = options.pool(thread_body, app.parallelism());
        Self {
            app,
            shared: Arc::new(Shared {
                environ: Arc::new(options.environ()),
                response: Arc::new(options.response()),
                max_request_body: options.max_request_body,
                inline: options.inline,
                join_edge,
                lenient_requests: options.lenient_requests,
                pool,
                #[cfg(feature = "axum")]
                warned_unmounted_nest: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// The application.
    pub fn get_ref(&self) -> &A {
        &self.app
    }
}

impl<A> Clone for WsgiService<A> {
    fn clone(&self) -> Self {
        Self {
            app: self.app.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<A> fmt::Debug for WsgiService<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsgiService")
            .field("app", &std::any::type_name::<A>())
            .field("options", &self.shared)
            .finish()
    }
}

impl<A, B> Service<Request<B>> for WsgiService<A>
where
    A: App,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Admission happens in `call`: a full pool answers 503 at once
        // rather than holding every connection back.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let shared = &self.shared;
        let (mut parts, body) = req.into_parts();
        let facts = RequestFacts {
            is_head: parts.method == http::Method::HEAD,
            version: parts.version,
        };
        // Called from a middleware's `next`, which waits on this thread: the
        // edge's span and events report the request, its rules answer it.
        let nested = parts
            .extensions
            .remove::<NestedCall>()
            .is_some_and(|call| shared.join_edge && call.is_here());
        let span = if nested {
            tracing::Span::none()
        } else {
            RequestTrace::span(&parts.method, &parts.uri)
        };
        let traced = |response| {
            if nested {
                ResponseFuture::untraced(response)
            } else {
                ResponseFuture::ready(response, RequestTrace::new(span.clone()))
            }
        };
        let server = shared.response.head.server.as_ref();
        #[cfg(feature = "axum")]
        if crate::mount::nested_without_mount_point(&parts.extensions)
            && !shared
                .warned_unmounted_nest
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                "nested in an axum router without tower_wsgi::mount::AxumMount: \
                 SCRIPT_NAME is empty and PATH_INFO the path axum stripped; \
                 wrap the service in AxumMount to describe the original URI"
            );
        }

        let on_connection = TypeId::of::<B>() == TypeId::of::<hyper::body::Incoming>()
            || came_from_a_peer(&parts.extensions);
        let admitted = match validate::check(&parts, on_connection, shared.lenient_requests) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                span.in_scope(|| {
                    tracing::warn!(
                        status = refusal.status.as_u16(),
                        cause = refusal.cause,
                        "refused a request before the application"
                    )
                });
                let mut response = simple_response(refusal.status, server, facts.is_head);
                if parts.version < http::Version::HTTP_2 {
                    // The body is unread and the framing may be the client's trick.
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                return traced(response);
            }
        };

        if let (Some(limit), Some(declared)) = (shared.max_request_body, admitted.declared_length) {
            if declared > limit {
                span.in_scope(|| {
                    tracing::warn!(
                        declared,
                        limit,
                        "request body over the configured limit; answering 413"
                    )
                });
                return traced(simple_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    server,
                    facts.is_head,
                ));
            }
        }
        if nested {
            return ResponseFuture::untraced(nested::answer(&*self.app, shared, parts, body));
        }
        let trace = RequestTrace::new(span.clone());

        // Inline, a request body would be read on the worker it waits for.
        let bodiless = body.is_end_stream();
        let inline = shared.inline && bodiless;
        // Off the worker, the head is built in a map this worker freed
        // (see `crate::recycled`).
        let spare_headers = if inline {
            None
        } else {
            crate::recycled::headers()
        };
        let responder = Arc::new(Responder::new(
            facts,
            shared.response.clone(),
            spare_headers,
        ));
        // No body (most GETs): nothing to box, read or fail, and nothing
        // allocated here to be freed on the application thread.
        let input = if bodiless {
            Input::from_bytes(Bytes::new())
        } else {
            // The responder records the body's fault: no allocation of its own.
            let drain_unread = environ::is_worth_draining(&body, &parts);
            let fault = responder.clone() as Arc<dyn FaultHolder>;
            Input::with_limit(body, shared.max_request_body, fault, drain_unread)
        };
        let request = Accepted {
            parts,
            input,
            environ: shared.environ.clone(),
            responder,
        };
        if inline {
            request.responder.set_inline(true);
            let responder = request.responder.clone();
            let blocked = span.in_scope(|| request.run(&*self.app, false));
            if let Some(blocked) = blocked {
                let job_span = span.clone();
                let job_responder = responder.clone();
                let submitted = shared.pool.submit(Box::new(move || {
                    let _entered = job_span.enter();
                    driver::resume(blocked, &job_responder);
                }));
                if let Err(refused) = submitted {
                    span.in_scope(|| {
                        tracing::error!(?refused, "application pool full: cannot go on with an inline response that waits for the client; aborting it");
                        responder.fail(Failure::Error("application pool full".into()));
                    });
                }
            }
            return ResponseFuture::waiting(responder, trace);
        }
        let app = self.app.clone();
        let job_span = span.clone();
        let home = request.responder.clone();
        // The environ is built on the application thread (less work for the
        // async worker, which serves every other connection too); the
        // request's memory comes back to be freed where hyper made it.
        let submitted = shared.pool.submit(Box::new(move || {
            let _entered = job_span.enter();
            let _never_blocks = request.run(&*app, true);
        }));
        match submitted {
            Ok(()) => ResponseFuture::waiting(home, trace),
            Err(refused) => {
                span.in_scope(|| tracing::warn!(?refused, "application pool full; answering 503"));
                let mut response =
                    simple_response(StatusCode::SERVICE_UNAVAILABLE, server, facts.is_head);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                ResponseFuture::ready(response, trace)
            }
        }
    }
}

/// A request admitted to the application, not yet turned into an environ.
struct Accepted {
    parts: http::request::Parts,
    input: Input,
    environ: Arc<EnvironOptions>,
    responder: Arc<Responder>,
}

impl Accepted {
    /// Builds the environ and runs the application (see [`driver::run`]).
    /// `off_worker`: on a pool thread, so the request's memory goes back to
    /// the async worker when the environ is dropped.
    fn run<A: App + ?Sized>(self, app: &A, off_worker: bool) -> Option<driver::Blocked> {
        let home = off_worker.then(|| self.responder.clone() as Arc<dyn environ::Home>);
        match environ::build(self.parts, self.input, &self.environ, home) {
            Ok(environ) => driver::run(app, environ, &self.responder),
            Err(EnvironError::NotMounted) => {
                tracing::debug!(script_name = %self.environ.script_name, "path outside SCRIPT_NAME; answering 404");
                let server = self.responder.options().head.server.as_ref();
                let is_head = self.responder.facts().is_head;
                self.responder
                    .answer(simple_response(StatusCode::NOT_FOUND, server, is_head));
                None
            }
        }
    }
}

/// A client address says the request came from a peer, not from code in
/// this process (the crate's server and test client, axum's `ConnectInfo`).
fn came_from_a_peer(extensions: &http::Extensions) -> bool {
    #[cfg(feature = "axum")]
    if crate::mount::has_connect_info(extensions) {
        return true;
    }
    extensions.get::<environ::RemoteAddr>().is_some()
}
