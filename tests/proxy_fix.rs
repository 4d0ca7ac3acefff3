//! `ProxyFix` on real connections: what the application sees when clients and
//! proxies send `X-Forwarded-*` and `Forwarded`, including spoofing attempts.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

use serde_json::{json, Value};
use support::{log_line_with, TestServer};
use tower_wsgi::middleware::{ProxyFix, ProxyFixOrig};
use tower_wsgi::{AppBody, BoxError, Environ, StartResponse, WsgiService};

type EchoFn = fn(Environ, StartResponse) -> Result<AppBody, BoxError>;

/// Echoes what ProxyFix may change, and the originals it kept.
fn echo(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    let get = |key: &str| environ.get(key).map(str::to_owned);
    let orig = environ
        .extensions()
        .get::<ProxyFixOrig>()
        .cloned()
        .expect("ProxyFix always records the originals");
    let body = json!({
        "REMOTE_ADDR": get("REMOTE_ADDR"),
        "REMOTE_PORT": get("REMOTE_PORT"),
        "wsgi.url_scheme": get("wsgi.url_scheme"),
        "HTTP_HOST": get("HTTP_HOST"),
        "SERVER_NAME": get("SERVER_NAME"),
        "SERVER_PORT": get("SERVER_PORT"),
        "SCRIPT_NAME": get("SCRIPT_NAME"),
        "PATH_INFO": get("PATH_INFO"),
        "HTTP_X_FORWARDED_FOR": get("HTTP_X_FORWARDED_FOR"),
        "HTTP_FORWARDED": get("HTTP_FORWARDED"),
        "orig": {
            "REMOTE_ADDR": orig.remote_addr,
            "REMOTE_PORT": orig.remote_port,
            "wsgi.url_scheme": orig.url_scheme,
            "HTTP_HOST": orig.http_host,
            "SERVER_NAME": orig.server_name,
            "SERVER_PORT": orig.server_port,
            "SCRIPT_NAME": orig.script_name,
        },
    });
    start_response.start("200 OK", [("Content-Type", "application/json")])?;
    Ok(body.to_string().into())
}

fn serve(fix: ProxyFix<EchoFn>) -> TestServer {
    support::serve(WsgiService::new(fix))
}

fn proxy_fix() -> ProxyFix<EchoFn> {
    ProxyFix::new(echo as EchoFn)
}

