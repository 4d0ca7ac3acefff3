//! Byte and text views of the environ's native strings.

use std::borrow::Cow;

use super::Environ;
use crate::latin1;

impl Environ {
    /// The bytes of a variable: Python's `environ[key].encode("latin-1")`,
    /// the bytes the client sent for `PATH_INFO`, `QUERY_STRING` and the
    /// headers.
    ///
    /// A value holding a char past U+00FF (only code that inserted it can
    /// put one there) is not a native string: its UTF-8 bytes are given.
    ///
    /// ```
    /// use tower_wsgi::test_client::TestClient;
    /// use tower_wsgi::app_fn;
    ///
    /// let app = app_fn(|environ, start_response| {
    ///     // start_response(...); return [b"Hello, " + environ["PATH_INFO"].encode("latin-1")]
    ///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
    ///     Ok([&b"Hello, "[..], &environ.path_info_bytes()].concat().into())
    /// });
    /// let response = TestClient::new(app).get("/caf%C3%A9").send_blocking();
    /// assert_eq!(&response.body()[..], b"Hello, /caf\xc3\xa9");
    /// ```
    pub fn get_bytes(&self, key: &str) -> Option<Cow<'_, [u8]>> {
        self.get(key).map(bytes_of)
    }

    /// The text of a variable: its bytes decoded as UTF-8, each invalid
    /// sequence replaced by U+FFFD, as Werkzeug decodes paths and headers
    /// (Python's `environ[key].encode("latin-1").decode("utf-8", "replace")`).
    pub fn get_text(&self, key: &str) -> Option<Cow<'_, str>> {
        self.get(key).map(latin1::decode_utf8)
    }

    /// The bytes of `PATH_INFO` (empty if unset): the path as the client
    /// sent it, percent-decoded.
    pub fn path_info_bytes(&self) -> Cow<'_, [u8]> {
        bytes_of(self.path_info())
    }

    /// The bytes of `QUERY_STRING` (empty if unset): still percent-encoded.
    pub fn query_string_bytes(&self) -> Cow<'_, [u8]> {
        bytes_of(self.query_string())
    }

    /// `QUERY_STRING` as decoded pairs, in order, repeats kept: Werkzeug's
    /// `url_decode` (and Python's `parse_qsl(qs, keep_blank_values=True,
    /// errors="replace")`).
    ///
    /// Pairs are split on `&` (empty ones skipped) and at the first `=` (a
    /// name without one has an empty value); `+` is a space and `%xx` a
    /// byte; the bytes are then read as UTF-8, each invalid sequence
    /// replaced by U+FFFD.
    ///
    /// ```
    /// use tower_wsgi::Environ;
    ///
    /// let mut environ = Environ::default();
    /// environ.insert("QUERY_STRING", "q=caf%C3%A9+au+lait&tag=a&tag=b&flag");
    /// let pairs = environ.query_pairs();
    /// assert_eq!(pairs[0], ("q".to_owned(), "café au lait".to_owned()));
    /// assert_eq!(pairs[1..], [
    ///     ("tag".to_owned(), "a".to_owned()),
    ///     ("tag".to_owned(), "b".to_owned()),
    ///     ("flag".to_owned(), String::new()),
    /// ]);
    /// ```
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_pairs(&self.query_string_bytes())
    }
}

fn bytes_of(native: &str) -> Cow<'_, [u8]> {
    latin1::encode(native).unwrap_or(Cow::Borrowed(native.as_bytes()))
}

/// `application/x-www-form-urlencoded` pairs, decoded.
fn form_pairs(raw: &[u8]) -> Vec<(String, String)> {
    raw.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            (form_decode(name), form_decode(value))
        })
        .collect()
}

fn form_decode(raw: &[u8]) -> String {
    let spaced: Cow<'_, [u8]> = if raw.contains(&b'+') {
        Cow::Owned(
            raw.iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect(),
        )
    } else {
        Cow::Borrowed(raw)
    };
    let bytes: Cow<'_, [u8]> = percent_encoding::percent_decode(&spaced).into();
    latin1::utf8_lossy(bytes.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        let mut environ = Environ::default();
        environ.insert("QUERY_STRING", query);
        environ.query_pairs()
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn query_pairs_decode_as_python_parse_qsl() {
        // Each expectation is what CPython 3.11 gives for
        // parse_qsl(q, keep_blank_values=True, errors="replace") on the bytes.
        assert_eq!(pairs("a=1&b=2"), owned(&[("a", "1"), ("b", "2")]));
        assert_eq!(
            pairs("q=caf%C3%A9+au+lait"),
            owned(&[("q", "café au lait")])
        );
        assert_eq!(
            pairs("x=%FF%zz&&y&=v&a=1=2&%41%3d=%26"),
            owned(&[
                ("x", "\u{fffd}%zz"),
                ("y", ""),
                ("", "v"),
                ("a", "1=2"),
                ("A=", "&")
            ])
        );
        assert_eq!(pairs("+%2B+=++"), owned(&[(" + ", "  ")]));
        // Raw non-ASCII bytes (one char per byte in the environ) are UTF-8.
        assert_eq!(pairs("name=caf\u{c3}\u{a9}"), owned(&[("name", "café")]));
        assert_eq!(pairs(""), owned(&[]));
    }

    #[test]
    fn byte_views_give_the_wire_bytes() {
        let mut environ = Environ::default();
        environ.remove("PATH_INFO");
        assert_eq!(&*environ.path_info_bytes(), b"");
        environ.insert("PATH_INFO", "/caf\u{c3}\u{a9}");
        environ.insert("QUERY_STRING", "a=%C3%A9");
        environ.insert("myapp.text", "☃");
        assert_eq!(&*environ.path_info_bytes(), b"/caf\xc3\xa9");
        assert_eq!(&*environ.query_string_bytes(), b"a=%C3%A9");
        assert_eq!(environ.get_text("PATH_INFO").as_deref(), Some("/café"));
        assert_eq!(
            environ.get_bytes("myapp.text").as_deref(),
            Some("☃".as_bytes())
        );
        assert_eq!(environ.get_text("myapp.text").as_deref(), Some("☃"));
        assert_eq!(environ.get_bytes("missing"), None);
    }
}
