//! The resolved network configuration: what `--show-config` prints and what
//! the planner reads. Built only by `conlink-config` after validation and
//! enrichment, so every field here already holds a checked, typed value.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::{EthtoolSetting, Forward, IpNet, Ipv4Net, MacAddr, Netem, Route};

/// Interface kind of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkType {
    /// A veth pair: inner end in the container, outer end in conlink's namespace.
    Veth,
    /// A dummy interface entirely inside the container.
    Dummy,
    /// An 802.1Q sub-interface of a host interface, moved into the container.
    Vlan,
    /// A macvlan child of a host interface, moved into the container.
    Macvlan,
    /// A macvtap child of a host interface, moved into the container.
    Macvtap,
    /// An ipvlan child of a host interface, moved into the container.
    Ipvlan,
    /// An ipvtap child of a host interface, moved into the container.
    Ipvtap,
}

impl LinkType {
    /// Where the outer side of this kind of link lives.
    pub fn base(self) -> Base {
        match self {
            LinkType::Veth => Base::Conlink,
            LinkType::Dummy => Base::Local,
            _ => Base::Host,
        }
    }

    /// Whether this kind takes a `mode` (macvlan/macvtap/ipvlan/ipvtap).
    pub fn has_mode(self) -> bool {
        matches!(
            self,
            LinkType::Macvlan | LinkType::Macvtap | LinkType::Ipvlan | LinkType::Ipvtap
        )
    }

    /// Whether this kind is a child of a host interface (`outer-dev` is its parent).
    pub fn has_parent(self) -> bool {
        self.base() == Base::Host
    }

    /// The name users write in `type:`.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkType::Veth => "veth",
            LinkType::Dummy => "dummy",
            LinkType::Vlan => "vlan",
            LinkType::Macvlan => "macvlan",
            LinkType::Macvtap => "macvtap",
            LinkType::Ipvlan => "ipvlan",
            LinkType::Ipvtap => "ipvtap",
        }
    }
}

/// Where a link's outer side lives (spec §4 "base").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Base {
    /// conlink's own network namespace (veth outer ends, bridges).
    Conlink,
    /// The host's root namespace (parents of *vlan/*vtap links).
    Host,
    /// Nothing outside the container (dummy).
    Local,
}

/// Which containers a link or command applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Every replica of a compose service (in conlink's compose project).
    Service(String),
    /// The container with exactly this name.
    Container(String),
}

impl Target {
    /// The service or container name.
    pub fn name(&self) -> &str {
        match self {
            Target::Service(s) | Target::Container(s) => s,
        }
    }
}

/// One interface inside one container (per replica, before offsets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Link {
    /// Interface kind.
    #[serde(rename = "type")]
    pub link_type: LinkType,
    /// Service or container it applies to.
    #[serde(flatten)]
    pub target: Target,
    /// Interface name inside the container.
    pub dev: String,
    /// veth: name of the outer end (absent: derived per container, spec §4);
    /// *vlan/*vtap: the parent interface in the host namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer_dev: Option<String>,
    /// veth: the bridge the outer end joins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// Addresses for replica 1 (IPv4 and/or IPv6; several for dual stack).
    /// One address is written as a string, several as a list.
    #[serde(
        default,
        with = "crate::addr::ip_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip: Vec<IpNet>,
    /// MAC for replica 1 (absent only for ipvlan/ipvtap, which share the parent's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// MTU (absent: inherit from the parent, for *vlan/*vtap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Routes on `dev`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<Route>,
    /// 1:1 NAT address (requires `ip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat: Option<Ipv4Addr>,
    /// netem impairments as the root qdisc on `dev`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netem: Option<Netem>,
    /// macvlan/macvtap/ipvlan/ipvtap mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// 802.1Q tag (vlan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlanid: Option<u16>,
    /// Ports published through conlink (replica 1's ports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forward: Vec<Forward>,
    /// ethtool settings on `dev`, in order (the tx-offload-off default first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ethtool: Vec<EthtoolSetting>,
    /// IPv6 on `dev` (default true). `false`: no IPv6 link-local address,
    /// so no DAD, router solicitations or MLD reports from the link (on a
    /// big shared bridge those are flooded to every port); IPv4-only labs
    /// set it to spare the kernel that work. Cannot carry IPv6 addresses.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub ipv6: bool,
    /// Where the outer side lives.
    pub base: Base,
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

impl Link {
    /// The first IPv4 address (the one NAT and port forwards use: both stay
    /// IPv4).
    pub fn ipv4(&self) -> Option<Ipv4Net> {
        self.ip.iter().find_map(IpNet::v4)
    }

    /// The addresses for replica `index` (1-based): each plus `index - 1`
    /// (spec §4; IPv6 as a 128-bit integer).
    pub fn replica_ips(&self, index: u32) -> Result<Vec<IpNet>, crate::ParseAddrError> {
        let off = u128::from(index.saturating_sub(1));
        self.ip.iter().map(|a| a.offset(off)).collect()
    }
}

