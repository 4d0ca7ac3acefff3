//! Legacy in front of legacy: an app wrapping an app (the WSGI middleware
//! idiom), and `Dispatcher` mounting apps by path prefix, over real connections.
#![deny(warnings)]
#![cfg(feature = "server")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tower_wsgi::middleware::Dispatcher;
use tower_wsgi::{app_fn, App, AppBody, BoxError, Builder, Environ, StartResponse, WsgiService};

/// An app that answers `name|SCRIPT_NAME|PATH_INFO|QUERY_STRING`.
fn show(name: &'static str) -> impl App {
    app_fn(move |environ, start_response| {
        let text = format!(
            "{name}|{}|{}|{}",
            environ.script_name(),
            environ.path_info(),
            environ.query_string()
        );
        // Non-ASCII path chars are latin-1: send their bytes back as they came.
        let bytes: Vec<u8> = text.chars().map(|c| c as u8).collect();
        start_response.start("200 OK", [("Content-Length", bytes.len().to_string())])?;
        Ok(bytes.into())
    })
}

fn body_of(server: &support::TestServer, target: &str) -> String {
    let resp = server.get(target);
    assert_eq!(resp.status, 200, "{target}");
    String::from_utf8_lossy(&resp.body).into_owned()
}

#[test]
fn longest_prefix_on_segment_boundaries() {
    let app = Dispatcher::new(show("default"))
        .mount("/api", show("api"))
        .mount("/api/v2", show("v2"))
        .mount("/static/", show("static"));
    let server = support::serve(WsgiService::new(app));
    for (target, expected) in [
        ("/api", "api|/api||"),
        ("/api/", "api|/api|/|"),
        ("/api/users?id=1", "api|/api|/users|id=1"),
        ("/apix", "default||/apix|"),
        ("/api/v2", "v2|/api/v2||"),
        ("/api/v2/x", "v2|/api/v2|/x|"),
        ("/api/v20", "api|/api|/v20|"),
        ("/api//x", "api|/api|//x|"),
        ("/static/app.css", "static|/static|/app.css|"),
        ("/", "default||/|"),
    ] {
        assert_eq!(body_of(&server, target), expected, "{target}");
    }
}

#[test]
fn dispatchers_nest_and_add_to_the_script_name() {
    let inner = Dispatcher::new(show("outer-default")).mount("/inner", show("inner"));
    let app = Dispatcher::new(show("default")).mount("/outer", inner);
    // Mounted under /base by the edge too: every level appends to SCRIPT_NAME.
    let server = support::serve(Builder::new().script_name("/base").build(app));
    for (target, expected) in [
        ("/base/outer/inner/x", "inner|/base/outer/inner|/x|"),
        ("/base/outer/inner", "inner|/base/outer/inner||"),
        ("/base/outer/innerx", "outer-default|/base/outer|/innerx|"),
        ("/base/outer", "outer-default|/base/outer||"),
        ("/base/other", "default|/base|/other|"),
    ] {
        assert_eq!(body_of(&server, target), expected, "{target}");
    }
}

#[test]
fn percent_encoded_prefixes_match_the_decoded_path() {
    let app = Dispatcher::new(show("default"))
        .mount("/café", show("cafe"))
        .mount("/a%20b", show("space"));
    let server = support::serve(WsgiService::new(app));
    for (target, expected) in [
        ("/caf%C3%A9/menu", "cafe|/café|/menu|"),
        ("/caf%c3%a9", "cafe|/café||"),
        ("/caf%C3%A9x", "default||/caféx|"),
        ("/a%20b/c", "space|/a b|/c|"),
        ("/a%20bc", "default||/a bc|"),
    ] {
        assert_eq!(body_of(&server, target), expected, "{target}");
    }
}

/// The WSGI idiom, ported: an app generic over the app it wraps. It rewrites
/// the environ, wraps `start_response` and wraps the body.
///
/// ```python
/// class Tagging:
///     def __init__(self, app): self.app = app
///     def __call__(self, environ, start_response):
///         environ["tagging.seen"] = "yes"
///         def sr(status, headers, exc_info=None):
///             headers.append(("X-Tagged", "1"))
///             return start_response(status, headers, exc_info)
///         body = self.app(environ, sr)
///         return ClosingIterator(itertools.chain(body, [b"+tag"]), ...)
/// ```
struct Tagging<A> {
    app: A,
    closes: Arc<AtomicUsize>,
}

impl<A: App> App for Tagging<A> {
    fn call(
        &self,
        mut environ: Environ,
        start_response: StartResponse,
    ) -> Result<AppBody, BoxError> {
        environ.insert("tagging.seen", "yes");
        let start_response = start_response.map_head(|_status, headers| {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case("content-length"));
            headers.push(("X-Tagged".into(), "1".into()));
        });
        let body = self.app.call(environ, start_response)?;
        let closes = self.closes.clone();
        Ok(
            AppBody::from_results(body.chain(std::iter::once(Ok("+tag".into())))).on_close(
                move || {
                    closes.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                },
            ),
        )
    }
}

#[test]
fn an_app_wrapping_an_app() {
    let closes = Arc::new(AtomicUsize::new(0));
    let counters = support::Counters::default();
    let inner_counters = counters.clone();
    let inner = app_fn(move |environ, start_response| {
        let seen = environ.get("tagging.seen").unwrap_or("no").to_owned();
        start_response.start("201 Created", [("Content-Length", "8"), ("X-Inner", "1")])?;
        Ok(inner_counters.track(format!("seen={seen}").into()))
    });
    let app = Tagging {
        app: inner,
        closes: closes.clone(),
    };
    // Mounted in a dispatcher too: wrapped apps are apps like any other.
    let server = support::serve(WsgiService::new(
        Dispatcher::new(show("default")).mount("/tagged", app),
    ));
    let resp = server.get("/tagged/x");
    assert_eq!(resp.status, 201);
    assert_eq!(resp.header("x-tagged"), Some("1"));
    assert_eq!(resp.header("x-inner"), Some("1"));
    assert_eq!(resp.body_str(), "seen=yes+tag");
    assert_eq!(counters.wait_closed(1), 1, "the inner body is closed");
    assert_eq!(
        closes.load(Ordering::SeqCst),
        1,
        "the outer body is closed once"
    );
    assert_eq!(body_of(&server, "/other"), "default||/other|");
}

#[test]
fn map_head_wrappers_nest_innermost_first() {
    let app = app_fn(|_environ, start_response| {
        let start_response = start_response
            .map_head(|status, headers| {
                // Runs second: sees what the inner wrapper did.
                let inner = headers.iter().any(|(n, _)| n == "X-Order");
                headers.push(("X-Outer-Saw-Inner".into(), inner.to_string()));
                *status = "202 Outer".into();
            })
            .map_head(|status, headers| {
                headers.push(("X-Order".into(), status.clone()));
            });
        start_response.start("200 OK", [("Content-Length", "0")])?;
        Ok(AppBody::empty())
    });
    let server = support::serve(WsgiService::new(app));
    let resp = server.get("/");
    assert_eq!((resp.status, resp.reason.as_str()), (202, "Outer"));
    assert_eq!(resp.header("x-order"), Some("200 OK"));
    assert_eq!(resp.header("x-outer-saw-inner"), Some("true"));
}
