//! The API's JSON shapes: what `GET /v1/status` returns, what
//! `GET /v1/events` streams, what `POST /v1/links/set|clear` take. Both the
//! server and the clients use these types, so they cannot drift apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything `conlink status` shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Instance name (the socket's NAME).
    pub name: String,
    /// Whether everything configured is set up (`All links connected`).
    pub converged: bool,
    /// Every container the config applies to.
    pub containers: Vec<ContainerStatus>,
    /// Every link of those containers.
    pub links: Vec<LinkStatus>,
    /// Bridges in conlink's namespace with their ports.
    pub bridges: Vec<BridgeStatus>,
    /// Tunnels.
    pub tunnels: Vec<TunnelStatus>,
    /// What keeps conlink from converging (one line each: what and why).
    pub pending: Vec<Problem>,
    /// What failed, with the reason.
    pub failed: Vec<Problem>,
}

/// A pending or failed item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// What (`node_1`, `node_1/eth0`, `service web`).
    pub what: String,
    /// Why.
    pub reason: String,
}

/// Where a container is in its life with conlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    /// Seen; links not (yet) all made.
    Pending,
    /// Every link made.
    Ready,
    /// Setup failed (see the reason).
    Failed,
}

/// One container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStatus {
    /// Engine id.
    pub id: String,
    /// Container name.
    pub name: String,
    /// Compose service.
    pub service: Option<String>,
    /// Replica number (1-based).
    pub replica: u32,
    /// State.
    pub state: ContainerState,
    /// Why it is pending or failed.
    pub reason: Option<String>,
}

/// Summary state of a link, as the page colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Both ends up with carrier.
    Up,
    /// Exists, but down (administratively or no carrier).
    Down,
    /// Not made yet.
    Pending,
    /// Setup failed.
    Failed,
    /// Should exist but the kernel does not show it.
    Missing,
}

/// Interface counters (`rtnl_link_stats64`), seen from inside the
/// container: rx is what the container received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Packets dropped on transmit.
    pub tx_dropped: u64,
    /// Transmit errors.
    pub tx_errors: u64,
}

/// A running flap (`link set --flap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlapStatus {
    /// Down time, milliseconds.
    pub down_ms: u64,
    /// Up time, milliseconds.
    pub up_ms: u64,
    /// Cycles asked for (None: until cleared).
    pub count: Option<u32>,
    /// Down/up cycles completed.
    pub done: u32,
}

/// One link of one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkStatus {
    /// Container name.
    pub container: String,
    /// Compose service.
    pub service: Option<String>,
    /// Replica number.
    pub replica: u32,
    /// Interface name inside the container.
    pub dev: String,
    /// Link type (`veth`, `macvlan`…).
    pub kind: String,
    /// Outer end in conlink's namespace (veth).
    pub outer: Option<String>,
    /// Bridge it joins.
    pub bridge: Option<String>,
    /// Bridge mode (`linux`, `ovs`, `patch`).
    pub bridge_mode: Option<String>,
    /// Summary state.
    pub state: LinkState,
    /// Inner end administratively up (None: not in the kernel).
    pub admin_up: Option<bool>,
    /// Inner end operational state as `ip link` prints it.
    pub oper_state: Option<String>,
    /// Outer end administratively up.
    pub outer_admin_up: Option<bool>,
    /// Outer end operational state.
    pub outer_oper_state: Option<String>,
    /// IPv4 addresses (CIDR) as configured.
    pub addresses: Vec<String>,
    /// MAC address the kernel reports.
    pub mac: Option<String>,
    /// MTU the kernel reports.
    pub mtu: Option<u32>,
    /// netem from the config (tc syntax).
    pub netem_config: Option<String>,
    /// netem parameters laid over it at run time.
    pub netem_override: Option<String>,
    /// netem in force (config with the override laid over it).
    pub netem: Option<String>,
    /// Held down by an override (`link set … down`).
    pub admin_down_override: bool,
    /// A flap in progress.
    pub flap: Option<FlapStatus>,
    /// Counters of the inner end.
    pub counters: Option<Counters>,
    /// Why the link is pending, failed or missing.
    pub reason: Option<String>,
}

