//! One edge, whatever the nesting: `WsgiService`s behind a `MiddlewareLayer`
//! (directly, through an axum `Router`, two layers deep) run on the edge's
//! thread, under its one span and its one set of rules, unless they cannot.
#![deny(warnings)]
#![cfg(all(feature = "server", feature = "axum"))]

mod support;

use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use http::{Request, Response};
use support::{events_in_spans_ending, spans_ending};
use support::{Counters, Framing};
use tower::{Layer, Service, ServiceExt};
use tower_wsgi::middleware::{from_fn, Middleware, MiddlewareLayer};
use tower_wsgi::{
    App, AppBody, BoxError, Builder, Environ, ErrorKind, HopByHop, StartResponse, WsgiService,
};

// ===== the apps =====

/// The threads the middleware and the app ran on, per request.
#[derive(Clone, Default)]
struct Threads(Arc<Mutex<Vec<(&'static str, ThreadId)>>>);

impl Threads {
    fn note(&self, who: &'static str) {
        let id = std::thread::current().id();
        self.0.lock().unwrap().push((who, id));
    }

    /// Whether the app ran on the middleware's thread, for the only request.
    fn shared(&self) -> bool {
        let seen = self.0.lock().unwrap();
        let of = |who| {
            let ids: Vec<_> = seen.iter().filter(|(w, _)| *w == who).collect();
            assert_eq!(ids.len(), 1, "{who} ran once: {seen:?}");
            ids[0].1
        };
        of("middleware") == of("app")
    }
}

fn passthrough(threads: &Threads) -> impl Middleware {
    let threads = threads.clone();
    from_fn(move |environ, start_response, next| {
        threads.note("middleware");
        next.call(environ, start_response)
    })
}

fn hello(threads: &Threads) -> impl App + Clone {
    let threads = threads.clone();
    tower_wsgi::app_fn(move |environ, start_response| {
        threads.note("app");
        let text = format!("hello {}", environ.path_info());
        start_response.start(
            "200 OK",
            [
                ("Content-Type", "text/plain".to_owned()),
                ("Content-Length", text.len().to_string()),
            ],
        )?;
        Ok(text.into())
    })
}

/// Serves `service` and answers one GET of `target`.
fn answer<S, B>(service: S, target: &str) -> support::Resp
where
    S: Service<Request<hyper::body::Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    support::serve(service).get(target)
}

// ===== one thread, one span =====

#[test]
fn nested_services_run_on_the_edges_thread_under_its_one_span() {
    for (shape, join) in [("direct", true), ("direct", false)] {
        let threads = Threads::default();
        let inner = Builder::new().join_edge(join).build(hello(&threads));
        let edge = MiddlewareLayer::new(passthrough(&threads)).layer(inner);
        let target = format!("/{shape}/{join}");
        let resp = answer(edge, &target);
        assert_eq!(resp.body_str(), format!("hello {target}"));
        assert_eq!(threads.shared(), join, "{target}");
        assert_eq!(spans_ending(&target), if join { 1 } else { 2 }, "{target}");
    }
}

#[test]
fn through_an_axum_router_and_two_layers_deep_it_is_still_one_edge() {
    for join in [true, false] {
        let threads = Threads::default();
        let inner = Builder::new().join_edge(join);
        let router: axum::Router = axum::Router::new()
            .route_service("/routed", inner.build(hello(&threads)))
            .nest_service(
                "/nested",
                tower_wsgi::mount::AxumMount::new(inner.build(hello(&threads))),
            );
        let edge = MiddlewareLayer::new(passthrough(&threads)).layer(router);
        for target in ["/routed", "/nested/x"] {
            threads.0.lock().unwrap().clear();
            let query = format!("?{}-join={join}", &target[1..4]);
            let target_of_run = format!("{target}{query}");
            let resp = answer(edge.clone(), &target_of_run);
            assert_eq!(resp.status, 200, "{target_of_run}");
            assert_eq!(threads.shared(), join, "{target_of_run}");
            assert_eq!(spans_ending(&query), if join { 1 } else { 2 });
        }

        // A second middleware layer, itself behind the first: three levels.
        let deep_threads = Threads::default();
        let deepest = inner.build(hello(&deep_threads));
        let middle = MiddlewareLayer::new(from_fn(|environ, start_response, next| {
            next.call(environ, start_response)
        }))
        .layer(axum::Router::new().route_service("/deep", deepest));
        let edge = MiddlewareLayer::new(passthrough(&deep_threads))
            .layer(axum::Router::new().route_service("/deep", middle));
        let target = format!("/deep?join={join}");
        let resp = answer(edge, &target);
        assert_eq!(resp.body_str(), "hello /deep");
        assert_eq!(deep_threads.shared(), join);
        // The middle layer is an edge that always joins: one span, or two.
        assert_eq!(spans_ending(&target), if join { 1 } else { 2 });
    }
}

/// An app that must keep to threads of its own (as a Python app does).
#[derive(Clone)]
struct OwnThreads(Threads);

impl App for OwnThreads {
    fn call(&self, _environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
        self.0.note("app");
        start_response.start("200 OK", [("Content-Length", "2")])?;
        Ok("ok".into())
    }

    fn allows_inline(&self) -> bool {
        false
    }
}

/// Runs every call of the inner service in a task of its own.
#[derive(Clone)]
struct SpawnEach<S>(S);

impl<S, R> Service<R> for SpawnEach<S>
where
    S: Service<R> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: R) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move {
            tokio::spawn(service.oneshot(request))
                .await
                .expect("the inner service does not panic")
        })
    }
}

