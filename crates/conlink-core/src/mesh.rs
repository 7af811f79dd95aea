//! The multi-host mesh, as part of desired state: several conlinks (one
//! per host) load the same config, and every bridge is stretched to the
//! other hosts (the peers) by tunnels conlink makes itself. The tunnels
//! are globals like the configured ones: made, changed, adopted and
//! removed by the same diff ([`crate::diff`]).
//!
//! Two topologies ([`MeshTunnel`]):
//!
//! * `vxlan` (the default): one tunnel device per bridge. A full mesh of
//!   per-peer tunnels on a Linux bridge would loop broadcasts (A floods to
//!   B and C, B floods what came from A on to C…), so the device has no
//!   default remote; its forwarding database holds one all-zeros entry per
//!   peer, so the kernel sends each flooded frame once to every peer
//!   (head-end replication over unicast) and learns where unicast MACs
//!   live. A peer that comes or goes is one entry appended or deleted: the
//!   device stays.
//! * `geneve` and `vxlan-p2p`: one point-to-point device per (bridge,
//!   peer), each a port of the bridge with **bridge-port isolation** on
//!   (IFLA_BRPORT_ISOLATED): an isolated port never forwards to another
//!   isolated port, so what comes in from one peer goes to local ports
//!   only, never on to another peer — the split horizon that makes a full
//!   mesh loop-free without STP. The bridge replicates floods to every
//!   peer port. A GENEVE device has one remote and no forwarding database,
//!   so this is the only way to mesh it. A peer that comes or goes is one
//!   device made or removed. `vxlan-p2p` is the same topology over VXLAN
//!   (testable on kernels without geneve); the kernel allows one VXLAN
//!   device per VNI and port in a namespace (it demultiplexes by VNI
//!   alone, geneve by VNI and remote), so each host pair gets its own VNI,
//!   derived from the bridge's and the two host addresses ([`pair_vni`]).
//!
//! Every bridge of the config gets its tunnels once there is a peer,
//! whether or not it has members on this host: a host cannot know the
//! others' members, head-end replication sends to every peer anyway, and so
//! the tunnels depend on the config and the peers only. A container event
//! never touches them, and a task rescheduled here finds its bridge
//! stretched already.
//!
//! A patch (`mode: patch`) gets the same kind of device as a *fallback*
//! end (see [`crate::apply`]): with one local end, that end is patched to
//! the tunnel (tc mirred, so BPDUs and LLDP pass untouched); with both ends
//! local, they are patched to each other and the tunnel stays idle. With
//! `vxlan`, frames go to every peer; only the host holding the other end
//! has that end patched to its device, so the link is point to point in
//! effect. With the per-peer kinds a patch is one p2p device, to the one
//! peer: tc redirects to one device, so a patch is stretched only while
//! the mesh has exactly one peer ([`patch_warnings`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use conlink_model::{BridgeMode, NetworkConfig, TunnelType};

use crate::state::TunnelState;

/// Outer IPv4 (20) + UDP (8) + VXLAN (8) headers + the inner Ethernet
/// header (14) the tunnel carries: what a frame loses to the underlay.
/// GENEVE without options is the same 50 (its base header is 8 bytes too).
pub const VXLAN_OVERHEAD: u32 = 50;

/// The underlay MTU assumed when none is given or found.
pub const DEFAULT_UNDERLAY_MTU: u32 = 1500;

/// How the mesh stretches bridges (`--mesh-tunnel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeshTunnel {
    /// One VXLAN device per bridge flooding to every peer (FDB head-end
    /// replication).
    Vxlan,
    /// One VXLAN device per (bridge, peer), isolated bridge ports, a VNI
    /// per host pair.
    VxlanP2p,
    /// One GENEVE device per (bridge, peer), isolated bridge ports.
    Geneve,
}

impl MeshTunnel {
    /// Every kind, as `--mesh-tunnel` spells them.
    pub const ALL: [MeshTunnel; 3] = [MeshTunnel::Vxlan, MeshTunnel::VxlanP2p, MeshTunnel::Geneve];

