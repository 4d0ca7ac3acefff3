//! RULES.md 12 to 14 on the wire: the environ, wsgi.input, Expect:
//! 100-continue, and unread request bodies.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{serve, Conn};
use tower_wsgi::{app_fn, AppBody, Builder, Environ, WsgiService};

fn environ_json(environ: &Environ) -> AppBody {
    let mut map: BTreeMap<String, serde_json::Value> = environ
        .iter()
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect();
    map.insert(
        "wsgi.input_terminated".into(),
        environ.input_terminated().into(),
    );
    serde_json::to_vec(&map).unwrap().into()
}

fn environ_server(builder: Builder) -> support::TestServer {
    serve(builder.build(app_fn(|environ, start_response| {
        start_response.start("200 OK", [("Content-Type", "application/json")])?;
        Ok(environ_json(&environ))
    })))
}

fn environ_of(conn: &mut Conn, request: &str) -> serde_json::Value {
    conn.send(request.as_bytes());
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 200, "{request}");
    serde_json::from_slice(&resp.body).unwrap()
}

fn one(server: &support::TestServer, request: &str) -> serde_json::Value {
    environ_of(&mut server.connect(), request)
}

// ----- Rule 12: the environ -----

#[test]
fn rule12_cgi_keys_from_the_wire() {
    let server = environ_server(Builder::new());
    let env = one(
        &server,
        "POST /caf%C3%A9/%FF?q=%C3%A9&x=a+b HTTP/1.1\r\nHost: example.test:8080\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nX-Dup: 1\r\nX-Dup: 2\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
    );
    assert_eq!(env["REQUEST_METHOD"], "POST");
    assert_eq!(env["SCRIPT_NAME"], "");
    assert_eq!(
        env["PATH_INFO"], "/caf\u{c3}\u{a9}/\u{ff}",
        "percent-decoded bytes, one char each"
    );
    assert_eq!(env["QUERY_STRING"], "q=%C3%A9&x=a+b");
    assert_eq!(env["REQUEST_URI"], "/caf%C3%A9/%FF?q=%C3%A9&x=a+b");
    assert_eq!(env["RAW_URI"], env["REQUEST_URI"]);
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.1");
    assert_eq!(env["SERVER_NAME"], "127.0.0.1");
    assert_eq!(env["SERVER_PORT"], server.addr.port().to_string());
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
    assert!(env["REMOTE_PORT"].as_str().unwrap().parse::<u16>().is_ok());
    assert_eq!(env["CONTENT_TYPE"], "text/plain");
    assert_eq!(env["CONTENT_LENGTH"], "0");
    assert!(env.get("HTTP_CONTENT_TYPE").is_none() && env.get("HTTP_CONTENT_LENGTH").is_none());
    assert_eq!(env["HTTP_HOST"], "example.test:8080");
    assert_eq!(env["HTTP_X_DUP"], "1,2");
    assert_eq!(env["HTTP_COOKIE"], "a=1; b=2");
    assert_eq!(env["wsgi.url_scheme"], "http");
    assert_eq!(env["wsgi.input_terminated"], false);
}

