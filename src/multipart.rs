//! `multipart/form-data` uploads read from the blocking `wsgi.input`: the
//! port of Python's `cgi.FieldStorage` for file uploads (cargo feature
//! `multipart`).
//!
//! [`Multipart`] takes the environ's `wsgi.input` and hands out its parts
//! one [`Field`] at a time, streaming: a field is read in chunks as the
//! client sends it ([`Field::chunk`], or [`Read`]), or whole
//! ([`Field::bytes`], [`Field::text`]). The parsing is
//! [multer](https://docs.rs/multer)'s, run on the application's thread
//! over [`Input::into_body`](crate::environ::Input::into_body), so nothing is
//! buffered beyond one frame and no extra thread is used. The service's
//! body limit ([`Builder::max_request_body`](crate::Builder::max_request_body))
//! still applies: an upload past it fails the read, and an application that
//! gives up on it before starting its response is answered 413.
//!
//! ```
//! use std::io::Read;
//! use tower_wsgi::multipart::Multipart;
//! use tower_wsgi::{AppBody, BoxError, Environ, StartResponse};
//!
//! // form = cgi.FieldStorage(fp=environ["wsgi.input"], environ=environ)
//! // upload = form["upload"]
//! // data = upload.file.read()
//! fn upload(mut environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
//!     let mut form = Multipart::from_environ(&mut environ)?;
//!     let mut report = String::new();
//!     while let Some(mut field) = form.next_field()? {
//!         let name = field.name().unwrap_or("").to_owned();
//!         match field.file_name().map(str::to_owned) {
//!             Some(file_name) => {
//!                 let mut data = Vec::new();
//!                 field.read_to_end(&mut data)?; // streamed, chunk by chunk
//!                 report += &format!("{name}: file {file_name}, {} bytes\n", data.len());
//!             }
//!             None => report += &format!("{name} = {}\n", field.text()?),
//!         }
//!     }
//!     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
//!     Ok(report.into())
//! }
//!
//! use tower_wsgi::test_client::{FormData, TestClient};
//!
//! let form = FormData::new()
//!     .text("title", "notes")
//!     .file("upload", "notes.txt", "text/plain", "hello");
//! let response = TestClient::new(upload).post("/").multipart(form).send_blocking();
//! assert_eq!(response.text(), "title = notes\nupload: file notes.txt, 5 bytes\n");
//! ```

use std::fmt;
use std::io::{self, Read};

use bytes::Bytes;
use http::HeaderMap;

use crate::environ::block_on;
use crate::environ::Environ;

pub use multer::{Constraints, Error, SizeLimit};

/// The parts of a `multipart/form-data` request body, read from
/// `wsgi.input`; see the [module docs](crate::multipart).
pub struct Multipart {
    inner: multer::Multipart<'static>,
}

impl Multipart {
    /// Takes `wsgi.input` out of `environ` (leaving it empty) and reads it
    /// as `multipart/form-data` with the boundary of `CONTENT_TYPE`.
    ///
    /// # ErrorStream
    ///
    /// If `CONTENT_TYPE` is missing, not `multipart/form-data`, or has no
    /// boundary.
    pub fn from_environ(environ: &mut Environ) -> Result<Self, Error> {
        Self::from_environ_with_constraints(environ, multer::Constraints::new())
    }

