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
    responder: Arc<Responder>,
    map_head: Option<Arc<MapHead>>,
}

/// A middleware's change to the status and headers, innermost first.
type MapHead = dyn Fn(&mut String, &mut Vec<(String, String)>) + Send + Sync;

impl StartResponse {
    pub(crate) fn new(responder: Arc<Responder>) -> Self {
        Self {
            responder,
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
            responder: self.responder.clone(),
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
        match &self.map_head {
            None => self.responder.start(status, headers, exc_info)?,
            Some(map_head) => {
                let mut status = status.to_owned();
                let mut headers: Vec<(String, String)> = headers
                    .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
                    .collect();
                map_head(&mut status, &mut headers);
                self.responder.start(&status, headers, exc_info)?;
            }
        }
        Ok(Writer {
            responder: self.responder.clone(),
        })
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
/// Only `start_response` hands one out, so writing before the status is set
/// does not compile:
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
    responder: Arc<Responder>,
}

impl Writer {
    /// Sends `data` as the next part of the body.
    ///
    /// Empty data sends nothing (the headers stay open to `exc_info`).
    pub fn write(&self, data: impl Into<Bytes>) -> Result<(), Error> {
        self.responder.write(data.into())
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
