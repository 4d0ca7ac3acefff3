//! A finished request's containers, handed to the next requests on the same
//! async worker.
//!
//! hyper parses each request on an async worker, and the crate's server adds
//! the connection's addresses to its extensions there. When the application
//! thread built the response head in a map of its own, every request cost a
//! map that thread allocated and the worker freed, which glibc's malloc makes
//! slow on both threads; and every request allocated, then freed, the same
//! extensions table on the worker. Instead, the worker keeps the header map
//! and the extensions of requests that ended, emptied, and gives them to new
//! requests: the same few go round, and neither thread allocates or frees
//! them.

use std::cell::RefCell;

use http::{Extensions, HeaderMap};

/// Kept per async worker of each kind: about the requests that end between
/// two polls of the worker.
const MAX_KEPT: usize = 16;

/// Larger maps are freed: one request with many headers should not keep
/// their room for every response after it.
const MAX_HEADER_CAPACITY: usize = 64;

/// Extensions that held more are freed, for the same reason (`Extensions`
/// does not tell its capacity; what it held bounds it).
const MAX_EXTENSIONS: usize = 8;

/// Containers of one kind, kept on one thread.
struct Kept<T> {
    items: RefCell<Vec<T>>,
}

impl<T> Kept<T> {
    const fn new() -> Self {
        Self {
            items: RefCell::new(Vec::new()),
        }
    }

    fn push(&self, item: T) {
        let mut items = self.items.borrow_mut();
        if items.len() < MAX_KEPT {
            if items.capacity() == 0 {
                items.reserve_exact(MAX_KEPT);
            }
            items.push(item);
        }
    }

    fn pop(&self) -> Option<T> {
        self.items.borrow_mut().pop()
    }
}

thread_local! {
    static HEADERS: Kept<HeaderMap> = const { Kept::new() };
    static EXTENSIONS: Kept<Extensions> = const { Kept::new() };
}

/// Keeps a finished request's map for a later response head (emptied here,
/// on the thread that parsed it).
pub(crate) fn keep_headers(mut map: HeaderMap) {
    if map.capacity() > MAX_HEADER_CAPACITY {
        return;
    }
    map.clear();
    // A thread that is ending frees the map instead.
    let _ = HEADERS.try_with(|kept| kept.push(map));
}

/// An empty map kept from an earlier request, if there is one.
pub(crate) fn headers() -> Option<HeaderMap> {
    HEADERS.try_with(Kept::pop).ok().flatten()
}

/// Keeps a finished request's extensions for a later request (emptied here,
/// on the thread that made them). Empty ones hold no allocation to reuse.
pub(crate) fn keep_extensions(mut extensions: Extensions) {
    if extensions.is_empty() || extensions.len() > MAX_EXTENSIONS {
        return;
    }
    extensions.clear();
    let _ = EXTENSIONS.try_with(|kept| kept.push(extensions));
}

/// Empty extensions, with the room of an earlier request's, if there are
/// any kept.
#[cfg_attr(not(feature = "server"), allow(dead_code))]
pub(crate) fn extensions() -> Option<Extensions> {
    EXTENSIONS.try_with(Kept::pop).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_maps_come_back_empty_and_large_ones_are_freed() {
        while headers().is_some() {}
        let mut map = HeaderMap::new();
        map.insert("x-a", "1".parse().unwrap());
        let room = map.capacity();
        keep_headers(map);
        let back = headers().unwrap();
        assert!(back.is_empty());
        assert_eq!(back.capacity(), room);
        assert!(headers().is_none());

        keep_headers(HeaderMap::with_capacity(MAX_HEADER_CAPACITY * 2));
        assert!(headers().is_none());
        for _ in 0..MAX_KEPT * 2 {
            keep_headers(HeaderMap::with_capacity(4));
        }
        let mut taken = 0;
        while headers().is_some() {
            taken += 1;
        }
        assert_eq!(taken, MAX_KEPT);
    }

    #[test]
    fn kept_extensions_come_back_empty_and_crowded_or_empty_ones_are_not_kept() {
        while extensions().is_some() {}
        let mut used = Extensions::new();
        used.insert(1u8);
        used.insert("two");
        keep_extensions(used);
        let mut back = extensions().unwrap();
        assert!(back.is_empty());
        assert_eq!(back.get::<u8>(), None);
        back.insert(3u16);
        assert_eq!(back.get::<u16>(), Some(&3));
        assert!(extensions().is_none());

        keep_extensions(Extensions::new());
        assert!(extensions().is_none());
        let mut crowded = Extensions::new();
        macro_rules! insert_each {
            ($($t:ty),*) => { $(crowded.insert(<$t>::default());)* };
        }
        insert_each!(u8, u16, u32, u64, u128, i8, i16, i32, i64);
        assert!(crowded.len() > MAX_EXTENSIONS);
        keep_extensions(crowded);
        assert!(extensions().is_none());
    }
}
