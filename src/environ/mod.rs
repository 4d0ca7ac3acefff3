//! The WSGI environ: the request as PEP 3333 keys, `wsgi.input`,
//! `wsgi.errors`, and the request extensions the environ is made from.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::{btree_map, BTreeMap};
use std::fmt;
use std::iter::Peekable;
use std::sync::Arc;

mod build;
mod drain;
mod errors;
mod extensions;
mod input;
mod keys;
mod views;

use build::Received;
pub(crate) use build::{build, EnvironError, EnvironOptions};

pub(crate) use drain::is_worth_draining;
pub use errors::ErrorStream;
pub use extensions::{Https, LocalAddr, MountPoint, RemoteAddr};
pub(crate) use input::{block_on, boxed_bytes_body, send_in_batches, BodyFault, FaultHolder};
pub use input::{Input, InputBody};
pub(crate) use keys::{add_headers, header_name_of};
use keys::{cgi_header_key, HeaderVar};

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
    /// Header variables read one at a time while `header_vars` is unmade
    /// and that could not borrow the header's bytes (joined or past ASCII):
    /// reading one key costs that header, not all of them.
    made: Made,
    /// The request as received: each group of variables is made from it the
    /// first time one of them is asked for, since many applications read
    /// few of them, and some none.
    received: Option<Received>,
    input: Input,
    /// Made on first use: most requests never write to `wsgi.errors`.
    errors: OnceCell<ErrorStream>,
    input_terminated: bool,
    extensions: http::Extensions,
    /// Where the request's memory goes when the environ is dropped: back to
    /// the async worker that allocated it, when the environ lives on an
    /// application thread.
    home: Option<Arc<dyn Home>>,
}

/// The request's own memory (its headers, URI and extensions, allocated
/// by hyper on an async worker), handed back to be freed there: glibc's
/// malloc makes a free on another thread costly (arena locks).
pub(crate) struct Leftovers {
    received: Option<Received>,
    extensions: http::Extensions,
}

impl Leftovers {
    /// Frees all but the request's header map and extensions, and returns
    /// those (for later requests to reuse).
    pub(crate) fn into_reusable(self) -> (Option<http::HeaderMap>, http::Extensions) {
        (self.received.map(Received::into_headers), self.extensions)
    }
}

/// Takes an environ's [`Leftovers`] for the async worker to drop.
pub(crate) trait Home: Send + Sync {
    fn keep(&self, leftovers: Leftovers);
}

impl Drop for Environ {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            home.keep(Leftovers {
                received: self.received.take(),
                extensions: std::mem::take(&mut self.extensions),
            });
        }
    }
}

