//! The planner: a pure function from the validated config and one container
//! to the concrete links that container must get, and from those to the
//! ordered list of operations the executor carries out.
//!
//! Nothing here touches the system, so it is tested without root.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use conlink_model::{
    BridgeMode, EthtoolSetting, Forward, IpNet, Link, LinkType, MacAddr, Netem, NetworkConfig,
    Route, Target, IFNAME_MAX,
};
use conlink_runtime::Container;

/// Why a container could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Replica offset pushed an address or port past its range.
    #[error("link {dev} of {container}: {what}")]
    Offset {
        container: String,
        dev: String,
        what: String,
    },
    /// Two links of one container want the same interface name.
    #[error("container {container}: two links want interface {dev} (one from service {service:?}, one from container {container:?})")]
    DuplicateDev {
        container: String,
        service: String,
        dev: String,
    },
    /// A link names a bridge the config does not define (config bug).
    #[error("link {dev} of {container}: unknown bridge {bridge}")]
    UnknownBridge {
        container: String,
        dev: String,
        bridge: String,
    },
}

/// Where a veth's outer end goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OuterVeth {
    /// Interface name in conlink's namespace.
    pub name: String,
    /// Bridge (switch) it joins.
    pub bridge: String,
    /// How it joins.
    pub mode: BridgeMode,
}

/// One link made concrete for one container instance: names chosen, replica
/// offsets applied, nothing left to compute.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceLink {
    /// Interface kind.
    pub kind: LinkType,
    /// Name inside the container.
    pub dev: String,
    /// veth: the outer end.
    pub outer: Option<OuterVeth>,
    /// *vlan/*vtap: parent interface in the host namespace.
    pub parent: Option<String>,
    /// Addresses, IPv4 and IPv6 (replica offset applied).
    pub ip: Vec<IpNet>,
    /// MAC (offset applied).
    pub mac: Option<MacAddr>,
    /// MTU (absent: inherit).
    pub mtu: Option<u32>,
    /// Routes on `dev`.
    pub routes: Vec<Route>,
    /// 1:1 NAT address.
    pub nat: Option<Ipv4Addr>,
    /// netem on `dev`.
    pub netem: Option<Netem>,
    /// macvlan/… mode.
    pub mode: Option<String>,
    /// 802.1Q tag.
    pub vlanid: Option<u16>,
    /// Port forwards (conlink ports offset applied).
    pub forward: Vec<Forward>,
    /// ethtool settings on `dev`.
    pub ethtool: Vec<EthtoolSetting>,
}

/// Everything one container gets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerPlan {
    /// Links, in config order (container-name links after service links).
    pub links: Vec<InstanceLink>,
    /// Commands (argv) to run once every link is up.
    pub commands: Vec<Vec<String>>,
}

impl ContainerPlan {
    /// Whether the config has nothing for this container.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty() && self.commands.is_empty()
    }
}

/// Which config groups apply to `c`: its container name always; its compose
/// service only when it belongs to `project` (or when no project scoping
/// applies, `project` = None, as in the netns runtime).
pub fn targets_for(c: &Container, project: Option<&str>) -> Vec<Target> {
    let mut t = Vec::new();
    if let Some(svc) = &c.service {
        let in_project = match project {
            None => true,
            Some(p) => c.project.as_deref() == Some(p),
        };
        if in_project {
            t.push(Target::Service(svc.clone()));
        }
    }
    t.push(Target::Container(c.name.clone()));
    t
}

/// Plans one container: the concrete links and commands it gets.
pub fn plan_container(
    cfg: &NetworkConfig,
    c: &Container,
    project: Option<&str>,
) -> Result<ContainerPlan, PlanError> {
    let mut plan = ContainerPlan::default();
    let mut devs = BTreeSet::new();
    for target in targets_for(c, project) {
        let Some(group) = cfg.group(&target) else {
            continue;
        };
        for link in &group.links {
            if !devs.insert(link.dev.clone()) {
                return Err(PlanError::DuplicateDev {
                    container: c.name.clone(),
                    service: c.service.clone().unwrap_or_default(),
                    dev: link.dev.clone(),
                });
            }
            plan.links.push(instance_link(cfg, c, &target, link)?);
        }
        plan.commands
            .extend(group.commands.iter().map(|cmd| cmd.command.argv()));
    }
    Ok(plan)
}

