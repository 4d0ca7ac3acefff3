//! Ported WSGI middleware in front of tower services: what the inner service
//! receives is exactly what the middleware passed, and what the client
//! receives is exactly what the inner service answered, rules applied once.
#![deny(warnings)]
#![cfg(all(feature = "server", feature = "axum"))]

mod support;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use support::Framing;
use tower::util::BoxCloneService;
use tower::{service_fn, Layer, ServiceExt};
use tower_wsgi::environ::{Input, InputBody, RemoteAddr};
use tower_wsgi::middleware::{from_fn, Middleware, MiddlewareLayer};
use tower_wsgi::{AppBody, BoxError, Builder, Iterable};

type InnerBody = UnsyncBoxBody<Bytes, BoxError>;

/// What the inner service saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    user: Option<User>,
    remote: Option<RemoteAddr>,
    extensions: usize,
    thread: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct User(&'static str);

#[derive(Clone, Default)]
struct Inner {
    seen: Arc<Mutex<Vec<Seen>>>,
    dropped: Arc<AtomicBool>,
}

impl Inner {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn headers_of(&self, index: usize, name: &str) -> Vec<String> {
        self.seen()[index]
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A plain tower service; `X-Answer` picks the response.
    fn service(&self) -> BoxCloneService<Request<InputBody>, Response<InnerBody>, BoxError> {
        let inner = self.clone();
        BoxCloneService::new(service_fn(move |request| inner.clone().answer(request)))
    }

    async fn answer(self, request: Request<InputBody>) -> Result<Response<InnerBody>, BoxError> {
        let (parts, body) = request.into_parts();
        let answer = parts
            .headers
            .get("x-answer")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = if answer == "sum" {
            sum(body).await?.into_bytes()
        } else {
            body.collect().await?.to_bytes().to_vec()
        };
        self.seen.lock().unwrap().push(Seen {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect(),
            body: body.clone(),
            user: parts.extensions.get::<User>().cloned(),
            remote: parts.extensions.get::<RemoteAddr>().copied(),
            extensions: parts.extensions.len(),
            thread: std::thread::current().name().map(str::to_owned),
        });
        let full = |text: &'static str| boxed(Full::new(Bytes::from_static(text.as_bytes())));
        let response = match answer.as_str() {
            "custom" => {
                let mut response = Response::builder()
                    .status(299)
                    .header("set-cookie", "a=1")
                    .header("set-cookie", "b=2")
                    .header("date", "Mon, 01 Jan 2024 00:00:00 GMT")
                    .header("server", "inner/1")
                    .body(full("custom"))?;
                response
                    .extensions_mut()
                    .insert(hyper::ext::ReasonPhrase::from_static(b"Custom Reason"));
                response
            }
            "stream" => Response::new(boxed(Frames::of(["a", "bb", "ccc"]))),
            "204" => Response::builder().status(204).body(full("x"))?,
            "304" => Response::builder().status(304).body(full("x"))?,
            "hop" => Response::builder()
                .header("connection", "close, x-private")
                .header("x-private", "p")
                .header("keep-alive", "timeout=5")
                .header("transfer-encoding", "chunked")
                .header("x-kept", "k")
                .body(full("hop"))?,
            "fail" => return Err("inner failed on purpose".into()),
            "body-fails-first" => Response::new(boxed(Frames(
                [Err("inner body failed first".into())].into(),
            ))),
            "body-fails-late" => Response::new(boxed(Frames(
                [
                    Ok(Bytes::from_static(b"partial")),
                    Err("inner body failed late".into()),
                ]
                .into(),
            ))),
            "endless" => Response::new(boxed(Endless(DropFlag(self.dropped.clone())))),
            "sum" => Response::new(boxed(Full::new(Bytes::from(body)))),
            "empty" => Response::new(boxed(Empty::new())),
            "big" => Response::new(boxed(Frames(
                big_response()
                    .chunks(64 * 1024)
                    .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
                    .collect(),
            ))),
            _ => Response::new(full("hello")),
        };
        Ok(response)
    }
}

fn big_response() -> Vec<u8> {
    (0..2 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect()
}

fn boxed<B>(body: B) -> InnerBody
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    UnsyncBoxBody::new(body.map_err(Into::into))
}

/// Reads a body frame by frame: its length and a checksum.
async fn sum(mut body: InputBody) -> Result<String, BoxError> {
    let (mut length, mut hash) = (0u64, 0u64);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            length += data.len() as u64;
            hash = data
                .iter()
                .fold(hash, |h, &b| h.wrapping_mul(31).wrapping_add(b.into()));
        }
    }
    Ok(format!("{length} {hash}"))
}

