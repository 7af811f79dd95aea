//! The state type: what conlink wants (desired) and what it has made
//! (actual) are values of the same type, so that one [`crate::diff`]
//! turns any actual state into any desired one.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;

use conlink_model::{
    BridgeMode, EthtoolSetting, Forward, IpNet, LinkType, MacAddr, Netem, Route, TunnelType,
};
use serde::{Deserialize, Serialize};

/// Everything conlink manages: objects in its own namespace and the links
/// of each container.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct State {
    /// Objects shared by all containers.
    pub globals: Globals,
    /// Per container, by container NAME (outer interface names derive
    /// from it, so a replacement under the same name is the same entry).
    pub containers: BTreeMap<String, CtrState>,
}

/// Objects in conlink's namespace that do not belong to one container.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Globals {
    /// IPv4 forwarding on in conlink's namespace (needed by forwards).
    pub forwarding: bool,
    /// conlink's nftables table for forwards exists.
    pub forward_table: bool,
    /// Bridges by name.
    pub bridges: BTreeMap<String, BridgeMode>,
    /// Tunnels by interface name.
    pub tunnels: BTreeMap<String, TunnelState>,
}

/// One tunnel interface: a configured one (one `remote`) or one of the
/// multi-host mesh: with no default remote it floods to `flood`; a
/// per-peer one (`per_peer`) has the peer as its remote (see
/// [`crate::mesh`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelState {
    /// VXLAN or GENEVE.
    pub kind: TunnelType,
    /// Virtual network id.
    pub vni: u32,
    /// Remote underlay address; None: a mesh tunnel, whose remotes are its
    /// forwarding database's all-zeros entries (`flood`).
    pub remote: Option<Ipv4Addr>,
    /// UDP port.
    pub port: u16,
    /// Bridge it joins.
    pub bridge: String,
    /// That bridge's mode (how it joins).
    pub mode: BridgeMode,
    /// netem on the tunnel interface.
    pub netem: Option<Netem>,
    /// Mesh tunnels: the peers each flooded frame is sent to (one
    /// `bridge fdb append 00:00:00:00:00:00 dev NAME dst PEER` each).
    /// Changed in place as peers come and go; not part of the marker hash.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub flood: BTreeSet<Ipv4Addr>,
    /// MTU of the device (mesh tunnels: what fits through the underlay);
    /// None: the kernel's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// A per-peer mesh device (`--mesh-tunnel geneve|vxlan-p2p`; `remote`
    /// is the peer): on a Linux bridge its port is isolated, so it never
    /// forwards to another peer's. Left out of the JSON when false, so the
    /// marker hash of every other tunnel stays what earlier versions wrote.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub per_peer: bool,
}

impl TunnelState {
    /// Whether this is a mesh tunnel (no default remote, or per peer).
    pub fn is_mesh(&self) -> bool {
        self.remote.is_none() || self.per_peer
    }

    /// Whether this is a mesh tunnel flooding through its forwarding
    /// database (no default remote; `flood` lists the peers).
    pub fn floods(&self) -> bool {
        self.remote.is_none()
    }

    /// Whether its bridge port is isolated (split horizon): a per-peer
    /// mesh device on a Linux bridge.
    pub fn isolated(&self) -> bool {
        self.per_peer && self.mode == BridgeMode::Linux
    }

    /// The device as it is right after creation (and as its marker hash
    /// covers it): no netem, no flood entries.
    pub fn device(&self) -> TunnelState {
        TunnelState {
            netem: None,
            flood: BTreeSet::new(),
            ..self.clone()
        }
    }
}

/// Which container a state entry is about: a different id or namespace
/// under the same name is a different instance (its links are remade).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CtrRef {
    /// Container name.
    pub name: String,
    /// Engine id.
    pub id: String,
    /// Network namespace path.
    pub netns: PathBuf,
}

/// One container's links and commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtrState {
    /// The instance.
    pub ctr: CtrRef,
    /// Links by interface name inside the container.
    pub links: LinkMap,
    /// conlink's nftables table exists in the container (1:1 NAT).
    pub nat_table: bool,
    /// Commands run (desired: to run) once the links are up.
    pub commands: Vec<Vec<String>>,
}

impl CtrState {
    /// An entry with nothing in it yet.
    pub fn empty(ctr: CtrRef) -> Self {
        CtrState {
            ctr,
            links: LinkMap::new(),
            nat_table: false,
            commands: Vec::new(),
        }
    }
}

