//! RULES.md 7 to 11 on the wire: late headers, start_response, errors and
//! panics, close() exactly once, and the client going away.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use support::{serve, Counters, Framing};
use tower_wsgi::{app_fn, AppBody, BoxError, Builder, ErrorKind, Iterable, WsgiService};

fn route(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n")
}

// ----- Rule 7: headers go out late -----

#[test]
fn rule7_exc_info_replaces_headers_until_a_non_empty_chunk() {
    let counters = Counters::default();
    let c = counters.clone();
    let server = serve(WsgiService::new(app_fn(move |_environ, start_response| {
        let write =
            start_response.start("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])?;
        write.write("")?; // an empty write sends nothing
        let sr = start_response;
        let body = AppBody::from_results((0..3).map(move |i| match i {
            0 => Ok(Bytes::new()), // an empty chunk sends nothing either
            1 => {
                sr.start_with_exc_info(
                    "503 Service Unavailable",
                    [("Content-Length", "7")],
                    "backend down",
                )?;
                Ok(Bytes::new())
            }
            _ => Ok::<_, BoxError>(Bytes::from_static(b"handled")),
        }));
        Ok(c.track(body))
    })));
    let resp = server.get("/");
    assert_eq!((resp.status, resp.body.as_slice()), (503, &b"handled"[..]));
    assert!(
        resp.header("x-first").is_none(),
        "the first headers were replaced whole"
    );
    assert_eq!(counters.wait_closed(1), 1);
}

#[test]
fn rule7_headers_wait_for_the_first_non_empty_chunk() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let server = serve(WsgiService::new(app_fn(move |_environ, start_response| {
        start_response.start("200 OK", [("Content-Length", "2")])?;
        let release = release_rx.clone();
        Ok(AppBody::from_chunks((0..2).map(move |i| {
            if i == 1 {
                release.lock().unwrap().recv().unwrap();
                "ok"
            } else {
                ""
            }
        })))
    })));
    let mut conn = server.connect();
    conn.send(route("/").as_bytes());
    assert!(
        conn.pending_bytes(Duration::from_millis(300)).is_empty(),
        "no head before the first non-empty chunk"
    );
    release_tx.send(()).unwrap();
    assert_eq!(conn.read_response(false).body, b"ok");
}

// ----- Rule 8: start_response -----

#[test]
fn rule8_second_start_response_without_exc_info_is_500() {
    let counters = Counters::default();
    let c = counters;
    let server = serve(WsgiService::new(app_fn(move |_environ, start_response| {
        start_response.start("200 OK", [("Content-Type", "text/plain")])?;
        let second = start_response.start("201 Created", [("Content-Type", "text/plain")]);
        assert_eq!(
            second.as_ref().unwrap_err().kind(),
            ErrorKind::HeadersAlreadySet
        );
        second?;
        Ok(c.track("unreachable".into()))
    })));
    let resp = server.get("/start-twice");
    assert_eq!(resp.status, 500);
    assert!(support::log_line_with(&["/start-twice", "second time without exc_info"]).is_some());
}

#[test]
fn rule8_second_start_response_swallowed_still_500() {
    let server = serve(WsgiService::new(app_fn(|_environ, start_response| {
        start_response.start("200 OK", [("Content-Type", "text/plain")])?;
        let _ignored = start_response.start("201 Created", [("Content-Type", "text/plain")]);
        Ok("body".into())
    })));
    let resp = server.get("/swallowed");
    assert_eq!(resp.status, 500);
    assert!(support::log_line_with(&["/swallowed", "second time without exc_info"]).is_some());
}

#[test]
fn rule8_exc_info_after_headers_is_raised_again_and_aborts() {
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    let server = serve(WsgiService::new(app_fn(move |_environ, start_response| {
        let write = start_response.start("200 OK", [("Content-Type", "text/plain")])?;
        write.write("partial")?;
        let raised = start_response.start_with_exc_info(
            "503 Service Unavailable",
            [("Content-Length", "7")],
            "handled failure",
        );
        let err = raised.unwrap_err();
        *s.lock().unwrap() = Some((
            err.kind(),
            std::error::Error::source(&err).map(|e| e.to_string()),
        ));
        Err(err.into())
    })));
    let mut conn = server.connect();
    conn.send(route("/exc-info?when=after-body").as_bytes());
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.framing, Framing::Chunked);
    assert_eq!(resp.body, b"partial");
    assert!(
        !resp.complete,
        "an unterminated chunked body: the client sees the cut"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        Some((ErrorKind::Reraised, Some("handled failure".to_owned())))
    );
}

// ----- Rule 9: errors and panics -----

