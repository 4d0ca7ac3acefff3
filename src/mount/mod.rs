//! Mounting under axum 0.8 (feature `axum`), made explicit.
//!
//! Under `Router::nest_service("/app", service)` axum hands the service a URI
//! with the prefix stripped, and the stripped URI cannot tell `/app` from
//! `/app/` and eats one slash of `/app//x`. [`AxumMount`] (or
//! [`AxumMountLayer`]) wrapped around the service reads what axum knows,
//! [`OriginalUri`] (the URI the client sent) and [`NestedPath`] (the nest
//! pattern, `/api/{version}` say), and hands the service a
//! [`MountPoint`]: `SCRIPT_NAME` is as many path segments of the original
//! URI as the pattern has, `PATH_INFO` the rest, unchanged:
//!
//! | nest | request | `SCRIPT_NAME` | `PATH_INFO` |
//! |---|---|---|---|
//! | `/app` | `/app` | `/app` | `""` |
//! | `/app` | `/app/` | `/app` | `/` |
//! | `/app` | `/app//x` | `/app` | `//x` |
//! | `/api/{version}` | `/api/v1/users` | `/api/v1` | `/users` |
//! | `/outer` then `/inner` | `/outer/inner/x` | `/outer/inner` | `/x` |
//!
//! `REQUEST_URI`, `RAW_URI` and `QUERY_STRING` then describe the original URI
//! as well. It also gives the service the client's address from
//! `ConnectInfo<SocketAddr>` (`into_make_service_with_connect_info`), as a
//! [`RemoteAddr`], when none is there yet.
//!
//! Nothing changes unless the service is wrapped: the `axum` feature alone
//! never alters an environ. A [`WsgiService`](crate::WsgiService) nested
//! without it sees the stripped URI (`SCRIPT_NAME` `""`), as any tower
//! service would; with the feature on it also logs a warning, once per
//! service, naming the fix. Outside a nest (`route_service`, a top-level
//! `fallback_service`) the wrapper changes only `REMOTE_ADDR`.
//!
//! ```
//! use axum::{routing::get, Router};
//! use tower_wsgi::mount::AxumMount;
//! use tower_wsgi::{AppBody, BoxError, Environ, StartResponse, WsgiService};
//!
//! fn legacy(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
//!     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
//!     Ok(format!("{} + {}", environ.script_name(), environ.path_info()).into())
//! }
//!
//! let legacy = AxumMount::new(WsgiService::new(legacy));
//! let app: Router = Router::new()
//!     .route("/health", get(|| async { "ok" })) // already ported
//!     .nest_service("/legacy", legacy.clone()) // SCRIPT_NAME=/legacy
//!     .fallback_service(legacy); // everything else, SCRIPT_NAME empty
//! # drop(app);
//! ```

use std::net::SocketAddr;
use std::task::{Context, Poll};

use ::axum::extract::connect_info::ConnectInfo;
use ::axum::extract::{NestedPath, OriginalUri};
use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use crate::environ::{MountPoint, RemoteAddr};

/// Wraps services in [`AxumMount`].
#[derive(Clone, Copy, Debug, Default)]
pub struct AxumMountLayer;

impl AxumMountLayer {
    /// The layer.
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for AxumMountLayer {
    type Service = AxumMount<S>;

    fn layer(&self, inner: S) -> AxumMount<S> {
        AxumMount::new(inner)
    }
}

/// A service that takes its [`MountPoint`] and client address from axum;
/// see the [module docs](self).
#[derive(Clone, Copy, Debug)]
pub struct AxumMount<S> {
    inner: S,
}

impl<S> AxumMount<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for AxumMount<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        let extensions = request.extensions();
        if let Some(mount) = mount_point(extensions) {
            request.extensions_mut().insert(mount);
        }
        if request.extensions().get::<RemoteAddr>().is_none() {
            if let Some(ConnectInfo(addr)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
                let addr = *addr;
                request.extensions_mut().insert(RemoteAddr(addr));
            }
        }
        self.inner.call(request)
    }
}

/// The mount point of a service under `nest_service` (or inside a nested
/// router), or `None` when axum did not strip the URI.
fn mount_point(extensions: &http::Extensions) -> Option<MountPoint> {
    let pattern = extensions.get::<NestedPath>()?;
    let OriginalUri(original) = extensions.get::<OriginalUri>()?;
    let mount = prefix_len(original.path(), pattern.as_str())
        .and_then(|len| MountPoint::new(original.clone(), len));
    if mount.is_none() {
        tracing::debug!(
            nested_path = pattern.as_str(),
            original_uri = %original,
            "original URI does not match the nest pattern; using the request URI"
        );
    }
    mount
}

/// `true` when axum nested the service and no [`AxumMount`] said where.
pub(crate) fn nested_without_mount_point(extensions: &http::Extensions) -> bool {
    extensions.get::<NestedPath>().is_some() && extensions.get::<MountPoint>().is_none()
}

/// The length of the first path segments of `path` that match `pattern`
/// (one segment per pattern segment, `{capture}`s matching any), or `None`
/// when they do not match.
fn prefix_len(path: &str, pattern: &str) -> Option<usize> {
    let mut len = 0;
    let mut rest = path;
    // A trailing `/` in the pattern (`/app/`) adds no segment: axum routes
    // `/app/` and `/app/x` there, and SCRIPT_NAME never ends with `/`.
    for wanted in pattern.trim_end_matches('/').split('/').skip(1) {
        let after_slash = rest.strip_prefix('/')?;
        let segment = after_slash.split('/').next().unwrap_or("");
        if !(is_capture(wanted) || segment == wanted) {
            return None;
        }
        len += 1 + segment.len();
        rest = &after_slash[segment.len()..];
    }
    Some(len)
}

/// axum's rule for a path parameter: `{name}`, but not `{{escaped}}` or `{*wildcard}`.
fn is_capture(segment: &str) -> bool {
    segment.starts_with('{')
        && segment.ends_with('}')
        && !segment.starts_with("{{")
        && !segment.ends_with("}}")
        && !segment.starts_with("{*")
}

#[cfg(test)]
mod tests {
    use super::prefix_len;

    #[test]
    fn prefix_is_one_original_segment_per_pattern_segment() {
        let cases = [
            ("/app", "/app", Some(4)),
            ("/app/", "/app", Some(4)),
            ("/app//x", "/app", Some(4)),
            ("/app/x/y", "/app/", Some(4)),
            ("/api/v1/users", "/api/{version}", Some(7)),
            ("/api/v%201", "/api/{version}", Some(10)),
            ("/outer/inner/foo", "/outer/inner", Some(12)),
            ("/appx", "/app", None),
            ("/", "/app", None),
            ("/other/x", "/app", None),
        ];
        for (path, pattern, expected) in cases {
            assert_eq!(
                prefix_len(path, pattern),
                expected,
                "{path} under {pattern}"
            );
        }
    }
}
