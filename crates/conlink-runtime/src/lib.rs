//! Container runtimes conlink watches.
//!
//! A runtime reports containers starting and dying, tells where each one's
//! network namespace is, and runs commands inside containers. It knows
//! nothing of netlink or of the network config: the daemon matches
//! containers against the config and the planner decides what to build.

use std::path::PathBuf;

pub mod docker;
pub mod netns;

/// A running container (or, in the netns runtime, a named namespace playing one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Engine id (docker: the 64-hex id; netns runtime: `netns-NAME`).
    pub id: String,
    /// Container name (no leading `/`).
    pub name: String,
    /// Compose service, when the container belongs to one.
    pub service: Option<String>,
    /// Compose project, when the container belongs to one.
    pub project: Option<String>,
    /// Replica number, 1-based (compose `container-number`; 1 otherwise).
    pub index: u32,
    /// Path of the container's network namespace (`/proc/PID/ns/net`,
    /// `/run/netns/NAME`).
    pub netns: PathBuf,
}

/// What the runtime reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A container started (or was already running when conlink subscribed).
    Start(Container),
    /// A container died; its id.
    Die(String),
}
