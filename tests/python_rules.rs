//! The crate's rules applied to Python apps (tests/python/rules_apps.py):
//! lazy `start_response`, `exc_info` replacing the headers before the body
//! and raising the original exception after, a second call refused, `write()`,
//! invalid statuses and headers, Content-Length both ways, 204, the body
//! limit, every response chunk released; one thread computing at a time
//! under the GIL; inline dispatch refused;
//! `TestClient` and tower layers unchanged.
#![cfg(all(feature = "python", feature = "server"))]
#![deny(warnings)]

mod support;

use std::time::{Duration, Instant};

use support::{Conn, TestServer};
use tower_wsgi::test_client::TestClient;
use tower_wsgi::Builder;

fn app() -> tower_wsgi::python::PyApp {
    support::python::fixture("rules_apps:application")
}

fn server() -> TestServer {
    support::capture_logs();
    support::serve(Builder::new().max_request_body(10_000).build(app()))
}

fn seen(server: &TestServer) -> String {
    server.get("/seen").body_str()
}

#[test]
fn start_response_rules() {
    let server = server();

    let resp = server.get("/lazy");
    assert_eq!(
        (resp.status, resp.body_str().as_str()),
        (201, "made lazily")
    );
    assert_eq!(resp.header("x-lazy"), Some("yes"));

    let resp = server.get("/exc-before");
    assert_eq!(
        resp.status, 503,
        "exc_info replaces the headers not yet sent"
    );
    assert_eq!(resp.reason, "Try Later");
    assert_eq!(resp.body_str(), "error page");

    let resp = server.get("/exc-after");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), "partial ");
    assert!(!resp.complete, "the failure after the headers is visible");
    assert!(seen(&server).contains("('exc-after reraised the original', True)"));
    let line = support::log_line_with(&["/exc-after", "KeyError: 'after the body started'"]);
    assert!(line.is_some_and(|l| l.contains("Traceback")));

    // A second call without exc_info raises AssertionError, and the
    // response is a 500 even if the app goes on (the crate's rule).
    let resp = server.get("/twice");
    assert_eq!(resp.status, 500);
    assert!(seen(&server).contains(
        "('second call', 'AssertionError: start_response called a second time without exc_info')"
    ));

    let resp = server.get("/write");
    assert_eq!(resp.body_str(), "one two three");
    assert!(seen(&server).contains("write() data must be bytes, not str: 'a str'"));
}

