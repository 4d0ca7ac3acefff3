//! The WSGI environ: the request as PEP 3333 keys, plus `wsgi.input` and `wsgi.errors`.

use std::collections::{btree_map, BTreeMap};
use std::fmt;
use std::net::SocketAddr;

use http::{header, request, HeaderMap, Method, Version};

use crate::errors::Errors;
use crate::input::Input;

/// The client's address, as a request extension.
///
/// [`serve`](crate::serve) inserts it; with your own accept loop, insert it
/// yourself to get `REMOTE_ADDR` and `REMOTE_PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// The address the connection was accepted on, as a request extension.
///
/// Gives `SERVER_NAME` and `SERVER_PORT` (the bind address, as Werkzeug does).
/// Without it they come from the `Host` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalAddr(pub SocketAddr);

/// Marks a request that came over TLS, as a request extension:
/// `wsgi.url_scheme` is then `https` whatever
/// [`Builder::https`](crate::Builder::https) says.
///
/// `Server::tls` (feature `tls`) inserts it; with your own accept loop
/// and TLS stack, insert it yourself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Https;

/// The WSGI `environ`: every CGI and `HTTP_*` variable of the request as a
/// string, the `wsgi.*` entries as typed accessors, and room for whatever
/// applications and middleware add.
///
/// Dict-like access takes and gives strings ([`get`](Environ::get),
/// [`insert`](Environ::insert), [`remove`](Environ::remove),
/// [`iter`](Environ::iter)); where the wire gave bytes, each byte is one char
/// (latin-1), as PEP 3333 asks. Typed values go in
/// [`extensions`](Environ::extensions_mut).
///
/// ```
/// use tower_wsgi::Environ;
///
/// let mut environ = Environ::default();
/// environ.insert("PATH_INFO", "/hello");
/// environ.insert("myapp.user", "ada");
/// assert_eq!(environ.path_info(), "/hello");
/// assert_eq!(environ.get("myapp.user"), Some("ada"));
/// assert_eq!(environ.get("HTTP_ACCEPT"), None);
/// ```
pub struct Environ {
    vars: BTreeMap<String, String>,
    input: Input,
    errors: Errors,
    input_terminated: bool,
    extensions: http::Extensions,
}

impl Environ {
    /// The string value of `key`, like `environ.get(key)` in Python.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// Sets `key` to `value`, returning the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.vars.insert(key.into(), value.into())
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.vars.remove(key)
    }

    /// `true` if `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.vars.contains_key(key)
    }

    /// The string entries, sorted by key.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.vars.iter())
    }

    /// How many string entries there are.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// `true` when there are no string entries.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    fn str_or_empty(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// `REQUEST_METHOD`.
    pub fn request_method(&self) -> &str {
        self.str_or_empty("REQUEST_METHOD")
    }

    /// `SCRIPT_NAME`: where the application is mounted, `""` at the root.
    pub fn script_name(&self) -> &str {
        self.str_or_empty("SCRIPT_NAME")
    }

    /// `PATH_INFO`: the percent-decoded path below `SCRIPT_NAME`, one char per byte.
    pub fn path_info(&self) -> &str {
        self.str_or_empty("PATH_INFO")
    }

    /// `QUERY_STRING`, raw (still percent-encoded).
    pub fn query_string(&self) -> &str {
        self.str_or_empty("QUERY_STRING")
    }

    /// `CONTENT_TYPE`, if the request had one.
    pub fn content_type(&self) -> Option<&str> {
        self.get("CONTENT_TYPE")
    }

    /// `CONTENT_LENGTH` as a number, if present and valid.
    pub fn content_length(&self) -> Option<u64> {
        self.get("CONTENT_LENGTH")?.trim().parse().ok()
    }

    /// `SERVER_PROTOCOL`: `HTTP/1.0`, `HTTP/1.1` or `HTTP/2`.
    pub fn server_protocol(&self) -> &str {
        self.str_or_empty("SERVER_PROTOCOL")
    }

    /// `REMOTE_ADDR`, when the client's address is known.
    pub fn remote_addr(&self) -> Option<&str> {
        self.get("REMOTE_ADDR")
    }

    /// `wsgi.url_scheme`: `http` or `https`.
    pub fn url_scheme(&self) -> &str {
        self.get("wsgi.url_scheme").unwrap_or("http")
    }

    /// The `HTTP_*` value of a request header, by its HTTP name
    /// (`header("User-Agent")` reads `HTTP_USER_AGENT`).
    pub fn header(&self, name: &str) -> Option<&str> {
        let key = cgi_header_key(name.as_bytes());
        match key.as_str() {
            "CONTENT_TYPE" | "CONTENT_LENGTH" => self.get(&key),
            _ => self.get(&format!("HTTP_{key}")),
        }
    }

    /// `wsgi.version`: always `(1, 0)`.
    pub fn wsgi_version(&self) -> (u8, u8) {
        (1, 0)
    }

    /// `wsgi.input`: the request body.
    pub fn input(&mut self) -> &mut Input {
        &mut self.input
    }

    /// Takes `wsgi.input` out of the environ (to move it into a body
    /// iterator, say), leaving an empty one.
    pub fn take_input(&mut self) -> Input {
        std::mem::take(&mut self.input)
    }

    /// Replaces `wsgi.input` (for middleware that rewrites the body).
    pub fn set_input(&mut self, input: Input) {
        self.input = input;
    }

    /// `wsgi.errors`: text written here is logged through `tracing`.
    pub fn errors(&mut self) -> &mut Errors {
        &mut self.errors
    }

    /// `wsgi.input_terminated`: `true` when the body's end is marked by EOF
    /// (a chunked request) rather than `CONTENT_LENGTH`.
    pub fn input_terminated(&self) -> bool {
        self.input_terminated
    }

    /// `wsgi.multithread`: always `true`; applications run on a thread pool.
    pub fn multithread(&self) -> bool {
        true
    }

    /// `wsgi.multiprocess`: always `false`.
    pub fn multiprocess(&self) -> bool {
        false
    }

    /// `wsgi.run_once`: always `false`.
    pub fn run_once(&self) -> bool {
        false
    }

    /// Typed values: the request's own extensions, then whatever
    /// applications and middleware add.
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// Mutable access to the typed values.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.extensions
    }
}

