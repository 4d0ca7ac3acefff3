//! The small helpers a port reaches for: Python's `wsgiref.util`
//! ([`request_uri`], [`application_uri`], [`shift_path_info`],
//! [`guess_scheme`]), Werkzeug's cookie parsing ([`parse_cookie`],
//! [`cookies`]) and conditional requests ([`Validators`], [`Precondition`]).
//!
//! Each behaves as its Python original does on the same environ, including
//! the odd corners (`shift_path_info` on `/`, `request_uri` with an empty
//! `SCRIPT_NAME`). Environ values are PEP 3333 "native strings", one char
//! per byte; the URL helpers percent-encode those bytes as Python's
//! `quote(..., encoding="latin1")` does.
//!
//! ```
//! use tower_wsgi::{util, Environ};
//!
//! let mut environ = Environ::default();
//! environ.insert("HTTP_HOST", "example.com");
//! environ.insert("SCRIPT_NAME", "/app");
//! environ.insert("PATH_INFO", "/caf\u{c3}\u{a9}/x");
//! environ.insert("QUERY_STRING", "q=1");
//! assert_eq!(util::request_uri(&environ, true), "http://example.com/app/caf%C3%A9/x?q=1");
//! assert_eq!(util::application_uri(&environ), "http://example.com/app");
//!
//! assert_eq!(util::shift_path_info(&mut environ).as_deref(), Some("caf\u{c3}\u{a9}"));
//! assert_eq!(environ.script_name(), "/app/caf\u{c3}\u{a9}");
//! assert_eq!(environ.path_info(), "/x");
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::environ::Environ;

// ----- wsgiref.util -----

/// `wsgiref.util.guess_scheme(environ)`: `https` when the CGI variable
/// `HTTPS` is `yes`, `on` or `1`, else `http`.
///
/// The crate sets `wsgi.url_scheme` itself; this is for environs that come
/// from elsewhere (a CGI gateway, a test).
pub fn guess_scheme(environ: &Environ) -> &'static str {
    match environ.get("HTTPS") {
        Some("yes" | "on" | "1") => "https",
        _ => "http",
    }
}

/// `wsgiref.util.application_uri(environ)`: the URL of the application's
/// root, without `PATH_INFO` or `QUERY_STRING`.
///
/// The host is `HTTP_HOST` when set and non-empty, else `SERVER_NAME` with
/// `SERVER_PORT` unless it is the scheme's default; `SCRIPT_NAME` (or `/`)
/// is percent-encoded, `/` kept. Keys Python would fail on with a
/// `KeyError` read as the environ's defaults (`wsgi.url_scheme` `http`,
/// an empty `SERVER_NAME`).
pub fn application_uri(environ: &Environ) -> String {
    let scheme = environ.url_scheme();
    let mut url = format!("{scheme}://");
    match environ.get("HTTP_HOST") {
        Some(host) if !host.is_empty() => url.push_str(host),
        _ => {
            url.push_str(environ.get("SERVER_NAME").unwrap_or(""));
            let port = environ.get("SERVER_PORT").unwrap_or("");
            let default = if scheme == "https" { "443" } else { "80" };
            if port != default {
                url.push(':');
                url.push_str(port);
            }
        }
    }
    let script_name = match environ.script_name() {
        "" => "/",
        script_name => script_name,
    };
    quote_into(&mut url, script_name, b"/");
    url
}

