//! The differential test: the same raw requests to the Werkzeug 1.0.1 oracle
//! (`shared/conformance/oracle_app.py`) and to `examples/conformance.rs`,
//! compared as CONFORMANCE.md says; where the crate must differ, its own
//! answer is asserted.
//!
//! The oracle runs from `.oracle/bin/python` (made by `.ci/run`) or
//! `$TOWER_WSGI_ORACLE_PYTHON`. Without it the test is skipped locally and
//! fails under `CI=true`.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Conn, Resp};

// ----- the oracle -----

struct Oracle {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_oracle() -> Option<Oracle> {
    let python = support::oracle::oracle_python("the differential test")?;
    let app = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/oracle_app.py");
    assert!(app.exists(), "{} is missing", app.display());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(python)
        .arg(&app)
        .args(["127.0.0.1", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the oracle");
    let oracle = Oracle {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(oracle.addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the oracle did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(oracle)
}

// ----- cases -----

/// One step of a conversation on one connection.
#[derive(Clone, Copy)]
enum Step {
    Send(&'static [u8]),
    /// Read a final response (skipping and counting 1xx); `true` for HEAD.
    Read(bool),
    /// Read exactly one interim response.
    Interim,
}

use Step::{Interim, Read, Send};

struct Case {
    name: &'static str,
    steps: Vec<Step>,
}

fn case(name: &'static str, steps: &[Step]) -> Case {
    Case {
        name,
        steps: steps.to_vec(),
    }
}

fn get(name: &'static str, request: &'static [u8]) -> Case {
    case(name, &[Send(request), Read(false)])
}

/// What the client sees, per CONFORMANCE.md "What is compared".
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    reason: Option<String>,
    app_headers: Vec<(String, String)>,
    content_length: Option<String>,
    closed: bool,
    body: String,
    server: bool,
    date: bool,
}

struct Transcript {
    seen: Vec<Seen>,
    raw: Vec<Resp>,
    interim: usize,
}

const SERVER_HEADERS: [&str; 6] = [
    "server",
    "date",
    "connection",
    "transfer-encoding",
    "content-length",
    "keep-alive",
];

fn run(addr: SocketAddr, case: &Case) -> Transcript {
    let mut conn = Conn::open(addr);
    let mut transcript = Transcript {
        seen: Vec::new(),
        raw: Vec::new(),
        interim: 0,
    };
    let reads = case.steps.iter().filter(|s| matches!(s, Read(_))).count();
    for step in &case.steps {
        match *step {
            Send(bytes) => conn.send(bytes),
            Interim => {
                let resp = conn.read_response(false);
                assert_eq!(
                    resp.status, 100,
                    "{}: expected an interim response",
                    case.name
                );
                transcript.interim += 1;
            }
            Read(head) => {
                let resp = loop {
                    let resp = conn.read_response(head);
                    if resp.status >= 200 {
                        break resp;
                    }
                    transcript.interim += 1;
                };
                let last = transcript.raw.len() + 1 == reads;
                let closed = resp
                    .header("connection")
                    .is_some_and(|c| c.eq_ignore_ascii_case("close"))
                    || (last && !head && closes_soon(&mut conn));
                let reason =
                    (!resp.reason.eq_ignore_ascii_case("<none>")).then(|| resp.reason.clone());
                // hyper groups header lines by name. RFC 9110 5.3: only the
                // order of lines with the same name is significant, and a
                // stable sort keeps exactly that.
                let mut app_headers: Vec<(String, String)> = resp
                    .headers
                    .iter()
                    .filter(|(n, _)| !SERVER_HEADERS.contains(&n.to_ascii_lowercase().as_str()))
                    .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
                    .collect();
                app_headers.sort_by(|a, b| a.0.cmp(&b.0));
                transcript.seen.push(Seen {
                    status: resp.status,
                    reason,
                    app_headers,
                    content_length: resp.header("content-length").map(str::to_owned),
                    closed,
                    body: resp.body_str(),
                    server: resp.header("server").is_some(),
                    date: resp.header("date").is_some(),
                });
                transcript.raw.push(resp);
            }
        }
    }
    transcript
}

fn closes_soon(conn: &mut Conn) -> bool {
    conn.stream()
        .set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let mut byte = [0u8; 1];
    matches!(std::io::Read::read(&mut conn.stream(), &mut byte), Ok(0))
}

/// Requests whose answers must be the same from the oracle and the crate.
fn compared_cases() -> Vec<Case> {
    vec![
        get("environ, HTTP/1.1", b"GET /environ HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("environ, HTTP/1.0 without Host", b"GET /environ HTTP/1.0\r\n\r\n"),
        get("environ, query kept raw", b"GET /environ?q=%C3%A9&x=a+b&empty= HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("environ, percent-encoded path", b"GET /%65nviron?x=1 HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("environ, absolute-form target", b"GET http://other.example:9/environ?a=1 HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("environ, repeated headers", b"GET /environ HTTP/1.1\r\nHost: t\r\nX-Dup: 1\r\nX-Dup: 2\r\nx-dup: 3\r\n\r\n"),
        get("environ, non-ASCII header bytes", b"GET /environ HTTP/1.1\r\nHost: t\r\nX-Name: caf\xc3\xa9\r\n\r\n"),
        get(
            "environ, Content-Type and Content-Length",
            b"POST /environ HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        ),
        get(
            "environ, chunked upload",
            b"POST /environ HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ),
        get("not found", b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("not found, non-ASCII path", b"GET /caf%C3%A9 HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("respond, defaults", b"GET /respond HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("respond, app reason phrase", b"GET /respond?status=404%20NOT%20FOUND HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("respond, 201", b"GET /respond?status=201%20Created&body=made HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("respond, odd reason", b"GET /respond?status=299%20Something%20Else HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("respond, no Content-Length closes", b"GET /respond?cl=none HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("respond, chunks", b"GET /respond?chunks=3&body=abc HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("respond, via write", b"GET /respond?chunks=3&via=write HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("respond, via write, no length", b"GET /respond?chunks=2&via=write&cl=none HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("respond, via mixed", b"GET /respond?chunks=3&via=mixed HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("respond, empty first chunk", b"GET /respond?chunks=2&via=empty-first HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("respond, empty body, no length", b"GET /respond?body=&cl=none HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("respond, zero chunks", b"GET /respond?chunks=0 HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("respond, extra headers in order", b"GET /respond?header=X-One:1&header=X-Two:2&header=X-One:3 HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("respond, app Server and Date", b"GET /respond?header=Server:legacy&header=Date:Mon,%2001%20Jan%202001%2000:00:00%20GMT HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("respond, latin-1 body", b"GET /respond?body=caf%C3%A9 HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("stream, close-delimited", b"GET /stream?n=4&size=1000 HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("stream, 1 MiB with length", b"GET /stream?cl=auto HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("stream, empty", b"GET /stream?n=0&cl=auto HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("input, length", b"POST /input HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world"),
        get("input, echo", b"POST /input?mode=echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world"),
        get("input, all", b"POST /input?mode=all HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde"),
        get(
            "input, chunked echo",
            b"POST /input?mode=echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        ),
        get("input, no body", b"POST /input HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"),
        get(
            "input, n=K leaves the rest unread",
            b"POST /input?mode=n=3 HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\nConnection: close\r\n\r\nabcdef",
        ),
        get(
            "input, none read",
            b"POST /input?mode=none HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\nConnection: close\r\n\r\nabcdef",
        ),
        get(
            "input, chunked, n=K",
            b"POST /input?mode=n=4 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n6\r\nabcdef\r\n0\r\n\r\n",
        ),
        get("error before start_response", b"GET /error?when=before HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("error after start_response", b"GET /error?when=after-start HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("error in close", b"GET /error?when=in-close HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("exc_info before the body", b"GET /exc-info HTTP/1.1\r\nHost: t\r\n\r\n"),
        get("start_response twice", b"GET /start-twice HTTP/1.1\r\nHost: t\r\n\r\n"),
        case(
            "keep-alive, three requests",
            &[
                Send(b"GET /respond?body=one HTTP/1.1\r\nHost: t\r\n\r\n"),
                Read(false),
                Send(b"POST /input?mode=echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\ntwo"),
                Read(false),
                Send(b"GET /environ HTTP/1.1\r\nHost: t\r\n\r\n"),
                Read(false),
            ],
        ),
        case(
            "pipelined requests",
            &[
                Send(b"GET /respond?body=first HTTP/1.1\r\nHost: t\r\n\r\nGET /respond?body=second HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n"),
                Read(false),
                Read(false),
                Read(false),
            ],
        ),
        case(
            "pipelined, the unframed one ends the connection",
            &[
                Send(b"GET /respond?body=first HTTP/1.1\r\nHost: t\r\n\r\nGET /respond?cl=none HTTP/1.1\r\nHost: t\r\n\r\n"),
                Read(false),
                Read(false),
            ],
        ),
        case(
            "HTTP/1.0 keep-alive",
            &[
                Send(b"GET /respond HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
                Read(false),
                Send(b"GET /respond?body=again HTTP/1.0\r\n\r\n"),
                Read(false),
            ],
        ),
        get("client asks to close", b"GET /respond HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        case(
            "Expect: 100-continue, app reads",
            &[
                Send(b"POST /input?mode=echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"),
                Interim,
                Send(b"hello"),
                Read(false),
            ],
        ),
        case("HEAD, headers", &[Send(b"HEAD /respond?body=hello&chunks=2 HTTP/1.1\r\nHost: t\r\n\r\n"), Read(true)]),
    ]
}

fn compare(oracle: &Oracle, ours: SocketAddr) -> Vec<String> {
    let mut failures = Vec::new();
    for case in compared_cases() {
        let expected = run(oracle.addr, &case);
        let got = run(ours, &case);
        if expected.seen.len() != got.seen.len() {
            failures.push(format!(
                "{}: {} responses from the oracle, {} from the crate",
                case.name,
                expected.seen.len(),
                got.seen.len()
            ));
            continue;
        }
        for (i, (want, have)) in expected.seen.iter().zip(&got.seen).enumerate() {
            if want != have {
                failures.push(format!(
                    "{} (response {}):\n  oracle: {want:?}\n  crate:  {have:?}",
                    case.name,
                    i + 1
                ));
            }
        }
    }
    failures
}

// ----- where the crate must differ: its own answers -----

fn own_answers(ours: SocketAddr) -> Vec<String> {
    let mut failures = Vec::new();
    let mut check = |name: &str, ok: bool, detail: String| {
        if !ok {
            failures.push(format!("{name}: {detail}"));
        }
    };
    let one = |request: &'static [u8], head: bool| -> (Resp, Conn) {
        let mut conn = Conn::open(ours);
        conn.send(request);
        let resp = conn.read_response(head);
        (resp, conn)
    };
    let environ_json = |request: &'static [u8]| -> serde_json::Value {
        let (resp, _) = one(request, false);
        serde_json::from_slice(&resp.body).unwrap_or_default()
    };
    let still_usable = |conn: &mut Conn| {
        conn.send(b"GET /respond?body=next HTTP/1.1\r\nHost: t\r\n\r\n");
        conn.try_read_response(false)
            .is_some_and(|r| r.body == b"next")
    };

    // HEAD: no body bytes, the app's Content-Length kept, the connection usable.
    let (resp, mut conn) = one(
        b"HEAD /respond?body=hello&chunks=2 HTTP/1.1\r\nHost: t\r\n\r\n",
        true,
    );
    check(
        "HEAD",
        resp.header("content-length") == Some("10") && still_usable(&mut conn),
        format!("{resp:?}"),
    );

    // 204 / 304 with a body: no body, no stray bytes.
    for (name, request, length) in [
        (
            "204 with a body",
            &b"GET /respond?status=204%20No%20Content&body=oops HTTP/1.1\r\nHost: t\r\n\r\n"[..],
            None,
        ),
        (
            "304 with a body",
            &b"GET /respond?status=304%20Not%20Modified&body=oops HTTP/1.1\r\nHost: t\r\n\r\n"[..],
            Some("4"),
        ),
    ] {
        let (resp, mut conn) = one(request, false);
        check(
            name,
            resp.header("content-length") == length && still_usable(&mut conn),
            format!("{resp:?}"),
        );
    }

    // Content-Length surplus: exactly the declared bytes, then the connection ends.
    for request in [
        &b"GET /respond?body=helloworld&cl=5 HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"GET /respond?chunks=3&cl=7 HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        let (resp, mut conn) = one(request, false);
        let cut = resp.body.len() <= 5 || resp.body.len() <= 7 && !resp.complete;
        check(
            "body longer than Content-Length",
            cut && !still_usable(&mut conn),
            format!("{resp:?}"),
        );
    }

    // Content-Length short: truncation visible, connection ended.
    let (resp, mut conn) = one(
        b"GET /respond?chunks=2&cl=20 HTTP/1.1\r\nHost: t\r\n\r\n",
        false,
    );
    check(
        "body shorter than Content-Length",
        !resp.complete && !still_usable(&mut conn),
        format!("{resp:?}"),
    );

    // Unparsable and informational statuses: 500, never a hang.
    for request in [
        &b"GET /respond?status=abc HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"GET /respond?status=99%20X HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /respond?status=1000%20X HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /respond?status=103%20Early%20Hints HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        let (resp, mut conn) = one(request, false);
        check(
            "unparsable or 1xx status",
            resp.status == 500 && still_usable(&mut conn),
            format!("{resp:?}"),
        );
    }

    // Expect: 100-continue: one 100, and only when the app reads.
    let mut conn = Conn::open(ours);
    conn.send(b"POST /input?mode=echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let interim = conn.read_response(false);
    conn.send(b"hello");
    let last = conn.read_response(false);
    check(
        "Expect: one 100 when read",
        interim.status == 100 && last.status == 200 && last.body == b"hello",
        format!("{interim:?} {last:?}"),
    );
    let (resp, _) = one(b"POST /input?mode=none HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", false);
    check(
        "Expect: no 100 when not read",
        resp.status == 200,
        format!("{resp:?}"),
    );

    // Failure after the headers: the client can tell the body was cut.
    for request in [
        &b"GET /error?when=mid-body HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"GET /exc-info?when=after-body HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        let (resp, _) = one(request, false);
        check(
            "failure after headers",
            resp.status == 200 && !resp.complete,
            format!("{resp:?}"),
        );
    }

    // CR/LF in a header value: 500, nothing injected.
    let (resp, _) = one(
        b"GET /respond?header=X-Bad:a%0D%0ASet-Cookie:%20x=1 HTTP/1.1\r\nHost: t\r\n\r\n",
        false,
    );
    check(
        "CR/LF in a header",
        resp.status == 500 && resp.header("set-cookie").is_none(),
        format!("{resp:?}"),
    );

    // RULES.md 12 decides where Werkzeug 1.0.1 differs in the environ.
    let env = environ_json(
        b"GET /environ HTTP/1.1\r\nHost: t\r\nCookie: a=1\r\nCookie: b=2\r\nX_Spoof: 1\r\n\r\n",
    );
    check(
        "cookie crumbs joined with '; '",
        env["HTTP_COOKIE"] == "a=1; b=2",
        format!("{env}"),
    );
    check(
        "underscore headers dropped",
        env.get("HTTP_X_SPOOF").is_none(),
        format!("{env}"),
    );

    // Raw non-ASCII bytes in the target: one char per byte (Werkzeug decodes twice).
    let env = environ_json(b"GET /environ?q=\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n");
    check(
        "raw non-ASCII query",
        env["QUERY_STRING"] == "q=\u{c3}\u{a9}",
        format!("{env}"),
    );

    // `//x` is kept (Python 3.11's http.server collapses it to `/x`).
    let (resp, _) = one(b"GET //environ HTTP/1.1\r\nHost: t\r\n\r\n", false);
    check("double slash kept", resp.status == 404, format!("{resp:?}"));

    // An unread body never becomes a request.
    let (resp, mut conn) = one(b"POST /input?mode=none HTTP/1.1\r\nHost: t\r\nContent-Length: 40\r\n\r\nGET /start-twice HTTP/1.1\r\nHost: t\r\n\r\n", false);
    let next = conn.try_read_response(false);
    check(
        "unread body",
        resp.status == 200 && next.as_ref().is_none_or(|r| r.status != 500),
        format!("{next:?}"),
    );

    failures
}

#[test]
fn differential_against_werkzeug() {
    let Some(oracle) = start_oracle() else { return };
    let server = support::serve(support::conformance::service());
    check_differential(&oracle, &server);
}

/// The same corpus and expectations with `oracle_app.py` itself hosted in-process:
/// the Python original, through the crate's rules.
#[cfg(feature = "python")]
#[test]
fn differential_against_werkzeug_python_hosted() {
    let Some(oracle) = start_oracle() else { return };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance");
    let app = tower_wsgi::python::PyApp::builder()
        .python_path(&dir)
        .import("oracle_app:application")
        .unwrap_or_else(|error| panic!("load oracle_app.py: {error}"));
    let server = support::serve(tower_wsgi::WsgiService::new(app));
    check_differential(&oracle, &server);
}

fn check_differential(oracle: &Oracle, server: &support::TestServer) {
    let mut failures = compare(oracle, server.addr);
    failures.extend(own_answers(server.addr));

    // Every body the crate handed out was closed once everything finished.
    let resp = server.get("/counters");
    let counters: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    if counters["started"] != counters["closed"] {
        failures.push(format!("counters: {counters}"));
    }
    assert!(
        failures.is_empty(),
        "{} conformance failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
