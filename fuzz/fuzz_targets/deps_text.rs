//! cargo-fuzz target `deps_text`: see crates/conlink-fuzz.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| conlink_fuzz::deps_text(data));
