//! `WsgiService` inside `tower::ServiceBuilder` stacks of tower-http and tower
//! middleware, served by the crate's own hyper server, on real connections.
#![deny(warnings)]
#![cfg(all(feature = "server", feature = "axum"))]

mod support;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use http::StatusCode;
use support::{conformance, counters_settle, log_line_with, Counters, Framing};
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tower_wsgi::{app_fn, BoxError, WsgiService};

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a complete gzip stream");
    out
}

#[test]
fn trace_layer_passes_requests_and_responses_unchanged_and_emits_spans() {
    let server = support::serve(
        ServiceBuilder::new()
            .layer(TraceLayer::new_for_http())
            .service(conformance::service()),
    );
    let mut conn = server.connect();
    conn.send(&support::post(
        "/input?mode=echo&trace=posted",
        "request body, echoed",
        "",
    ));
    let echoed = conn.read_response(false);
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.body_str(), "request body, echoed");
    assert_eq!(echoed.header("content-length"), Some("20"));

    conn.send(
        b"GET /respond?body=ab&chunks=3&cl=none&trace=streamed HTTP/1.1\r\nHost: test\r\n\r\n",
    );
    let streamed = conn.read_response(false);
    assert_eq!(streamed.body_str(), "ababab");
    assert_eq!(streamed.framing, Framing::Chunked);
    assert_eq!(streamed.header("connection"), Some("close"));
    assert_eq!(streamed.all("server").len(), 1);
    assert_eq!(streamed.all("date").len(), 1);
    assert!(conn.closes());

    for marker in ["trace=posted", "trace=streamed"] {
        assert!(
            log_line_with(&["request{", marker, "started processing request"]).is_some(),
            "no request span for {marker}"
        );
        assert!(
            log_line_with(&[
                "request{",
                marker,
                "finished processing request",
                "status=200"
            ])
            .is_some(),
            "no response event for {marker}"
        );
    }
}

#[test]
fn timeout_answers_the_client_then_the_apps_next_write_fails_and_its_body_closes() {
    let bodies = Counters::default();
    let write_failed_as_disconnect = Arc::new(AtomicUsize::new(0));
    let (release, released) = mpsc::channel::<()>();
    let released = Arc::new(Mutex::new(released));
    let app = {
        let bodies = bodies.clone();
        let failed = write_failed_as_disconnect.clone();
        app_fn(move |_environ, start_response| {
            let write = start_response.start("200 OK", [("Content-Type", "text/plain")])?;
            // Held until the client has the timeout answer: this write comes too late.
            let _ = released.lock().map(|rx| rx.recv());
            match write.write("too late") {
                Err(e) if e.is_client_disconnected() => {
                    failed.fetch_add(1, Ordering::SeqCst);
                }
                other => eprintln!("write after the timeout: {other:?}"),
            }
            Ok(bodies.track("never sent".into()))
        })
    };
    let server = support::serve(
        ServiceBuilder::new()
            .layer(TimeoutLayer::with_status_code(
                StatusCode::GATEWAY_TIMEOUT,
                Duration::from_millis(100),
            ))
            .service(WsgiService::new(app)),
    );
    let resp = server.get("/slow");
    assert_eq!(resp.status, 504);
    assert!(resp.complete);
    assert_eq!(bodies.started(), 0, "the application answered first");

    release.send(()).unwrap();
    assert_eq!(bodies.wait_closed(1), 1, "close() did not run");
    assert_eq!(bodies.started(), 1);
    assert_eq!(write_failed_as_disconnect.load(Ordering::SeqCst), 1);
}

#[test]
fn compression_gzips_a_streamed_body_without_content_length() {
    let server = support::serve(
        ServiceBuilder::new()
            .layer(CompressionLayer::new())
            .service(conformance::service()),
    );
    let mut conn = server.connect();
    conn.send(
        b"GET /stream?n=16&size=1000 HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip\r\n\r\n",
    );
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-encoding"), Some("gzip"));
    assert_eq!(resp.header("content-length"), None);
    assert_eq!(resp.framing, Framing::Chunked);
    assert!(resp.complete);
    assert!(resp.body.len() < 16_000);
    assert_eq!(gunzip(&resp.body), vec![b'x'; 16_000]);
    // No Content-Length from the app: the seed's rule still closes the connection.
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(conn.closes());
    assert_eq!(counters_settle(&server).1, 1);
}