/// A container's links by interface name, in name order: the part of
/// `BTreeMap`'s API conlink uses, over a sorted `Vec`. A container has a
/// handful of links, and a `BTreeMap` allocates room for 11 entries with
/// its first one — 11 `LinkState`s, ~6.5 KB per container and per copy,
/// which was the largest share of the daemon's memory at thousands of
/// containers (docs/performance.md, "Memory").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkMap(Vec<(String, LinkState)>);

impl LinkMap {
    /// No links.
    pub fn new() -> Self {
        LinkMap(Vec::new())
    }

    fn find(&self, dev: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(d, _)| d.as_str().cmp(dev))
    }

    /// The link named `dev`.
    pub fn get(&self, dev: &str) -> Option<&LinkState> {
        self.find(dev).ok().map(|i| &self.0[i].1)
    }

    /// The link named `dev`, to change.
    pub fn get_mut(&mut self, dev: &str) -> Option<&mut LinkState> {
        self.find(dev).ok().map(|i| &mut self.0[i].1)
    }

    /// Whether a link is named `dev`.
    pub fn contains_key(&self, dev: &str) -> bool {
        self.find(dev).is_ok()
    }

    /// Sets link `dev`; returns the one it replaced.
    pub fn insert(&mut self, dev: String, link: LinkState) -> Option<LinkState> {
        match self.find(&dev) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, link)),
            Err(i) => {
                // Exactly one more: a Vec would grow to 4 (~2.5 KB) for
                // the first link.
                self.0.reserve_exact(1);
                self.0.insert(i, (dev, link));
                None
            }
        }
    }

    /// Removes link `dev`.
    pub fn remove(&mut self, dev: &str) -> Option<LinkState> {
        self.find(dev).ok().map(|i| self.0.remove(i).1)
    }

    /// Number of links.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No links at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (name, link) in name order.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (&String, &LinkState)> + ExactSizeIterator {
        self.0.iter().map(|(d, l)| (d, l))
    }

    /// (name, link) in name order, links changeable.
    pub fn iter_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = (&String, &mut LinkState)> + ExactSizeIterator {
        self.0.iter_mut().map(|(d, l)| (&*d, l))
    }

    /// Names in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.0.iter().map(|(d, _)| d)
    }

    /// Links in name order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &LinkState> + ExactSizeIterator {
        self.0.iter().map(|(_, l)| l)
    }

    /// Links in name order, changeable.
    pub fn values_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = &mut LinkState> + ExactSizeIterator {
        self.0.iter_mut().map(|(_, l)| l)
    }
}

impl std::ops::Index<&str> for LinkMap {
    type Output = LinkState;
    /// As `BTreeMap`'s: panics when there is no link `dev`.
    fn index(&self, dev: &str) -> &LinkState {
        self.get(dev)
            .unwrap_or_else(|| panic!("no link {dev:?} in this container"))
    }
}

impl FromIterator<(String, LinkState)> for LinkMap {
    /// As `BTreeMap`'s: a later entry for the same name replaces the
    /// earlier one.
    fn from_iter<I: IntoIterator<Item = (String, LinkState)>>(it: I) -> Self {
        let mut m = LinkMap::new();
        for (d, l) in it {
            m.insert(d, l);
        }
        m
    }
}

impl IntoIterator for LinkMap {
    type Item = (String, LinkState);
    type IntoIter = std::vec::IntoIter<(String, LinkState)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a LinkMap {
    type Item = (&'a String, &'a LinkState);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, LinkState)>,
        fn(&'a (String, LinkState)) -> (&'a String, &'a LinkState),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(d, l)| (d, l))
    }
}

impl Serialize for LinkMap {
    /// As the map it stands for (the state's JSON is unchanged).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for LinkMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(BTreeMap::<String, LinkState>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

/// Where a veth's outer end goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Outer {
    /// Interface name in conlink's namespace.
    pub name: String,
    /// Bridge (switch) it joins.
    pub bridge: String,
    /// How it joins.
    pub mode: BridgeMode,
}

