//! Static builds of the tools (`RUSTFLAGS=-C target-feature=+crt-static`)
//! are linked as classic static executables (ELF type EXEC, no interpreter)
//! instead of rustc's default static-pie, so that `ldd` reports "not a
//! dynamic executable" and nothing is self-relocated at start-up.
//!
//! Both flags are needed: `-no-pie` alone after rustc's `-static-pie` left
//! a binary with an interpreter that crashed at once; `-static` after it
//! restores a static link with the non-PIE start files (crt1.o). The Rust
//! code stays position independent, which a non-PIE executable accepts.
//! Ordinary (dynamic) builds, such as `cargo test`, are not affected.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if features.split(',').any(|f| f == "crt-static") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
        println!("cargo:rustc-link-arg-bins=-static");
    }
}
