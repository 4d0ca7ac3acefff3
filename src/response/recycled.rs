//! Header maps handed from finished requests to the next responses.
//!
//! hyper parses each request into the map of the response before it on the
//! connection. When an application thread builds the response in a fresh map,
//! every request's map is one that thread allocated and the async worker
//! frees, which glibc's malloc makes slow on both threads. Instead, the
//! worker keeps the maps of requests that ended and gives one to each new
//! request for its response: the same few maps go round, and neither thread
//! allocates or frees one.

use std::cell::RefCell;

use http::HeaderMap;

/// Maps kept per async worker: about the requests that end between two
/// polls of the worker.
const MAX_KEPT: usize = 16;

/// Larger maps are freed: one request with many headers should not keep
/// their room for every response after it.
const MAX_CAPACITY: usize = 64;

thread_local! {
    static KEPT: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// Keeps a finished request's map for a later response (emptied here, on
/// the thread that parsed it).
pub(crate) fn keep(mut map: HeaderMap) {
    if map.capacity() > MAX_CAPACITY {
        return;
    }
    map.clear();
    // A thread that is ending frees the map instead.
    let _ = KEPT.try_with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.len() < MAX_KEPT {
            if kept.capacity() == 0 {
                kept.reserve_exact(MAX_KEPT);
            }
            kept.push(map);
        }
    });
}

/// An empty map kept from an earlier request, if there is one.
pub(crate) fn take() -> Option<HeaderMap> {
    KEPT.try_with(|kept| kept.borrow_mut().pop()).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_maps_come_back_empty_and_large_ones_are_freed() {
        while take().is_some() {}
        let mut map = HeaderMap::new();
        map.insert("x-a", "1".parse().unwrap());
        let room = map.capacity();
        keep(map);
        let back = take().unwrap();
        assert!(back.is_empty());
        assert_eq!(back.capacity(), room);
        assert!(take().is_none());

        keep(HeaderMap::with_capacity(MAX_CAPACITY * 2));
        assert!(take().is_none());
        for _ in 0..MAX_KEPT * 2 {
            keep(HeaderMap::with_capacity(4));
        }
        let mut taken = 0;
        while take().is_some() {
            taken += 1;
        }
        assert_eq!(taken, MAX_KEPT);
    }
}
