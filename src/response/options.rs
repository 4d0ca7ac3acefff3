//! The options the response rules are applied with, set through
//! [`Builder`](crate::Builder).

use http::HeaderValue;

/// What happens to the connection after a response whose length the
/// application did not declare (rule 1).
///
/// The default is Werkzeug's: such a response ends an HTTP/1 connection,
/// so every `return [body]` without `Content-Length` costs the client a new
/// connection. [`KeepAliveChunked`](ConnectionPolicy::KeepAliveChunked), as
/// gunicorn does, keeps HTTP/1.1 connections open instead, and
/// [`ComputeLength`](ConnectionPolicy::ComputeLength), as waitress does,
/// also gives a body of one chunk its `Content-Length`: the usual
/// `return [body]` then costs neither a connection nor chunked framing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionPolicy {
    /// Werkzeug's rule (the default): on HTTP/1 the response carries
    /// `Connection: close` and the connection closes after it.
    #[default]
    CloseWithoutLength,
    /// gunicorn's rule: on HTTP/1.1 the body is chunked and the connection
    /// stays open. HTTP/1.0 has no chunking, so it still closes there.
    KeepAliveChunked,
    /// PEP 3333's suggestion, as waitress follows it: a body of one chunk
    /// (or of none) gets the `Content-Length` of its bytes, and any other
    /// is chunked as under [`KeepAliveChunked`](ConnectionPolicy::KeepAliveChunked).
    ///
    /// One chunk means that nothing came through `write()`, and that the body
    /// knew its length as it was made ([`AppBody::content_length`]) and
    /// ended with its first chunk: `"text".into()` in Rust, a `list` or
    /// `tuple` of one `bytes` object from a hosted Python app. HEAD answers
    /// keep the application's headers as they are, and an HTTP/1.0
    /// connection still closes after a response whose length the
    /// application did not declare.
    ///
    /// [`AppBody::content_length`]: crate::AppBody::content_length
    ComputeLength,
}

/// What happens to a hop-by-hop header (`Connection`, `Keep-Alive`,
/// `Proxy-Connection`, `Transfer-Encoding`, `Upgrade`, `TE`, `Trailer`) set by
/// the application (rule 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HopByHop {
    /// A fatal application error, as PEP 3333 says (the default): 500.
    #[default]
    Reject,
    /// The header is dropped with a warning and the response goes on.
    Drop,
}

/// The default `Server` token: `tower-wsgi/VERSION`.
pub(crate) const DEFAULT_SERVER: &str = concat!("tower-wsgi/", env!("CARGO_PKG_VERSION"));

/// What the head rules need of the options.
#[derive(Clone, Debug)]
pub(crate) struct HeadRules {
    pub(crate) connection_policy: ConnectionPolicy,
    /// The `Server` header added when the application set none.
    pub(crate) server: Option<HeaderValue>,
    pub(crate) hop_by_hop: HopByHop,
}

impl Default for HeadRules {
    fn default() -> Self {
        Self {
            connection_policy: ConnectionPolicy::default(),
            server: Some(HeaderValue::from_static(DEFAULT_SERVER)),
            hop_by_hop: HopByHop::default(),
        }
    }
}

/// The options of one service's responses.
#[derive(Clone, Debug)]
pub(crate) struct ResponseOptions {
    pub(crate) head: HeadRules,
    pub(crate) passthrough_errors: bool,
    /// How many chunks may wait for a slow client.
    pub(crate) response_buffer: usize,
}

impl Default for ResponseOptions {
    fn default() -> Self {
        Self {
            head: HeadRules::default(),
            passthrough_errors: false,
            response_buffer: 4,
        }
    }
}