impl Default for Environ {
    /// An environ with the keys PEP 3333 requires, for a `GET /` with no body.
    fn default() -> Self {
        let mut vars = BTreeMap::new();
        for (key, value) in [
            ("REQUEST_METHOD", "GET"),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", "/"),
            ("QUERY_STRING", ""),
            ("SERVER_NAME", "localhost"),
            ("SERVER_PORT", "80"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("wsgi.url_scheme", "http"),
        ] {
            vars.insert(key.to_owned(), value.to_owned());
        }
        Self {
            vars,
            input: Input::default(),
            errors: Errors::default(),
            input_terminated: false,
            extensions: http::Extensions::new(),
        }
    }
}

impl fmt::Debug for Environ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environ")
            .field("vars", &self.vars)
            .field("input_terminated", &self.input_terminated)
            .finish_non_exhaustive()
    }
}

/// Iterator over the string entries of an [`Environ`].
#[derive(Debug)]
pub struct Iter<'a>(btree_map::Iter<'a, String, String>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<'a> IntoIterator for &'a Environ {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Request facts the environ builder needs beyond the request itself.
#[derive(Debug, Clone)]
pub(crate) struct EnvironOptions<'a> {
    pub(crate) script_name: &'a str,
    pub(crate) url_scheme: &'a str,
    pub(crate) server_software: &'a str,
    pub(crate) keep_underscore_headers: bool,
}

/// Why a request cannot be turned into an environ.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EnvironError {
    /// The path is not below the configured `SCRIPT_NAME`.
    NotMounted,
}

