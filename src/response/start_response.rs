//! `start_response` and the `write` callable it returns.

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::Bytes;

use super::responder::Responder;
use crate::error::{BoxError, Error};

/// WSGI's `start_response`: sets the status and headers, returns [`Writer`].
///
/// Nothing is sent when it is called: the headers go out with the first
/// non-empty chunk of the body (from [`Writer::write`] or the returned
/// iterable), or at its end. Until then
/// [`start_with_exc_info`](StartResponse::start_with_exc_info) may replace them.
///
/// Headers are checked here, as PEP 3333 asks: an invalid status or header,
/// or a hop-by-hop header, is an [`Error`] the application should propagate
/// with `?`; the response is then a 500 naming the cause in the log.
///
/// Cheap to clone: an application may call it lazily from its body iterator.
#[derive(Clone)]
pub struct StartResponse {
    sink: Sink,
    map_head: Option<Arc<MapHead>>,
}

/// Where a `start_response` call goes.
#[derive(Clone)]
enum Sink {
    /// The edge: the response's one set of rules.
    Responder(Arc<Responder>),
    /// A `start_response` a middleware owns.
    Fn(Arc<StartFn>),
}

/// A middleware's change to the status and headers, innermost first.
type MapHead = dyn Fn(&mut String, &mut Vec<(String, String)>) + Send + Sync;

/// A `start_response` written by a middleware.
type StartFn =
    dyn Fn(&str, Vec<(String, String)>, Option<BoxError>) -> Result<Writer, Error> + Send + Sync;

/// A `write` callable written by a middleware.
type WriteFn = dyn Fn(Bytes) -> Result<(), Error> + Send + Sync;

impl StartResponse {
    pub(crate) fn new(responder: Arc<Responder>) -> Self {
        Self {
            sink: Sink::Responder(responder),
            map_head: None,
        }
    }

    /// A `start_response` of the middleware's own: `f` receives the status,
    /// the headers and `exc_info`, and returns the `write` callable.
    ///
    /// This is the Python `def start_latin(status, headers, exc_info=None)`
    /// a middleware passes to the app it wraps: it usually edits the head,
    /// calls the `start_response` it was given (with
    /// [`call`](StartResponse::call), which forwards `exc_info`), and returns
    /// that [`Writer`] or one of its own ([`Writer::from_fn`]). Nothing is
    /// checked here: the rules apply once, where the response goes out.
    ///
    /// ```
    /// use tower_wsgi::{Environ, StartResponse, Writer};
    ///
    /// // def start_counting(status, headers, exc_info=None):
    /// //     write = start_response(status, headers, exc_info)
    /// //     return lambda data: write(data.replace(b"\r\n", b"\n"))
    /// fn unix_newlines(start_response: StartResponse) -> StartResponse {
    ///     StartResponse::from_fn(move |status, headers, exc_info| {
    ///         let write = start_response.call(status, headers, exc_info)?;
    ///         Ok(Writer::from_fn(move |data| {
    ///             let text = String::from_utf8_lossy(&data).replace("\r\n", "\n");
    ///             write.write(text)
    ///         }))
    ///     })
    /// }
    /// # drop(unix_newlines);
    /// ```
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn(&str, Vec<(String, String)>, Option<BoxError>) -> Result<Writer, Error>
            + Send
            + Sync
            + 'static,
    {
        Self {
            sink: Sink::Fn(Arc::new(f)),
            map_head: None,
        }
    }

