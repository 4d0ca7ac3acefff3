//! The objects a Python application sees: `start_response`, `write`,
//! `wsgi.input`, `wsgi.errors` and `wsgi.file_wrapper`. Each one is a thin
//! adapter over the crate's own type; the rules stay in the crate.

use std::ffi::CStr;
use std::io::{self, BufRead, Read, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, TryLockError};

use bytes::Bytes;
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

use super::error::{to_py, ExcInfo, PythonError};
use crate::environ::ErrorStream;
use crate::environ::Input;
use crate::poison::lock;
use crate::response::{StartResponse, Writer};

/// Chunks at least this long are shared with Python rather than copied:
/// from about here, copying costs more than sharing (a reference held, and
/// dropped later under the GIL), and the copy is memory the async worker
/// frees for another thread's allocator.
const SHARE_FROM: usize = 1024;

/// The bytes of a chunk the application produced; anything but `bytes` is
/// the application's error, named in the message.
pub(crate) fn chunk_bytes(obj: &Bound<'_, PyAny>, what: &str) -> Result<Bytes, PythonError> {
    match obj.cast::<PyBytes>() {
        Ok(bytes) if bytes.as_bytes().len() >= SHARE_FROM => {
            let shared: pyo3::pybacked::PyBackedBytes = bytes.clone().into();
            Ok(Bytes::from_owner(shared))
        }
        Ok(bytes) => Ok(Bytes::copy_from_slice(bytes.as_bytes())),
        Err(_) => Err(PythonError::message(format!(
            "{what} must be bytes, not {}: {}",
            type_name(obj),
            short_repr(obj)
        ))),
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

fn short_repr(obj: &Bound<'_, PyAny>) -> String {
    let text = obj
        .repr()
        .map_or_else(|_| "<unprintable>".to_owned(), |r| r.to_string());
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// The text of a `str`, borrowed from the object (CPython keeps its UTF-8
/// form), or the application's error naming `what` it got instead.
fn text_of(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<PyBackedStr> {
    match obj.cast::<PyString>() {
        Ok(s) => s.clone().try_into(),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{what} must be str, not {}: {}",
            type_name(obj),
            short_repr(obj)
        ))),
    }
}

fn headers_of(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(PyBackedStr, PyBackedStr)>> {
    let mut out = Vec::new();
    for item in headers.try_iter()? {
        let item = item?;
        let pair = item
            .cast::<PyTuple>()
            .ok()
            .filter(|t| t.len() == 2)
            .ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "a header must be a (name, value) tuple, not {}: {}",
                    type_name(&item),
                    short_repr(&item)
                ))
            })?;
        let name = text_of(&pair.get_item(0)?, "a header name")?;
        let value = text_of(&pair.get_item(1)?, "a header value")?;
        out.push((name, value));
    }
    Ok(out)
}

/// `exc_info`, a `(type, value, traceback)` tuple, as the exception it holds.
fn exc_info_err(exc_info: &Bound<'_, PyAny>) -> PyResult<PyErr> {
    let tuple = exc_info
        .cast::<PyTuple>()
        .map_err(|_| PyTypeError::new_err("exc_info must be a (type, value, traceback) tuple"))?;
    if tuple.len() != 3 {
        return Err(PyTypeError::new_err(
            "exc_info must be a (type, value, traceback) tuple",
        ));
    }
    let value = tuple.get_item(1)?;
    let traceback = tuple.get_item(2)?;
    if value.is_none() {
        return Err(PyTypeError::new_err("exc_info holds no exception"));
    }
    let value = if traceback.is_none() {
        value
    } else {
        value.call_method1("with_traceback", (traceback,))?
    };
    Ok(PyErr::from_value(value))
}

/// WSGI's `start_response(status, headers, exc_info=None)`.
#[pyclass(frozen, name = "StartResponse", module = "tower_wsgi")]
pub(crate) struct PyStartResponse {
    inner: StartResponse,
}

impl PyStartResponse {
    pub(crate) fn new(inner: StartResponse) -> Self {
        Self { inner }
    }
}

