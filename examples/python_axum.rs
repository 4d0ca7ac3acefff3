//! The migration shape: one axum `Router` with the routes already ported to
//! Rust, the not-yet-ported Flask app as its fallback, and a ported WSGI
//! middleware in front of both.
//!
//! ```text
//! python3 -m venv .venv && .venv/bin/pip install flask
//! VIRTUAL_ENV=$PWD/.venv cargo run --release --features python --example python_axum [MODULE:CALLABLE] [ADDR]
//! curl -i http://127.0.0.1:8000/health        # ported: an axum handler
//! curl -i http://127.0.0.1:8000/users/7       # ported: axum, not Flask
//! curl -i http://127.0.0.1:8000/report?year=2024   # not ported: Flask
//! ```
//!
//! The Flask app defaults to `legacy_site:app` from examples/python/. Every
//! response carries the `X-Request-Id` the middleware sets, Flask's included.
#![deny(warnings)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use tower_layer::Layer;
use tower_wsgi::middleware::{from_fn, Middleware, MiddlewareLayer};
use tower_wsgi::python::PyApp;
use tower_wsgi::Builder;

/// A route already ported to axum.
async fn health() -> &'static str {
    "ok\n"
}

/// Another ported route, with a typed path parameter.
async fn user(Path(id): Path<u32>) -> String {
    format!("user {id}, served by axum\n")
}

/// The request-id middleware, ported from Python:
///
/// ```python
/// def request_id(app):
///     def middleware(environ, start_response):
///         rid = environ.get("HTTP_X_REQUEST_ID") or next_id()
///         environ["HTTP_X_REQUEST_ID"] = rid
///         def sr(status, headers, exc_info=None):
///             headers.append(("X-Request-Id", rid))
///             return start_response(status, headers, exc_info)
///         return app(environ, sr)
///     return middleware
/// ```
fn request_id() -> impl Middleware {
    let ids = AtomicU64::new(1);
    from_fn(move |mut environ, start_response, next| {
        let rid = match environ.get("HTTP_X_REQUEST_ID") {
            Some(rid) => rid.to_owned(),
            None => format!("req-{}", ids.fetch_add(1, Ordering::Relaxed)),
        };
        environ.insert("HTTP_X_REQUEST_ID", rid.clone());
        let start_response = start_response.map_head(move |_status, headers| {
            headers.push(("X-Request-Id".into(), rid.clone()));
        });
        next.call(environ, start_response)
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let spec = args.next().unwrap_or_else(|| "legacy_site:app".to_owned());
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8000".to_owned());

    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/python");
    let flask = PyApp::builder().python_path(examples).import(&spec)?;
    // The Python app's own service: its threads, its limits.
    let legacy = Builder::new()
        .max_threads(16)
        .max_request_body(16 * 1024 * 1024)
        .build(flask);
    let router = Router::new()
        .route("/health", get(health))
        .route("/users/{id}", get(user))
        .fallback_service(legacy);
    let app = MiddlewareLayer::new(request_id()).layer(router);

    let server = tower_wsgi::server::Server::bind(&addr).await?;
    println!("listening on {}", server.local_addr()?);
    server.serve(app).await?;
    Ok(())
}