    /// A `start_response` that lets `f` change the status and headers before
    /// they are set: what a WSGI middleware does by wrapping `start_response`.
    ///
    /// `f` runs on every call (with or without `exc_info`), before the
    /// changes of the `start_response` this one was made from, as nested
    /// Python wrappers would. The result is checked as usual.
    ///
    /// ```
    /// use tower_wsgi::{App, AppBody, BoxError, Environ, StartResponse};
    ///
    /// // def add_frame_options(app):
    /// //     def middleware(environ, start_response):
    /// //         def sr(status, headers, exc_info=None):
    /// //             headers.append(("X-Frame-Options", "DENY"))
    /// //             return start_response(status, headers, exc_info)
    /// //         return app(environ, sr)
    /// //     return middleware
    /// struct AddFrameOptions<A>(A);
    ///
    /// impl<A: App> App for AddFrameOptions<A> {
    ///     fn call(&self, environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    ///         let start_response = start_response.map_head(|_status, headers| {
    ///             headers.push(("X-Frame-Options".into(), "DENY".into()));
    ///         });
    ///         self.0.call(environ, start_response)
    ///     }
    /// }
    /// # fn app(_: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    /// #     start_response.start("200 OK", [("Content-Length", "0")])?;
    /// #     Ok(AppBody::empty())
    /// # }
    /// # let _ = tower_wsgi::WsgiService::new(AddFrameOptions(app));
    /// ```
    #[must_use]
    pub fn map_head<F>(&self, f: F) -> Self
    where
        F: Fn(&mut String, &mut Vec<(String, String)>) + Send + Sync + 'static,
    {
        let map_head: Arc<MapHead> = match self.map_head.clone() {
            None => Arc::new(f),
            Some(outer) => Arc::new(move |status: &mut String, headers: &mut Vec<_>| {
                f(status, headers);
                outer(status, headers);
            }),
        };
        Self {
            sink: self.sink.clone(),
            map_head: Some(map_head),
        }
    }

    fn start_inner<I>(
        &self,
        status: &str,
        headers: I,
        exc_info: Option<BoxError>,
    ) -> Result<Writer, Error>
    where
        I: IntoIterator,
        I::Item: Header,
    {
        let headers = headers.into_iter().map(Header::into_pair);
        if let (Sink::Responder(responder), None) = (&self.sink, &self.map_head) {
            responder.start(status, headers, exc_info)?;
            return Ok(Writer::to_responder(responder.clone()));
        }
        let mut status = status.to_owned();
        let mut headers: Vec<(String, String)> = headers
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        if let Some(map_head) = &self.map_head {
            map_head(&mut status, &mut headers);
        }
        match &self.sink {
            Sink::Responder(responder) => {
                responder.start(&status, headers, exc_info)?;
                Ok(Writer::to_responder(responder.clone()))
            }
            Sink::Fn(start) => start(&status, headers, exc_info),
        }
    }

    /// `start_response(status, headers)`: `status` is `"NNN reason"` or
    /// `"NNN"`, `headers` any iterable of `(name, value)` pairs of strings,
    /// owned or borrowed ([`Header`]).
    ///
    /// A second call is an error ([`ErrorKind::HeadersAlreadySet`](crate::ErrorKind)).
    ///
    /// ```
    /// # use tower_wsgi::{AppBody, BoxError, Environ, StartResponse};
    /// fn app(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    ///     let headers: Vec<(String, String)> = vec![("Content-Type".into(), "text/plain".into())];
    ///     start_response.start("200 OK", &headers)?; // borrowed: kept for later
    ///     Ok(format!("{} headers", headers.len()).into())
    /// }
    /// # let _ = tower_wsgi::WsgiService::new(app);
    /// ```
    pub fn start<S, I>(&self, status: S, headers: I) -> Result<Writer, Error>
    where
        S: AsRef<str>,
        I: IntoIterator,
        I::Item: Header,
    {
        self.start_inner(status.as_ref(), headers, None)
    }

    /// `start_response(status, headers, exc_info)`: the error page path.
    ///
    /// Before the headers went out it replaces the status and headers. After,
    /// it returns `exc_info` raised again
    /// ([`ErrorKind::Reraised`](crate::ErrorKind), with `exc_info` as its
    /// source): propagate it, and the crate aborts the response.
    pub fn start_with_exc_info<S, I>(
        &self,
        status: S,
        headers: I,
        exc_info: impl Into<BoxError>,
    ) -> Result<Writer, Error>
    where
        S: AsRef<str>,
        I: IntoIterator,
        I::Item: Header,
    {
        self.start_inner(status.as_ref(), headers, Some(exc_info.into()))
    }

