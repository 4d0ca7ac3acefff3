//! Hosting a real Python WSGI application in-process (feature `python`).
//!
//! [`PyApp`] loads a callable the way gunicorn names it and implements
//! [`App`], so it goes wherever a Rust application goes: [`WsgiService`],
//! [`Builder`], axum's `fallback_service`/`nest_service`, the middleware,
//! [`TestClient`](crate::test_client::TestClient) and tower layers. Every
//! response it gives passes through the same rules as a Rust application's:
//! exact `Content-Length`, HEAD/204/304 without a body, 1xx refused, headers
//! checked, a failure after the headers visible to the client, `close()`
//! exactly once, bounded buffers, 413 and 503.
//!
//! ```no_run
//! use tower_wsgi::python::PyApp;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let app = PyApp::import("mysite.wsgi:application")?;
//! tower_wsgi::server::serve("127.0.0.1:8000", app).await?;
//! # Ok(()) }
//! ```
//!
//! # What Python sees
//!
//! PEP 3333 in full: the environ is a `dict` of `str` values (latin-1 where
//! the wire gave bytes), with `wsgi.version` `(1, 0)`, `wsgi.url_scheme`,
//! `wsgi.multithread` (`True`), `wsgi.multiprocess` and `wsgi.run_once`
//! (`False`), `wsgi.input_terminated`, and:
//!
//! - `wsgi.input`: `read()`, `read(n)`, `readline()`, `readline(size)`,
//!   `readlines(hint)` and iteration over lines. It streams the request body
//!   with backpressure, waits without the GIL, and honours
//!   [`Builder::max_request_body`]: a body past it raises
//!   `RequestBodyTooLarge`, an `OSError` that is also Werkzeug's
//!   `RequestEntityTooLarge` where Werkzeug is installed, so an application
//!   that lets it propagate, Flask's included, answers 413;
//! - `wsgi.errors`: `write`, `writelines`, `flush`; each line is a `tracing`
//!   event (target `tower_wsgi::errors`) in the request's span;
//! - `wsgi.file_wrapper(filelike, block_size=8192)`: returned as the
//!   response, a binary file on disk is streamed by the crate in large blocks
//!   without the GIL (Flask's `send_file` and Django's `FileResponse` use it);
//!   other file-likes are read through their `read()`. The file is closed once.
//!
//! `start_response(status, headers, exc_info=None)` returns `write`. The
//! headers go out with the first non-empty chunk, so `exc_info` replaces them
//! until then and is raised again after; a generator may call
//! `start_response` lazily. An invalid status or header raises `ValueError`
//! naming it, a second call without `exc_info` `AssertionError`, and `write`
//! to a client that left `BrokenPipeError`. A body chunk that is not `bytes`
//! is the application's error, named in the log: 500 before the headers, an
//! aborted response after.
//!
//! An exception from the application, its iterable or its `close()` is
//! logged with the failed request, Python traceback included.
//!
//! # Threads and the GIL
//!
//! Python runs only on the service's application threads, never on the async
//! workers: [`Builder::inline`] is refused for a `PyApp` (building the
//! service panics). Each application thread attaches to the interpreter once
//! for its life and gives up the GIL whenever it waits: for work, for the
//! client (`write`, a full response buffer), for the request body, or while
//! the crate streams a wrapped file. A request's iterable runs on the thread
//! that called the application, so thread-locals and `contextvars` hold
//! (Flask's `stream_with_context`).
//!
//! Under the GIL, two threads running Python only take turns, so the
//! service's pool keeps one application thread at work however many cores
//! there are (a `PyApp`'s [`App::parallelism`] is 1; on a free-threaded
//! build without the GIL it has none), and starts more only while the ones
//! at work wait with the GIL released, or after a time slice of a long
//! computation, so a slow request does not hold up every short one behind it.
//!
//! The pool's defaults suit an application that computes. For long I/O-bound
//! requests (slow upstreams, `time.sleep`, long polling) raise
//! [`Builder::max_threads`] to the number of requests you want in flight
//! (and [`Builder::max_queue`] for bursts); a thread waiting in C code with
//! the GIL released costs no CPU. An idle application thread ends after ten
//! seconds ([`Builder::idle_thread_timeout`] sets how long), and its
//! `threading.local` values with it.
//!
//! A request timeout (tower's `TimeoutLayer`, say) ends the *response*: the
//! client gets its answer and the body is closed as soon as the thread
//! returns to the crate. It cannot stop Python code that is running: the
//! thread stays busy until the application returns or next touches
//! `wsgi.input`/`write`.
//!
//! Ctrl-C and SIGTERM keep working with an interpreter loaded: it is started
//! without Python's own signal handlers, so [`serve`](crate::server::serve)'s graceful
//! shutdown sees them.
//!
//! # Finding the interpreter and the application
//!
//! **At build time** pyo3 picks the interpreter: `PYO3_PYTHON` if set, else
//! the `python3` (or `python`) first on `PATH`. It must be CPython 3.9 or later
//! built with a shared `libpython` (`--enable-shared`, as distribution and
//! pyenv builds are). The binary runs only with that Python minor version.
//!
//! **At run time** the program loads `libpython` through the dynamic loader.
//! Where several libraries of the same name are installed (a distribution's
//! and a pyenv one), link with an rpath to the one you built against, for
//! example from your `build.rs` with
//! `pyo3_build_config::add_libpython_rpath_link_args()`, or set
//! `LD_LIBRARY_PATH`; otherwise the loader may pick another, with another
//! `sys.prefix` and other installed packages.
//!
//! Modules are imported from `sys.path`, which holds `PYTHONPATH`, the
//! current directory (as gunicorn does) and the directories given to
//! [`PyAppBuilder::python_path`]. An activated virtualenv is used: the one
//! named by `VIRTUAL_ENV`, or given to [`PyAppBuilder::venv`]; its
//! `site-packages` go before the interpreter's own.
//!
//! [`App`]: crate::App
//! [`App::parallelism`]: crate::App::parallelism
//! [`WsgiService`]: crate::WsgiService
//! [`Builder`]: crate::Builder
//! [`Builder::inline`]: crate::Builder::inline
//! [`Builder::max_request_body`]: crate::Builder::max_request_body
//! [`Builder::max_threads`]: crate::Builder::max_threads
//! [`Builder::idle_thread_timeout`]: crate::Builder::idle_thread_timeout
//! [`Builder::max_queue`]: crate::Builder::max_queue

