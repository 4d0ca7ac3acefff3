//! PEP 3333 as Python sees it through `PyApp`: an app wrapped in
//! `wsgiref.validate.validator` (tests/python/validate_app.py) answers 200
//! on GET, HEAD, POST with Content-Length and a chunked POST, so no check of
//! the validator fails; plus what the environ and `wsgi.input` gave it.
#![cfg(all(feature = "python", feature = "server"))]
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
    assert!(get["types"]
        .as_object()
        .unwrap()
        .values()
        .all(|t| t == "str"));
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
    conn.send(&support::post(
        "/upload",
        BODY,
        "Content-Type: text/plain\r\n",
    ));
    let post = report(&conn.read_response(false));
    check_post(&post, false);
    assert_eq!(post["content_length"], BODY.len().to_string());

    let mut chunked = String::from(
        "POST /chunked HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for part in BODY.as_bytes().chunks(7) {
        chunked.push_str(&format!(
            "{:x}\r\n{}\r\n",
            part.len(),
            std::str::from_utf8(part).unwrap()
        ));
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

fn stats(server: &TestServer) -> (u64, u64) {
    let stats: serde_json::Value = serde_json::from_slice(&server.get("/stats").body).unwrap();
    (
        stats["reads"].as_u64().unwrap(),
        stats["closes"].as_u64().unwrap(),
    )
}

/// Waits for the file to be closed (after the response ended).
fn stats_after(server: &TestServer, closes: u64) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = stats(server);
        if seen.1 >= closes || Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn file_wrapper_streams_files_from_rust_and_closes_them_once() {
    let server = support::serve(tower_wsgi::WsgiService::new(support::python::fixture(
        "file_apps:application",
    )));
    let path = std::env::temp_dir().join(format!("tower-wsgi-file-{}.bin", std::process::id()));
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&path, &data).unwrap();

    server.get("/reset");
    let resp = server.get(&format!("/file?{}", path.display()));
    assert_eq!(resp.header("content-length"), Some("999990"));
    assert!(
        resp.body == data[10..],
        "from the file's position to its end"
    );
    assert_eq!(
        stats_after(&server, 1),
        (0, 1),
        "no read() through Python; closed once"
    );

    server.get("/reset");
    let resp = server.get(&format!("/short?{}", path.display()));
    assert!(resp.body == data[..1000], "Content-Length honoured");
    assert_eq!(stats_after(&server, 1), (0, 1));

    server.get("/reset");
    let resp = server.get("/bytesio");
    assert_eq!(resp.body, b"0123456789".repeat(1000));
    let (reads, closes) = stats_after(&server, 1);
    assert!(
        reads >= 1,
        "a file-like without a descriptor is read through read()"
    );
    assert_eq!(closes, 1);

    server.get("/reset");
    let resp = server.get("/iterated");
    assert_eq!(resp.body, b"abcdefghij".repeat(10));
    assert_eq!(
        stats_after(&server, 1),
        (5, 1),
        "iterated from Python: block_size reads, then EOF"
    );

    std::fs::remove_file(&path).unwrap();
}