#[test]
fn rule12_protocol_absolute_form_and_chunked() {
    let server = environ_server(Builder::new());
    let env = one(&server, "GET /x HTTP/1.0\r\n\r\n");
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.0");
    let env = one(
        &server,
        "GET http://other.example:9/env?a=1 HTTP/1.1\r\nHost: ignored\r\n\r\n",
    );
    assert_eq!(env["HTTP_HOST"], "other.example:9");
    assert_eq!(env["PATH_INFO"], "/env");
    assert_eq!(env["REQUEST_URI"], "http://other.example:9/env?a=1");
    let env = one(
        &server,
        "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(env["wsgi.input_terminated"], true);
    assert!(env.get("CONTENT_LENGTH").is_none());
}

#[test]
fn rule12_underscore_headers_dropped_by_default_kept_on_request() {
    let request = "GET / HTTP/1.1\r\nHost: t\r\nX-User: real\r\nX_User: spoofed\r\n\r\n";
    let env = one(&environ_server(Builder::new()), request);
    assert_eq!(env["HTTP_X_USER"], "real");
    let env = one(
        &environ_server(Builder::new().keep_underscore_headers(true)),
        request,
    );
    let merged = env["HTTP_X_USER"].as_str().unwrap();
    assert!(
        merged.contains("real") && merged.contains("spoofed"),
        "{merged}"
    );
}

#[test]
fn rule12_non_ascii_header_bytes_are_latin1() {
    let server = environ_server(Builder::new());
    let mut conn = server.connect();
    conn.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Name: caf\xc3\xa9\r\n\r\n");
    let env: serde_json::Value = serde_json::from_slice(&conn.read_response(false).body).unwrap();
    assert_eq!(env["HTTP_X_NAME"], "caf\u{c3}\u{a9}");
}

#[test]
fn rule15_configured_script_name() {
    let server = environ_server(Builder::new().script_name("/app/"));
    for (target, path_info) in [
        ("/app", ""),
        ("/app/", "/"),
        ("/app/x/y?z=1", "/x/y"),
        ("/app//x", "//x"),
    ] {
        let env = one(
            &server,
            &format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n"),
        );
        assert_eq!(
            (env["SCRIPT_NAME"].as_str(), env["PATH_INFO"].as_str()),
            (Some("/app"), Some(path_info)),
            "{target}"
        );
    }
    assert_eq!(server.get("/appx").status, 404);
    assert_eq!(server.get("/").status, 404);
}

#[test]
fn rule15_non_ascii_script_name_matches_the_decoded_path() {
    // The prefix is compared with the percent-decoded path, one char per
    // byte: given raw or percent-encoded, it names the same mount.
    for prefix in ["/caf\u{e9}", "/caf%C3%A9"] {
        let server = environ_server(Builder::new().script_name(prefix));
        let env = one(&server, "GET /caf%C3%A9/menu HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(
            (env["SCRIPT_NAME"].as_str(), env["PATH_INFO"].as_str()),
            (Some("/caf\u{c3}\u{a9}"), Some("/menu")),
            "{prefix}"
        );
        assert_eq!(server.get("/cafe/menu").status, 404, "{prefix}");
    }
}

#[test]
fn rule12_a_request_sees_only_its_own_connection_and_extensions() {
    // The server reuses a finished request's extensions for the next request
    // on its worker (one worker here, so every request shares them): nothing
    // of the earlier request may show, neither what a layer inserted nor the
    // earlier connection's address.
    #[derive(Clone)]
    struct Marked;
    let app = WsgiService::new(app_fn(|environ, start_response| {
        let body = format!(
            "{} {}",
            environ.get("REMOTE_PORT").unwrap_or("-"),
            environ.extensions().get::<Marked>().is_some()
        );
        start_response.start("200 OK", [("Content-Length", body.len().to_string())])?;
        Ok(body.into())
    }));
    let service = tower::ServiceBuilder::new()
        .map_request(|mut request: http::Request<hyper::body::Incoming>| {
            if request.uri().path() == "/mark" {
                request.extensions_mut().insert(Marked);
            }
            request
        })
        .service(app);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = support::serve_with(runtime, service, |server| server);
    let mut conns: Vec<Conn> = (0..3).map(|_| server.connect()).collect();
    for round in 0..20 {
        for (i, conn) in conns.iter_mut().enumerate() {
            let mark = (round + i) % 2 == 0;
            let path = if mark { "/mark" } else { "/plain" };
            conn.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
            let port = conn.stream().local_addr().unwrap().port();
            assert_eq!(
                conn.read_response(false).body_str(),
                format!("{port} {mark}"),
                "round {round}, connection {i}"
            );
        }
    }
}

// ----- Rule 13: wsgi.input -----

fn input_server(builder: Builder) -> support::TestServer {
    serve(builder.build(app_fn(|mut environ, start_response| {
        let mode = support::param(&support::query(&environ), "mode", "all").to_owned();
        let input = environ.input();
        let data = match mode.as_str() {
            "none" => Vec::new(),
            "lines" => {
                let mut lines = Vec::new();
                for line in input.lines() {
                    lines.push(line?);
                }
                lines.join("|").into_bytes()
            }
            "readline" => input.readline()?,
            n if n.starts_with("n=") => input.read_n(n[2..].parse()?)?,
            _ => {
                let mut all = Vec::new();
                input.read_to_end(&mut all)?;
                all
            }
        };
        start_response.start("200 OK", [("Content-Length", data.len().to_string())])?;
        Ok(data.into())
    })))
}

#[test]
fn rule13_input_reads_content_length_and_chunked_bodies() {
    let server = input_server(Builder::new());
    let mut conn = server.connect();
    conn.send(&support::post("/?mode=all", "hello body", ""));
    assert_eq!(conn.read_response(false).body, b"hello body");
    conn.send(b"POST /?mode=lines HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\none\n\r\n6\r\ntwo\nth\r\n4\r\nree\n\r\n0\r\n\r\n");
    assert_eq!(conn.read_response(false).body, b"one|two|three");
    conn.send(&support::post("/?mode=n=3", "abcdef", ""));
    assert_eq!(conn.read_response(false).body, b"abc");
    conn.send(&support::post("/?mode=readline", "first\nsecond\n", ""));
    assert_eq!(conn.read_response(false).body, b"first\n");
}

#[test]
fn rule13_truncated_body_is_an_io_error() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let e = errors.clone();
    let server = serve(WsgiService::new(app_fn(
        move |mut environ, start_response| {
            let mut all = Vec::new();
            if let Err(error) = environ.input().read_to_end(&mut all) {
                e.lock().unwrap().push(error.kind());
                return Err(error.into());
            }
            start_response.start("200 OK", [("Content-Length", "2")])?;
            Ok("ok".into())
        },
    )));
    let mut conn = server.connect();
    conn.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly ten b");
    conn.stream().shutdown(std::net::Shutdown::Write).unwrap();
    let _ = conn.try_read_response(false);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while errors.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(*errors.lock().unwrap(), [std::io::ErrorKind::UnexpectedEof]);
}

