//! [`WsgiService`]: a legacy application as a tower `Service`.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use tokio::sync::oneshot;
use tower_service::Service;

use crate::app::App;
use crate::config::Config;
use crate::dispatch;
use crate::environ::{self, EnvironError};
use crate::error::BoxError;
use crate::input::{BodyFault, Input};
use crate::pool::{Pool, ThreadBody};
use crate::response::head::RequestFacts;
use crate::response::{
    simple_response, Exchange, Failure, RequestTrace, ResponseBody, ResponseFuture,
};

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
    config: Arc<Config>,
    pool: Arc<Pool>,
}

impl<A: App> WsgiService<A> {
    /// Hosts `app` with the default options.
    pub fn new(app: A) -> Self {
        Self::with_config(app, Config::default())
    }

    pub(crate) fn with_config(app: A, mut config: Config) -> Self {
        assert!(
            !config.inline || app.allows_inline(),
            "Builder::inline(true) cannot host {}: it must run on the pool's threads only",
            std::any::type_name::<A>()
        );
        config.environ = Arc::new(config.environ_options());
        let app = Arc::new(app);
        let thread_app = app.clone();
        let thread_body: ThreadBody = Arc::new(move |thread| thread_app.run_thread(thread));
        let pool = Pool::with_thread_body(config.max_threads, config.max_queue, Some(thread_body));
        Self {
            app,
            config: Arc::new(config),
            pool: Arc::new(pool),
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
            config: self.config.clone(),
            pool: self.pool.clone(),
        }
    }
}

impl<A> fmt::Debug for WsgiService<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsgiService")
            .field("app", &std::any::type_name::<A>())
            .field("config", &self.config)
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
        let config = &self.config;
        let (parts, body) = req.into_parts();
        let is_head = environ::is_head(&parts.method);
        let span = RequestTrace::span(&parts.method, &parts.uri);
        let trace = RequestTrace::new(span.clone());

        if let (Some(limit), Some(declared)) =
            (config.max_request_body, declared_length(&parts.headers))
        {
            if declared > limit {
                span.in_scope(|| {
                    tracing::warn!(
                        declared,
                        limit,
                        "request body over the configured limit; answering 413"
                    )
                });
                return ResponseFuture::ready(
                    simple_response(StatusCode::PAYLOAD_TOO_LARGE, config, is_head),
                    trace,
                );
            }
        }

        // Inline, a request body would be read on the worker it waits for.
        let inline = config.inline && body.is_end_stream();
        let body_fault = Arc::new(BodyFault::default());
        let input = if inline {
            Input::from_bytes(Bytes::new())
        } else {
            Input::with_limit(body, config.max_request_body, body_fault.clone())
        };
        let facts = RequestFacts {
            is_head,
            version: parts.version,
        };
        let (reply, rx) = oneshot::channel();
        let exchange = Arc::new(Exchange::new(reply, facts, config.clone(), body_fault));
        let request = Accepted {
            parts,
            input,
            exchange,
        };
        if inline {
            request.exchange.set_inline(true);
            let exchange = request.exchange.clone();
            let blocked = span.in_scope(|| request.run(&*self.app));
            if let Some(blocked) = blocked {
                let job_span = span.clone();
                let job_exchange = exchange.clone();
                let submitted = self.pool.submit(Box::new(move || {
                    let _entered = job_span.enter();
                    dispatch::resume(blocked, &job_exchange);
                }));
                if let Err(refused) = submitted {
                    span.in_scope(|| {
                        tracing::error!(?refused, "application pool full: cannot go on with an inline response that waits for the client; aborting it");
                        exchange.fail(Failure::Error("application pool full".into()));
                    });
                }
            }
            return ResponseFuture::waiting(rx, trace);
        }
        let app = self.app.clone();
        let job_span = span.clone();
        // The environ is built (and freed) on the application thread: less
        // work for the async worker, which serves every other connection too.
        let submitted = self.pool.submit(Box::new(move || {
            let _entered = job_span.enter();
            let _never_blocks = request.run(&*app);
        }));
        match submitted {
            Ok(()) => ResponseFuture::waiting(rx, trace),
            Err(refused) => {
                span.in_scope(|| tracing::warn!(?refused, "application pool full; answering 503"));
                let mut response =
                    simple_response(StatusCode::SERVICE_UNAVAILABLE, config, is_head);
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
    exchange: Arc<Exchange>,
}

impl Accepted {
    /// Builds the environ and runs the application (see [`dispatch::run`]).
    fn run<A: App + ?Sized>(self, app: &A) -> Option<dispatch::Blocked> {
        let config = self.exchange.config();
        let is_head = environ::is_head(&self.parts.method);
        match environ::build(self.parts, self.input, &config.environ) {
            Ok(environ) => dispatch::run(app, environ, &self.exchange),
            Err(EnvironError::NotMounted) => {
                tracing::debug!(script_name = %config.script_name, "path outside SCRIPT_NAME; answering 404");
                self.exchange
                    .answer(simple_response(StatusCode::NOT_FOUND, config, is_head));
                None
            }
        }
    }
}

fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
