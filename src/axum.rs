//! What axum 0.8 tells the environ: the mount point of `nest_service` and
//! the client address of `ConnectInfo`.
//!
//! Under `Router::nest_service("/app", service)` axum hands the service a URI
//! with the prefix stripped, and the stripped URI cannot tell `/app` from
//! `/app/` and eats one slash of `/app//x`. The environ is therefore built from
//! [`OriginalUri`] (the URI the client sent) and [`NestedPath`] (the nest
//! pattern, `/api/{version}` say): `SCRIPT_NAME` is as many path segments of
//! the original URI as the pattern has, `PATH_INFO` the rest, unchanged:
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
//! as well. Without a nest (`route_service`, `fallback_service` at the top)
//! the request's own URI is used, as outside axum.

use std::net::SocketAddr;

use ::axum::extract::connect_info::ConnectInfo;
use ::axum::extract::{NestedPath, OriginalUri};
use http::request::Parts;
use http::Uri;

/// Where a nested service is mounted, in the original URI.
#[derive(Debug)]
pub(crate) struct Mount<'a> {
    /// The URI the client sent.
    pub(crate) original: &'a Uri,
    /// Length of the mount point (the raw `SCRIPT_NAME`) in `original.path()`.
    pub(crate) prefix_len: usize,
}

/// The mount point of a service under `nest_service` (or inside a nested
/// router), or `None` when axum did not strip the URI.
pub(crate) fn mount(parts: &Parts) -> Option<Mount<'_>> {
    let pattern = parts.extensions.get::<NestedPath>()?;
    let OriginalUri(original) = parts.extensions.get::<OriginalUri>()?;
    match prefix_len(original.path(), pattern.as_str()) {
        Some(prefix_len) => Some(Mount {
            original,
            prefix_len,
        }),
        None => {
            tracing::debug!(
                nested_path = pattern.as_str(),
                original_uri = %original,
                "original URI does not match the nest pattern; using the request URI"
            );
            None
        }
    }
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

/// The client's address from `Router::into_make_service_with_connect_info::<SocketAddr>()`.
pub(crate) fn connect_info(extensions: &http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
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
