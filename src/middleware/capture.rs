//! [`Captured`]: an app called with a `start_response` the middleware owns.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::app::App;
use crate::body::{AppBody, Iterable};
use crate::environ::Environ;
use crate::error::{BoxError, Error, ErrorKind};
use crate::poison::lock;
use crate::response::{StartResponse, Writer};

/// An app's whole answer, held by a middleware: status, headers and body,
/// to inspect, replace or [`forward`](Captured::forward).
///
/// [`Captured::call`] (or [`Next::call_captured`](super::Next::call_captured))
/// calls the app with a `start_response` of its own, as Werkzeug's
/// `run_wsgi_app` and Paste's capturing middleware do. Nothing reaches the
/// client until the middleware sends it on through the `start_response` it
/// was given, so every rule of the response applies once, to what finally
/// goes out.
///
/// `body` yields what the app passed to `write()`, then its iterable, in the
/// order the app produced them; it is not read in advance. Its `close()`
/// runs the app's exactly once: when the middleware closes or drops it, or,
/// once forwarded, when the response ends.
///
/// ```
/// use tower_wsgi::middleware::{from_fn, MiddlewareApp};
/// use tower_wsgi::{app_fn, AppBody};
///
/// // An error document: a 404 or 500 from the app gets the site's own page.
/// let errordoc = from_fn(|environ, start_response, next| {
///     let mut captured = next.call_captured(environ)?;
///     let Some(code @ (404 | 500)) = captured.status_code() else {
///         return captured.forward(&start_response);
///     };
///     captured.body.close()?;
///     let page = format!("custom {code}\n");
///     captured.headers.retain(|(name, _)| {
///         !name.eq_ignore_ascii_case("content-length") && !name.eq_ignore_ascii_case("content-type")
///     });
///     captured.headers.push(("Content-Type".into(), "text/plain".into()));
///     captured.headers.push(("Content-Length".into(), page.len().to_string()));
///     start_response.start(&captured.status, captured.headers)?;
///     Ok(AppBody::from(page))
/// });
/// let app = MiddlewareApp::new(errordoc, app_fn(|_environ, start_response| {
///     start_response.start("404 Not Found", [("Content-Type", "text/html")])?;
///     Ok("<h1>nope</h1>".into())
/// }));
/// # drop(app);
/// ```
pub struct Captured {
    /// The status line the app set, as it set it (`"404 Not Found"`).
    pub status: String,
    /// The headers the app set, in its order.
    pub headers: Vec<(String, String)>,
    /// The body: written chunks, then the iterable.
    pub body: AppBody,
}

impl Captured {
    /// Calls `app` with a `start_response` of its own and returns what it
    /// answered.
    ///
    /// As at the edge, `start_response` may be called lazily from the body:
    /// the body is then pulled until it is (the chunks pulled stay in the
    /// body). A body chunk before `start_response`, a second call without
    /// `exc_info`, or an `exc_info` call after a chunk was written is an
    /// [`Error`] of the same [`ErrorKind`] the edge would report.
    pub fn call<A: App + ?Sized>(app: &A, environ: Environ) -> Result<Self, BoxError> {
        Self::call_holding(app, environ, None)
    }

    /// [`Captured::call`], with `write()` failing once the chunks it holds
    /// (written, not yet pulled) would pass `write_limit` bytes.
    pub(crate) fn call_holding<A: App + ?Sized>(
        app: &A,
        environ: Environ,
        write_limit: Option<WriteLimit>,
    ) -> Result<Self, BoxError> {
        let state = Arc::new(Mutex::new(State {
            write_limit,
            ..State::default()
        }));
        let body = app.call(environ, capturing(state.clone()))?;
        let mut body = AppBody::new(CapturedBody {
            state: state.clone(),
            body,
            error: None,
            ended: false,
        });
        loop {
            let head = {
                let mut guard = lock(&state);
                // Once handed to the middleware the head cannot be replaced.
                guard.committed |= guard.head.is_some();
                guard.head.take()
            };
            if let Some((status, headers)) = head {
                return Ok(Self {
                    status,
                    headers,
                    body,
                });
            }
            match body.next() {
                Some(Ok(chunk)) if chunk.is_empty() => {}
                // start_response was called while this chunk was made: the
                // chunk goes back, first in line.
                Some(Ok(chunk)) if lock(&state).head.is_some() => {
                    let mut guard = lock(&state);
                    guard.held += chunk.len();
                    guard.written.push_front(chunk);
                }
                Some(Ok(_)) | None => {
                    return Err(Error::new(
                        ErrorKind::StartResponseNotCalled,
                        "the application produced a body without calling start_response",
                    )
                    .into())
                }
                Some(Err(error)) => return Err(error),
            }
        }
    }

