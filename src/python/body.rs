//! The application's result as the crate's [`AppBody`]: the rule engine drives
//! it (lazy `start_response`, Content-Length, close() exactly once).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;

use bytes::{Bytes, BytesMut};
use pyo3::prelude::*;
use pyo3::types::{PyIterator, PyList, PyTuple};

use super::error::PythonError;
use super::objects::{chunk_bytes, PyFileWrapper};
use crate::body::{AppBody, Iterable};
use crate::error::BoxError;

/// How much of a wrapped file is read at a time when the crate streams it.
const FILE_BLOCK: usize = 128 * 1024;

/// Turns what the application returned into a [`AppBody`], attached.
pub(crate) fn from_result(py: Python<'_>, result: Bound<'_, PyAny>) -> Result<AppBody, BoxError> {
    // An exact list or tuple has no close(): take its chunks now, with no
    // further trip into Python.
    if result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>() {
        let mut chunks: Vec<Bytes> = Vec::new();
        for item in result.try_iter()? {
            match chunk_bytes(&item?, "a response body chunk") {
                Ok(chunk) => chunks.push(chunk),
                Err(error) => {
                    // What came before the bad chunk still goes out.
                    let before = chunks.into_iter().map(Ok);
                    let failed = std::iter::once(Err::<Bytes, BoxError>(error.into()));
                    return Ok(AppBody::from_results(before.chain(failed)));
                }
            }
        }
        return Ok(AppBody::from_whole(chunks));
    }
    if let Ok(wrapper) = result.cast::<PyFileWrapper>() {
        return Ok(AppBody::new(FileBody::new(py, wrapper.clone().unbind())));
    }
    let close = match result.getattr_opt("close") {
        Ok(close) => close.map(Bound::unbind),
        Err(err) => return Err(PythonError::from_py(py, &err).into()),
    };
    match result.try_iter() {
        Ok(iter) => Ok(AppBody::new(PyBody {
            iter: Some(iter.unbind()),
            close,
        })),
        Err(err) => {
            let error = PythonError::from_py(py, &err);
            if let Some(close) = close {
                if let Err(err) = close.call0(py) {
                    tracing::error!(
                        error = PythonError::from_py(py, &err).to_string(),
                        "response body close() failed"
                    );
                }
            }
            Err(error.into())
        }
    }
}

/// Any other iterable: each chunk is one `next()` in Python, on the thread
/// that called the application.
struct PyBody {
    iter: Option<Py<PyIterator>>,
    close: Option<Py<PyAny>>,
}

impl Iterable for PyBody {
    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
        let iter = self.iter.as_ref()?;
        Python::attach(|py| match iter.bind(py).clone().next()? {
            Ok(chunk) => Some(chunk_bytes(&chunk, "a response body chunk").map_err(Into::into)),
            Err(err) => Some(Err(PythonError::from_py(py, &err).into())),
        })
    }

    fn close(&mut self) -> Result<(), BoxError> {
        Python::attach(|py| {
            // Dropped while attached: no deferred reference counting.
            drop(self.iter.take());
            match self.close.take() {
                Some(close) => close
                    .call0(py)
                    .map(drop)
                    .map_err(|err| PythonError::from_py(py, &err).into()),
                None => Ok(()),
            }
        })
    }
}

/// A `wsgi.file_wrapper` returned as the response: a real file is read by
/// the crate in large blocks without the GIL; anything else is read through
/// its `read()` method.
struct FileBody {
    wrapper: Option<Py<PyFileWrapper>>,
    file: Option<File>,
    block: usize,
}

impl FileBody {
    fn new(py: Python<'_>, wrapper: Py<PyFileWrapper>) -> Self {
        let file = reopen(py, wrapper.get().filelike.bind(py));
        let block = wrapper.get().block_size.max(FILE_BLOCK);
        Self {
            wrapper: Some(wrapper),
            file,
            block,
        }
    }
}

/// The file behind `filelike`, opened again at its current position, when it
/// is a binary file on disk; `None` means "read it through Python".
fn reopen(py: Python<'_>, filelike: &Bound<'_, PyAny>) -> Option<File> {
    // A text file would need decoding: leave it to Python.
    if filelike.hasattr("encoding").unwrap_or(true) {
        return None;
    }
    let fd: i64 = filelike.call_method0("fileno").ok()?.extract().ok()?;
    let position: u64 = filelike.call_method0("tell").ok()?.extract().ok()?;
    let stat = py.import("os").ok()?.call_method1("fstat", (fd,)).ok()?;
    let dev: u64 = stat.getattr("st_dev").ok()?.extract().ok()?;
    let ino: u64 = stat.getattr("st_ino").ok()?.extract().ok()?;
    // Opening the descriptor's path gives an independent handle on the same file.
    let mut file = File::open(format!("/proc/self/fd/{fd}")).ok()?;
    let meta = file.metadata().ok()?;
    if meta.dev() != dev || meta.ino() != ino || !meta.is_file() {
        return None;
    }
    file.seek(SeekFrom::Start(position)).ok()?;
    Some(file)
}

impl Iterable for FileBody {
    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
        if let Some(file) = self.file.as_mut() {
            let mut buf = BytesMut::zeroed(self.block);
            return match file.read(&mut buf) {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some(Ok(buf.freeze()))
                }
                Err(error) => Some(Err(error.into())),
            };
        }
        let wrapper = self.wrapper.as_ref()?;
        let block = self.block;
        Python::attach(|py| {
            let filelike = wrapper.get().filelike.bind(py);
            match filelike.call_method1("read", (block,)) {
                Ok(data) => match data.is_truthy() {
                    Ok(false) => None,
                    Ok(true) => {
                        Some(chunk_bytes(&data, "a wrapped file's read()").map_err(Into::into))
                    }
                    Err(err) => Some(Err(PythonError::from_py(py, &err).into())),
                },
                Err(err) => Some(Err(PythonError::from_py(py, &err).into())),
            }
        })
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.file = None;
        let Some(wrapper) = self.wrapper.take() else {
            return Ok(());
        };
        Python::attach(|py| {
            let closed = wrapper.get().close_once(py);
            drop(wrapper);
            closed.map_err(|err| PythonError::from_py(py, &err).into())
        })
    }
}
