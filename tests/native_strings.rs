//! Bytes where WSGI has bytes: the README's ported app and examples/hello.rs
//! answer a non-ASCII path with the bytes the client sent, as their Python
//! originals (`environ["PATH_INFO"].encode("latin-1")`) do.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

#[path = "../examples/hello.rs"]
mod hello;

use support::{serve, Framing};
use tower_wsgi::{AppBody, BoxError, Environ, StartResponse, WsgiService};

// The README's "A ported app", verbatim (the test below checks it still is).
fn readme_hello(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    start_response.start("200 OK", [("Content-Type", "text/plain")])?;
    Ok([&b"Hello, "[..], &environ.path_info_bytes()]
        .concat()
        .into())
}

#[test]
fn the_readme_app_is_the_one_tested_here() {
    let readme = include_str!("../README.md");
    let source = include_str!("native_strings.rs");
    let start = source.find("fn readme_hello").unwrap();
    let body = &source[source[start..].find('{').unwrap() + start..];
    let body = &body[..body.find("\n}\n").unwrap() + 2];
    // Compared without whitespace: rustfmt lays the copy out its own way.
    let squeeze = |text: &str| text.split_whitespace().collect::<String>();
    assert!(
        squeeze(readme).contains(&squeeze(body)),
        "README's ported app changed: {body}"
    );
}

#[test]
fn the_readme_app_echoes_the_path_bytes() {
    let server = serve(WsgiService::new(readme_hello));
    let resp = server.get("/caf%C3%A9");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"Hello, /caf\xc3\xa9");
    // A byte that is not UTF-8 comes back as it was sent.
    assert_eq!(server.get("/%FF").body, b"Hello, /\xff");
}

#[test]
fn hello_answers_as_its_python_original() {
    let server = serve(WsgiService::new(hello::hello));
    let resp = server.get("/caf%C3%A9");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("text/plain"));
    assert_eq!(resp.framing, Framing::Length);
    assert_eq!(resp.header("content-length"), Some("14"));
    assert_eq!(resp.body, b"Hello, caf\xc3\xa9!\n");
    assert_eq!(server.get("/ci").body, b"Hello, ci!\n");
    assert_eq!(server.get("/").body, b"Hello, World!\n");
}
