//! In-process tests through `tower::ServiceExt::oneshot`: what the service
//! returns, without a socket.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty, Full};
use tower::ServiceExt;
use tower_wsgi::{app_fn, AppBody, Builder, ResponseBody, ResponseFuture, ThreadPool, WsgiService};

fn get(target: &str) -> Request<Empty<Bytes>> {
    Request::get(target).body(Empty::new()).unwrap()
}

async fn body_of(response: Response<ResponseBody>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn oneshot_runs_the_app() {
    let svc = WsgiService::new(app_fn(|environ, start_response| {
        start_response.start("200 OK", [("Content-Length", "5")])?;
        assert_eq!(environ.path_info(), "/hi");
        Ok("hello".into())
    }));
    let response = svc.oneshot(get("/hi")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-length"], "5");
    assert_eq!(body_of(response).await, "hello");
}

#[tokio::test]
async fn http2_responses_carry_no_connection_header_and_no_suppressed_body() {
    let svc = WsgiService::new(support::conformance::app());
    let h2 = |target: &str, method: http::Method| {
        let mut req = get(target);
        *req.version_mut() = Version::HTTP_2;
        *req.method_mut() = method;
        req
    };
    let response = svc
        .clone()
        .oneshot(h2("/respond?cl=none", http::Method::GET))
        .await
        .unwrap();
    assert!(response.headers().get("connection").is_none());
    assert_eq!(body_of(response).await, "hello");
    for (target, method) in [
        ("/respond", http::Method::HEAD),
        ("/respond?status=204%20No%20Content", http::Method::GET),
        ("/respond?status=304%20Not%20Modified", http::Method::GET),
    ] {
        let response = svc.clone().oneshot(h2(target, method)).await.unwrap();
        assert!(
            http_body::Body::is_end_stream(response.body())
                || http_body::Body::size_hint(response.body()).upper() != Some(5)
        );
        assert!(body_of(response).await.is_empty(), "{target}");
    }
    let counters = body_of(svc.oneshot(get("/counters")).await.unwrap()).await;
    assert_eq!(counters, r#"{"closed": 4, "started": 4}"#);
}

#[tokio::test]
async fn request_bodies_of_any_type_are_read() {
    let svc = WsgiService::new(app_fn(|mut environ, start_response| {
        let data = environ.input().read_all()?;
        start_response.start("200 OK", [("Content-Length", data.len().to_string())])?;
        Ok(data.into())
    }));
    let req = Request::post("/")
        .body(Full::new(Bytes::from_static(b"full body")))
        .unwrap();
    assert_eq!(body_of(svc.oneshot(req).await.unwrap()).await, "full body");
}

/// An app that says when each request starts, then holds its thread until
/// released (one release per request): `(app, started, release)`.
fn blocking_app() -> (
    impl tower_wsgi::App + Clone,
    mpsc::Receiver<()>,
    mpsc::Sender<()>,
) {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let started_tx = Arc::new(Mutex::new(started_tx));
    let app = app_fn(move |_environ, start_response| {
        let _ = started_tx.lock().unwrap().send(());
        release_rx
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(5))?;
        start_response.start("200 OK", [("Content-Length", "2")])?;
        Ok("ok".into())
    });
    (app, started_rx, release_tx)
}

#[tokio::test]
async fn a_full_pool_answers_503_with_retry_after() {
    let (blocking, started_rx, release_tx) = blocking_app();
    let svc = Builder::new().max_threads(1).max_queue(1).build(blocking);
    let busy = tokio::spawn(svc.clone().oneshot(get("/busy")));
    tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
        .await
        .unwrap();
    let queued = tokio::spawn(svc.clone().oneshot(get("/queued")));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = svc.clone().oneshot(get("/refused")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "1");
    release_tx.send(()).unwrap();
    release_tx.send(()).unwrap();
    assert_eq!(busy.await.unwrap().unwrap().status(), 200);
    assert_eq!(queued.await.unwrap().unwrap().status(), 200);
}

#[tokio::test]
async fn services_built_with_one_thread_pool_share_its_threads_and_queue() {
    let (blocking, started_rx, release_tx) = blocking_app();
    let quick = app_fn(|_environ, start_response| {
        start_response.start("200 OK", [("Content-Length", "2")])?;
        Ok("ok".into())
    });
    let pool = ThreadPool::new(1, 0);
    let builder = Builder::new().thread_pool(pool);
    let (first, second) = (builder.build(blocking), builder.build(quick));
    let busy = tokio::spawn(first.oneshot(get("/busy")));
    tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
        .await
        .unwrap();
    // The one thread is the first service's: the second service has none.
    let refused = second.clone().oneshot(get("/refused")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    release_tx.send(()).unwrap();
    assert_eq!(busy.await.unwrap().unwrap().status(), 200);
    // A pool of its own would have served it at once.
    let own = Builder::new()
        .max_threads(1)
        .max_queue(0)
        .build(app_fn(|_e, start_response| {
            start_response.start("200 OK", [("Content-Length", "0")])?;
            Ok(AppBody::empty())
        }));
    assert_eq!(own.oneshot(get("/own")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn dropping_the_response_future_stops_the_app_at_its_next_write() {
    let (tx, rx) = mpsc::channel();
    let tx = Arc::new(Mutex::new(tx));
    let svc = WsgiService::new(app_fn(move |_environ, start_response| {
        std::thread::sleep(Duration::from_millis(200));
        let write = start_response.start("200 OK", [("Content-Type", "text/plain")])?;
        let result = write.write("late");
        tx.lock()
            .unwrap()
            .send(result.map_err(|e| e.kind()))
            .unwrap();
        Ok(AppBody::empty())
    }));
    let future = svc.oneshot(get("/"));
    drop(tokio::time::timeout(Duration::from_millis(20), future).await);
    let result =
        tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .await
            .unwrap();
    assert_eq!(result, Err(tower_wsgi::ErrorKind::ClientDisconnected));
}

#[test]
fn futures_and_bodies_are_send() {
    fn assert_send<T: Send>() {}
    fn assert_sync<T: Sync>() {}
    assert_send::<ResponseFuture>();
    assert_send::<ResponseBody>();
    assert_send::<AppBody>();
    assert_send::<tower_wsgi::Environ>();
    assert_send::<tower_wsgi::StartResponse>();
    assert_sync::<tower_wsgi::StartResponse>();
    assert_send::<tower_wsgi::Writer>();
    assert_send::<
        WsgiService<
            fn(
                tower_wsgi::Environ,
                tower_wsgi::StartResponse,
            ) -> Result<AppBody, tower_wsgi::BoxError>,
        >,
    >();
}