/// `wsgiref.util.request_uri(environ, include_query)`: the full URL of the
/// request, `QUERY_STRING` appended when `include_query` and non-empty.
///
/// `PATH_INFO` is percent-encoded keeping `/;=,`, as Python does; with an
/// empty `SCRIPT_NAME` its first char is dropped (the `/` that
/// [`application_uri`] already ends with).
pub fn request_uri(environ: &Environ, include_query: bool) -> String {
    let mut url = application_uri(environ);
    let mut path_info = String::new();
    quote_into(&mut path_info, environ.path_info(), b"/;=,");
    if environ.script_name().is_empty() {
        // Python slices off the first char, whatever it is.
        let mut chars = path_info.chars();
        chars.next();
        url.push_str(chars.as_str());
    } else {
        url.push_str(&path_info);
    }
    let query = environ.query_string();
    if include_query && !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// `wsgiref.util.shift_path_info(environ)`: moves the first segment of
/// `PATH_INFO` to the end of `SCRIPT_NAME` and returns it; `None` when
/// `PATH_INFO` is empty.
///
/// As in Python: empty and `.` segments between others are dropped,
/// `SCRIPT_NAME` is normalized like `posixpath.normpath`, a `PATH_INFO` of
/// `/` returns `""` and leaves `SCRIPT_NAME` ending in `/`, and a segment
/// of `.` returns `None` after shifting.
///
/// ```
/// use tower_wsgi::{util, Environ};
///
/// let mut environ = Environ::default();
/// environ.insert("PATH_INFO", "/a//./b/");
/// assert_eq!(util::shift_path_info(&mut environ).as_deref(), Some("a"));
/// assert_eq!((environ.script_name(), environ.path_info()), ("/a", "/b/"));
/// assert_eq!(util::shift_path_info(&mut environ).as_deref(), Some("b"));
/// assert_eq!(util::shift_path_info(&mut environ).as_deref(), Some(""));
/// assert_eq!((environ.script_name(), environ.path_info()), ("/a/b/", ""));
/// assert_eq!(util::shift_path_info(&mut environ), None);
/// ```
pub fn shift_path_info(environ: &mut Environ) -> Option<String> {
    let path_info = environ.path_info();
    if path_info.is_empty() {
        return None;
    }
    let mut parts: Vec<&str> = path_info.split('/').collect();
    if parts.len() > 2 {
        let last = parts.len() - 1;
        let mut kept: Vec<&str> = vec![parts[0]];
        kept.extend(
            parts[1..last]
                .iter()
                .copied()
                .filter(|p| !p.is_empty() && *p != "."),
        );
        kept.push(parts[last]);
        parts = kept;
    }
    // `path_parts[1]` raises IndexError in Python for a PATH_INFO without
    // a `/`; the segment is then the whole value, nothing is left.
    let name = if parts.len() > 1 {
        parts.remove(1).to_owned()
    } else {
        std::mem::take(&mut parts[0]).to_owned()
    };
    let new_path_info = parts.join("/");

    let mut script_name = normpath(&format!("{}/{}", environ.script_name(), name));
    if script_name.ends_with('/') {
        script_name.pop();
    }
    if name.is_empty() && !script_name.ends_with('/') {
        script_name.push('/');
    }
    environ.insert("SCRIPT_NAME", script_name);
    environ.insert("PATH_INFO", new_path_info);
    (name != ".").then_some(name)
}

/// `posixpath.normpath`.
fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let initial_slashes = if path.starts_with("//") && !path.starts_with("///") {
        2
    } else if path.starts_with('/') {
        1
    } else {
        0
    };
    let mut comps: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        if comp != ".." || (initial_slashes == 0 && comps.is_empty()) || comps.last() == Some(&"..")
        {
            comps.push(comp);
        } else {
            comps.pop();
        }
    }
    let joined = "/".repeat(initial_slashes) + &comps.join("/");
    if joined.is_empty() {
        ".".to_owned()
    } else {
        joined
    }
}

/// `urllib.parse.quote(text, safe, encoding="latin1")`, appended to `out`.
///
/// A char past U+00FF (which no environ made by the crate holds) is encoded
/// as its UTF-8 bytes, where Python raises `UnicodeEncodeError`.
fn quote_into(out: &mut String, text: &str, safe: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut push = |b: u8| {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) || safe.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    };
    for c in text.chars() {
        match u8::try_from(u32::from(c)) {
            Ok(b) => push(b),
            Err(_) => c.encode_utf8(&mut [0; 4]).bytes().for_each(&mut push),
        }
    }
}

// ----- cookies -----

/// The cookies of `HTTP_COOKIE`, in order, repeated names kept: what
/// Werkzeug's `parse_cookie(environ)` (or `request.cookies`) gives.
///
/// See [`parse_cookie`] for the parsing.
///
/// ```
/// use tower_wsgi::{util, Environ};
///
/// let mut environ = Environ::default();
/// environ.insert("HTTP_COOKIE", "session=abc; theme=\"dark mode\"; session=old");
/// let cookies = util::cookies(&environ);
/// assert_eq!(cookies[0], ("session".to_owned(), "abc".to_owned()));
/// assert_eq!(cookies[1].1, "dark mode");
/// assert_eq!(util::cookie(&environ, "session").as_deref(), Some("abc")); // the first wins
/// ```
pub fn cookies(environ: &Environ) -> Vec<(String, String)> {
    parse_cookie(environ.get("HTTP_COOKIE").unwrap_or(""))
}