/// Builds the environ of a request (RULES.md 12), `wsgi.input` aside.
pub(crate) fn build(
    parts: &request::Parts,
    input: Input,
    options: &EnvironOptions<'_>,
) -> Result<Environ, EnvironError> {
    let (uri, mount_len) = target(parts);
    let mut vars = BTreeMap::new();
    let mut set = |key: &str, value: String| {
        vars.insert(key.to_owned(), value);
    };

    set("REQUEST_METHOD", parts.method.as_str().to_owned());

    let (mount, below_mount) = uri.path().split_at(mount_len);
    let path = decoded(below_mount);
    let (script_name, path_info) = split_script_name(options.script_name, &path)?;
    set("SCRIPT_NAME", decoded(mount) + script_name);
    set("PATH_INFO", path_info.to_owned());
    // Raw bytes past ASCII reach us as UTF-8 `str`s: back to one char per byte.
    set("QUERY_STRING", latin1(uri.query().unwrap_or("").as_bytes()));

    let absolute_form = parts.version != Version::HTTP_2 && uri.scheme().is_some();
    let raw_target = if absolute_form {
        uri.to_string()
    } else {
        uri.path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned()
    };
    let raw_target = latin1(raw_target.as_bytes());
    set("REQUEST_URI", raw_target.clone());
    set("RAW_URI", raw_target);
    set("SERVER_PROTOCOL", protocol(parts.version).to_owned());
    set("SERVER_SOFTWARE", options.server_software.to_owned());
    let url_scheme = if parts.extensions.get::<Https>().is_some() {
        "https"
    } else {
        options.url_scheme
    };
    set("wsgi.url_scheme", url_scheme.to_owned());

    if let Some(addr) = remote_addr(parts) {
        set("REMOTE_ADDR", addr.ip().to_string());
        set("REMOTE_PORT", addr.port().to_string());
    }

    let authority = if absolute_form || parts.version == Version::HTTP_2 {
        uri.authority().map(|a| a.as_str().to_owned())
    } else {
        None
    };
    let (server_name, server_port) = server_name_and_port(parts, authority.as_deref(), url_scheme);
    set("SERVER_NAME", server_name);
    set("SERVER_PORT", server_port);

    add_headers(&mut vars, &parts.headers, options.keep_underscore_headers);
    if let Some(authority) = authority {
        vars.insert("HTTP_HOST".to_owned(), authority);
    }

    let chunked = parts
        .headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .any(|v| {
            v.as_bytes()
                .split(|&b| b == b',')
                .any(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"))
        });
    let input_terminated = chunked
        || (parts.version == Version::HTTP_2
            && !parts.headers.contains_key(header::CONTENT_LENGTH));

    Ok(Environ {
        vars,
        input,
        errors: Errors::default(),
        input_terminated,
        extensions: parts.extensions.clone(),
    })
}

/// The URI the environ describes, and the length of its path's part that a
/// router already mounted the service at (the start of `SCRIPT_NAME`).
///
/// Under an axum nest that is the original URI and the nest's prefix
/// ([`crate::axum`]); otherwise the request's URI, mounted nowhere. A
/// configured script name is then matched below that mount point.
fn target(parts: &request::Parts) -> (&http::Uri, usize) {
    #[cfg(feature = "axum")]
    if let Some(mount) = crate::axum::mount(parts) {
        return (mount.original, mount.prefix_len);
    }
    (&parts.uri, 0)
}

/// The client's address: [`RemoteAddr`], else axum's `ConnectInfo<SocketAddr>`.
fn remote_addr(parts: &request::Parts) -> Option<SocketAddr> {
    if let Some(RemoteAddr(addr)) = parts.extensions.get::<RemoteAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(addr) = crate::axum::connect_info(parts) {
        return Some(addr);
    }
    None
}

/// A raw path percent-decoded, one char per byte.
fn decoded(raw_path: &str) -> String {
    latin1(&percent_encoding::percent_decode(raw_path.as_bytes()).collect::<Vec<u8>>())
}

fn split_script_name<'p>(
    script_name: &'p str,
    path: &'p str,
) -> Result<(&'p str, &'p str), EnvironError> {
    if script_name.is_empty() {
        return Ok(("", path));
    }
    match path.strip_prefix(script_name) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => Ok((script_name, rest)),
        _ => Err(EnvironError::NotMounted),
    }
}

pub(crate) fn add_headers(
    vars: &mut BTreeMap<String, String>,
    headers: &HeaderMap,
    keep_underscore: bool,
) {
    for name in headers.keys() {
        let name_bytes = name.as_str().as_bytes();
        if !keep_underscore && name_bytes.contains(&b'_') {
            continue;
        }
        let mut values = headers.get_all(name).iter();
        let key = match name {
            n if n == header::CONTENT_TYPE || n == header::CONTENT_LENGTH => {
                // Werkzeug keeps the last of repeated Content-Type values.
                if let Some(last) = values.next_back() {
                    vars.insert(cgi_header_key(name_bytes), latin1(last.as_bytes()));
                }
                continue;
            }
            _ => format!("HTTP_{}", cgi_header_key(name_bytes)),
        };
        let separator = if name == header::COOKIE { "; " } else { "," };
        // A name can repeat under two spellings (`X_A`, `X-A`) when underscores are kept.
        let (mut joined, mut first) = match vars.remove(&key) {
            Some(earlier) => (earlier, false),
            None => (String::new(), true),
        };
        for value in values {
            if !first {
                joined.push_str(separator);
            }
            first = false;
            joined.push_str(&latin1(value.as_bytes()));
        }
        vars.insert(key, joined);
    }
}

