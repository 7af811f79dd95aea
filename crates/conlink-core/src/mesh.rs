//! The multi-host mesh, as part of desired state: several conlinks (one
//! per host) load the same config, and every bridge is stretched to the
//! other hosts (the peers) by a tunnel conlink makes itself. The tunnels
//! are globals like the configured ones: made, changed, adopted and
//! removed by the same diff ([`crate::diff`]).
//!
//! One tunnel device per bridge, not one per peer: a full mesh of per-peer
//! tunnels on a Linux bridge would loop broadcasts (A floods to B and C, B
//! floods what came from A on to C…). The device has no default remote;
//! its forwarding database holds one all-zeros entry per peer, so the
//! kernel sends each flooded frame once to every peer (head-end replication
//! over unicast) and learns where unicast MACs live. A peer that comes or
//! goes is one entry appended or deleted: the device stays.
//!
//! Every bridge of the config gets its tunnel once there is a peer, whether
//! or not it has members on this host: a host cannot know the others'
//! members, head-end replication sends to every peer anyway, and so the
//! tunnels depend on the config and the peers only. A container event
//! never touches them, and a task rescheduled here finds its bridge
//! stretched already.
//!
//! A patch (`mode: patch`) gets the same kind of device as a *fallback*
//! end (see [`crate::apply`]): with one local end, that end is patched to
//! the tunnel (tc mirred, so BPDUs and LLDP pass untouched); with both ends
//! local, they are patched to each other and the tunnel stays idle. Frames
//! go to every peer; only the host holding the other end has that end
//! patched to its device, so the link is point to point in effect.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use conlink_model::{NetworkConfig, TunnelType};

use crate::state::TunnelState;

/// Outer IPv4 (20) + UDP (8) + VXLAN (8) headers + the inner Ethernet
/// header (14) the tunnel carries: what a frame loses to the underlay.
pub const VXLAN_OVERHEAD: u32 = 50;

/// How this conlink joins the mesh (fixed for the daemon's life).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MeshOptions {
    /// Tunnel kind (VXLAN; GENEVE has no forwarding database for head-end
    /// replication, so [`check`] refuses it).
    pub kind: TunnelType,
    /// UDP port of every mesh tunnel.
    pub port: u16,
    /// MTU of the underlay path between hosts.
    pub underlay_mtu: u32,
    /// Name space of derived VNIs (the compose project or stack), so two
    /// labs on the same hosts do not share broadcast domains.
    pub project: String,
}

impl MeshOptions {
    /// MTU of the tunnel devices: what is left of the underlay MTU.
    pub fn tunnel_mtu(&self) -> u32 {
        self.underlay_mtu.saturating_sub(VXLAN_OVERHEAD)
    }
}

/// The mesh part of the inputs: the options and the current peers (the
/// other hosts' conlinks, this host's own addresses already left out).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mesh {
    /// Options.
    pub opts: MeshOptions,
    /// The peers now.
    pub peers: BTreeSet<Ipv4Addr>,
}

