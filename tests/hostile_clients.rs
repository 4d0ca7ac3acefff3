//! Hostile and careless HTTP/1 clients on a real connection (RULES.md 14 and
//! 17): the request MUSTs of RFC 9112 enforced before the application runs,
//! pipelining after unread bodies, and the targets hyper refuses.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::{log_line_with, serve, TestServer};
use tower_wsgi::server::Server;
use tower_wsgi::{app_fn, Builder};

/// A server whose app answers `PATH_INFO|HTTP_HOST` with a `Content-Length`,
/// never reads the body, and counts its calls.
fn echo_server(builder: Builder) -> (TestServer, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let service = builder.build(app_fn(move |environ, start_response| {
        seen.fetch_add(1, Ordering::SeqCst);
        let text = format!(
            "{}|{}",
            environ.path_info(),
            environ.get("HTTP_HOST").unwrap_or("-")
        );
        let length = text.len().to_string();
        let uri = environ.get("REQUEST_URI").unwrap_or_default().to_owned();
        start_response.start(
            "200 OK",
            [
                ("Content-Length", length.as_str()),
                ("X-Request-Uri", uri.as_str()),
            ],
        )?;
        Ok(text.into())
    }));
    (serve(service), calls)
}

/// Each case of the issue, as raw bytes: the status, and the cause the log names.
const REFUSED: &[(&str, &str, u16, &str)] = &[
    (
        "no Host on HTTP/1.1",
        "GET /a HTTP/1.1\r\n\r\n",
        400,
        "HTTP/1.1 request without a Host field",
    ),
    (
        "two Host lines (gunicorn invalid/042)",
        "GET /a HTTP/1.1\r\nHost: localhost\r\nHost: evil.example.com\r\n\r\n",
        400,
        "more than one Host field",
    ),
    (
        "Host with a path",
        "GET /a HTTP/1.1\r\nHost: a/b\r\n\r\n",
        400,
        "Host is not uri-host",
    ),
    (
        "Host with a space",
        "GET /a HTTP/1.1\r\nHost: a b\r\n\r\n",
        400,
        "Host is not uri-host",
    ),
    (
        "Host with userinfo",
        "GET /a HTTP/1.1\r\nHost: u@a\r\n\r\n",
        400,
        "Host is not uri-host",
    ),
    (
        "absolute-form with userinfo",
        "GET http://user:pass@example.com:8080/environ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        400,
        "the request target carries userinfo",
    ),
    (
        "chunked applied twice",
        "POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        400,
        "chunked exactly once",
    ),
    (
        "identity before chunked",
        "POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        501,
        "coding the server does not implement",
    ),
    (
        "an unknown coding on its own line, then chunked",
        "POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        501,
        "coding the server does not implement",
    ),
    (
        "two Content-Type lines (gunicorn invalid/041)",
        "POST /a HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\nhi",
        400,
        "more than one Content-Type field",
    ),
    (
        "asterisk-form with GET",
        "GET * HTTP/1.1\r\nHost: t\r\n\r\n",
        400,
        "asterisk-form target with a method other than OPTIONS",
    ),
    (
        "authority-form with GET",
        "GET example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        400,
        "authority-form target with a method other than CONNECT",
    ),
];

