//! Migrating a legacy app to axum one route at a time.
//!
//! Ported routes are axum handlers; everything else still reaches the legacy
//! app, both under `/legacy` (where it sees `SCRIPT_NAME=/legacy`) and as the
//! fallback (at the root, `SCRIPT_NAME` empty).
//!
//! ```text
//! cargo run --features axum --example axum_mount [ADDR]   # ADDR defaults to 127.0.0.1:8000
//! curl http://127.0.0.1:8000/health          # ported: an axum handler
//! curl http://127.0.0.1:8000/users/7         # ported, with a path parameter
//! curl http://127.0.0.1:8000/legacy/hello    # legacy, SCRIPT_NAME=/legacy
//! curl http://127.0.0.1:8000/report?year=2024  # legacy, through the fallback
//! ```
#![deny(warnings)]

use std::net::SocketAddr;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use tower_wsgi::mount::AxumMount;
use tower_wsgi::{AppBody, BoxError, Environ, StartResponse, WsgiService};

/// The legacy application, as ported from Python:
///
/// ```python
/// def application(environ, start_response):
///     base = environ["SCRIPT_NAME"]
///     path = environ["PATH_INFO"]
///     ...
/// ```
fn legacy(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    let base = environ.script_name();
    let body = match environ.path_info() {
        "" | "/" => format!("legacy index; try {base}/hello\n"),
        "/hello" => format!(
            "hello from the legacy app, mounted at {:?}, called by {}\n",
            base,
            environ.remote_addr().unwrap_or("an unknown client"),
        ),
        "/report" => format!("legacy report for {:?}\n", environ.query_string()),
        other => {
            let body = format!("legacy app: no page at {other}\n");
            start_response.start(
                "404 Not Found",
                [
                    ("Content-Type", "text/plain"),
                    ("Content-Length", &body.len().to_string()),
                ],
            )?;
            return Ok(body.into());
        }
    };
    start_response.start(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("Content-Length", &body.len().to_string()),
        ],
    )?;
    Ok(body.into())
}

/// A route already ported to axum.
async fn health() -> &'static str {
    "ok\n"
}

/// Another ported route, with a typed path parameter.
async fn user(Path(id): Path<u32>) -> String {
    format!("user {id}, served by axum\n")
}

fn router() -> Router {
    // AxumMount: SCRIPT_NAME and PATH_INFO from the URI the client sent.
    let legacy = AxumMount::new(WsgiService::new(legacy));
    Router::new()
        .route("/health", get(health))
        .route("/users/{id}", get(user))
        .nest_service("/legacy", legacy.clone())
        .fallback_service(legacy)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".to_owned());
    let listener = tokio::net::TcpListener::bind(addr.as_str()).await?;
    println!("listening on {}", listener.local_addr()?);
    // `ConnectInfo` gives the legacy app REMOTE_ADDR and REMOTE_PORT.
    axum::serve(
        listener,
        router().into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
