//! The environ as a real `dict`, made from the crate's [`Environ`] so every
//! environ rule is the crate's.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::objects::{PyErrors, PyFileWrapper, PyInput};
use crate::environ::Environ;

/// The entries every request shares, copied per request.
pub(crate) fn template(py: Python<'_>) -> PyResult<Py<PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("wsgi.version", PyTuple::new(py, [1, 0])?)?;
    dict.set_item("wsgi.multithread", true)?;
    dict.set_item("wsgi.multiprocess", false)?;
    dict.set_item("wsgi.run_once", false)?;
    dict.set_item("wsgi.file_wrapper", py.get_type::<PyFileWrapper>())?;
    Ok(dict.unbind())
}

/// The request's environ dict; `wsgi.input` takes over the request body.
pub(crate) fn build<'py>(
    py: Python<'py>,
    template: &Py<PyDict>,
    mut environ: Environ,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = template.bind(py).copy()?;
    for (key, value) in environ.iter() {
        // Values are latin-1 already: one char per byte of the wire.
        dict.set_item(PyString::intern(py, key), PyString::new(py, value))?;
    }
    // Only where the body ends at EOF (chunked), as Werkzeug sets it.
    if environ.input_terminated() {
        dict.set_item("wsgi.input_terminated", true)?;
    }
    dict.set_item("wsgi.input", PyInput::new(environ.take_input()))?;
    dict.set_item("wsgi.errors", PyErrors::default())?;
    Ok(dict)
}