    /// `start_response(status, headers, exc_info)` with `exc_info` optional:
    /// how a middleware's own `start_response` forwards the call it received.
    pub fn call<S, I, K, V>(
        &self,
        status: S,
        headers: I,
        exc_info: Option<BoxError>,
    ) -> Result<Writer, Error>
    where
        S: AsRef<str>,
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        self.start_inner(status.as_ref(), headers, exc_info)
    }
}

impl fmt::Debug for StartResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartResponse").finish_non_exhaustive()
    }
}

/// A response header as [`StartResponse::start`] takes it: a `(name, value)`
/// pair of strings (`&str`, `String`, anything `AsRef<str>`), or a
/// reference to one, so `&Vec<(String, String)>` and `&[(&str, &str)]`
/// work as header lists as well as arrays and vectors of pairs.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a response header",
    label = "expected `(name, value)` pairs of strings",
    note = "headers are `(name, value)` pairs, owned or borrowed: `[(\"Content-Type\", \"text/plain\")]`, `&Vec<(String, String)>`, `&[(&str, &str)]`"
)]
pub trait Header {
    /// The name's type.
    type Name: AsRef<str>;
    /// The value's type.
    type Value: AsRef<str>;

    /// The name and value.
    fn into_pair(self) -> (Self::Name, Self::Value);
}

impl<K: AsRef<str>, V: AsRef<str>> Header for (K, V) {
    type Name = K;
    type Value = V;

    fn into_pair(self) -> (K, V) {
        self
    }
}

impl<'a, K: AsRef<str>, V: AsRef<str>> Header for &'a (K, V) {
    type Name = &'a K;
    type Value = &'a V;

    fn into_pair(self) -> (&'a K, &'a V) {
        (&self.0, &self.1)
    }
}

/// WSGI's `write` callable, returned by [`StartResponse::start`].
///
/// Only `start_response` hands out one that reaches the client, so writing
/// before the status is set does not compile; a middleware wraps one with
/// [`Writer::from_fn`].
///
/// ```compile_fail
/// let writer = tower_wsgi::Writer { };
/// ```
///
/// [`write`](Writer::write) blocks while the client is slow (the response
/// buffer is bounded) and fails with
/// [`ErrorKind::ClientDisconnected`](crate::ErrorKind) once the client is gone.
/// It also implements [`io::Write`].
#[derive(Clone)]
pub struct Writer {
    sink: WriteSink,
}

#[derive(Clone)]
enum WriteSink {
    Responder(Arc<Responder>),
    Fn(Arc<WriteFn>),
}

impl Writer {
    fn to_responder(responder: Arc<Responder>) -> Self {
        Self {
            sink: WriteSink::Responder(responder),
        }
    }

    /// A `write` callable of the middleware's own, such as PEP 3333's
    /// `write_latin`: `f` receives every chunk the app writes, and usually
    /// passes a changed chunk to the [`Writer`] it got from `start_response`.
    ///
    /// ```
    /// use tower_wsgi::Writer;
    ///
    /// // def write_upper(data): write(data.upper())
    /// fn upper(write: Writer) -> Writer {
    ///     Writer::from_fn(move |data| write.write(data.to_ascii_uppercase()))
    /// }
    /// # drop(upper);
    /// ```
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn(Bytes) -> Result<(), Error> + Send + Sync + 'static,
    {
        Self {
            sink: WriteSink::Fn(Arc::new(f)),
        }
    }

    /// Sends `data` as the next part of the body.
    ///
    /// Empty data sends nothing (the headers stay open to `exc_info`).
    pub fn write(&self, data: impl Into<Bytes>) -> Result<(), Error> {
        match &self.sink {
            WriteSink::Responder(responder) => responder.write(data.into()),
            WriteSink::Fn(write) => write(data.into()),
        }
    }
}

impl io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Writer::write(self, Bytes::copy_from_slice(buf)).map_err(|e| {
            let kind = if e.is_client_disconnected() {
                io::ErrorKind::BrokenPipe
            } else {
                io::ErrorKind::Other
            };
            io::Error::new(kind, e)
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}