#[test]
fn an_app_that_needs_its_own_threads_or_a_call_moved_elsewhere_is_an_edge_of_its_own() {
    let threads = Threads::default();
    let edge = MiddlewareLayer::new(passthrough(&threads))
        .layer(WsgiService::new(OwnThreads(threads.clone())));
    let resp = answer(edge, "/own-threads");
    assert_eq!(resp.body_str(), "ok");
    assert!(!threads.shared());
    assert_eq!(spans_ending("/own-threads"), 2);

    // A layer in between that spawns the call: the app must not block a
    // runtime worker, so it runs on its own service's pool, fully ruled.
    let threads = Threads::default();
    let edge = MiddlewareLayer::new(passthrough(&threads))
        .layer(SpawnEach(WsgiService::new(hello(&threads))));
    let resp = answer(edge, "/spawned");
    assert_eq!(resp.body_str(), "hello /spawned");
    assert!(!threads.shared());
    assert_eq!(spans_ending("/spawned"), 2);
}

// ===== what sits in between still sees the answer =====

#[test]
fn layers_in_between_see_and_edit_the_nested_answer() {
    let threads = Threads::default();
    let router: axum::Router = axum::Router::new()
        .route_service("/layered", WsgiService::new(hello(&threads)))
        .layer(tower::util::MapResponseLayer::new(
            |mut response: Response<axum::body::Body>| {
                let status = response.status().as_u16().to_string();
                response
                    .headers_mut()
                    .insert("x-layer-saw", status.parse().unwrap());
                response
            },
        ))
        .layer(
            tower_http::compression::CompressionLayer::new()
                .compress_when(tower_http::compression::predicate::SizeAbove::new(0)),
        );
    let edge = MiddlewareLayer::new(passthrough(&threads)).layer(router);
    let server = support::serve(edge);
    let mut conn = server.connect();
    conn.send(b"GET /layered HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-layer-saw"), Some("200"));
    assert_eq!(resp.header("content-encoding"), Some("gzip"));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&resp.body[..]), &mut text)
        .unwrap();
    assert_eq!(text, "hello /layered");
    assert!(threads.shared());
}

// ===== the rules, once, the edge's =====

fn with_hop_by_hop(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    start_response.start(
        "200 OK",
        [
            ("Content-Length", "2"),
            ("Connection", "close"),
            ("X-Kept", "1"),
        ],
    )?;
    Ok("ok".into())
}

fn too_long(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    start_response.start("200 OK", [("Content-Length", "3")])?;
    Ok(AppBody::from_chunks(["abcde"]))
}

