//! Request extensions the environ reads: what the connection and the
//! router know that the request line does not say.

use std::net::SocketAddr;

use http::Uri;

/// The client's address, as a request extension.
///
/// The crate's server inserts it; with your own accept loop, insert it
/// yourself to get `REMOTE_ADDR` and `REMOTE_PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// The address the connection was accepted on, as a request extension.
///
/// Gives `SERVER_NAME` and `SERVER_PORT` (the bind address, as Werkzeug does).
/// Without it they come from the `Host` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalAddr(pub SocketAddr);

/// Marks a request that came over TLS, as a request extension:
/// `wsgi.url_scheme` is then `https` whatever
/// [`Builder::https`](crate::Builder::https) says.
///
/// The crate's TLS server (feature `tls`) inserts it; with your own accept
/// loop and TLS stack, insert it yourself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Https;

/// Where a router mounted the service, as a request extension: the URI the
/// client sent, and how much of its path is the mount point.
///
/// With it, the environ describes the original URI: `SCRIPT_NAME` is the
/// mount point (percent-decoded), `PATH_INFO` the rest of the path, and
/// `REQUEST_URI`, `RAW_URI` and `QUERY_STRING` the original target, whatever
/// URI the router handed on. A configured
/// [`Builder::script_name`](crate::Builder::script_name) is matched below it.
///
/// Routers that strip a prefix before calling the service insert it; for
/// axum, `tower_wsgi::mount::AxumMount` (feature `axum`) does. Without it
/// the request's own URI is the one described, so a service under a
/// stripping router sees `SCRIPT_NAME` `""` and the stripped path.
///
/// ```
/// use tower_wsgi::environ::MountPoint;
///
/// let original: http::Uri = "/legacy/users?id=1".parse().unwrap();
/// let mount = MountPoint::new(original, "/legacy".len()).unwrap();
/// assert_eq!(mount.script_name_raw(), "/legacy");
/// // A mount point ends where a path segment does.
/// assert!(MountPoint::new("/legacyx".parse().unwrap(), "/legacy".len()).is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountPoint {
    original: Uri,
    prefix_len: usize,
}

impl MountPoint {
    /// The first `prefix_len` bytes of `original`'s path are the mount point.
    /// `None` unless they end at a segment boundary (the end of the path, or
    /// a `/`) and do not end with `/`.
    pub fn new(original: Uri, prefix_len: usize) -> Option<Self> {
        let path = original.path();
        let prefix = path.get(..prefix_len)?;
        let at_boundary = super::below_prefix(path, prefix).is_some();
        (at_boundary && !prefix.ends_with('/')).then_some(Self {
            original,
            prefix_len,
        })
    }

    /// The URI the client sent.
    pub fn original_uri(&self) -> &Uri {
        &self.original
    }

    /// The mount point as it appears in the original path (still
    /// percent-encoded).
    pub fn script_name_raw(&self) -> &str {
        &self.original.path()[..self.prefix_len]
    }

    pub(crate) fn prefix_len(&self) -> usize {
        self.prefix_len
    }
}
