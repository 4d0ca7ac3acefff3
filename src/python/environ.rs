//! The environ as a real `dict`, made from the crate's [`Environ`] so every
//! environ rule is the crate's.
//!
//! The dict is filled straight from the request ([`Environ::each_var`]), with
//! key objects made once per service, and a value equal to the one the same
//! key had last time given the same (immutable) `str` object again: most
//! requests repeat most values (`SERVER_NAME`, `HTTP_HOST`, the protocol).
//! Requests also repeat the order of their keys, so each key is first looked
//! for where it came in the request before, and hashed only when it is not
//! there.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
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
    keys: Mutex<Keys>,
}

/// The keys of earlier requests.
#[derive(Default)]
struct Keys {
    slots: Vec<Slot>,
    /// Each slot's index, by its name.
    index: HashMap<Box<str>, usize, BuildHasherDefault<crate::fnv::Fnv1a>>,
    /// The slots in the order the last request's keys came (by index).
    order: Vec<usize>,
}

impl Keys {
    /// The slot of the `position`th key of a request, `name`; `None` when
    /// it is new and [`MAX_KEYS`] are kept already.
    fn slot(&mut self, py: Python<'_>, position: usize, name: &str) -> Option<&mut Slot> {
        if let Some(&at) = self.order.get(position) {
            if *self.slots[at].name == *name {
                return Some(&mut self.slots[at]);
            }
        }
        let at = match self.index.get(name) {
            Some(&at) => at,
            None if self.slots.len() < MAX_KEYS => {
                self.slots.push(Slot {
                    name: name.into(),
                    key: PyString::intern(py, name).unbind(),
                    last: None,
                });
                self.index.insert(name.into(), self.slots.len() - 1);
                self.slots.len() - 1
            }
            None => return None,
        };
        if position < self.order.len() {
            self.order[position] = at;
        } else if position == self.order.len() && position < MAX_KEYS {
            self.order.push(at);
        }
        Some(&mut self.slots[at])
    }
}

/// A key's name and `str`, and the value it had last.
struct Slot {
    name: Box<str>,
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
            keys: Mutex::new(Keys::default()),
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
                position: 0,
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
    keys: &'a mut Keys,
    /// How many keys came before this one.
    position: usize,
    failed: Option<PyErr>,
}

impl Sink<'_, '_> {
    fn set(&mut self, key: &str, value: &str, join: Option<&str>) -> PyResult<()> {
        let py = self.py;
        let position = self.position;
        self.position += 1;
        let slot = match join {
            None => self.keys.slot(py, position, key),
            Some(_) => None,
        };
        let Some(slot) = slot else {
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
