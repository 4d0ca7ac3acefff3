//! The legacy-app interface: `app(environ, start_response) -> body`.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use crate::body::AppBody;
use crate::environ::Environ;
use crate::error::BoxError;
use crate::response::StartResponse;

/// A WSGI-shaped application: `app(environ, start_response)` returns a body.
///
/// Implemented for plain functions with the signature
/// `fn(Environ, StartResponse) -> Result<AppBody, BoxError>`; for closures, wrap
/// them in [`app_fn`] so their argument types are inferred. Applications run
/// on the crate's thread pool, so they may block (on files, databases, or
/// `wsgi.input`).
///
/// An `Err` (Python's exception) or a panic before the headers went out is
/// answered 500 with the cause logged; after, the response is aborted.
///
/// ```
/// use tower_wsgi::{AppBody, BoxError, Environ, StartResponse};
///
/// fn hello(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
///     let body = format!("Hello, {}!", environ.path_info());
///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
///     Ok(body.into())
/// }
/// # let _ = tower_wsgi::WsgiService::new(hello);
/// ```
///
/// A closure passed straight to [`WsgiService::new`](crate::WsgiService::new)
/// cannot have its argument types inferred; [`app_fn`] gives them:
///
/// ```compile_fail,E0282
/// let service = tower_wsgi::WsgiService::new(|environ, start_response| {
///     start_response.start("200 OK", [("Content-Length", "0")])?;
///     Ok(tower_wsgi::AppBody::empty())
/// });
/// ```
///
/// To keep several apps of different types together (a map of apps, a
/// list to try in turn), box them as [`BoxApp`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a WSGI app",
    label = "not an `App`",
    note = "an app is a `fn(Environ, StartResponse) -> Result<AppBody, BoxError>`, a closure of that shape wrapped in `tower_wsgi::app_fn(...)`, or a type implementing `App`",
    note = "to mix apps of different types, box them: `tower_wsgi::BoxApp` (`Arc<dyn App>`)"
)]
pub trait App: Send + Sync + 'static {
    /// Handles one request.
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError>;

    /// Whether [`Builder::inline`](crate::Builder::inline) may run this
    /// application on the async workers (default `true`).
    ///
    /// An application that must only ever run on the pool's threads (one
    /// hosting an interpreter, say) answers `false`, and building an inline
    /// service for it fails. `false` also keeps it on its service's own
    /// threads behind a middleware layer (see
    /// [`Builder::join_edge`](crate::Builder::join_edge)).
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

    /// How many of its requests this application can compute at the same
    /// time, if fewer than the machine's cores (default `None`: no limit of
    /// its own).
    ///
    /// A service's own pool starts one thread per core at once, and more
    /// only for requests that block. An application that computes one
    /// request at a time however many threads run it (an interpreter with a
    /// global lock, as CPython's GIL) answers `Some(1)`: the pool then keeps
    /// a single thread at work, and adds threads only while the ones at work
    /// block (a request that sleeps or waits for I/O lets the lock go), since
    /// a second thread that computes would only take turns with the first.
    /// A shared [`ThreadPool`](crate::ThreadPool) keeps its own settings.
    fn parallelism(&self) -> Option<NonZeroUsize> {
        None
    }
}

impl<F> App for F
where
    F: Fn(Environ, StartResponse) -> Result<AppBody, BoxError> + Send + Sync + 'static,
{
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
        self(environ, start_response)
    }
}

impl<A: App + ?Sized> App for Arc<A> {
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
        (**self).call(environ, start_response)
    }

    fn allows_inline(&self) -> bool {
        (**self).allows_inline()
    }

    fn run_thread(&self, thread: &mut (dyn FnMut() + Send)) {
        (**self).run_thread(thread)
    }

    fn parallelism(&self) -> Option<NonZeroUsize> {
        (**self).parallelism()
    }
}

/// A type-erased, shared [`App`]: for maps and lists of apps of different
/// types, and for choosing an app at run time.
///
/// Any app becomes one with `Arc::new(app)`; a `BoxApp` is itself an app.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Arc;
/// use tower_wsgi::{app_fn, App, BoxApp, AppBody, BoxError, Environ, StartResponse};
///
/// fn index(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
///     Ok("index".into())
/// }
///
/// let greeting = String::from("hi");
/// let apps: HashMap<&str, BoxApp> = HashMap::from([
///     ("/", Arc::new(index) as BoxApp),
///     ("/hi", Arc::new(app_fn(move |_environ, start_response| {
///         start_response.start("200 OK", [("Content-Type", "text/plain")])?;
///         Ok(greeting.clone().into())
///     }))),
/// ]);
/// let router = app_fn(move |environ, start_response| {
///     match apps.get(environ.path_info()) {
///         Some(app) => app.call(environ, start_response),
///         None => {
///             start_response.start("404 Not Found", [("Content-Length", "0")])?;
///             Ok(AppBody::empty())
///         }
///     }
/// });
/// # let client = tower_wsgi::test_client::TestClient::new(router);
/// # assert_eq!(client.get("/hi").send_blocking().text(), "hi");
/// # assert_eq!(client.get("/").send_blocking().text(), "index");
/// # assert_eq!(client.get("/x").send_blocking().status(), 404);
/// ```
///
/// An array of differently typed apps does not compile without it:
///
/// ```compile_fail,E0308
/// # use tower_wsgi::app_fn;
/// let apps = [
///     app_fn(|_environ, start_response| { start_response.start("200 OK", [("A", "1")])?; Ok("a".into()) }),
///     app_fn(|_environ, start_response| { start_response.start("200 OK", [("B", "2")])?; Ok("b".into()) }),
/// ];
/// ```
pub type BoxApp = Arc<dyn App>;

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
    F: Fn(Environ, StartResponse) -> Result<AppBody, BoxError> + Send + Sync + 'static,
{
    AppFn(f)
}

/// An [`App`] made from a closure by [`app_fn`].
#[derive(Clone, Copy)]
pub struct AppFn<F>(F);

impl<F> App for AppFn<F>
where
    F: Fn(Environ, StartResponse) -> Result<AppBody, BoxError> + Send + Sync + 'static,
{
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
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
