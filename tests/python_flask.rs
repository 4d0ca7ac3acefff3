//! A Flask app (tests/python/flask_app.py) through `PyApp` over a real socket:
//! text, JSON, `stream_with_context`, `send_file` (through `wsgi.file_wrapper`),
//! a chunked upload read with `request.get_data()`, a form post, an exception
//! (Flask's 500, logged), a session cookie, HEAD.
//!
//! Needs the venv with Flask that `.ci/run` makes (`.venv/`); skipped locally
//! without it, a failure under `CI=true`.
#![cfg(all(feature = "python", feature = "server"))]
#![deny(warnings)]

mod support;

use std::io::Write;

use support::{Framing, TestServer};

fn server() -> Option<TestServer> {
    support::python::serve_venv_fixture("flask_app:app", "flask")
}

#[test]
fn flask_text_json_head_and_form() {
    let Some(server) = server() else { return };
    let resp = server.get("/text");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), "hello from flask");
    assert_eq!(resp.header("content-length"), Some("16"));
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));

    let resp = server.request(b"HEAD /text HTTP/1.1\r\nHost: t\r\n\r\n", true);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-length"), Some("16"));
    assert!(resp.body.is_empty());

    support::python::assert_json_and_form_routes(&server);

    let resp = server.get("/missing");
    assert_eq!(resp.status, 404);
}

#[test]
fn flask_streams_with_context() {
    let Some(server) = server() else { return };
    let resp = server.get("/stream?n=4&tag=t");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), "t-0\nt-1\nt-2\nt-3\n");
    assert!(resp.complete);
    assert_ne!(
        resp.framing,
        Framing::Length,
        "streamed, no length declared"
    );
}

#[test]
fn flask_send_file_goes_through_the_file_wrapper() {
    let Some(server) = server() else { return };
    let dir = std::env::temp_dir().join(format!("tower-wsgi-flask-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("data.bin");
    let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&data)
        .unwrap();
    let target = format!("/file?path={}", path.display());
    let resp = server.get(&target);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-length"), Some("700000"));
    assert_eq!(resp.framing, Framing::Length);
    assert!(resp.body == data, "the file's bytes, in order");
    let resp = server.request(
        format!("HEAD {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        true,
    );
    assert_eq!(resp.header("content-length"), Some("700000"));
    assert!(resp.body.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn flask_reads_a_chunked_upload() {
    let Some(server) = server() else { return };
    let body: String = (0..20_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut raw = String::from(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for part in body.as_bytes().chunks(3000) {
        raw.push_str(&format!(
            "{:x}\r\n{}\r\n",
            part.len(),
            std::str::from_utf8(part).unwrap()
        ));
    }
    raw.push_str("0\r\n\r\n");
    let resp = server.request(raw.as_bytes(), false);
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    let json: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(json["length"], 20_000);
    assert_eq!(json["head"], &body[..16]);
    assert_eq!(json["tail"], &body[body.len() - 16..]);
}

#[test]
fn flask_exception_is_a_logged_500() {
    let Some(server) = server() else { return };
    let resp = server.get("/boom");
    assert_eq!(resp.status, 500);
    assert!(resp.body_str().contains("Internal Server Error"));
    // Flask logs it to wsgi.errors: a tracing event in the request's span.
    assert!(support::log_line_with(&["/boom", "Exception on /boom"]).is_some());
    assert!(support::log_line_with(&["flask route failed on purpose"]).is_some());
    assert_eq!(server.get("/text").status, 200, "still serving");
}

#[test]
fn flask_session_cookie_round_trips() {
    let Some(server) = server() else { return };
    let first = server.get("/session");
    assert_eq!(first.body_str(), "visit 1");
    let cookie = first.header("set-cookie").expect("a session cookie");
    let cookie = cookie.split(';').next().unwrap();
    let second = server.request(
        format!("GET /session HTTP/1.1\r\nHost: t\r\nCookie: {cookie}\r\n\r\n").as_bytes(),
        false,
    );
    assert_eq!(second.body_str(), "visit 2");
}

#[test]
fn flask_chunked_upload_past_the_limit_is_413() {
    support::capture_logs();
    let Some(app) = support::python::venv_fixture("flask_app:app", "flask") else {
        return;
    };
    let server = support::serve(
        tower_wsgi::Builder::new()
            .max_request_body(10_000)
            .build(app),
    );
    let mut raw = String::from(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for _ in 0..5 {
        raw.push_str(&format!("{:x}\r\n{}\r\n", 4000, "z".repeat(4000)));
    }
    raw.push_str("0\r\n\r\n");
    let resp = server.request(raw.as_bytes(), false);
    assert_eq!(resp.status, 413, "{}", resp.body_str());
}
