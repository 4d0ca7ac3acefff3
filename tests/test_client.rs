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

// ----- werkzeug.test.Client's level: forms, cookies, redirects, latin-1 -----

mod werkzeug_level {
    use super::*;
    use tower_wsgi::app_fn;

    /// Echoes what a redirect or cookie test needs to see.
    fn site(mut environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
        let path = environ.path_info().to_owned();
        let redirect = |status: &str, location: &str| -> Result<AppBody, BoxError> {
            start_response.start(status, [("Location", location), ("Content-Length", "0")])?;
            Ok(AppBody::empty())
        };
        match path.as_str() {
            "/login" => {
                start_response.start(
                    "302 Found",
                    [
                        ("Location", "/account/home"),
                        ("Set-Cookie", "session=s1; Path=/; HttpOnly"),
                        ("Set-Cookie", "scoped=1; Path=/account"),
                        ("Set-Cookie", "gone=1; Max-Age=0"),
                        ("Content-Length", "0"),
                    ],
                )?;
                Ok(AppBody::empty())
            }
            "/logout" => {
                start_response.start(
                    "200 OK",
                    [
                        (
                            "Set-Cookie",
                            "session=; Expires=Thu, 01-Jan-1970 00:00:00 GMT; Path=/",
                        ),
                        ("Content-Length", "0"),
                    ],
                )?;
                Ok(AppBody::empty())
            }
            "/r301" => redirect("301 Moved Permanently", "/echo?from=301"),
            "/r303" => redirect("303 See Other", "echo"),
            "/r307" => redirect("307 Temporary Redirect", "/echo"),
            "/r308" => redirect("308 Permanent Redirect", "http://other.test/echo"),
            "/loop" => redirect("302 Found", "/loop"),
            p if p.starts_with("/chain/") => {
                let n: u32 = p["/chain/".len()..].parse()?;
                if n == 0 {
                    return redirect("302 Found", "/echo");
                }
                redirect("302 Found", &format!("/chain/{}", n - 1))
            }
            _ => {
                let body = environ.input().read_all()?;
                let text = format!(
                    "{} {}?{} host={} cookie={} type={} body={}",
                    environ.request_method(),
                    environ.path_info(),
                    environ.query_string(),
                    environ.get("HTTP_HOST").unwrap_or(""),
                    environ.get("HTTP_COOKIE").unwrap_or(""),
                    environ.content_type().unwrap_or(""),
                    String::from_utf8_lossy(&body),
                );
                start_response.start("200 OK", [("Content-Type", "text/plain")])?;
                Ok(text.into())
            }
        }
    }

    #[test]
    fn cookies_are_stored_sent_back_by_path_and_expired() {
        let client = TestClient::new(site);
        let response = client.get("/login").send_blocking();
        assert_eq!(response.status(), 302);
        assert_eq!(client.cookie("session").as_deref(), Some("s1"));
        assert_eq!(client.cookie("gone"), None);
        let at_root = client.get("/echo").send_blocking().text();
        assert!(
            at_root.ends_with("cookie=session=s1 type= body="),
            "{at_root}"
        );
        let below = client.get("/account/x").send_blocking().text();
        assert!(below.contains("cookie=scoped=1; session=s1 "), "{below}");
        // A cookie for another host is not sent.
        let other = client
            .get("/echo")
            .header("Host", "other.test")
            .send_blocking();
        assert!(other.text().contains("cookie= "), "{}", other.text());
        client.get("/logout").send_blocking();
        assert_eq!(client.cookie("session"), None);
        client.set_cookie("localhost", "manual", "m");
        assert!(client
            .get("/echo")
            .send_blocking()
            .text()
            .contains("manual=m"));
        client.delete_cookie("manual");
        assert_eq!(client.cookie("manual"), None);
        // Without a jar nothing is kept.
        let plain = TestClient::new(site).without_cookies();
        plain.get("/login").send_blocking();
        assert_eq!(plain.cookie("session"), None);
    }

    #[test]
    fn redirects_change_the_method_as_werkzeug_does() {
        let client = TestClient::new(site).follow_redirects(true);
        let response = client.post("/r301").form([("a", "1")]).send_blocking();
        assert_eq!(
            response.text(),
            "GET /echo?from=301 host=localhost cookie= type= body="
        );
        assert_eq!(
            response.redirects(),
            [("/echo?from=301".to_owned(), StatusCode::MOVED_PERMANENTLY)]
        );
        // 303 with a relative Location; HEAD stays HEAD.
        let response = client.post("/r303").body("x").send_blocking();
        assert!(
            response.text().starts_with("GET /echo? "),
            "{}",
            response.text()
        );
        let head = client.head("/r303").send_blocking();
        assert_eq!((head.status(), head.body().len()), (StatusCode::OK, 0));
        // 307 and 308 keep the method, body and content type; 308 to another host.
        let response = client.put("/r307").form([("k", "v w")]).send_blocking();
        assert_eq!(
            response.text(),
            "PUT /echo? host=localhost cookie= type=application/x-www-form-urlencoded body=k=v+w"
        );
        let response = client.post("/r308").body("kept").send_blocking();
        assert_eq!(
            response.text(),
            "POST /echo? host=other.test cookie= type= body=kept"
        );
        // Off: the redirect itself comes back.
        let response = client.get("/r301").follow_redirects(false).send_blocking();
        assert_eq!(response.status(), 301);
        assert!(response.redirects().is_empty());
    }

