//! The WSGI environ: the request as PEP 3333 keys, plus `wsgi.input` and `wsgi.errors`.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::{btree_map, BTreeMap};
use std::fmt;
use std::iter::Peekable;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{header, request, HeaderMap, HeaderName, Method, Version};

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
    /// Every variable but those of the request headers.
    vars: OnceCell<Vars>,
    /// `HTTP_*`, `CONTENT_TYPE` and `CONTENT_LENGTH`.
    header_vars: OnceCell<Vars>,
    /// The request as received: each group of variables is made from it the
    /// first time one of them is asked for, since many applications read
    /// few of them, and some none.
    received: Option<Received>,
    input: Input,
    errors: Errors,
    input_terminated: bool,
    extensions: http::Extensions,
}

impl Environ {
    /// The string value of `key`, like `environ.get(key)` in Python.
    pub fn get(&self, key: &str) -> Option<&str> {
        let vars = if is_header_key(key) {
            self.header_vars()
        } else {
            self.vars()
        };
        vars.get(key).map(AsRef::as_ref)
    }

    /// Sets `key` to `value`, returning the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        let (key, value) = (Cow::Owned(key.into()), Cow::Owned(value.into()));
        let group = Group::of(&key);
        self.change(group, |vars| vars.insert(key, value))
            .map(Cow::into_owned)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.change(Group::of(key), |vars| vars.remove(key))
            .map(Cow::into_owned)
    }

    /// `true` if `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The string entries, sorted by key.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            vars: self.vars().iter().peekable(),
            header_vars: self.header_vars().iter().peekable(),
        }
    }

    /// How many string entries there are.
    pub fn len(&self) -> usize {
        self.vars().len() + self.header_vars().len()
    }

    /// `true` when there are no string entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn vars(&self) -> &Vars {
        self.vars.get_or_init(|| self.make(Group::Request))
    }

    fn header_vars(&self) -> &Vars {
        self.header_vars.get_or_init(|| self.make(Group::Headers))
    }

    fn make(&self, group: Group) -> Vars {
        let mut vars = Vars::new();
        if let Some(received) = &self.received {
            match group {
                Group::Request => received.add_request_vars(&mut vars),
                Group::Headers => received.add_header_vars(&mut vars),
            }
        }
        vars
    }

    fn change<R>(&mut self, group: Group, change: impl FnOnce(&mut Vars) -> R) -> R {
        let cell = match group {
            Group::Request => &mut self.vars,
            Group::Headers => &mut self.header_vars,
        };
        let mut vars = match cell.take() {
            Some(vars) => vars,
            None => self.make(group),
        };
        let result = change(&mut vars);
        let cell = match group {
            Group::Request => &mut self.vars,
            Group::Headers => &mut self.header_vars,
        };
        *cell = OnceCell::from(vars);
        result
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
        let mut vars = Vars::new();
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
            vars.insert(Cow::Borrowed(key), Cow::Borrowed(value));
        }
        Self {
            vars: OnceCell::from(vars),
            header_vars: OnceCell::from(Vars::new()),
            received: None,
            input: Input::default(),
            errors: Errors::default(),
            input_terminated: false,
            extensions: http::Extensions::new(),
        }
    }
}

impl fmt::Debug for Environ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Entries<'a>(&'a Environ);
        impl fmt::Debug for Entries<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map().entries(self.0.iter()).finish()
            }
        }
        f.debug_struct("Environ")
            .field("vars", &Entries(self))
            .field("input_terminated", &self.input_terminated)
            .finish_non_exhaustive()
    }
}

/// Iterator over the string entries of an [`Environ`], sorted by key.
pub struct Iter<'a> {
    vars: Peekable<btree_map::Iter<'a, Text, Text>>,
    header_vars: Peekable<btree_map::Iter<'a, Text, Text>>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        // Two sorted maps with disjoint keys: merge them.
        let from_headers = match (self.vars.peek(), self.header_vars.peek()) {
            (Some((a, _)), Some((b, _))) => b < a,
            (None, Some(_)) => true,
            _ => false,
        };
        let next = if from_headers {
            self.header_vars.next()
        } else {
            self.vars.next()
        };
        next.map(|(k, v)| (k.as_ref(), v.as_ref()))
    }
}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

