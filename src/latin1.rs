//! WSGI's "native strings": one char per byte (ISO-8859-1), as PEP 3333
//! asks wherever the wire gave bytes (`PATH_INFO`, `QUERY_STRING`, header
//! values, the status line).
//!
//! The four helpers every port writes by hand, once:
//!
//! | Python | here |
//! |---|---|
//! | `s.encode("latin-1")` (`wsgi_to_bytes`) | [`encode`] |
//! | `b.decode("latin-1")` (`bytes_to_wsgi`) | [`decode`] |
//! | `s.encode("latin-1").decode("utf-8", "replace")` | [`decode_utf8`] |
//! | `text.encode("utf-8").decode("latin-1")` | [`encode_utf8`] |
//!
//! ```
//! use tower_wsgi::latin1;
//!
//! // PATH_INFO of a request for /caf%C3%A9:
//! let native = "/caf\u{c3}\u{a9}";
//! assert_eq!(latin1::encode(native).as_deref(), Some(&b"/caf\xc3\xa9"[..]));
//! assert_eq!(latin1::decode_utf8(native), "/café");
//! assert_eq!(latin1::encode_utf8("/café"), native);
//! assert_eq!(latin1::decode(b"/caf\xc3\xa9"), native);
//! ```

use std::borrow::Cow;

/// Bytes as a native string, one char per byte: Python's
/// `b.decode("latin-1")`.
pub fn decode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    push_decoded(&mut text, bytes);
    text
}

/// As [`decode`], borrowing `bytes` when they are ASCII.
pub(crate) fn decode_cow(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(ascii) if ascii.is_ascii() => Cow::Borrowed(ascii),
        _ => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// Appends `bytes` to `text`, one char per byte.
pub(crate) fn push_decoded(text: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(ascii) if ascii.is_ascii() => text.push_str(ascii),
        _ => text.extend(bytes.iter().map(|&b| char::from(b))),
    }
}

/// The bytes of a native string, or `None` if a char is past U+00FF:
/// Python's `s.encode("latin-1")`, which raises there.
pub fn encode(text: &str) -> Option<Cow<'_, [u8]>> {
    if text.is_ascii() {
        return Some(Cow::Borrowed(text.as_bytes()));
    }
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .map(Cow::Owned)
}

/// The text a native string's bytes spell in UTF-8, each invalid sequence
/// replaced by U+FFFD: Python's `s.encode("latin-1").decode("utf-8",
/// "replace")`, which Werkzeug applies to paths and query values.
///
/// A char past U+00FF cannot come from the wire; a string holding one is
/// taken to be text already and returned as it is.
pub fn decode_utf8(native: &str) -> Cow<'_, str> {
    match encode(native) {
        Some(Cow::Borrowed(ascii)) => Cow::Borrowed(std::str::from_utf8(ascii).unwrap_or_default()),
        Some(Cow::Owned(bytes)) => Cow::Owned(utf8_lossy(bytes)),
        None => Cow::Borrowed(native),
    }
}

/// Text as the native string of its UTF-8 bytes: Python's
/// `text.encode("utf-8").decode("latin-1")`, what a middleware stores in
/// `PATH_INFO` or a header so that apps decode it back with
/// [`decode_utf8`].
pub fn encode_utf8(text: &str) -> String {
    decode(text.as_bytes())
}

/// Bytes as UTF-8, each invalid sequence replaced by U+FFFD.
pub(crate) fn utf8_lossy(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    }
}

/// A raw (percent-encoded) path decoded to bytes, one char per byte: how
/// `PATH_INFO`, `SCRIPT_NAME` and configured prefixes are compared.
pub(crate) fn percent_decode(raw: &str) -> String {
    percent_decode_cow(raw).into_owned()
}

/// As [`percent_decode`], borrowing `raw` when it holds no escape and no
/// byte past ASCII.
pub(crate) fn percent_decode_cow(raw: &str) -> Cow<'_, str> {
    match percent_encoding::percent_decode_str(raw).into() {
        Cow::Borrowed(bytes) => decode_cow(bytes),
        Cow::Owned(bytes) => Cow::Owned(decode(&bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_through_native_strings() {
        let all: Vec<u8> = (0..=255).collect();
        let text = decode(&all);
        assert_eq!(text.chars().count(), 256);
        assert_eq!(encode(&text).as_deref(), Some(&all[..]));
        assert_eq!(decode(b"ascii"), "ascii");
        assert!(matches!(encode("ascii"), Some(Cow::Borrowed(_))));
        assert_eq!(encode("caf\u{e9}").as_deref(), Some(&b"caf\xe9"[..]));
        assert_eq!(encode("\u{2603}"), None);
    }

    #[test]
    fn utf8_views_of_native_strings() {
        assert_eq!(decode_utf8("/caf\u{c3}\u{a9}"), "/café");
        assert!(matches!(decode_utf8("ascii"), Cow::Borrowed("ascii")));
        // An invalid sequence is replaced, as Python's errors="replace".
        assert_eq!(decode_utf8("a\u{ff}b\u{c3}"), "a\u{fffd}b\u{fffd}");
        // Already text: left alone.
        assert_eq!(decode_utf8("\u{2603}"), "\u{2603}");
        assert_eq!(encode_utf8("café ☃"), "caf\u{c3}\u{a9} \u{e2}\u{98}\u{83}");
        assert_eq!(decode_utf8(&encode_utf8("café ☃")), "café ☃");
    }

    #[test]
    fn percent_decoding_gives_one_char_per_byte() {
        assert_eq!(percent_decode("/caf%C3%A9"), "/caf\u{c3}\u{a9}");
        assert_eq!(percent_decode("/%FF%2Fx"), "/\u{ff}/x");
        assert_eq!(percent_decode("/plain"), "/plain");
        assert_eq!(percent_decode("/bad%zz"), "/bad%zz");
        assert!(matches!(
            percent_decode_cow("/plain"),
            Cow::Borrowed("/plain")
        ));
        assert!(matches!(percent_decode_cow("/a%20b"), Cow::Owned(_)));
    }
}
