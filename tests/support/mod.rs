//! Shared helpers: a real hyper server on a background runtime, a raw
//! HTTP/1 client that shows framing and connection state, log capture, and
//! bodies that count their `close()`.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use tower_service::Service;
use tower_wsgi::server::Server;
use tower_wsgi::{AppBody, BoxError};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

#[path = "../../examples/conformance.rs"]
pub mod conformance;
pub mod oracle;
#[cfg(feature = "python")]
pub mod python;

pub(crate) use conformance::{one as param, query};

/// A server running `service` on 127.0.0.1, stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

pub fn serve<S, B>(service: S) -> TestServer
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    serve_with(runtime, service, |server| server)
}

/// [`serve`] on `runtime`, with `configure` applied to the server (TLS, say).
pub fn serve_with<S, B>(
    runtime: tokio::runtime::Runtime,
    service: S,
    configure: impl FnOnce(Server) -> Server + Send + 'static,
) -> TestServer
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    capture_logs();
    let server = runtime.block_on(Server::bind("127.0.0.1:0")).unwrap();
    let addr = server.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("test-server".to_owned())
        .spawn(move || {
            let server = configure(server.grace_period(Duration::from_secs(5)));
            runtime
                .block_on(server.serve_with_shutdown(service, async {
                    let _ = rx.await;
                }))
                .unwrap();
        })
        .unwrap();
    TestServer {
        addr,
        shutdown: Some(tx),
        thread: Some(thread),
    }
}

/// The server's one application thread answers `/ok` with `ok` within two
/// seconds: it was returned to the pool after whatever came before.
pub fn assert_serving(server: &TestServer) {
    let started = std::time::Instant::now();
    let resp = server.get("/ok");
    assert_eq!(resp.body, b"ok");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the app thread was not returned"
    );
}

impl TestServer {
    pub fn connect(&self) -> Conn {
        Conn::open(self.addr)
    }

    /// One request on a new connection.
    pub fn get(&self, target: &str) -> Resp {
        self.request(&get_request(target), false)
    }

    /// One raw request on a new connection (`head`: it was a HEAD).
    pub fn request(&self, raw: &[u8], head: bool) -> Resp {
        let mut conn = self.connect();
        conn.send(raw);
        conn.read_response(head)
    }

    /// A client that leaves mid-body: GETs `target` on a new connection,
    /// reads `bytes` of the answer (head included), and hangs up.
    pub fn leave_after(&self, target: &str, bytes: usize) {
        let mut conn = self.connect();
        conn.send(&get_request(target));
        conn.stream()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut some = vec![0u8; bytes];
        (&mut conn.stream()).read_exact(&mut some).unwrap();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How a response body was delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length,
    Chunked,
    Close,
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub framing: Framing,
    /// `false` when the connection ended before the framing said the body did.
    pub complete: bool,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// What the client must see of an app that failed at some point: the
    /// status, a body holding `body`, a complete body exactly when nothing was
    /// cut, and a 500 framed by `Content-Length`.
    pub fn assert_failure_answer(&self, target: &str, status: u16, body: &str, complete: bool) {
        assert_eq!(self.status, status, "{target}");
        assert!(
            self.body_str().contains(body),
            "{target}: {:?}",
            self.body_str()
        );
        assert_eq!(
            self.complete, complete,
            "{target}: truncation visible exactly when cut"
        );
        if status == 500 {
            assert_eq!(self.framing, Framing::Length, "{target}");
        }
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Self {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    pub fn stream(&self) -> &TcpStream {
        &self.writer
    }

    /// Reads one response; `head_request` for a response to HEAD.
    pub fn read_response(&mut self, head_request: bool) -> Resp {
        self.try_read_response(head_request)
            .expect("no response: the connection ended first")
    }

    /// `None` when the connection ends before a status line.
    pub fn try_read_response(&mut self, head_request: bool) -> Option<Resp> {
        let status_line = self.line()?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_owned();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .expect(&status_line);
        let reason = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let line = self.line().expect("headers cut short");
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect(&line);
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let mut resp = Resp {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            framing: Framing::None,
            complete: true,
        };
        if head_request || status < 200 || status == 204 || status == 304 {
            return Some(resp);
        }
        if resp
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
        {
            resp.framing = Framing::Chunked;
            loop {
                let Some(size_line) = self.line() else {
                    resp.complete = false;
                    break;
                };
                let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16)
                    .expect(&size_line);
                if size == 0 {
                    // trailers, then the blank line
                    loop {
                        match self.line() {
                            Some(l) if l.is_empty() => break,
                            Some(_) => continue,
                            None => {
                                resp.complete = false;
                                break;
                            }
                        }
                    }
                    break;
                }
                let mut chunk = vec![0; size];
                if self.reader.read_exact(&mut chunk).is_err() {
                    resp.complete = false;
                    break;
                }
                resp.body.extend_from_slice(&chunk);
                let mut crlf = [0; 2];
                if self.reader.read_exact(&mut crlf).is_err() {
                    resp.complete = false;
                    break;
                }
            }
        } else if let Some(length) = resp.header("content-length").map(str::to_owned) {
            resp.framing = Framing::Length;
            let length: usize = length.parse().unwrap();
            let mut body = Vec::new();
            let _ = (&mut self.reader)
                .take(length as u64)
                .read_to_end(&mut body);
            resp.complete = body.len() == length;
            resp.body = body;
        } else {
            resp.framing = Framing::Close;
            let _ = self.reader.read_to_end(&mut resp.body);
        }
        Some(resp)
    }

    fn line(&mut self) -> Option<String> {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    line.pop();
                }
                Some(String::from_utf8_lossy(&line).into_owned())
            }
        }
    }

    /// `true` when the server closes the connection within two seconds
    /// without sending anything more.
    pub fn closes(&mut self) -> bool {
        self.reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut rest = Vec::new();
        let closed = self.reader.read_to_end(&mut rest).is_ok();
        assert!(
            rest.is_empty(),
            "unexpected bytes after the response: {:?}",
            String::from_utf8_lossy(&rest)
        );
        closed
    }

    /// Bytes the server sends within `wait` (nothing more is expected).
    pub fn pending_bytes(&mut self, wait: Duration) -> Vec<u8> {
        self.reader.get_ref().set_read_timeout(Some(wait)).unwrap();
        let mut buf = self.reader.buffer().to_vec();
        let n = buf.len();
        self.reader.consume(n);
        let mut chunk = [0; 4096];
        while let Ok(n) = self.reader.get_mut().read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        self.reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        buf
    }
}