fn server_name_and_port(
    parts: &request::Parts,
    authority: Option<&str>,
    scheme: &str,
) -> (String, String) {
    if let Some(LocalAddr(addr)) = parts.extensions.get::<LocalAddr>() {
        return (addr.ip().to_string(), addr.port().to_string());
    }
    let host = authority.or_else(|| {
        parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
    });
    let default_port = if scheme == "https" { "443" } else { "80" };
    match host.and_then(|h| h.parse::<http::uri::Authority>().ok()) {
        Some(authority) => (
            authority.host().to_owned(),
            authority
                .port_u16()
                .map_or_else(|| default_port.to_owned(), |p| p.to_string()),
        ),
        None => ("localhost".to_owned(), default_port.to_owned()),
    }
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// `Content-Type` → `CONTENT_TYPE`.
fn cgi_header_key(name: &[u8]) -> String {
    name.iter()
        .map(|&b| {
            if b == b'-' {
                '_'
            } else {
                char::from(b.to_ascii_uppercase())
            }
        })
        .collect()
}

/// Bytes as a string with one char per byte (ISO-8859-1), as PEP 3333 asks.
pub(crate) fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// `true` for `HEAD` requests, whose responses never carry body bytes.
pub(crate) fn is_head(method: &Method) -> bool {
    method == Method::HEAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn options() -> EnvironOptions<'static> {
        EnvironOptions {
            script_name: "",
            url_scheme: "http",
            server_software: "tower-wsgi",
            keep_underscore_headers: false,
        }
    }

    fn environ_of(req: Request<()>, options: &EnvironOptions<'_>) -> Result<Environ, EnvironError> {
        let (parts, ()) = req.into_parts();
        build(&parts, Input::default(), options)
    }

    #[test]
    fn path_info_is_percent_decoded_bytes_as_latin1() {
        let req = Request::get("/caf%C3%A9/%FF%2Fx?q=%20a").body(()).unwrap();
        let env = environ_of(req, &options()).unwrap();
        assert_eq!(env.path_info(), "/caf\u{c3}\u{a9}/\u{ff}/x");
        assert_eq!(env.query_string(), "q=%20a");
        assert_eq!(env.get("REQUEST_URI"), Some("/caf%C3%A9/%FF%2Fx?q=%20a"));
    }

    #[test]
    fn raw_non_ascii_target_bytes_are_one_char_each() {
        let uri =
            http::Uri::from_maybe_shared(bytes::Bytes::from_static(b"/caf\xc3\xa9?q=\xc3\xa9"))
                .expect("http accepts raw non-ASCII target bytes, as hyper does");
        let env = environ_of(Request::get(uri).body(()).unwrap(), &options()).unwrap();
        assert_eq!(env.path_info(), "/caf\u{c3}\u{a9}");
        assert_eq!(env.query_string(), "q=\u{c3}\u{a9}");
        assert_eq!(
            env.get("REQUEST_URI"),
            Some("/caf\u{c3}\u{a9}?q=\u{c3}\u{a9}")
        );
    }

    #[test]
    fn repeated_headers_join_with_comma_and_cookies_with_semicolon() {
        let req = Request::get("/")
            .header("X-Dup", "1")
            .header("X-Dup", "2")
            .header("Cookie", "a=1")
            .header("Cookie", "b=2")
            .header("Content-Type", "text/plain")
            .header("Content-Length", "0")
            .body(())
            .unwrap();
        let env = environ_of(req, &options()).unwrap();
        assert_eq!(env.get("HTTP_X_DUP"), Some("1,2"));
        assert_eq!(env.get("HTTP_COOKIE"), Some("a=1; b=2"));
        assert_eq!(env.content_type(), Some("text/plain"));
        assert_eq!(env.get("CONTENT_LENGTH"), Some("0"));
        assert!(!env.contains_key("HTTP_CONTENT_TYPE"));
        assert_eq!(env.header("x-dup"), Some("1,2"));
    }

    #[test]
    fn underscore_headers_are_dropped_unless_kept() {
        let req = || {
            Request::get("/")
                .header("X_Under", "u")
                .header("X-Under", "d")
                .body(())
                .unwrap()
        };
        let env = environ_of(req(), &options()).unwrap();
        assert_eq!(env.get("HTTP_X_UNDER"), Some("d"));
        let keep = EnvironOptions {
            keep_underscore_headers: true,
            ..options()
        };
        let merged = environ_of(req(), &keep).unwrap();
        assert_eq!(merged.get("HTTP_X_UNDER").map(str::len), Some(3));
    }

    #[test]
    fn absolute_form_target_sets_http_host() {
        let req = Request::get("http://other.example:9/env?x=1")
            .header("Host", "ignored")
            .body(())
            .unwrap();
        let env = environ_of(req, &options()).unwrap();
        assert_eq!(env.get("HTTP_HOST"), Some("other.example:9"));
        assert_eq!(
            env.get("REQUEST_URI"),
            Some("http://other.example:9/env?x=1")
        );
        assert_eq!(env.path_info(), "/env");
        assert_eq!(env.get("SERVER_NAME"), Some("other.example"));
        assert_eq!(env.get("SERVER_PORT"), Some("9"));
    }

    #[test]
    fn script_name_splits_the_path() {
        let mounted = EnvironOptions {
            script_name: "/app",
            ..options()
        };
        let cases = [
            ("/app", "", true),
            ("/app/", "/", true),
            ("/app/x/y", "/x/y", true),
            ("/appx", "", false),
        ];
        for (path, path_info, inside) in cases {
            let env = environ_of(Request::get(path).body(()).unwrap(), &mounted);
            match env {
                Ok(env) => {
                    assert!(inside, "{path}");
                    assert_eq!(env.script_name(), "/app");
                    assert_eq!(env.path_info(), path_info);
                }
                Err(e) => {
                    assert!(!inside, "{path}");
                    assert_eq!(e, EnvironError::NotMounted);
                }
            }
        }
    }

    #[test]
    fn chunked_requests_are_input_terminated() {
        let req = Request::post("/")
            .header("Transfer-Encoding", "gzip, Chunked")
            .body(())
            .unwrap();
        assert!(environ_of(req, &options()).unwrap().input_terminated());
        let req = Request::post("/")
            .header("Content-Length", "3")
            .body(())
            .unwrap();
        assert!(!environ_of(req, &options()).unwrap().input_terminated());
    }

    #[test]
    fn remote_and_local_addresses_come_from_extensions() {
        let mut req = Request::get("/")
            .version(Version::HTTP_10)
            .body(())
            .unwrap();
        req.extensions_mut()
            .insert(RemoteAddr("10.1.2.3:4567".parse().unwrap()));
        req.extensions_mut()
            .insert(LocalAddr("127.0.0.1:8000".parse().unwrap()));
        let env = environ_of(req, &options()).unwrap();
        assert_eq!(env.remote_addr(), Some("10.1.2.3"));
        assert_eq!(env.get("REMOTE_PORT"), Some("4567"));
        assert_eq!(env.get("SERVER_NAME"), Some("127.0.0.1"));
        assert_eq!(env.get("SERVER_PORT"), Some("8000"));
        assert_eq!(env.server_protocol(), "HTTP/1.0");
    }

    #[test]
    fn the_https_extension_makes_the_scheme_and_default_port_https() {
        let mut req = Request::get("/")
            .header("Host", "example.test")
            .body(())
            .unwrap();
        req.extensions_mut().insert(Https);
        let env = environ_of(req, &options()).unwrap();
        assert_eq!(env.url_scheme(), "https");
        assert_eq!(env.get("SERVER_PORT"), Some("443"));
        let plain = Request::get("/")
            .header("Host", "example.test")
            .body(())
            .unwrap();
        let env = environ_of(plain, &options()).unwrap();
        assert_eq!(
            (env.url_scheme(), env.get("SERVER_PORT")),
            ("http", Some("80"))
        );
    }
}
