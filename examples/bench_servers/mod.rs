//! The benchmark's servers, shared by `bench` (the system allocator) and
//! `bench_mimalloc` (the same servers on mimalloc): `serve MODE ADDR`.
//!
//! Every server, bare hyper's too, runs as `examples/hello.rs` does: a
//! `tracing_subscriber::fmt` subscriber at `INFO` (`RUST_LOG` overrides it)
//! on a multi-threaded tokio runtime. The subscriber writes to stderr, which
//! the harness sends to `/dev/null`.

use std::convert::Infallible;
use std::io::Read;

use bytes::Bytes;
use http::{header, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use tower_wsgi::{AppBody, BoxError, Builder, Environ, StartResponse, WsgiService};

pub(crate) const HELLO: &[u8] = b"Hello world";
pub(crate) const CHUNK: usize = 64 * 1024;
static CHUNK_BYTES: [u8; CHUNK] = [b'x'; CHUNK];
pub(crate) const STREAM_BYTES: u64 = 1 << 30;

/// `serve MODE ADDR`: prints `listening on ADDR`, then serves until killed.
pub(crate) fn serve(mode: &str, addr: &str) -> Result<(), BoxError> {
    // To stderr, which the harness discards: every event is still formatted
    // and written, as on a terminal, without filling the table.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // The idle row holds 10,000 connections open, some silent for long on
        // a loaded machine: past the default connection limit and idle timeout.
        let server = tower_wsgi::server::Server::bind(addr)
            .await?
            .max_connections(20_000)
            .idle_timeout(std::time::Duration::from_secs(3600));
        let addr = server.local_addr()?;
        println!("listening on {addr}");
        match mode {
            "bare-hello" => server.serve(tower::service_fn(bare_hello)).await?,
            "spawn-blocking-hello" => {
                server
                    .serve(tower::service_fn(spawn_blocking_hello))
                    .await?
            }
            "wsgi-hello" => server.serve(WsgiService::new(hello)).await?,
            "wsgi-inline-hello" => {
                server
                    .serve(Builder::new().inline(true).build(hello))
                    .await?
            }
            "wsgi-nested-hello" => server.serve(nested_hello(true)).await?,
            "wsgi-nested-own-pool-hello" => server.serve(nested_hello(false)).await?,
            "bare-headers" => server.serve(tower::service_fn(bare_headers)).await?,
            "wsgi-headers" => server.serve(WsgiService::new(headers)).await?,
            "bare-stream" => server.serve(tower::service_fn(bare_stream)).await?,
            "wsgi-stream" => server.serve(WsgiService::new(stream)).await?,
            "bare-upload" => server.serve(tower::service_fn(bare_upload)).await?,
            "wsgi-upload" => server.serve(WsgiService::new(upload)).await?,
            #[cfg(feature = "python")]
            "python" => server.serve(python_bench_app()?).await?,
            other => return Err(format!("unknown mode {other}").into()),
        }
        Ok(())
    })
}

/// `bench_python`'s app (tests/python/bench_app.py) hosted by `PyApp`.
/// Granian keeps a connection alive after a body without a Content-Length,
/// and gives a returned list its length; the crate's default closes the
/// connection (Werkzeug's rule), so the bench opts in to the policy closest
/// to Granian's: a list of one `bytes` object is measured, a generator chunked.
#[cfg(feature = "python")]
fn python_bench_app() -> Result<WsgiService<tower_wsgi::python::PyApp>, BoxError> {
    let app = tower_wsgi::python::PyApp::builder()
        .python_path(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python"))
        .import("bench_app:app")?;
    Ok(Builder::new()
        .connection_policy(tower_wsgi::ConnectionPolicy::ComputeLength)
        .build(app))
}

/// The hello app behind a pass-through ported middleware: on the edge's
/// thread (`join`, the default), or as an edge of its own.
fn nested_hello(
    join: bool,
) -> tower_wsgi::middleware::MiddlewareService<impl tower_wsgi::middleware::Middleware> {
    use tower::Layer;
    let pass = tower_wsgi::middleware::from_fn(|environ, start_response, next| {
        next.call(environ, start_response)
    });
    tower_wsgi::middleware::MiddlewareLayer::new(pass)
        .layer(Builder::new().join_edge(join).build(hello))
}

fn hello_response() -> Response<Full<Bytes>> {
    Response::builder()
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(HELLO)))
        .expect("static response")
}

async fn bare_hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(hello_response())
}

async fn spawn_blocking_hello(
    _req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(tokio::task::spawn_blocking(hello_response)
        .await
        .expect("the closure does not panic"))
}

// def hello(environ, start_response):
//     start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")])
//     return [b"Hello world"]
fn hello(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    start_response.start(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", "11")],
    )?;
    Ok(AppBody::from(Bytes::from_static(HELLO)))
}

/// The many-headers request: both sides answer the cookie's length.
async fn bare_headers(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let cookie = req.headers().get(header::COOKIE).map_or(0, |c| c.len());
    Ok(Response::builder()
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(cookie.to_string())))
        .expect("static response"))
}

// def headers(environ, start_response):
//     body = str(len(environ.get("HTTP_COOKIE", ""))).encode()
//     start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
//     return [body]
fn headers(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    let body = environ.get("HTTP_COOKIE").map_or(0, str::len).to_string();
    start_response.start(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("Content-Length", &body.len().to_string()),
        ],
    )?;
    Ok(body.into())
}

fn chunks() -> impl Iterator<Item = Bytes> {
    (0..STREAM_BYTES / CHUNK as u64).map(|_| Bytes::from_static(&CHUNK_BYTES))
}

async fn bare_stream(_req: Request<Incoming>) -> Result<Response<Chunks>, Infallible> {
    Ok(Response::builder()
        .header("content-length", STREAM_BYTES)
        .body(Chunks {
            left: STREAM_BYTES / CHUNK as u64,
        })
        .expect("static response"))
}

/// The bare hyper side of the stream: the same chunks, as an `http_body::Body`.
struct Chunks {
    left: u64,
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        self.left -= 1;
        std::task::Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK_BYTES)))))
    }
}

fn stream(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    start_response.start(
        "200 OK",
        [
            ("Content-Type", "application/octet-stream".to_owned()),
            ("Content-Length", STREAM_BYTES.to_string()),
        ],
    )?;
    Ok(AppBody::from_chunks(chunks()))
}

async fn bare_upload(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut body = req.into_body();
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => received += frame.data_ref().map_or(0, |d| d.len() as u64),
            Err(_) => break,
        }
    }
    Ok(Response::new(Full::new(Bytes::from(received.to_string()))))
}

fn upload(mut environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    let mut buf = vec![0; CHUNK];
    let mut received = 0u64;
    loop {
        match environ.input().read(&mut buf)? {
            0 => break,
            n => received += n as u64,
        }
    }
    let body = received.to_string();
    start_response.start("200 OK", [("Content-Length", body.len().to_string())])?;
    Ok(body.into())
}
