//! cargo-fuzz target `config_yaml`: see crates/conlink-fuzz.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| conlink_fuzz::config_yaml(data));
