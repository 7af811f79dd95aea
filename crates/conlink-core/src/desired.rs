//! Desired state: a pure function of the config, the observed containers
//! and the overrides. Nothing here touches the system.

use std::collections::{BTreeMap, BTreeSet};

use conlink_model::{
    BridgeMode, Container, Link, LinkType, Netem, NetworkConfig, Target, IFNAME_MAX,
};
use serde::{Deserialize, Serialize};

use crate::state::{
    CtrRef, CtrState, ForwardSpec, Globals, LinkIdentity, LinkState, Outer, TunnelState,
};

/// Why a container could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Replica offset pushed an address or port past its range.
    #[error("link {dev} of {container}: {what}")]
    Offset {
        /// Container name.
        container: String,
        /// Interface.
        dev: String,
        /// What overflowed.
        what: String,
    },
    /// Two links of one container want the same interface name.
    #[error("container {container}: two links want interface {dev} (one from service {service:?}, one from container {container:?})")]
    DuplicateDev {
        /// Container name.
        container: String,
        /// Its service.
        service: String,
        /// Interface.
        dev: String,
    },
    /// A link names a bridge the config does not define (config bug).
    #[error("link {dev} of {container}: unknown bridge {bridge}")]
    UnknownBridge {
        /// Container name.
        container: String,
        /// Interface.
        dev: String,
        /// The bridge named.
        bridge: String,
    },
}

/// Run-time changes to one link, laid over the config (control API):
/// they survive reloads and container restarts until cleared.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LinkOverride {
    /// Keep the link administratively down.
    pub admin_down: bool,
    /// netem to use instead of the configured one (None: the config's).
    pub netem: Option<Netem>,
}

/// Overrides by (container name, dev).
pub type Overrides = BTreeMap<(String, String), LinkOverride>;

/// The inputs of desired state besides the observed containers.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The running configuration.
    pub cfg: NetworkConfig,
    /// Compose project whose `service:` links apply (None: any).
    pub project: Option<String>,
    /// Overrides from the control API.
    pub overrides: Overrides,
    /// Multi-host mode: the mesh options and the current peers; its
    /// tunnels are added to the configured ones ([`crate::mesh`]).
    pub mesh: Option<crate::mesh::Mesh>,
}

/// Which config groups apply to `c`: its container name always; its
/// compose service only when it belongs to `project` (or when no project
/// scoping applies, `project` = None, as in the netns runtime).
pub fn targets_for(c: &Container, project: Option<&str>) -> Vec<Target> {
    let mut t = Vec::new();
    if let Some(svc) = &c.service {
        if in_project(c, project) {
            t.push(Target::Service(svc.clone()));
        }
    }
    t.push(Target::Container(c.name.clone()));
    t
}

