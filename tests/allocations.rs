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
    // The bounds are the counts measured (1 inline, 0 blocking: the response
    // head is built in a recycled map, its repeated values shared) plus half
    // an allocation for the pool's own now and then (a thread starting): one
    // more allocation per request fails here.
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

const INLINE_EXTRA: f64 = 1.5;
const BLOCKING_EXTRA: f64 = 0.5;

/// Records the thread that drops it.
#[derive(Clone)]
struct DropSite(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Drop for DropSite {
    fn drop(&mut self) {
        let name = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        self.0.lock().unwrap().push(name);
    }
}

#[test]
fn the_request_made_on_the_async_worker_is_freed_there_not_on_the_app_thread() {
    // glibc's malloc makes a free on another thread than the allocating one
    // costly: the request's headers and extensions go back to be freed.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("async-worker")
        .enable_all()
        .build()
        .unwrap();
    let sites = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let service = Builder::new().build(hello);
    runtime.block_on(async {
        let sites = sites.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                let mut request = requests(1).pop().unwrap();
                request.extensions_mut().insert(DropSite(sites.clone()));
                let response = service.clone().oneshot(request).await.unwrap();
                response.into_body().collect().await.unwrap();
            }
        })
        .await
        .unwrap();
    });
    let sites = sites.lock().unwrap();
    assert_eq!(sites.len(), 20);
    assert!(
        sites.iter().all(|site| site == "async-worker"),
        "dropped on {sites:?}"
    );
}
