//! The fault matrix: the app fails at every point, the client leaves at every
//! point, the client reads slowly. For each: what the client sees, close()
//! exactly once, the app thread back within a bound, the server still serving.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use support::{Conn, TestServer};
use tower_wsgi::{app_fn, App, AppBody, BoxError, Builder, Environ, Iterable, StartResponse};

/// Bodies that count their closes, and apps that report when they return.
#[derive(Clone, Default)]
struct Probe {
    closes: Arc<AtomicUsize>,
    returned: Arc<AtomicUsize>,
    input_errors: Arc<Mutex<Vec<std::io::ErrorKind>>>,
}

impl Probe {
    fn closes(&self) -> usize {
        self.closes.load(Ordering::SeqCst)
    }
}

/// Waits up to five seconds for `what` to reach `n`.
fn wait_for(what: &AtomicUsize, n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while what.load(Ordering::SeqCst) < n {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

struct Faulty {
    chunks: Vec<Bytes>,
    fail_at: Option<usize>,
    panic: bool,
    fail_close: bool,
    probe: Probe,
}

impl Iterable for Faulty {
    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
        if self.fail_at == Some(0) {
            if self.panic {
                panic!("fault: panic mid-body");
            }
            return Some(Err("fault: error mid-body".into()));
        }
        self.fail_at = self.fail_at.map(|n| n - 1);
        (!self.chunks.is_empty()).then(|| Ok(self.chunks.remove(0)))
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.probe.closes.fetch_add(1, Ordering::SeqCst);
        match (self.fail_close, self.panic) {
            (true, true) => panic!("fault: panic in close"),
            (true, false) => Err("fault: error in close".into()),
            _ => Ok(()),
        }
    }
}

/// `/{error|panic}/{before|after-start|mid-body|in-close}`, plus `/ok`,
/// `/sleep` (slow before its headers), `/upload` (reads all input) and
/// `/stream` (endless 64 KiB chunks).
fn app(probe: Probe) -> impl App {
    app_fn(move |mut environ: Environ, start_response: StartResponse| {
        let result = route(&probe, &mut environ, &start_response);
        probe.returned.fetch_add(1, Ordering::SeqCst);
        result
    })
}

fn route(
    probe: &Probe,
    environ: &mut Environ,
    start_response: &StartResponse,
) -> Result<AppBody, BoxError> {
    let path = environ.path_info().to_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let body = |chunks: Vec<&'static str>, fail_at, panic, fail_close| {
        AppBody::new(Faulty {
            chunks: chunks.into_iter().map(Bytes::from).collect(),
            fail_at,
            panic,
            fail_close,
            probe: probe.clone(),
        })
    };
    match parts.as_slice() {
        ["ok"] => {
            start_response.start("200 OK", [("Content-Length", "2")])?;
            Ok(body(vec!["ok"], None, false, false))
        }
        ["sleep"] => {
            std::thread::sleep(Duration::from_millis(300));
            start_response.start("200 OK", [("Content-Type", "text/plain")])?;
            Ok(body(vec!["late"], None, false, false))
        }
        ["upload"] => {
            let mut all = Vec::new();
            if let Err(error) = environ.input().read_to_end(&mut all) {
                probe.input_errors.lock().unwrap().push(error.kind());
                return Err(error.into());
            }
            start_response.start("200 OK", [("Content-Length", all.len().to_string())])?;
            Ok(body(vec![], None, false, false).on_close(|| Ok(())))
        }
        ["stream"] => {
            start_response.start("200 OK", [("Content-Type", "application/octet-stream")])?;
            let closes = probe.closes.clone();
            let block = Bytes::from(vec![b's'; 64 * 1024]);
            Ok(
                AppBody::from_chunks(std::iter::repeat_n(block, usize::MAX)).on_close(move || {
                    closes.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }),
            )
        }
        [kind @ ("error" | "panic"), when] => {
            let panic = *kind == "panic";
            let fail = |what: &str| -> Result<AppBody, BoxError> {
                if panic {
                    panic!("fault: panic {what}");
                }
                Err(format!("fault: error {what}").into())
            };
            if *when == "before" {
                return fail("before start_response");
            }
            start_response.start("200 OK", [("Content-Type", "text/plain")])?;
            match *when {
                "after-start" => fail("after start_response"),
                "mid-body" => Ok(body(vec!["first chunk"], Some(1), panic, false)),
                "in-close" => Ok(body(vec!["complete body"], None, panic, true)),
                _ => fail("on an unknown route"),
            }
        }
        _ => Err("no such route".into()),
    }
}

