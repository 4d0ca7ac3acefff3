#![no_main]

#[path = "../../tests/fuzz_harness/mod.rs"]
mod harness;

// The first byte picks raw bytes or an HTTP-shaped request built from the rest.
libfuzzer_sys::fuzz_target!(|data: &[u8]| match data.split_first() {
    Some((selector, rest)) if selector & 1 == 1 => harness::request_to_environ(rest),
    Some((_, rest)) => harness::request_to_environ(&harness::request_bytes(rest)),
    None => {}
});