    /// The status code, if the status line starts with three digits.
    pub fn status_code(&self) -> Option<u16> {
        let code = self.status.get(..3)?;
        if !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        code.parse().ok()
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Sends the answer on as it is: `start_response(status, headers)`, then
    /// the body to return.
    pub fn forward(self, start_response: &StartResponse) -> Result<AppBody, BoxError> {
        start_response.start(&self.status, self.headers)?;
        Ok(self.body)
    }
}

impl fmt::Debug for Captured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Captured")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &self.body)
            .finish()
    }
}

#[derive(Default)]
struct State {
    /// Set by `start_response`, taken by [`Captured::call`].
    head: Option<(String, Vec<(String, String)>)>,
    /// `start_response` was called (and not only with a head since taken).
    started: bool,
    /// A non-empty chunk was produced, or the head was handed on: the
    /// headers count as sent.
    committed: bool,
    /// Written chunks not yet yielded by the body.
    written: VecDeque<Bytes>,
    /// Their bytes.
    held: usize,
    write_limit: Option<WriteLimit>,
}

/// How much `write()` may hold before the body is pulled, and what the
/// error says past it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriteLimit {
    pub(crate) bytes: usize,
    pub(crate) why: &'static str,
}

impl State {
    fn pop_written(&mut self) -> Option<Bytes> {
        let chunk = self.written.pop_front()?;
        self.held -= chunk.len();
        Some(chunk)
    }

    fn push_written(&mut self, chunk: Bytes) {
        self.held += chunk.len();
        self.written.push_back(chunk);
    }
}

fn capturing(state: Arc<Mutex<State>>) -> StartResponse {
    StartResponse::from_fn(move |status, headers, exc_info| {
        let mut guard = lock(&state);
        match exc_info {
            Some(exc_info) if guard.committed => {
                return Err(Error::new(
                    ErrorKind::Reraised,
                    "start_response called with exc_info after the body started",
                )
                .with_source(exc_info));
            }
            None if guard.started => {
                return Err(Error::new(
                    ErrorKind::HeadersAlreadySet,
                    "start_response called a second time without exc_info",
                ));
            }
            _ => {}
        }
        guard.started = true;
        guard.head = Some((status.to_owned(), headers));
        drop(guard);
        let state = state.clone();
        Ok(Writer::from_fn(move |data| {
            if !data.is_empty() {
                let mut guard = lock(&state);
                if let Some(limit) = guard.write_limit {
                    if guard.held + data.len() > limit.bytes {
                        return Err(Error::new(ErrorKind::WouldBlock, limit.why));
                    }
                }
                guard.committed = true;
                guard.push_written(data);
            }
            Ok(())
        }))
    })
}

/// The captured body: written chunks first, in the order they came.
struct CapturedBody {
    state: Arc<Mutex<State>>,
    body: AppBody,
    /// The body's error, kept until the chunks written before it are out.
    error: Option<BoxError>,
    /// The iterable ended: it is not pulled again.
    ended: bool,
}

impl Iterable for CapturedBody {
    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
        if let Some(chunk) = lock(&self.state).pop_written() {
            return Some(Ok(chunk));
        }
        if let Some(error) = self.error.take() {
            return Some(Err(error));
        }
        if self.ended {
            return None;
        }
        let next = self.body.next();
        self.ended = !matches!(next, Some(Ok(_)));
        let mut guard = lock(&self.state);
        match next {
            // Chunks written while this one was made came before it.
            Some(Ok(chunk)) if !guard.written.is_empty() => {
                if !chunk.is_empty() {
                    guard.committed = true;
                    guard.push_written(chunk);
                }
                guard.pop_written().map(Ok)
            }
            Some(Ok(chunk)) => {
                if !chunk.is_empty() {
                    guard.committed = true;
                }
                Some(Ok(chunk))
            }
            None => guard.pop_written().map(Ok),
            Some(Err(error)) => match guard.pop_written() {
                Some(chunk) => {
                    self.error = Some(error);
                    Some(Ok(chunk))
                }
                None => Some(Err(error)),
            },
        }
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.body.close()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::app::app_fn;