#[test]
fn compression_reframes_a_content_length_body_and_keeps_the_connection() {
    let server = support::serve(
        ServiceBuilder::new()
            .layer(CompressionLayer::new())
            .service(conformance::service()),
    );
    let mut conn = server.connect();
    let target = "/respond?body=compressible%20text%20&chunks=50";
    for _ in 0..2 {
        conn.send(
            format!("GET {target} HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip\r\n\r\n")
                .as_bytes(),
        );
        let resp = conn.read_response(false);
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("content-encoding"), Some("gzip"));
        // The app's length described the identity body: the layer drops it and chunks.
        assert_eq!(resp.header("content-length"), None);
        assert_eq!(resp.framing, Framing::Chunked);
        assert_eq!(resp.header("connection"), None);
        assert!(resp.complete);
        assert_eq!(gunzip(&resp.body), b"compressible text ".repeat(50));
    }
    // Without Accept-Encoding the body and its length pass untouched.
    conn.send(format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
    let plain = conn.read_response(false);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("content-length"), Some("900"));
    assert_eq!(plain.body, b"compressible text ".repeat(50));
}

#[test]
fn body_limit_answers_413_for_a_declared_length_over_the_limit() {
    let server = support::serve(
        ServiceBuilder::new()
            .layer(RequestBodyLimitLayer::new(16))
            .service(conformance::service()),
    );
    let mut conn = server.connect();
    conn.send(&support::post("/input", &"y".repeat(17), ""));
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 413);
    let (started, _) = counters_settle(&server);
    assert_eq!(started, 0, "the application ran");

    let mut conn = server.connect();
    conn.send(&support::post("/input", &"y".repeat(16), ""));
    let resp = conn.read_response(false);
    assert_eq!((resp.status, resp.body_str().as_str()), (200, "16"));
}

/// tower-http's limit reaches the application as a failing `wsgi.input` read
/// (`length limit exceeded`); the conformance app lets the error propagate,
/// and the crate answers 413, as for its own `Builder::max_request_body`,
/// cause logged, and closes the connection.
#[test]
fn body_limit_on_a_chunked_body_read_through_wsgi_input_is_a_413() {
    let server = support::serve(
        ServiceBuilder::new()
            .layer(RequestBodyLimitLayer::new(16))
            .service(conformance::service()),
    );
    let mut conn = server.connect();
    let chunk = "z".repeat(10);
    let mut request = String::from(
        "POST /input?limit=chunked HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for _ in 0..4 {
        request.push_str(&format!("a\r\n{chunk}\r\n"));
    }
    request.push_str("0\r\n\r\n");
    conn.send(request.as_bytes());
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 413);
    assert!(resp.complete);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(
        conn.closes(),
        "the unread rest of the body must not be served"
    );
    assert!(
        log_line_with(&["limit=chunked", "length limit exceeded"]).is_some(),
        "the cause is not logged"
    );
    let (started, closed) = counters_settle(&server);
    assert_eq!(started, closed);
}

/// Overload (`LoadShed` over `ConcurrencyLimit`) turned into a 503 response.
async fn shed_to_503(error: BoxError) -> StatusCode {
    if error.is::<tower::load_shed::error::Overloaded>() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

#[test]
fn concurrency_limit_with_load_shed_answers_503_while_full() {
    let server = support::serve(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(shed_to_503))
            .load_shed()
            .concurrency_limit(1)
            .service(conformance::service()),
    );
    // The first request holds the only slot: its app waits in wsgi.input,
    // which it has just asked for (the 100 Continue proves it runs).
    let mut busy = server.connect();
    busy.send(
        b"POST /input HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(busy.read_response(false).status, 100);

    let shed = server.get("/counters");
    assert_eq!(shed.status, 503);
    assert_eq!(shed.header("content-length"), Some("0"));
    assert!(shed.complete);

    busy.send(b"hello");
    let done = busy.read_response(false);
    assert_eq!((done.status, done.body_str().as_str()), (200, "5"));
    assert_eq!(
        server.get("/counters").status,
        200,
        "the slot was not freed"
    );
}