/// The part of a link that cannot change in place: when it differs, the
/// link is deleted and made again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LinkIdentity {
    /// Interface kind.
    pub kind: LinkType,
    /// veth: the outer end.
    pub outer: Option<Outer>,
    /// *vlan/*vtap: parent interface in the host namespace.
    pub parent: Option<String>,
    /// macvlan/… mode.
    pub mode: Option<String>,
    /// 802.1Q tag.
    pub vlanid: Option<u16>,
    /// No IPv6 link-local address on the container end (config
    /// `ipv6: false`). Left out of the JSON when false so the marker hash
    /// of every other link stays what earlier versions wrote.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_ipv6: bool,
}

/// Port forwards of one link: DNAT on conlink's docker interface towards
/// `ip`, plus a host route each way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardSpec {
    /// The link's address.
    pub ip: Ipv4Addr,
    /// Outer end (the rules' key).
    pub outer: String,
    /// Bridge the /32 route to `ip` goes on, in conlink's namespace.
    pub bridge: String,
    /// The forwards (replica offset applied).
    pub forwards: Vec<Forward>,
}

/// Every property of one link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkState {
    /// What cannot change in place.
    pub id: LinkIdentity,
    /// MAC (offset applied).
    pub mac: Option<MacAddr>,
    /// MTU (absent: the kernel's default or the parent's).
    pub mtu: Option<u32>,
    /// Addresses, in order.
    pub addrs: Vec<IpNet>,
    /// Routes on the link, in order.
    pub routes: Vec<Route>,
    /// netem root qdisc.
    pub netem: Option<Netem>,
    /// ethtool settings applied, in order.
    pub ethtool: Vec<EthtoolSetting>,
    /// 1:1 NAT: (the link's address, the NAT address).
    pub nat: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Port forwards.
    pub forward: Option<ForwardSpec>,
    /// Administratively up.
    pub up: bool,
}

impl LinkState {
    /// The link as it is right after creation: identity, MAC and MTU, down,
    /// nothing else set.
    pub fn created(&self) -> LinkState {
        LinkState {
            id: self.id.clone(),
            mac: self.mac,
            mtu: self.mtu,
            addrs: Vec::new(),
            routes: Vec::new(),
            netem: None,
            ethtool: Vec::new(),
            nat: None,
            forward: None,
            up: false,
        }
    }

    /// A short stable hash of every property (FNV-1a over the JSON form),
    /// written into the link's ownership marker so that a restarted conlink
    /// can tell whether a link it finds is exactly what it wants.
    pub fn hash(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in json.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(mtu: u32) -> LinkState {
        LinkState {
            id: LinkIdentity {
                kind: LinkType::Dummy,
                outer: None,
                parent: None,
                mode: None,
                vlanid: None,
                no_ipv6: false,
            },
            mac: None,
            mtu: Some(mtu),
            addrs: Vec::new(),
            routes: Vec::new(),
            netem: None,
            ethtool: Vec::new(),
            nat: None,
            forward: None,
            up: true,
        }
    }

    #[test]
    fn link_map_behaves_as_the_btreemap_it_replaces() {
        let pairs = [("eth1", 1), ("eth0", 2), ("eth1", 3), ("a", 4)];
        let m: LinkMap = pairs
            .iter()
            .map(|(d, v)| (d.to_string(), link(*v)))
            .collect();
        let b: BTreeMap<String, LinkState> = pairs
            .iter()
            .map(|(d, v)| (d.to_string(), link(*v)))
            .collect();
        let got: Vec<(&String, &LinkState)> = m.iter().collect();
        let want: Vec<(&String, &LinkState)> = b.iter().collect();
        assert_eq!(got, want, "order and last-wins as a BTreeMap");
        assert_eq!(m["eth1"].mtu, Some(3));
        assert!(m.contains_key("a") && !m.contains_key("eth9"));
        // Serialized as the same JSON object, and read back.
        let js = serde_json::to_string(&m).unwrap();
        assert_eq!(js, serde_json::to_string(&b).unwrap());
        let back: LinkMap = serde_json::from_str(&js).unwrap();
        assert_eq!(back, m);
        let mut m = m;
        assert_eq!(m.insert("b".into(), link(5)), None);
        assert_eq!(m.insert("b".into(), link(6)).and_then(|l| l.mtu), Some(5));
        assert_eq!(m.remove("a").and_then(|l| l.mtu), Some(4));
        assert_eq!(m.keys().cloned().collect::<Vec<_>>(), ["b", "eth0", "eth1"]);
        m.get_mut("eth0").unwrap().up = false;
        assert_eq!(m.values().filter(|l| !l.up).count(), 1);
        assert_eq!(m.len(), 3);
    }
}