impl Environ {
    /// The string value of `key`, like `environ.get(key)` in Python.
    pub fn get(&self, key: &str) -> Option<&str> {
        if !is_header_key(key) {
            return self.vars().get(key).map(AsRef::as_ref);
        }
        if let (None, Some(received)) = (self.header_vars.get(), &self.received) {
            if let Some(value) = self.made.get(key) {
                return Some(value);
            }
            match received.header_var(key) {
                Some(HeaderVar::Absent) => return None,
                Some(HeaderVar::Borrowed(value)) => return Some(value),
                Some(HeaderVar::Made(value)) => return Some(self.made.add(key, value)),
                None => {}
            }
        }
        self.header_vars().get(key).map(AsRef::as_ref)
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

    /// Every string entry into `sink`, in no particular order. A group of
    /// variables nobody asked for yet goes straight from the request to the
    /// sink, with no map made on the way (a hosted app's dict is filled so).
    #[cfg_attr(not(feature = "python"), allow(dead_code))]
    pub(crate) fn each_var(&self, sink: &mut impl VarSink) {
        let groups = [
            (self.vars.get(), Group::Request),
            (self.header_vars.get(), Group::Headers),
        ];
        for (made, group) in groups {
            match (made, &self.received) {
                (Some(vars), _) => {
                    for (key, value) in vars {
                        sink.var(key.clone(), Cow::Borrowed(value), None);
                    }
                }
                (None, Some(received)) => match group {
                    Group::Request => received.add_request_vars(sink),
                    Group::Headers => received.add_header_vars(sink),
                },
                (None, None) => {}
            }
        }
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

    /// `CONTENT_LENGTH` as a number, if present and valid (digits only).
    ///
    /// ```
    /// let mut environ = tower_wsgi::Environ::default();
    /// environ.insert("CONTENT_LENGTH", "+5");
    /// assert_eq!(environ.content_length(), None);
    /// environ.insert("CONTENT_LENGTH", " 5 ");
    /// assert_eq!(environ.content_length(), Some(5));
    /// ```
    pub fn content_length(&self) -> Option<u64> {
        crate::headers::parse_content_length(self.get("CONTENT_LENGTH")?.as_bytes())
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
    ///
    /// A handle to the request's one error stream, returned by value so
    /// that it does not keep the environ borrowed:
    ///
    /// ```
    /// use std::io::Write;
    /// let environ = tower_wsgi::Environ::default();
    /// writeln!(environ.errors(), "no handler for {}", environ.path_info()).unwrap();
    /// ```
    pub fn errors(&self) -> ErrorStream {
        self.errors.get_or_init(ErrorStream::default).clone()
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

    /// A copy for a sub-request, with an empty `wsgi.input`: Python's
    /// `environ.copy()` where the sub-request reads no body.
    ///
    /// Every string entry is copied, as it reads now (changes made to this
    /// environ included), and so are the [extensions](Environ::extensions)
    /// (which are all `Clone`). `wsgi.input` reads as empty, but
    /// `CONTENT_LENGTH` and `CONTENT_TYPE` are copied as they are: remove
    /// them for a sub-request without a body. `wsgi.errors` is the same
    /// stream. Changing the copy leaves this environ alone.
    ///
    /// ```
    /// use tower_wsgi::environ::Input;
    /// use tower_wsgi::Environ;
    ///
    /// let mut environ = Environ::default();
    /// environ.set_input(Input::from_bytes("body"));
    /// environ.extensions_mut().insert(7u32);
    /// let mut sub = environ.copy_with_empty_input();
    /// sub.insert("PATH_INFO", "/other");
    /// assert_eq!(environ.path_info(), "/");
    /// assert_eq!(sub.extensions().get::<u32>(), Some(&7));
    /// assert!(sub.input().read_all().unwrap().is_empty());
    /// assert_eq!(environ.input().read_all().unwrap(), b"body"); // still there
    /// ```
    pub fn copy_with_empty_input(&self) -> Environ {
        Environ {
            vars: OnceCell::from(self.vars().clone()),
            header_vars: OnceCell::from(self.header_vars().clone()),
            made: Made::default(),
            received: None,
            input: Input::default(),
            errors: OnceCell::from(self.errors()),
            input_terminated: self.input_terminated,
            extensions: self.extensions.clone(),
            home: None,
        }
    }

    /// A copy for a sub-request that reads the body too: the rest of
    /// `wsgi.input` is read into memory now, and both this environ and the
    /// copy then read those same bytes from the start.
    ///
    /// Otherwise as [`copy_with_empty_input`](Environ::copy_with_empty_input).
    /// The whole body is held in memory, so mind the body limit
    /// ([`Builder::max_request_body`](crate::Builder::max_request_body)); a
    /// read error (a body over the limit, a client that went away) is
    /// returned, and this environ's input then holds what was read before it.
    ///
    /// ```
    /// use tower_wsgi::environ::Input;
    /// use tower_wsgi::Environ;
    ///
    /// let mut environ = Environ::default();
    /// environ.set_input(Input::from_bytes("a=1&b=2"));
    /// let mut sub = environ.copy_with_buffered_input().unwrap();
    /// assert_eq!(sub.input().read_all().unwrap(), b"a=1&b=2");
    /// assert_eq!(environ.input().read_all().unwrap(), b"a=1&b=2");
    /// ```
    pub fn copy_with_buffered_input(&mut self) -> std::io::Result<Environ> {
        let mut body = Vec::new();
        let read = std::io::Read::read_to_end(&mut self.input, &mut body);
        let body = bytes::Bytes::from(body);
        self.input = Input::from_bytes(body.clone());
        read?;
        let mut copy = self.copy_with_empty_input();
        copy.input = Input::from_bytes(body);
        Ok(copy)
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
            made: Made::default(),
            received: None,
            input: Input::default(),
            errors: OnceCell::new(),
            input_terminated: false,
            extensions: http::Extensions::new(),
            home: None,
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

/// A key or value: static where it can be, to spare an allocation.
pub(crate) type Text = Cow<'static, str>;
pub(crate) type Vars = BTreeMap<Text, Text>;

/// Variables made one at a time, kept for the environ's life so that `get`
/// can lend them out: a list that only grows, each entry in a box of its own
/// that never moves.
#[derive(Default)]
struct Made {
    first: OnceCell<Box<MadeVar>>,
}

struct MadeVar {
    key: Box<str>,
    value: String,
    next: OnceCell<Box<MadeVar>>,
}

impl Made {
    fn get(&self, key: &str) -> Option<&str> {
        let mut next = self.first.get();
        while let Some(var) = next {
            if &*var.key == key {
                return Some(&var.value);
            }
            next = var.next.get();
        }
        None
    }

    /// Adds `key` (not yet present) at the end.
    fn add(&self, key: &str, value: String) -> &str {
        let mut last = &self.first;
        while let Some(var) = last.get() {
            last = &var.next;
        }
        let var = last.get_or_init(|| {
            Box::new(MadeVar {
                key: key.into(),
                value,
                next: OnceCell::new(),
            })
        });
        &var.value
    }
}

/// Where a request's variables go as they are made: the environ's own maps,
/// or a hosted application's dict.
pub(crate) trait VarSink {
    /// Sets `key`. Keys come once each, except a header name spelt two ways
    /// (`X_A`, `X-A`, when underscores are kept): `join` is then `Some`, and
    /// a value already set for the key is joined with it as the separator.
    fn var(&mut self, key: Text, value: Cow<'_, str>, join: Option<&str>);
}

impl VarSink for Vars {
    fn var(&mut self, key: Text, value: Cow<'_, str>, join: Option<&str>) {
        match (self.entry(key), join) {
            (btree_map::Entry::Occupied(entry), Some(separator)) => {
                let joined = entry.into_mut().to_mut();
                joined.push_str(separator);
                joined.push_str(&value);
            }
            (btree_map::Entry::Occupied(mut entry), None) => {
                entry.insert(Cow::Owned(value.into_owned()));
            }
            (btree_map::Entry::Vacant(entry), _) => {
                entry.insert(Cow::Owned(value.into_owned()));
            }
        }
    }
}

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

/// `path` below `prefix`, when `prefix` is `""` or a whole number of its
/// segments (`/app` holds `/app` and `/app/x`, not `/appx`): the one rule
/// for script names, mount points and dispatcher prefixes.
pub(crate) fn below_prefix<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    let rest = path.strip_prefix(prefix)?;
    (prefix.is_empty() || rest.is_empty() || rest.starts_with('/')).then_some(rest)
}
