//! The rule book on HTTP/2 (h2c with prior knowledge), on a real connection:
//! hyper's HTTP/2 client, a raw frame reader where the frames themselves
//! matter, and curl when it speaks HTTP/2.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{client, within, TestServer};
use tower_wsgi::{app_fn, AppBody, BoxError, Builder};

type ReqBody = BoxBody<Bytes, BoxError>;

/// The authority every request names; the server listens elsewhere.
const AUTHORITY: &str = "h2.test:8443";

/// Connection-specific header fields, forbidden on HTTP/2 (RFC 9113 8.2.2).
const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

fn conformance_server() -> TestServer {
    support::serve(support::conformance::service())
}

/// An HTTP/2 connection with prior knowledge; its task ends with the connection.
async fn h2_connect(
    addr: SocketAddr,
) -> (
    SendRequest<ReqBody>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    (sender, tokio::spawn(conn))
}

fn request(method: &str, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(format!("http://{AUTHORITY}{path}"))
}

fn empty() -> ReqBody {
    Empty::new().map_err(BoxError::from).boxed()
}

fn full(bytes: impl Into<Bytes>) -> ReqBody {
    Full::new(bytes.into()).map_err(BoxError::from).boxed()
}

fn get(path: &str) -> Request<ReqBody> {
    request("GET", path).body(empty()).unwrap()
}

/// What the client saw: status, headers, and the body or the error that cut it.
struct Seen {
    status: StatusCode,
    headers: HeaderMap,
    body: Result<Bytes, hyper::Error>,
}

impl Seen {
    fn body(&self) -> &[u8] {
        self.body.as_ref().expect("the body ended with an error")
    }
}

async fn fetch(sender: &mut SendRequest<ReqBody>, req: Request<ReqBody>) -> Seen {
    try_fetch(sender, req).await.unwrap()
}

