//! `Server`: graceful shutdown lets in-flight requests finish, closes their
//! bodies, and refuses new connections; client addresses reach the environ.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tower_wsgi::server::Server;
use tower_wsgi::{app_fn, AppBody, WsgiService};

#[test]
fn graceful_shutdown_finishes_in_flight_requests() {
    support::capture_logs();
    let closes = Arc::new(AtomicUsize::new(0));
    let c = closes.clone();
    let app = WsgiService::new(app_fn(move |environ, start_response| {
        if environ.path_info() == "/slow" {
            std::thread::sleep(Duration::from_millis(500));
        }
        start_response.start("200 OK", [("Content-Length", "4")])?;
        let c = c.clone();
        Ok(AppBody::from("done").on_close(move || {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }))
    }));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(Server::bind("127.0.0.1:0")).unwrap();
    let addr = server.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = std::thread::spawn(move || {
        runtime.block_on(server.serve_with_shutdown(app, async {
            let _ = stop_rx.await;
        }))
    });

    let mut idle = support::Conn::open(addr);
    idle.send(b"GET /fast HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(idle.read_response(false).body, b"done");

    let mut slow = support::Conn::open(addr);
    slow.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    std::thread::sleep(Duration::from_millis(100));
    stop_tx.send(()).unwrap();

    let resp = slow.read_response(false);
    assert_eq!(
        (resp.status, resp.body.as_slice()),
        (200, &b"done"[..]),
        "the in-flight request finished"
    );
    assert_eq!(
        resp.header("connection"),
        Some("close"),
        "and was told the connection ends"
    );
    assert!(idle.closes(), "idle keep-alive connections are closed");
    serving.join().unwrap().unwrap();
    assert_eq!(closes.load(Ordering::SeqCst), 2);
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(),
        "new connections are refused"
    );
}

#[test]
fn header_read_timeout_drops_clients_that_never_finish_their_headers() {
    support::capture_logs();
    let app = WsgiService::new(app_fn(|_environ, start_response| {
        start_response.start("200 OK", [("Content-Length", "2")])?;
        Ok("ok".into())
    }));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(Server::bind("127.0.0.1:0")).unwrap();
    let addr = server.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = std::thread::spawn(move || {
        let server = server.header_read_timeout(Duration::from_millis(300));
        runtime.block_on(server.serve_with_shutdown(app, async {
            let _ = stop_rx.await;
        }))
    });
    let mut slow = support::Conn::open(addr);
    slow.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ");
    let started = std::time::Instant::now();
    // hyper answers 408 and closes once the timeout passes.
    let resp = slow.try_read_response(false);
    assert!(resp.as_ref().is_none_or(|r| r.status == 408), "{resp:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the slow client was not dropped"
    );
    stop_tx.send(()).unwrap();
    serving.join().unwrap().unwrap();
}

#[test]
fn header_read_timeout_counts_from_the_end_of_the_previous_response() {
    support::capture_logs();
    let app = WsgiService::new(app_fn(|environ, start_response| {
        if environ.path_info() == "/slow" {
            std::thread::sleep(Duration::from_millis(600));
        }
        start_response.start("200 OK", [("Content-Length", "2")])?;
        Ok("ok".into())
    }));
    let server = support::serve_with(tokio::runtime::Runtime::new().unwrap(), app, |server| {
        server.header_read_timeout(Duration::from_millis(300))
    });
    let mut conn = support::Conn::open(server.addr);
    // A request in flight longer than the timeout is not waiting for a head.
    conn.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.read_response(false).body, b"ok");
    // Quick requests keep the connection; the next one comes in time.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(100));
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(conn.read_response(false).body, b"ok");
    }
    // Then nothing, or half a head: closed after the timeout.
    conn.send(b"GET / HTTP/1.1\r\nHo");
    let started = std::time::Instant::now();
    assert!(
        conn.closes(),
        "a connection outlived its header read timeout"
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(
        support::log_line_with(&["closed a connection that sent no request in time"]).is_some()
    );
}

#[test]
fn a_service_that_can_fail_is_served_too() {
    // LoadShed's error is a BoxError, not Infallible: the server takes any
    // error a hyper connection can report.
    let service = tower::ServiceBuilder::new()
        .load_shed()
        .service(WsgiService::new(app_fn(|_environ, start_response| {
            start_response.start("200 OK", [("Content-Length", "2")])?;
            Ok("ok".into())
        })));
    let server = support::serve(service);
    let resp = server.get("/");
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"ok"[..]));
}