    fn chunks(body: AppBody) -> Vec<Result<Bytes, String>> {
        body.map(|chunk| chunk.map_err(|e| e.to_string())).collect()
    }

    #[test]
    fn written_chunks_come_first_and_in_order_with_the_iterable() {
        let closes = Arc::new(AtomicUsize::new(0));
        let counted = closes.clone();
        let app = app_fn(move |_environ, start_response| {
            let write = start_response.start("200 OK", [("X-A", "1")])?;
            write.write("a")?;
            write.write("")?;
            write.write("b")?;
            let late = write;
            let mut step = 0;
            let counted = counted.clone();
            Ok(AppBody::from_results(std::iter::from_fn(move || {
                step += 1;
                match step {
                    // Written while the iterable made "d": it came first.
                    1 => late.write("c").map(|()| Bytes::from("d")).into(),
                    2 => Some(Ok(Bytes::from("e"))),
                    _ => None,
                }
            }))
            .on_close(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }))
        });
        let captured = Captured::call(&app, Environ::default()).unwrap();
        assert_eq!(captured.status_code(), Some(200));
        assert_eq!(captured.header("x-a"), Some("1"));
        let got: Vec<_> = chunks(captured.body);
        let want: Vec<Result<Bytes, String>> =
            ["a", "b", "c", "d", "e"].map(|c| Ok(Bytes::from(c))).into();
        assert_eq!(got, want);
        assert_eq!(closes.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_lazy_start_response_is_found_by_pulling_the_body() {
        let app = app_fn(|_environ, start_response| {
            let mut started = false;
            Ok(AppBody::from_results(std::iter::from_fn(move || {
                if started {
                    return None;
                }
                started = true;
                Some(
                    start_response
                        .start("201 Created", [("X-Lazy", "1")])
                        .map(|_| Bytes::from("made")),
                )
            })))
        });
        let captured = Captured::call(&app, Environ::default()).unwrap();
        assert_eq!(captured.status, "201 Created");
        assert_eq!(chunks(captured.body), [Ok(Bytes::from("made"))]);
    }

    #[test]
    fn misuse_is_the_error_the_edge_would_report() {
        let kind = |error: BoxError| error.downcast::<Error>().map(|e| e.kind()).ok();
        let no_start = app_fn(|_environ, _start_response| Ok("body".into()));
        let error = Captured::call(&no_start, Environ::default()).unwrap_err();
        assert_eq!(kind(error), Some(ErrorKind::StartResponseNotCalled));

        let twice = app_fn(|_environ, start_response| {
            start_response.start("200 OK", [("A", "1")])?;
            start_response.start("200 OK", [("A", "2")])?;
            Ok(AppBody::empty())
        });
        let error = Captured::call(&twice, Environ::default()).unwrap_err();
        assert_eq!(kind(error), Some(ErrorKind::HeadersAlreadySet));

        // exc_info before anything was written replaces the head; after, it
        // raises the app's error again.
        let replaced = app_fn(|_environ, start_response| {
            start_response.start("200 OK", [("A", "1")])?;
            start_response.start_with_exc_info("500 Oops", [("A", "2")], "boom")?;
            let write = start_response.start("200 OK", [("A", "3")]);
            assert!(write.is_err());
            let write = start_response.start_with_exc_info("502 Again", [("A", "4")], "x")?;
            write.write("sent")?;
            let error = start_response
                .start_with_exc_info("503 Late", [("A", "5")], "late")
                .unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Reraised);
            Ok(AppBody::empty())
        });
        let captured = Captured::call(&replaced, Environ::default()).unwrap();
        assert_eq!(captured.status, "502 Again");
        assert_eq!(chunks(captured.body), [Ok(Bytes::from("sent"))]);
    }

    #[test]
    fn an_error_after_written_chunks_comes_after_them() {
        let app = app_fn(|_environ, start_response| {
            let write = start_response.start("200 OK", Vec::<(String, String)>::new())?;
            let mut first = true;
            Ok(AppBody::from_results(std::iter::from_fn(move || {
                if !first {
                    return None;
                }
                first = false;
                Some(
                    write
                        .write("w")
                        .map_err(BoxError::from)
                        .and(Err::<Bytes, _>(BoxError::from("broken"))),
                )
            })))
        });
        let captured = Captured::call(&app, Environ::default()).unwrap();
        assert_eq!(
            chunks(captured.body),
            [Ok(Bytes::from("w")), Err("broken".to_owned())]
        );
    }
}
