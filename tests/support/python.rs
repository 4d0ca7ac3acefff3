//! Python fixtures (tests/python/) hosted by `PyApp`, and the test venv.

use std::path::PathBuf;

use tower_wsgi::python::PyApp;

/// `spec` from tests/python/, e.g. `fault_apps:application`.
pub fn fixture(spec: &str) -> PyApp {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    PyApp::builder()
        .python_path(dir)
        .import(spec)
        .unwrap_or_else(|error| panic!("load {spec}: {error}"))
}

/// The test venv that `.ci/run` makes (`.venv/`, or
/// `$TOWER_WSGI_PYTHON_VENV`), if `package` is installed in it. Without it
/// a test is skipped locally and fails under `CI=true`.
pub fn venv_with(package: &str) -> Option<PathBuf> {
    let venv = std::env::var_os("TOWER_WSGI_PYTHON_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    let installed = std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|dir| dir.path().join("site-packages").join(package).is_dir());
    if installed {
        return Some(venv);
    }
    let message = format!(
        "no venv with {package} at {} (.ci/run makes it; or set TOWER_WSGI_PYTHON_VENV)",
        venv.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("skipping: {message}");
    None
}

/// `spec` from tests/python/, with the test venv holding `package`.
pub fn venv_fixture(spec: &str, package: &str) -> Option<PyApp> {
    let venv = venv_with(package)?;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    Some(
        PyApp::builder()
            .venv(venv)
            .python_path(dir)
            .import(spec)
            .unwrap_or_else(|error| panic!("load {spec}: {error}")),
    )
}

/// [`venv_fixture`] served on a real socket, with the logs captured.
pub fn serve_venv_fixture(spec: &str, package: &str) -> Option<super::TestServer> {
    super::capture_logs();
    let app = venv_fixture(spec, package)?;
    Some(super::serve(tower_wsgi::WsgiService::new(app)))
}

/// The `/json` and `/form` routes every framework fixture (Flask's, Django's)
/// serves alike: a JSON answer from the query string, and a form post with
/// a UTF-8 field.
pub fn assert_json_and_form_routes(server: &super::TestServer) {
    let resp = server.get("/json?name=ada");
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(json, serde_json::json!({"name": "ada", "items": [1, 2, 3]}));

    let resp = server.request(
        &super::post(
            "/form",
            "name=Ada+Lovelace&lang=fr%C3%A9",
            "Content-Type: application/x-www-form-urlencoded\r\n",
        ),
        false,
    );
    assert_eq!(resp.body_str(), "name=Ada Lovelace, lang=fré");
}