#[pymethods]
impl PyStartResponse {
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn __call__(
        &self,
        py: Python<'_>,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyWrite> {
        let status = text_of(status, "the status")?;
        let headers = headers_of(headers)?;
        let started = match exc_info.filter(|e| !e.is_none()) {
            None => self.inner.start(&status, headers),
            Some(exc_info) => {
                let err = exc_info_err(exc_info)?;
                self.inner
                    .start_with_exc_info(&status, headers, ExcInfo::new(py, err))
            }
        };
        match started {
            Ok(writer) => Ok(PyWrite { writer }),
            Err(error) => Err(to_py(py, error)),
        }
    }
}

/// The `write(data)` callable `start_response` returns.
#[pyclass(frozen, name = "Write", module = "tower_wsgi")]
pub(crate) struct PyWrite {
    writer: Writer,
}

#[pymethods]
impl PyWrite {
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let chunk =
            chunk_bytes(data, "write() data").map_err(|e| PyTypeError::new_err(e.to_string()))?;
        // Waits while the client is slow: without the GIL.
        let writer = &self.writer;
        py.detach(|| writer.write(chunk))
            .map_err(|error| to_py(py, error))
    }
}

/// The exception for a request body past the limit: an `OSError`, and also
/// Werkzeug's `RequestEntityTooLarge` where Werkzeug is installed, so that
/// Flask and Werkzeug apps answer 413 rather than their 500 page.
static BODY_TOO_LARGE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

const BODY_TOO_LARGE_CLASS: &CStr = cr#"
try:
    from werkzeug.exceptions import RequestEntityTooLarge as _Base
except ImportError:
    _Base = None
if _Base is None:
    class RequestBodyTooLarge(OSError):
        """The request body is over the server's limit (answered 413)."""
else:
    class RequestBodyTooLarge(OSError, _Base):
        """The request body is over the server's limit (answered 413)."""
        def __init__(self, *args):
            OSError.__init__(self, *args)
            _Base.__init__(self)
        def __str__(self):
            return OSError.__str__(self)
RequestBodyTooLarge.__module__ = "tower_wsgi"
"#;

fn io_to_py(py: Python<'_>, error: io::Error) -> PyErr {
    if error.kind() == io::ErrorKind::InvalidData {
        let class = BODY_TOO_LARGE.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
            let scope = PyDict::new(py);
            py.run(BODY_TOO_LARGE_CLASS, Some(&scope), None)?;
            Ok(scope
                .get_item("RequestBodyTooLarge")?
                .ok_or_else(|| PyOSError::new_err("RequestBodyTooLarge"))?
                .unbind())
        });
        return match class.and_then(|class| class.bind(py).call1((error.to_string(),))) {
            Ok(exception) => PyErr::from_value(exception),
            Err(err) => err,
        };
    }
    PyOSError::new_err(error.to_string())
}

/// `size` as Python's file methods read it: `None` or negative is "all".
fn limit(size: Option<i64>) -> Option<u64> {
    size.and_then(|n| u64::try_from(n).ok())
}

/// `wsgi.input`: the request body, streamed; every wait is without the GIL.
#[pyclass(frozen, name = "Input", module = "tower_wsgi")]
pub(crate) struct PyInput {
    input: Mutex<Input>,
}

impl PyInput {
    pub(crate) fn new(input: Input) -> Self {
        Self {
            input: Mutex::new(input),
        }
    }

    /// The first `len` bytes buffered, when `len` says they answer a read
    /// whole: taken with the GIL held, as no wait is needed.
    fn take_ready<'py>(
        &self,
        py: Python<'py>,
        len: impl FnOnce(&Input) -> Option<usize>,
    ) -> Option<Bound<'py, PyBytes>> {
        // Never wait for the lock with the GIL held: a thread that holds it
        // may be waiting, detached, for the GIL.
        let mut input = match self.input.try_lock() {
            Ok(input) => input,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        let len = len(&input)?;
        let bytes = PyBytes::new(py, &input.buffered()[..len]);
        input.consume(len);
        Some(bytes)
    }

    fn read_line<'py>(&self, py: Python<'py>, size: Option<u64>) -> PyResult<Bound<'py, PyBytes>> {
        let ready_size = size.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        if let Some(line) = self.take_ready(py, |input| input.ready_line_len(ready_size)) {
            return Ok(line);
        }
        let input = &self.input;
        let line = py
            .detach(|| {
                let mut input = lock(input);
                let mut line = Vec::new();
                match size {
                    None => input.read_until(b'\n', &mut line)?,
                    Some(n) => input.by_ref().take(n).read_until(b'\n', &mut line)?,
                };
                Ok(line)
            })
            .map_err(|error| io_to_py(py, error))?;
        Ok(PyBytes::new(py, &line))
    }
}