impl LinkStatus {
    /// `CONTAINER/DEV`, the id events and overrides use.
    pub fn id(&self) -> String {
        format!("{}/{}", self.container, self.dev)
    }
}

/// A bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeStatus {
    /// Name.
    pub name: String,
    /// Mode.
    pub mode: String,
    /// Ports (outer ends and tunnels), sorted.
    pub ports: Vec<String>,
    /// Bridge device administratively up (None: no device, e.g. patch).
    pub admin_up: Option<bool>,
}

/// A tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelStatus {
    /// Interface name (`vxlan-1001`).
    pub name: String,
    /// `vxlan` or `geneve`.
    pub kind: String,
    /// VNI.
    pub vni: u32,
    /// Remote address.
    pub remote: String,
    /// Bridge.
    pub bridge: String,
    /// Operational state (None: not in the kernel).
    pub oper_state: Option<String>,
}

/// What an event is about (docker's `Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// A container conlink serves.
    Container,
    /// A link.
    Link,
    /// A runtime override.
    Override,
    /// The configuration.
    Config,
    /// conlink itself (converged).
    Conlink,
}

impl EventType {
    /// The JSON/metrics name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Container => "container",
            EventType::Link => "link",
            EventType::Override => "override",
            EventType::Config => "config",
            EventType::Conlink => "conlink",
        }
    }
}

/// Who an event is about: docker's `Actor`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `CONTAINER/DEV` for links and overrides, the container name for
    /// containers, the file for config, the instance name for conlink.
    #[serde(rename = "ID")]
    pub id: String,
    /// Details (`container`, `service`, `replica`, `dev`, `bridge`,
    /// `reason`, `netem`…).
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// One event, shaped like `docker events --format '{{json .}}'`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unix time, seconds.
    pub time: i64,
    /// Unix time, nanoseconds.
    #[serde(rename = "timeNano")]
    pub time_nano: i128,
    /// Object kind.
    #[serde(rename = "Type")]
    pub kind: EventType,
    /// What happened: start, die, created, changed, removed, failed, set,
    /// cleared, reloaded, rejected, converged.
    #[serde(rename = "Action")]
    pub action: String,
    /// About whom.
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// Position in this conlink's event sequence (1, 2, …): events are
    /// numbered in the order they happened, so a client can tell order and
    /// gaps even when two share a timestamp.
    pub seq: u64,
}

/// Administrative state asked for by `link set TARGET down|up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Admin {
    /// Both ends administratively down (the peer sees carrier loss).
    Down,
    /// Back to the configured state (up).
    Up,
}

/// `link set --flap DOWN/UP [--count N]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlapRequest {
    /// Down time, milliseconds.
    pub down_ms: u64,
    /// Up time, milliseconds.
    pub up_ms: u64,
    /// Cycles (None: until cleared).
    pub count: Option<u32>,
}

/// `POST /v1/links/set`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetRequest {
    /// `CONTAINER[:DEV]` or `SERVICE[:REPLICA][:DEV]`.
    pub target: String,
    /// down/up.
    #[serde(default)]
    pub admin: Option<Admin>,
    /// netem parameters to lay over the configured ones (tc syntax).
    #[serde(default)]
    pub netem: Option<String>,
    /// Drop the netem override (back to the config).
    #[serde(default)]
    pub reset: bool,
    /// Flap.
    #[serde(default)]
    pub flap: Option<FlapRequest>,
}

/// `POST /v1/links/clear`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearRequest {
    /// As in [`SetRequest::target`].
    pub target: String,
}

/// Answer to set/clear: the links the target matched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeReply {
    /// `CONTAINER/DEV` of every link changed.
    pub links: Vec<String>,
}

/// Every error answer: `{"error": "...", "kind": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// Human-readable message (what a client prints).
    pub error: String,
    /// Machine-readable kind (`unknown_target`, `bad_request`,
    /// `unauthorized`, `unsupported`, `apply`, `not_found`).
    pub kind: String,
}
