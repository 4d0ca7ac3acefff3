//! PEP 3333's own examples, ported line for line, on one server.
//!
//! ```text
//! cargo run --example pep3333 [ADDR]        # default 127.0.0.1:8000
//! curl -i http://127.0.0.1:8000/simple      # simple_app
//! curl -i http://127.0.0.1:8000/class       # AppClass
//! curl -i http://127.0.0.1:8000/upper/      # HELLO WORLD (text/plain, upper-cased)
//! curl -i http://127.0.0.1:8000/upper/html  # hello world (text/html, untouched)
//! curl -i http://127.0.0.1:8000/errordoc/missing  # custom 404
//! curl -i http://127.0.0.1:8000/latin/      # the Latinator around the same app
//! ```
#![deny(warnings)]
// The tests include this file for its apps.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tower_wsgi::middleware::{from_fn, map_chunks, Dispatcher, MiddlewareApp};
use tower_wsgi::{
    App, AppBody, BoxError, Environ, Error, Iterable, StartResponse, Writer, WsgiService,
};

// HELLO_WORLD = b"Hello world!\n"
const HELLO_WORLD: &[u8] = b"Hello world!\n";

// def simple_app(environ, start_response):
//     """Simplest possible application object"""
//     status = '200 OK'
//     response_headers = [('Content-type', 'text/plain')]
//     start_response(status, response_headers)
//     return [HELLO_WORLD]
pub(crate) fn simple_app(
    _environ: Environ,
    start_response: StartResponse,
) -> Result<AppBody, BoxError> {
    let status = "200 OK";
    let response_headers = [("Content-type", "text/plain")];
    start_response.start(status, response_headers)?;
    Ok(AppBody::from_chunks([HELLO_WORLD]))
}

// class AppClass:
//     def __init__(self, environ, start_response):
//         self.environ = environ
//         self.start = start_response
//
//     def __iter__(self):
//         status = '200 OK'
//         response_headers = [('Content-type', 'text/plain')]
//         self.start(status, response_headers)
//         yield HELLO_WORLD
pub(crate) struct AppClass {
    environ: Environ,
    start: StartResponse,
    yielded: bool,
}

impl AppClass {
    pub(crate) fn new(environ: Environ, start_response: StartResponse) -> Self {
        Self {
            environ,
            start: start_response,
            yielded: false,
        }
    }
}

impl Iterable for AppClass {
    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
        if self.yielded {
            return None;
        }
        self.yielded = true;
        let status = "200 OK";
        let response_headers = [("Content-type", "text/plain")];
        if let Err(error) = self.start.start(status, response_headers) {
            return Some(Err(error.into()));
        }
        Some(Ok(Bytes::from_static(HELLO_WORLD)))
    }
}

/// Calling the class is calling the app: `AppClass(environ, start_response)`.
pub(crate) fn app_class(
    environ: Environ,
    start_response: StartResponse,
) -> Result<AppBody, BoxError> {
    Ok(AppBody::new(AppClass::new(environ, start_response)))
}

// An app that uses both body paths: `write()`, then an iterable.
//
// def hello_world(environ, start_response):
//     kind = "text/html" if environ["PATH_INFO"] == "/html" else "text/plain"
//     write = start_response("200 OK", [("Content-Type", kind)])
//     write(b"hello ")
//     return [b"world\n"]
pub(crate) fn hello_world(
    environ: Environ,
    start_response: StartResponse,
) -> Result<AppBody, BoxError> {
    let kind = if environ.path_info() == "/html" {
        "text/html"
    } else {
        "text/plain"
    };
    let write = start_response.start("200 OK", [("Content-Type", kind)])?;
    write.write("hello ")?;
    Ok(AppBody::from_chunks([&b"world\n"[..]]))
}

/// Upper-cases every chunk of a `text/plain` body, written or iterated, and
/// drops the `Content-Length` that would be wrong; other types go untouched.
pub(crate) fn upper(app: impl App) -> impl App {
    let shout = map_chunks(|_status, headers| {
        let text_plain = headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("content-type") && value == "text/plain"
        });
        if !text_plain {
            return None;
        }
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case("content-length"));
        Some(|chunk: Bytes| Bytes::from(chunk.to_ascii_uppercase()))
    });
    MiddlewareApp::new(shout, app)
}

// The error document: a 404 or 500 answer gets the site's own body.
//
// def errordoc(app):
//     def middleware(environ, start_response):
//         status, headers, body = run_wsgi_app(app, environ)
//         code = int(status[:3])
//         if code not in (404, 500):
//             start_response(status, headers)
//             return body
//         if hasattr(body, "close"):
//             body.close()
//         page = f"custom {code}\n".encode()
//         headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
//         headers.append(("Content-Length", str(len(page))))
//         start_response(status, headers)
//         return [page]
//     return middleware
pub(crate) fn errordoc(app: impl App) -> impl App {
    let middleware = from_fn(|environ, start_response, next| {
        let mut captured = next.call_captured(environ)?;
        let Some(code @ (404 | 500)) = captured.status_code() else {
            return captured.forward(&start_response);
        };
        captured.body.close()?;
        let page = format!("custom {code}\n");
        captured
            .headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("content-length"));
        captured
            .headers
            .push(("Content-Length".to_owned(), page.len().to_string()));
        start_response.start(&captured.status, captured.headers)?;
        Ok(AppBody::from(page))
    });
    MiddlewareApp::new(middleware, app)
}