fn expected_sum(data: &[u8]) -> String {
    let hash = data
        .iter()
        .fold(0u64, |h, &b| h.wrapping_mul(31).wrapping_add(b.into()));
    format!("{} {hash}", data.len())
}

/// A body of the given frames, of unknown length.
struct Frames(VecDeque<Result<Bytes, BoxError>>);

impl Frames {
    fn of<const N: usize>(parts: [&'static str; N]) -> Self {
        Self(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p.as_bytes())))
                .collect(),
        )
    }
}

impl HttpBody for Frames {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.0.pop_front().map(|part| part.map(Frame::data)))
    }
}

struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// An endless body that records when it is dropped (the flag is held for its `Drop`).
struct Endless(#[allow(dead_code)] DropFlag);

impl HttpBody for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; 16 * 1024])))))
    }
}

fn passthrough() -> impl Middleware {
    from_fn(|environ, start_response, next| next.call(environ, start_response))
}

/// Rewrites every part of the request, like a ported request-rewriting middleware.
fn rewriter() -> impl Middleware {
    from_fn(|mut environ, start_response, next| {
        let mut body = environ.input().read_all()?;
        body.make_ascii_uppercase();
        body.extend_from_slice(b"!!");
        // CONTENT_LENGTH is left stale on purpose: the body's length wins.
        environ.set_input(Input::from_bytes(body));
        environ.insert("REQUEST_METHOD", "PUT");
        let path = format!("/v2{}", environ.path_info());
        environ.insert("PATH_INFO", path);
        let query = format!("{}&added=%C3%A9", environ.query_string());
        environ.insert("QUERY_STRING", query);
        environ.insert("HTTP_X_ADDED", "yes");
        environ.insert("HTTP_X_CHANGED", "new");
        environ.remove("HTTP_X_REMOVED");
        environ.extensions_mut().insert(User("ada"));
        next.call(environ, start_response)
    })
}

fn request(target: &str, answer: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: test\r\nX-Answer: {answer}\r\n\r\n").into_bytes()
}

#[test]
fn the_inner_service_sees_exactly_what_the_middleware_passed() {
    let inner = Inner::default();
    let server = support::serve(MiddlewareLayer::new(rewriter()).layer(inner.service()));
    let mut conn = server.connect();
    conn.send(
        b"POST /caf%C3%A9/a%20b%25?q=1 HTTP/1.1\r\nHost: test\r\nX-Dup: 1\r\nX-Dup: 2\r\n\
          X-Changed: old\r\nX-Removed: r\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    );
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), "hello");

    let seen = &inner.seen()[0];
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.uri, "/v2/caf%C3%A9/a%20b%25?q=1&added=%C3%A9");
    assert_eq!(seen.body, b"HELLO!!");
    assert_eq!(
        inner.headers_of(0, "x-dup"),
        ["1", "2"],
        "repeated lines kept"
    );
    assert_eq!(inner.headers_of(0, "x-changed"), ["new"]);
    assert_eq!(inner.headers_of(0, "x-added"), ["yes"]);
    assert!(inner.headers_of(0, "x-removed").is_empty());
    assert_eq!(inner.headers_of(0, "content-length"), ["7"]);
    assert_eq!(inner.headers_of(0, "content-type"), ["text/plain"]);
    assert_eq!(inner.headers_of(0, "host"), ["test"]);
    assert_eq!(seen.headers.len(), 7, "{:?}", seen.headers);
    assert_eq!(seen.user, Some(User("ada")));
    let client = conn.stream().local_addr().unwrap();
    assert_eq!(seen.remote, Some(RemoteAddr(client)));
    // RemoteAddr, LocalAddr, User, and the crate's private nesting marker
    // (a WsgiService behind it runs on this thread): nothing else of the edge's.
    assert_eq!(seen.extensions, 4);
    assert_eq!(seen.thread.as_deref(), Some("tower-wsgi-app"));
}

