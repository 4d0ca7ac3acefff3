//! One connection policy for a whole router: the edge's. Behind a
//! `MiddlewareLayer` the inner services' own `Connection` header is hop-by-hop
//! and dropped, so what the client's connection does is decided once, by the
//! builder given to `MiddlewareLayer::with_builder`.
#![deny(warnings)]
#![cfg(all(feature = "server", feature = "axum"))]

mod support;

use support::{serve, Framing};
use tower::Layer;
use tower_wsgi::middleware::{from_fn, MiddlewareLayer};
use tower_wsgi::{AppBody, BoxError, Builder, ConnectionPolicy, Environ, StartResponse};

/// The most common WSGI answer: `return [body]`, no `Content-Length`.
fn app(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    start_response.start("200 OK", [("Content-Type", "text/plain")])?;
    Ok(AppBody::from_chunks([&b"Hello world!\n"[..]]))
}

fn router(inner: Builder) -> axum::Router {
    axum::Router::new()
        .route_service("/a", inner.clone().build(app))
        .nest_service("/b", inner.build(app))
}

fn pass() -> impl tower_wsgi::middleware::Middleware {
    from_fn(|environ, start_response, next| next.call(environ, start_response))
}

fn keep() -> Builder {
    Builder::new().connection_policy(ConnectionPolicy::KeepAliveChunked)
}

#[test]
fn the_edge_keeps_the_connection_whatever_the_inner_services_say() {
    // Inner services left at the default (close): the edge's policy wins.
    let server = serve(MiddlewareLayer::with_builder(pass(), keep()).layer(router(Builder::new())));
    let mut conn = server.connect();
    for path in ["/a", "/b/x", "/a"] {
        conn.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let resp = conn.read_response(false);
        assert_eq!(resp.body, b"Hello world!\n", "{path}");
        assert_eq!(resp.framing, Framing::Chunked, "{path}");
        assert_eq!(resp.header("connection"), None, "{path}");
    }
    assert!(!conn.closes(), "the connection stays open");
}

#[test]
fn the_default_edge_closes_even_when_the_inner_services_keep_alive() {
    let server = serve(MiddlewareLayer::new(pass()).layer(router(keep())));
    let mut conn = server.connect();
    conn.send(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!(resp.body, b"Hello world!\n");
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(conn.closes());
}
