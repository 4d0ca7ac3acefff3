//! RULES.md 1 to 6 on the wire: raw HTTP/1 clients against a real hyper server.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

use std::time::Duration;

use support::conformance::app;
use support::{serve, Framing, TestServer};
use tower_wsgi::{
    AppBody, BoxError, Builder, ConnectionPolicy, Environ, HopByHop, StartResponse, WsgiService,
};

/// The conformance app: `/respond` builds any response from its query.
fn server() -> TestServer {
    serve(WsgiService::new(app()))
}

/// Every body handed out so far was closed.
fn assert_all_closed(server: &TestServer) {
    let (started, closed) = support::counters_settle(server);
    assert!(
        started > 0 && started == closed,
        "started {started}, closed {closed}"
    );
}

// ----- Rule 1: the connection rule -----

#[test]
fn rule1_no_content_length_closes_http11() {
    let server = server();
    let mut conn = server.connect();
    conn.send(
        b"GET /respond?cl=none HTTP/1.1\r\nHost: t\r\n\r\nGET /respond HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("connection"), Some("close"));
    assert_eq!(resp.body, b"hello");
    assert!(resp.complete);
    assert!(
        conn.closes(),
        "the pipelined second request must not be answered"
    );
}

#[test]
fn rule1_content_length_keeps_the_connection() {
    let server = server();
    let mut conn = server.connect();
    conn.send(b"GET /respond HTTP/1.1\r\nHost: t\r\n\r\nGET /respond?body=again HTTP/1.1\r\nHost: t\r\n\r\n");
    let first = conn.read_response(false);
    assert_eq!(first.header("connection"), None);
    assert_eq!(
        (first.framing, first.body.as_slice()),
        (Framing::Length, &b"hello"[..])
    );
    let second = conn.read_response(false);
    assert_eq!(second.body, b"again");
}

#[test]
fn rule1_head_204_304_without_length_keep_the_connection() {
    let server = server();
    let mut conn = server.connect();
    conn.send(b"HEAD /respond?cl=none HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = conn.read_response(true);
    assert_eq!(head.header("connection"), None);
    for status in ["204%20No%20Content", "304%20Not%20Modified"] {
        conn.send(
            format!("GET /respond?cl=none&status={status} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        );
        let resp = conn.read_response(false);
        assert_eq!(resp.header("connection"), None, "{status}");
    }
    conn.send(b"GET /respond?body=still-open HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.read_response(false).body, b"still-open");
}

#[test]
fn rule1_http10_without_length_closes() {
    let server = server();
    let mut conn = server.connect();
    conn.send(b"GET /respond?cl=none HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!(resp.version, "HTTP/1.0");
    assert_eq!(resp.all("connection"), ["close"]);
    assert_eq!(resp.body, b"hello");
    assert!(conn.closes());
}

#[test]
fn rule1_keep_alive_chunked_policy() {
    let server = serve(
        Builder::new()
            .connection_policy(ConnectionPolicy::KeepAliveChunked)
            .build(app()),
    );
    let mut conn = server.connect();
    conn.send(b"GET /respond?cl=none&chunks=3 HTTP/1.1\r\nHost: t\r\n\r\nGET /respond?body=next HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!(resp.framing, Framing::Chunked);
    assert_eq!(resp.header("connection"), None);
    assert_eq!(resp.body, b"hellohellohello");
    assert_eq!(conn.read_response(false).body, b"next");
    // HTTP/1.0 has no chunking: it still closes.
    let mut conn = server.connect();
    conn.send(b"GET /respond?cl=none HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(conn.closes());
}

/// Bodies of every shape, none with a declared length.
fn shapes(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    let write = start_response.start("200 OK", [("Content-Type", "text/plain")])?;
    Ok(match environ.path_info() {
        "/one" => "hello".into(),
        "/none" => AppBody::empty(),
        "/chunks" => AppBody::from_chunks(["hel", "lo"]),
        "/write" => {
            write.write("hel")?;
            "lo".into()
        }
        _ => AppBody::from_results([Ok::<_, BoxError>("hel"), Ok("lo")]),
    })
}

#[test]
fn rule1_compute_length_policy() {
    let server = serve(
        Builder::new()
            .connection_policy(ConnectionPolicy::ComputeLength)
            .build(shapes),
    );
    let mut conn = server.connect();
    // One chunk, or none: its length, and the connection stays open.
    for (path, length) in [("/one", "5"), ("/none", "0")] {
        conn.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let resp = conn.read_response(false);
        assert_eq!(resp.framing, Framing::Length, "{path}");
        assert_eq!(resp.header("content-length"), Some(length), "{path}");
        assert_eq!(resp.header("connection"), None, "{path}");
    }
    // Any other: chunked, and still open.
    for path in ["/chunks", "/write", "/results"] {
        conn.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let resp = conn.read_response(false);
        assert_eq!(resp.framing, Framing::Chunked, "{path}");
        assert_eq!(resp.header("connection"), None, "{path}");
        assert_eq!(resp.body, b"hello", "{path}");
    }
    // HEAD keeps the application's headers as they are.
    conn.send(b"HEAD /one HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.read_response(true).header("content-length"), None);
    conn.send(b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.read_response(false).body, b"hello");
    // HTTP/1.0 gets the length too, but still closes.
    let mut conn = server.connect();
    conn.send(b"GET /one HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!(resp.header("content-length"), Some("5"));
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(conn.closes());
}

// ----- Rule 2: Server and Date -----

#[test]
fn rule2_server_and_date_added_once() {
    let server = server();
    let resp = server.get("/respond");
    assert_eq!(resp.all("server").len(), 1);
    assert!(resp.header("server").unwrap().starts_with("tower-wsgi/"));
    assert_eq!(resp.all("date").len(), 1);
    let resp = server.get(
        "/respond?header=Server:legacy%2F1.0&header=Date:Mon,%2001%20Jan%202001%2000:00:00%20GMT",
    );
    assert_eq!(resp.all("server"), ["legacy/1.0"]);
    assert_eq!(resp.all("date"), ["Mon, 01 Jan 2001 00:00:00 GMT"]);
}

#[test]
fn rule2_server_token_configurable_and_removable() {
    let custom = serve(Builder::new().server_header(Some("acme/2")).build(app()));
    assert_eq!(custom.get("/respond").all("server"), ["acme/2"]);
    let none = serve(Builder::new().server_header(None).build(app()));
    let resp = none.get("/respond");
    assert!(resp.header("server").is_none());
    assert!(resp.header("date").is_some());
}

// ----- Rule 3: the status line -----

#[test]
fn rule3_reason_phrase_from_the_app() {
    let server = server();
    let resp = server.get("/respond?status=404%20NOT%20FOUND");
    assert_eq!((resp.status, resp.reason.as_str()), (404, "NOT FOUND"));
    let resp = server.get("/respond?status=299%20Custom%20Thing");
    assert_eq!((resp.status, resp.reason.as_str()), (299, "Custom Thing"));
    let resp = server.get("/respond?status=200");
    assert_eq!((resp.status, resp.reason.as_str()), (200, "OK"));
    let resp = server.get("/respond?status=599");
    assert_eq!(
        (resp.status, resp.reason.as_str()),
        (599, ""),
        "never hyper's <none>"
    );
}

#[test]
fn rule3_invalid_and_informational_statuses_are_500_with_cause_logged() {
    let server = server();
    for (status, cause) in [
        ("abc", "invalid status \\\"abc\\\""),
        ("99%20X", "invalid status \\\"99 X\\\""),
        ("1000%20X", "invalid status \\\"1000 X\\\""),
        ("103%20Early%20Hints", "informational (1xx)"),
        ("100%20Continue", "informational (1xx)"),
    ] {
        let target = format!("/respond?status={status}&tag=rule3-{}", status.len());
        let mut conn = server.connect();
        conn.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\nGET /respond?body=after HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let resp = conn.read_response(false);
        assert_eq!(resp.status, 500, "{status}");
        assert_eq!(resp.framing, Framing::Length);
        assert!(resp.body_str().contains("Internal Server Error"));
        assert_eq!(
            conn.read_response(false).body,
            b"after",
            "the connection stays usable after {status}"
        );
        assert!(
            support::log_line_with(&[&target, cause]).is_some(),
            "no log line naming {cause} for {target}"
        );
    }
    assert_all_closed(&server);
}

// ----- Rule 4: header validation -----

#[test]
fn rule4_bad_headers_are_500_and_named_in_the_log() {
    let server = server();
    for (header, named) in [
        ("X%20Bad:v", "X Bad"),
        ("X-Inject:a%0D%0ASet-Cookie:%20evil=1", "X-Inject"),
        ("X-Lf:a%0Ab", "X-Lf"),
        ("X-Nul:a%00b", "X-Nul"),
        ("Bad%28Name%29:v", "Bad(Name)"),
    ] {
        let target = format!("/respond?header={header}");
        let resp = server.get(&target);
        assert_eq!(resp.status, 500, "{header}");
        assert!(resp.header("set-cookie").is_none());
        assert!(
            support::log_line_with(&[&target, named]).is_some(),
            "no log line naming {named}"
        );
    }
}

#[test]
fn rule4_hop_by_hop_headers_rejected_by_default_dropped_on_request() {
    let server = server();
    let dropping = serve(Builder::new().hop_by_hop(HopByHop::Drop).build(app()));
    for header in [
        "Connection:keep-alive",
        "Keep-Alive:timeout=5",
        "Proxy-Connection:close",
        "Transfer-Encoding:chunked",
        "Upgrade:websocket",
        "TE:trailers",
        "Trailer:X-Sum",
    ] {
        let target = format!("/respond?header={header}");
        let resp = server.get(&target);
        assert_eq!(resp.status, 500, "{header}");
        let name = header.split(':').next().unwrap();
        assert!(support::log_line_with(&[&target, "hop-by-hop", name]).is_some());
        let mut conn = dropping.connect();
        conn.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\nGET /respond?body=next HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let resp = conn.read_response(false);
        assert_eq!(
            (resp.status, resp.body.as_slice()),
            (200, &b"hello"[..]),
            "{header}"
        );
        assert!(
            resp.header(name).is_none()
                || name.eq_ignore_ascii_case("connection")
                    && resp.header(name) != Some("keep-alive")
        );
        assert_eq!(
            conn.read_response(false).body,
            b"next",
            "framing intact after dropping {header}"
        );
    }
}

// ----- Rule 5: bodies that must stay empty -----

#[test]
fn rule5_head_sends_no_body_and_keeps_content_length() {
    let server = server();
    let mut conn = server.connect();
    conn.send(b"HEAD /respond?body=hello&chunks=2 HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = conn.read_response(true);
    assert_eq!(resp.header("content-length"), Some("10"));
    conn.send(b"HEAD /respond?cl=none HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = conn.read_response(true);
    assert_eq!(resp.header("content-length"), None);
    assert_eq!(resp.header("transfer-encoding"), None);
    conn.send(b"GET /respond?body=next HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        conn.read_response(false).body,
        b"next",
        "no stray body bytes before it"
    );
    assert_all_closed(&server);
}

#[test]
fn rule5_204_and_304_send_no_body() {
    let server = server();
    let mut conn = server.connect();
    conn.send(b"GET /respond?status=204%20No%20Content&body=oops HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 204);
    assert_eq!(
        resp.header("content-length"),
        None,
        "204 never carries Content-Length"
    );
    conn.send(
        b"GET /respond?status=304%20Not%20Modified&body=oops&via=write HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 304);
    assert_eq!(
        resp.header("content-length"),
        Some("4"),
        "304 keeps the app's Content-Length"
    );
    conn.send(b"GET /respond?body=next HTTP/1.1\r\nHost: t\r\n\r\n");
    let next = conn.read_response(false);
    assert_eq!(next.body, b"next", "no stray body bytes");
    assert_all_closed(&server);
}

// ----- Rule 6: Content-Length is a promise -----

#[test]
fn rule6_surplus_in_one_chunk_is_cut_and_the_connection_ends() {
    let server = server();
    let mut conn = server.connect();
    conn.send(b"GET /respond?body=helloworld&cl=5&tag=surplus1 HTTP/1.1\r\nHost: t\r\n\r\nGET /respond HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!(resp.body, b"hello");
    assert!(resp.complete);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(
        conn.closes(),
        "nothing past the declared length, no second response"
    );
    assert!(support::log_line_with(&["tag=surplus1", "longer than its Content-Length"]).is_some());
    assert_all_closed(&server);
}

#[test]
fn rule6_surplus_over_several_chunks_ends_the_connection() {
    let server = server();
    for via in ["iter", "write", "mixed"] {
        let mut conn = server.connect();
        conn.send(format!("GET /respond?chunks=3&cl=10&via={via} HTTP/1.1\r\nHost: t\r\n\r\nGET /respond HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let resp = conn.read_response(false);
        assert!(resp.body.len() <= 10, "{via}: {} bytes", resp.body.len());
        assert!(conn.closes(), "{via}");
    }
    assert_all_closed(&server);
}

#[test]
fn rule6_exact_multi_chunk_body_keeps_the_connection() {
    let server = server();
    let mut conn = server.connect();
    conn.send(
        b"GET /respond?chunks=3 HTTP/1.1\r\nHost: t\r\n\r\nGET /respond?body=next HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(conn.read_response(false).body, b"hellohellohello");
    assert_eq!(conn.read_response(false).body, b"next");
}

#[test]
fn rule6_short_body_is_visible_truncation() {
    let server = server();
    let mut conn = server.connect();
    conn.send(b"GET /respond?chunks=2&cl=20&tag=short1 HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 200);
    assert!(!resp.complete, "the client must see the body cut short");
    assert!(conn.closes());
    assert!(support::log_line_with(&["tag=short1", "short of its Content-Length"]).is_some());
    assert_all_closed(&server);
}

#[test]
fn rule6_declared_length_with_no_body_is_500() {
    let server = server();
    let resp = server.get("/respond?body=&cl=5&tag=nobody");
    assert_eq!(resp.status, 500);
    assert!(
        support::log_line_with(&["tag=nobody", "declared Content-Length 5 but sent no body"])
            .is_some()
    );
}

#[test]
fn rule6_unparsable_or_contradictory_length_is_500_before_anything_is_sent() {
    let server = server();
    for (query, cause) in [
        ("cl=abc", "invalid Content-Length"),
        ("cl=-1", "invalid Content-Length"),
        (
            "cl=5&header=Content-Length:6",
            "contradictory Content-Length",
        ),
    ] {
        let target = format!("/respond?{query}");
        let resp = server.get(&target);
        assert_eq!(resp.status, 500, "{query}");
        assert!(resp.complete);
        assert!(
            support::log_line_with(&[&target, cause]).is_some(),
            "{query}"
        );
    }
    let resp = server.get("/respond?cl=5&header=Content-Length:5");
    assert_eq!((resp.status, resp.all("content-length")), (200, vec!["5"]));
}

#[test]
fn rule6_no_stray_bytes_after_a_complete_response() {
    let server = server();
    let mut conn = server.connect();
    conn.send(b"GET /respond?chunks=4&via=mixed HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.read_response(false).body.len(), 20);
    assert!(conn.pending_bytes(Duration::from_millis(200)).is_empty());
}
