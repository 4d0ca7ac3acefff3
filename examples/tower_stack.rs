//! A legacy app inside an ordinary tower middleware stack: tracing, overload
//! shedding, a concurrency limit, a request body limit, compression and a
//! timeout, all from tower and tower-http.
//!
//! ```text
//! cargo run --features axum --example tower_stack [ADDR]  # ADDR defaults to 127.0.0.1:8000
//! curl --compressed -i http://127.0.0.1:8000/stream   # gzip when asked for
//! curl -i --data-binary @big.file http://127.0.0.1:8000/upload  # 413 over 1 MiB
//! curl -i http://127.0.0.1:8000/slow                  # 504 after 2 seconds
//! ```
#![deny(warnings)]

use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use http::StatusCode;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tower_wsgi::{AppBody, BoxError, Environ, StartResponse, WsgiService};

fn legacy(mut environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    match environ.path_info() {
        // No Content-Length: a streamed body, gzip-compressed on the way out.
        "/stream" => {
            start_response.start("200 OK", [("Content-Type", "text/plain")])?;
            Ok(AppBody::from_chunks(
                (1..=1000).map(|n| format!("line {n} of a legacy report\n")),
            ))
        }
        // Reads wsgi.input: tower-http's limit ends the read past 1 MiB.
        "/upload" => {
            let received = environ.input().read_all()?.len();
            let body = format!("received {received} bytes\n");
            start_response.start(
                "200 OK",
                [
                    ("Content-Type", "text/plain"),
                    ("Content-Length", &body.len().to_string()),
                ],
            )?;
            Ok(body.into())
        }
        // Slower than the timeout: the client gets 504, this write then fails
        // and the application gives up.
        "/slow" => {
            let write = start_response.start("200 OK", [("Content-Type", "text/plain")])?;
            std::thread::sleep(Duration::from_secs(3));
            write.write("too late\n")?;
            Ok(AppBody::empty())
        }
        _ => {
            start_response.start(
                "200 OK",
                [("Content-Type", "text/plain"), ("Content-Length", "6")],
            )?;
            Ok("hello\n".into())
        }
    }
}

/// `LoadShed` refuses work with an error; the client gets a 503 instead.
async fn overloaded(error: BoxError) -> StatusCode {
    if error.is::<tower::load_shed::error::Overloaded>() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tower_http=debug,tower_wsgi=info,warn".into()),
        )
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".to_owned());

    // Outermost first. The timeout sits right on the WSGI service, whose
    // response body has the `Default` that tower-http's timeout answers with.
    let service = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http())
        .layer(HandleErrorLayer::new(overloaded))
        .load_shed()
        .concurrency_limit(64)
        .layer(RequestBodyLimitLayer::new(1024 * 1024))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(2),
        ))
        .service(WsgiService::new(legacy));

    let server = tower_wsgi::server::Server::bind(addr.as_str()).await?;
    println!("listening on {}", server.local_addr()?);
    server.serve(service).await
}