impl<'a> IntoIterator for &'a Environ {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The service's options the environ is made with.
#[derive(Debug, Clone, Default)]
pub(crate) struct EnvironOptions {
    pub(crate) script_name: String,
    pub(crate) https: bool,
    pub(crate) server_software: String,
    pub(crate) keep_underscore_headers: bool,
}

/// A key or value: static where it can be, to spare an allocation.
pub(crate) type Text = Cow<'static, str>;
pub(crate) type Vars = BTreeMap<Text, Text>;

/// Which map a key lives in.
#[derive(Clone, Copy)]
enum Group {
    /// CGI and `wsgi.*` variables, and anything applications add.
    Request,
    /// `HTTP_*`, `CONTENT_TYPE`, `CONTENT_LENGTH`.
    Headers,
}

impl Group {
    fn of(key: &str) -> Self {
        if is_header_key(key) {
            Self::Headers
        } else {
            Self::Request
        }
    }
}

/// The keys made from request headers.
fn is_header_key(key: &str) -> bool {
    key.starts_with("HTTP_") || key == "CONTENT_TYPE" || key == "CONTENT_LENGTH"
}

/// What the environ is made of: the request as received, and the options.
struct Received {
    method: Method,
    /// The URI the client sent (under an axum nest, the original one).
    uri: http::Uri,
    /// Length of the path's part a router mounted the service at.
    mount_len: usize,
    version: Version,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    local: Option<SocketAddr>,
    https: bool,
    /// `HTTP_HOST` from the target's authority (HTTP/2, absolute-form).
    authority: Option<String>,
    options: Arc<EnvironOptions>,
}

impl Received {
    fn absolute_form(&self) -> bool {
        self.version != Version::HTTP_2 && self.uri.scheme().is_some()
    }

    fn add_request_vars(&self, vars: &mut Vars) {
        let mut set = |key: &'static str, value: Text| {
            vars.insert(Cow::Borrowed(key), value);
        };
        let uri = &self.uri;
        set("REQUEST_METHOD", method_text(&self.method));

        let (mount, below_mount) = uri.path().split_at(self.mount_len);
        let path = decoded(below_mount);
        // `build` refused a path outside the configured script name.
        let (script_name, path_info) =
            split_script_name(&self.options.script_name, &path).unwrap_or(("", &path));
        let script_name = if mount.is_empty() && script_name.is_empty() {
            Cow::Borrowed("")
        } else {
            Cow::Owned(decoded(mount) + script_name)
        };
        set("SCRIPT_NAME", script_name);
        set("PATH_INFO", Cow::Owned(path_info.to_owned()));
        // Raw bytes past ASCII reach us as UTF-8 `str`s: back to one char per byte.
        let query = match uri.query() {
            None | Some("") => Cow::Borrowed(""),
            Some(query) => Cow::Owned(latin1(query.as_bytes())),
        };
        set("QUERY_STRING", query);

        let raw_target = if self.absolute_form() {
            latin1(uri.to_string().as_bytes())
        } else {
            latin1(
                uri.path_and_query()
                    .map_or("/", |pq| pq.as_str())
                    .as_bytes(),
            )
        };
        set("REQUEST_URI", Cow::Owned(raw_target.clone()));
        set("RAW_URI", Cow::Owned(raw_target));
        set("SERVER_PROTOCOL", Cow::Borrowed(protocol(self.version)));
        set(
            "SERVER_SOFTWARE",
            Cow::Owned(self.options.server_software.clone()),
        );
        let url_scheme = if self.https { "https" } else { "http" };
        set("wsgi.url_scheme", Cow::Borrowed(url_scheme));

        if let Some(addr) = self.remote {
            set("REMOTE_ADDR", Cow::Owned(addr.ip().to_string()));
            set("REMOTE_PORT", Cow::Owned(addr.port().to_string()));
        }
        let (server_name, server_port) = self.server_name_and_port(url_scheme);
        set("SERVER_NAME", Cow::Owned(server_name));
        set("SERVER_PORT", server_port);
    }

    fn add_header_vars(&self, vars: &mut Vars) {
        add_headers(vars, &self.headers, self.options.keep_underscore_headers);
        if let Some(authority) = &self.authority {
            vars.insert(Cow::Borrowed("HTTP_HOST"), Cow::Owned(authority.clone()));
        }
    }

    fn server_name_and_port(&self, scheme: &str) -> (String, Text) {
        if let Some(addr) = self.local {
            return (addr.ip().to_string(), Cow::Owned(addr.port().to_string()));
        }
        let host = self
            .authority
            .as_deref()
            .or_else(|| self.headers.get(header::HOST).and_then(|h| h.to_str().ok()));
        let default_port = Cow::Borrowed(if scheme == "https" { "443" } else { "80" });
        match host.and_then(|h| h.parse::<http::uri::Authority>().ok()) {
            Some(authority) => (
                authority.host().to_owned(),
                authority
                    .port_u16()
                    .map_or(default_port, |p| Cow::Owned(p.to_string())),
            ),
            None => ("localhost".to_owned(), default_port),
        }
    }
}