/// The first value of cookie `name` in `HTTP_COOKIE`, as Werkzeug's
/// `request.cookies[name]` gives it.
pub fn cookie(environ: &Environ, name: &str) -> Option<String> {
    cookies(environ)
        .into_iter()
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// Parses a `Cookie` header value as Werkzeug 1.0.1's `parse_cookie` does.
///
/// `header` is a native string (one char per byte, as in the environ);
/// names and values come back decoded from UTF-8, invalid sequences
/// replaced. Pairs are split at `;`; a name without `=` has an empty
/// value; a pair with an empty name is skipped; whitespace around names
/// and values is dropped; a value in double quotes is unquoted, with
/// `\"`-style and `\012`-style (octal) escapes undone. Unlike Python's
/// `http.cookies.SimpleCookie`, one malformed pair never costs the others.
///
/// ```
/// use tower_wsgi::util::parse_cookie;
///
/// let pairs = parse_cookie(r#"a=1; b="x\"y\073"; flag; =skipped; c = 2 "#);
/// let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
/// assert_eq!(pairs, [("a", "1"), ("b", "x\"y;"), ("flag", ""), ("c", "2")]);
/// ```
pub fn parse_cookie(header: &str) -> Vec<(String, String)> {
    // `header.encode("latin1", "replace")`.
    let mut bytes: Vec<u8> = header
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
    let n = bytes.len();
    bytes.push(b';');
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < n {
        let Some((key, value, end)) = (i..bytes.len()).find_map(|p| cookie_match(&bytes, p)) else {
            break;
        };
        i = end;
        let key = String::from_utf8_lossy(&cookie_unquote(trim_ascii_ws(key))).into_owned();
        if key.is_empty() {
            continue;
        }
        let value = String::from_utf8_lossy(&cookie_unquote(value)).into_owned();
        pairs.push((key, value));
    }
    pairs
}

/// Python's `\s` on bytes.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn trim_ascii_ws(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if !is_ws(*first) {
            break;
        }
        b = rest;
    }
    while let [rest @ .., last] = b {
        if !is_ws(*last) {
            break;
        }
        b = rest;
    }
    b
}

/// Werkzeug's cookie pattern matched at `p`, as Python's `re` would:
/// `(?P<key>[^=;]+)(?:\s*=\s*(?P<val>"(?:[^\\"]|\\.)*"|(?:.*?)))?\s*;`.
/// Returns the key, the value and the end of the match.
fn cookie_match(s: &[u8], p: usize) -> Option<(&[u8], &[u8], usize)> {
    let key_end = p + s[p..].iter().position(|&b| b == b'=' || b == b';')?;
    if key_end == p {
        return None;
    }
    let key = &s[p..key_end];
    if s[key_end] == b';' {
        return Some((key, b"", key_end + 1));
    }
    // `=`: the key's trailing whitespace makes no difference once stripped.
    let mut q = key_end + 1;
    while q < s.len() && is_ws(s[q]) {
        q += 1;
    }
    // `\s*;` at `at`: the end of the match.
    let semicolon_at = |at: usize| {
        let mut w = at;
        while w < s.len() && is_ws(s[w]) {
            w += 1;
        }
        (w < s.len() && s[w] == b';').then_some(w + 1)
    };
    if s.get(q) == Some(&b'"') {
        let mut e = q + 1;
        let closed = loop {
            match s.get(e) {
                Some(b'"') => break Some(e + 1),
                Some(b'\\') => match s.get(e + 1) {
                    Some(&next) if next != b'\n' => e += 2,
                    _ => break None,
                },
                Some(_) => e += 1,
                None => break None,
            }
        };
        if let Some(end) = closed.and_then(|close| semicolon_at(close).map(|end| (close, end))) {
            return Some((key, &s[q..end.0], end.1));
        }
    }
    // The lazy `.*?`: the shortest value followed by `\s*;`, never past a newline.
    let mut e = q;
    loop {
        if let Some(end) = semicolon_at(e) {
            return Some((key, &s[q..e], end));
        }
        if e >= s.len() || s[e] == b'\n' {
            // The whole `=value` part fails; a shorter key cannot help,
            // and Python's search moves on to the next position.
            return None;
        }
        e += 1;
    }
}

