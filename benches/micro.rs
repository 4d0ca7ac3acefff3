//! Micro-benchmarks of the per-request work the crate adds to hyper:
//! request to environ, the response rules on `start_response`, and a whole
//! request through `WsgiService` in-process, inline and on the pool.
//!
//! ```text
//! cargo bench --bench micro
//! ```
#![deny(warnings)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http_body_util::{BodyExt, Empty};
use tower::ServiceExt;
use tower_wsgi::{Body, BoxError, Builder, Environ, StartResponse};

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

fn hello(_environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
    start_response.start(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", "11")],
    )?;
    Ok(Body::from(Bytes::from_static(b"Hello world")))
}

fn environ(c: &mut Criterion) {
    let parts = || browser_request().into_parts().0;
    c.bench_function("request to environ (9 headers)", |b| {
        b.iter_batched(parts, tower_wsgi::__bench::environ, BatchSize::SmallInput)
    });
    c.bench_function("request to environ, PATH_INFO read", |b| {
        b.iter_batched(
            parts,
            |parts| tower_wsgi::__bench::environ(parts).path_info().len(),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("request to environ, every variable read", |b| {
        b.iter_batched(
            parts,
            |parts| tower_wsgi::__bench::environ(parts).iter().count(),
            BatchSize::SmallInput,
        )
    });
    let environ = tower_wsgi::__bench::environ(parts());
    c.bench_function("environ lookup (HTTP_USER_AGENT)", |b| {
        b.iter(|| {
            black_box(&environ)
                .get(black_box("HTTP_USER_AGENT"))
                .map(str::len)
        })
    });
}

fn response_rules(c: &mut Criterion) {
    let headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", "5120"),
        ("Set-Cookie", "session=4f2a9c; Path=/; HttpOnly"),
    ];
    c.bench_function("start_response rules (3 headers)", |b| {
        b.iter(|| tower_wsgi::__bench::prepare_head(black_box("200 OK"), black_box(&headers)))
    });
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

criterion_group!(benches, environ, response_rules, whole_request);
criterion_main!(benches);