fn failing_app(counters: Counters) -> impl tower_wsgi::App {
    app_fn(move |environ, start_response| {
        let when = support::param(&support::query(&environ), "when", "before").to_owned();
        let panic = environ.path_info() == "/panic";
        let fail = |msg: &str| -> Result<AppBody, BoxError> {
            if panic {
                panic!("{msg}")
            }
            Err(msg.into())
        };
        if when == "before" {
            return fail("failure before start_response");
        }
        start_response.start("200 OK", [("Content-Type", "text/plain")])?;
        if when == "after-start" {
            return fail("failure after start_response");
        }
        let chunks: Vec<Result<Bytes, BoxError>> = vec![Ok(Bytes::from_static(b"first chunk"))];
        let body =
            AppBody::from_results(chunks.into_iter().chain(std::iter::once_with(move || {
                if panic {
                    panic!("failure inside the body iterator")
                }
                Err::<Bytes, BoxError>("failure inside the body iterator".into())
            })));
        Ok(counters.track(body))
    })
}

#[test]
fn rule9_errors_and_panics_before_headers_are_500_with_length() {
    let counters = Counters::default();
    let server = serve(WsgiService::new(failing_app(counters)));
    for path in ["/error", "/panic"] {
        for (when, cause) in [
            ("before", "failure before start_response"),
            ("after-start", "failure after start_response"),
        ] {
            let target = format!("{path}?when={when}");
            let mut conn = server.connect();
            conn.send(format!("{}{}", route(&target), route("/error?when=none")).as_bytes());
            let resp = conn.read_response(false);
            assert_eq!(resp.status, 500, "{target}");
            assert_eq!(resp.framing, Framing::Length);
            assert_eq!(
                resp.header("content-type"),
                Some("text/html; charset=utf-8")
            );
            assert!(resp.body_str().contains("<h1>Internal Server Error</h1>"));
            assert!(
                support::log_line_with(&[&target, cause, "answering 500"]).is_some(),
                "{target}"
            );
            // The server and the connection survive a panic.
            assert!(conn.read_response(false).status > 0);
        }
    }
}

#[test]
fn rule9_errors_and_panics_after_headers_abort_the_body() {
    let counters = Counters::default();
    let server = serve(WsgiService::new(failing_app(counters.clone())));
    for path in ["/error", "/panic"] {
        let target = format!("{path}?when=mid-body");
        let mut conn = server.connect();
        conn.send(route(&target).as_bytes());
        let resp = conn.read_response(false);
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, b"first chunk");
        assert!(!resp.complete, "{path}: truncation must be visible");
        assert!(
            support::log_line_with(&[&target, "failure inside the body iterator", "aborting"])
                .is_some()
        );
    }
    assert_eq!(counters.wait_closed(2), 2);
}

#[tokio::test]
async fn rule9_passthrough_errors_reach_the_caller() {
    use tower::ServiceExt;
    let svc = Builder::new()
        .passthrough_errors(true)
        .build(failing_app(Counters::default()));
    let req = || {
        http::Request::get("/error?when=before")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap()
    };
    let raised = tokio::spawn(svc.clone().oneshot(req())).await.unwrap_err();
    let message = support::panic_text(raised.into_panic());
    assert!(
        message.contains("failure before start_response"),
        "{message}"
    );
    let req = http::Request::get("/panic?when=before")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let raised = tokio::spawn(svc.oneshot(req)).await.unwrap_err();
    assert_eq!(
        support::panic_text(raised.into_panic()),
        "failure before start_response"
    );
}

// ----- Rule 10: close() exactly once -----

struct Closes {
    chunks: Vec<&'static str>,
    closes: Arc<AtomicUsize>,
    fail_close: bool,
}

impl Iterable for Closes {
    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
        (!self.chunks.is_empty()).then(|| Ok(Bytes::from_static(self.chunks.remove(0).as_bytes())))
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.closes.fetch_add(1, Ordering::SeqCst);
        if self.fail_close {
            return Err("failure inside close()".into());
        }
        Ok(())
    }
}