    /// The option value (`vxlan`, `vxlan-p2p`, `geneve`).
    pub fn name(self) -> &'static str {
        match self {
            MeshTunnel::Vxlan => "vxlan",
            MeshTunnel::VxlanP2p => "vxlan-p2p",
            MeshTunnel::Geneve => "geneve",
        }
    }

    /// The kind of the devices.
    pub fn tunnel_type(self) -> TunnelType {
        match self {
            MeshTunnel::Vxlan | MeshTunnel::VxlanP2p => TunnelType::Vxlan,
            MeshTunnel::Geneve => TunnelType::Geneve,
        }
    }

    /// One device per peer (isolated bridge ports) rather than one per
    /// bridge.
    pub fn per_peer(self) -> bool {
        self != MeshTunnel::Vxlan
    }

    /// UDP port without `--mesh-port`: the spec's defaults, vxlan 8472,
    /// geneve 6081.
    pub fn default_port(self) -> u16 {
        self.tunnel_type().default_port()
    }
}

impl std::fmt::Display for MeshTunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for MeshTunnel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        MeshTunnel::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!("unknown mesh tunnel kind {s:?}: expected vxlan, vxlan-p2p or geneve")
            })
    }
}

/// How this conlink joins the mesh (fixed for the daemon's life).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MeshOptions {
    /// Topology and tunnel kind.
    pub kind: MeshTunnel,
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
    /// This host's address in the mesh (as the peers know it): `vxlan-p2p`
    /// derives each host pair's VNI from it; the other kinds do not need
    /// it. Without it `vxlan-p2p` makes no tunnels (the daemon refuses to
    /// start instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<Ipv4Addr>,
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

/// The name of the per-peer device of bridge VNI `vni` towards `peer`:
/// `g` (geneve) or `v` (vxlan-p2p), the VNI in 6 hex digits, the peer's
/// address in 8 (`g96b1efc0a8d302`: VNI 0x96b1ef, peer 192.168.211.2).
/// Exactly 15 characters, the kernel's limit, and unique per (bridge,
/// peer); never one of the `TYPE-VNI` names of configured tunnels.
pub fn peer_tunnel_name(kind: MeshTunnel, vni: u32, peer: Ipv4Addr) -> String {
    let k = if kind == MeshTunnel::Geneve { 'g' } else { 'v' };
    format!("{k}{:06x}{:08x}", vni & 0x00ff_ffff, u32::from(peer))
}

/// The VNI of the `vxlan-p2p` device between hosts `a` and `b` on the
/// bridge of VNI `vni`: FNV-1a (32 bit) of the bridge VNI and the two
/// addresses (lower first, so both hosts compute the same), xor-folded to
/// 24 bits, never 0. One VXLAN device per VNI and port is all a namespace
/// may hold, so each pair needs its own.
pub fn pair_vni(vni: u32, a: Ipv4Addr, b: Ipv4Addr) -> u32 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h: u32 = 0x811c_9dc5;
    for x in vni
        .to_be_bytes()
        .into_iter()
        .chain(lo.octets())
        .chain(hi.octets())
    {
        h ^= u32::from(x);
        h = h.wrapping_mul(0x0100_0193);
    }
    let v = (h >> 24) ^ (h & 0x00ff_ffff);
    if v == 0 {
        1
    } else {
        v
    }
}

/// The mesh tunnels wanted; none without peers (the last peer leaving
/// takes them all). `vxlan`: one per bridge of the config, flooding to
/// every peer. Per-peer kinds: one per (bridge, peer), isolated on Linux
/// bridges; a patch bridge gets its one p2p device only while there is
/// exactly one peer.
pub fn tunnels(cfg: &NetworkConfig, mesh: &Mesh) -> BTreeMap<String, TunnelState> {
    let mut out = BTreeMap::new();
    if mesh.peers.is_empty() {
        return out;
    }
    let o = &mesh.opts;
    for b in cfg.bridges.values() {
        let vni = vni_of(cfg, o, &b.bridge);
        let base = TunnelState {
            kind: o.kind.tunnel_type(),
            vni,
            remote: None,
            port: o.port,
            bridge: b.bridge.clone(),
            mode: b.mode,
            netem: None,
            flood: BTreeSet::new(),
            mtu: Some(o.tunnel_mtu()),
            per_peer: false,
        };
        if !o.kind.per_peer() {
            out.insert(
                tunnel_name(base.kind, vni),
                TunnelState {
                    flood: mesh.peers.clone(),
                    ..base
                },
            );
            continue;
        }
        if b.mode == BridgeMode::Patch && mesh.peers.len() != 1 {
            continue;
        }
        for &p in &mesh.peers {
            let dev_vni = match (o.kind, mesh.local) {
                (MeshTunnel::VxlanP2p, Some(me)) => pair_vni(vni, me, p),
                (MeshTunnel::VxlanP2p, None) => continue,
                _ => vni,
            };
            out.insert(
                peer_tunnel_name(o.kind, vni, p),
                TunnelState {
                    vni: dev_vni,
                    remote: Some(p),
                    per_peer: true,
                    ..base.clone()
                },
            );
        }
    }
    out
}

