//! The fault matrix of tests/faults.rs with Python apps (tests/python/fault_apps.py)
//! hosted by `PyApp`: an exception before and after `start_response`, mid-body
//! and in `close()`, a `str` chunk, a non-`str` header, the client leaving
//! mid-stream from a generator that never ends. Each time: what the client
//! sees, close() exactly once, the cause (with its traceback) logged, and the
//! single application thread serving again.
#![cfg(all(feature = "python", feature = "server"))]
#![deny(warnings)]

mod support;

use std::time::{Duration, Instant};

use support::TestServer;
use tower_wsgi::Builder;

fn counters(server: &TestServer) -> serde_json::Value {
    let resp = server.get("/counters");
    serde_json::from_slice(&resp.body).unwrap()
}

/// Waits up to five seconds for counter `key` to reach `n`.
fn wait_for(server: &TestServer, key: &str, n: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if counters(server)[key].as_u64() >= Some(n) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn closed(server: &TestServer) -> u64 {
    counters(server)["closed"].as_u64().unwrap()
}

/// One application thread: a thread not returned blocks the next request.
fn one_thread_server() -> TestServer {
    support::capture_logs();
    let app = support::python::fixture("fault_apps:make()");
    support::serve(Builder::new().max_threads(1).max_queue(8).build(app))
}

#[test]
fn python_failures_at_every_point() {
    let server = one_thread_server();
    for (target, status, body, complete, closes, cause) in [
        (
            "/error/before",
            500,
            "Internal Server Error",
            true,
            0,
            "fault: error before start_response",
        ),
        (
            "/error/after-start",
            500,
            "Internal Server Error",
            true,
            0,
            "fault: error after start_response",
        ),
        (
            "/error/mid-body",
            200,
            "first chunk",
            false,
            1,
            "fault: error mid-body",
        ),
        (
            "/error/in-close",
            200,
            "complete body",
            true,
            1,
            "fault: error in close",
        ),
        (
            "/str-chunk/before",
            500,
            "Internal Server Error",
            true,
            1,
            "must be bytes, not str: 'a str chunk'",
        ),
        (
            "/str-chunk/mid-body",
            200,
            "first chunk",
            false,
            1,
            "must be bytes, not str: 'a str chunk'",
        ),
        (
            "/bad-header",
            500,
            "Internal Server Error",
            true,
            0,
            "a header value must be str, not bytes: b'value'",
        ),
    ] {
        let before = closed(&server);
        let resp = server.get(target);
        resp.assert_failure_answer(target, status, body, complete);
        assert!(wait_for(&server, "closed", before + closes), "{target}");
        assert_eq!(
            closed(&server),
            before + closes,
            "{target}: close() exactly once"
        );
        let line = support::log_line_with(&[target, cause]);
        assert!(line.is_some(), "{target}: cause logged");
        if !target.starts_with("/str-chunk") {
            assert!(
                line.unwrap().contains("Traceback (most recent call last)"),
                "{target}: traceback logged"
            );
        }
        support::assert_serving(&server);
    }
}

#[test]
fn client_leaves_before_the_headers() {
    let server = one_thread_server();
    let before = closed(&server);
    let mut conn = server.connect();
    conn.send(b"GET /sleep HTTP/1.1\r\nHost: t\r\n\r\n");
    std::thread::sleep(Duration::from_millis(50));
    drop(conn);
    assert!(
        wait_for(&server, "closed", before + 1),
        "close() ran after the client left"
    );
    assert!(support::log_line_with(&["/sleep", "client disconnected"]).is_some());
    support::assert_serving(&server);
    assert_eq!(closed(&server), before + 2);
}

#[test]
fn client_leaves_an_endless_generator() {
    let server = one_thread_server();
    let before = closed(&server);
    server.leave_after("/stream", 8192);
    assert!(
        wait_for(&server, "closed", before + 1),
        "the generator was closed after the client left"
    );
    support::assert_serving(&server);
    assert_eq!(closed(&server), before + 2);
}

#[test]
fn client_leaves_mid_upload() {
    let server = one_thread_server();
    let returned = counters(&server)["returned"].as_u64().unwrap();
    let mut conn = server.connect();
    conn.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\npartial upload");
    std::thread::sleep(Duration::from_millis(100));
    drop(conn);
    // The /counters request itself returns too: wait for both.
    assert!(
        wait_for(&server, "returned", returned + 2),
        "the app returned"
    );
    assert_eq!(
        counters(&server)["input_errors"],
        1,
        "wsgi.input raised OSError"
    );
    support::assert_serving(&server);
}