/// One app thread, so a thread that is not returned blocks the next request.
fn one_thread_server(probe: &Probe) -> TestServer {
    support::serve(
        Builder::new()
            .max_threads(1)
            .max_queue(8)
            .build(app(probe.clone())),
    )
}

#[test]
fn app_failures_at_every_point() {
    let probe = Probe::default();
    let server = one_thread_server(&probe);
    for kind in ["error", "panic"] {
        for (when, status, body, complete, closes) in [
            ("before", 500, "Internal Server Error", true, 0),
            ("after-start", 500, "Internal Server Error", true, 0),
            ("mid-body", 200, "first chunk", false, 1),
            ("in-close", 200, "complete body", true, 1),
        ] {
            let target = format!("/{kind}/{when}");
            let before = probe.closes();
            let resp = server.get(&target);
            resp.assert_failure_answer(&target, status, body, complete);
            assert!(wait_for(&probe.closes, before + closes), "{target}");
            assert_eq!(
                probe.closes(),
                before + closes,
                "{target}: close() exactly once"
            );
            assert!(
                support::log_line_with(&[&target, "fault:"]).is_some(),
                "{target}: cause logged"
            );
            support::assert_serving(&server);
        }
    }
}

#[test]
fn client_leaves_before_the_headers() {
    let probe = Probe::default();
    let server = one_thread_server(&probe);
    let mut conn = server.connect();
    conn.send(b"GET /sleep HTTP/1.1\r\nHost: t\r\n\r\n");
    std::thread::sleep(Duration::from_millis(50));
    drop(conn);
    assert!(
        wait_for(&probe.closes, 1),
        "close() ran after the client left"
    );
    assert!(support::log_line_with(&["/sleep", "client disconnected"]).is_some());
    support::assert_serving(&server);
    assert_eq!(probe.closes(), 2);
}

#[test]
fn client_leaves_mid_body() {
    let probe = Probe::default();
    let server = one_thread_server(&probe);
    server.leave_after("/stream", 8192);
    assert!(
        wait_for(&probe.closes, 1),
        "close() ran after the client left"
    );
    support::assert_serving(&server);
}

#[test]
fn client_leaves_mid_upload() {
    let probe = Probe::default();
    let server = one_thread_server(&probe);
    let mut conn = server.connect();
    conn.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\npartial upload");
    std::thread::sleep(Duration::from_millis(100));
    drop(conn);
    assert!(wait_for(&probe.returned, 1), "the app returned");
    let errors = probe.input_errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 1, "wsgi.input failed: {errors:?}");
    support::assert_serving(&server);
}

#[test]
fn client_leaves_while_the_server_waits_for_100_continue() {
    let probe = Probe::default();
    let server = one_thread_server(&probe);
    let mut conn = server.connect();
    conn.send(
        b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    let interim = conn.read_response(false);
    assert_eq!(interim.status, 100);
    drop(conn);
    assert!(wait_for(&probe.returned, 1), "the app returned");
    assert_eq!(probe.input_errors.lock().unwrap().len(), 1);
    support::assert_serving(&server);
}

#[test]
fn slow_reader_holds_the_app_back() {
    let produced = Arc::new(AtomicUsize::new(0));
    let p = produced.clone();
    let server = support::serve(Builder::new().response_buffer(2).build(app_fn(
        move |_environ, start_response| {
            start_response.start("200 OK", [("Content-Type", "application/octet-stream")])?;
            let p = p.clone();
            let block = Bytes::from(vec![b'z'; 64 * 1024]);
            Ok(AppBody::from_chunks((0..256).map(move |_| {
                p.fetch_add(1, Ordering::SeqCst);
                block.clone()
            })))
        },
    )));
    let mut conn: Conn = server.connect();
    conn.stream().set_nonblocking(false).unwrap();
    conn.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    std::thread::sleep(Duration::from_millis(500));
    let early = produced.load(Ordering::SeqCst);
    // 16 MiB body; what is produced without reading is bounded by the response
    // buffer plus the kernel's socket buffers, not by the body.
    assert!(
        early < 128,
        "the app ran ahead of a client that reads nothing: {early} chunks"
    );
    let resp = conn.read_response(false);
    assert_eq!(resp.body.len(), 256 * 64 * 1024);
    assert_eq!(produced.load(Ordering::SeqCst), 256);
}