/// Counts bodies handed out and closed.
#[derive(Clone, Default)]
pub struct Counters {
    started: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
}

impl Counters {
    pub fn track(&self, body: AppBody) -> AppBody {
        self.started.fetch_add(1, Ordering::SeqCst);
        let closed = self.closed.clone();
        body.on_close(move || {
            closed.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }

    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }

    /// Waits until `closed` reaches `n` (the close may land just after the
    /// client saw the response end, when the client hung up first).
    pub fn wait_closed(&self, n: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.closed() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.closed()
    }
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once per test binary) a subscriber that records every event.
pub fn capture_logs() {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish()
            .with(SpanRecorder);
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buffer
    });
}

// ===== the crate's `wsgi` spans, and the events inside them =====

/// Every `wsgi` span made (its URI), and every event with the URI of the
/// outermost `wsgi` span it happened in.
#[derive(Default)]
struct SpanRecord {
    spans: Vec<String>,
    events: Vec<(String, String)>,
}

static SPANS: Mutex<SpanRecord> = Mutex::new(SpanRecord {
    spans: Vec::new(),
    events: Vec::new(),
});

/// How many `wsgi` spans were made for a URI ending in `tail`.
pub fn spans_ending(tail: &str) -> usize {
    capture_logs();
    let record = SPANS.lock().unwrap();
    record
        .spans
        .iter()
        .filter(|uri| uri.ends_with(tail))
        .count()
}

/// How many events saying `needle` happened inside a `wsgi` span for a URI
/// ending in `tail`.
pub fn events_in_spans_ending(tail: &str, needle: &str) -> usize {
    capture_logs();
    let record = SPANS.lock().unwrap();
    record
        .events
        .iter()
        .filter(|(uri, message)| uri.ends_with(tail) && message.contains(needle))
        .count()
}

struct SpanRecorder;

/// The `uri` of a span, or the message of an event.
#[derive(Default)]
struct Text(String);

struct SpanUri(String);

impl tracing::field::Visit for Text {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if matches!(field.name(), "uri" | "message") {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for SpanRecorder
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        if attrs.metadata().name() != "wsgi" {
            return;
        }
        let mut uri = Text::default();
        attrs.record(&mut uri);
        SPANS.lock().unwrap().spans.push(uri.0.clone());
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanUri(uri.0));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut message = Text::default();
        event.record(&mut message);
        let uri = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|span| span.extensions().get::<SpanUri>().map(|uri| uri.0.clone()))
        });
        if let Some(uri) = uri {
            SPANS.lock().unwrap().events.push((uri, message.0));
        }
    }
}

/// Waits up to two seconds for a log line holding every one of `needles`.
pub fn log_line_with(needles: &[&str]) -> Option<String> {
    capture_logs();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let text = String::from_utf8_lossy(&LOGS.get().unwrap().lock().unwrap()).into_owned();
        if let Some(line) = text.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return Some(line.to_owned());
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A GET of `target` with nothing else to say.
fn get_request(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

/// Headers for a request with a body.
pub fn post(target: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST {target} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Waits until every body the conformance app handed out is closed, and
/// returns `(started, closed)` from its `/counters` route.
pub fn counters_settle(server: &TestServer) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let resp = server.get("/counters");
        let json: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        let (started, closed) = (
            json["started"].as_u64().unwrap(),
            json["closed"].as_u64().unwrap(),
        );
        if started == closed || Instant::now() > deadline {
            return (started, closed);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The message of a panic payload.
pub fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast::<&'static str>()
            .map(|s| (*s).to_owned())
            .unwrap_or_default(),
    }
}

/// Runs an async client on its own runtime (the server has its own), within
/// a bound.
pub fn client<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(within(future))
}

/// Fails the test instead of hanging it.
pub async fn within<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .expect("timed out")
}