/// The outer veth name (spec §4): `SERVICE_INDEX-DEV` for service links,
/// `CONTAINER-DEV` for container links, or when that is longer than 15
/// bytes `c` + 8 hex chars of the container id + `-` + 5 chars of dev.
pub fn outer_name(c: &Container, target: &Target, dev: &str) -> String {
    let name = match target {
        Target::Service(s) => format!("{s}_{}-{dev}", c.index),
        Target::Container(n) => format!("{n}-{dev}"),
    };
    if name.len() <= IFNAME_MAX {
        return name;
    }
    let id: String = c.id.chars().take(8).collect();
    let d: String = dev.chars().take(5).collect();
    format!("c{id}-{d}")
}

fn instance_link(
    cfg: &NetworkConfig,
    c: &Container,
    target: &Target,
    link: &Link,
) -> Result<InstanceLink, PlanError> {
    let off = c.index.saturating_sub(1);
    let oerr = |what: String| PlanError::Offset {
        container: c.name.clone(),
        dev: link.dev.clone(),
        what,
    };
    let ip = link.replica_ips(c.index).map_err(|e| oerr(e.to_string()))?;
    let mac = link
        .mac
        .map(|m| m.offset(off.into()))
        .transpose()
        .map_err(|e| oerr(e.to_string()))?;
    let forward = link
        .forward
        .iter()
        .map(|f| {
            u16::try_from(off)
                .ok()
                .and_then(|o| f.offset(o))
                .ok_or_else(|| oerr(format!("forward {f}: port + replica offset {off} > 65535")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (outer, parent) = match link.link_type {
        LinkType::Veth => {
            // Validation guarantees veth links name a bridge; a missing one
            // here would be a config-crate bug, reported rather than panicking.
            let bridge = link.bridge.clone().unwrap_or_default();
            let mode = cfg.bridges.get(&bridge).map(|b| b.mode).ok_or_else(|| {
                PlanError::UnknownBridge {
                    container: c.name.clone(),
                    dev: link.dev.clone(),
                    bridge: bridge.clone(),
                }
            })?;
            let name = link
                .outer_dev
                .clone()
                .unwrap_or_else(|| outer_name(c, target, &link.dev));
            (Some(OuterVeth { name, bridge, mode }), None)
        }
        LinkType::Dummy => (None, None),
        _ => (None, link.outer_dev.clone()),
    };
    Ok(InstanceLink {
        kind: link.link_type,
        dev: link.dev.clone(),
        outer,
        parent,
        ip,
        mac,
        mtu: link.mtu,
        routes: link.route.clone(),
        nat: link.nat,
        netem: link.netem.clone(),
        mode: link.mode.clone(),
        vlanid: link.vlanid,
        forward,
        ethtool: link.ethtool.clone(),
    })
}

/// One step the executor carries out, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// veth pair: `outer` in conlink's namespace, `dev` straight into the
    /// container's, both up, the outer end on its Linux bridge `master`
    /// from the start (`ip link add OUTER mtu M master BR up type veth peer
    /// name DEV netns C address MAC mtu M` + `ip -n C link set DEV up`):
    /// one datagram to conlink's namespace and one request in the
    /// container's instead of separate master and up requests.
    CreateVeth {
        outer: String,
        dev: String,
        mac: Option<MacAddr>,
        mtu: Option<u32>,
        master: Option<String>,
    },
    /// A child of a host interface, created in the host namespace and moved
    /// into the container under `dev`.
    CreateChild {
        kind: LinkType,
        parent: String,
        dev: String,
        mode: Option<String>,
        vlanid: Option<u16>,
        mac: Option<MacAddr>,
        mtu: Option<u32>,
    },
    /// A dummy interface inside the container.
    CreateDummy {
        dev: String,
        mac: Option<MacAddr>,
        mtu: Option<u32>,
    },
    /// Outer end joins an OVS bridge (`ovs-vsctl add-port BRIDGE OUTER`).
    JoinOvs { outer: String, bridge: String },
    /// Outer end joins a patch; the executor links it with the other end
    /// once both exist.
    JoinPatch { outer: String, bridge: String },
    /// Container interface up (veth ends are created up).
    Up { dev: String },
    /// ethtool setting on the container end.
    Ethtool {
        dev: String,
        setting: EthtoolSetting,
    },
    /// Address on the container end.
    AddAddr { dev: String, ip: IpNet },
    /// Route on the container end, out of `dev` unless the route names its
    /// own dev.
    AddRoute { dev: String, route: Route },
    /// netem root qdisc on the container end.
    Netem { dev: String, netem: Netem },
    /// 1:1 NAT in the container.
    Nat {
        dev: String,
        ip: Ipv4Addr,
        nat: Ipv4Addr,
    },
    /// Port forwards in conlink's namespace towards `ip` (on the
    /// container's `dev`).
    Forward {
        outer: String,
        bridge: String,
        ip: Ipv4Addr,
        dev: String,
        forward: Vec<Forward>,
    },
}

/// The operations that build one link, in the order they must run: create,
/// attach, settings that need the link down or no traffic (ethtool), up,
/// then addresses, routes, qdiscs and firewall.
pub fn link_ops(l: &InstanceLink) -> Vec<Op> {
    let mut ops = Vec::new();
    match l.kind {
        LinkType::Veth => {
            if let Some(o) = &l.outer {
                ops.push(Op::CreateVeth {
                    outer: o.name.clone(),
                    dev: l.dev.clone(),
                    mac: l.mac,
                    mtu: l.mtu,
                    master: (o.mode == BridgeMode::Linux).then(|| o.bridge.clone()),
                });
                match o.mode {
                    BridgeMode::Linux => {}
                    BridgeMode::Ovs => ops.push(Op::JoinOvs {
                        outer: o.name.clone(),
                        bridge: o.bridge.clone(),
                    }),
                    BridgeMode::Patch => ops.push(Op::JoinPatch {
                        outer: o.name.clone(),
                        bridge: o.bridge.clone(),
                    }),
                }
            }
        }
        LinkType::Dummy => ops.push(Op::CreateDummy {
            dev: l.dev.clone(),
            mac: l.mac,
            mtu: l.mtu,
        }),
        kind => ops.push(Op::CreateChild {
            kind,
            parent: l.parent.clone().unwrap_or_default(),
            dev: l.dev.clone(),
            mode: l.mode.clone(),
            vlanid: l.vlanid,
            mac: l.mac,
            mtu: l.mtu,
        }),
    }
    for s in &l.ethtool {
        ops.push(Op::Ethtool {
            dev: l.dev.clone(),
            setting: s.clone(),
        });
    }
    // A veth's ends are created up.
    if l.kind != LinkType::Veth {
        ops.push(Op::Up { dev: l.dev.clone() });
    }
    for ip in &l.ip {
        ops.push(Op::AddAddr {
            dev: l.dev.clone(),
            ip: *ip,
        });
    }
    for r in l.routes.iter().filter(|r| !names_other_dev(l, r)) {
        ops.push(Op::AddRoute {
            dev: l.dev.clone(),
            route: r.clone(),
        });
    }
    if let Some(n) = &l.netem {
        ops.push(Op::Netem {
            dev: l.dev.clone(),
            netem: n.clone(),
        });
    }
    let ipv4 = l.ip.iter().find_map(IpNet::v4);
    if let (Some(nat), Some(ip)) = (l.nat, ipv4) {
        ops.push(Op::Nat {
            dev: l.dev.clone(),
            ip: ip.addr,
            nat,
        });
    }
    if let (false, Some(ip), Some(o)) = (l.forward.is_empty(), ipv4, &l.outer) {
        ops.push(Op::Forward {
            outer: o.name.clone(),
            bridge: o.bridge.clone(),
            ip: ip.addr,
            dev: l.dev.clone(),
            forward: l.forward.clone(),
        });
    }
    ops
}

/// Whether route `r` of link `l` goes out of another dev of the container.
fn names_other_dev(l: &InstanceLink, r: &Route) -> bool {
    r.dev.as_deref().is_some_and(|d| d != l.dev)
}

/// Routes that name another dev of the same container (`10.128.0.0/15 via
/// 10.200.0.2 dev eth1` on eth0's link): they run after every link of the
/// container exists and has its addresses, since that dev may come later.
pub fn late_route_ops(plan: &ContainerPlan) -> Vec<Op> {
    plan.links
        .iter()
        .flat_map(|l| {
            l.routes
                .iter()
                .filter(|r| names_other_dev(l, r))
                .map(|r| Op::AddRoute {
                    dev: l.dev.clone(),
                    route: r.clone(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use conlink_model::{Base, Bridge, Group};

    fn veth(target: Target, dev: &str, bridge: &str, ip: &str) -> Link {
        Link {
            link_type: LinkType::Veth,
            target,
            dev: dev.into(),
            outer_dev: None,
            bridge: Some(bridge.into()),
            ip: vec![ip.parse().unwrap()],
            mac: Some("c2:00:00:00:00:ff".parse().unwrap()),
            mtu: Some(9000),
            route: vec!["default via 10.0.1.254".parse().unwrap()],
            nat: None,
            netem: None,
            mode: None,
            vlanid: None,
            forward: vec!["8080:80/tcp".parse().unwrap()],
            ethtool: vec!["--offload tx off".parse().unwrap()],
            base: Base::Conlink,
        }
    }

    fn cfg() -> NetworkConfig {
        let mut cfg = NetworkConfig::default();
        cfg.bridges.insert(
            "s1".into(),
            Bridge {
                bridge: "s1".into(),
                mode: BridgeMode::Linux,
            },
        );
        cfg.services.insert(
            "node".into(),
            Group {
                links: vec![veth(
                    Target::Service("node".into()),
                    "eth0",
                    "s1",
                    "10.0.1.1/24",
                )],
                commands: vec![],
            },
        );
        cfg
    }

    fn container(name: &str, svc: Option<&str>, project: Option<&str>, index: u32) -> Container {
        Container {
            id: "0123456789abcdef".into(),
            name: name.into(),
            service: svc.map(Into::into),
            project: project.map(Into::into),
            index,
            netns: "/run/netns/x".into(),
        }
    }

    #[test]
    fn replica_offsets_apply_to_ip_mac_and_ports() {
        let c = container("p-node-3", Some("node"), Some("p"), 3);
        let plan = plan_container(&cfg(), &c, Some("p")).unwrap();
        let l = &plan.links[0];
        assert_eq!(l.ip[0].to_string(), "10.0.1.3/24");
        assert_eq!(l.mac.unwrap().to_string(), "c2:00:00:00:01:01");
        assert_eq!(l.forward[0].to_string(), "8082:80/tcp");
        assert_eq!(l.outer.as_ref().unwrap().name, "node_3-eth0");
    }

    #[test]
    fn services_match_only_in_their_project() {
        let c = container("q-node-1", Some("node"), Some("q"), 1);
        assert!(plan_container(&cfg(), &c, Some("p")).unwrap().is_empty());
        assert!(!plan_container(&cfg(), &c, None).unwrap().is_empty());
    }

    #[test]
    fn long_outer_names_fall_back_to_id() {
        let c = container("x", Some("averyverylongservice"), None, 12);
        let t = Target::Service("averyverylongservice".into());
        assert_eq!(outer_name(&c, &t, "ethernet7"), "c01234567-ether");
        let t = Target::Container("router".into());
        assert_eq!(outer_name(&c, &t, "eth1"), "router-eth1");
    }

    #[test]
    fn ops_are_ordered_create_attach_up_configure() {
        let c = container("n", Some("node"), None, 1);
        let plan = plan_container(&cfg(), &c, None).unwrap();
        let ops = link_ops(&plan.links[0]);
        let names: Vec<&str> = ops
            .iter()
            .map(|o| match o {
                Op::CreateVeth {
                    master: Some(b), ..
                } if b == "s1" => "veth",
                Op::Ethtool { .. } => "ethtool",
                Op::Up { .. } => "up",
                Op::AddAddr { .. } => "addr",
                Op::AddRoute { .. } => "route",
                Op::Forward { .. } => "forward",
                _ => "other",
            })
            .collect();
        assert_eq!(names, ["veth", "ethtool", "addr", "route", "forward"]);
    }

    #[test]
    fn duplicate_dev_across_service_and_container_is_an_error() {
        let mut cfg = cfg();
        cfg.containers.insert(
            "n".into(),
            Group {
                links: vec![veth(
                    Target::Container("n".into()),
                    "eth0",
                    "s1",
                    "10.0.2.1/24",
                )],
                commands: vec![],
            },
        );
        let c = container("n", Some("node"), None, 1);
        assert!(matches!(
            plan_container(&cfg, &c, None),
            Err(PlanError::DuplicateDev { .. })
        ));
    }

    #[test]
    fn ip_overflow_is_reported_not_wrapped() {
        let mut cfg = cfg();
        cfg.services.get_mut("node").unwrap().links[0].ip =
            vec!["255.255.255.254/24".parse().unwrap()];
        let c = container("n", Some("node"), None, 3);
        assert!(matches!(
            plan_container(&cfg, &c, None),
            Err(PlanError::Offset { .. })
        ));
    }
}