/// Werkzeug's `_cookie_unquote`.
fn cookie_unquote(b: &[u8]) -> Vec<u8> {
    if b.len() < 2 || b[0] != b'"' || b[b.len() - 1] != b'"' {
        return b.to_vec();
    }
    let b = &b[1..b.len() - 1];
    let octal_at = |j: usize| {
        b.len() >= j + 4
            && b[j] == b'\\'
            && (b'0'..=b'3').contains(&b[j + 1])
            && (b'0'..=b'7').contains(&b[j + 2])
            && (b'0'..=b'7').contains(&b[j + 3])
    };
    let quote_at = |k: usize| b[k] == b'\\' && b.get(k + 1).is_some_and(|&c| c != b'\n');
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = (i..b.len()).find(|&j| octal_at(j));
        let quote = (i..b.len()).find(|&k| quote_at(k));
        let quote_first = match (octal, quote) {
            (None, None) => {
                out.extend_from_slice(&b[i..]);
                break;
            }
            (Some(j), Some(k)) => k < j,
            (None, Some(_)) => true,
            (Some(_), None) => false,
        };
        match (octal, quote) {
            (_, Some(k)) if quote_first => {
                out.extend_from_slice(&b[i..k]);
                out.push(b[k + 1]);
                i = k + 2;
            }
            (Some(j), _) => {
                out.extend_from_slice(&b[i..j]);
                out.push((b[j + 1] - b'0') * 64 + (b[j + 2] - b'0') * 8 + (b[j + 3] - b'0'));
                i = j + 4;
            }
            _ => break,
        }
    }
    out
}

// ----- conditional requests -----

/// What a resource's validators say about a conditional request: the
/// answer of [`Validators::evaluate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// No condition stops the request: answer it as usual.
    Proceed,
    /// `304 Not Modified`: the client's copy is current (a `GET` or `HEAD`
    /// whose `If-None-Match` or `If-Modified-Since` failed).
    NotModified,
    /// `412 Precondition Failed`: `If-Match` or `If-Unmodified-Since`
    /// failed, or `If-None-Match` did on a method other than `GET`/`HEAD`.
    Failed,
}

/// A resource's current `ETag` and `Last-Modified`, to evaluate a request's
/// conditional headers against (RFC 9110 section 13.2.2).
///
/// The resource is taken to exist, so `*` matches it; answer a missing
/// resource before asking.
///
/// The conditions are evaluated in the RFC's order: `If-Match` (strong
/// comparison), else `If-Unmodified-Since`; then `If-None-Match` (weak
/// comparison), else `If-Modified-Since` (`GET` and `HEAD` only). A date
/// that does not parse is ignored, as the RFC asks; times compare to the
/// second. `If-Range` is not a condition for 304 or 412 and is left alone.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_wsgi::util::{Precondition, Validators};
/// use tower_wsgi::Environ;
///
/// let mut environ = Environ::default();
/// environ.insert("HTTP_IF_NONE_MATCH", "W/\"v1\", \"v0\"");
/// let resource = Validators::new().etag("\"v1\"");
/// assert_eq!(resource.evaluate(&environ), Precondition::NotModified); // weak match
///
/// let mut environ = Environ::default();
/// environ.insert("HTTP_IF_MODIFIED_SINCE", "Sun, 06 Nov 1994 08:49:37 GMT");
/// let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
/// let resource = Validators::new().last_modified(modified);
/// assert_eq!(resource.evaluate(&environ), Precondition::NotModified);
/// let resource = Validators::new().last_modified(modified + Duration::from_secs(1));
/// assert_eq!(resource.evaluate(&environ), Precondition::Proceed);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validators {
    etag: Option<String>,
    last_modified: Option<SystemTime>,
}

impl Validators {
    /// A resource with neither validator (only `*` matches it).
    pub fn new() -> Self {
        Self::default()
    }

    /// The resource's `ETag` header value: `"tag"` or `W/"tag"`.
    #[must_use]
    pub fn etag(mut self, etag: impl Into<String>) -> Self {
        self.etag = Some(etag.into());
        self
    }

    /// The resource's `Last-Modified` time.
    #[must_use]
    pub fn last_modified(mut self, time: SystemTime) -> Self {
        self.last_modified = Some(time);
        self
    }

