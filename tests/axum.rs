//! Under axum 0.8 (`route_service`, `nest_service`, `fallback_service`, also
//! inside a nested router), served by `axum::serve` with `ConnectInfo`, on
//! real connections: the environ the application sees and the response rules
//! the client sees.
#![cfg(all(feature = "server", feature = "axum"))]
#![deny(warnings)]

mod support;

use std::net::SocketAddr;
use std::thread::JoinHandle;

use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use support::{conformance, Conn, Resp};
use tower_wsgi::environ::RemoteAddr;
use tower_wsgi::mount::AxumMount;
use tower_wsgi::{app_fn, App, Builder, WsgiService};

/// `axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())`
/// on 127.0.0.1, stopped on drop.
struct AxumServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl AxumServer {
    fn start(router: Router) -> Self {
        support::capture_logs();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let app = router.into_make_service_with_connect_info::<SocketAddr>();
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            runtime.block_on(async { serve.await }).unwrap();
        });
        Self {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }
}

/// One request on `conn`, read back in full.
fn request(conn: &mut Conn, method: &str, target: &str) -> Resp {
    conn.send(format!("{method} {target} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
    conn.read_response(method == "HEAD")
}

impl Drop for AxumServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Echoes the mount and address keys of the environ as JSON, on every path.
fn echo_app() -> impl App {
    app_fn(|environ, start_response| {
        let keys = [
            "SCRIPT_NAME",
            "PATH_INFO",
            "QUERY_STRING",
            "REQUEST_URI",
            "REMOTE_ADDR",
            "REMOTE_PORT",
        ];
        let view: serde_json::Map<String, Value> = keys
            .iter()
            .map(|key| ((*key).to_owned(), json!(environ.get(key))))
            .collect();
        let payload = Value::Object(view).to_string();
        start_response.start(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", &payload.len().to_string()),
            ],
        )?;
        Ok(payload.into())
    })
}

fn echo_router() -> Router {
    let echo = AxumMount::new(WsgiService::new(echo_app()));
    let pinned_peer = tower::ServiceBuilder::new()
        .map_request(|mut req: http::Request<axum::body::Body>| {
            req.extensions_mut()
                .insert(RemoteAddr("10.9.8.7:6543".parse().unwrap()));
            req
        })
        .service(echo.clone());
    Router::new()
        .route("/ported", get(|| async { "ported handler" }))
        .route_service("/exact", echo.clone())
        .route_service("/pinned", pinned_peer)
        .nest_service("/app", echo.clone())
        .nest_service("/slash/", echo.clone())
        .nest_service("/api/{version}", echo.clone())
        .nest_service(
            "/combo",
            AxumMount::new(Builder::new().script_name("/v1").build(echo_app())),
        )
        .nest("/outer", Router::new().nest_service("/inner", echo.clone()))
        .nest(
            "/nested",
            Router::new().route_service("/exact", echo.clone()),
        )
        .nest(
            "/fb",
            Router::new()
                .route("/handled", get(|| async { "nested handler" }))
                .fallback_service(echo.clone()),
        )
        .fallback_service(echo)
}

#[test]
fn script_name_and_path_info_come_from_the_original_uri_and_the_nest_pattern() {
    let server = AxumServer::start(echo_router());
    // (target, SCRIPT_NAME, PATH_INFO, QUERY_STRING)
    let cases = [
        ("/app", "/app", "", ""),
        ("/app/", "/app", "/", ""),
        ("/app//x", "/app", "//x", ""),
        ("/app/x/y?q=1&r", "/app", "/x/y", "q=1&r"),
        ("/app/%20x", "/app", "/ x", ""),
        ("/app/caf%C3%A9/%FF", "/app", "/caf\u{c3}\u{a9}/\u{ff}", ""),
        ("/app/a%2Fb", "/app", "/a/b", ""),
        ("/slash/", "/slash", "/", ""),
        ("/slash/x", "/slash", "/x", ""),
        ("/api/v1/users?z=2", "/api/v1", "/users", "z=2"),
        ("/api/v%201/users", "/api/v 1", "/users", ""),
        ("/api/v2", "/api/v2", "", ""),
        ("/outer/inner/foo", "/outer/inner", "/foo", ""),
        ("/outer/inner", "/outer/inner", "", ""),
        ("/combo/v1/x", "/combo/v1", "/x", ""),
        ("/combo/v1", "/combo/v1", "", ""),
        ("/fb/anything/else?k=v", "/fb", "/anything/else", "k=v"),
        ("/fb", "/fb", "", ""),
        // axum routes `/fb/` to the outer fallback, not the nested one.
        ("/fb/", "", "/fb/", ""),
        ("/nested/exact", "/nested", "/exact", ""),
        ("/exact", "", "/exact", ""),
        ("/appx", "", "/appx", ""),
        ("/", "", "/", ""),
        ("/elsewhere//y?x=%20", "", "/elsewhere//y", "x=%20"),
    ];
    for (target, script_name, path_info, query) in cases {
        let mut conn = Conn::open(server.addr);
        let resp = request(&mut conn, "GET", target);
        assert_eq!(resp.status, 200, "{target}");
        let env: Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(env["SCRIPT_NAME"], script_name, "{target}");
        assert_eq!(env["PATH_INFO"], path_info, "{target}");
        assert_eq!(env["QUERY_STRING"], query, "{target}");
        assert_eq!(env["REQUEST_URI"], target, "{target}");
    }
}

#[test]
fn a_configured_script_name_is_matched_below_the_nest() {
    let server = AxumServer::start(echo_router());
    let mut conn = Conn::open(server.addr);
    let resp = request(&mut conn, "GET", "/combo/x");
    assert_eq!(resp.status, 404);
}

#[test]
fn axum_handlers_next_to_the_legacy_app_still_answer() {
    let server = AxumServer::start(echo_router());
    let mut conn = Conn::open(server.addr);
    assert_eq!(
        request(&mut conn, "GET", "/ported").body_str(),
        "ported handler"
    );
    assert_eq!(
        request(&mut conn, "GET", "/fb/handled").body_str(),
        "nested handler"
    );
}

#[test]
fn connect_info_gives_remote_addr_and_port_under_every_mount() {
    let server = AxumServer::start(echo_router());
    for target in [
        "/exact",
        "/app/x",
        "/api/v1/x",
        "/outer/inner/x",
        "/fb/x",
        "/nowhere",
    ] {
        let mut conn = Conn::open(server.addr);
        let client = conn.stream().local_addr().unwrap();
        let env: Value = serde_json::from_slice(&request(&mut conn, "GET", target).body).unwrap();
        assert_eq!(env["REMOTE_ADDR"], client.ip().to_string(), "{target}");
        assert_eq!(env["REMOTE_PORT"], client.port().to_string(), "{target}");
    }
}

#[test]
fn the_crates_own_remote_addr_wins_over_connect_info() {
    let server = AxumServer::start(echo_router());
    let mut conn = Conn::open(server.addr);
    let env: Value = serde_json::from_slice(&request(&mut conn, "GET", "/pinned").body).unwrap();
    assert_eq!(env["REMOTE_ADDR"], "10.9.8.7");
    assert_eq!(env["REMOTE_PORT"], "6543");
}

/// The conformance app at each kind of mount.
fn conformance_router() -> Router {
    let legacy = AxumMount::new(conformance::service());
    Router::new()
        .route_service("/respond", legacy.clone())
        .nest_service("/legacy", legacy.clone())
        .nest(
            "/fb",
            Router::new()
                .route("/handled", get(|| async { "nested handler" }))
                .fallback_service(legacy.clone()),
        )
        .fallback_service(legacy)
}

/// One target per mount kind: route_service, nest_service, nested fallback, fallback.
const RESPOND_TARGETS: [&str; 4] = ["/respond", "/legacy/respond", "/fb/respond", "/stream"];

#[test]
fn head_sends_no_body_through_every_mount() {
    let server = AxumServer::start(conformance_router());
    for target in RESPOND_TARGETS {
        let target = if target == "/stream" {
            "/stream?n=2&size=5&cl=auto".to_owned()
        } else {
            format!("{target}?body=hello")
        };
        let mut conn = Conn::open(server.addr);
        let head = request(&mut conn, "HEAD", &target);
        assert_eq!(head.status, 200, "{target}");
        let expected_length = if target.starts_with("/stream") {
            "10"
        } else {
            "5"
        };
        assert_eq!(
            head.header("content-length"),
            Some(expected_length),
            "{target}"
        );
        // A body byte after the HEAD response would be read as this status line.
        let next = request(&mut conn, "GET", &target);
        assert_eq!(next.status, 200, "{target}");
        assert_eq!(next.body.len().to_string(), expected_length, "{target}");
    }
}

#[test]
fn no_content_length_means_connection_close_through_every_mount() {
    let server = AxumServer::start(conformance_router());
    for target in RESPOND_TARGETS {
        let target = if target == "/stream" {
            "/stream?n=3&size=4".to_owned()
        } else {
            format!("{target}?body=abc&chunks=2&cl=none")
        };
        let mut conn = Conn::open(server.addr);
        let resp = request(&mut conn, "GET", &target);
        assert_eq!(resp.status, 200, "{target}");
        assert_eq!(resp.header("connection"), Some("close"), "{target}");
        assert!(resp.complete, "{target}");
        assert!(!resp.body.is_empty(), "{target}");
        assert!(conn.closes(), "{target}: the connection stays open");
    }
}

#[test]
fn server_and_date_appear_once_through_every_mount() {
    let server = AxumServer::start(conformance_router());
    for target in RESPOND_TARGETS {
        let mut conn = Conn::open(server.addr);
        let resp = request(&mut conn, "GET", target);
        assert_eq!(resp.status, 200, "{target}");
        assert_eq!(resp.all("server").len(), 1, "{target}: {:?}", resp.headers);
        assert!(resp.all("server")[0].starts_with("tower-wsgi/"), "{target}");
        assert_eq!(resp.all("date").len(), 1, "{target}: {:?}", resp.headers);
    }
}

#[test]
fn without_axum_mount_a_nested_service_sees_the_stripped_path_and_a_warning() {
    support::capture_logs();
    let bare = WsgiService::new(echo_app());
    let router = Router::new().nest_service("/bare", bare);
    let server = AxumServer::start(router);
    let mut conn = Conn::open(server.addr);
    let env: Value =
        serde_json::from_slice(&request(&mut conn, "GET", "/bare/x?q=1").body).unwrap();
    // Exactly what axum handed over: no feature turns this into a mount.
    assert_eq!(env["SCRIPT_NAME"], "");
    assert_eq!(env["PATH_INFO"], "/x");
    assert!(env.get("REMOTE_ADDR").is_none_or(Value::is_null));
    assert!(support::log_line_with(&["without tower_wsgi::mount::AxumMount"]).is_some());
}
