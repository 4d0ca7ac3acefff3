//! The in-process `TestClient`: the full rule engine without a socket, in
//! async and blocking tests, and the same answers a real connection gets.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

use std::io::Read;
use std::net::SocketAddr;

use http::{Method, StatusCode, Version};
use tower_wsgi::environ::LocalAddr;
use tower_wsgi::test_client::{TestClient, TestResponse, DEFAULT_REMOTE_ADDR};
use tower_wsgi::{
    AppBody, BoxError, Builder, ConnectionPolicy, Environ, StartResponse, WsgiService,
};

/// A typed value a layer would put on the request.
#[derive(Clone)]
struct Tenant(&'static str);

fn app(mut environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    match environ.path_info() {
        "/length" => {
            start_response.start(
                "200 OK",
                [("Content-Type", "text/plain"), ("Content-Length", "5")],
            )?;
            Ok("hello".into())
        }
        "/stream" => {
            let write = start_response.start("200 OK", [("Content-Type", "text/plain")])?;
            write.write("written, ")?;
            Ok(AppBody::from_chunks(["then ", "iterated"]))
        }
        "/reason" => {
            start_response.start("404 NOT FOUND", [("Content-Length", "0")])?;
            Ok(AppBody::empty())
        }
        "/no-content" => {
            start_response.start("204 No Content", [("X-Kept", "yes")])?;
            Ok("dropped".into())
        }
        "/error" => Err("the application failed".into()),
        "/fail-midway" => {
            let write = start_response.start("200 OK", [("Content-Type", "text/plain")])?;
            write.write("partial")?;
            Ok(AppBody::new(FailingBody))
        }
        "/input" => {
            let mut data = String::new();
            environ.input().read_to_string(&mut data)?;
            let text = format!(
                "{} {:?} {} {}",
                environ.request_method(),
                environ.get("CONTENT_LENGTH"),
                environ.input_terminated(),
                data
            );
            start_response.start("200 OK", [("Content-Type", "text/plain")])?;
            Ok(text.into())
        }
        "/environ" => {
            let get = |key: &str| environ.get(key).unwrap_or("-").to_owned();
            let text = format!(
                "{} {} {} {} {} {} {} {}",
                get("REMOTE_ADDR"),
                get("REMOTE_PORT"),
                get("SERVER_NAME"),
                get("SERVER_PORT"),
                get("HTTP_HOST"),
                get("SERVER_PROTOCOL"),
                get("HTTP_X_TOKEN"),
                environ.extensions().get::<Tenant>().map_or("-", |t| t.0),
            );
            start_response.start("200 OK", [("Content-Type", "text/plain")])?;
            Ok(text.into())
        }
        _ => {
            start_response.start("404 Not Found", [("Content-Length", "0")])?;
            Ok(AppBody::empty())
        }
    }
}

struct FailingBody;

impl tower_wsgi::Iterable for FailingBody {
    fn next_chunk(&mut self) -> Option<Result<bytes::Bytes, BoxError>> {
        Some(Err("the body iterator failed".into()))
    }
}

#[tokio::test]
async fn status_reason_headers_and_body() {
    let client = TestClient::new(app);
    let response = client.get("/length").send().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.reason(), "OK");
    assert_eq!(response.header("content-length"), Some("5"));
    assert_eq!(response.header("content-type"), Some("text/plain"));
    assert!(response
        .header("server")
        .unwrap()
        .starts_with("tower-wsgi/"));
    assert!(response.header("date").is_some());
    assert_eq!(
        response.header("connection"),
        None,
        "it has a Content-Length"
    );
    assert_eq!(response.body().as_ref(), b"hello");

    let response = client.get("/reason").send().await;
    assert_eq!(
        response.status_line(),
        "404 NOT FOUND",
        "the app's reason phrase"
    );
}

#[tokio::test]
async fn no_content_length_means_connection_close_unless_configured() {
    let response = TestClient::new(app).get("/stream").send().await;
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(response.text(), "written, then iterated");

    let keep_alive = Builder::new()
        .connection_policy(ConnectionPolicy::KeepAliveChunked)
        .build(app);
    let response = TestClient::from_service(keep_alive)
        .get("/stream")
        .send()
        .await;
    assert_eq!(response.header("connection"), None);
    assert_eq!(response.text(), "written, then iterated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_and_204_carry_no_body() {
    let client = TestClient::new(app);
    let response = client.head("/length").send().await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("content-length"), Some("5"));
    assert!(response.body().is_empty());

    let response = client.get("/no-content").send().await;
    assert_eq!(response.status(), 204);
    assert_eq!(response.header("x-kept"), Some("yes"));
    assert_eq!(response.header("content-length"), None);
    assert!(response.body().is_empty());
}

