//! The environ as a real `dict`, made from the crate's [`Environ`] so every
//! environ rule is the crate's.
//!
//! The dict is filled straight from the request ([`Environ::each_var`]), with
//! key objects made once per service, and a value equal to the one the same
//! key had last time given the same (immutable) `str` object again: most
//! requests repeat most values (`SERVER_NAME`, `HTTP_HOST`, the protocol).

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::objects::{PyErrors, PyFileWrapper, PyInput};
use crate::environ::{Environ, VarSink};

/// Keys remembered at most: header names are the client's choice.
const MAX_KEYS: usize = 256;

/// Values remembered only up to this length.
const MAX_REMEMBERED: usize = 256;

/// What a service's requests share: the constant entries, and the key and
/// value objects of earlier requests.
pub(crate) struct Shared {
    template: Py<PyDict>,
    input: Py<PyString>,
    errors: Py<PyString>,
    input_terminated: Py<PyString>,
    keys: Mutex<HashMap<Box<str>, Slot, BuildHasherDefault<KeyHasher>>>,
}

/// A key's `str`, and the value it had last.
struct Slot {
    key: Py<PyString>,
    last: Option<Py<PyString>>,
}

impl Shared {
    pub(crate) fn new(py: Python<'_>) -> PyResult<Self> {
        let dict = PyDict::new(py);
        dict.set_item("wsgi.version", PyTuple::new(py, [1, 0])?)?;
        dict.set_item("wsgi.multithread", true)?;
        dict.set_item("wsgi.multiprocess", false)?;
        dict.set_item("wsgi.run_once", false)?;
        dict.set_item("wsgi.file_wrapper", py.get_type::<PyFileWrapper>())?;
        Ok(Self {
            template: dict.unbind(),
            input: PyString::intern(py, "wsgi.input").unbind(),
            errors: PyString::intern(py, "wsgi.errors").unbind(),
            input_terminated: PyString::intern(py, "wsgi.input_terminated").unbind(),
            keys: Mutex::new(HashMap::default()),
        })
    }

    /// The request's environ dict; `wsgi.input` takes over the request body.
    pub(crate) fn build<'py>(
        &self,
        py: Python<'py>,
        mut environ: Environ,
    ) -> PyResult<Bound<'py, PyDict>> {
        let dict = self.template.bind(py).copy()?;
        {
            // Every holder has the GIL (or, free-threaded, this is the only
            // lock taken while filling): no wait in practice.
            let mut keys = crate::poison::lock(&self.keys);
            let mut sink = Sink {
                py,
                dict: &dict,
                keys: &mut keys,
                failed: None,
            };
            environ.each_var(&mut sink);
            if let Some(err) = sink.failed {
                return Err(err);
            }
        }
        // Only where the body ends at EOF (chunked), as Werkzeug sets it.
        if environ.input_terminated() {
            dict.set_item(self.input_terminated.bind(py), true)?;
        }
        dict.set_item(self.input.bind(py), PyInput::new(environ.take_input()))?;
        dict.set_item(self.errors.bind(py), PyErrors::default())?;
        Ok(dict)
    }
}

struct Sink<'a, 'py> {
    py: Python<'py>,
    dict: &'a Bound<'py, PyDict>,
    keys: &'a mut HashMap<Box<str>, Slot, BuildHasherDefault<KeyHasher>>,
    failed: Option<PyErr>,
}

impl Sink<'_, '_> {
    fn set(&mut self, key: &str, value: &str, join: Option<&str>) -> PyResult<()> {
        let py = self.py;
        if join.is_some() || self.keys.len() >= MAX_KEYS && !self.keys.contains_key(key) {
            // A key spelt two ways, or one past the bound: the plain way.
            let key = PyString::new(py, key);
            let value = match (join, self.dict.get_item(&key)?) {
                (Some(separator), Some(before)) => {
                    let before: Cow<'_, str> = before.cast::<PyString>()?.to_cow()?;
                    PyString::new(py, &format!("{before}{separator}{value}"))
                }
                _ => PyString::new(py, value),
            };
            return self.dict.set_item(key, value);
        }
        let slot = match self.keys.get_mut(key) {
            Some(slot) => slot,
            None => self.keys.entry(key.into()).or_insert(Slot {
                key: PyString::intern(py, key).unbind(),
                last: None,
            }),
        };
        if let Some(last) = &slot.last {
            if last.bind(py).to_str().ok() == Some(value) {
                return self.dict.set_item(slot.key.bind(py), last.bind(py));
            }
        }
        let made = PyString::new(py, value);
        slot.last = (value.len() <= MAX_REMEMBERED).then(|| made.clone().unbind());
        self.dict.set_item(slot.key.bind(py), made)
    }
}

impl VarSink for Sink<'_, '_> {
    fn var(&mut self, key: crate::environ::Text, value: Cow<'_, str>, join: Option<&str>) {
        if self.failed.is_some() {
            return;
        }
        if let Err(err) = self.set(&key, &value, join) {
            self.failed = Some(err);
        }
    }
}

/// FNV-1a over the key's bytes: keys are short, and a cache miss costs
/// only a new `str`, so a DoS-resistant hash buys nothing here.
struct KeyHasher(u64);

impl Default for KeyHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