    #[test]
    fn the_login_redirect_carries_the_cookie_it_set() {
        let client = TestClient::new(site).follow_redirects(true);
        let response = client.get("/login").send_blocking();
        assert_eq!(
            response.text(),
            "GET /account/home? host=localhost cookie=scoped=1; session=s1 type= body="
        );
    }

    #[test]
    fn redirect_loops_and_long_chains_fail_the_test() {
        let client = TestClient::new(site)
            .follow_redirects(true)
            .max_redirects(3);
        assert_eq!(client.get("/chain/2").send_blocking().redirects().len(), 3);
        let too_long = std::panic::catch_unwind(|| client.get("/chain/3").send_blocking());
        let message = support::panic_text(too_long.unwrap_err());
        assert!(message.contains("more than 3 redirects"), "{message}");
        let looped = std::panic::catch_unwind(|| client.get("/loop").send_blocking());
        let message = support::panic_text(looped.unwrap_err());
        assert!(message.contains("redirect loop detected"), "{message}");
    }

    #[test]
    fn latin1_header_accessors() {
        let client = TestClient::new(app_fn(|_environ, start_response| {
            start_response.start(
                "200 OK",
                [
                    ("X-A", "caf\u{e9}"),
                    ("X-A", "plain"),
                    ("Content-Length", "0"),
                ],
            )?;
            Ok(AppBody::empty())
        }));
        let response = client.get("/").send_blocking();
        assert_eq!(response.header_latin1("x-a").as_deref(), Some("caf\u{e9}"));
        assert_eq!(response.header_all_latin1("x-a"), ["caf\u{e9}", "plain"]);
        assert_eq!(response.headers()["x-a"].as_bytes(), b"caf\xe9");
    }

    #[cfg(feature = "multipart")]
    mod uploads {
        use super::*;
        use std::io::Read;
        use tower_wsgi::multipart::Multipart;
        use tower_wsgi::test_client::FormData;

        /// `cgi.FieldStorage`'s port: fields and files, streamed.
        fn upload(
            mut environ: Environ,
            start_response: StartResponse,
        ) -> Result<AppBody, BoxError> {
            let mut form = Multipart::from_environ(&mut environ)?;
            let mut report = Vec::new();
            while let Some(mut field) = form.next_field()? {
                let name = field.name().unwrap_or("").to_owned();
                let file_name = field.file_name().map(str::to_owned);
                let content_type = field.content_type().map(str::to_owned);
                let mut data = Vec::new();
                field.read_to_end(&mut data)?;
                let sum: u64 = data.iter().map(|&b| u64::from(b)).sum();
                report.push(format!(
                    "{name} {file_name:?} {content_type:?} {} {sum}",
                    data.len()
                ));
            }
            start_response.start("200 OK", [("Content-Type", "text/plain")])?;
            Ok(report.join("\n").into())
        }

        fn big_file() -> Vec<u8> {
            (0..300_000u32).map(|i| (i % 251) as u8).collect()
        }

        fn expected_upload_report() -> String {
            let big = big_file();
            let sum: u64 = big.iter().map(|&b| u64::from(b)).sum();
            format!(
            "title None None {} {}\nupload Some(\"data.bin\") Some(\"application/octet-stream\") {} {sum}",
            "caf\u{e9} au".len(),
            "caf\u{e9} au".bytes().map(u64::from).sum::<u64>(),
            big.len()
        )
        }

        #[test]
        fn a_multipart_upload_through_the_test_client() {
            let form = FormData::new().text("title", "caf\u{e9} au").file(
                "upload",
                "data.bin",
                "application/octet-stream",
                big_file(),
            );
            let response = TestClient::new(upload)
                .post("/")
                .multipart(form)
                .send_blocking();
            assert_eq!(response.status(), 200);
            assert_eq!(response.text(), expected_upload_report());
        }

        #[test]
        fn a_multipart_upload_over_a_socket_chunked_and_with_a_limit() {
            let server = support::serve(Builder::new().max_request_body(200_000).build(upload));
            let form = FormData::new().text("title", "caf\u{e9} au").file(
                "upload",
                "data.bin",
                "application/octet-stream",
                big_file(),
            );
            let body = form.to_bytes();
            // Chunked, in odd pieces, so that parts straddle frames.
            let mut request = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
            form.content_type()
        )
            .into_bytes();
            for piece in body.chunks(7_777) {
                request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                request.extend_from_slice(piece);
                request.extend_from_slice(b"\r\n");
            }
            request.extend_from_slice(b"0\r\n\r\n");
            // Over the limit: the upload fails before the response started, so 413.
            let mut conn = support::Conn::open(server.addr);
            conn.send(&request);
            assert_eq!(conn.read_response(false).status, 413);

            let server = support::serve(WsgiService::new(upload));
            let mut conn = support::Conn::open(server.addr);
            conn.send(&request);
            let response = conn.read_response(false);
            assert_eq!(response.status, 200);
            assert_eq!(response.body_str(), expected_upload_report());
            // Not multipart: an error the application turns into a 500.
            let mut conn = support::Conn::open(server.addr);
            conn.send(&support::post(
                "/",
                "a=1",
                "Content-Type: application/x-www-form-urlencoded\r\n",
            ));
            assert_eq!(conn.read_response(false).status, 500);
        }
    }
}
