//! examples/pep3333.rs on the wire: PEP 3333's examples and the
//! body-transforming and capturing middleware, byte for byte; close() once
//! through each; the rules applied once, at the edge, to what goes out.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

#[path = "../examples/pep3333.rs"]
mod pep3333;

use support::{serve, Counters, Framing, Resp};
use tower_wsgi::middleware::Dispatcher;
use tower_wsgi::{app_fn, AppBody, WsgiService};

/// Status, reason, headers but `date`, framing and body.
type Shape<'a> = (u16, &'a str, Vec<(&'a str, &'a str)>, Framing, &'a [u8]);

fn shape(resp: &Resp) -> Shape<'_> {
    let headers = resp
        .headers
        .iter()
        .filter(|(name, _)| name != "date")
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    (
        resp.status,
        resp.reason.as_str(),
        headers,
        resp.framing,
        &resp.body,
    )
}

const SERVER: (&str, &str) = ("server", "tower-wsgi/0.1.0");

#[test]
fn every_route_answers_as_the_issue_specifies() {
    let server = serve(WsgiService::new(pep3333::app()));
    let chunked = |kind: &'static str| {
        vec![
            ("content-type", kind),
            SERVER,
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
        ]
    };
    let cases: [(&str, Shape<'_>); 7] = [
        (
            "/simple",
            (
                200,
                "OK",
                chunked("text/plain"),
                Framing::Chunked,
                b"Hello world!\n",
            ),
        ),
        (
            "/class",
            (
                200,
                "OK",
                chunked("text/plain"),
                Framing::Chunked,
                b"Hello world!\n",
            ),
        ),
        (
            "/upper/",
            (
                200,
                "OK",
                chunked("text/plain"),
                Framing::Chunked,
                b"HELLO WORLD\n",
            ),
        ),
        (
            "/upper/html",
            (
                200,
                "OK",
                chunked("text/html"),
                Framing::Chunked,
                b"hello world\n",
            ),
        ),
        (
            "/errordoc/missing",
            (
                404,
                "Not Found",
                vec![
                    ("content-type", "text/plain"),
                    ("content-length", "11"),
                    SERVER,
                ],
                Framing::Length,
                b"custom 404\n",
            ),
        ),
        (
            "/latin/",
            (
                200,
                "OK",
                chunked("text/plain"),
                Framing::Chunked,
                b"ellohay orldway\n",
            ),
        ),
        (
            "/latin/html",
            (
                200,
                "OK",
                chunked("text/html"),
                Framing::Chunked,
                b"hello world\n",
            ),
        ),
    ];
    for (path, expected) in cases {
        let resp = server.get(path);
        assert_eq!(shape(&resp), expected, "{path}");
    }
}

/// The inner app of the middleware, counted: writes "hello ", returns
/// "world\n", and answers 404 under /missing.
fn counted(counters: &Counters) -> impl tower_wsgi::App {
    let counters = counters.clone();
    app_fn(move |environ, start_response| {
        let status = if environ.path_info() == "/missing" {
            "404 Not Found"
        } else {
            "200 OK"
        };
        let write = start_response.start(
            status,
            [("Content-Type", "text/plain"), ("Content-Length", "12")],
        )?;
        write.write("hello ")?;
        Ok(counters.track(AppBody::from_chunks(["world\n"])))
    })
}

#[test]
fn the_inner_body_is_closed_exactly_once_through_each_middleware() {
    let counters = Counters::default();
    let app = Dispatcher::new(counted(&counters))
        .mount("/upper", pep3333::upper(counted(&counters)))
        .mount("/errordoc", pep3333::errordoc(counted(&counters)))
        .mount("/latin", pep3333::Latinator::new(counted(&counters)));
    let server = serve(WsgiService::new(app));
    let mut expected = 0;
    for (path, body) in [
        ("/upper/", &b"HELLO WORLD\n"[..]),
        ("/errordoc/", b"hello world\n"),
        ("/errordoc/missing", b"custom 404\n"),
        ("/latin/", b"ellohay orldway\n"),
    ] {
        let resp = server.get(path);
        assert_eq!(resp.body, body, "{path}");
        expected += 1;
        assert_eq!(counters.wait_closed(expected), expected, "{path}");
        assert_eq!(counters.started(), expected, "{path}");
    }
    // HEAD: the body is never iterated, and still closed once.
    let mut conn = server.connect();
    conn.send(b"HEAD /upper/ HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = conn.read_response(true);
    assert_eq!((resp.status, resp.body.len()), (200, 0));
    assert_eq!(
        resp.header("content-length"),
        None,
        "the transform drops it"
    );
    assert_eq!(counters.wait_closed(expected + 1), expected + 1);
}

#[test]
fn a_forwarded_capture_meets_the_rules_at_the_edge() {
    // The capture checks nothing: the hop-by-hop header and the short body
    // are caught where the response goes out, as without the middleware.
    let hop = app_fn(|_environ, start_response| {
        start_response.start("200 OK", [("Connection", "keep-alive")])?;
        Ok("x".into())
    });
    let short = app_fn(|_environ, start_response| {
        start_response.start("200 OK", [("Content-Length", "10")])?;
        Ok("abc".into())
    });
    let app = Dispatcher::new(pep3333::errordoc(short)).mount("/hop", pep3333::errordoc(hop));
    let server = serve(WsgiService::new(app));
    let resp = server.get("/hop");
    assert_eq!(resp.status, 500, "a hop-by-hop header is refused once");
    let resp = server.get("/short");
    assert_eq!(resp.header("content-length"), Some("10"));
    assert!(!resp.complete, "a short body is cut, not padded");
}