#[test]
fn rule17_request_musts_are_refused_before_the_app_with_the_cause_logged() {
    let (server, calls) = echo_server(Builder::new());
    for (case, request, status, cause) in REFUSED {
        let mut conn = server.connect();
        conn.send(request.as_bytes());
        let resp = conn.read_response(false);
        assert_eq!(resp.status, *status, "{case}");
        assert_eq!(resp.header("connection"), Some("close"), "{case}");
        assert!(conn.closes(), "{case}: the connection must close");
        assert!(
            log_line_with(&["refused a request before the application", cause]).is_some(),
            "{case}: no log line naming {cause:?}"
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the app ran");
}

#[test]
fn rule17_valid_forms_reach_the_app() {
    let (server, calls) = echo_server(Builder::new());
    for (case, request, body) in [
        ("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", "*|t"),
        ("HTTP/1.0 without Host", "GET /a HTTP/1.0\r\n\r\n", "/a|-"),
        ("empty Host", "GET /a HTTP/1.1\r\nHost:\r\n\r\n", "/a|"),
        (
            "IPv6 Host with port",
            "GET /a HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
            "/a|[::1]:8080",
        ),
        (
            "absolute-form: the target's authority replaces Host",
            "GET http://example.com:8080/a HTTP/1.1\r\nHost: other\r\n\r\n",
            "/a|example.com:8080",
        ),
    ] {
        let resp = server.request(request.as_bytes(), false);
        assert_eq!(
            (resp.status, resp.body_str().as_str()),
            (200, body),
            "{case}"
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[test]
fn rule17_lenient_requests_keep_werkzeugs_leniency_but_not_for_framing() {
    let (server, _) = echo_server(Builder::new().lenient_requests(true));
    for (request, body) in [
        ("GET /a HTTP/1.1\r\n\r\n", "/a|-"),
        ("GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "/a|a,b"),
        (
            "GET http://user:pass@example.com:8080/a HTTP/1.1\r\nHost: x\r\n\r\n",
            "/a|example.com:8080",
        ),
    ] {
        let resp = server.request(request.as_bytes(), false);
        assert_eq!(
            (resp.status, resp.body_str().as_str()),
            (200, body),
            "{request:?}"
        );
    }
    let mut conn = server.connect();
    conn.send(
        b"POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    );
    assert_eq!(conn.read_response(false).status, 400);
    assert!(conn.closes());
}

/// Sends `first` (a request with a body the app never reads), then `GET /next`
/// on the same connection, and says whether `/next` was answered.
fn next_is_answered(server: &TestServer, parts: &[(&[u8], Duration)]) -> bool {
    let mut conn = server.connect();
    for (bytes, pause) in parts {
        conn.send(bytes);
        std::thread::sleep(*pause);
    }
    conn.send(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.read_response(false).status, 200);
    conn.try_read_response(false)
        .is_some_and(|r| r.body_str() == "/next|t")
}

#[test]
fn rule17_pipelining_survives_unread_multi_chunk_bodies() {
    let (server, _) = echo_server(Builder::new());
    // gunicorn's valid/023 shape: chunk extensions, several chunks.
    let mut request = b"POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
        5; some; parameters=stuff\r\nhello\r\n6; blahblah; blah\r\n world\r\n"
        .to_vec();
    for _ in 0..200 {
        request.extend_from_slice(b"400\r\n");
        request.extend_from_slice(&[b'x'; 0x400]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    assert!(next_is_answered(&server, &[(&request, Duration::ZERO)]));
}

#[test]
fn rule17_pipelining_survives_unread_large_content_length_bodies() {
    let (server, _) = echo_server(Builder::new());
    let body = vec![b'y'; 512 * 1024];
    let mut request = format!(
        "POST /large HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    assert!(next_is_answered(&server, &[(&request, Duration::ZERO)]));
}

#[test]
fn rule17_pipelining_survives_bodies_arriving_slowly_within_the_bound() {
    let (server, _) = echo_server(Builder::new());
    let head = b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 30000\r\n\r\n";
    let piece = vec![b'z'; 10000];
    let pause = Duration::from_millis(150);
    assert!(next_is_answered(
        &server,
        &[
            (head, pause),
            (&piece, pause),
            (&piece, pause),
            (&piece, Duration::ZERO)
        ]
    ));
    // Chunked, arriving in pieces.
    let head = b"POST /slow HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(next_is_answered(
        &server,
        &[
            (head, pause),
            (b"5\r\nhello\r\n", pause),
            (b"5\r\nworld\r\n", pause),
            (b"0\r\n\r\n", Duration::ZERO)
        ]
    ));
}

#[test]
fn rule17_past_the_drain_bound_the_connection_closes() {
    let (server, _) = echo_server(Builder::new());
    // Declared past the byte bound: closed at once, never drained.
    let mut conn = server.connect();
    conn.send(b"POST /huge HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\nabc");
    assert_eq!(conn.read_response(false).status, 200);
    assert!(conn.closes());
    // Chunked, past the byte bound.
    let mut conn = server.connect();
    conn.send(b"POST /huge HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    let chunk = [b"100000\r\n".as_slice(), &[b'x'; 0x100000], b"\r\n"].concat();
    conn.send(&chunk);
    assert_eq!(conn.read_response(false).status, 200);
    let _ = std::io::Write::write_all(&mut conn.stream(), &chunk);
    assert!(conn.closes());
    // Arriving slower than the time bound: closed once it runs out.
    let mut conn = server.connect();
    conn.send(b"POST /trickle HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nab");
    assert_eq!(conn.read_response(false).status, 200);
    for _ in 0..15 {
        let _ = std::io::Write::write_all(&mut conn.stream(), b"c");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(conn.closes());
}

#[test]
fn targets_hyper_refuses_are_400_with_the_cause_logged() {
    let (server, calls) = echo_server(Builder::new());
    for target in [
        "/q?filter={\"a\":\"b\"}",
        "/a<b>",
        "/a`b",
        "/q?a=<b>",
        "/a\x7fb",
    ] {
        let mut conn = server.connect();
        conn.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let resp = conn.read_response(false);
        assert_eq!(resp.status, 400, "{target:?}");
        assert!(conn.closes());
    }
    assert!(log_line_with(&[
        "rejected a malformed request",
        "the URI parser refuses the request target"
    ])
    .is_some());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // A fragment sent in the target is dropped before the environ.
    let mut conn = server.connect();
    conn.send(b"GET /a?b=c#frag HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!(resp.body_str(), "/a|t");
    assert_eq!(resp.header("x-request-uri"), Some("/a?b=c"));
}

/// [`echo_server`]'s app on a server with `configure` applied.
fn limited_server(configure: fn(Server) -> Server) -> TestServer {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let service = Builder::new().build(app_fn(|environ, start_response| {
        if environ.path_info() == "/slow" {
            std::thread::sleep(Duration::from_millis(1500));
        }
        start_response.start("200 OK", [("Content-Length", "2")])?;
        Ok("ok".into())
    }));
    support::serve_with(runtime, service, configure)
}

fn answers(server: &TestServer) -> bool {
    server.get("/").status == 200
}

#[test]
fn max_connections_holds_new_connections_in_the_backlog() {
    let server = limited_server(|s| s.max_connections(2));
    let first = server.connect();
    let mut second = server.connect();
    second.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(second.read_response(false).status, 200);
    // Both places taken: a third client is connected (the backlog) but not served.
    let mut third = server.connect();
    third.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(third.pending_bytes(Duration::from_millis(500)).is_empty());
    assert!(log_line_with(&["connection limit reached"]).is_some());
    // One leaves: the third is answered.
    drop(first);
    assert_eq!(third.read_response(false).status, 200);
    drop((second, third));
    assert!(answers(&server));
}

#[test]
fn idle_timeout_closes_silent_and_idle_connections_not_busy_ones() {
    let server = limited_server(|s| s.idle_timeout(Duration::from_millis(300)));
    // Silent from the start: hyper-util's protocol sniffing waits for a first
    // byte with no timeout of its own, so only the idle timeout ends it.
    let mut silent = server.connect();
    assert!(
        silent.closes(),
        "a connection that never sent a byte stays open"
    );
    let mut idle = server.connect();
    idle.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(idle.read_response(false).status, 200);
    let started = std::time::Instant::now();
    assert!(idle.closes(), "an idle keep-alive connection stays open");
    assert!(started.elapsed() < Duration::from_millis(1500));
    // Requests 100 ms apart for three timeouts keep a connection; the
    // timeout counts from the end of the last one.
    let mut steady = server.connect();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(900) {
        steady.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(steady.read_response(false).status, 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    let last_ended = std::time::Instant::now() - Duration::from_millis(100);
    assert!(steady.closes(), "a steady connection was never closed");
    let idle_for = last_ended.elapsed();
    assert!(
        idle_for >= Duration::from_millis(250) && idle_for < Duration::from_millis(1500),
        "closed {idle_for:?} after its last request, with a 300 ms timeout"
    );
    // A request in flight longer than the timeout is not idle.
    let mut busy = server.connect();
    busy.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(busy.read_response(false).status, 200);
    assert!(answers(&server));
}

#[test]
fn slowloris_on_http1_is_dropped_while_others_are_served() {
    let server = limited_server(|s| s.header_read_timeout(Duration::from_millis(800)));
    let mut slow: Vec<_> = (0..20).map(|_| server.connect()).collect();
    let head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Padding: ";
    let started = std::time::Instant::now();
    let mut i = 0;
    // One header byte per connection every 50 ms, never finishing the head.
    while started.elapsed() < Duration::from_millis(1200) {
        for conn in &mut slow {
            let _ = std::io::Write::write_all(&mut conn.stream(), &[head[i % head.len()]]);
        }
        i += 1;
        assert!(answers(&server), "a normal client was not served");
        std::thread::sleep(Duration::from_millis(50));
    }
    for conn in &mut slow {
        assert!(
            conn.closes(),
            "a slowloris connection outlived the header timeout"
        );
    }
    assert!(answers(&server));
}

#[test]
fn rule17_pipelining_survives_partly_read_bodies() {
    let server = serve(Builder::new().build(app_fn(|mut environ, start_response| {
        if environ.path_info() == "/partial" {
            // Reading starts the read-ahead task; the rest is left unread.
            let head = environ.input().read_n(10)?;
            assert_eq!(head.len(), 10);
        }
        let text = format!(
            "{}|{}",
            environ.path_info(),
            environ.get("HTTP_HOST").unwrap_or("-")
        );
        let length = text.len().to_string();
        start_response.start("200 OK", [("Content-Length", length.as_str())])?;
        Ok(text.into())
    })));
    let body = vec![b'p'; 300 * 1024];
    let mut request = format!(
        "POST /partial HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    assert!(next_is_answered(&server, &[(&request, Duration::ZERO)]));
}
