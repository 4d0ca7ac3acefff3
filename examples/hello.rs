//! The smallest legacy app, served on 127.0.0.1:8000.
//!
//! ```text
//! cargo run --example hello
//! curl -i http://127.0.0.1:8000/world
//! ```
#![deny(warnings)]
// The tests include this file for its app.
#![allow(dead_code)]

use tower_wsgi::{latin1, AppBody, BoxError, Environ, StartResponse};

// The WSGI original:
//
//     def hello(environ, start_response):
//         name = environ.get("PATH_INFO", "/").lstrip("/") or "World"
//         body = f"Hello, {name}!\n".encode("latin-1")
//         start_response("200 OK", [("Content-Type", "text/plain"),
//                                   ("Content-Length", str(len(body)))])
//         return [body]
//
// PATH_INFO is a native string (one char per byte), so the body is encoded
// back to latin-1: `/caf%C3%A9` answers the bytes the client sent.
pub(crate) fn hello(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    let name = match environ.path_info().trim_start_matches('/') {
        "" => "World",
        name => name,
    };
    let body = latin1::encode(&format!("Hello, {name}!\n"))
        .ok_or("PATH_INFO is not a native string")?
        .into_owned();
    start_response.start(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("Content-Length", &body.len().to_string()),
        ],
    )?;
    Ok(body.into())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let server = tower_wsgi::server::Server::bind("127.0.0.1:8000").await?;
    println!("listening on {}", server.local_addr()?);
    server.serve(tower_wsgi::WsgiService::new(hello)).await
}