    /// Evaluates the conditional headers of the request in `environ`.
    pub fn evaluate(&self, environ: &Environ) -> Precondition {
        let method = environ.request_method();
        let get_or_head = method == "GET" || method == "HEAD";
        let etag = self.etag.as_deref().map(EntityTag::parse_one);
        let last_modified = self.last_modified.map(whole_seconds);

        if let Some(if_match) = environ.get("HTTP_IF_MATCH") {
            let matched = match &etag {
                Some(Some(current)) => {
                    if_match.trim() == "*"
                        || tag_list_matches(if_match, |tag| {
                            !tag.weak && !current.weak && tag.opaque == current.opaque
                        })
                }
                _ => if_match.trim() == "*",
            };
            if !matched {
                return Precondition::Failed;
            }
        } else if let Some(since) = environ.get("HTTP_IF_UNMODIFIED_SINCE") {
            if let (Ok(since), Some(modified)) =
                (httpdate::parse_http_date(since.trim()), last_modified)
            {
                if modified > since {
                    return Precondition::Failed;
                }
            }
        }

        if let Some(if_none_match) = environ.get("HTTP_IF_NONE_MATCH") {
            let matched = match &etag {
                Some(Some(current)) => {
                    if_none_match.trim() == "*"
                        || tag_list_matches(if_none_match, |tag| tag.opaque == current.opaque)
                }
                _ => if_none_match.trim() == "*",
            };
            if matched {
                return if get_or_head {
                    Precondition::NotModified
                } else {
                    Precondition::Failed
                };
            }
        } else if get_or_head {
            if let Some(since) = environ.get("HTTP_IF_MODIFIED_SINCE") {
                if let (Ok(since), Some(modified)) =
                    (httpdate::parse_http_date(since.trim()), last_modified)
                {
                    if modified <= since {
                        return Precondition::NotModified;
                    }
                }
            }
        }
        Precondition::Proceed
    }
}

/// `time` rounded down to the second, as HTTP dates are.
fn whole_seconds(time: SystemTime) -> SystemTime {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        Err(_) => time,
    }
}

/// One entity-tag of a list.
#[derive(Debug, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    /// Between the quotes (or the whole token, for a tag sent unquoted).
    opaque: &'a str,
}

impl<'a> EntityTag<'a> {
    /// A single tag, as a resource's `ETag` value.
    fn parse_one(text: &'a str) -> Option<Self> {
        let (tag, rest) = Self::parse_next(text.trim())?;
        rest.trim().is_empty().then_some(tag)
    }

    /// The tag at the start of `text` and what follows it.
    fn parse_next(text: &'a str) -> Option<(Self, &'a str)> {
        let (weak, text) = match text.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if let Some(quoted) = text.strip_prefix('"') {
            let close = quoted.find('"')?;
            return Some((
                EntityTag {
                    weak,
                    opaque: &quoted[..close],
                },
                &quoted[close + 1..],
            ));
        }
        // Some clients send tags unquoted: take the token up to the comma.
        let end = text.find(',').unwrap_or(text.len());
        let opaque = text[..end].trim();
        (!opaque.is_empty()).then_some((EntityTag { weak, opaque }, &text[end..]))
    }
}

