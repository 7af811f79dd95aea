//! cargo-fuzz target `forward`: see crates/conlink-fuzz.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| conlink_fuzz::forward(data));
