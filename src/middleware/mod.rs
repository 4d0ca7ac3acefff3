//! Ported WSGI middleware: a [`Middleware`] receives the app it wraps as
//! [`Next`]; [`MiddlewareLayer`] puts one in front of any tower service (an
//! axum `Router` included), [`MiddlewareApp`] in front of a legacy app.
//! [`Dispatcher`] mounts apps by path prefix and [`ProxyFix`] trusts proxy
//! headers, as their Werkzeug namesakes do.

use std::fmt;
use std::sync::Arc;

use crate::app::App;
use crate::body::AppBody;
use crate::environ::Environ;
use crate::error::BoxError;
use crate::response::StartResponse;

mod capture;
mod dispatcher;
mod layer;
mod map_chunks;
mod next;
mod proxy_fix;

pub use capture::Captured;
pub(crate) use capture::WriteLimit;
pub use map_chunks::{map_chunks, MapChunks};

pub use dispatcher::Dispatcher;
pub use layer::{MiddlewareLayer, MiddlewareService};
pub use next::Next;
pub use proxy_fix::{ProxyFix, ProxyFixOrig};

/// A ported WSGI middleware: an app that receives the app it wraps as `next`.
///
/// Implemented for closures `Fn(Environ, StartResponse, &Next) -> Result<AppBody, BoxError>`
/// (wrap them in [`from_fn`] so the argument types are inferred). The
/// middleware calls `next.call(environ, start_response)` exactly where the
/// Python code calls the wrapped app, or answers on its own without it.
/// [`MiddlewareLayer`] puts one in front of a tower service,
/// [`MiddlewareApp`] in front of a legacy [`App`].
pub trait Middleware: Send + Sync + 'static {
    /// Handles one request, calling `next` or not.
    fn call(
        &self,
        environ: Environ,
        start_response: StartResponse,
        next: &Next,
    ) -> Result<AppBody, BoxError>;
}

impl<F> Middleware for F
where
    F: Fn(Environ, StartResponse, &Next) -> Result<AppBody, BoxError> + Send + Sync + 'static,
{
    fn call(
        &self,
        environ: Environ,
        start_response: StartResponse,
        next: &Next,
    ) -> Result<AppBody, BoxError> {
        self(environ, start_response, next)
    }
}

impl<M: Middleware + ?Sized> Middleware for Arc<M> {
    fn call(
        &self,
        environ: Environ,
        start_response: StartResponse,
        next: &Next,
    ) -> Result<AppBody, BoxError> {
        (**self).call(environ, start_response, next)
    }
}

/// Turns a closure into a [`Middleware`], with its argument types inferred.
///
/// ```
/// use tower_wsgi::middleware::from_fn;
///
/// // environ["PATH_INFO"] = environ["PATH_INFO"].lower(); return app(environ, start_response)
/// let lowercase_paths = from_fn(|mut environ, start_response, next| {
///     let lowered = environ.path_info().to_lowercase();
///     environ.insert("PATH_INFO", lowered);
///     next.call(environ, start_response)
/// });
/// # drop(lowercase_paths);
/// ```
pub fn from_fn<F>(f: F) -> FromFn<F>
where
    F: Fn(Environ, StartResponse, &Next) -> Result<AppBody, BoxError> + Send + Sync + 'static,
{
    FromFn(f)
}

/// A [`Middleware`] made from a closure by [`from_fn`].
#[derive(Clone, Copy)]
pub struct FromFn<F>(F);

impl<F> Middleware for FromFn<F>
where
    F: Fn(Environ, StartResponse, &Next) -> Result<AppBody, BoxError> + Send + Sync + 'static,
{
    fn call(
        &self,
        environ: Environ,
        start_response: StartResponse,
        next: &Next,
    ) -> Result<AppBody, BoxError> {
        (self.0)(environ, start_response, next)
    }
}

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FromFn")
            .field(&std::any::type_name::<F>())
            .finish()
    }
}

// ===== MiddlewareApp =====

/// A [`Middleware`] in front of a legacy [`App`]: an [`App`] itself.
///
/// The same middleware type serves both ways: in front of tower services
/// through [`MiddlewareLayer`], in front of legacy apps through this.
///
/// ```
/// use tower_wsgi::middleware::{from_fn, MiddlewareApp};
/// use tower_wsgi::{app_fn, AppBody, WsgiService};
///
/// let app = app_fn(|environ, start_response| {
///     let user = environ.get("REMOTE_USER").unwrap_or("nobody").to_owned();
///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
///     Ok(user.into())
/// });
/// let trust_proxy_user = from_fn(|mut environ, start_response, next| {
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
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
        self.middleware.call(environ, start_response, &self.next)
    }

    fn allows_inline(&self) -> bool {
        self.next.allows_inline()
    }

    fn run_thread(&self, thread: &mut (dyn FnMut() + Send)) {
        self.next.run_thread(thread)
    }

    fn parallelism(&self) -> Option<std::num::NonZeroUsize> {
        self.next.parallelism()
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
