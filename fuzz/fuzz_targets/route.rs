//! cargo-fuzz target `route`: see crates/conlink-fuzz.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| conlink_fuzz::route(data));
