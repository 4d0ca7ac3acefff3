//! The Werkzeug 1.0.1 oracle's interpreter, shared by the tests that compare
//! against Python (no crate features needed, so any test may include it).

use std::path::PathBuf;
use std::process::Command;

/// `.oracle/bin/python` (made by `.ci/run`) or `$TOWER_WSGI_ORACLE_PYTHON`,
/// if it has Werkzeug 1.0.1. Without it `what` is skipped locally, and fails
/// under `CI=true`.
pub(crate) fn oracle_python(what: &str) -> Option<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("TOWER_WSGI_ORACLE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join(".oracle/bin/python"));
    let version = Command::new(&python)
        .args(["-c", "import werkzeug; print(werkzeug.__version__)"])
        .output()
        .ok();
    if version.is_some_and(|v| String::from_utf8_lossy(&v.stdout).trim() == "1.0.1") {
        return Some(python);
    }
    let message = "the Werkzeug 1.0.1 oracle is not installed (.ci/run makes .oracle/; \
                   or set TOWER_WSGI_ORACLE_PYTHON)";
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("skipping {what}: {message}");
    None
}
