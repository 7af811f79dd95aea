//! A container as conlink sees it: what a runtime reports and what the
//! desired state is computed from.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A running container (or, in the netns runtime, a named namespace playing one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Container {
    /// Engine id (docker: the 64-hex id; netns runtime: a pseudo id).
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
