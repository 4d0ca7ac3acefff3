//! Blocking and inline dispatch (RULES.md 16): where the application runs,
//! and that an inline application can never stall an async worker.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

use std::convert::Infallible;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use tower_service::Service;
use tower_wsgi::{app_fn, AppBody, BoxError, Builder, Environ, ErrorKind, StartResponse};

use support::{Conn, Counters, Framing};

const CHUNK: usize = 64 * 1024;

fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_owned()
}

/// `/whoami` names the thread the app runs on (and echoes any body);
/// `/stream?n=N` sends N chunks with a Content-Length; `/write?n=N` calls
/// `write` N times before returning, and records how the last write ended.
fn modes_app(
    counters: Counters,
    write_error: Arc<Mutex<Option<ErrorKind>>>,
) -> impl Fn(Environ, StartResponse) -> Result<AppBody, BoxError> + Send + Sync + 'static {
    move |mut environ: Environ, start_response: StartResponse| {
        let query = support::query(&environ);
        let n: usize = support::param(&query, "n", "0").parse().unwrap_or(0);
        match environ.path_info() {
            "/whoami" => {
                let mut body = thread_name().into_bytes();
                environ.input().read_to_end(&mut body)?;
                start_response.start("200 OK", [("Content-Length", body.len().to_string())])?;
                Ok(counters.track(AppBody::from(body)))
            }
            "/stream" => {
                let length = (n * CHUNK).to_string();
                start_response.start("200 OK", [("Content-Length", length)])?;
                let chunks = (0..n).map(|_| Bytes::from_static(&[b's'; CHUNK]));
                Ok(counters.track(AppBody::from_chunks(chunks)))
            }
            "/write" => {
                let write = start_response.start("200 OK", [("Content-Type", "text/plain")])?;
                for _ in 0..n {
                    if let Err(error) = write.write(Bytes::from_static(b"written\n")) {
                        *write_error.lock().unwrap() = Some(error.kind());
                        return Err(error.into());
                    }
                }
                Ok(counters.track(AppBody::empty()))
            }
            _ => {
                start_response.start("404 Not Found", [("Content-Length", "0")])?;
                Ok(AppBody::empty())
            }
        }
    }
}

#[test]
fn inline_apps_run_on_the_async_worker_and_requests_with_bodies_on_the_pool() {
    let counters = Counters::default();
    let app = app_fn(modes_app(counters.clone(), Arc::default()));
    let server = support::serve(Builder::new().inline(true).build(app));

    let resp = server.get("/whoami");
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.body_str(),
        "tokio-rt-worker",
        "inline apps run on the worker"
    );

    let mut conn = server.connect();
    conn.send(&support::post("/whoami", "+body", ""));
    let resp = conn.read_response(false);
    assert_eq!(resp.body_str(), "tower-wsgi-app+body");
    assert_eq!(counters.wait_closed(2), 2);

    let blocking = support::serve(
        Builder::new().build(app_fn(modes_app(Counters::default(), Arc::default()))),
    );
    assert_eq!(blocking.get("/whoami").body_str(), "tower-wsgi-app");
}

/// A server on a runtime with a single async worker (the thread
/// `test-server`): anything that blocks it stops every other connection.
fn serve_on_one_worker<S>(service: S) -> support::TestServer
where
    S: Service<
            Request<Incoming>,
            Response = Response<tower_wsgi::ResponseBody>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    support::serve_with(runtime, service, |server| server)
}

#[test]
fn an_inline_body_that_waits_for_the_client_moves_to_a_pool_thread() {
    let counters = Counters::default();
    let app = app_fn(modes_app(counters.clone(), Arc::default()));
    let server = serve_on_one_worker(Builder::new().inline(true).build(app));

    // 64 MiB the client does not read yet: far past the response buffer
    // and the socket buffers.
    let chunks = 1024;
    let mut slow = Conn::open(server.addr);
    slow.send(format!("GET /stream?n={chunks} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    std::thread::sleep(Duration::from_millis(200));

    // The only worker still serves other connections.
    let mut other = Conn::open(server.addr);
    other.send(b"GET /whoami HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = other.read_response(false);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), "test-server");

    let resp = slow.read_response(false);
    assert_eq!(resp.framing, Framing::Length);
    assert!(resp.complete);
    assert_eq!(resp.body.len(), chunks * CHUNK);
    assert_eq!(counters.wait_closed(2), 2);
}

#[test]
fn inline_write_past_the_response_buffer_fails_instead_of_blocking() {
    let write_error = Arc::new(Mutex::new(None));
    let app = app_fn(modes_app(Counters::default(), write_error.clone()));
    let server = serve_on_one_worker(Builder::new().inline(true).response_buffer(2).build(app));

    // Within the buffer: fine.
    let mut conn = Conn::open(server.addr);
    conn.send(b"GET /write?n=2 HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = conn.read_response(false);
    assert!(resp.complete);
    assert_eq!(resp.body_str(), "written\n".repeat(2));
    assert_eq!(*write_error.lock().unwrap(), None);

    // Past it, before the app returns: the write fails, the response is
    // visibly cut, and the worker goes on serving.
    let mut conn = Conn::open(server.addr);
    conn.send(b"GET /write?n=50 HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 200);
    assert!(!resp.complete, "a cut response must look cut");
    assert_eq!(*write_error.lock().unwrap(), Some(ErrorKind::WouldBlock));
    assert!(support::log_line_with(&["/write?n=50", "runs inline"]).is_some());

    let mut conn = Conn::open(server.addr);
    conn.send(b"GET /whoami HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.read_response(false).status, 200);
}