#[test]
fn rule13_body_limit_answers_413() {
    let server = input_server(Builder::new().max_request_body(8));
    let resp = {
        let mut conn = server.connect();
        conn.send(&support::post("/?mode=all&tag=declared", "0123456789", ""));
        conn.read_response(false)
    };
    assert_eq!(resp.status, 413, "declared length over the limit");
    let mut conn = server.connect();
    conn.send(b"POST /?mode=all&tag=chunked413 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n6\r\n678901\r\n0\r\n\r\n");
    assert_eq!(
        conn.read_response(false).status,
        413,
        "chunked body growing past the limit"
    );
    assert!(support::log_line_with(&["tag=chunked413", "413"]).is_some());
    let mut conn = server.connect();
    conn.send(&support::post("/?mode=all", "01234567", ""));
    assert_eq!(
        conn.read_response(false).body,
        b"01234567",
        "at the limit is fine"
    );
}

#[test]
fn rule13_expect_continue_is_sent_once_and_only_when_the_app_reads() {
    let server = input_server(Builder::new());
    let mut conn = server.connect();
    conn.send(
        b"POST /?mode=all HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    let interim = conn.read_response(false);
    assert_eq!(interim.status, 100);
    conn.send(b"hello");
    let resp = conn.read_response(false);
    assert_eq!(
        (resp.status, resp.body.as_slice()),
        (200, &b"hello"[..]),
        "exactly one 100 before the answer"
    );

    let mut conn = server.connect();
    conn.send(b"POST /?mode=none HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let resp = conn.read_response(false);
    assert_eq!(resp.status, 200, "an app that never reads gets no 100 sent");
    assert!(conn.closes(), "the unread body cannot be the next request");
}

/// Long bodies are read ahead of the application (a few frames), which must
/// change neither the `100 Continue` rule nor the bound on memory.
#[test]
fn rule13_long_bodies_read_ahead_keep_continue_and_memory_bounds() {
    let server = input_server(Builder::new());
    let long = "x".repeat(1 << 20);
    let mut conn = server.connect();
    conn.send(
        format!(
            "POST /?mode=none HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            long.len()
        )
        .as_bytes(),
    );
    assert_eq!(
        conn.read_response(false).status,
        200,
        "no 100 for an app that never reads"
    );
    assert!(conn.closes());

    let mut conn = server.connect();
    conn.send(
        format!(
            "POST /?mode=all HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            long.len()
        )
        .as_bytes(),
    );
    assert_eq!(conn.read_response(false).status, 100);
    conn.send(long.as_bytes());
    let resp = conn.read_response(false);
    assert_eq!(resp.body.len(), long.len());

    // An app that stops reading holds the client back: what it has not read
    // stays in the socket buffers, not in the server's memory.
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let server = serve(WsgiService::new(app_fn(
        move |mut environ, start_response| {
            let mut first = [0; 1];
            environ.input().read_exact(&mut first)?;
            let _ = release_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(30));
            let mut rest = 0;
            let mut buf = vec![0; 64 * 1024];
            loop {
                match environ.input().read(&mut buf)? {
                    0 => break,
                    n => rest += n,
                }
            }
            let body = (rest + 1).to_string();
            start_response.start("200 OK", [("Content-Length", body.len().to_string())])?;
            Ok(body.into())
        },
    )));
    let total: usize = 256 << 20;
    let mut conn = server.connect();
    conn.send(format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {total}\r\n\r\n").as_bytes());
    let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut writer = conn.stream().try_clone().unwrap();
    let progress = written.clone();
    let upload = std::thread::spawn(move || {
        use std::io::Write;
        let block = vec![b'u'; 64 * 1024];
        while progress.load(std::sync::atomic::Ordering::SeqCst) < total {
            writer.write_all(&block).unwrap();
            progress.fetch_add(block.len(), std::sync::atomic::Ordering::SeqCst);
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    let stalled_at = written.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        stalled_at < 64 << 20,
        "the server took {stalled_at} bytes the app did not read"
    );
    release_tx.send(()).unwrap();
    upload.join().unwrap();
    let resp = conn.read_response(false);
    assert_eq!(resp.body_str(), total.to_string());
}

// ----- Rule 14: an unread body never becomes the next request -----

#[test]
fn rule14_unread_body_is_never_parsed_as_a_request() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let server = serve(WsgiService::new(app_fn(move |environ, start_response| {
        s.lock().unwrap().push(environ.path_info().to_owned());
        start_response.start("200 OK", [("Content-Length", "2")])?;
        Ok("ok".into())
    })));
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    for body_fully_sent in [true, false] {
        let mut conn = server.connect();
        let declared = if body_fully_sent {
            smuggled.len()
        } else {
            smuggled.len() + 1000
        };
        conn.send(
            format!(
                "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {declared}\r\n\r\n{smuggled}"
            )
            .as_bytes(),
        );
        assert_eq!(conn.read_response(false).status, 200);
        if body_fully_sent {
            // Drained and kept alive: the next request is a real one.
            conn.send(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n");
            assert_eq!(conn.read_response(false).status, 200);
        } else {
            assert!(conn.try_read_response(false).is_none());
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let seen = seen.lock().unwrap();
    assert!(!seen.iter().any(|p| p == "/smuggled"), "{seen:?}");
}