/// `true` if any tag of the comma-separated `list` satisfies `matches`.
fn tag_list_matches(list: &str, matches: impl Fn(&EntityTag<'_>) -> bool) -> bool {
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return false;
        }
        let Some((tag, after)) = EntityTag::parse_next(rest) else {
            return false;
        };
        if matches(&tag) {
            return true;
        }
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environ(pairs: &[(&str, &str)]) -> Environ {
        let mut environ = Environ::default();
        for (key, value) in pairs {
            environ.insert(*key, *value);
        }
        environ
    }

    #[test]
    fn normpath_matches_posixpath() {
        for (path, expected) in [
            ("", "."),
            ("/", "/"),
            ("//", "//"),
            ("///", "/"),
            ("/a/../..", "/"),
            ("a/../..", ".."),
            ("//a/./b/", "//a/b"),
            ("../x", "../x"),
        ] {
            assert_eq!(normpath(path), expected, "{path:?}");
        }
    }

    #[test]
    fn quote_encodes_bytes_past_ascii_and_keeps_safe() {
        let mut out = String::new();
        quote_into(&mut out, "/a b;\u{ff}~", b"/");
        assert_eq!(out, "/a%20b%3B%FF~");
        out.clear();
        quote_into(&mut out, "\u{20ac}", b"");
        assert_eq!(out, "%E2%82%AC");
    }

    #[test]
    fn cookie_values_unquote_octal_and_backslash() {
        assert_eq!(cookie_unquote(br#""a\"b""#), b"a\"b");
        assert_eq!(cookie_unquote(br#""\101\x""#), b"Ax");
        assert_eq!(cookie_unquote(br#""x"#), br#""x"#);
        assert_eq!(cookie_unquote(b"\"\""), b"");
    }

    #[test]
    fn strong_comparison_for_if_match_weak_for_if_none_match() {
        let weak = Validators::new().etag("W/\"v\"");
        let env = environ(&[("HTTP_IF_MATCH", "W/\"v\"")]);
        assert_eq!(weak.evaluate(&env), Precondition::Failed);
        let strong = Validators::new().etag("\"v\"");
        let env = environ(&[("HTTP_IF_MATCH", "\"x\", \"v\"")]);
        assert_eq!(strong.evaluate(&env), Precondition::Proceed);
        let env = environ(&[("HTTP_IF_NONE_MATCH", "\"v\"")]);
        assert_eq!(weak.evaluate(&env), Precondition::NotModified);
    }

    #[test]
    fn if_none_match_takes_precedence_over_if_modified_since() {
        let modified = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let resource = Validators::new().etag("\"new\"").last_modified(modified);
        let env = environ(&[
            ("HTTP_IF_NONE_MATCH", "\"old\""),
            ("HTTP_IF_MODIFIED_SINCE", &httpdate::fmt_http_date(modified)),
        ]);
        assert_eq!(resource.evaluate(&env), Precondition::Proceed);
    }

    #[test]
    fn if_none_match_on_unsafe_methods_is_412_and_if_modified_since_ignored() {
        let modified = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let resource = Validators::new().etag("\"v\"").last_modified(modified);
        let env = environ(&[("REQUEST_METHOD", "PUT"), ("HTTP_IF_NONE_MATCH", "*")]);
        assert_eq!(resource.evaluate(&env), Precondition::Failed);
        let env = environ(&[
            ("REQUEST_METHOD", "POST"),
            ("HTTP_IF_MODIFIED_SINCE", &httpdate::fmt_http_date(modified)),
        ]);
        assert_eq!(resource.evaluate(&env), Precondition::Proceed);
    }

    #[test]
    fn if_unmodified_since_and_invalid_dates() {
        let modified = UNIX_EPOCH + Duration::from_millis(1_000_000_000_500);
        let resource = Validators::new().last_modified(modified);
        let at = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(1_000_000_000));
        let before = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(999_999_999));
        // Sub-second parts do not count.
        let env = environ(&[("HTTP_IF_UNMODIFIED_SINCE", &at)]);
        assert_eq!(resource.evaluate(&env), Precondition::Proceed);
        let env = environ(&[("HTTP_IF_UNMODIFIED_SINCE", &before)]);
        assert_eq!(resource.evaluate(&env), Precondition::Failed);
        let env = environ(&[("HTTP_IF_MODIFIED_SINCE", "yesterday")]);
        assert_eq!(resource.evaluate(&env), Precondition::Proceed);
        let env = environ(&[("HTTP_IF_MODIFIED_SINCE", &at)]);
        assert_eq!(resource.evaluate(&env), Precondition::NotModified);
    }

    #[test]
    fn star_matches_the_existing_resource() {
        for resource in [Validators::new(), Validators::new().etag("\"a\"")] {
            let env = environ(&[("HTTP_IF_MATCH", "*")]);
            assert_eq!(resource.evaluate(&env), Precondition::Proceed);
            let env = environ(&[("HTTP_IF_NONE_MATCH", "*")]);
            assert_eq!(resource.evaluate(&env), Precondition::NotModified);
        }
        let env = environ(&[("HTTP_IF_MATCH", "\"a\"")]);
        assert_eq!(Validators::new().evaluate(&env), Precondition::Failed);
    }

    #[test]
    fn tags_with_commas_inside_quotes_and_unquoted_tags() {
        let resource = Validators::new().etag("\"a,b\"");
        let env = environ(&[("HTTP_IF_NONE_MATCH", "\"a\", \"a,b\"")]);
        assert_eq!(resource.evaluate(&env), Precondition::NotModified);
        let resource = Validators::new().etag("\"abc\"");
        let env = environ(&[("HTTP_IF_NONE_MATCH", "xyz, abc")]);
        assert_eq!(resource.evaluate(&env), Precondition::NotModified);
    }
}