/// The VNI of bridge `bridge` in project `project`: FNV-1a (32 bit) of
/// `PROJECT/BRIDGE`, xor-folded to 24 bits. Deterministic across hosts,
/// versions and platforms (std's hasher is not), never 0.
pub fn derive_vni(project: &str, bridge: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in project
        .bytes()
        .chain(std::iter::once(b'/'))
        .chain(bridge.bytes())
    {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let v = (h >> 24) ^ (h & 0x00ff_ffff);
    if v == 0 {
        1
    } else {
        v
    }
}

/// The VNI of `bridge`'s mesh tunnel: the bridge's own `vni:` or derived.
pub fn vni_of(cfg: &NetworkConfig, opts: &MeshOptions, bridge: &str) -> u32 {
    cfg.bridges
        .get(bridge)
        .and_then(|b| b.vni)
        .unwrap_or_else(|| derive_vni(&opts.project, bridge))
}

/// `vxlan-VNI` / `geneve-VNI` (the spec's tunnel naming).
pub fn tunnel_name(kind: TunnelType, vni: u32) -> String {
    match kind {
        TunnelType::Vxlan => format!("vxlan-{vni}"),
        TunnelType::Geneve => format!("geneve-{vni}"),
    }
}

/// The mesh tunnels wanted: one per bridge of the config, flooding to
/// every peer; none without peers (the last peer leaving takes them all).
pub fn tunnels(cfg: &NetworkConfig, mesh: &Mesh) -> BTreeMap<String, TunnelState> {
    let mut out = BTreeMap::new();
    if mesh.peers.is_empty() {
        return out;
    }
    for b in cfg.bridges.values() {
        let vni = vni_of(cfg, &mesh.opts, &b.bridge);
        out.insert(
            tunnel_name(mesh.opts.kind, vni),
            TunnelState {
                kind: mesh.opts.kind,
                vni,
                remote: None,
                port: mesh.opts.port,
                bridge: b.bridge.clone(),
                mode: b.mode,
                netem: None,
                flood: mesh.peers.clone(),
                mtu: Some(mesh.opts.tunnel_mtu()),
            },
        );
    }
    out
}

/// Configuration problems of the mesh, found before anything is made: a
/// tunnel kind without head-end replication, two bridges with the same VNI
/// (derived or set), a mesh tunnel name that a `tunnels:` entry already
/// uses.
pub fn check(cfg: &NetworkConfig, opts: &MeshOptions) -> Result<(), String> {
    if opts.kind == TunnelType::Geneve {
        return Err(
            "multi-host tunnels are VXLAN: a geneve device has no forwarding database \
             for head-end replication"
                .into(),
        );
    }
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    for b in cfg.bridges.values() {
        let v = vni_of(cfg, opts, &b.bridge);
        if let Some(other) = seen.insert(v, &b.bridge) {
            return Err(format!(
                "bridges {other} and {} both use VNI {v} across hosts; set `vni:` on one of them",
                b.bridge
            ));
        }
        let name = tunnel_name(opts.kind, v);
        if cfg.tunnels.iter().any(|t| t.ifname() == name) {
            return Err(format!(
                "bridge {}: its multi-host tunnel {name} clashes with a configured tunnel of the \
                 same VNI; set another `vni:` on the bridge",
                b.bridge
            ));
        }
    }
    Ok(())
}

/// Warnings for links whose MTU does not fit through the tunnels: a bridge
/// forwards no frame larger than the egress port's MTU, so such frames are
/// dropped between hosts. One line per bridge.
pub fn mtu_warnings(cfg: &NetworkConfig, opts: &MeshOptions) -> Vec<String> {
    let limit = opts.tunnel_mtu();
    let mut worst: BTreeMap<&str, (u32, usize)> = BTreeMap::new();
    for g in cfg.services.values().chain(cfg.containers.values()) {
        for l in &g.links {
            let (Some(b), Some(m)) = (&l.bridge, l.mtu) else {
                continue;
            };
            if m > limit {
                let e = worst.entry(b.as_str()).or_insert((0, 0));
                e.0 = e.0.max(m);
                e.1 += 1;
            }
        }
    }
    worst
        .into_iter()
        .map(|(b, (m, n))| {
            format!(
                "bridge {b}: {n} link(s) with MTU up to {m} exceed the multi-host tunnel MTU {limit} \
                 (underlay {} - {VXLAN_OVERHEAD} bytes of VXLAN): larger frames are dropped between \
                 hosts; set `mtu: {limit}` on them (or --default-mtu {limit})",
                opts.underlay_mtu
            )
        })
        .collect()
}

/// Which end a patch's two local ends and its mesh tunnel pair up: both
/// local ends with each other; one local end with the tunnel (the other
/// end is on another host); otherwise nothing.
pub fn patch_pair<'a>(ends: &'a [String], tunnel: Option<&'a str>) -> Option<(&'a str, &'a str)> {
    match (ends, tunnel) {
        ([a, b], _) => Some((a, b)),
        ([a], Some(t)) => Some((a, t)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conlink_model::{Bridge, BridgeMode};

    fn opts() -> MeshOptions {
        MeshOptions {
            kind: TunnelType::Vxlan,
            port: 8472,
            underlay_mtu: 1500,
            project: "lab".into(),
        }
    }

    fn cfg(bridges: &[(&str, BridgeMode, Option<u32>)]) -> NetworkConfig {
        let mut c = NetworkConfig::default();
        for (b, mode, vni) in bridges {
            c.bridges.insert(
                b.to_string(),
                Bridge {
                    bridge: b.to_string(),
                    mode: *mode,
                    vni: *vni,
                },
            );
        }
        c
    }

    fn ips(v: &[u8]) -> BTreeSet<Ipv4Addr> {
        v.iter().map(|i| Ipv4Addr::new(10, 0, 0, *i)).collect()
    }

    #[test]
    fn vni_is_deterministic_24_bit_and_project_scoped() {
        assert_eq!(derive_vni("lab", "s1"), derive_vni("lab", "s1"));
        assert_ne!(derive_vni("lab", "s1"), derive_vni("lab", "s2"));
        assert_ne!(derive_vni("lab", "s1"), derive_vni("lab2", "s1"));
        // `a/bc` and `ab/c` differ: the separator is hashed.
        assert_ne!(derive_vni("a", "bc"), derive_vni("ab", "c"));
        for (p, b) in [("lab", "s1"), ("", ""), ("x", "very-long-name")] {
            let v = derive_vni(p, b);
            assert!(v > 0 && v < 1 << 24, "{v}");
        }
        // Fixed value: a change here changes every deployed lab's VNIs
        // (and mixed versions on two hosts would no longer meet).
        assert_eq!(derive_vni("lab", "s1"), 0x0096_b1ef);
    }

    #[test]
    fn every_bridge_gets_one_tunnel_flooding_to_all_peers() {
        let c = cfg(&[
            ("s1", BridgeMode::Linux, None),
            ("s2", BridgeMode::Linux, Some(77)),
            ("p1", BridgeMode::Patch, None),
            ("o1", BridgeMode::Ovs, None),
        ]);
        let m = Mesh {
            opts: opts(),
            peers: ips(&[2, 3]),
        };
        let t = tunnels(&c, &m);
        let v = |b| derive_vni("lab", b);
        let mut want: Vec<String> = [v("s1"), 77, v("p1"), v("o1")]
            .iter()
            .map(|n| format!("vxlan-{n}"))
            .collect();
        want.sort();
        assert_eq!(t.keys().cloned().collect::<Vec<_>>(), want);
        for (name, s) in &t {
            assert_eq!(s.flood, ips(&[2, 3]), "{name}");
            assert_eq!(s.remote, None);
            assert_eq!(s.mtu, Some(1450));
            assert_eq!(s.port, 8472);
            assert_eq!(name, &tunnel_name(TunnelType::Vxlan, s.vni));
            assert_eq!(s.mode, c.bridges[&s.bridge].mode);
        }
        // The bridge's own VNI wins.
        assert_eq!(t["vxlan-77"].bridge, "s2");
        // No peers: no tunnels.
        let alone = Mesh {
            opts: opts(),
            peers: BTreeSet::new(),
        };
        assert!(tunnels(&c, &alone).is_empty());
    }

    #[test]
    fn check_refuses_geneve_clashing_vnis_and_tunnel_names() {
        let c = cfg(&[
            ("s1", BridgeMode::Linux, Some(5)),
            ("s2", BridgeMode::Linux, Some(5)),
        ]);
        let e = check(&c, &opts()).unwrap_err();
        assert!(e.contains("bridges s1 and s2 both use VNI 5"), "{e}");
        let mut c = cfg(&[("s1", BridgeMode::Linux, Some(5))]);
        c.tunnels.push(conlink_model::Tunnel {
            tunnel_type: TunnelType::Vxlan,
            bridge: "s1".into(),
            remote: Ipv4Addr::new(10, 0, 0, 9),
            vni: 5,
            netem: None,
            port: None,
        });
        let e = check(&c, &opts()).unwrap_err();
        assert!(
            e.contains("vxlan-5 clashes with a configured tunnel"),
            "{e}"
        );
        let ok = cfg(&[("s1", BridgeMode::Linux, None)]);
        assert!(check(&ok, &opts()).is_ok());
        let geneve = MeshOptions {
            kind: TunnelType::Geneve,
            ..opts()
        };
        assert!(check(&ok, &geneve).unwrap_err().contains("VXLAN"));
    }

    #[test]
    fn patch_pairs_local_ends_first_then_the_tunnel() {
        let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(patch_pair(&e(&["a", "b"]), Some("t")), Some(("a", "b")));
        assert_eq!(patch_pair(&e(&["a"]), Some("t")), Some(("a", "t")));
        assert_eq!(patch_pair(&e(&["a"]), None), None);
        assert_eq!(patch_pair(&e(&[]), Some("t")), None);
    }

    #[test]
    fn mtu_warning_names_the_bridge_the_count_and_the_fix() {
        use conlink_model::{Base, Group, Link, LinkType, Target};
        let link = |bridge: &str, mtu: u32| Link {
            link_type: LinkType::Veth,
            target: Target::Service("node".into()),
            dev: "lan0".into(),
            outer_dev: None,
            bridge: Some(bridge.into()),
            ip: vec![],
            mac: None,
            mtu: Some(mtu),
            route: vec![],
            nat: None,
            netem: None,
            mode: None,
            vlanid: None,
            forward: vec![],
            ethtool: vec![],
            ipv6: true,
            base: Base::Conlink,
        };
        let mut c = cfg(&[
            ("s1", BridgeMode::Linux, None),
            ("s2", BridgeMode::Linux, None),
        ]);
        c.services.insert(
            "node".into(),
            Group {
                links: vec![link("s1", 65535), link("s1", 9000), link("s2", 1450)],
                commands: vec![],
            },
        );
        let w = mtu_warnings(&c, &opts());
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("bridge s1: 2 link(s) with MTU up to 65535 exceed"),
            "{}",
            w[0]
        );
        assert!(
            w[0].contains("tunnel MTU 1450 (underlay 1500 - 50"),
            "{}",
            w[0]
        );
        assert!(w[0].contains("set `mtu: 1450`"), "{}", w[0]);
        let big = MeshOptions {
            underlay_mtu: 9000,
            ..opts()
        };
        assert_eq!(mtu_warnings(&c, &big).len(), 1, "65535 still exceeds 8950");
    }
}
