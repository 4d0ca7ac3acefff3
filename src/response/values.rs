//! Response header values shared across the responses one thread makes.
//!
//! An application sends the same `Content-Type` (and, for fixed bodies, the
//! same `Content-Length`) response after response. A value made once and
//! shared after costs no allocation per response, and the async worker that
//! drops the written head only lowers a count: it frees no memory another
//! thread allocated, which glibc's malloc makes slow on both threads.

use std::cell::RefCell;

use bytes::Bytes;
use http::HeaderValue;

/// Values remembered per thread, each in the slot its bytes hash to.
const SLOTS: usize = 64;

/// Longer values are made anew each time: they rarely repeat.
const MAX_SHARED_LEN: usize = 48;

thread_local! {
    static RECENT: RefCell<[Option<HeaderValue>; SLOTS]> =
        const { RefCell::new([const { None }; SLOTS]) };
}

/// `bytes` as a header value, `None` where `HeaderValue::from_bytes` would
/// refuse them.
pub(crate) fn header_value(bytes: &[u8]) -> Option<HeaderValue> {
    if bytes.len() > MAX_SHARED_LEN {
        return HeaderValue::from_bytes(bytes).ok();
    }
    let slot = slot_of(bytes);
    RECENT
        .try_with(|recent| {
            let mut recent = recent.borrow_mut();
            if let Some(value) = &recent[slot] {
                if value.as_bytes() == bytes {
                    return Some(value.clone());
                }
            }
            let value =
                HeaderValue::from_maybe_shared(Bytes::from_owner(Short::new(bytes))).ok()?;
            recent[slot] = Some(value.clone());
            Some(value)
        })
        // The thread is ending: nothing to share with.
        .unwrap_or_else(|_| HeaderValue::from_bytes(bytes).ok())
}

/// A `Content-Length` value.
pub(crate) fn length_value(length: u64) -> HeaderValue {
    let mut digits = itoa::Buffer::new();
    header_value(digits.format(length).as_bytes()).unwrap_or_else(|| HeaderValue::from(length))
}

/// Values are short, and a collision costs one allocation.
fn slot_of(bytes: &[u8]) -> usize {
    (crate::fnv::hash(bytes) % SLOTS as u64) as usize
}

/// A short value's bytes, held inline: one allocation with the count
/// `Bytes` shares it by.
struct Short {
    len: usize,
    bytes: [u8; MAX_SHARED_LEN],
}

impl Short {
    fn new(from: &[u8]) -> Self {
        let mut bytes = [0; MAX_SHARED_LEN];
        let len = from.len().min(MAX_SHARED_LEN);
        bytes[..len].copy_from_slice(&from[..len]);
        Self { len, bytes }
    }
}

impl AsRef<[u8]> for Short {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_value_is_shared_and_an_invalid_one_refused() {
        let first = header_value(b"text/plain; charset=utf-8").unwrap();
        let again = header_value(b"text/plain; charset=utf-8").unwrap();
        assert_eq!(first, again);
        assert_eq!(
            first.as_bytes().as_ptr(),
            again.as_bytes().as_ptr(),
            "the second is the first, shared"
        );
        assert_eq!(header_value(b"a\r\nb"), None);
        assert_eq!(header_value(b"bad\0"), None);
        assert_eq!(header_value(b"caf\xe9").unwrap().as_bytes(), b"caf\xe9");
        assert_eq!(header_value(b"").unwrap().as_bytes(), b"");
    }

    #[test]
    fn long_and_colliding_values_are_still_right() {
        let long = "x".repeat(MAX_SHARED_LEN + 1);
        assert_eq!(header_value(long.as_bytes()).unwrap(), long.as_str());
        // More values than slots: each read back as itself.
        let values: Vec<String> = (0..SLOTS * 3).map(|i| format!("v{i}")).collect();
        for _ in 0..2 {
            for value in &values {
                assert_eq!(header_value(value.as_bytes()).unwrap(), value.as_str());
            }
        }
        assert_eq!(length_value(0), "0");
        assert_eq!(length_value(1024), "1024");
        assert_eq!(length_value(u64::MAX), u64::MAX.to_string().as_str());
    }
}