/// Resolved bridge mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BridgeMode {
    /// A Linux bridge in conlink's namespace.
    Linux,
    /// An Open vSwitch bridge.
    Ovs,
    /// No bridge: two outer ends joined back-to-back with tc mirred.
    Patch,
}

/// A switch / broadcast domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bridge {
    /// Bridge name (also the interface name for linux/ovs).
    pub bridge: String,
    /// Resolved mode.
    pub mode: BridgeMode,
    /// VNI of the tunnels that stretch this bridge across hosts (multi-host
    /// mode); None: derived from the project and bridge name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
}

/// Tunnel kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    /// GENEVE (UDP 6081).
    Geneve,
    /// VXLAN (UDP 8472 by default, Linux's and the original's; 4789 is IANA's).
    Vxlan,
}

impl TunnelType {
    /// The UDP port used when a tunnel sets none: vxlan 8472 (what the
    /// original uses and its users publish), geneve 6081.
    pub fn default_port(self) -> u16 {
        match self {
            TunnelType::Geneve => 6081,
            TunnelType::Vxlan => 8472,
        }
    }
}

/// A tunnel to a remote host's conlink, attached to a bridge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tunnel {
    /// Tunnel kind.
    #[serde(rename = "type")]
    pub tunnel_type: TunnelType,
    /// Bridge the tunnel joins.
    pub bridge: String,
    /// Remote underlay address.
    pub remote: Ipv4Addr,
    /// Virtual network id (< 2^24).
    pub vni: u32,
    /// UDP destination port; conlink-config always fills it in (absent
    /// only in JSON written before the key existed: then the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// netem on the tunnel interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netem: Option<Netem>,
}

impl Tunnel {
    /// The UDP port: the configured one, else the type's default.
    pub fn udp_port(&self) -> u16 {
        self.port.unwrap_or(self.tunnel_type.default_port())
    }

    /// Interface name: `TYPE-VNI` (e.g. `vxlan-1001`).
    pub fn ifname(&self) -> String {
        let t = match self.tunnel_type {
            TunnelType::Geneve => "geneve",
            TunnelType::Vxlan => "vxlan",
        };
        format!("{t}-{}", self.vni)
    }
}

/// A command as configured: argv (a list) or a shell string (`sh -c`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandSpec {
    /// Run directly with this argument vector.
    Argv(Vec<String>),
    /// Run under `sh -c`.
    Shell(String),
}

impl CommandSpec {
    /// The argument vector to execute.
    pub fn argv(&self) -> Vec<String> {
        match self {
            CommandSpec::Argv(v) => v.clone(),
            CommandSpec::Shell(s) => vec!["sh".into(), "-c".into(), s.clone()],
        }
    }
}

/// A command with its target, as listed under top-level `commands`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Service or container it runs in.
    #[serde(flatten)]
    pub target: Target,
    /// What to run.
    pub command: CommandSpec,
}

/// Links and commands of one service or container.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Group {
    /// Links, in configuration order.
    #[serde(default)]
    pub links: Vec<Link>,
    /// Commands to run once all links are up.
    #[serde(default)]
    pub commands: Vec<Command>,
}

/// The whole validated, enriched configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Bridges by name (every bridge a link or tunnel names is here).
    #[serde(default)]
    pub bridges: BTreeMap<String, Bridge>,
    /// Tunnels.
    #[serde(default)]
    pub tunnels: Vec<Tunnel>,
    /// Links and commands per compose service.
    #[serde(default)]
    pub services: BTreeMap<String, Group>,
    /// Links and commands per container name.
    #[serde(default)]
    pub containers: BTreeMap<String, Group>,
}

impl NetworkConfig {
    /// The group for a target, if configured.
    pub fn group(&self, target: &Target) -> Option<&Group> {
        match target {
            Target::Service(s) => self.services.get(s),
            Target::Container(c) => self.containers.get(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_json_shape_round_trips() {
        let j = serde_json::json!({
            "type": "veth", "service": "node", "dev": "eth0", "bridge": "s1",
            "ip": "10.0.1.1/24", "mac": "c2:00:00:00:00:01", "mtu": 9000,
            "route": ["default via 10.0.1.254"], "netem": "delay 10ms",
            "forward": ["8080:80/tcp"], "ethtool": ["--offload tx off"], "base": "conlink"
        });
        let l: Link = serde_json::from_value(j.clone()).unwrap();
        assert_eq!(l.target, Target::Service("node".into()));
        assert_eq!(serde_json::to_value(&l).unwrap(), j);
        let c: Command =
            serde_json::from_value(serde_json::json!({"container": "x", "command": ["ip", "a"]}))
                .unwrap();
        assert_eq!(c.command.argv(), vec!["ip", "a"]);
    }
}
