//! The one latin-1 codec: WSGI's "native strings" hold one char per byte
//! (ISO-8859-1), as PEP 3333 asks, wherever the wire gave bytes.

use std::borrow::Cow;

/// Bytes as a string with one char per byte.
pub(crate) fn decode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    push_decoded(&mut text, bytes);
    text
}

/// Appends `bytes` to `text`, one char per byte.
pub(crate) fn push_decoded(text: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(ascii) if ascii.is_ascii() => text.push_str(ascii),
        _ => text.extend(bytes.iter().map(|&b| char::from(b))),
    }
}

/// The bytes of a native string, or `None` if a char is past U+00FF.
pub(crate) fn encode(text: &str) -> Option<Cow<'_, [u8]>> {
    if text.is_ascii() {
        return Some(Cow::Borrowed(text.as_bytes()));
    }
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .map(Cow::Owned)
}

/// A raw (percent-encoded) path decoded to bytes, one char per byte: how
/// `PATH_INFO`, `SCRIPT_NAME` and configured prefixes are compared.
pub(crate) fn percent_decode(raw: &str) -> String {
    let bytes: Cow<'_, [u8]> = percent_encoding::percent_decode_str(raw).into();
    decode(&bytes)
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
    fn percent_decoding_gives_one_char_per_byte() {
        assert_eq!(percent_decode("/caf%C3%A9"), "/caf\u{c3}\u{a9}");
        assert_eq!(percent_decode("/%FF%2Fx"), "/\u{ff}/x");
        assert_eq!(percent_decode("/plain"), "/plain");
        assert_eq!(percent_decode("/bad%zz"), "/bad%zz");
    }
}
