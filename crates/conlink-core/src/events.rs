//! What the core tells the outside: events (shaped like docker events),
//! a bounded history of them, and snapshots of the state. The control API
//! serves these.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::state::{LinkState, TunnelState};

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// A container seen by the runtime.
    Container,
    /// One link of a container.
    Link,
    /// A control API override.
    Override,
    /// The configuration.
    Config,
    /// conlink as a whole.
    Conlink,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A container started.
    Start,
    /// A container died.
    Die,
    /// A link was made.
    Created,
    /// A link changed in place.
    Changed,
    /// A link was removed.
    Removed,
    /// A link (or a container's links) failed.
    Failed,
    /// An override was set.
    Set,
    /// An override was cleared.
    Cleared,
    /// A new configuration is running.
    Reloaded,
    /// A new configuration was refused (the old one keeps running).
    Rejected,
    /// Everything converged (`All links connected`).
    Converged,
}

/// The object of an event: an id and attributes (docker's `Actor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Actor {
    /// Id: container name, `NAME/DEV` for links, file path for configs.
    #[serde(rename = "ID")]
    pub id: String,
    /// More about it.
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoreEvent {
    /// Seconds since the epoch.
    pub time: u64,
    /// Nanoseconds since the epoch.
    #[serde(rename = "timeNano")]
    pub time_nano: u128,
    /// What it is about.
    #[serde(rename = "Type")]
    pub kind: EventType,
    /// What happened.
    #[serde(rename = "Action")]
    pub action: Action,
    /// The object.
    #[serde(rename = "Actor")]
    pub actor: Actor,
}

impl CoreEvent {
    /// An event now.
    pub fn now(kind: EventType, action: Action, id: impl Into<String>) -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        CoreEvent {
            time: d.as_secs(),
            time_nano: d.as_nanos(),
            kind,
            action,
            actor: Actor {
                id: id.into(),
                attributes: BTreeMap::new(),
            },
        }
    }

    /// Adds an attribute.
    pub fn attr(mut self, k: &str, v: impl Into<String>) -> Self {
        self.actor.attributes.insert(k.into(), v.into());
        self
    }
}

/// Where a link is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkStatus {
    /// Not (yet) as desired.
    Pending,
    /// As desired.
    Ready,
    /// The last attempt failed (retried on the next change).
    Failed,
}

/// One link in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkSnapshot {
    /// Interface name in the container.
    pub dev: String,
    /// Desired properties.
    pub desired: LinkState,
    /// Outer end (veth), in conlink's namespace.
    pub outer: Option<String>,
    /// Bridge (veth).
    pub bridge: Option<String>,
    /// Namespace path of the container.
    pub netns: String,
    /// Status.
    pub status: LinkStatus,
    /// Why it failed.
    pub reason: Option<String>,
}

/// One container in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerSnapshot {
    /// Name.
    pub name: String,
    /// Engine id.
    pub id: String,
    /// Compose service.
    pub service: Option<String>,
    /// Replica number (1 for plain containers).
    pub replica: u32,
    /// Links.
    pub links: Vec<LinkSnapshot>,
}

/// The whole state, for the control API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Containers conlink manages links for (running and configured).
    pub containers: Vec<ContainerSnapshot>,
    /// Bridges (name -> mode) as made.
    pub bridges: BTreeMap<String, String>,
    /// Tunnels as made.
    pub tunnels: BTreeMap<String, TunnelState>,
    /// Whether `All links connected` holds now.
    pub converged: bool,
}
