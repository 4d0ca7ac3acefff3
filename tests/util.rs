//! `tower_wsgi::util` against its Python originals: the same environs given
//! to Python 3.11's `wsgiref.util` and Werkzeug 1.0.1's `parse_cookie` (the
//! oracle's interpreter, `.oracle/bin/python`, made by `.ci/run`), answers
//! compared one by one. Fixed tricky cases, then generated ones.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use tower_wsgi::{util, Environ};

#[path = "support/oracle.rs"]
mod oracle;

/// Runs `script` with `cases` (JSON) on stdin; its stdout is JSON.
fn python(script: &str, cases: &Value) -> Option<Value> {
    let python = oracle::oracle_python("the comparison with Python")?;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cases.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the python side failed");
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % below
    }

    fn string(&mut self, alphabet: &[&str], max_len: usize) -> String {
        let len = self.next(max_len + 1);
        (0..len)
            .map(|_| alphabet[self.next(alphabet.len())])
            .collect()
    }
}

fn environ_of(vars: &serde_json::Map<String, Value>) -> Environ {
    let mut environ = Environ::default();
    for key in ["SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "HTTP_HOST"] {
        environ.remove(key);
    }
    for (key, value) in vars {
        environ.insert(key.as_str(), value.as_str().unwrap());
    }
    environ
}

const WSGIREF: &str = r#"
import json, sys
from wsgiref import util
out = []
for env in json.load(sys.stdin):
    row = {"guess_scheme": util.guess_scheme(env),
           "application_uri": util.application_uri(env),
           "request_uri": util.request_uri(env),
           "request_uri_no_query": util.request_uri(env, False)}
    shifted = dict(env)
    try:
        names = []
        for _ in range(4):
            names.append(util.shift_path_info(shifted))
            names.append([shifted.get("SCRIPT_NAME", ""), shifted.get("PATH_INFO", "")])
        row["shift"] = names
    except IndexError:
        row["shift"] = "IndexError"
    out.append(row)
json.dump(out, sys.stdout)
"#;

fn wsgiref_cases() -> Vec<Value> {
    let mut cases = vec![
        json!({"wsgi.url_scheme": "http", "SERVER_NAME": "example.com", "SERVER_PORT": "80"}),
        json!({"wsgi.url_scheme": "https", "SERVER_NAME": "example.com", "SERVER_PORT": "443",
               "SCRIPT_NAME": "/app", "PATH_INFO": "/a b/c;d=e,f", "QUERY_STRING": "x=1"}),
        json!({"wsgi.url_scheme": "https", "SERVER_NAME": "h", "SERVER_PORT": "80",
               "PATH_INFO": "/caf\u{c3}\u{a9}/\u{ff}"}),
        json!({"wsgi.url_scheme": "http", "SERVER_NAME": "h", "SERVER_PORT": "8080",
               "HTTP_HOST": "", "SCRIPT_NAME": "/s p", "PATH_INFO": ""}),
        json!({"wsgi.url_scheme": "http", "SERVER_NAME": "h", "SERVER_PORT": "80",
               "HTTP_HOST": "other:9", "PATH_INFO": "/", "HTTPS": "on"}),
        json!({"wsgi.url_scheme": "http", "SERVER_NAME": "h", "SERVER_PORT": "80",
               "PATH_INFO": "x/y", "HTTPS": "yes"}),
        json!({"wsgi.url_scheme": "http", "SERVER_NAME": "h", "SERVER_PORT": "80",
               "PATH_INFO": "/./a/../b//c/.", "SCRIPT_NAME": "/"}),
        json!({"wsgi.url_scheme": "http", "SERVER_NAME": "h", "SERVER_PORT": "80",
               "PATH_INFO": "//x", "SCRIPT_NAME": "//"}),
        json!({"wsgi.url_scheme": "http", "SERVER_NAME": "h", "SERVER_PORT": "80",
               "PATH_INFO": "/..", "SCRIPT_NAME": "/a", "HTTPS": "ON"}),
    ];
    let mut lcg = Lcg(11);
    let path = [
        "/", "/", "a", "b", ".", "..", "%", " ", "\u{e9}", "~", ";", "=",
    ];
    for _ in 0..400 {
        let scheme = ["http", "https"][lcg.next(2)];
        let port = ["80", "443", "8000"][lcg.next(3)];
        let mut case = json!({
            "wsgi.url_scheme": scheme,
            "SERVER_NAME": "srv",
            "SERVER_PORT": port,
            "SCRIPT_NAME": lcg.string(&path, 5),
            "PATH_INFO": format!("/{}", lcg.string(&path, 8)),
            "QUERY_STRING": lcg.string(&["a", "=", "&", "%20"], 3),
        });
        if lcg.next(2) == 0 {
            case["HTTP_HOST"] = json!(["", "host", "host:1"][lcg.next(3)]);
        }
        if lcg.next(2) == 0 {
            case["HTTPS"] = json!(["on", "1", "yes", "off", "On"][lcg.next(5)]);
        }
        cases.push(case);
    }
    cases
}

