//! Micro-benchmarks of the per-request work the crate adds to hyper, through
//! the public API only: the environ and the head rules (inline requests that
//! differ only in them), and a whole request through `WsgiService`
//! in-process, inline and on the pool, beside a bare hyper service.
//!
//! ```text
//! cargo bench --bench micro
//! ```
#![deny(warnings)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Empty};
use tower::ServiceExt;
use tower_wsgi::{AppBody, BoxError, Builder, Environ, StartResponse};

/// A browser's GET, as hyper hands it over.
fn browser_request() -> http::Request<Empty<Bytes>> {
    http::Request::get("/articles/2024/hello-world?utm_source=feed&page=2")
        .header("host", "example.com")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
        .header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .header("accept-language", "en-US,en;q=0.5")
        .header("accept-encoding", "gzip, deflate, br")
        .header("cookie", "session=4f2a9c; theme=dark")
        .header("referer", "https://example.com/")
        .header("upgrade-insecure-requests", "1")
        .header("connection", "keep-alive")
        .body(Empty::new())
        .expect("a valid request")
}

fn hello(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    start_response.start(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", "11")],
    )?;
    Ok(AppBody::from(Bytes::from_static(b"Hello world")))
}

/// `hello` with the `start_response` of a typical page: three headers.
fn page(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    start_response.start(
        "200 OK",
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", "11"),
            ("Set-Cookie", "session=4f2a9c; Path=/; HttpOnly"),
        ],
    )?;
    Ok(AppBody::from(Bytes::from_static(b"Hello world")))
}

fn reads_path_info(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    black_box(environ.path_info().len());
    hello(environ, start_response)
}

fn reads_every_variable(
    environ: Environ,
    start_response: StartResponse,
) -> Result<AppBody, BoxError> {
    black_box(environ.iter().count());
    hello(environ, start_response)
}

/// The environ and the head rules, each priced as the difference between
/// two inline requests (no thread hand-off) that differ only in it.
fn per_request_work(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    type AppFn = fn(Environ, StartResponse) -> Result<AppBody, BoxError>;
    for (name, app) in [
        ("inline: hello, environ unread", hello as AppFn),
        ("inline: hello, PATH_INFO read", reads_path_info),
        ("inline: hello, every variable read", reads_every_variable),
        ("inline: start_response with 3 headers", page),
    ] {
        let service = Builder::new().inline(true).build(app);
        c.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let response = service.clone().oneshot(browser_request()).await;
                let body = response.expect("infallible").into_body().collect().await;
                black_box(body.expect("a complete body").to_bytes())
            })
        });
    }
}

fn whole_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let bare = tower::service_fn(|_req: http::Request<Empty<Bytes>>| async {
        let response = http::Response::builder()
            .header("content-type", "text/plain")
            .body(http_body_util::Full::new(Bytes::from_static(
                b"Hello world",
            )))
            .expect("a valid response");
        Ok::<_, std::convert::Infallible>(response)
    });
    c.bench_function("request in-process, bare hyper service", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = bare.oneshot(browser_request()).await;
            let body = response.expect("infallible").into_body().collect().await;
            black_box(body.expect("a complete body").to_bytes())
        })
    });
    for (name, service) in [
        (
            "request in-process, inline",
            Builder::new().inline(true).build(hello),
        ),
        ("request in-process, blocking", Builder::new().build(hello)),
    ] {
        c.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let response = service.clone().oneshot(browser_request()).await;
                let body = response.expect("infallible").into_body().collect().await;
                black_box(body.expect("a complete body").to_bytes())
            })
        });
    }
}

criterion_group!(benches, per_request_work, whole_request);
criterion_main!(benches);