async fn try_fetch(
    sender: &mut SendRequest<ReqBody>,
    req: Request<ReqBody>,
) -> Result<Seen, hyper::Error> {
    within(sender.ready()).await?;
    let response = within(sender.send_request(req)).await?;
    let (parts, body) = response.into_parts();
    let body = within(body.collect()).await.map(|b| b.to_bytes());
    Ok(Seen {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// The error that cut a response short: a reset of its stream (which h2 may
/// deliver before the head, discarding what it had queued), not a dead connection.
async fn stream_reset(sender: &mut SendRequest<ReqBody>, req: Request<ReqBody>) -> h2::Reason {
    let error = match try_fetch(sender, req).await {
        Ok(seen) => seen
            .body
            .expect_err("a cut response is an error to the client"),
        Err(error) => error,
    };
    let reset = std::error::Error::source(&error)
        .and_then(|e| e.downcast_ref::<h2::Error>())
        .filter(|e| e.is_reset())
        .and_then(h2::Error::reason);
    reset.unwrap_or_else(|| panic!("a RST_STREAM, not a dead connection: {error:?}"))
}

fn assert_no_connection_headers(seen: &Seen, what: &str) {
    for name in CONNECTION_SPECIFIC {
        assert!(
            !seen.headers.contains_key(name),
            "{what}: {name} on HTTP/2: {:?}",
            seen.headers
        );
    }
}

fn environ_json(seen: &Seen) -> serde_json::Value {
    serde_json::from_slice(seen.body()).unwrap()
}

/// Every body the app handed out was closed, exactly once each.
fn assert_all_closed(server: &TestServer) {
    let (started, closed) = support::counters_settle(server);
    assert_eq!(closed, started, "close() runs once per body");
}

#[test]
fn environ_over_h2c_has_the_http2_protocol_authority_and_joined_cookies() {
    let server = conformance_server();
    client(async {
        let (mut h2, _conn) = h2_connect(server.addr).await;
        let req = request("GET", "/environ?x=1")
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .header("cookie", "c=3")
            .header("x-repeat", "one")
            .header("x-repeat", "two")
            .body(empty())
            .unwrap();
        let seen = fetch(&mut h2, req).await;
        assert_eq!(seen.status, 200);
        let environ = environ_json(&seen);
        assert_eq!(environ["SERVER_PROTOCOL"], "HTTP/2");
        assert_eq!(
            environ["HTTP_HOST"], AUTHORITY,
            ":authority gives HTTP_HOST"
        );
        assert_eq!(environ["HTTP_COOKIE"], "a=1; b=2; c=3");
        assert_eq!(environ["HTTP_X_REPEAT"], "one,two");
        assert_eq!(environ["REQUEST_URI"], "/environ?x=1");
        assert_eq!(environ["wsgi.url_scheme"], "http");
    });
    assert_all_closed(&server);
}

/// hyper's HTTP/2 server also strips these fields, so this pins what the
/// client sees; `tests/service.rs` pins that the crate never adds them.
#[test]
fn no_response_carries_connection_specific_headers() {
    let server = conformance_server();
    client(async {
        let (mut h2, _conn) = h2_connect(server.addr).await;
        for (method, path, status) in [
            ("GET", "/respond", 200),
            ("GET", "/respond?cl=none", 200),
            ("GET", "/respond?cl=none&chunks=3&via=write", 200),
            ("GET", "/stream?n=3&size=10", 200),
            ("HEAD", "/respond?cl=none", 200),
            ("GET", "/respond?status=204%20No%20Content&cl=none", 204),
            ("GET", "/respond?status=304%20Not%20Modified", 304),
            ("GET", "/error?when=before", 500),
            ("GET", "/error?when=after-start", 500),
            ("GET", "/respond?status=abc", 500),
            ("GET", "/start-twice", 500),
            ("GET", "/exc-info", 503),
            ("GET", "/nowhere", 404),
            // Hop-by-hop headers from the app are its error (RULES.md 4).
            ("GET", "/respond?header=Connection:close", 500),
            ("GET", "/respond?header=Transfer-Encoding:chunked", 500),
            ("GET", "/respond?header=Upgrade:h2c", 500),
        ] {
            let seen = fetch(&mut h2, request(method, path).body(empty()).unwrap()).await;
            assert_eq!(seen.status, status, "{method} {path}");
            assert_no_connection_headers(&seen, path);
            assert!(seen.body.is_ok(), "{method} {path}: {:?}", seen.body);
        }
    });
    assert_all_closed(&server);
}

/// The crate's own pages (404 outside `SCRIPT_NAME`, 413, 503) on HTTP/2:
/// a `Content-Length`, and no connection-specific header.
#[test]
fn the_crates_own_error_pages_are_http2_clean() {
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let entered_tx = Mutex::new(entered_tx);
    let release_rx = Mutex::new(release_rx);
    let service = Builder::new()
        .script_name("/app")
        .max_request_body(4)
        .max_threads(1)
        .max_queue(0)
        .build(app_fn(move |environ, start_response| {
            if environ.path_info() == "/block" {
                entered_tx.lock().unwrap().send(()).unwrap();
                release_rx
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(10))?;
            }
            start_response.start("200 OK", [("Content-Length", "2")])?;
            Ok("ok".into())
        }));
    let server = support::serve(service);
    client(async {
        let (mut h2, _conn) = h2_connect(server.addr).await;

        let outside = fetch(&mut h2, get("/elsewhere")).await;
        let too_large = fetch(
            &mut h2,
            request("POST", "/app/upload")
                .header("content-length", "10")
                .body(full("0123456789"))
                .unwrap(),
        )
        .await;
        let mut blocker = h2.clone();
        let blocked = tokio::spawn(async move { fetch(&mut blocker, get("/app/block")).await });
        tokio::task::spawn_blocking(move || entered_rx.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap();
        let busy = fetch(&mut h2, get("/app/refused")).await;
        release_tx.send(()).unwrap();
        let blocked = within(blocked).await.unwrap();

        for (seen, status) in [
            (&outside, StatusCode::NOT_FOUND),
            (&too_large, StatusCode::PAYLOAD_TOO_LARGE),
            (&busy, StatusCode::SERVICE_UNAVAILABLE),
            (&blocked, StatusCode::OK),
        ] {
            assert_eq!(seen.status, status);
            assert_no_connection_headers(seen, status.as_str());
            let length: usize = seen.headers["content-length"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(seen.body().len(), length, "{status}");
        }
        assert_eq!(busy.headers["retry-after"], "1");
    });
}

/// Reads a raw HTTP/2 connection frame by frame.
struct RawH2 {
    stream: std::net::TcpStream,
    next_stream_id: u32,
}

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const GOAWAY: u8 = 7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

impl RawH2 {
    fn open(addr: SocketAddr) -> Self {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .unwrap();
        let mut raw = Self {
            stream,
            next_stream_id: 1,
        };
        raw.frame(SETTINGS, 0, 0, &[]);
        raw
    }

    fn frame(&mut self, kind: u8, flags: u8, stream_id: u32, payload: &[u8]) {
        let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
        let mut frame = vec![len[1], len[2], len[3], kind, flags];
        frame.extend_from_slice(&stream_id.to_be_bytes());
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame).unwrap();
    }

    /// Sends a request without a body; returns its stream id.
    fn request(&mut self, method: &str, path: &str) -> u32 {
        let mut block = Vec::new();
        for (name, value) in [
            (":method", method),
            (":scheme", "http"),
            (":path", path),
            (":authority", AUTHORITY),
        ] {
            // HPACK: literal field without indexing, new name, no Huffman.
            block.push(0);
            block.push(u8::try_from(name.len()).unwrap());
            block.extend_from_slice(name.as_bytes());
            block.push(u8::try_from(value.len()).unwrap());
            block.extend_from_slice(value.as_bytes());
        }
        let id = self.next_stream_id;
        self.next_stream_id += 2;
        self.frame(HEADERS, END_HEADERS | END_STREAM, id, &block);
        id
    }

    /// The frames of stream `id` as `(type, flags, payload length)`, up to
    /// the one that ends it.
    fn frames_of(&mut self, id: u32) -> Vec<(u8, u8, usize)> {
        let mut frames = Vec::new();
        loop {
            let mut head = [0; 9];
            self.stream.read_exact(&mut head).expect("frame header");
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let (kind, flags) = (head[3], head[4]);
            let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            let mut payload = vec![0; len];
            self.stream.read_exact(&mut payload).expect("frame payload");
            match kind {
                SETTINGS if flags & 0x1 == 0 => self.frame(SETTINGS, 0x1, 0, &[]),
                GOAWAY => panic!("GOAWAY from the server: {payload:?}"),
                _ => {}
            }
            if stream_id != id {
                continue;
            }
            frames.push((kind, flags, len));
            let ends =
                kind == RST_STREAM || (kind == DATA || kind == HEADERS) && flags & END_STREAM != 0;
            if ends {
                return frames;
            }
        }
    }
}

#[test]
fn head_204_and_304_send_headers_with_end_stream_and_no_data_frame() {
    let server = conformance_server();
    let mut raw = RawH2::open(server.addr);
    for (method, path) in [
        ("HEAD", "/respond"),
        ("HEAD", "/respond?cl=none&chunks=3&via=write"),
        ("HEAD", "/nowhere"),
        ("HEAD", "/error?when=before"),
        ("GET", "/respond?status=204%20No%20Content&cl=none"),
        ("GET", "/respond?status=204%20No%20Content&via=write"),
        ("GET", "/respond?status=304%20Not%20Modified"),
        (
            "GET",
            "/respond?status=304%20Not%20Modified&cl=none&via=mixed&chunks=2",
        ),
    ] {
        let id = raw.request(method, path);
        let frames = raw.frames_of(id);
        assert_eq!(
            frames
                .iter()
                .map(|f| (f.0, f.1 & END_STREAM))
                .collect::<Vec<_>>(),
            [(HEADERS, END_STREAM)],
            "{method} {path}: only a HEADERS frame ending the stream"
        );
    }
    // The reader does see DATA when there is a body.
    let id = raw.request("GET", "/respond");
    let frames = raw.frames_of(id);
    assert!(frames.iter().any(|f| f.0 == DATA && f.2 == 5), "{frames:?}");
    assert_all_closed(&server);
}

#[test]
fn head_204_and_304_reach_an_http2_client_as_empty_bodies_without_errors() {
    let server = conformance_server();
    client(async {
        let (mut h2, conn) = h2_connect(server.addr).await;
        for (method, path, status, length) in [
            ("HEAD", "/respond?body=12345&chunks=2", 200, Some("10")),
            (
                "GET",
                "/respond?status=204%20No%20Content&cl=none",
                204,
                None,
            ),
            (
                "GET",
                "/respond?status=304%20Not%20Modified",
                304,
                Some("5"),
            ),
        ] {
            let seen = fetch(&mut h2, request(method, path).body(empty()).unwrap()).await;
            assert_eq!(seen.status, status, "{method} {path}");
            assert_eq!(seen.body(), b"", "{method} {path}");
            assert_eq!(
                seen.headers
                    .get("content-length")
                    .map(|v| v.to_str().unwrap()),
                length,
                "{method} {path}"
            );
        }
        assert!(!conn.is_finished(), "the connection is still open");
        assert_eq!(fetch(&mut h2, get("/respond")).await.body(), b"hello");
    });
    assert_all_closed(&server);
}

#[test]
fn content_length_is_enforced_on_http2() {
    let server = conformance_server();
    client(async {
        let (mut h2, _conn) = h2_connect(server.addr).await;

        let surplus = fetch(&mut h2, get("/respond?cl=3&body=hello")).await;
        assert_eq!(surplus.headers["content-length"], "3");
        match &surplus.body {
            Ok(body) => assert_eq!(body.as_ref(), b"hel", "never a byte past Content-Length"),
            Err(error) => panic!("surplus: the declared bytes arrive in full: {error}"),
        }

        let short = stream_reset(&mut h2, get("/respond?cl=10&body=hello&chunks=1")).await;
        assert_eq!(
            short,
            h2::Reason::INTERNAL_ERROR,
            "a short body is cut visibly"
        );

        let nothing_sent = fetch(&mut h2, get("/respond?cl=10&body=&chunks=1")).await;
        assert_eq!(nothing_sent.status, 500, "short with nothing sent: a 500");

        assert_eq!(fetch(&mut h2, get("/respond")).await.body(), b"hello");
        assert!(support::log_line_with(&["Content-Length"]).is_some());
    });
    assert_all_closed(&server);
}

#[test]
fn an_error_before_the_headers_is_a_500_with_content_length() {
    let server = conformance_server();
    client(async {
        let (mut h2, _conn) = h2_connect(server.addr).await;
        for path in [
            "/error?when=before",
            "/error?when=after-start",
            "/start-twice",
        ] {
            let seen = fetch(&mut h2, get(path)).await;
            assert_eq!(seen.status, 500, "{path}");
            let length: usize = seen.headers["content-length"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(seen.body().len(), length, "{path}");
            assert_no_connection_headers(&seen, path);
        }
    });
    assert_all_closed(&server);
}

#[test]
fn an_error_after_the_headers_resets_its_stream_and_spares_the_others() {
    let server = conformance_server();
    client(async {
        let (mut h2, conn) = h2_connect(server.addr).await;

        // A long response in flight on the same connection.
        let mut long_sender = h2.clone();
        let long = within(long_sender.send_request(get("/stream?n=64&size=16384&cl=auto")))
            .await
            .unwrap();
        assert_eq!(long.status(), 200);

        let failed = stream_reset(&mut h2, get("/error?when=mid-body")).await;
        assert_eq!(failed, h2::Reason::INTERNAL_ERROR);

        let long_body = within(long.into_body().collect()).await.unwrap().to_bytes();
        assert_eq!(long_body.len(), 64 * 16384, "the other stream finished");
        assert_eq!(fetch(&mut h2, get("/respond")).await.body(), b"hello");
        assert!(!conn.is_finished());
        assert!(support::log_line_with(&["failure inside the body iterator"]).is_some());
    });
    assert_all_closed(&server);
}

#[test]
fn concurrent_streams_run_at_once_on_one_connection() {
    const STREAMS: usize = 8;
    let gate = Arc::new((Mutex::new(0usize), Condvar::new()));
    let service =
        Builder::new()
            .max_threads(STREAMS)
            .build(app_fn(move |environ, start_response| {
                // Each request waits until all of them are in the app at once.
                let (arrived, all_here) = &*gate;
                let mut count = arrived.lock().unwrap();
                *count += 1;
                all_here.notify_all();
                let (count, timeout) = all_here
                    .wait_timeout_while(count, Duration::from_secs(10), |n| *n < STREAMS)
                    .unwrap();
                drop(count);
                let answer = if timeout.timed_out() {
                    "alone"
                } else {
                    "together"
                };
                let body = format!("{answer} {}", environ.query_string());
                start_response.start("200 OK", [("Content-Length", body.len().to_string())])?;
                Ok(AppBody::from(body))
            }));
    let server = support::serve(service);
    client(async {
        let (h2, _conn) = h2_connect(server.addr).await;
        let requests = (0..STREAMS).map(|i| {
            let mut sender = h2.clone();
            tokio::spawn(async move { fetch(&mut sender, get(&format!("/?{i}"))).await })
        });
        let mut answers = Vec::new();
        for request in requests.collect::<Vec<_>>() {
            let seen = within(request).await.unwrap();
            answers.push(String::from_utf8(seen.body().to_vec()).unwrap());
        }
        let expected: Vec<String> = (0..STREAMS).map(|i| format!("together {i}")).collect();
        assert_eq!(answers, expected);
    });
}

#[test]
fn uploads_stream_through_wsgi_input() {
    let server = conformance_server();
    client(async {
        let (mut h2, _conn) = h2_connect(server.addr).await;
        let payload: Bytes = (0..300_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>()
            .into();

        // A declared length and Expect: 100-continue.
        let seen = fetch(
            &mut h2,
            request("POST", "/input?mode=echo")
                .header("content-length", payload.len())
                .header("expect", "100-continue")
                .body(full(payload.clone()))
                .unwrap(),
        )
        .await;
        assert_eq!(seen.status, 200);
        assert_eq!(seen.body(), payload.as_ref());

        // No length: the end of the stream ends wsgi.input (wsgi.input_terminated).
        let (mut tx, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(4);
        let sending = payload.clone();
        tokio::spawn(async move {
            for part in sending.chunks(40_000) {
                if tx.send_data(Bytes::copy_from_slice(part)).await.is_err() {
                    return;
                }
            }
        });
        let seen = fetch(
            &mut h2,
            request("POST", "/input?mode=echo")
                .body(body.map_err(BoxError::from).boxed())
                .unwrap(),
        )
        .await;
        assert_eq!(seen.status, 200);
        assert_eq!(seen.body(), payload.as_ref());

        let environ = fetch(
            &mut h2,
            request("POST", "/environ").body(full("abc")).unwrap(),
        )
        .await;
        assert_eq!(environ_json(&environ)["CONTENT_LENGTH"], "3");
    });
    assert_all_closed(&server);
}

/// The installed curl, when it speaks HTTP/2; `None` (and why) otherwise.
fn curl_with_http2() -> Option<&'static str> {
    let version = match std::process::Command::new("curl").arg("-V").output() {
        Ok(output) => String::from_utf8_lossy(&output.stdout).into_owned(),
        Err(error) => {
            eprintln!("skipped: no curl ({error})");
            return None;
        }
    };
    let http2 = version
        .lines()
        .find_map(|l| l.strip_prefix("Features:"))
        .is_some_and(|features| features.split_whitespace().any(|f| f == "HTTP2"));
    if !http2 {
        eprintln!("skipped: the installed curl has no HTTP2 feature");
        return None;
    }
    Some("curl")
}

#[test]
fn curl_with_http2_prior_knowledge_sees_the_rules() {
    let Some(curl) = curl_with_http2() else {
        return;
    };
    let server = conformance_server();
    let base = format!("http://{}", server.addr);
    let run = |args: &[&str]| {
        let output = std::process::Command::new(curl)
            .args([
                "--http2-prior-knowledge",
                "--silent",
                "--show-error",
                "--max-time",
                "10",
            ])
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    let (code, out, err) = run(&[
        "--include",
        "-H",
        "Cookie: a=1",
        "-H",
        "Cookie: b=2",
        &format!("{base}/environ"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    let environ: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(environ["SERVER_PROTOCOL"], "HTTP/2");
    assert_eq!(environ["HTTP_HOST"], server.addr.to_string());
    assert_eq!(environ["HTTP_COOKIE"], "a=1; b=2");

    for args in [
        vec!["--head", "/respond?cl=none"],
        vec!["--include", "/respond?status=204%20No%20Content&cl=none"],
        vec!["--include", "/respond?status=304%20Not%20Modified"],
        vec!["--include", "/error?when=before"],
        vec!["--include", "/respond?cl=none&chunks=2&via=write"],
    ] {
        let url = format!("{base}{}", args[1]);
        let (code, out, err) = run(&[args[0], &url]);
        assert_eq!(code, Some(0), "{url}: {err}");
        let head = out.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
        assert!(head.starts_with("http/2 "), "{head}");
        for name in CONNECTION_SPECIFIC {
            assert!(!head.contains(&format!("\n{name}:")), "{url}: {head}");
        }
        if args[0] == "--head" || url.contains("status=") {
            assert_eq!(out.split_once("\r\n\r\n").unwrap().1, "", "{url}");
        }
    }

    // A body shorter than its Content-Length: curl reports the cut.
    let (code, _, err) = run(&[&format!("{base}/respond?cl=10&body=hello")]);
    assert_ne!(code, Some(0), "curl saw the truncation: {err}");
    assert_all_closed(&server);
}

const PING: u8 = 6;
const CONTINUATION: u8 = 9;

impl RawH2 {
    /// Writes `bytes`, ignoring a connection the server already closed.
    fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// One frame as bytes.
    fn encode(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
        let mut frame = vec![len[1], len[2], len[3], kind, flags];
        frame.extend_from_slice(&stream_id.to_be_bytes());
        frame.extend_from_slice(payload);
        frame
    }

    /// A request's header block (HPACK literals, as [`RawH2::request`] sends).
    fn header_block(method: &str, path: &str) -> Vec<u8> {
        let mut block = Vec::new();
        for (name, value) in [
            (":method", method),
            (":scheme", "http"),
            (":path", path),
            (":authority", AUTHORITY),
        ] {
            block.extend_from_slice(&[0, u8::try_from(name.len()).unwrap()]);
            block.extend_from_slice(name.as_bytes());
            block.push(u8::try_from(value.len()).unwrap());
            block.extend_from_slice(value.as_bytes());
        }
        block
    }

    /// The error code of the server's GOAWAY; `None` if the connection ended
    /// without one.
    fn goaway_code(&mut self) -> Option<u32> {
        loop {
            let mut head = [0; 9];
            self.stream.read_exact(&mut head).ok()?;
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let mut payload = vec![0; len];
            self.stream.read_exact(&mut payload).ok()?;
            if head[3] == GOAWAY {
                return Some(u32::from_be_bytes(payload[4..8].try_into().unwrap()));
            }
        }
    }

    /// `true` once the server closed the connection, reading (and dropping)
    /// whatever it sends for up to `wait`.
    fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = std::time::Instant::now() + wait;
        self.stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut buf = [0; 4096];
        while std::time::Instant::now() < deadline {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => {}
            }
        }
        false
    }
}

/// A server counting its app's calls, with `configure` applied.
fn counting_server(
    configure: fn(tower_wsgi::server::Server) -> tower_wsgi::server::Server,
) -> (TestServer, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let service = Builder::new().build(app_fn(move |_environ, start_response| {
        seen.fetch_add(1, Ordering::SeqCst);
        start_response.start("200 OK", [("Content-Length", "2")])?;
        Ok(AppBody::from("ok"))
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    (support::serve_with(runtime, service, configure), calls)
}

/// A normal HTTP/2 client, each request on a new connection, in a thread:
/// every status it saw while `busy` ran.
fn served_throughout(addr: SocketAddr, busy: impl FnOnce()) -> Vec<StatusCode> {
    let done = Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    let normal = std::thread::spawn(move || {
        let mut statuses = Vec::new();
        while !stop.load(Ordering::SeqCst) || statuses.is_empty() {
            statuses.push(client(async {
                let (mut h2, _conn) = h2_connect(addr).await;
                fetch(&mut h2, get("/")).await.status
            }));
            std::thread::sleep(Duration::from_millis(20));
        }
        statuses
    });
    busy();
    done.store(true, Ordering::SeqCst);
    normal.join().unwrap()
}

#[test]
fn rapid_reset_flood_ends_in_goaway_while_others_are_served() {
    const STREAMS: u32 = 10_000;
    let (server, calls) = counting_server(|s| s);
    let mut code = None;
    let statuses = served_throughout(server.addr, || {
        let mut raw = RawH2::open(server.addr);
        let block = RawH2::header_block("GET", "/");
        // HEADERS then RST_STREAM(CANCEL), stream after stream, in batches.
        for batch in 0..STREAMS / 100 {
            let mut bytes = Vec::new();
            for i in 0..100 {
                let id = 2 * (batch * 100 + i) + 1;
                bytes.extend(RawH2::encode(HEADERS, END_HEADERS | END_STREAM, id, &block));
                bytes.extend(RawH2::encode(RST_STREAM, 0, id, &8u32.to_be_bytes()));
            }
            raw.send_raw(&bytes);
        }
        code = raw.goaway_code();
    });
    // ENHANCE_YOUR_CALM: the connection is cut, not served stream by stream.
    assert_eq!(code, Some(0xb));
    let calls = calls.load(Ordering::SeqCst);
    assert!(calls < 100, "the app ran {calls} times for a reset flood");
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
}

#[test]
fn slowloris_on_http2_is_closed_by_the_idle_timeout_while_others_are_served() {
    let (server, _) = counting_server(|s| s.idle_timeout(Duration::from_millis(500)));
    let mut closed = (false, false);
    let statuses = served_throughout(server.addr, || {
        // A header block that never ends, a CONTINUATION now and then.
        let mut trickle = RawH2::open(server.addr);
        trickle.frame(HEADERS, END_STREAM, 1, &[0x82]); // :method GET, indexed
                                                        // A connection that only pings.
        let mut pinger = RawH2::open(server.addr);
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(2500) && !(closed.0 && closed.1) {
            trickle.send_raw(&RawH2::encode(CONTINUATION, 0, 1, &[0x86])); // :scheme http
            pinger.send_raw(&RawH2::encode(PING, 0, 0, &[0; 8]));
            closed.0 = closed.0 || trickle.closed_within(Duration::from_millis(100));
            closed.1 = closed.1 || pinger.closed_within(Duration::from_millis(100));
        }
    });
    assert_eq!(
        closed,
        (true, true),
        "(trickling headers, pinging) still open"
    );
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
}

#[test]
fn the_header_read_timeout_is_http1s_an_idle_http2_connection_stays() {
    let (server, calls) = counting_server(|s| s.header_read_timeout(Duration::from_millis(200)));
    client(async {
        let (mut h2, _conn) = h2_connect(server.addr).await;
        assert_eq!(fetch(&mut h2, get("/")).await.status, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(600)).await;
        let again = try_fetch(&mut h2, get("/")).await;
        assert_eq!(again.map(|seen| seen.status).ok(), Some(StatusCode::OK));
    });
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn header_lists_past_the_limit_never_reach_the_app() {
    let (server, calls) = counting_server(|s| s.http2_max_header_list_size(8 * 1024));
    client(async {
        let (mut h2, _conn) = h2_connect(server.addr).await;
        let big = "x".repeat(16 * 1024);
        let refused = try_fetch(
            &mut h2,
            request("GET", "/")
                .header("x-big", big)
                .body(empty())
                .unwrap(),
        )
        .await;
        assert!(
            refused.as_ref().map_or(true, |seen| seen.status
                == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            "{:?}",
            refused.map(|s| s.status)
        );
        let (mut h2, _conn) = h2_connect(server.addr).await;
        assert_eq!(fetch(&mut h2, get("/")).await.status, StatusCode::OK);
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn an_authority_with_userinfo_is_refused_and_never_reaches_the_app() {
    let (server, calls) = counting_server(|s| s);
    let mut raw = RawH2::open(server.addr);
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "user:pass@h2.test"),
    ] {
        block.extend_from_slice(&[0, u8::try_from(name.len()).unwrap()]);
        block.extend_from_slice(name.as_bytes());
        block.push(u8::try_from(value.len()).unwrap());
        block.extend_from_slice(value.as_bytes());
    }
    raw.frame(HEADERS, END_HEADERS | END_STREAM, 1, &block);
    raw.next_stream_id = 3;
    // The crate's 400: a head, then "Bad Request\n" ending the stream.
    let frames = raw.frames_of(1);
    let kinds: Vec<_> = frames.iter().map(|f| (f.0, f.1)).collect();
    assert_eq!(kinds, vec![(HEADERS, END_HEADERS), (DATA, END_STREAM)]);
    assert_eq!(frames[1].2, "Bad Request\n".len());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // Refused on its own: the connection serves on.
    let id = raw.request("GET", "/");
    assert_eq!(raw.frames_of(id).first().map(|f| f.0), Some(HEADERS));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
