//! Header grammar shared by the request and the response side: one
//! strictness for `Content-Length`, one list of hop-by-hop names, one rule
//! for which responses carry a body.

use http::header::{self, HeaderName};
use http::StatusCode;

/// The headers that describe a connection rather than a message: an
/// application may not set them (PEP 3333), and a response passed on from
/// an inner service drops them.
pub(crate) const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
];

/// `true` for the hop-by-hop header names.
pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name)
}

/// A `Content-Length` value: ASCII digits, optionally surrounded by spaces
/// or tabs (RFC 9110 8.6: no sign, no empty value).
pub(crate) fn parse_content_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() {
        return None;
    }
    // By hand: `str::parse` costs several times as much, on every request with a body.
    digits.iter().try_fold(0u64, |length, &byte| {
        let digit = byte.checked_sub(b'0').filter(|digit| *digit <= 9)?;
        length.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// `true` when a response with this status, to this method, may carry
/// body bytes: never for HEAD, 1xx, 204 or 304.
pub(crate) fn body_allowed(status: StatusCode, is_head: bool) -> bool {
    !is_head
        && !status.is_informational()
        && status != StatusCode::NO_CONTENT
        && status != StatusCode::NOT_MODIFIED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_is_digits_only() {
        assert_eq!(parse_content_length(b"5"), Some(5));
        assert_eq!(parse_content_length(b" 5\t"), Some(5));
        for bad in [&b""[..], b" ", b"+5", b"-1", b"5x", b"0x5", b"1 2"] {
            assert_eq!(parse_content_length(bad), None, "{bad:?}");
        }
        assert_eq!(parse_content_length(b"99999999999999999999999"), None);
    }

    #[test]
    fn bodies_are_allowed_except_for_head_1xx_204_304() {
        assert!(body_allowed(StatusCode::OK, false));
        assert!(!body_allowed(StatusCode::OK, true));
        for status in [100, 101, 204, 304] {
            assert!(
                !body_allowed(StatusCode::from_u16(status).unwrap(), false),
                "{status}"
            );
        }
        assert!(is_hop_by_hop(&header::TE));
        assert!(!is_hop_by_hop(&header::CONTENT_LENGTH));
    }
}