/// Whether `c` belongs to `project` (None: conlink serves every project).
pub fn in_project(c: &Container, project: Option<&str>) -> bool {
    project.is_none_or(|p| c.project.as_deref() == Some(p))
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

/// Objects in conlink's namespace wanted by the inputs. Depends on the
/// config only (not on which containers run), so a container event never
/// changes them.
pub fn desired_globals(inp: &Inputs) -> Globals {
    let cfg = &inp.cfg;
    let forwards = cfg
        .services
        .values()
        .chain(cfg.containers.values())
        .flat_map(|g| &g.links)
        .any(|l| !l.forward.is_empty());
    let mut g = Globals {
        forwarding: forwards,
        forward_table: forwards,
        bridges: cfg
            .bridges
            .values()
            .map(|b| (b.bridge.clone(), b.mode))
            .collect(),
        tunnels: BTreeMap::new(),
    };
    for t in &cfg.tunnels {
        let mode = cfg
            .bridges
            .get(&t.bridge)
            .map_or(BridgeMode::Linux, |b| b.mode);
        g.tunnels.insert(
            t.ifname(),
            TunnelState {
                kind: t.tunnel_type,
                vni: t.vni,
                remote: Some(t.remote),
                port: t.udp_port(),
                bridge: t.bridge.clone(),
                mode,
                netem: t.netem.clone(),
                flood: BTreeSet::new(),
                mtu: None,
                per_peer: false,
            },
        );
    }
    if let Some(m) = &inp.mesh {
        // Names never clash with configured tunnels: mesh::check refuses
        // such a config before it is used.
        g.tunnels.extend(crate::mesh::tunnels(cfg, m));
    }
    g
}

/// One container's desired links and commands; None when the config has
/// nothing for it.
pub fn desired_container(inp: &Inputs, c: &Container) -> Result<Option<CtrState>, PlanError> {
    let cfg = &inp.cfg;
    let mut st = CtrState::empty(CtrRef {
        name: c.name.clone(),
        id: c.id.clone(),
        netns: c.netns.clone(),
    });
    let mut devs = BTreeSet::new();
    let mut any = false;
    for target in targets_for(c, inp.project.as_deref()) {
        let Some(group) = cfg.group(&target) else {
            continue;
        };
        any = true;
        for link in &group.links {
            if !devs.insert(link.dev.clone()) {
                return Err(PlanError::DuplicateDev {
                    container: c.name.clone(),
                    service: c.service.clone().unwrap_or_default(),
                    dev: link.dev.clone(),
                });
            }
            let mut l = instance_link(cfg, c, &target, link)?;
            if let Some(o) = inp.overrides.get(&(c.name.clone(), link.dev.clone())) {
                if o.admin_down {
                    // The kernel drops a link's routes when it goes down;
                    // wanting none while down keeps state and kernel equal
                    // (they come back with the link).
                    l.up = false;
                    l.routes.clear();
                }
                if o.netem.is_some() {
                    l.netem = o.netem.clone();
                }
            }
            st.links.insert(link.dev.clone(), l);
        }
        st.commands
            .extend(group.commands.iter().map(|cmd| cmd.command.argv()));
    }
    st.nat_table = st.links.values().any(|l| l.nat.is_some());
    Ok((any && !(st.links.is_empty() && st.commands.is_empty())).then_some(st))
}

fn instance_link(
    cfg: &NetworkConfig,
    c: &Container,
    target: &Target,
    link: &Link,
) -> Result<LinkState, PlanError> {
    let off = c.index.saturating_sub(1);
    let oerr = |what: String| PlanError::Offset {
        container: c.name.clone(),
        dev: link.dev.clone(),
        what,
    };
    let ips = link.replica_ips(c.index).map_err(|e| oerr(e.to_string()))?;
    // NAT and forwards are IPv4 (the config refuses them otherwise).
    let ip = ips.iter().find_map(conlink_model::IpNet::v4);
    let mac = link
        .mac
        .map(|m| m.offset(off.into()))
        .transpose()
        .map_err(|e| oerr(e.to_string()))?;
    let forwards = link
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
            (Some(Outer { name, bridge, mode }), None)
        }
        LinkType::Dummy => (None, None),
        _ => (None, link.outer_dev.clone()),
    };
    let forward = match (&outer, ip, forwards.is_empty()) {
        (Some(o), Some(ip), false) => Some(ForwardSpec {
            ip: ip.addr,
            outer: o.name.clone(),
            bridge: o.bridge.clone(),
            forwards,
        }),
        _ => None,
    };
    Ok(LinkState {
        id: LinkIdentity {
            kind: link.link_type,
            outer,
            parent,
            mode: link.mode.clone(),
            vlanid: link.vlanid,
            no_ipv6: !link.ipv6,
        },
        mac,
        mtu: link.mtu,
        addrs: ips,
        routes: link.route.clone(),
        netem: link.netem.clone(),
        ethtool: link.ethtool.clone(),
        nat: match (link.nat, ip) {
            (Some(nat), Some(ip)) => Some((ip.addr, nat)),
            _ => None,
        },
        forward,
        up: true,
    })
}
