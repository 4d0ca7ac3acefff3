//! The porting toolbox on the wire: `AppBody::from_file` (the
//! `wsgi.file_wrapper` port), environ copies for sub-requests, and the
//! `wsgi.errors` handle, through a real server.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tower_wsgi::{app_fn, AppBody, BoxError, Environ, StartResponse, WsgiService};

fn file_of(len: usize) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("tower-wsgi-toolbox-{}-{len}", std::process::id()));
    let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&data)
        .unwrap();
    path
}

/// Counts the reader's drops: the file closed.
struct Closing(std::fs::File, Arc<AtomicUsize>);

impl Read for Closing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_file_is_served_with_its_length_and_closed_once() {
    let len = 3 * AppBody::DEFAULT_BLOCK_SIZE + 17;
    let path = file_of(len);
    let served = path.clone();
    let service = WsgiService::new(app_fn(move |_environ, start_response| {
        let body = AppBody::from_file(std::fs::File::open(&served)?)?;
        let length = body.content_length().unwrap_or(0).to_string();
        start_response.start(
            "200 OK",
            [
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", length.as_str()),
            ],
        )?;
        Ok(body)
    }));
    let server = support::serve(service);
    let mut conn = support::Conn::open(server.addr);
    for _ in 0..2 {
        conn.send(b"GET /f HTTP/1.1\r\nHost: x\r\n\r\n");
        let response = conn.read_response(false);
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("content-length"),
            Some(len.to_string().as_str())
        );
        assert!(response.complete);
        assert_eq!(response.body, std::fs::read(&path).unwrap());
    }
    // Kept alive: the Content-Length came from the file.
    assert!(!conn.closes());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_reader_is_closed_once_when_the_client_goes_away_and_when_head_skips_it() {
    let len = 64 * AppBody::DEFAULT_BLOCK_SIZE;
    let path = file_of(len);
    let drops = Arc::new(AtomicUsize::new(0));
    let (served, counter) = (path.clone(), drops.clone());
    let service = WsgiService::new(app_fn(move |_environ, start_response| {
        let reader = Closing(std::fs::File::open(&served)?, counter.clone());
        start_response.start("200 OK", [("Content-Type", "application/octet-stream")])?;
        Ok(AppBody::from_reader_with_block_size(reader, 8192))
    }));
    let server = support::serve(service);
    server.leave_after("/", 1024);
    let mut conn = support::Conn::open(server.addr);
    conn.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(conn.read_response(true).status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while drops.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    std::fs::remove_file(&path).unwrap();
}

/// A page that prepares a sub-request from a copy of its environ (as
/// Paste's `recursive` does) and reports what the copy holds.
fn include(mut environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    let mut sub = environ.copy_with_buffered_input()?;
    sub.insert("PATH_INFO", "/fragment");
    let sub_body = sub.input().read_all()?;
    let fragment = format!(
        "{} {} cookie={} body={}",
        sub.request_method(),
        sub.path_info(),
        sub.get("HTTP_COOKIE").unwrap_or(""),
        String::from_utf8_lossy(&sub_body),
    );
    let empty = environ.copy_with_empty_input().input().read_all()?.len();
    let own = environ.input().read_all()?;
    start_response.start("200 OK", [("Content-Type", "text/plain")])?;
    Ok(format!(
        "page {} body={} | {fragment} | empty copy {empty} bytes",
        environ.path_info(),
        String::from_utf8_lossy(&own)
    )
    .into())
}

#[test]
fn an_environ_copy_serves_a_sub_request_with_the_same_body() {
    let server = support::serve(WsgiService::new(include));
    let mut conn = support::Conn::open(server.addr);
    conn.send(&support::post("/page", "a=1&b=2", "Cookie: s=1\r\n"));
    let response = conn.read_response(false);
    assert_eq!(response.status, 200);
    assert_eq!(
        response.body_str(),
        "page /page body=a=1&b=2 | POST /fragment cookie=s=1 body=a=1&b=2 | empty copy 0 bytes"
    );
}

#[test]
fn errors_handles_write_to_the_request_log_without_borrowing_the_environ() {
    let service = WsgiService::new(app_fn(|environ, start_response| {
        writeln!(environ.errors(), "no route for {}", environ.path_info())?;
        let mut errors = environ.errors();
        start_response.start("200 OK", [("Content-Type", "text/plain")])?;
        // A handle kept in the body: its partial line ends at the request's end.
        Ok(AppBody::from_chunks(["ok"]).on_close(move || {
            write!(errors, "closed /late")?;
            Ok(())
        }))
    }));
    let server = support::serve(service);
    assert_eq!(server.get("/missing-route").status, 200);
    assert!(
        support::log_line_with(&["tower_wsgi::errors", "no route for /missing-route"]).is_some()
    );
    assert!(support::log_line_with(&["tower_wsgi::errors", "closed /late"]).is_some());
}

#[test]
fn start_takes_borrowed_header_lists() {
    let service = WsgiService::new(app_fn(|environ, start_response| {
        let owned: Vec<(String, String)> = vec![("X-Owned".into(), "1".into())];
        let borrowed: &[(&str, &str)] = &[("Content-Type", "text/plain"), ("X-Slice", "2")];
        if environ.path_info() == "/vec" {
            start_response.start("200 OK", &owned)?;
        } else {
            start_response.start("200 OK", borrowed)?;
        }
        Ok(format!("{} {}", owned.len(), borrowed.len()).into())
    }));
    let server = support::serve(service);
    let response = server.get("/vec");
    assert_eq!(
        (response.header("x-owned"), response.body_str().as_str()),
        (Some("1"), "1 2")
    );
    let response = server.get("/slice");
    assert_eq!(response.header("x-slice"), Some("2"));
    assert_eq!(response.header("content-type"), Some("text/plain"));
}