/// Why a request cannot be turned into an environ.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EnvironError {
    /// The path is not below the configured `SCRIPT_NAME`.
    NotMounted,
}

/// Builds the environ of a request (RULES.md 12), `wsgi.input` aside. Its
/// variables are made when first asked for; only a path outside the
/// configured script name is found out here.
pub(crate) fn build(
    parts: request::Parts,
    input: Input,
    options: &Arc<EnvironOptions>,
) -> Result<Environ, EnvironError> {
    let (uri, mount_len) = match mounted(&parts) {
        Some((original, mount_len)) => (original.clone(), mount_len),
        None => (parts.uri, 0),
    };
    if !options.script_name.is_empty() {
        split_script_name(&options.script_name, &decoded(&uri.path()[mount_len..]))?;
    }
    let absolute_form = parts.version != Version::HTTP_2 && uri.scheme().is_some();
    let authority = if absolute_form || parts.version == Version::HTTP_2 {
        // RFC 9110 4.2.4: userinfo is no part of the host (refused unless
        // the service is lenient, and dropped even then).
        uri.authority()
            .and_then(|a| a.as_str().rsplit('@').next())
            .map(str::to_owned)
    } else {
        None
    };
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
    let received = Received {
        method: parts.method,
        mount_len,
        version: parts.version,
        remote: remote_addr(&parts.extensions),
        local: parts.extensions.get::<LocalAddr>().map(|local| local.0),
        https: options.https || parts.extensions.get::<Https>().is_some(),
        authority,
        headers: parts.headers,
        uri,
        options: options.clone(),
    };
    Ok(Environ {
        vars: OnceCell::new(),
        header_vars: OnceCell::new(),
        received: Some(received),
        input,
        errors: Errors::default(),
        input_terminated,
        extensions: parts.extensions,
    })
}

fn method_text(method: &Method) -> Text {
    let known = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => return Cow::Owned(method.as_str().to_owned()),
    };
    Cow::Borrowed(known)
}

/// Under an axum nest: the URI the client sent, and the length of its
/// path's part the service is mounted at (the start of `SCRIPT_NAME`),
/// from the nest's pattern ([`crate::axum`]). A configured script name is
/// then matched below that mount point. `None` when nothing mounted the
/// service: the request's URI is the one to describe.
fn mounted(parts: &request::Parts) -> Option<(&http::Uri, usize)> {
    #[cfg(feature = "axum")]
    if let Some(mount) = crate::axum::mount(parts) {
        return Some((mount.original, mount.prefix_len));
    }
    let _ = parts;
    None
}