mod body;
mod environ;
mod error;
mod objects;

use std::ffi::CString;
use std::fmt;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::PyDict;

pub use error::PythonError;
/// The pyo3 this module is built with, for [`PyApp::new`] and [`PyApp::callable`].
pub use pyo3;

use crate::app::App;
use crate::body::AppBody;
use crate::environ::Environ;
use crate::error::BoxError;
use crate::response::StartResponse;

/// A Python WSGI callable, hosted in-process: an [`App`].
///
/// ```no_run
/// use tower_wsgi::python::PyApp;
///
/// // `module:callable`, or `module:factory()` for an application factory.
/// let flask_app = PyApp::import("myapp:create_app()")?;
/// let service = tower_wsgi::Builder::new().max_threads(32).build(flask_app);
/// # Ok::<(), tower_wsgi::python::PythonError>(())
/// ```
pub struct PyApp {
    app: Py<PyAny>,
    environ: environ::Shared,
    name: String,
    /// The interpreter runs one thread at a time (not a free-threaded
    /// build, or one that turned its GIL back on).
    gil: bool,
}

impl PyApp {
    /// Starts the interpreter if needed and loads `spec`, with the defaults
    /// of [`PyAppBuilder`].
    pub fn import(spec: &str) -> Result<Self, PythonError> {
        Self::builder().import(spec)
    }

    /// Options for finding the application.
    pub fn builder() -> PyAppBuilder {
        PyAppBuilder::default()
    }

    /// Hosts a callable already at hand (the interpreter is running, since
    /// the object exists).
    pub fn new(py: Python<'_>, app: Py<PyAny>) -> Result<Self, PythonError> {
        let name = app
            .bind(py)
            .repr()
            .map_or_else(|_| "<app>".to_owned(), |r| r.to_string());
        let environ = environ::Shared::new(py).map_err(|err| PythonError::from_py(py, &err))?;
        Ok(Self {
            app,
            environ,
            name,
            gil: gil_enabled(py),
        })
    }

    /// The callable.
    pub fn callable(&self) -> &Py<PyAny> {
        &self.app
    }
}

impl App for PyApp {
    fn call(&self, environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
        Python::attach(|py| {
            let environ = self
                .environ
                .build(py, environ)
                .map_err(|err| PythonError::from_py(py, &err))?;
            let start_response = objects::PyStartResponse::new(start_response);
            match self.app.bind(py).call1((environ, start_response)) {
                Ok(result) => body::from_result(py, result),
                Err(err) => Err(PythonError::from_py(py, &err).into()),
            }
        })
    }

    fn allows_inline(&self) -> bool {
        false
    }

    fn run_thread(&self, thread: &mut (dyn FnMut() + Send)) {
        // Attached once for the thread's life; detached at once, so the GIL
        // is held only inside a request's calls into Python.
        Python::attach(|py| py.detach(thread));
    }

    fn parallelism(&self) -> Option<NonZeroUsize> {
        // Under the GIL a second thread that computes only takes turns with
        // the first; threads for requests that wait still come.
        self.gil.then_some(NonZeroUsize::MIN)
    }
}