#[test]
fn large_and_chunked_uploads_stream_through_untouched() {
    let inner = Inner::default();
    let server = support::serve(MiddlewareLayer::new(passthrough()).layer(inner.service()));
    let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();

    let mut conn = server.connect();
    conn.send(
        format!(
            "POST /sum HTTP/1.1\r\nHost: test\r\nX-Answer: sum\r\nContent-Length: {}\r\n\r\n",
            data.len()
        )
        .as_bytes(),
    );
    conn.send(&data);
    let resp = conn.read_response(false);
    assert_eq!(resp.body_str(), expected_sum(&data));
    assert_eq!(
        inner.headers_of(0, "content-length"),
        [data.len().to_string()]
    );
    // Read inside the inner service, on the app thread: no hop, no copy.
    assert_eq!(inner.seen()[0].thread.as_deref(), Some("tower-wsgi-app"));

    conn.send(
        b"POST /sum HTTP/1.1\r\nHost: test\r\nX-Answer: sum\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for chunk in data.chunks(100_000) {
        conn.send(format!("{:x}\r\n", chunk.len()).as_bytes());
        conn.send(chunk);
        conn.send(b"\r\n");
    }
    conn.send(b"0\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!(resp.body_str(), expected_sum(&data));
    assert!(inner.headers_of(1, "content-length").is_empty());
    assert_eq!(inner.headers_of(1, "transfer-encoding"), ["chunked"]);
}

#[test]
fn the_client_sees_exactly_what_the_inner_service_answered() {
    let inner = Inner::default();
    let server = support::serve(MiddlewareLayer::new(passthrough()).layer(inner.service()));
    let mut conn = server.connect();

    conn.send(&request("/", "custom"));
    let resp = conn.read_response(false);
    assert_eq!(
        (resp.status, resp.reason.as_str()),
        (299, "Custom Reason"),
        "{resp:?}"
    );
    assert_eq!(resp.all("set-cookie"), ["a=1", "b=2"]);
    assert_eq!(resp.all("date"), ["Mon, 01 Jan 2024 00:00:00 GMT"]);
    assert_eq!(resp.all("server"), ["inner/1"]);
    assert_eq!(resp.all("content-length"), ["6"]);
    assert_eq!(resp.body_str(), "custom");

    // A known length without a header: framed by it, the connection stays open.
    conn.send(&request("/", "plain"));
    let resp = conn.read_response(false);
    assert_eq!(resp.all("content-length"), ["5"]);
    assert_eq!(resp.all("date").len(), 1);
    assert_eq!(resp.all("server").len(), 1);
    assert_eq!(resp.header("connection"), None);
    assert_eq!(resp.body_str(), "hello");

    // HEAD keeps the length, sends no body; 204 and 304 send none either.
    conn.send(b"HEAD / HTTP/1.1\r\nHost: test\r\n\r\n");
    let resp = conn.read_response(true);
    assert_eq!(resp.all("content-length"), ["5"]);
    // An empty HEAD answer says nothing of the GET's length: none is made up.
    conn.send(b"HEAD / HTTP/1.1\r\nHost: test\r\nX-Answer: empty\r\n\r\n");
    let resp = conn.read_response(true);
    assert_eq!((resp.status, resp.header("content-length")), (200, None));
    for status in ["204", "304"] {
        conn.send(&request("/", status));
        let resp = conn.read_response(false);
        assert_eq!(resp.status.to_string(), status);
        assert_eq!(resp.header("content-length"), None);
    }

    // Hop-by-hop headers of the inner response do not reach the client.
    conn.send(&request("/", "hop"));
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 200);
    for dropped in ["connection", "keep-alive", "transfer-encoding", "x-private"] {
        assert_eq!(resp.header(dropped), None, "{dropped}");
    }
    assert_eq!(resp.header("x-kept"), Some("k"));
    assert_eq!(
        (resp.framing, resp.body_str().as_str()),
        (Framing::Length, "hop")
    );

    // Unknown length: streamed, and the seed's connection rule applies.
    conn.send(&request("/", "stream"));
    let resp = conn.read_response(false);
    assert_eq!(resp.header("connection"), Some("close"));
    assert_eq!(resp.framing, Framing::Chunked);
    assert!(resp.complete);
    assert_eq!(resp.body_str(), "abbccc");
    assert!(conn.closes());

    let mut conn = server.connect();
    conn.send(&request("/", "big"));
    let resp = conn.read_response(false);
    assert!(resp.complete);
    assert!(
        resp.body == big_response(),
        "a large streamed body arrives whole"
    );
}