#[test]
fn rule10_close_runs_once_on_every_path() {
    let closes = Arc::new(AtomicUsize::new(0));
    let c = closes.clone();
    let server = serve(WsgiService::new(app_fn(move |environ, start_response| {
        let q = support::query(&environ);
        let status = support::param(&q, "status", "200 OK").to_owned();
        start_response.start(
            status,
            [("Content-Type", "text/plain"), ("Content-Length", "13")],
        )?;
        Ok(AppBody::new(Closes {
            chunks: vec!["complete ", "body"],
            closes: c.clone(),
            fail_close: support::param(&q, "fail", "no") == "yes",
        }))
    })));
    let mut conn = server.connect();
    for (request, head) in [
        ("GET /normal HTTP/1.1\r\nHost: t\r\n\r\n", false),
        ("HEAD /head HTTP/1.1\r\nHost: t\r\n\r\n", true),
        (
            "GET /?status=204%20No%20Content HTTP/1.1\r\nHost: t\r\n\r\n",
            false,
        ),
        (
            "GET /?status=304%20Not%20Modified HTTP/1.1\r\nHost: t\r\n\r\n",
            false,
        ),
    ] {
        conn.send(request.as_bytes());
        conn.read_response(head);
    }
    // The close() of each body ran before its response ended.
    assert_eq!(closes.load(Ordering::SeqCst), 4);
    // A failing close() is logged and does not spoil a complete response.
    let resp = server.get("/?fail=yes");
    assert_eq!(
        (resp.status, resp.body_str().as_str(), resp.complete),
        (200, "complete body", true)
    );
    assert_eq!(closes.load(Ordering::SeqCst), 5);
    assert!(
        support::log_line_with(&["/?fail=yes", "close() failed", "failure inside close()"])
            .is_some()
    );
}

#[test]
fn rule10_close_panics_are_contained() {
    let server = serve(WsgiService::new(app_fn(|_environ, start_response| {
        start_response.start("200 OK", [("Content-Length", "2")])?;
        Ok(AppBody::from("ok").on_close(|| panic!("close exploded")))
    })));
    let resp = server.get("/close-panic");
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"ok"[..]));
    assert!(support::log_line_with(&["/close-panic", "close exploded"]).is_some());
    assert_eq!(server.get("/again").status, 200);
}

// ----- Rule 11: the client goes away -----

#[test]
fn rule11_client_gone_fails_write_closes_body_and_frees_the_thread() {
    let closes = Arc::new(AtomicUsize::new(0));
    let write_error = Arc::new(Mutex::new(None));
    let (c, w) = (closes, write_error.clone());
    let server = serve(Builder::new().max_threads(1).max_queue(4).build(app_fn(
        move |environ, start_response| {
            let write =
                start_response.start("200 OK", [("Content-Type", "application/octet-stream")])?;
            if environ.path_info() == "/ping" {
                return Ok("pong".into());
            }
            let block = Bytes::from(vec![b'x'; 64 * 1024]);
            let c = c.clone();
            let closer = AppBody::empty().on_close(move || {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
            let started = Instant::now();
            loop {
                if let Err(error) = write.write(block.clone()) {
                    *w.lock().unwrap() = Some(error.kind());
                    return Err(error.into());
                }
                if started.elapsed() > Duration::from_secs(20) {
                    return Ok(closer);
                }
            }
        },
    )));
    let mut conn = server.connect();
    conn.send(route("/stream").as_bytes());
    let mut first = [0u8; 1024];
    std::io::Read::read(&mut std::io::BufReader::new(conn.stream()), &mut first).unwrap();
    conn.stream().shutdown(std::net::Shutdown::Both).unwrap();
    drop(conn);
    // The single app thread is free again: the next request is served.
    let started = Instant::now();
    let resp = server.get("/ping");
    assert_eq!(resp.body, b"pong");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the app thread was not released promptly"
    );
    assert_eq!(
        *write_error.lock().unwrap(),
        Some(ErrorKind::ClientDisconnected)
    );
}

#[test]
fn rule11_iterating_body_stops_and_closes_when_the_client_goes() {
    let counters = Counters::default();
    let produced = Arc::new(AtomicUsize::new(0));
    let (c, p) = (counters.clone(), produced.clone());
    let server = serve(WsgiService::new(app_fn(move |_environ, start_response| {
        start_response.start("200 OK", [("Content-Type", "application/octet-stream")])?;
        let p = p.clone();
        let endless = std::iter::repeat_with(move || {
            p.fetch_add(1, Ordering::SeqCst);
            Bytes::from(vec![b'y'; 64 * 1024])
        });
        Ok(c.track(AppBody::from_chunks(endless)))
    })));
    let mut conn = server.connect();
    conn.send(route("/endless").as_bytes());
    let mut some = [0u8; 4096];
    std::io::Read::read(&mut std::io::BufReader::new(conn.stream()), &mut some).unwrap();
    drop(conn);
    assert_eq!(counters.wait_closed(1), 1, "close() after the client left");
    let after = produced.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(produced.load(Ordering::SeqCst), after, "iteration stopped");
    assert!(support::log_line_with(&["/endless", "client disconnected"]).is_some());
}

#[test]
fn rule11_writer_implements_io_write() {
    let server = serve(WsgiService::new(app_fn(|_environ, start_response| {
        let mut write = start_response.start("200 OK", [("Content-Type", "text/plain")])?;
        write!(write, "{} + {} = {}", 1, 2, 3)?;
        Ok(AppBody::empty())
    })));
    assert_eq!(server.get("/").body, b"1 + 2 = 3");
}
