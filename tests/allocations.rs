//! Heap allocations per hello request, counted with a counting allocator:
//! what the crate adds to a bare hyper service doing the same work, for
//! each dispatch mode. Run with `--nocapture` to see the counts.
#![deny(warnings)]

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use tower::{Service, ServiceExt};
use tower_wsgi::{AppBody, BoxError, Builder, Environ, StartResponse};

#[global_allocator]
static HEAP: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const REQUESTS: usize = 2000;

fn hello(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    start_response.start(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", "11")],
    )?;
    Ok(AppBody::from(Bytes::from_static(b"Hello world")))
}

fn requests(n: usize) -> Vec<Request<Full<Bytes>>> {
    (0..n)
        .map(|_| {
            Request::get("/hello?name=world")
                .header("host", "bench")
                .header("user-agent", "wrk")
                .body(Full::new(Bytes::new()))
                .unwrap()
        })
        .collect()
}

/// Allocations per request through `service`, one request at a time; the
/// requests are built before counting starts.
fn allocations_per_request<S, B>(runtime: &tokio::runtime::Runtime, service: S) -> f64
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    runtime.block_on(async {
        // Warm-up: pool threads, lazily made statics.
        for request in requests(200) {
            let response = service.clone().oneshot(request).await.unwrap();
            response.into_body().collect().await.unwrap();
        }
        let batch = requests(REQUESTS);
        let region = Region::new(HEAP);
        for request in batch {
            let response = service.clone().oneshot(request).await.unwrap();
            let body = response.into_body().collect().await.unwrap();
            drop(body);
        }
        region.change().allocations as f64 / REQUESTS as f64
    })
}

#[test]
fn a_hello_request_allocates_little_beyond_bare_hyper() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bare = allocations_per_request(
        &runtime,
        tower::service_fn(|_req: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(
                Response::builder()
                    .header("content-type", "text/plain")
                    .body(Full::new(Bytes::from_static(b"Hello world")))
                    .unwrap(),
            )
        }),
    );
    let blocking = allocations_per_request(&runtime, Builder::new().build(hello));
    let inline = allocations_per_request(&runtime, Builder::new().inline(true).build(hello));
    println!(
        "allocations per hello request: bare {bare:.2}, tower-wsgi blocking {blocking:.2}, inline {inline:.2}"
    );
    // The bounds are the counts measured (6 and 7) plus half an allocation
    // for the pool's own now and then (a thread starting): one more
    // allocation per request fails here.
    assert!(
        inline - bare <= INLINE_EXTRA,
        "inline adds {}",
        inline - bare
    );
    assert!(
        blocking - bare <= BLOCKING_EXTRA,
        "blocking adds {}",
        blocking - bare
    );
}

const INLINE_EXTRA: f64 = 6.5;
const BLOCKING_EXTRA: f64 = 7.5;