/// The environ seen for `GET /page` with `headers`, and the client's port.
fn ask(server: &TestServer, headers: &[&str]) -> (Value, u16) {
    let mut conn = server.connect();
    let port = conn.stream().local_addr().unwrap().port();
    let mut request = String::from("GET /page HTTP/1.1\r\nHost: test\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    conn.send(request.as_bytes());
    let response = conn.read_response(false);
    assert_eq!(response.status, 200, "{}", response.body_str());
    (serde_json::from_slice(&response.body).unwrap(), port)
}

/// What the environ holds without any proxy header believed.
fn untouched(server: &TestServer, environ: &Value, client_port: u16) {
    assert_eq!(environ["REMOTE_ADDR"], "127.0.0.1");
    assert_eq!(environ["REMOTE_PORT"], client_port.to_string());
    assert_eq!(environ["wsgi.url_scheme"], "http");
    assert_eq!(environ["HTTP_HOST"], "test");
    assert_eq!(environ["SERVER_NAME"], "127.0.0.1");
    assert_eq!(environ["SERVER_PORT"], server.addr.port().to_string());
    assert_eq!(environ["SCRIPT_NAME"], "");
}

const EVERY_HEADER: &[&str] = &[
    "X-Forwarded-For: 203.0.113.1",
    "X-Forwarded-Proto: https",
    "X-Forwarded-Host: evil.example",
    "X-Forwarded-Port: 4443",
    "X-Forwarded-Prefix: /evil",
    "Forwarded: for=203.0.113.2;proto=https;host=evil.example",
];

#[test]
fn headers_are_ignored_while_their_count_is_zero() {
    let server = serve(proxy_fix());
    let (environ, port) = ask(&server, EVERY_HEADER);
    untouched(&server, &environ, port);
    // The headers themselves still reach the application, as in Werkzeug.
    assert_eq!(environ["HTTP_X_FORWARDED_FOR"], "203.0.113.1");
    assert_eq!(environ["orig"]["REMOTE_ADDR"], "127.0.0.1");
}

#[test]
fn values_a_client_prepends_to_x_forwarded_for_are_never_read() {
    // Two proxies: the outer one appends the client's real address, the
    // inner one the outer's. The client made up the first two entries.
    let server = serve(proxy_fix().x_for(2));
    let (environ, _) = ask(
        &server,
        &["X-Forwarded-For: 1.1.1.1, 6.6.6.6, 203.0.113.9, 10.0.0.2"],
    );
    assert_eq!(environ["REMOTE_ADDR"], "203.0.113.9");
    assert_eq!(
        environ["REMOTE_PORT"],
        Value::Null,
        "the proxy's port would be wrong"
    );
    assert_eq!(environ["orig"]["REMOTE_ADDR"], "127.0.0.1");
    assert_ne!(environ["orig"]["REMOTE_PORT"], Value::Null);
}

#[test]
fn a_forwarded_port_becomes_remote_port() {
    let server = serve(proxy_fix().x_for(1));
    let (environ, _) = ask(&server, &["X-Forwarded-For: [2001:db8::5]:4711"]);
    assert_eq!(environ["REMOTE_ADDR"], "2001:db8::5");
    assert_eq!(environ["REMOTE_PORT"], "4711");
}

#[test]
fn fewer_values_than_trusted_hops_leave_the_environ_alone() {
    let server = serve(proxy_fix().x_for(2).x_proto(2));
    let (environ, port) = ask(
        &server,
        &["X-Forwarded-For: 203.0.113.77", "X-Forwarded-Proto: https"],
    );
    untouched(&server, &environ, port);
    assert!(log_line_with(&["X-Forwarded-For", "fewer values than trusted hops"]).is_some());
}

#[test]
fn repeated_fields_are_one_list_and_underscore_twins_are_dropped() {
    let server = serve(proxy_fix().x_for(2));
    // The client's own line, then one line from each proxy; the environ joins
    // them with ",". `X_Forwarded_For` would merge into the same key if the
    // environ kept underscore names.
    let (environ, _) = ask(
        &server,
        &[
            "X-Forwarded-For: 6.6.6.6",
            "X-Forwarded-For: 203.0.113.10",
            "X_Forwarded_For: 7.7.7.7",
            "X-Forwarded-For: 10.0.0.2",
        ],
    );
    assert_eq!(
        environ["HTTP_X_FORWARDED_FOR"],
        "6.6.6.6,203.0.113.10,10.0.0.2"
    );
    assert_eq!(environ["REMOTE_ADDR"], "203.0.113.10");
}

#[test]
fn empty_list_elements_are_not_hops() {
    let server = serve(proxy_fix().x_for(2));
    let (environ, _) = ask(&server, &["X-Forwarded-For: 203.0.113.11, , 10.0.0.2,"]);
    assert_eq!(environ["REMOTE_ADDR"], "203.0.113.11");
}

#[test]
fn proto_host_port_and_prefix_rewrite_the_environ() {
    let server = serve(proxy_fix().x_proto(1).x_host(1).x_port(1).x_prefix(1));
    let (environ, port) = ask(
        &server,
        &[
            "X-Forwarded-Proto: http, HTTPS",
            "X-Forwarded-Host: evil.example, app.example:8443",
            "X-Forwarded-Port: 443",
            "X-Forwarded-Prefix: /public/",
        ],
    );
    assert_eq!(environ["wsgi.url_scheme"], "https");
    assert_eq!(environ["HTTP_HOST"], "app.example:443");
    assert_eq!(environ["SERVER_NAME"], "app.example");
    assert_eq!(environ["SERVER_PORT"], "443");
    assert_eq!(environ["SCRIPT_NAME"], "/public");
    assert_eq!(environ["PATH_INFO"], "/page");
    assert_eq!(environ["REMOTE_ADDR"], "127.0.0.1", "x_for is still 0");
    let orig = &environ["orig"];
    assert_eq!(orig["wsgi.url_scheme"], "http");
    assert_eq!(orig["HTTP_HOST"], "test");
    assert_eq!(orig["SERVER_NAME"], "127.0.0.1");
    assert_eq!(orig["SERVER_PORT"], server.addr.port().to_string());
    assert_eq!(orig["SCRIPT_NAME"], "");
    assert_eq!(orig["REMOTE_PORT"], port.to_string());
}

#[test]
fn malformed_values_are_ignored_with_a_log_line() {
    let server = serve(
        proxy_fix()
            .x_for(1)
            .x_proto(1)
            .x_host(1)
            .x_port(1)
            .x_prefix(1),
    );
    let (environ, port) = ask(
        &server,
        &[
            "X-Forwarded-For: 203.0.113.1, not-an-address",
            "X-Forwarded-Proto: javascript",
            "X-Forwarded-Host: evil.example/path",
            "X-Forwarded-Port: 80a",
            "X-Forwarded-Prefix: relative/prefix",
        ],
    );
    untouched(&server, &environ, port);
    for (header, value) in [
        ("X-Forwarded-For", "not-an-address"),
        ("X-Forwarded-Proto", "javascript"),
        ("X-Forwarded-Host", "evil.example/path"),
        ("X-Forwarded-Port", "80a"),
        ("X-Forwarded-Prefix", "relative/prefix"),
    ] {
        let line = log_line_with(&[header, value, "ignoring"]);
        assert!(line.is_some(), "no log line for {header}: {value}");
        assert!(line.unwrap().contains("WARN"));
    }
}

#[test]
fn more_malformed_values() {
    let server = serve(proxy_fix().x_host(1).x_port(1).x_prefix(1));
    for headers in [
        [
            "X-Forwarded-Host: user@evil.example",
            "X-Forwarded-Port: 65536",
            "X-Forwarded-Prefix: /a/../admin",
        ],
        [
            "X-Forwarded-Host: [::1",
            "X-Forwarded-Port: -1",
            "X-Forwarded-Prefix: /a?b",
        ],
        [
            "X-Forwarded-Host: a b",
            "X-Forwarded-Port: ",
            "X-Forwarded-Prefix: /%2e%2e",
        ],
    ] {
        let (environ, port) = ask(&server, &headers);
        untouched(&server, &environ, port);
    }
}

#[test]
fn forwarded_quoted_ipv6_with_port() {
    let server = serve(proxy_fix().forwarded(1));
    let (environ, _) = ask(
        &server,
        &[r#"Forwarded: For="[2001:db8:cafe::17]:4711"; Proto=HTTPS; host="app.example:8443""#],
    );
    assert_eq!(environ["REMOTE_ADDR"], "2001:db8:cafe::17");
    assert_eq!(environ["REMOTE_PORT"], "4711");
    assert_eq!(environ["wsgi.url_scheme"], "https");
    assert_eq!(environ["HTTP_HOST"], "app.example:8443");
    assert_eq!(environ["SERVER_NAME"], "app.example");
    assert_eq!(environ["SERVER_PORT"], "8443");
}

#[test]
fn forwarded_takes_only_the_trusted_element() {
    let server = serve(proxy_fix().forwarded(1));
    // The client sent a whole element of its own, with a quoted comma and
    // semicolon to confuse a naive split; the proxy appended its own line
    // without proto=, so the client's proto= must not be used.
    let (environ, port) = ask(
        &server,
        &[
            r#"Forwarded: for="6.6.6.6, for=7.7.7.7;proto=https";proto=https;host=evil.example"#,
            "Forwarded: for=192.0.2.60;by=203.0.113.43",
        ],
    );
    assert_eq!(environ["REMOTE_ADDR"], "192.0.2.60");
    assert_eq!(environ["REMOTE_PORT"], Value::Null);
    assert_eq!(environ["wsgi.url_scheme"], "http");
    assert_eq!(environ["HTTP_HOST"], "test");
    assert_ne!(environ["REMOTE_PORT"], port.to_string());

    // A quoted `,` and `;` inside the trusted element itself (an extension
    // parameter) must not split it.
    let (environ, _) = ask(
        &server,
        &[r#"Forwarded: for=6.6.6.6, for=192.0.2.66;note="a,b;c=d";proto=https"#],
    );
    assert_eq!(environ["REMOTE_ADDR"], "192.0.2.66");
    assert_eq!(environ["wsgi.url_scheme"], "https");
}

#[test]
fn forwarded_hidden_clients_leave_the_address_alone() {
    let server = serve(proxy_fix().forwarded(1));
    for element in [
        "for=unknown;proto=https",
        "for=_hidden.node;proto=https",
        r#"for="_x:_y";proto=https"#,
    ] {
        let (environ, port) = ask(&server, &[&format!("Forwarded: {element}")]);
        assert_eq!(environ["REMOTE_ADDR"], "127.0.0.1", "{element}");
        assert_eq!(environ["REMOTE_PORT"], port.to_string(), "{element}");
        assert_eq!(environ["wsgi.url_scheme"], "https", "{element}");
    }
    let (environ, _) = ask(&server, &[r#"Forwarded: for="192.0.2.61:_port""#]);
    assert_eq!(environ["REMOTE_ADDR"], "192.0.2.61");
    assert_eq!(environ["REMOTE_PORT"], Value::Null);
}

#[test]
fn malformed_forwarded_is_ignored_with_a_log_line() {
    let server = serve(proxy_fix().forwarded(1));
    for (headers, needle) in [
        // An unterminated quote from the client swallows the proxy's element.
        (
            vec![r#"Forwarded: for="6.6.6.6"#, "Forwarded: for=192.0.2.62"],
            "unterminated quoted string",
        ),
        (
            vec!["Forwarded: for=192.0.2.63;for=192.0.2.64"],
            "for=192.0.2.63;for=192.0.2.64",
        ),
        (
            vec!["Forwarded: for=[2001:db8::9]:80"],
            "for=[2001:db8::9]:80",
        ),
    ] {
        let (environ, _) = ask(&server, &headers);
        assert_eq!(environ["REMOTE_ADDR"], "127.0.0.1", "{headers:?}");
        assert_eq!(environ["wsgi.url_scheme"], "http", "{headers:?}");
        assert!(
            log_line_with(&["Forwarded", needle]).is_some(),
            "no log line for {headers:?}"
        );
    }
}

#[test]
fn forwarded_fields_are_checked_one_by_one() {
    let server = serve(proxy_fix().forwarded(1));
    let (environ, _) = ask(
        &server,
        &[r#"Forwarded: for=192.0.2.65;proto=gopher;host="a/b""#],
    );
    assert_eq!(environ["REMOTE_ADDR"], "192.0.2.65");
    assert_eq!(environ["wsgi.url_scheme"], "http");
    assert_eq!(environ["HTTP_HOST"], "test");
    assert!(log_line_with(&["Forwarded", "gopher", "http or https"]).is_some());
    assert!(log_line_with(&["Forwarded", "a/b", "a host"]).is_some());
}

#[test]
fn forwarded_wins_over_x_forwarded_field_by_field() {
    let server = serve(proxy_fix().forwarded(1).x_for(1).x_proto(1).x_host(1));
    let (environ, _) = ask(
        &server,
        &[
            "Forwarded: for=192.0.2.70;host=std.example",
            "X-Forwarded-For: 198.51.100.70",
            "X-Forwarded-Proto: https",
            "X-Forwarded-Host: legacy.example",
        ],
    );
    assert_eq!(environ["REMOTE_ADDR"], "192.0.2.70");
    assert_eq!(environ["HTTP_HOST"], "std.example");
    assert_eq!(
        environ["wsgi.url_scheme"], "https",
        "no proto= in the element"
    );

    let (environ, _) = ask(
        &server,
        &["Forwarded: for=unknown", "X-Forwarded-For: 198.51.100.71"],
    );
    assert_eq!(environ["REMOTE_ADDR"], "198.51.100.71");
}

#[test]
fn forwarded_with_fewer_elements_than_hops_is_ignored() {
    let server = serve(proxy_fix().forwarded(2));
    let (environ, port) = ask(&server, &["Forwarded: for=192.0.2.80;proto=https"]);
    untouched(&server, &environ, port);
    let (environ, _) = ask(
        &server,
        &["Forwarded: for=192.0.2.81;proto=https, for=10.0.0.3"],
    );
    assert_eq!(environ["REMOTE_ADDR"], "192.0.2.81");
    assert_eq!(environ["wsgi.url_scheme"], "https");
}

#[test]
fn prefix_replaces_a_mounted_script_name_as_werkzeug_does() {
    let service = tower_wsgi::Builder::new()
        .script_name("/app")
        .build(proxy_fix().x_prefix(1));
    let server = support::serve(service);
    let mut conn = server.connect();
    conn.send(b"GET /app/page HTTP/1.1\r\nHost: test\r\nX-Forwarded-Prefix: /public\r\n\r\n");
    let environ: Value = serde_json::from_slice(&conn.read_response(false).body).unwrap();
    assert_eq!(environ["SCRIPT_NAME"], "/public");
    assert_eq!(environ["PATH_INFO"], "/page");
    assert_eq!(environ["orig"]["SCRIPT_NAME"], "/app");
}
