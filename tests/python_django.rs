//! A Django project (tests/python/django_app.py, Django's own
//! `get_wsgi_application`) through `PyApp` over a real socket: text, JSON,
//! HEAD, a form post, an upload read through `request.body`, a streaming
//! response, `FileResponse` (handed to `wsgi.file_wrapper`), a cookie, a 404
//! and a view that raises (Django's 500).
//!
//! Needs the venv with Django that `.ci/run` makes (`.venv/`); skipped
//! locally without it, a failure under `CI=true`.
#![cfg(all(feature = "python", feature = "server"))]
#![deny(warnings)]

mod support;

use support::{Framing, TestServer};

fn server() -> Option<TestServer> {
    support::python::serve_venv_fixture("django_app:application", "django")
}

#[test]
fn django_text_json_head_form_and_404() {
    let Some(server) = server() else { return };
    let resp = server.get("/text");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), "hello from django");
    // Django declares no length without its CommonMiddleware: the crate's
    // default ends the connection after the body (Werkzeug's rule).
    assert_eq!(resp.header("content-length"), None);
    assert_eq!(resp.header("connection"), Some("close"));
    assert_eq!(resp.header("content-type"), Some("text/plain"));

    let resp = server.request(b"HEAD /text HTTP/1.1\r\nHost: t\r\n\r\n", true);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("text/plain"));
    assert!(resp.body.is_empty());

    support::python::assert_json_and_form_routes(&server);

    assert_eq!(server.get("/missing").status, 404);
}

#[test]
fn django_reads_an_upload_through_request_body() {
    let Some(server) = server() else { return };
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
    let mut raw = format!(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let resp = server.request(&raw, false);
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    assert_eq!(resp.body_str(), format!("300000 bytes, sum {sum}"));

    // Django reads CONTENT_LENGTH only: a chunked body reaches it empty (as
    // the porting guide says), whatever `wsgi.input` holds.
    let resp = server.request(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        false,
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), "0 bytes, sum 0");
}

#[test]
fn django_streams_and_sends_files_through_the_file_wrapper() {
    let Some(server) = server() else { return };
    let resp = server.get("/stream?n=1000");
    assert_eq!(resp.status, 200);
    assert!(resp.complete);
    let text = resp.body_str();
    assert_eq!(text.lines().count(), 1000);
    assert!(text.ends_with("line 999\n"));
    assert_ne!(
        resp.framing,
        Framing::Length,
        "streamed, no length declared"
    );

    let source = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/django_app.py"),
    )
    .unwrap();
    let resp = server.get("/file");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("text/x-python"));
    assert_eq!(
        resp.header("content-length"),
        Some(source.len().to_string().as_str())
    );
    assert_eq!(resp.framing, Framing::Length);
    assert!(resp.body == source, "the file's bytes, in order");
}

#[test]
fn django_cookie_round_trips_and_a_failing_view_is_a_500() {
    let Some(server) = server() else { return };
    let first = server.get("/cookie");
    assert_eq!(first.body_str(), "visits=0");
    let cookie = first.header("set-cookie").expect("a cookie");
    let cookie = cookie.split(';').next().unwrap();
    let second = server.request(
        format!("GET /cookie HTTP/1.1\r\nHost: t\r\nCookie: {cookie}\r\n\r\n").as_bytes(),
        false,
    );
    assert_eq!(second.body_str(), "visits=1");

    // Django turns the exception into its own 500 page (DEBUG off).
    let resp = server.get("/fail");
    assert_eq!(resp.status, 500);
    assert!(
        resp.body_str().contains("Server Error (500)"),
        "{}",
        resp.body_str()
    );
    assert_eq!(server.get("/text").status, 200, "still serving");
}
