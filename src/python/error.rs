//! Python exceptions as Rust errors, and crate errors as Python exceptions.

use std::fmt;

use pyo3::exceptions::{PyAssertionError, PyBrokenPipeError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::error::{Error, ErrorKind};

/// A Python exception, with its traceback formatted as Python prints it.
///
/// What [`PyApp`](super::PyApp) returns when the application raised (the
/// crate logs it with the failed request), and what loading an application
/// fails with. The text is made while the interpreter is at hand, so the
/// error can be shown anywhere.
pub struct PythonError {
    text: String,
}

impl PythonError {
    /// Formats `err` with its traceback (and chained exceptions).
    pub(crate) fn from_py(py: Python<'_>, err: &PyErr) -> Self {
        Self {
            text: format_exception(py, err),
        }
    }

    pub(crate) fn message(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }

    /// The exception as Python's `traceback.format_exception` shows it.
    pub fn traceback(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for PythonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text.trim_end())
    }
}

impl fmt::Debug for PythonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PythonError")
            .field("text", &self.text)
            .finish()
    }
}

impl std::error::Error for PythonError {}

fn format_exception(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py.import("traceback").and_then(|traceback| {
        // Python 3.11 keeps a fetched exception's traceback apart from it.
        let lines = traceback.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?;
        lines.extract::<Vec<String>>()
    });
    match formatted {
        Ok(lines) => lines.concat(),
        Err(_) => err.to_string(),
    }
}

/// The `exc_info` an application passed to `start_response`: kept so that
/// the crate can hand it back, and the exception is raised again as it was.
pub(crate) struct ExcInfo {
    pub(crate) err: PyErr,
    text: String,
}

impl ExcInfo {
    pub(crate) fn new(py: Python<'_>, err: PyErr) -> Self {
        let text = format_exception(py, &err);
        Self { err, text }
    }
}

impl fmt::Display for ExcInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text.trim_end())
    }
}

impl fmt::Debug for ExcInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExcInfo").field("text", &self.text).finish()
    }
}

impl std::error::Error for ExcInfo {}

/// A crate error raised into the application as the Python exception a WSGI
/// server would raise: the message names the cause.
pub(crate) fn to_py(py: Python<'_>, error: Error) -> PyErr {
    match error.kind() {
        ErrorKind::Reraised => {
            // exc_info after the headers went out: raise it again, traceback and all.
            let source = std::error::Error::source(&error)
                .and_then(|source| source.downcast_ref::<ExcInfo>());
            match source {
                Some(exc_info) => exc_info.err.clone_ref(py),
                None => PyRuntimeError::new_err(error.to_string()),
            }
        }
        ErrorKind::InvalidStatus
        | ErrorKind::InvalidHeader
        | ErrorKind::HopByHopHeader
        | ErrorKind::InvalidContentLength => PyValueError::new_err(error.to_string()),
        ErrorKind::HeadersAlreadySet
        | ErrorKind::StartResponseNotCalled
        | ErrorKind::ResponseClosed => PyAssertionError::new_err(error.to_string()),
        ErrorKind::ClientDisconnected => PyBrokenPipeError::new_err(error.to_string()),
        _ => PyRuntimeError::new_err(error.to_string()),
    }
}