    /// [`from_environ`](Multipart::from_environ) with multer's
    /// [`Constraints`]: allowed field names, and size limits
    /// ([`SizeLimit`]) per field and for the whole stream.
    ///
    /// ```
    /// use tower_wsgi::multipart::{Constraints, Multipart, SizeLimit};
    /// use tower_wsgi::test_client::{FormData, TestClient};
    /// use tower_wsgi::app_fn;
    ///
    /// let client = TestClient::new(app_fn(|mut environ, start_response| {
    ///     let limits = Constraints::new().size_limit(SizeLimit::new().per_field(4));
    ///     let mut form = Multipart::from_environ_with_constraints(&mut environ, limits)?;
    ///     let outcome = match form.next_field()?.map(|field| field.bytes()) {
    ///         Some(Err(error)) => format!("refused: {error}"),
    ///         other => format!("{other:?}"),
    ///     };
    ///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
    ///     Ok(outcome.into())
    /// }));
    /// let form = FormData::new().text("note", "far too long");
    /// let response = client.post("/").multipart(form).send_blocking();
    /// assert!(response.text().starts_with("refused"), "{}", response.text());
    /// ```
    ///
    /// # ErrorStream
    ///
    /// As [`from_environ`](Multipart::from_environ).
    pub fn from_environ_with_constraints(
        environ: &mut Environ,
        constraints: multer::Constraints,
    ) -> Result<Self, Error> {
        let content_type = environ.content_type().unwrap_or("");
        let boundary = multer::parse_boundary(content_type)?;
        let body = http_body_util::BodyDataStream::new(environ.take_input().into_body());
        Ok(Self {
            inner: multer::Multipart::with_constraints(body, boundary, constraints),
        })
    }

    /// The next part, `None` after the last. The part before is skipped if
    /// it was not read to its end.
    ///
    /// # ErrorStream
    ///
    /// If the body is not well-formed multipart, breaks a constraint, or
    /// cannot be read (the client went away, the body limit).
    pub fn next_field(&mut self) -> Result<Option<Field>, Error> {
        Ok(block_on(self.inner.next_field())?.map(|inner| Field {
            inner,
            pending: Bytes::new(),
        }))
    }
}

impl fmt::Debug for Multipart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Multipart").finish_non_exhaustive()
    }
}

/// One part of a [`Multipart`] body: a form field or an uploaded file.
///
/// Read it in chunks ([`chunk`](Field::chunk), or [`Read`]) or whole
/// ([`bytes`](Field::bytes), [`text`](Field::text)).
pub struct Field {
    inner: multer::Field<'static>,
    /// Data taken from multer and not yet read (by [`Read`]).
    pending: Bytes,
}

impl Field {
    /// The field's name, from `Content-Disposition` (`cgi`'s `name`).
    pub fn name(&self) -> Option<&str> {
        self.inner.name()
    }

    /// The uploaded file's name, for a file field (`cgi`'s `filename`).
    pub fn file_name(&self) -> Option<&str> {
        self.inner.file_name()
    }

    /// The part's `Content-Type`, if it has one (`cgi`'s `type`).
    pub fn content_type(&self) -> Option<&str> {
        self.inner.content_type().map(AsRef::as_ref)
    }

    /// The part's headers.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The next chunk of the part's data, `None` at its end.
    ///
    /// # ErrorStream
    ///
    /// As [`Multipart::next_field`].
    pub fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        if !self.pending.is_empty() {
            return Ok(Some(std::mem::take(&mut self.pending)));
        }
        block_on(self.inner.chunk())
    }

    /// The whole of the part's data.
    ///
    /// # ErrorStream
    ///
    /// As [`Multipart::next_field`].
    pub fn bytes(mut self) -> Result<Bytes, Error> {
        let mut data = bytes::BytesMut::from(std::mem::take(&mut self.pending));
        while let Some(chunk) = self.chunk()? {
            data.extend_from_slice(&chunk);
        }
        Ok(data.freeze())
    }

    /// The part's data as text, decoded from UTF-8, invalid sequences
    /// replaced (as `cgi.FieldStorage` decodes form values).
    ///
    /// # ErrorStream
    ///
    /// As [`Multipart::next_field`].
    pub fn text(self) -> Result<String, Error> {
        let data = self.bytes()?;
        Ok(String::from_utf8_lossy(&data).into_owned())
    }
}

impl Read for Field {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // multer hands out chunks; what does not fit waits for the next read.
        while self.pending.is_empty() {
            match self.chunk() {
                Ok(Some(chunk)) => self.pending = chunk,
                Ok(None) => return Ok(0),
                Err(error) => return Err(io::Error::other(error)),
            }
        }
        let n = self.pending.len().min(buf.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        bytes::Buf::advance(&mut self.pending, n);
        Ok(n)
    }
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Field")
            .field("name", &self.name())
            .field("file_name", &self.file_name())
            .field("content_type", &self.content_type())
            .finish()
    }
}
