//! Bad input from clients, answered: a clear status, a log line naming the
//! cause, and nothing that can reach the app as a request it did not send.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{serve, Conn, TestServer};
use tower_wsgi::server::Server;
use tower_wsgi::{app_fn, Builder, WsgiService};

/// The conformance app, plus a record of every path the app was asked for.
fn server() -> (TestServer, Arc<Mutex<Vec<String>>>) {
    server_with(|server| server)
}

/// [`server`], with `configure` applied to the [`Server`].
fn server_with(configure: fn(Server) -> Server) -> (TestServer, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let inner = support::conformance::app();
    let app = app_fn(move |environ, start_response| {
        s.lock()
            .unwrap()
            .push(environ.get("REQUEST_URI").unwrap_or_default().to_owned());
        tower_wsgi::App::call(&inner, environ, start_response)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    (
        support::serve_with(runtime, WsgiService::new(app), configure),
        seen,
    )
}

/// A request for `path` whose head is about `head_bytes` long, in one header.
fn request_with_head_of(path: &str, head_bytes: usize) -> Vec<u8> {
    let start = format!("GET {path} HTTP/1.1\r\nHost: t\r\nX-Big: ");
    let filler = head_bytes.saturating_sub(start.len() + 4);
    format!("{start}{}\r\n\r\n", "a".repeat(filler)).into_bytes()
}

/// Sends `request` in `pieces` writes a millisecond apart, so that the server
/// reads the head in as many parts: its status, and whether the server closed.
fn answer_in_pieces(server: &TestServer, request: &[u8], pieces: usize) -> (u16, bool, String) {
    let mut conn = Conn::open(server.addr);
    let port = conn.stream().local_addr().unwrap().port().to_string();
    for piece in request.chunks(request.len().div_ceil(pieces)) {
        // The server may answer and close before the last piece.
        if conn.stream().write_all(piece).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let resp = conn.read_response(false);
    (resp.status, conn.closes(), port)
}

/// Sends `request` on a new connection: the answer, whether the server then
/// closed, and the client's port (to find the log line).
fn answer(server: &TestServer, request: &[u8]) -> (u16, bool, String) {
    let mut conn = Conn::open(server.addr);
    let port = conn.stream().local_addr().unwrap().port().to_string();
    conn.send(request);
    let resp = conn.read_response(false);
    (resp.status, conn.closes(), port)
}

#[test]
fn malformed_requests_are_rejected_with_the_cause_logged() {
    let (server, seen) = server();
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(70_000));
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(500_000)
    );
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: t\r\n{}\r\n",
        (0..200)
            .map(|i| format!("X-{i}: 1\r\n"))
            .collect::<String>()
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("garbage request line", b"GARBAGE\r\n\r\n".to_vec(), 400),
        ("invalid method", b"G@T / HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 400),
        ("unknown version", b"GET / HTTP/9.9\r\nHost: t\r\n\r\n".to_vec(), 400),
        ("request target too long", long_target.into_bytes(), 414),
        ("header too large", big_header.into_bytes(), 431),
        ("too many headers", many_headers.into_bytes(), 431),
        ("space in a header name", b"GET / HTTP/1.1\r\nHost: t\r\nX A: 1\r\n\r\n".to_vec(), 400),
        ("NUL in a header value", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n".to_vec(), 400),
        ("obsolete line folding", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n  folded\r\n\r\n".to_vec(), 400),
        ("huge Content-Length", b"POST /input HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(), 400),
        ("invalid Content-Length", b"POST /input HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n".to_vec(), 400),
        ("differing Content-Lengths", b"POST /input HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_vec(), 400),
        ("Transfer-Encoding not ending in chunked", b"POST /input HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(), 400),
    ];
    for (name, request, status) in cases {
        let (got, closed, port) = answer(&server, &request);
        assert_eq!(got, status, "{name}");
        assert!(closed, "{name}: the connection must end");
        assert!(
            support::log_line_with(&[&format!("127.0.0.1:{port}"), "rejected a malformed request"])
                .is_some(),
            "{name}: no log line"
        );
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "no malformed request reached the app"
    );
}

#[test]
fn request_heads_over_the_size_limit_get_431_however_they_arrive() {
    // Under hyper's own buffer limit (about 400 KiB), so only the server's
    // check refuses them, read in one go or in parts.
    let (server, seen) = server();
    let too_large = request_with_head_of("/too-large", 300_000);
    for (how, (status, closed, port)) in [
        ("at once", answer(&server, &too_large)),
        ("in parts", answer_in_pieces(&server, &too_large, 30)),
    ] {
        assert_eq!((status, closed), (431, true), "{how}");
        assert!(
            support::log_line_with(&[
                &format!("127.0.0.1:{port}"),
                "rejected a malformed request",
                "the request head is too large",
            ])
            .is_some(),
            "{how}: no log line"
        );
    }
    let (status, closed, _) = answer(&server, &request_with_head_of("/just-under", 250_000));
    assert_eq!((status, closed), (404, false), "a head under the limit");
    assert_eq!(*seen.lock().unwrap(), ["/just-under"]);

    // A smaller limit.
    let (server, seen) = server_with(|server| server.http1_max_header_size(8 * 1024));
    let (status, closed, _) = answer(&server, &request_with_head_of("/over-8k", 9 * 1024));
    assert_eq!((status, closed), (431, true), "over a limit of 8 KiB");
    let (status, _, _) = answer(&server, &request_with_head_of("/under-8k", 7 * 1024));
    assert_eq!(status, 404, "under a limit of 8 KiB");
    assert_eq!(*seen.lock().unwrap(), ["/under-8k"]);

    // A larger one than hyper's buffer: hyper would refuse the head while
    // it arrives.
    let (server, seen) = server_with(|server| server.http1_max_header_size(1024 * 1024));
    let large = request_with_head_of("/large", 900_000);
    let (status, _, _) = answer_in_pieces(&server, &large, 30);
    assert_eq!(status, 404, "under a limit of 1 MiB");
    assert_eq!(*seen.lock().unwrap(), ["/large"]);
}

#[test]
fn broken_chunked_upload_is_400_not_500() {
    let (server, _) = server();
    let (status, closed, _) = answer(
        &server,
        b"POST /input?mode=echo&tag=badchunk HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(status, 400);
    assert!(closed);
    assert!(
        support::log_line_with(&["tag=badchunk", "Invalid chunk size", "answering 400"]).is_some()
    );
}

#[test]
fn content_length_with_transfer_encoding_cannot_smuggle() {
    let (server, seen) = server();
    let mut conn = Conn::open(server.addr);
    conn.send(
        b"POST /input?mode=echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let resp = conn.read_response(false);
    assert_eq!(
        resp.body, b"abc",
        "the chunked framing wins; Content-Length is ignored"
    );
    assert!(conn.closes(), "and the connection ends after the response");
    assert!(!seen
        .lock()
        .unwrap()
        .iter()
        .any(|uri| uri.contains("smuggled")));
}

#[test]
fn odd_bytes_in_paths_queries_and_headers_reach_the_app_losslessly() {
    let (server, _) = server();
    let mut conn = Conn::open(server.addr);
    conn.send(b"GET /environ?x=%zz&y=\xc3\xa9 HTTP/1.1\r\nHost: t\r\nX-Bin: \xff\xc3\xa9\r\n\r\n");
    let env: serde_json::Value = serde_json::from_slice(&conn.read_response(false).body).unwrap();
    assert_eq!(
        env["QUERY_STRING"], "x=%zz&y=\u{c3}\u{a9}",
        "invalid escapes kept, bytes one char each"
    );
    assert_eq!(env["HTTP_X_BIN"], "\u{ff}\u{c3}\u{a9}");
    let mut conn = Conn::open(server.addr);
    conn.send(b"GET /%zz/%FF%00x HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        conn.read_response(false).status,
        404,
        "an odd path is just a path the app does not know"
    );
    // Raw target bytes that are not UTF-8 never reach the app: hyper answers 400.
    let (status, closed, port) = answer(
        &server,
        b"GET /environ?y=\xff\xfe HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!((status, closed), (400, true));
    assert!(support::log_line_with(&[
        &format!("127.0.0.1:{port}"),
        "rejected a malformed request"
    ])
    .is_some());
}

#[test]
fn declared_body_over_the_limit_is_413_without_running_the_app() {
    let seen = Arc::new(Mutex::new(0));
    let s = seen.clone();
    let server = serve(Builder::new().max_request_body(1024).build(app_fn(
        move |_environ, start_response| {
            *s.lock().unwrap() += 1;
            start_response.start("200 OK", [("Content-Length", "2")])?;
            Ok("ok".into())
        },
    )));
    let (status, closed, _) = answer(
        &server,
        b"POST /big?tag=over HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n",
    );
    assert_eq!(status, 413);
    assert!(closed, "the unread body ends the connection");
    assert!(support::log_line_with(&["/big?tag=over", "over the configured limit"]).is_some());
    assert_eq!(*seen.lock().unwrap(), 0);
}