#[test]
fn response_rules() {
    let server = server();

    let resp = server.get("/bad-status");
    assert_eq!(resp.status, 500);
    assert!(seen(&server).contains("bad status"));
    assert!(support::log_line_with(&["/bad-status", "ValueError"]).is_some());

    assert_eq!(server.get("/early-hints").status, 500, "1xx refused");

    let resp = server.get("/injection");
    assert_eq!(resp.status, 500);
    assert!(resp.header("set-cookie").is_none(), "nothing injected");

    let resp = server.get("/short");
    assert_eq!(resp.body_str(), "only nine");
    assert!(!resp.complete, "short body: truncation visible");

    let mut conn = Conn::open(server.addr);
    conn.send(b"GET /long HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!(resp.body_str(), "hello", "exactly Content-Length bytes");

    let mut conn = Conn::open(server.addr);
    conn.send(b"GET /no-content HTTP/1.1\r\nHost: t\r\n\r\nGET /lazy HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 204);
    assert!(resp.body.is_empty());
    assert_eq!(conn.read_response(false).status, 201, "no stray bytes");
}

#[test]
fn response_chunks_copied_or_shared_release_their_bytes() {
    let server = server();
    let before = server.get("/refs").body_str();
    for _ in 0..20 {
        for size in [100, 4096, 65536] {
            let resp = server.get(&format!("/body/{size}"));
            assert_eq!(resp.body.len(), size);
            assert!(resp.body.iter().all(|&b| b == resp.body[0]));
        }
    }
    // A reference dropped off the GIL is released at the next attach.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = server.get("/refs").body_str();
        if now == before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bodies still referenced: {now} (before: {before})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn body_limit_is_413() {
    let server = server();
    let mut conn = Conn::open(server.addr);
    conn.send(&support::post("/upload", &"x".repeat(20_000), ""));
    assert_eq!(
        conn.read_response(false).status,
        413,
        "declared length over the limit"
    );

    let mut raw =
        String::from("POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..5 {
        raw.push_str(&format!("{:x}\r\n{}\r\n", 4000, "y".repeat(4000)));
    }
    raw.push_str("0\r\n\r\n");
    let mut conn = Conn::open(server.addr);
    conn.send(raw.as_bytes());
    assert_eq!(
        conn.read_response(false).status,
        413,
        "chunked body past the limit"
    );

    let mut conn = Conn::open(server.addr);
    conn.send(&support::post("/upload", "small", ""));
    assert_eq!(conn.read_response(false).body_str(), "small");
}

/// The `/env` route's entries.
fn env_of(resp: &support::Resp) -> std::collections::BTreeMap<String, String> {
    let text = resp.body_str();
    let inner = text.trim_start_matches("[(").trim_end_matches(")]");
    inner
        .split("), (")
        .filter_map(|pair| {
            let (key, value) = pair.split_once(", ")?;
            Some((
                key.trim_matches('\'').to_owned(),
                value.trim_matches('\'').to_owned(),
            ))
        })
        .collect()
}

#[test]
fn compute_length_measures_bodies_of_one_chunk_and_chunks_the_rest() {
    let server = support::serve(
        Builder::new()
            .connection_policy(tower_wsgi::ConnectionPolicy::ComputeLength)
            .build(app()),
    );
    let mut conn = Conn::open(server.addr);
    // PEP 3333's case: a list (or tuple) of one bytes object.
    let measured = [("/body/100", 100), ("/exc-before", 10)];
    for (path, length) in measured {
        conn.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let resp = conn.read_response(false);
        assert_eq!(resp.framing, support::Framing::Length, "{path}");
        assert_eq!(resp.body.len(), length, "{path}");
        assert_eq!(resp.header("connection"), None, "{path}");
    }
    // A generator, a tuple of two, a list after write(): chunked, the
    // connection open.
    let streamed = [
        ("/lazy", "made lazily"),
        ("/parts", "two parts"),
        ("/write", "one two three"),
    ];
    for (path, body) in streamed {
        conn.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let resp = conn.read_response(false);
        assert_eq!(resp.framing, support::Framing::Chunked, "{path}");
        assert_eq!(resp.body_str(), body, "{path}");
        assert_eq!(resp.header("connection"), None, "{path}");
    }
}

#[test]
fn each_request_sees_its_own_environ_values() {
    let server = support::serve(
        Builder::new()
            .keep_underscore_headers(true)
            .connection_policy(tower_wsgi::ConnectionPolicy::KeepAliveChunked)
            .build(app()),
    );
    let mut conn = Conn::open(server.addr);
    let mut env = |request: String| {
        conn.send(request.as_bytes());
        let resp = conn.read_response(false);
        assert!(resp.complete, "{request}");
        env_of(&resp)
    };

    let first = env("GET /env?a=1 HTTP/1.1\r\nHost: one\r\nX-B: 1\r\n\r\n".into());
    assert_eq!(first["QUERY_STRING"], "a=1");
    assert_eq!(first["HTTP_HOST"], "one");
    assert_eq!(first["HTTP_X_B"], "1");
    let second = env("GET /env HTTP/1.1\r\nHost: two\r\nX-B: 2\r\nX-B: 3\r\n\r\n".into());
    assert_eq!(second["QUERY_STRING"], "");
    assert_eq!(
        second["HTTP_HOST"], "two",
        "not the value of the request before"
    );
    assert_eq!(second["HTTP_X_B"], "2,3");
    let third = env("GET /env HTTP/1.1\r\nHost: two\r\nX_A: u\r\nX-A: d\r\n\r\n".into());
    assert!(!third.contains_key("HTTP_X_B"), "{third:?}");
    let mut joined: Vec<&str> = third["HTTP_X_A"].split(',').collect();
    joined.sort_unstable();
    assert_eq!(joined, ["d", "u"], "one key for two spellings, joined");

    // Keys are first looked for where they came the time before: the same
    // names in another order, one left out, then the first order again
    // (underscores dropped, so each name is set once, through that path).
    let plain = support::serve(
        Builder::new()
            .connection_policy(tower_wsgi::ConnectionPolicy::KeepAliveChunked)
            .build(app()),
    );
    let mut plain_conn = Conn::open(plain.addr);
    let ordered = "GET /env HTTP/1.1\r\nHost: h\r\nX-One: 1\r\nX-Two: 2\r\nX-Three: 3\r\n\r\n";
    for (request, expected) in [
        (ordered, [Some("1"), Some("2"), Some("3")]),
        (
            "GET /env HTTP/1.1\r\nX-Three: c\r\nHost: h\r\nX-One: a\r\n\r\n",
            [Some("a"), None, Some("c")],
        ),
        (ordered, [Some("1"), Some("2"), Some("3")]),
    ] {
        plain_conn.send(request.as_bytes());
        let seen = env_of(&plain_conn.read_response(false));
        let values = ["HTTP_X_ONE", "HTTP_X_TWO", "HTTP_X_THREE"]
            .map(|key| seen.get(key).map(String::as_str));
        assert_eq!(values, expected, "{request}");
        assert_eq!(seen["HTTP_HOST"], "h");
    }

    // More header names than the environ remembers keys for.
    for round in 0..4 {
        let mut request = String::from("GET /env HTTP/1.1\r\nHost: h\r\n");
        for i in 0..90 {
            request.push_str(&format!("X-Name-{round}-{i}: v{i}\r\n"));
        }
        request.push_str("\r\n");
        let seen = env(request);
        for i in 0..90 {
            assert_eq!(seen[&format!("HTTP_X_NAME_{round}_{i}")], format!("v{i}"));
        }
    }

    // An environ a Rust middleware read and changed before the app.
    let middleware = tower_wsgi::middleware::from_fn(|mut environ, start_response, next| {
        assert_eq!(environ.get("HTTP_HOST"), Some("t"));
        environ.insert("myapp.user", "ada");
        environ.remove("HTTP_X_DROP");
        next.call(environ, start_response)
    });
    let wrapped = tower_wsgi::middleware::MiddlewareApp::new(middleware, app());
    let server = support::serve(Builder::new().build(wrapped));
    let mut conn = Conn::open(server.addr);
    conn.send(b"GET /env HTTP/1.1\r\nHost: t\r\nX-Drop: 1\r\nX-Keep: 2\r\n\r\n");
    let seen = env_of(&conn.read_response(false));
    assert_eq!(seen["myapp.user"], "ada");
    assert_eq!(seen["HTTP_X_KEEP"], "2");
    assert_eq!(seen["PATH_INFO"], "/env");
    assert!(!seen.contains_key("HTTP_X_DROP"));
}

#[test]
fn threads_keep_their_python_thread_state() {
    let server = support::serve(Builder::new().max_threads(1).build(app()));
    let hits: Vec<String> = (0..3).map(|_| server.get("/local").body_str()).collect();
    assert_eq!(
        hits,
        ["1", "2", "3"],
        "threading.local survives between requests"
    );
}

#[test]
fn python_that_computes_runs_on_one_thread_at_a_time() {
    // Under the GIL a second thread only takes turns with the first: the
    // pool keeps one at work, where an app without a limit gets a thread
    // per core at once (CI has two). Requests that come together each
    // compute for a millisecond, far under the time slice after which the
    // pool would add a thread for a long computation.
    use tower_wsgi::App;
    assert_eq!(app().parallelism(), std::num::NonZeroUsize::new(1));
    let server = support::serve(Builder::new().max_threads(8).build(app()));
    for round in 0..3 {
        let mut conns: Vec<Conn> = (0..6).map(|_| server.connect()).collect();
        for conn in &mut conns {
            conn.send(b"GET /thread HTTP/1.1\r\nHost: t\r\n\r\n");
        }
        let threads: std::collections::BTreeSet<String> = conns
            .iter_mut()
            .map(|conn| conn.read_response(false).body_str())
            .collect();
        assert_eq!(threads.len(), 1, "round {round}: computed on {threads:?}");
    }
}

#[test]
fn an_idle_thread_ends_after_the_idle_thread_timeout_with_its_state() {
    let server = support::serve(
        Builder::new()
            .max_threads(1)
            .idle_thread_timeout(Duration::from_millis(200))
            .build(app()),
    );
    let first: Vec<String> = (0..2).map(|_| server.get("/local").body_str()).collect();
    assert_eq!(first, ["1", "2"]);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        server.get("/local").body_str(),
        "1",
        "a new thread, with a new threading.local"
    );
}

#[test]
fn wrappers_pass_the_thread_hooks_on() {
    let rust = tower_wsgi::app_fn(|_environ, start_response| {
        start_response.start("200 OK", [("Content-Length", "4")])?;
        Ok("rust".into())
    });
    let dispatcher = || tower_wsgi::middleware::Dispatcher::new(rust).mount("/py", app());
    let server = support::serve(Builder::new().max_threads(1).build(dispatcher()));
    let hits: Vec<String> = (0..3).map(|_| server.get("/py/local").body_str()).collect();
    assert_eq!(hits, ["1", "2", "3"], "mounted under a Dispatcher");
    assert_eq!(server.get("/other").body_str(), "rust");
    let refused = std::panic::catch_unwind(|| Builder::new().inline(true).build(dispatcher()));
    assert!(
        refused.is_err(),
        "a Dispatcher holding a PyApp refuses inline"
    );

    let middleware = tower_wsgi::middleware::from_fn(|environ, start_response, next| {
        next.call(environ, start_response)
    });
    let wrapped = tower_wsgi::middleware::MiddlewareApp::new(middleware, app());
    let server = support::serve(Builder::new().max_threads(1).build(wrapped));
    let hits: Vec<String> = (0..2).map(|_| server.get("/local").body_str()).collect();
    assert_eq!(hits, ["1", "2"], "behind a MiddlewareApp");

    use tower_wsgi::App;
    let one = std::num::NonZeroUsize::new(1);
    let passing = tower_wsgi::middleware::from_fn(|environ, start_response, next| {
        next.call(environ, start_response)
    });
    let wrapped = tower_wsgi::middleware::MiddlewareApp::new(passing, app());
    assert_eq!(wrapped.parallelism(), one, "a MiddlewareApp passes it on");
    let behind_proxies = tower_wsgi::middleware::ProxyFix::new(app());
    assert_eq!(behind_proxies.parallelism(), one, "and ProxyFix");
    let pythons = tower_wsgi::middleware::Dispatcher::new(app()).mount("/py", app());
    assert_eq!(
        pythons.parallelism(),
        one,
        "as does a Dispatcher of Python apps"
    );
    assert_eq!(
        dispatcher().parallelism(),
        None,
        "a Rust app beside one may compute on every core"
    );
}

#[test]
fn inline_dispatch_is_refused() {
    let refused = std::panic::catch_unwind(|| Builder::new().inline(true).build(app()));
    let message = support::panic_text(refused.expect_err("inline must be refused"));
    assert!(message.contains("inline"), "{message}");
    assert!(message.contains("PyApp"), "{message}");
}

#[test]
fn test_client_and_tower_layers_work_unchanged() {
    let client = TestClient::new(app());
    let resp = client.get("/lazy").send_blocking();
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(resp.text(), "made lazily");

    let service = tower::ServiceBuilder::new()
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            http::StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(5),
        ))
        .service(tower_wsgi::WsgiService::new(app()));
    let server = support::serve(service);
    assert_eq!(server.get("/write").body_str(), "one two three");
}