/// Warnings about the current peers: with a per-peer kind, a patch bridge
/// is stretched only while there is exactly one peer (tc redirects a
/// patch end to one device).
pub fn patch_warnings(cfg: &NetworkConfig, mesh: &Mesh) -> Vec<String> {
    if !mesh.opts.kind.per_peer() || mesh.peers.len() < 2 {
        return Vec::new();
    }
    cfg.bridges
        .values()
        .filter(|b| b.mode == BridgeMode::Patch)
        .map(|b| {
            format!(
                "patch {}: --mesh-tunnel {} carries a patch between two hosts only; with {} peers \
                 it is not stretched (--mesh-tunnel vxlan floods it to every peer)",
                b.bridge,
                mesh.opts.kind,
                mesh.peers.len()
            )
        })
        .collect()
}

/// Configuration problems of the mesh, found before anything is made: an
/// OVS bridge with a per-peer kind (port isolation is a Linux bridge's),
/// two bridges with the same VNI (derived or set), a mesh tunnel name that
/// a `tunnels:` entry already uses.
pub fn check(cfg: &NetworkConfig, opts: &MeshOptions) -> Result<(), String> {
    if opts.kind.per_peer() {
        if let Some(b) = cfg.bridges.values().find(|b| b.mode == BridgeMode::Ovs) {
            return Err(format!(
                "bridge {} (ovs): --mesh-tunnel {} needs bridge-port isolation (split horizon), \
                 which conlink sets on Linux bridges only; use `mode: linux` on it or \
                 --mesh-tunnel vxlan",
                b.bridge, opts.kind
            ));
        }
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
        if opts.kind.per_peer() {
            // `gVNIPEER`/`vVNIPEER` names never meet `TYPE-VNI` ones.
            continue;
        }
        let name = tunnel_name(opts.kind.tunnel_type(), v);
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
                 (underlay {} - {VXLAN_OVERHEAD} bytes of {}): larger frames are dropped between \
                 hosts; set `mtu: {limit}` on them (or --default-mtu {limit})",
                opts.underlay_mtu,
                if opts.kind == MeshTunnel::Geneve {
                    "GENEVE"
                } else {
                    "VXLAN"
                }
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
    use conlink_model::Bridge;

    fn opts() -> MeshOptions {
        MeshOptions {
            kind: MeshTunnel::Vxlan,
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
            local: None,
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
            local: None,
        };
        assert!(tunnels(&c, &alone).is_empty());
    }

    #[test]
    fn check_refuses_clashing_vnis_tunnel_names_and_ovs_with_per_peer_kinds() {
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
        let ok = cfg(&[
            ("s1", BridgeMode::Linux, None),
            ("p1", BridgeMode::Patch, None),
        ]);
        for kind in MeshTunnel::ALL {
            let o = MeshOptions { kind, ..opts() };
            assert!(check(&ok, &o).is_ok(), "{kind}");
            // Per-peer names never meet a configured `vxlan-5`.
            assert!(
                check(&c, &o).is_ok() != (kind == MeshTunnel::Vxlan),
                "{kind}"
            );
        }
        let ovs = cfg(&[("o1", BridgeMode::Ovs, None)]);
        assert!(check(&ovs, &opts()).is_ok());
        for kind in [MeshTunnel::Geneve, MeshTunnel::VxlanP2p] {
            let e = check(&ovs, &MeshOptions { kind, ..opts() }).unwrap_err();
            assert!(
                e.starts_with(&format!(
                    "bridge o1 (ovs): --mesh-tunnel {kind} needs bridge-port isolation"
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn mesh_tunnel_kinds_parse_and_default_ports() {
        for k in MeshTunnel::ALL {
            assert_eq!(k.name().parse::<MeshTunnel>().unwrap(), k);
        }
        assert_eq!(MeshTunnel::Vxlan.default_port(), 8472);
        assert_eq!(MeshTunnel::VxlanP2p.default_port(), 8472);
        assert_eq!(MeshTunnel::Geneve.default_port(), 6081);
        let e = "gre".parse::<MeshTunnel>().unwrap_err();
        assert!(e.contains("expected vxlan, vxlan-p2p or geneve"), "{e}");
    }

    #[test]
    fn per_peer_kinds_make_one_device_per_bridge_and_peer() {
        let c = cfg(&[
            ("s1", BridgeMode::Linux, None),
            ("s2", BridgeMode::Linux, Some(77)),
            ("p1", BridgeMode::Patch, None),
        ]);
        let geneve = MeshOptions {
            kind: MeshTunnel::Geneve,
            port: 6081,
            ..opts()
        };
        let m = Mesh {
            opts: geneve.clone(),
            peers: ips(&[2, 3]),
            local: None,
        };
        let t = tunnels(&c, &m);
        // Two bridges x two peers; the patch is left out (two peers).
        assert_eq!(t.len(), 4, "{:?}", t.keys());
        let s1 = derive_vni("lab", "s1");
        for (b, vni) in [("s1", s1), ("s2", 77)] {
            for p in [2, 3] {
                let peer = Ipv4Addr::new(10, 0, 0, p);
                let name = peer_tunnel_name(MeshTunnel::Geneve, vni, peer);
                assert_eq!(name.len(), 15, "{name}");
                let d = &t[&name];
                assert_eq!(d.kind, TunnelType::Geneve);
                assert_eq!((d.vni, d.remote, d.port), (vni, Some(peer), 6081));
                assert_eq!(d.bridge, b);
                assert!(d.per_peer && d.is_mesh() && d.flood.is_empty());
                assert_eq!(d.mtu, Some(1450));
            }
        }
        assert_eq!(
            peer_tunnel_name(
                MeshTunnel::Geneve,
                0x96b1ef,
                Ipv4Addr::new(192, 168, 211, 2)
            ),
            "g96b1efc0a8d302"
        );
        let warn = patch_warnings(&c, &m);
        assert_eq!(warn.len(), 1, "{warn:?}");
        assert!(warn[0].starts_with("patch p1: --mesh-tunnel geneve carries a patch between two hosts only; with 2 peers"), "{}", warn[0]);
        // One peer: the patch gets its one p2p device, no warning.
        let one = Mesh {
            peers: ips(&[2]),
            ..m.clone()
        };
        let t = tunnels(&c, &one);
        assert_eq!(t.len(), 3);
        assert!(t
            .values()
            .any(|d| d.bridge == "p1" && d.remote == Some(Ipv4Addr::new(10, 0, 0, 2))));
        assert!(patch_warnings(&c, &one).is_empty());
        // vxlan-p2p: VNIs per host pair, the same on both hosts, distinct
        // per peer on one host; none without knowing this host's address.
        let p2p = |local: Option<u8>, peers: &[u8]| Mesh {
            opts: MeshOptions {
                kind: MeshTunnel::VxlanP2p,
                ..opts()
            },
            peers: ips(peers),
            local: local.map(|l| Ipv4Addr::new(10, 0, 0, l)),
        };
        let on1 = tunnels(&c, &p2p(Some(1), &[2, 3]));
        let on2 = tunnels(&c, &p2p(Some(2), &[1, 3]));
        let ip = |i| Ipv4Addr::new(10, 0, 0, i);
        let v12 = on1[&peer_tunnel_name(MeshTunnel::VxlanP2p, s1, ip(2))].vni;
        let v13 = on1[&peer_tunnel_name(MeshTunnel::VxlanP2p, s1, ip(3))].vni;
        let v21 = on2[&peer_tunnel_name(MeshTunnel::VxlanP2p, s1, ip(1))].vni;
        assert_eq!(v12, v21);
        assert_ne!(v12, v13);
        assert_eq!(v12, pair_vni(s1, ip(2), ip(1)));
        assert!(v12 > 0 && v12 < 1 << 24);
        assert!(on1.keys().all(|n| n.starts_with('v') && n.len() == 15));
        let vnis: BTreeSet<u32> = on1.values().map(|d| d.vni).collect();
        assert_eq!(vnis.len(), on1.len(), "one VXLAN device per VNI");
        assert!(tunnels(&c, &p2p(None, &[2, 3])).is_empty());
        // Fixed value, as derive_vni's: both hosts must agree across
        // versions.
        assert_eq!(pair_vni(5, ip(1), ip(2)), pair_vni(5, ip(2), ip(1)));
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
        let geneve = MeshOptions {
            kind: MeshTunnel::Geneve,
            ..opts()
        };
        let w = mtu_warnings(&c, &geneve);
        assert!(
            w[0].contains("(underlay 1500 - 50 bytes of GENEVE)"),
            "{}",
            w[0]
        );
    }
}
