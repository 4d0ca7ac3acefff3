//! The legacy-app interface: `app(environ, start_response) -> body`.

use std::fmt;
use std::sync::Arc;

use crate::body::Body;
use crate::environ::Environ;
use crate::error::BoxError;
use crate::start_response::StartResponse;

/// A WSGI-shaped application: `app(environ, start_response)` returns a body.
///
/// Implemented for plain functions with the signature
/// `fn(Environ, StartResponse) -> Result<Body, BoxError>`; for closures, wrap
/// them in [`app_fn`] so their argument types are inferred. Applications run
/// on the crate's thread pool, so they may block (on files, databases, or
/// `wsgi.input`).
///
/// An `Err` (Python's exception) or a panic before the headers went out is
/// answered 500 with the cause logged; after, the response is aborted.
///
/// ```
/// use tower_wsgi::{Body, BoxError, Environ, StartResponse};
///
/// fn hello(environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
///     let body = format!("Hello, {}!", environ.path_info());
///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
///     Ok(body.into())
/// }
/// # let _ = tower_wsgi::WsgiService::new(hello);
/// ```
pub trait App: Send + Sync + 'static {
    /// Handles one request.
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<Body, BoxError>;

    /// Whether [`Builder::inline`](crate::Builder::inline) may run this
    /// application on the async workers (default `true`).
    ///
    /// An application that must only ever run on the pool's threads (one
    /// hosting an interpreter, say) answers `false`, and building an inline
    /// service for it fails.
    fn allows_inline(&self) -> bool {
        true
    }

    /// Runs the whole life of one application thread of the service:
    /// `thread` is its work loop, which returns when the thread ends.
    ///
    /// The default runs it as is. An application that needs per-thread state
    /// for as long as the thread lives (an interpreter's thread state, a
    /// connection) sets it up around the call.
    fn run_thread(&self, thread: &mut (dyn FnMut() + Send)) {
        thread()
    }
}

impl<F> App for F
where
    F: Fn(Environ, StartResponse) -> Result<Body, BoxError> + Send + Sync + 'static,
{
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
        self(environ, start_response)
    }
}

impl<A: App + ?Sized> App for Arc<A> {
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
        (**self).call(environ, start_response)
    }

    fn allows_inline(&self) -> bool {
        (**self).allows_inline()
    }

    fn run_thread(&self, thread: &mut (dyn FnMut() + Send)) {
        (**self).run_thread(thread)
    }
}

/// Turns a closure into an [`App`], with its argument types inferred.
///
/// ```
/// use tower_wsgi::{app_fn, WsgiService};
///
/// let greeting = String::from("hi");
/// let service = WsgiService::new(app_fn(move |_environ, start_response| {
///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
///     Ok(greeting.clone().into())
/// }));
/// # drop(service);
/// ```
pub fn app_fn<F>(f: F) -> AppFn<F>
where
    F: Fn(Environ, StartResponse) -> Result<Body, BoxError> + Send + Sync + 'static,
{
    AppFn(f)
}

/// An [`App`] made from a closure by [`app_fn`].
#[derive(Clone, Copy)]
pub struct AppFn<F>(F);

impl<F> App for AppFn<F>
where
    F: Fn(Environ, StartResponse) -> Result<Body, BoxError> + Send + Sync + 'static,
{
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
        (self.0)(environ, start_response)
    }
}

impl<F> fmt::Debug for AppFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AppFn")
            .field(&std::any::type_name::<F>())
            .finish()
    }
}
