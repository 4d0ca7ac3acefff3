//! The `tracing` record of each request: one span with method, target,
//! status, bytes sent and duration; an event for how the response ended.
//! The span is `DEBUG`: under an `INFO` subscriber a request that goes well
//! leaves nothing, while aborts and errors are still logged.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tower_wsgi::test_client::TestClient;
use tower_wsgi::{app_fn, AppBody, BoxError, Builder, Environ, StartResponse, WsgiService};

#[derive(Debug)]
struct Cause(&'static str, Option<Box<Cause>>);

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1.as_deref().map(|c| c as _)
    }
}

fn app(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    match environ.path_info() {
        "/traced" => {
            start_response.start("201 Created", [("Content-Length", "11")])?;
            Ok("hello world".into())
        }
        "/span" => {
            let span = tracing::Span::current();
            let level = span.metadata().map_or("none", |m| m.level().as_str());
            start_response.start("200 OK", [("Content-Type", "text/plain")])?;
            Ok(level.to_owned().into())
        }
        "/endless" => {
            start_response.start("200 OK", [("Content-Type", "text/plain")])?;
            Ok(AppBody::from_chunks(std::iter::repeat_n(
                Bytes::from_static(&[b'e'; 16 * 1024]),
                1 << 20,
            )))
        }
        "/cut" => {
            start_response.start("200 OK", [("Content-Type", "text/plain")])?;
            let chunks: Vec<Result<Bytes, BoxError>> = vec![
                Ok(Bytes::from_static(b"part")),
                Err(Box::new(Cause("the database went away", None))),
            ];
            Ok(AppBody::from_results(chunks))
        }
        _ => Err(Box::new(Cause(
            "rendering the page failed",
            Some(Box::new(Cause("template missing: index.html", None))),
        ))),
    }
}

#[test]
fn each_request_has_a_span_with_status_bytes_and_duration() {
    let server = support::serve(WsgiService::new(app_fn(app)));
    let resp = server.get("/traced?who=span");
    assert_eq!(resp.status, 201);
    let line = support::log_line_with(&["/traced?who=span", "response sent"])
        .expect("an event when the response was sent");
    for field in ["method=GET", "status=201", "bytes_sent=11", "duration_ms="] {
        assert!(line.contains(field), "{field} missing from {line}");
    }
}

#[test]
fn a_client_that_goes_away_is_an_event() {
    let server = support::serve(WsgiService::new(app_fn(app)));
    server.leave_after("/endless?who=leaver", 1024);
    let line = support::log_line_with(&[
        "/endless?who=leaver",
        "client went away before the response ended",
    ])
    .expect("an event when the client left");
    assert!(line.contains("status=200"), "{line}");
    std::thread::sleep(Duration::from_millis(50));
}

#[test]
fn aborts_and_app_errors_are_logged_with_their_cause_chain() {
    let server = support::serve(WsgiService::new(app_fn(app)));
    let resp = server.get("/cut?who=abort");
    assert!(!resp.complete);
    assert!(support::log_line_with(&[
        "/cut?who=abort",
        "response aborted",
        "the database went away"
    ])
    .is_some());

    let resp = server.get("/fails?who=chain");
    assert_eq!(resp.status, 500);
    assert!(support::log_line_with(&[
        "/fails?who=chain",
        "rendering the page failed",
        "template missing: index.html",
        "answering 500",
    ])
    .is_some());
    assert!(support::log_line_with(&["/fails?who=chain", "response sent", "status=500"]).is_some());
}

/// A writer for a subscriber of this thread alone.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Runs `f` under an `INFO` fmt subscriber (as `examples/hello.rs` installs)
/// on this thread; returns what it wrote.
fn under_info(f: impl FnOnce()) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    captured.text()
}

#[test]
fn the_span_is_debug_and_recorded_when_debug_is_on() {
    // The test binary's global subscriber takes DEBUG.
    let client = TestClient::from_service(Builder::new().inline(true).build(app_fn(app)));
    assert_eq!(client.get("/span").send_blocking().text(), "DEBUG");
}

#[test]
fn under_info_a_request_that_goes_well_costs_no_span_and_no_line() {
    // Inline dispatch on this thread: the request runs under this thread's subscriber.
    let client = TestClient::from_service(Builder::new().inline(true).build(app_fn(app)));
    let mut level = String::new();
    let logged = under_info(|| {
        level = client.get("/span").send_blocking().text();
        assert_eq!(client.get("/traced").send_blocking().status(), 201);
    });
    assert_eq!(level, "none", "no span is created under INFO");
    assert_eq!(logged, "", "nothing is written for requests that went well");
}

#[test]
fn under_info_aborts_and_app_errors_are_still_logged() {
    let client = TestClient::from_service(Builder::new().inline(true).build(app_fn(app)));
    let logged = under_info(|| {
        client.get("/cut").send_blocking();
        assert_eq!(client.get("/fails").send_blocking().status(), 500);
    });
    for needle in [
        " WARN ",
        "response aborted",
        "the database went away",
        " ERROR ",
        "rendering the page failed",
        "template missing: index.html",
    ] {
        assert!(logged.contains(needle), "{needle} missing from {logged}");
    }
    assert!(!logged.contains("response sent"), "{logged}");
}
