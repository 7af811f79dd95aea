//! cargo-fuzz target `netem`: see crates/conlink-fuzz.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| conlink_fuzz::netem(data));