#[test]
fn wsgiref_util_answers_as_python_does() {
    let cases = wsgiref_cases();
    let Some(expected) = python(WSGIREF, &Value::Array(cases.clone())) else {
        return;
    };
    let mut compared = 0;
    for (case, expected) in cases.iter().zip(expected.as_array().unwrap()) {
        let vars = case.as_object().unwrap();
        let environ = environ_of(vars);
        assert_eq!(
            util::guess_scheme(&environ),
            expected["guess_scheme"],
            "{case}"
        );
        assert_eq!(
            util::application_uri(&environ),
            expected["application_uri"],
            "{case}"
        );
        assert_eq!(
            util::request_uri(&environ, true),
            expected["request_uri"],
            "{case}"
        );
        assert_eq!(
            util::request_uri(&environ, false),
            expected["request_uri_no_query"],
            "{case}"
        );
        if expected["shift"] == "IndexError" {
            // A PATH_INFO without `/`: Python raises, documented as a difference.
            continue;
        }
        let mut shifted = environ_of(vars);
        let mut names = Vec::new();
        for _ in 0..4 {
            names.push(json!(util::shift_path_info(&mut shifted)));
            names.push(json!([shifted.script_name(), shifted.path_info()]));
        }
        assert_eq!(Value::Array(names), expected["shift"], "{case}");
        compared += 1;
    }
    assert!(compared > 300, "only {compared} environs compared");
}

const COOKIES: &str = r#"
import json, sys
from werkzeug.http import parse_cookie
json.dump([parse_cookie({"HTTP_COOKIE": c}, cls=list) for c in json.load(sys.stdin)], sys.stdout)
"#;

fn cookie_cases() -> Vec<String> {
    let mut cases: Vec<String> = [
        "",
        "a=1",
        "a=1; b=2",
        "a=1;b=2;a=3",
        " a = 1 ; b=  2  ",
        "a=\"quoted value\"; b=\"with \\\"escape\\\"\"",
        "a=\"\\101\\102\\103\"",
        "a=\"unterminated; b=2",
        "a=\"x\"y; b=2",
        "=novalue; flag; c=3",
        ";;; a=1;;",
        "a==b=c",
        "a=\"\\",
        "a=\"\"",
        "name=caf\u{c3}\u{a9}; bad=\u{ff}",
        "a=1\n; b=2",
        "a=\t1\t;\tb\t=\t2",
        "a=\"semi;colon\"; b=1",
        "k\"ey=1",
        "a=1,b=2",
        "a=\"\\\n\"; b=2",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut lcg = Lcg(5);
    let alphabet = [
        "a", "b", "=", "=", ";", ";", " ", "\"", "\"", "\\", "0", "1", "7", "\t", "\u{e9}", "\n",
        ",",
    ];
    for _ in 0..3000 {
        cases.push(lcg.string(&alphabet, 14));
    }
    cases
}

#[test]
fn cookies_parse_as_werkzeug_does() {
    let cases = cookie_cases();
    let Some(expected) = python(COOKIES, &json!(cases)) else {
        return;
    };
    for (case, expected) in cases.iter().zip(expected.as_array().unwrap()) {
        let ours: Vec<Value> = util::parse_cookie(case)
            .into_iter()
            .map(|(k, v)| json!([k, v]))
            .collect();
        assert_eq!(Value::Array(ours), *expected, "HTTP_COOKIE {case:?}");
    }
}

#[test]
fn cookies_come_from_the_environ_of_a_real_request() {
    use tower_wsgi::test_client::TestClient;
    let client = TestClient::new(tower_wsgi::app_fn(|environ, start_response| {
        start_response.start("200 OK", [("Content-Type", "text/plain")])?;
        let cookies = util::cookies(&environ);
        Ok(format!("{cookies:?} {:?}", util::cookie(&environ, "b")).into())
    }));
    // Two Cookie lines are joined with `; ` into HTTP_COOKIE.
    let response = client
        .get("/")
        .header("Cookie", "a=1; b=\"x y\"")
        .header("Cookie", "b=2")
        .send_blocking();
    assert_eq!(
        response.text(),
        r#"[("a", "1"), ("b", "x y"), ("b", "2")] Some("x y")"#
    );
}
