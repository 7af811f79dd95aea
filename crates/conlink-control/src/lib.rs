//! conlink-control: the control surface of a running conlink.
//!
//! - a JSON API over HTTP/1.1 on a root-only unix socket
//!   (`/run/conlink/NAME.sock`), optionally on TCP with a bearer token
//!   ([`server`]), and its clients ([`client`]);
//! - Prometheus metrics ([`render::metrics_text`]);
//! - the live topology page ([`web`]).
//!
//! The daemon is reached only through the [`ControlBackend`] trait, so this
//! crate knows nothing of runtimes or netlink. Runtime link changes
//! (`link set down`, `--netem`, flaps) are requests to the backend to change
//! its *desired state* ([`OverrideChange`]); the backend applies them the
//! way it applies the config.

pub mod api;
pub mod backend;
pub mod client;
mod error;
pub mod render;
pub mod server;
mod target;
pub mod web;

pub use backend::{overlay_netem, ControlBackend, EventHub, Histogram, Metrics, OverrideChange};
pub use error::{Error, Result};
pub use target::Selector;
