//! The fuzz targets of `fuzz/` as property tests, so every machine runs them
//! (cargo-fuzz needs a nightly toolchain; `.ci/run` adds it where present).
//! Crashes the fuzzer found stay here as regression cases.
#![deny(warnings)]

mod fuzz_harness;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn status_and_headers(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        fuzz_harness::status_and_headers(&data);
    }

    #[test]
    fn response_rules(data in proptest::collection::vec(any::<u8>(), 0..16)) {
        fuzz_harness::response_rules(&data);
    }

    #[test]
    fn request_to_environ(data in proptest::collection::vec(any::<u8>(), 0..96)) {
        fuzz_harness::request_to_environ(&fuzz_harness::request_bytes(&data));
    }

    #[test]
    fn raw_bytes_as_a_connection(data in proptest::collection::vec(any::<u8>(), 0..96)) {
        fuzz_harness::request_to_environ(&data);
    }
}

/// Every scripted behaviour once: each status, length mode, delivery,
/// fault and header, on GET and HEAD over HTTP/1.0, 1.1 and 2.
#[test]
fn response_rules_exhaustive_over_each_dimension() {
    for first in 0..=7u8 {
        for dimension in 1..=5 {
            for value in 0..=15u8 {
                let mut data = vec![first, 0, 1, 0, 7, 1, 3, 5, 0];
                data[dimension] = value;
                fuzz_harness::response_rules(&data);
            }
        }
    }
}

/// Found by the first run: the crate's own 500 page carried its body on a
/// HEAD request (hyper hides that on HTTP/1; on HTTP/2 it is a protocol error).
#[test]
fn regression_head_error_pages_have_no_body() {
    for version_bits in [0u8, 2, 4] {
        // HEAD, status "abc" (invalid), exact length, via iter, no fault.
        fuzz_harness::response_rules(&[1 | version_bits, 9, 1, 0, 7, 1, 3]);
        // HEAD, a panic before start_response.
        fuzz_harness::response_rules(&[1 | version_bits, 0, 1, 0, 3, 1, 3]);
    }
}

/// Inputs cargo-fuzz reported (each was a harness issue, kept to pin the
/// harness): a HEAD answered from `write` while the app still runs, and a
/// scripted panic before `start_response`.
#[test]
fn regression_fuzz_artifacts() {
    fuzz_harness::response_rules(&[
        0x27, 0x00, 0xd3, 0xea, 0x31, 0xd3, 0xd3, 0x1d, 0xb1, 0xd3, 0xd3, 0x28, 0xbf, 0xb7,
    ]);
    fuzz_harness::response_rules(&[0xff, 0xff, 0x00, 0xff, 0xff]);
}