#[test]
fn the_edges_rules_judge_a_nested_answer_once() {
    let pass = || from_fn(|environ, start_response, next| next.call(environ, start_response));
    // The inner service's own response options give way to the edge's.
    let inner = Builder::new()
        .hop_by_hop(HopByHop::Reject)
        .server_header(None);
    let edge = MiddlewareLayer::with_builder(pass(), Builder::new().hop_by_hop(HopByHop::Drop))
        .layer(inner.build(with_hop_by_hop));
    let resp = answer(edge, "/hop");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), "ok");
    assert_eq!(
        resp.header("connection"),
        None,
        "dropped by the edge's rule"
    );
    assert_eq!(resp.header("x-kept"), Some("1"));
    assert!(resp.header("server").is_some(), "the edge's Server");

    let edge = MiddlewareLayer::new(pass()).layer(Builder::new().build(with_hop_by_hop));
    let resp = answer(edge, "/hop-rejected");
    assert_eq!(resp.status, 500, "the edge's default: PEP 3333's rule");

    // A body past its Content-Length: cut at the declared length, the
    // connection closed, and reported once, by the one set of rules.
    let edge = MiddlewareLayer::new(pass()).layer(WsgiService::new(too_long));
    let resp = answer(edge, "/too-long");
    assert_eq!(resp.body, b"abc");
    assert!(matches!(resp.framing, Framing::Length));
    assert_eq!(resp.header("connection"), Some("close"));
    assert_eq!(
        events_in_spans_ending("/too-long", "longer than its Content-Length"),
        1
    );
}

#[test]
fn head_keeps_the_length_and_the_inner_body_limit_holds() {
    let threads = Threads::default();
    let edge = MiddlewareLayer::new(passthrough(&threads))
        .layer(Builder::new().max_request_body(4).build(hello(&threads)));
    let server = support::serve(edge);
    let mut conn = server.connect();
    conn.send(b"HEAD /head HTTP/1.1\r\nHost: test\r\n\r\n");
    let resp = conn.read_response(true);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-length"), Some("11"));
    assert!(resp.body.is_empty());

    conn.send(&support::post("/declared", "0123456789", ""));
    assert_eq!(conn.read_response(false).status, 413);

    // Chunked: over the limit only once read.
    let reader = tower_wsgi::app_fn(|mut environ, start_response| {
        let mut body = Vec::new();
        std::io::Read::read_to_end(environ.input(), &mut body)?;
        start_response.start("200 OK", [("Content-Length", "0")])?;
        Ok(AppBody::empty())
    });
    let edge = MiddlewareLayer::new(from_fn(|environ, start_response, next| {
        next.call(environ, start_response)
    }))
    .layer(Builder::new().max_request_body(4).build(reader));
    let server = support::serve(edge);
    let mut conn = server.connect();
    conn.send(
        b"POST /chunked HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n",
    );
    assert_eq!(conn.read_response(false).status, 413);
}

// ===== failures: the middleware's to handle, as in Python =====

#[test]
fn a_nested_apps_error_reaches_the_middleware_as_err() {
    let failing = |_environ: Environ,
                   _start_response: StartResponse|
     -> Result<AppBody, BoxError> { Err("database unreachable".into()) };
    let catching = || {
        from_fn(
            |environ, start_response, next| match next.call(environ, start_response.clone()) {
                Ok(body) => Ok(body),
                Err(error) => {
                    let text = format!("caught: {error}");
                    start_response.start(
                        "502 Bad Gateway",
                        [("Content-Length", text.len().to_string())],
                    )?;
                    Ok(text.into())
                }
            },
        )
    };
    let edge = MiddlewareLayer::new(catching()).layer(WsgiService::new(failing));
    let resp = answer(edge, "/fails");
    assert_eq!(resp.status, 502);
    assert_eq!(resp.body_str(), "caught: database unreachable");

    // An edge of its own answers 500 itself: the middleware sees a response.
    let edge =
        MiddlewareLayer::new(catching()).layer(Builder::new().join_edge(false).build(failing));
    assert_eq!(answer(edge, "/fails-alone").status, 500);

    // A panic is the edge's 500, and its thread serves again.
    let panicking = |_environ: Environ,
                     _start_response: StartResponse|
     -> Result<AppBody, BoxError> { panic!("nested app panicked on purpose") };
    let edge = MiddlewareLayer::new(catching()).layer(WsgiService::new(panicking));
    let server = support::serve(edge);
    for _ in 0..3 {
        assert_eq!(server.get("/panics").status, 500);
    }
}