pub(crate) fn missing(
    environ: Environ,
    start_response: StartResponse,
) -> Result<AppBody, BoxError> {
    let body = format!("{} is not here\n", environ.path_info());
    start_response.start(
        "404 Not Found",
        [
            ("Content-Type", "text/plain"),
            ("Content-Length", &body.len().to_string()),
        ],
    )?;
    Ok(body.into())
}

// ===== the Latinator, as PEP 3333 writes it =====

// from piglatin import piglatin
//
// The PEP imports it; this one moves a word's leading consonants to its end
// and adds "ay", byte by byte (non-letters pass through).
pub(crate) fn piglatin(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + data.len() / 2);
    let mut rest = data;
    while let Some(&first) = rest.first() {
        if !first.is_ascii_alphabetic() {
            out.push(first);
            rest = &rest[1..];
            continue;
        }
        let len = rest
            .iter()
            .position(|b| !b.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let (word, tail) = rest.split_at(len);
        let lead = word
            .iter()
            .position(|b| b"aeiouAEIOU".contains(b))
            .unwrap_or(word.len());
        out.extend_from_slice(&word[lead..]);
        out.extend_from_slice(&word[..lead]);
        out.extend_from_slice(b"ay");
        rest = tail;
    }
    out.into()
}

// class LatinIter:
//     """Transform iterated output to piglatin, if it's okay to do so
//
//     Note that the "okayness" can change until the application yields
//     its first non-empty bytestring, so 'transform_ok' has to be a mutable
//     truth value.
//     """
//     def __init__(self, result, transform_ok):
//         if hasattr(result, 'close'):
//             self.close = result.close
//         self._next = iter(result).__next__
//         self.transform_ok = transform_ok
//
//     def __iter__(self):
//         return self
//
//     def __next__(self):
//         data = self._next()
//         if self.transform_ok:
//             return piglatin(data)   # call must be byte-safe on Py3
//         else:
//             return data
pub(crate) struct LatinIter {
    result: AppBody,
    transform_ok: Arc<AtomicBool>,
}

impl Iterable for LatinIter {
    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
        let data = match self.result.next()? {
            Ok(data) => data,
            Err(error) => return Some(Err(error)),
        };
        if self.transform_ok.load(Ordering::SeqCst) {
            Some(Ok(piglatin(&data)))
        } else {
            Some(Ok(data))
        }
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.result.close()
    }
}

// class Latinator:
//     # by default, don't transform output
//     transform = False
//
//     def __init__(self, application):
//         self.application = application
//
//     def __call__(self, environ, start_response):
//         transform_ok = []
//
//         def start_latin(status, response_headers, exc_info=None):
//             # Reset ok flag, in case this is a repeat call
//             del transform_ok[:]
//             for name, value in response_headers:
//                 if name.lower() == 'content-type' and value == 'text/plain':
//                     transform_ok.append(True)
//                     # Strip content-length if present, else it'll be wrong
//                     response_headers = [(name, value)
//                         for name, value in response_headers
//                             if name.lower() != 'content-length'
//                     ]
//                     break
//
//             write = start_response(status, response_headers, exc_info)
//
//             if transform_ok:
//                 def write_latin(data):
//                     write(piglatin(data))   # call must be byte-safe on Py3
//                 return write_latin
//             else:
//                 return write
//
//         return LatinIter(self.application(environ, start_latin), transform_ok)
pub(crate) struct Latinator<A> {
    application: A,
}

impl<A: App> Latinator<A> {
    pub(crate) fn new(application: A) -> Self {
        Self { application }
    }
}

impl<A: App> App for Latinator<A> {
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
        let transform_ok = Arc::new(AtomicBool::new(false));

        let ok = transform_ok.clone();
        let start_latin = StartResponse::from_fn(
            move |status, mut response_headers, exc_info| -> Result<Writer, Error> {
                // Reset ok flag, in case this is a repeat call
                ok.store(false, Ordering::SeqCst);
                for (name, value) in &response_headers {
                    if name.eq_ignore_ascii_case("content-type") && value == "text/plain" {
                        ok.store(true, Ordering::SeqCst);
                        // Strip content-length if present, else it'll be wrong
                        response_headers
                            .retain(|(name, _)| !name.eq_ignore_ascii_case("content-length"));
                        break;
                    }
                }

                let write = start_response.call(status, response_headers, exc_info)?;

                if ok.load(Ordering::SeqCst) {
                    let write_latin = move |data: Bytes| write.write(piglatin(&data));
                    Ok(Writer::from_fn(write_latin))
                } else {
                    Ok(write)
                }
            },
        );

        let result = self.application.call(environ, start_latin)?;
        Ok(AppBody::new(LatinIter {
            result,
            transform_ok,
        }))
    }
}

/// Every example on one server, by path prefix.
pub(crate) fn app() -> impl App {
    Dispatcher::new(missing)
        .mount("/simple", simple_app)
        .mount("/class", app_class)
        .mount("/upper", upper(hello_world))
        .mount("/errordoc", errordoc(missing))
        .mount("/latin", Latinator::new(hello_world))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".to_owned());
    let server = tower_wsgi::server::Server::bind(addr.as_str()).await?;
    println!("listening on {}", server.local_addr()?);
    server.serve(WsgiService::new(app())).await
}