/// The client's address: [`RemoteAddr`], else axum's `ConnectInfo<SocketAddr>`.
pub(crate) fn remote_addr(extensions: &http::Extensions) -> Option<SocketAddr> {
    if let Some(RemoteAddr(addr)) = extensions.get::<RemoteAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(addr) = crate::axum::connect_info(extensions) {
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

pub(crate) fn add_headers(vars: &mut Vars, headers: &HeaderMap, keep_underscore: bool) {
    for name in headers.keys() {
        if !keep_underscore && name.as_str().contains('_') {
            continue;
        }
        let mut values = headers.get_all(name).iter();
        if name == header::CONTENT_TYPE || name == header::CONTENT_LENGTH {
            // Werkzeug keeps the last of repeated Content-Type values.
            if let Some(last) = values.next_back() {
                let key = if name == header::CONTENT_TYPE {
                    "CONTENT_TYPE"
                } else {
                    "CONTENT_LENGTH"
                };
                vars.insert(Cow::Borrowed(key), Cow::Owned(latin1(last.as_bytes())));
            }
            continue;
        }
        let separator = if name == header::COOKIE { "; " } else { "," };
        // A name can repeat under two spellings (`X_A`, `X-A`) when underscores are kept.
        let (joined, mut first) = match vars.entry(http_key(name)) {
            btree_map::Entry::Occupied(entry) => (entry.into_mut().to_mut(), false),
            btree_map::Entry::Vacant(entry) => {
                (entry.insert(Cow::Owned(String::new())).to_mut(), true)
            }
        };
        for value in values {
            if !first {
                joined.push_str(separator);
            }
            first = false;
            push_latin1(joined, value.as_bytes());
        }
    }
}

/// `User-Agent` → `HTTP_USER_AGENT`, without an allocation for common names.
fn http_key(name: &HeaderName) -> Text {
    let known = match name.as_str() {
        "host" => "HTTP_HOST",
        "user-agent" => "HTTP_USER_AGENT",
        "accept" => "HTTP_ACCEPT",
        "accept-encoding" => "HTTP_ACCEPT_ENCODING",
        "accept-language" => "HTTP_ACCEPT_LANGUAGE",
        "cookie" => "HTTP_COOKIE",
        "referer" => "HTTP_REFERER",
        "connection" => "HTTP_CONNECTION",
        "cache-control" => "HTTP_CACHE_CONTROL",
        "authorization" => "HTTP_AUTHORIZATION",
        "origin" => "HTTP_ORIGIN",
        "upgrade-insecure-requests" => "HTTP_UPGRADE_INSECURE_REQUESTS",
        "if-none-match" => "HTTP_IF_NONE_MATCH",
        "if-modified-since" => "HTTP_IF_MODIFIED_SINCE",
        "x-forwarded-for" => "HTTP_X_FORWARDED_FOR",
        "x-forwarded-proto" => "HTTP_X_FORWARDED_PROTO",
        "x-requested-with" => "HTTP_X_REQUESTED_WITH",
        "transfer-encoding" => "HTTP_TRANSFER_ENCODING",
        "expect" => "HTTP_EXPECT",
        other => {
            let mut key = String::with_capacity(5 + other.len());
            key.push_str("HTTP_");
            key.push_str(&cgi_header_key(other.as_bytes()));
            return Cow::Owned(key);
        }
    };
    Cow::Borrowed(known)
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
    let mut text = String::with_capacity(bytes.len());
    push_latin1(&mut text, bytes);
    text
}

fn push_latin1(text: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(ascii) if ascii.is_ascii() => text.push_str(ascii),
        _ => text.extend(bytes.iter().map(|&b| char::from(b))),
    }
}

/// `true` for `HEAD` requests, whose responses never carry body bytes.
pub(crate) fn is_head(method: &Method) -> bool {
    method == Method::HEAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn options() -> EnvironOptions {
        EnvironOptions {
            script_name: String::new(),
            https: false,
            server_software: "tower-wsgi".to_owned(),
            keep_underscore_headers: false,
        }
    }

    fn environ_of(req: Request<()>, options: &EnvironOptions) -> Result<Environ, EnvironError> {
        let (parts, ()) = req.into_parts();
        build(parts, Input::default(), &Arc::new(options.clone()))
    }

    #[test]
    fn header_variables_made_on_first_use_behave_like_the_rest() {
        let request = || {
            Request::get("/")
                .header("host", "example.com")
                .header("x-b", "2")
                .header("x-b", "3")
                .header("content-type", "text/plain")
                .body(())
                .unwrap()
        };
        // Written before anything was read.
        let mut env = environ_of(request(), &options()).unwrap();
        assert_eq!(env.insert("HTTP_X_A", "1"), None);
        assert_eq!(env.remove("HTTP_HOST").as_deref(), Some("example.com"));
        assert_eq!(env.get("HTTP_X_A"), Some("1"));
        assert_eq!(env.get("HTTP_HOST"), None);
        assert_eq!(env.get("HTTP_X_B"), Some("2,3"));

        // Read first, then written; the other keys are untouched.
        let mut env = environ_of(request(), &options()).unwrap();
        assert_eq!(env.header("X-B"), Some("2,3"));
        assert_eq!(env.insert("HTTP_X_B", "4").as_deref(), Some("2,3"));
        assert_eq!(env.insert("PATH_INFO", "/moved").as_deref(), Some("/"));
        assert_eq!(env.get("HTTP_X_B"), Some("4"));
        assert_eq!(env.content_type(), Some("text/plain"));

        // One sorted sequence, header variables and the rest merged.
        let keys: Vec<&str> = env.iter().map(|(k, _)| k).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), env.len());
        for key in [
            "CONTENT_TYPE",
            "HTTP_HOST",
            "HTTP_X_B",
            "PATH_INFO",
            "wsgi.url_scheme",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
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
    fn absolute_form_userinfo_never_reaches_http_host() {
        let req = Request::get("http://user:pass@example.com:8080/environ")
            .header("Host", "ignored")
            .body(())
            .unwrap();
        let env = environ_of(req, &options()).unwrap();
        assert_eq!(env.get("HTTP_HOST"), Some("example.com:8080"));
        assert_eq!(env.get("SERVER_NAME"), Some("example.com"));
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
            script_name: "/app".to_owned(),
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
