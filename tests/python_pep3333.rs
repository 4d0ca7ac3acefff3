//! PEP 3333 as Python sees it through `PyApp`: an app wrapped in
//! `wsgiref.validate.validator` (tests/python/validate_app.py) answers 200
//! on GET, HEAD, POST with Content-Length and a chunked POST, so no check of
//! the validator fails; plus what the environ and `wsgi.input` gave it.
#![cfg(feature = "python")]
#![deny(warnings)]

mod support;

use std::time::{Duration, Instant};

use support::{Conn, TestServer};

fn server() -> TestServer {
    support::capture_logs();
    support::serve(tower_wsgi::WsgiService::new(support::python::fixture(
        "validate_app:make()",
    )))
}

fn report(resp: &support::Resp) -> serde_json::Value {
    assert_eq!(resp.status, 200, "validator failed: {}", resp.body_str());
    serde_json::from_slice(&resp.body).unwrap()
}

const BODY: &str = "abcdef\nline two\nthird line\nfourth\nfifth\nsixth\n";

fn check_post(report: &serde_json::Value, terminated: bool) {
    let pieces: Vec<&str> = report["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(pieces.concat(), BODY, "every byte read once, in order");
    // read(3), readline(), readline(4), readlines(10), one iteration, readlines(), read(-1), readline()
    assert_eq!(&pieces[..4], ["abc", "def\n", "line", " two\n"]);
    assert_eq!(pieces[pieces.len() - 2..], ["", ""], "EOF reads are empty");
    assert_eq!(report["terminated"], terminated);
}

#[test]
fn validator_passes_get_head_and_uploads() {
    let server = server();

    let resp = server.get("/path?q=1");
    let get = report(&resp);
    assert_eq!(get["missing"], serde_json::json!([]));
    assert!(get["types"].as_object().unwrap().values().all(|t| t == "str"));
    assert_eq!(get["version"], serde_json::json!([1, 0]));
    assert_eq!(
        (&get["multithread"], &get["multiprocess"], &get["run_once"]),
        (&true.into(), &false.into(), &false.into())
    );
    assert_eq!(get["url_scheme"], "http");
    assert_eq!(get["file_wrapper"], true);

    let mut conn = Conn::open(server.addr);
    conn.send(b"HEAD /head HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = conn.read_response(true);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    let mut conn = Conn::open(server.addr);
    conn.send(&support::post("/upload", BODY, "Content-Type: text/plain\r\n"));
    let post = report(&conn.read_response(false));
    check_post(&post, false);
    assert_eq!(post["content_length"], BODY.len().to_string());

    let mut chunked = String::from(
        "POST /chunked HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for part in BODY.as_bytes().chunks(7) {
        chunked.push_str(&format!("{:x}\r\n{}\r\n", part.len(), std::str::from_utf8(part).unwrap()));
    }
    chunked.push_str("0\r\n\r\n");
    let mut conn = Conn::open(server.addr);
    conn.send(chunked.as_bytes());
    let post = report(&conn.read_response(false));
    check_post(&post, true);
    assert_eq!(post["content_length"], serde_json::Value::Null);

    // wsgi.errors lines are log events in the request's span.
    assert!(support::log_line_with(&["/chunked", "validate: POST /chunked"]).is_some());
    assert!(support::log_line_with(&["validate: another"]).is_some());

    // Every iterable closed once, HEAD's included.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let counters: serde_json::Value =
            serde_json::from_slice(&server.get("/counters").body).unwrap();
        assert_eq!(counters["started"], 4);
        if counters["closed"] == 4 {
            break;
        }
        assert!(Instant::now() < deadline, "close() not called: {counters}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