#[pymethods]
impl PyInput {
    #[pyo3(signature = (size = None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<i64>) -> PyResult<Bound<'py, PyBytes>> {
        let size = limit(size).map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        if let Some(data) = self.take_ready(py, |input| input.ready_len(size)) {
            return Ok(data);
        }
        let input = &self.input;
        let data = py
            .detach(|| {
                let mut input = lock(input);
                match size {
                    None => input.read_all(),
                    Some(n) => input.read_n(n),
                }
            })
            .map_err(|error| io_to_py(py, error))?;
        Ok(PyBytes::new(py, &data))
    }

    #[pyo3(signature = (size = None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<i64>) -> PyResult<Bound<'py, PyBytes>> {
        self.read_line(py, limit(size))
    }

    #[pyo3(signature = (hint = None))]
    fn readlines<'py>(
        &self,
        py: Python<'py>,
        hint: Option<i64>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let hint = limit(hint).filter(|&n| n > 0);
        let mut lines = Vec::new();
        let mut total = 0u64;
        loop {
            let line = self.read_line(py, None)?;
            if line.as_bytes().is_empty() {
                break;
            }
            total += line.as_bytes().len() as u64;
            lines.push(line);
            if hint.is_some_and(|hint| total >= hint) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.read_line(py, None)?;
        Ok((!line.as_bytes().is_empty()).then_some(line))
    }
}

/// `wsgi.errors`: lines into `tracing`, as the crate's [`ErrorStream`] does.
#[pyclass(frozen, name = "ErrorStream", module = "tower_wsgi")]
#[derive(Default)]
pub(crate) struct PyErrors {
    errors: Mutex<ErrorStream>,
}

#[pymethods]
impl PyErrors {
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let text = text_of(data, "wsgi.errors.write() data")?;
        lock(&self.errors)
            .write_all(text.as_bytes())
            .map_err(|error| io_to_py(py, error))?;
        Ok(text.chars().count())
    }

    fn writelines(&self, py: Python<'_>, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(py, &line?)?;
        }
        Ok(())
    }

    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        lock(&self.errors)
            .flush()
            .map_err(|error| io_to_py(py, error))
    }
}

/// `wsgi.file_wrapper(filelike, block_size=8192)`.
///
/// Iterated from Python, it reads `block_size` at a time; returned as the
/// response, the crate streams the file itself (see `body.rs`).
#[pyclass(frozen, name = "FileWrapper", module = "tower_wsgi")]
pub(crate) struct PyFileWrapper {
    pub(crate) filelike: Py<PyAny>,
    pub(crate) block_size: usize,
    closed: AtomicBool,
}

impl PyFileWrapper {
    /// Closes the file, the first time only.
    pub(crate) fn close_once(&self, py: Python<'_>) -> PyResult<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        match self.filelike.bind(py).getattr_opt("close")? {
            Some(close) => close.call0().map(drop),
            None => Ok(()),
        }
    }
}

#[pymethods]
impl PyFileWrapper {
    #[new]
    #[pyo3(signature = (filelike, block_size = 8192))]
    fn new(filelike: Py<PyAny>, block_size: i64) -> PyResult<Self> {
        let block_size = usize::try_from(block_size)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| PyValueError::new_err("block_size must be positive"))?;
        Ok(Self {
            filelike,
            block_size,
            closed: AtomicBool::new(false),
        })
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let data = self
            .filelike
            .bind(py)
            .call_method1("read", (self.block_size,))?;
        Ok(data.is_truthy()?.then_some(data))
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.close_once(py)
    }
}