#[test]
fn inner_failures_become_one_500_or_an_aborted_body() {
    let inner = Inner::default();
    let server = support::serve(MiddlewareLayer::new(passthrough()).layer(inner.service()));
    for (answer, cause) in [
        ("fail", "inner failed on purpose"),
        ("body-fails-first", "inner body failed first"),
    ] {
        let mut conn = server.connect();
        conn.send(&request(&format!("/?tag={answer}"), answer));
        let resp = conn.read_response(false);
        assert_eq!(resp.status, 500, "{answer}");
        assert_eq!(resp.all("content-length").len(), 1);
        assert!(resp.complete);
        assert!(
            support::log_line_with(&[&format!("tag={answer}"), cause, "answering 500"]).is_some(),
            "{answer}"
        );
    }
    let mut conn = server.connect();
    conn.send(&request("/", "body-fails-late"));
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), "partial");
    assert!(!resp.complete, "the client must see the cut");
}

#[test]
fn a_middleware_may_answer_without_calling_next() {
    let inner = Inner::default();
    let require_token = from_fn(|environ, start_response, next| {
        if environ.get("HTTP_AUTHORIZATION") != Some("Bearer s3cret") {
            start_response.start(
                "401 UNAUTHORIZED",
                [("Content-Length", "6"), ("WWW-Authenticate", "Bearer")],
            )?;
            return Ok("denied".into());
        }
        next.call(environ, start_response)
    });
    let server = support::serve(MiddlewareLayer::new(require_token).layer(inner.service()));
    let mut conn = server.connect();
    conn.send(b"GET / HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer guess\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!((resp.status, resp.reason.as_str()), (401, "UNAUTHORIZED"));
    assert_eq!(resp.body_str(), "denied");
    assert!(inner.seen().is_empty());
    conn.send(b"GET / HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer s3cret\r\n\r\n");
    assert_eq!(conn.read_response(false).body_str(), "hello");
    assert_eq!(inner.headers_of(0, "authorization"), ["Bearer s3cret"]);
}

/// Counts the bytes of the body it wraps.
struct CountBytes {
    body: AppBody,
    bytes: Arc<AtomicUsize>,
}

impl Iterable for CountBytes {
    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
        let chunk = self.body.next()?;
        if let Ok(data) = &chunk {
            self.bytes.fetch_add(data.len(), Ordering::SeqCst);
        }
        Some(chunk)
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.body.close()
    }
}

#[derive(Clone, Default)]
struct Tally {
    bytes: Arc<AtomicUsize>,
    closes: Arc<AtomicUsize>,
}

impl Tally {
    fn middleware(&self) -> impl Middleware {
        let tally = self.clone();
        from_fn(move |environ, start_response, next| {
            let body = next.call(environ, start_response)?;
            let closes = tally.closes.clone();
            Ok(AppBody::new(CountBytes {
                body,
                bytes: tally.bytes.clone(),
            })
            .on_close(move || {
                closes.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }))
        })
    }

    fn wait_closes(&self, n: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.closes.load(Ordering::SeqCst) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.closes.load(Ordering::SeqCst)
    }
}

#[test]
fn a_middleware_may_wrap_the_body_of_next() {
    let inner = Inner::default();
    let tally = Tally::default();
    let server = support::serve(MiddlewareLayer::new(tally.middleware()).layer(inner.service()));
    let mut conn = server.connect();
    conn.send(&request("/", "stream"));
    let resp = conn.read_response(false);
    assert_eq!(resp.body_str(), "abbccc");
    assert_eq!(tally.wait_closes(1), 1);
    assert_eq!(tally.bytes.load(Ordering::SeqCst), 6);

    // The client goes away mid-stream: pulling stops, the inner body is
    // dropped, and the middleware's body is closed once.
    let mut conn = server.connect();
    conn.send(&request("/", "endless"));
    let mut head = [0u8; 64];
    std::io::Read::read_exact(&mut std::io::BufReader::new(conn.stream()), &mut head).unwrap();
    drop(conn);
    assert_eq!(tally.wait_closes(2), 2, "closed once");
    assert!(inner.dropped.load(Ordering::SeqCst));
}