/// Whether the interpreter has a GIL: `sys._is_gil_enabled()` where it
/// exists (3.13 and later), and always before.
fn gil_enabled(py: Python<'_>) -> bool {
    let Ok(sys) = py.import("sys") else {
        return true;
    };
    match sys.getattr("_is_gil_enabled") {
        Ok(is_enabled) => is_enabled
            .call0()
            .and_then(|enabled| enabled.extract::<bool>())
            .unwrap_or(true),
        Err(_) => true,
    }
}

impl fmt::Debug for PyApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PyApp").field("app", &self.name).finish()
    }
}

/// Where [`PyApp`] looks for the application: made by [`PyApp::builder`].
///
/// ```no_run
/// let app = tower_wsgi::python::PyApp::builder()
///     .venv("/srv/mysite/.venv")
///     .python_path("/srv/mysite")
///     .import("mysite.wsgi:application")?;
/// # Ok::<(), tower_wsgi::python::PythonError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct PyAppBuilder {
    venv: Option<PathBuf>,
    python_path: Vec<PathBuf>,
}

impl PyAppBuilder {
    /// Uses the virtualenv at `path` (its `site-packages`), whatever
    /// `VIRTUAL_ENV` says.
    #[must_use]
    pub fn venv(mut self, path: impl AsRef<Path>) -> Self {
        self.venv = Some(path.as_ref().to_owned());
        self
    }

    /// Puts `dir` at the front of `sys.path`. May be given more than once; the
    /// first one given comes first.
    #[must_use]
    pub fn python_path(mut self, dir: impl AsRef<Path>) -> Self {
        self.python_path.push(dir.as_ref().to_owned());
        self
    }

    /// Starts the interpreter if needed and loads `spec`: `module:name`
    /// (`name` may be dotted, `pkg.wsgi:app.wsgi_app`), `module:factory()`
    /// to call an application factory with no arguments, or `module` alone
    /// for `module:application`.
    ///
    /// The import runs on the calling thread, which becomes Python's main
    /// thread if it started the interpreter.
    pub fn import(&self, spec: &str) -> Result<PyApp, PythonError> {
        let (module, attr) = spec.split_once(':').unwrap_or((spec, "application"));
        let (attr, factory) = match attr.strip_suffix("()") {
            Some(attr) => (attr, true),
            None => (attr, false),
        };
        if module.is_empty()
            || attr.is_empty()
            || !attr.split('.').all(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_')
            })
        {
            return Err(PythonError::message(format!(
                "cannot load {spec:?}: expected MODULE:NAME or MODULE:FACTORY()"
            )));
        }
        let venv = self
            .venv
            .clone()
            .or_else(|| std::env::var_os("VIRTUAL_ENV").map(PathBuf::from));
        Python::initialize();
        Python::attach(|py| {
            let fail = |err: PyErr| PythonError::from_py(py, &err);
            self.set_up_paths(py, venv.as_deref()).map_err(fail)?;
            let mut app = py.import(module).map_err(fail)?.into_any();
            for part in attr.split('.') {
                app = app.getattr(part).map_err(fail)?;
            }
            if factory {
                app = app.call0().map_err(fail)?;
            }
            if !app.is_callable() {
                return Err(PythonError::message(format!(
                    "cannot load {spec:?}: {} is not callable",
                    app.repr()
                        .map_or_else(|_| "it".to_owned(), |r| r.to_string())
                )));
            }
            PyApp::new(py, app.unbind())
        })
    }

    fn set_up_paths(&self, py: Python<'_>, venv: Option<&Path>) -> PyResult<()> {
        let locals = PyDict::new(py);
        let dirs: Vec<String> = self
            .python_path
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        locals.set_item("dirs", dirs)?;
        locals.set_item("venv", venv.map(|v| v.to_string_lossy().into_owned()))?;
        let code = CString::new(SET_UP_PATHS)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
        py.run(&code, Some(&locals), None)
    }
}

/// Python's side of [`PyAppBuilder::import`]: the venv's site-packages go
/// before the interpreter's (as an activated venv's would), then the current
/// directory and the builder's directories at the front.
const SET_UP_PATHS: &str = r#"
import os, site, sys
if venv:
    lib = os.path.join(venv, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
    if not os.path.isdir(lib):
        raise ImportError("virtualenv %r has no %s (made with another Python?)" % (venv, lib))
    before = list(sys.path)
    site.addsitedir(lib)
    added = [p for p in sys.path if p not in before]
    rest = [p for p in sys.path if p in before]
    at = next((i for i, p in enumerate(rest) if p.endswith("site-packages")), len(rest))
    sys.path[:] = rest[:at] + added + rest[at:]
for d in [os.getcwd()] + list(dirs)[::-1]:
    if d in sys.path:
        sys.path.remove(d)
    sys.path.insert(0, d)
"#;