#[tokio::test]
async fn application_errors_are_the_500_page_or_an_aborted_body() {
    let client = TestClient::new(app);
    let response = client.get("/error").send().await;
    assert_eq!(response.status_line(), "500 INTERNAL SERVER ERROR");
    assert!(response.text().contains("<h1>Internal Server Error</h1>"));
    assert_eq!(
        response.header("content-length"),
        Some(response.body().len().to_string().as_str())
    );
    assert!(response.body_error().is_none());

    let response = client.get("/fail-midway").send().await;
    assert_eq!(response.status(), 200, "the headers were already out");
    assert_eq!(response.text(), "partial");
    assert!(response.body_error().is_some(), "the client sees the cut");
}

#[tokio::test]
async fn request_bodies_reach_wsgi_input() {
    let client = TestClient::new(app);
    let response = client.post("/input?x=1").body("a=1&b=2").send().await;
    assert_eq!(response.text(), r#"POST Some("7") false a=1&b=2"#);

    let response = client.post("/input").send().await;
    assert_eq!(
        response.text(),
        r#"POST Some("0") false "#,
        "POST gets a Content-Length: 0"
    );

    let response = client
        .request(Method::PUT, "/input")
        .header("Transfer-Encoding", "chunked")
        .body("streamed")
        .send()
        .await;
    assert_eq!(response.text(), "PUT None true streamed");
}

#[test]
fn blocking_send_needs_no_runtime() {
    assert!(tokio::runtime::Handle::try_current().is_err());
    let client = TestClient::new(app);
    let response = client
        .post("/input")
        .body("no runtime here")
        .send_blocking();
    assert_eq!(response.text(), r#"POST Some("15") false no runtime here"#);
    assert_eq!(
        client.get("/stream").send_blocking().header("connection"),
        Some("close")
    );
}

#[test]
fn remote_address_and_extensions_reach_the_environ() {
    let client = TestClient::new(app);
    let response = client
        .get("/environ")
        .header("X-Token", "t1")
        .send_blocking();
    assert_eq!(
        response.text(),
        "127.0.0.1 0 localhost 80 localhost HTTP/1.1 t1 -"
    );
    assert_eq!(DEFAULT_REMOTE_ADDR.to_string(), "127.0.0.1:0");

    let remote: SocketAddr = "[2001:db8::1]:4711".parse().unwrap();
    let local: SocketAddr = "10.0.0.5:8080".parse().unwrap();
    let response = client
        .get("/environ")
        .remote_addr(remote)
        .extension(LocalAddr(local))
        .extension(Tenant("acme"))
        .header("Host", "app.example")
        .version(Version::HTTP_10)
        .send_blocking();
    assert_eq!(
        response.text(),
        "2001:db8::1 4711 10.0.0.5 8080 app.example HTTP/1.0 - acme"
    );
    assert_eq!(response.version(), Version::HTTP_10);

    let anonymous = TestClient::new(app).remote_addr(None);
    assert!(anonymous
        .get("/environ")
        .send_blocking()
        .text()
        .starts_with("- - "));
}

#[test]
fn passthrough_errors_come_through_to_the_test() {
    let service = Builder::new().passthrough_errors(true).build(app);
    let client = TestClient::from_service(service);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        client.get("/error").send_blocking()
    }));
    let message = support::panic_text(outcome.expect_err("the app's error should be raised"));
    assert!(message.contains("the application failed"), "{message}");
}

/// Status, reason, headers (but `Date`, and hyper's own `Transfer-Encoding`)
/// and body, for comparing with the wire.
fn summary(
    status: u16,
    reason: &str,
    headers: Vec<(String, String)>,
    body: &[u8],
) -> (u16, String, Vec<(String, String)>, Vec<u8>) {
    let mut headers: Vec<_> = headers
        .into_iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v))
        .filter(|(n, _)| n != "date" && n != "transfer-encoding")
        .collect();
    headers.sort();
    (status, reason.to_owned(), headers, body.to_vec())
}

fn summary_of(response: &TestResponse) -> (u16, String, Vec<(String, String)>, Vec<u8>) {
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    summary(
        response.status().as_u16(),
        response.reason(),
        headers,
        response.body(),
    )
}

#[test]
fn answers_match_a_real_connection() {
    let server = support::serve(WsgiService::new(app));
    let client = TestClient::new(app);
    for (method, path) in [
        ("GET", "/length"),
        ("HEAD", "/length"),
        ("GET", "/stream"),
        ("HEAD", "/stream"),
        ("GET", "/reason"),
        ("GET", "/no-content"),
        ("GET", "/error"),
        ("HEAD", "/error"),
        ("GET", "/missing"),
    ] {
        let mut conn = server.connect();
        conn.send(format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
        let wire = conn.read_response(method == "HEAD");
        let wire = summary(wire.status, &wire.reason, wire.headers, &wire.body);
        let method: Method = method.parse().unwrap();
        let in_process = summary_of(&client.request(method.clone(), path).send_blocking());
        assert_eq!(in_process, wire, "{method} {path}");
    }
}