#[test]
fn an_edge_body_limit_holds_for_the_inner_service() {
    let inner = Inner::default();
    let layer = MiddlewareLayer::with_builder(passthrough(), Builder::new().max_request_body(10));
    let server = support::serve(layer.layer(inner.service()));
    let mut conn = server.connect();
    conn.send(
        b"POST /?tag=limit HTTP/1.1\r\nHost: test\r\nX-Answer: sum\r\nTransfer-Encoding: chunked\r\n\r\n\
          8\r\n01234567\r\n8\r\n89abcdef\r\n0\r\n\r\n",
    );
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 413);
    assert!(inner.seen().is_empty());
}

// ===== in-process, through oneshot =====

fn get(target: &str) -> Request<Empty<Bytes>> {
    Request::get(target).body(Empty::new()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_router_behind_a_ported_middleware() {
    use axum::extract::Path;
    use axum::routing::{get as get_route, put};

    let router = axum::Router::new()
        .route(
            "/v2/users/{name}",
            put(
                |Path(name): Path<String>, headers: HeaderMap, body: Bytes| async move {
                    format!(
                        "{name} added={} dup={:?} body={}",
                        headers["x-added"].to_str().unwrap(),
                        headers.get_all("x-dup").iter().collect::<Vec<_>>(),
                        String::from_utf8_lossy(&body)
                    )
                },
            ),
        )
        .route("/v2/page", get_route(|| async { "page" }));
    let service = MiddlewareLayer::new(rewriter()).layer(router);

    let request = Request::post("/users/ada%20l?x=1")
        .header("x-dup", "1")
        .header("x-dup", "2")
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let expected = r#"ada l added=yes dup=["1", "2"] body=PAYLOAD!!"#;
    assert_eq!(
        response.headers()["content-length"],
        expected.len().to_string()
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, expected);

    // The rewriter makes everything a PUT: axum answers 405 with its Allow header.
    let response = service.clone().oneshot(get("/page")).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET,HEAD");
    assert_eq!(response.headers()["content-length"], "0");

    let response = service.oneshot(get("/nowhere")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_through_axum_keeps_the_get_length() {
    let router =
        axum::Router::new().route("/page", axum::routing::get(|| async { "twelve bytes" }));
    let service = MiddlewareLayer::new(passthrough()).layer(router);
    let response = service
        .oneshot(Request::head("/page").body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-length"], "12");
    assert!(response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middleware_also_wraps_legacy_apps_and_nests() {
    // The same middleware in front of a legacy app, and two layers deep.
    let app = |environ: tower_wsgi::Environ, start_response: tower_wsgi::StartResponse| {
        let text = format!("{} {}", environ.request_method(), environ.path_info());
        start_response.start("200 OK", [("Content-Length", text.len().to_string())])?;
        Ok::<AppBody, BoxError>(text.into())
    };
    let legacy =
        tower_wsgi::WsgiService::new(tower_wsgi::middleware::MiddlewareApp::new(rewriter(), app));
    let response = legacy.oneshot(get("/x")).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "PUT /v2/x");

    let inner = Inner::default();
    let service = MiddlewareLayer::new(rewriter())
        .layer(MiddlewareLayer::new(rewriter()).layer(inner.service()));
    let response = service.oneshot(get("/x")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(inner.seen()[0].uri, "/v2/v2/x?&added=%C3%A9&added=%C3%A9");
    assert_eq!(response.headers().get_all("server").iter().count(), 1);
    assert_eq!(response.headers().get_all("date").iter().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_built_from_an_app_calls_it() {
    let next = tower_wsgi::middleware::Next::from_app(
        |_environ: tower_wsgi::Environ, start_response: tower_wsgi::StartResponse| {
            start_response.start("200 OK", [("Content-Length", "2")])?;
            Ok::<AppBody, BoxError>("ok".into())
        },
    );
    let service = tower_wsgi::WsgiService::new(next);
    let response = service.oneshot(get("/")).await.unwrap();
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "ok"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_middleware_may_change_the_inner_response_head() {
    let inner = Inner::default();
    let add_header = from_fn(|environ, start_response, next| {
        let start_response = start_response.map_head(|status, headers| {
            headers.push(("X-Seen-Status".into(), status.clone()));
            headers.retain(|(name, _)| name != "x-kept");
        });
        next.call(environ, start_response)
    });
    let service = MiddlewareLayer::new(add_header).layer(inner.service());
    let request = Request::get("/")
        .header("x-answer", "hop")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.headers()["x-seen-status"], "200 OK");
    assert!(response.headers().get("x-kept").is_none());
    assert_eq!(response.headers()["content-length"], "3");
}