#[test]
fn write_holds_at_most_a_mib_before_the_nested_app_returns() {
    let writer = |_environ: Environ, start_response: StartResponse| -> Result<AppBody, BoxError> {
        let write = start_response.start("200 OK", [("Content-Type", "text/plain")])?;
        let block = vec![b'w'; 64 * 1024];
        for _ in 0..32 {
            write.write(block.clone())?;
        }
        Ok(AppBody::from_chunks(["end"]))
    };
    let small = |_environ: Environ, start_response: StartResponse| -> Result<AppBody, BoxError> {
        let write = start_response.start("200 OK", [("Content-Type", "text/plain")])?;
        write.write("hello ")?;
        Ok(AppBody::from_chunks(["world\n"]))
    };
    let pass = || from_fn(|environ, start_response, next| next.call(environ, start_response));
    let caught = Arc::new(Mutex::new(None));
    let seen = caught.clone();
    let watching = from_fn(move |environ, start_response, next| {
        let result = next.call(environ, start_response);
        if let Err(error) = &result {
            let kind = error
                .downcast_ref::<tower_wsgi::Error>()
                .map(tower_wsgi::Error::kind);
            *seen.lock().unwrap() = Some((kind, error.to_string()));
        }
        result
    });

    let resp = answer(
        MiddlewareLayer::new(pass()).layer(WsgiService::new(small)),
        "/small",
    );
    assert_eq!(resp.body_str(), "hello world\n");

    let resp = answer(
        MiddlewareLayer::new(watching).layer(WsgiService::new(writer)),
        "/writes-2mib",
    );
    assert_eq!(resp.status, 500);
    let (kind, message) = caught.lock().unwrap().clone().expect("the error came back");
    assert_eq!(kind, Some(ErrorKind::WouldBlock));
    assert!(message.contains("join_edge(false)"), "{message}");

    let resp = answer(
        MiddlewareLayer::new(pass()).layer(Builder::new().join_edge(false).build(writer)),
        "/writes-2mib-alone",
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), 32 * 64 * 1024 + 3);
}

// ===== streams: whole, or closed once when the client leaves =====

#[test]
fn a_nested_stream_ends_whole_or_closes_once_when_the_client_leaves() {
    let counters = Counters::default();
    let tracked = counters.clone();
    let lines = move |environ: Environ, start_response: StartResponse| {
        start_response.start("200 OK", [("Content-Type", "text/plain")])?;
        let endless = environ.path_info() == "/endless";
        let mut n = 0u64;
        let body = AppBody::from_chunks(std::iter::from_fn(move || {
            n += 1;
            (endless || n <= 20_000).then(|| format!("line {n}\n"))
        }));
        Ok::<_, BoxError>(tracked.track(body))
    };
    let edge = MiddlewareLayer::with_builder(
        from_fn(|environ, start_response, next| next.call(environ, start_response)),
        Builder::new().connection_policy(tower_wsgi::ConnectionPolicy::KeepAliveChunked),
    )
    .layer(WsgiService::new(tower_wsgi::app_fn(lines)));
    let server = support::serve(edge);

    let resp = server.get("/lines");
    assert!(resp.complete);
    assert_eq!(resp.body_str().lines().count(), 20_000);
    assert_eq!(counters.wait_closed(1), 1);

    server.leave_after("/endless", 4096);
    assert_eq!(counters.wait_closed(2), 2);
    assert_eq!(counters.started(), 2);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while events_in_spans_ending("/endless", "went away") == 0
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(events_in_spans_ending("/endless", "went away"), 1);
    // Its thread serves again.
    assert!(server.get("/lines").complete);
}
