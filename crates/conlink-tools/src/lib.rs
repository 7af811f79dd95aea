//! conlink-tools: the small programs shipped with conlink for compose
//! projects (spec §9, §10).
//!
//! * `wait`, `copy`, `echo`: static binaries mounted into arbitrary
//!   containers (including `FROM scratch`); no async runtime, no NSS.
//! * `mdc` (modular compose) and `resolve-deps` (its dependency resolver).
//! * `conlink-start`: runs the conlink image against existing containers
//!   without compose.
//!
//! The logic lives in this library so that it can be unit tested; the
//! binaries in `src/bin/` only parse arguments and print errors.

#![warn(missing_docs)]

pub mod cli;
pub mod deps;
pub mod dns;
pub mod error;
pub mod iface;
pub mod launch;
pub mod mdc;
pub mod tree;
pub mod wait;

pub use error::{Error, Result};
