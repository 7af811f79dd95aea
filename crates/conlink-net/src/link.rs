//! Links: create (veth, bridge, dummy, vlan, macvlan/macvtap, ipvlan/ipvtap,
//! vxlan, geneve), change, move between namespaces, delete, list; the
//! ownership mark (alias `conlink:OWNER`) and group deletes.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use conlink_model::{MacAddr, IFNAME_MAX};

use crate::change::Change;
use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::nl::{self, ifinfomsg, Msg, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};

pub(crate) const RTM_NEWLINK: u16 = 16;
pub(crate) const RTM_DELLINK: u16 = 17;
pub(crate) const RTM_GETLINK: u16 = 18;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_IFALIAS: u16 = 20;
const IFLA_GROUP: u16 = 27;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_EXT_MASK: u16 = 29;
const IFLA_AF_SPEC: u16 = 26;
const IFLA_INET6_ADDR_GEN_MODE: u16 = 8;
const IN6_ADDR_GEN_MODE_NONE: u8 = 1;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_INFO_SLAVE_DATA: u16 = 5;
/// `IFLA_BRPORT_ISOLATED` (linux/if_link.h, since 4.18): an isolated
/// bridge port forwards to non-isolated ports only (split horizon).
const IFLA_BRPORT_ISOLATED: u16 = 33;
const VETH_INFO_PEER: u16 = 1;
const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
const IFF_UP: u32 = 1;

/// The alias prefix that marks interfaces conlink created.
pub const MARK_PREFIX: &str = "conlink:";

/// Properties common to every link conlink creates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkAttrs {
    /// Interface name (at most 15 bytes).
    pub name: String,
    /// MTU; the kernel's default (or the parent's) when absent.
    pub mtu: Option<u32>,
    /// MAC address; random when absent.
    pub mac: Option<MacAddr>,
    /// Interface group (`ip link … group N`), for batched deletes.
    pub group: Option<u32>,
    /// Bridge to join, by name, in the namespace where the link ends up.
    pub master: Option<String>,
    /// Alias to set (use [`LinkAttrs::owner`] for the conlink mark).
    pub alias: Option<String>,
    /// Bring the link up.
    pub up: bool,
    /// `addrgenmode none`: the kernel gives the link no IPv6 link-local
    /// address, so no duplicate address detection (a delayed work item that
    /// takes the global RTNL lock) and no router solicitations run for it.
    /// For ends that never carry IPv6 themselves (bridge ports, patch ends).
    pub no_ipv6_ll: bool,
}

impl LinkAttrs {
    /// Attributes with only a name.
    pub fn new(name: impl Into<String>) -> Self {
        LinkAttrs {
            name: name.into(),
            ..Default::default()
        }
    }
    /// Sets the MTU.
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }
    /// Sets the MAC address.
    pub fn mac(mut self, mac: MacAddr) -> Self {
        self.mac = Some(mac);
        self
    }
    /// Sets the interface group.
    pub fn group(mut self, group: u32) -> Self {
        self.group = Some(group);
        self
    }
    /// Sets the bridge to join.
    pub fn master(mut self, bridge: impl Into<String>) -> Self {
        self.master = Some(bridge.into());
        self
    }
    /// Marks the link as conlink's: alias `conlink:OWNER`.
    pub fn owner(mut self, owner: &str) -> Self {
        self.alias = Some(format!("{MARK_PREFIX}{owner}"));
        self
    }
    /// Brings the link up once created.
    pub fn up(mut self) -> Self {
        self.up = true;
        self
    }
    /// No IPv6 link-local address (see [`LinkAttrs::no_ipv6_ll`]).
    pub fn no_ipv6_ll(mut self) -> Self {
        self.no_ipv6_ll = true;
        self
    }
}

/// macvlan/macvtap modes (`ip link … type macvlan mode MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    /// `private`
    Private = 1,
    /// `vepa`
    Vepa = 2,
    /// `bridge`
    Bridge = 4,
    /// `passthru`
    Passthru = 8,
    /// `source`
    Source = 16,
}

impl std::str::FromStr for MacvlanMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "private" => Self::Private,
            "vepa" => Self::Vepa,
            "bridge" => Self::Bridge,
            "passthru" => Self::Passthru,
            "source" => Self::Source,
            _ => {
                return Err(Error::Invalid(format!(
                    "macvlan mode {s:?} (use private, vepa, bridge, passthru or source)"
                )))
            }
        })
    }
}

/// ipvlan/ipvtap mode and flag (`ip link … type ipvlan mode l2|l3|l3s
/// [bridge|private|vepa]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpvlanMode {
    /// 0 l2, 1 l3, 2 l3s.
    pub mode: u16,
    /// 0 bridge, 1 private, 2 vepa.
    pub flags: u16,
}

impl Default for IpvlanMode {
    /// `mode l3` is the kernel's default.
    fn default() -> Self {
        IpvlanMode { mode: 1, flags: 0 }
    }
}

impl std::str::FromStr for IpvlanMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let mut m = IpvlanMode::default();
        for w in s.split_whitespace() {
            match w {
                "l2" => m.mode = 0,
                "l3" => m.mode = 1,
                "l3s" => m.mode = 2,
                "bridge" => m.flags = 0,
                "private" => m.flags = 1,
                "vepa" => m.flags = 2,
                _ => {
                    return Err(Error::Invalid(format!(
                        "ipvlan mode {s:?} (use l2, l3 or l3s, optionally with bridge, private or vepa)"
                    )))
                }
            }
        }
        Ok(m)
    }
}

/// The kind of link to create, with its kind-specific data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    /// A veth pair; `peer` goes to the target namespace.
    Veth {
        /// The other end.
        peer: LinkAttrs,
    },
    /// A Linux bridge.
    Bridge,
    /// A dummy interface.
    Dummy,
    /// An 802.1Q vlan on `parent`.
    Vlan {
        /// Parent interface (in the creating namespace).
        parent: String,
        /// 802.1Q tag.
        id: u16,
    },
    /// A macvlan on `parent`.
    Macvlan {
        /// Parent interface (in the creating namespace).
        parent: String,
        /// Mode; the kernel's default (vepa) when absent.
        mode: Option<MacvlanMode>,
    },
    /// A macvtap on `parent`.
    Macvtap {
        /// Parent interface (in the creating namespace).
        parent: String,
        /// Mode; the kernel's default (vepa) when absent.
        mode: Option<MacvlanMode>,
    },
    /// An ipvlan on `parent`.
    Ipvlan {
        /// Parent interface (in the creating namespace).
        parent: String,
        /// Mode and flag.
        mode: IpvlanMode,
    },
    /// An ipvtap on `parent`.
    Ipvtap {
        /// Parent interface (in the creating namespace).
        parent: String,
        /// Mode and flag.
        mode: IpvlanMode,
    },
    /// A VXLAN tunnel end.
    Vxlan(TunnelSpec),
    /// A GENEVE tunnel end.
    Geneve(TunnelSpec),
    /// A VXLAN device without a default remote: where it sends is decided
    /// by its forwarding database (all-zeros entries, one per remote:
    /// head-end replication over unicast, see [`Handle::fdb_append`]).
    /// `ip link add NAME type vxlan id VNI dstport P`.
    VxlanFdb {
        /// VNI.
        vni: u32,
        /// UDP destination (and source) port.
        dstport: u16,
    },
}

/// Tunnel parameters (vxlan/geneve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelSpec {
    /// VNI.
    pub vni: u32,
    /// Remote endpoint.
    pub remote: Ipv4Addr,
    /// UDP destination port (vxlan 4789/8472, geneve 6081).
    pub dstport: u16,
    /// Underlay device (`dev`), in the creating namespace (vxlan only; a
    /// geneve device picks its route at send time).
    pub underlay: Option<String>,
}

impl LinkKind {
    /// The kernel's name for the kind (`IFLA_INFO_KIND`).
    pub fn kind(&self) -> &'static str {
        match self {
            LinkKind::Veth { .. } => "veth",
            LinkKind::Bridge => "bridge",
            LinkKind::Dummy => "dummy",
            LinkKind::Vlan { .. } => "vlan",
            LinkKind::Macvlan { .. } => "macvlan",
            LinkKind::Macvtap { .. } => "macvtap",
            LinkKind::Ipvlan { .. } => "ipvlan",
            LinkKind::Ipvtap { .. } => "ipvtap",
            LinkKind::Vxlan(_) | LinkKind::VxlanFdb { .. } => "vxlan",
            LinkKind::Geneve(_) => "geneve",
        }
    }

    /// (feature, module) named when the kernel lacks the kind.
    fn feature(&self) -> (&'static str, &'static str) {
        match self {
            LinkKind::Vlan { .. } => ("802.1Q vlan", "8021q"),
            LinkKind::Bridge => ("bridge", "bridge"),
            other => {
                let k = other.kind();
                (k, k)
            }
        }
    }

    fn parent(&self) -> Option<&str> {
        match self {
            LinkKind::Vlan { parent, .. }
            | LinkKind::Macvlan { parent, .. }
            | LinkKind::Macvtap { parent, .. }
            | LinkKind::Ipvlan { parent, .. }
            | LinkKind::Ipvtap { parent, .. } => Some(parent),
            _ => None,
        }
    }
}

/// One interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Alias (`ip link … alias`), where conlink's mark lives.
    pub alias: Option<String>,
    /// Interface group.
    pub group: u32,
    /// Master (bridge) index.
    pub master: Option<u32>,
    /// MTU.
    pub mtu: u32,
    /// MAC address.
    pub mac: Option<MacAddr>,
    /// Kind (`veth`, `bridge`…), none for physical devices and loopback.
    pub kind: Option<String>,
    /// Administratively up (IFF_UP).
    pub up: bool,
}

impl LinkInfo {
    /// The owner in conlink's mark, if the interface carries one.
    pub fn owner(&self) -> Option<&str> {
        self.alias.as_deref()?.strip_prefix(MARK_PREFIX)
    }

    fn parse(payload: &[u8]) -> Option<LinkInfo> {
        let fixed = payload.get(..16)?;
        let index = i32::from_ne_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]) as u32;
        let flags = u32::from_ne_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
        let mut li = LinkInfo {
            index,
            name: String::new(),
            alias: None,
            group: 0,
            master: None,
            mtu: 0,
            mac: None,
            kind: None,
            up: flags & IFF_UP != 0,
        };
        for (ty, data) in nl::attrs(&payload[16..]) {
            match ty {
                IFLA_IFNAME => li.name = nl::attr_string(data),
                IFLA_IFALIAS => li.alias = Some(nl::attr_string(data)),
                IFLA_GROUP => li.group = nl::attr_u32(data),
                IFLA_MASTER => li.master = Some(nl::attr_u32(data)),
                IFLA_MTU => li.mtu = nl::attr_u32(data),
                IFLA_ADDRESS if data.len() == 6 => {
                    let mut m = [0u8; 6];
                    m.copy_from_slice(data);
                    li.mac = Some(MacAddr(m));
                }
                IFLA_LINKINFO => {
                    for (t, d) in nl::attrs(data) {
                        if t == IFLA_INFO_KIND {
                            li.kind = Some(nl::attr_string(d));
                        }
                    }
                }
                _ => {}
            }
        }
        Some(li)
    }
}

fn check_ifname(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > IFNAME_MAX
        || name == "."
        || name == ".."
        || name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
    {
        return Err(Error::Invalid(format!(
            "bad interface name {name:?} (1..={IFNAME_MAX} bytes, no '/', ':' or spaces)"
        )));
    }
    Ok(())
}

/// A short random-ish temporary interface name (`cltmpXXXXXXXX`).
fn temp_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let x = (std::process::id() ^ t.rotate_left(7)).wrapping_add(n.wrapping_mul(0x9e37_79b9));
    format!("cltmp{x:08x}")
}

/// Writes the attributes common to link requests, in the order iproute2
/// writes them for `ip link add [mtu] [address] [group] [netns] [link] name`.
fn put_common(m: &mut Msg, a: &LinkAttrs, name: &str, ns_fd: Option<i32>, link: Option<u32>) {
    if let Some(mtu) = a.mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    if let Some(mac) = a.mac {
        m.attr(IFLA_ADDRESS, &mac.0);
    }
    if let Some(g) = a.group {
        m.attr_u32(IFLA_GROUP, g);
    }
    if let Some(fd) = ns_fd {
        m.attr_u32(IFLA_NET_NS_FD, fd as u32);
    }
    if let Some(l) = link {
        m.attr_u32(IFLA_LINK, l);
    }
    m.attr_str(IFLA_IFNAME, name);
}

fn put_tunnel_data(m: &mut Msg, kind: &LinkKind, underlay: Option<u32>) {
    match kind {
        // Matches `ip link add NAME type vxlan id VNI remote IP dstport P [dev D]`.
        LinkKind::Vxlan(t) => {
            if let Some(u) = underlay {
                m.attr_u32(3, u); // IFLA_VXLAN_LINK
            }
            m.attr_u32(1, t.vni); // IFLA_VXLAN_ID
            m.attr(2, &t.remote.octets()); // IFLA_VXLAN_GROUP (unicast remote too)
            m.attr_u8(7, 1); // IFLA_VXLAN_LEARNING, iproute2's default
            m.attr(15, &t.dstport.to_be_bytes()); // IFLA_VXLAN_PORT
        }
        // Matches `ip link add NAME type geneve id VNI remote IP dstport P`:
        // iproute2 also sends its defaults for label, ttl and tos.
        LinkKind::Geneve(t) => {
            m.attr_u32(1, t.vni); // IFLA_GENEVE_ID
            m.attr(2, &t.remote.octets()); // IFLA_GENEVE_REMOTE
            m.attr_u32(11, 0); // IFLA_GENEVE_LABEL
            m.attr_u8(3, 0); // IFLA_GENEVE_TTL
            m.attr_u8(4, 0); // IFLA_GENEVE_TOS
            m.attr(5, &t.dstport.to_be_bytes()); // IFLA_GENEVE_PORT
        }
        // Matches `ip link add NAME type vxlan id VNI dstport P`: no group,
        // so the kernel floods to the FDB's all-zeros entries.
        LinkKind::VxlanFdb { vni, dstport } => {
            m.attr_u32(1, *vni); // IFLA_VXLAN_ID
            m.attr_u8(7, 1); // IFLA_VXLAN_LEARNING, iproute2's default
            m.attr(15, &dstport.to_be_bytes()); // IFLA_VXLAN_PORT
        }
        _ => {}
    }
}

/// Builds the RTM_NEWLINK create request (no I/O). `ns_fd`: where the
/// device (for veth: the peer) is placed; `parent`/`underlay`/`master`:
/// ifindexes resolved by the caller.
pub fn create_msg(
    a: &LinkAttrs,
    name: &str,
    kind: &LinkKind,
    ns_fd: Option<i32>,
    parent: Option<u32>,
    underlay: Option<u32>,
    master: Option<u32>,
) -> Msg {
    let (flags, change) = if a.up { (IFF_UP, IFF_UP) } else { (0, 0) };
    let mut m = Msg::new(
        RTM_NEWLINK,
        NLM_F_CREATE | NLM_F_EXCL,
        &ifinfomsg(0, 0, flags, change),
    );
    let dev_ns = match kind {
        LinkKind::Veth { .. } => None,
        _ => ns_fd,
    };
    put_common(&mut m, a, name, dev_ns, parent);
    m.nest(IFLA_LINKINFO, |m| {
        // iproute2 sends the kind without its NUL (strlen); so do we.
        m.attr(IFLA_INFO_KIND, kind.kind().as_bytes());
        match kind {
            LinkKind::Veth { peer } => {
                m.nest(IFLA_INFO_DATA, |m| {
                    m.nest(VETH_INFO_PEER, |m| {
                        m.raw(&ifinfomsg(0, 0, 0, 0));
                        put_common(m, peer, &peer.name, ns_fd, None);
                    });
                });
            }
            LinkKind::Bridge | LinkKind::Dummy => {}
            LinkKind::Vlan { id, .. } => {
                m.nest(IFLA_INFO_DATA, |m| {
                    m.attr_u16(1, *id); // IFLA_VLAN_ID
                });
            }
            LinkKind::Macvlan { mode, .. } | LinkKind::Macvtap { mode, .. } => {
                if let Some(mode) = mode {
                    m.nest(IFLA_INFO_DATA, |m| {
                        m.attr_u32(1, *mode as u32); // IFLA_MACVLAN_MODE
                    });
                }
            }
            LinkKind::Ipvlan { mode, .. } | LinkKind::Ipvtap { mode, .. } => {
                m.nest(IFLA_INFO_DATA, |m| {
                    m.attr_u16(1, mode.mode); // IFLA_IPVLAN_MODE
                    m.attr_u16(2, mode.flags); // IFLA_IPVLAN_FLAGS
                });
            }
            LinkKind::Vxlan(_) | LinkKind::Geneve(_) | LinkKind::VxlanFdb { .. } => {
                m.nest(IFLA_INFO_DATA, |m| put_tunnel_data(m, kind, underlay));
            }
        }
    });
    if let Some(mi) = master {
        m.attr_u32(IFLA_MASTER, mi);
    }
    m
}

/// The request of `ip link set dev NAME type bridge_slave isolated on|off`
/// for the bridge port of index `index`, byte for byte as iproute2 sends
/// it: RTM_NEWLINK on the index, IFLA_LINKINFO with the kind
/// `bridge_slave` (the kernel takes the slave data to the port's master)
/// and IFLA_INFO_SLAVE_DATA { IFLA_BRPORT_ISOLATED u8 }.
pub fn port_isolated_msg(index: u32, on: bool) -> Msg {
    let mut m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(0, index as i32, 0, 0));
    m.nest(IFLA_LINKINFO, |m| {
        m.attr(IFLA_INFO_KIND, b"bridge_slave");
        m.nest(IFLA_INFO_SLAVE_DATA, |m| {
            m.attr_u8(IFLA_BRPORT_ISOLATED, u8::from(on));
        });
    });
    m
}

/// A "set" request addressed by name: RTM_NEWLINK without NLM_F_CREATE on
/// ifindex 0 with IFLA_IFNAME makes the kernel look the device up by name
/// and change it (one round trip instead of a lookup plus a change).
/// `ip link set NAME addrgenmode none` as a request (alone, or in a batch).
fn no_ipv6_ll_msg(name: &str) -> Msg {
    let mut m = set_by_name(name, 0, 0);
    add_no_ipv6_ll(&mut m);
    m
}

/// `addrgenmode none` as an attribute of a link request. The kernel applies
/// IFLA_AF_SPEC after the flags of the same request: never in a request
/// that also brings the link up (the link-local address would be made
/// first).
fn add_no_ipv6_ll(m: &mut Msg) {
    m.nest(IFLA_AF_SPEC, |m| {
        m.nest(libc::AF_INET6 as u16, |m| {
            m.attr_u8(IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
        });
    });
}

pub(crate) fn set_by_name(name: &str, flags: u32, change: u32) -> Msg {
    let mut m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(0, 0, flags, change));
    m.attr_str(IFLA_IFNAME, name);
    m
}

impl Handle {
    /// Looks up an interface by name (`ip link show dev NAME`); None if absent.
    pub fn link(&self, name: &str) -> Result<Option<LinkInfo>> {
        check_ifname(name)?;
        let mut m = Msg::new(RTM_GETLINK, 0, &ifinfomsg(0, 0, 0, 0));
        m.attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        m.attr_str(IFLA_IFNAME, name);
        match self.get(&m) {
            Ok(r) => Ok(LinkInfo::parse(&r.payload)),
            Err(e) if e.errno == libc::ENODEV => Ok(None),
            Err(e) => Err(nl::op_err(format!("get link {name}"))(e)),
        }
    }

    /// The index of interface `name` (ENODEV error [`Error::NoSuchLink`] if absent).
    pub fn ifindex(&self, name: &str) -> Result<u32> {
        self.link(name)?
            .map(|l| l.index)
            .ok_or_else(|| Error::NoSuchLink {
                op: format!("look up {name} in {}", self.netns().path()),
                name: name.to_string(),
            })
    }

    /// Lists all interfaces with their alias, group and kind (`ip -d link show`).
    pub fn links(&self) -> Result<Vec<LinkInfo>> {
        let mut m = Msg::new(RTM_GETLINK, NLM_F_DUMP, &ifinfomsg(0, 0, 0, 0));
        m.attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        Ok(self
            .dump(&m, "list links")?
            .iter()
            .filter(|r| r.ty == RTM_NEWLINK)
            .filter_map(|r| LinkInfo::parse(&r.payload))
            .collect())
    }

    /// Creates a link in this namespace, or places it into `into`'s
    /// namespace (for a veth: places the *peer* there; the first end stays
    /// here). iproute2: `ip link add [link PARENT] name NAME [mtu M]
    /// [address MAC] [group G] [netns NS] [master BR] [up] type KIND …`
    /// (veth: `… type veth peer name P [mtu] [address] [netns NS]`).
    ///
    /// The alias mark and `up` of the moved end are applied inside `into`.
    /// A device to be placed in `into` whose name is taken is created under
    /// a temporary name and renamed inside. On any error, whatever was
    /// created is deleted again. A kind the kernel lacks gives
    /// [`Error::MissingFeature`].
    pub fn create_link(&self, a: &LinkAttrs, kind: &LinkKind, into: Option<&Handle>) -> Result<()> {
        check_ifname(&a.name)?;
        if let LinkKind::Veth { peer } = kind {
            check_ifname(&peer.name)?;
            if peer.master.is_some() {
                return Err(Error::Invalid(format!(
                    "veth {}: set the peer's master after creation",
                    a.name
                )));
            }
        }
        if let LinkKind::Veth { peer } = kind {
            return self.create_veth_batched(a, peer, into.unwrap_or(self));
        }
        let op = format!("create {} {}", kind.kind(), a.name);
        let parent = match kind.parent() {
            Some(p) => Some(self.ifindex(p)?),
            None => None,
        };
        let underlay = match kind {
            LinkKind::Vxlan(TunnelSpec {
                underlay: Some(u), ..
            }) => Some(self.ifindex(u)?),
            _ => None,
        };
        // (veths went to create_veth_batched above.) The master lives
        // where the device ends up.
        let master = match (&a.master, into) {
            (Some(b), Some(h)) => Some(h.ifindex(b)?),
            (Some(b), None) => Some(self.ifindex(b)?),
            (None, _) => None,
        };
        let ns_fd = into.map(|h| h.netns().as_raw_fd());
        self.forget(Some(&a.name));
        if let Some(h) = into {
            h.forget(Some(&a.name));
        }
        // The kernel ignores IFLA_IFALIAS at creation, so a marked link
        // needs one follow-up request; make it carry master and up too and
        // create the link down and detached: setting the alias on a link
        // that is already up and bridged runs the NETDEV_CHANGE notifiers
        // (bridge, IPv6) once more for nothing (measured: ~0.15 ms a veth).
        let deferred = a.alias.is_some() || a.no_ipv6_ll;
        let create_attrs;
        let (ca, cmaster) = if deferred {
            create_attrs = LinkAttrs {
                up: false,
                master: None,
                ..a.clone()
            };
            (&create_attrs, None)
        } else {
            (a, master)
        };
        let msg = create_msg(ca, &a.name, kind, ns_fd, parent, underlay, cmaster);
        let mut tmp_name = None;
        match self.raw_request(&msg) {
            Ok(()) => {}
            Err(e) if e.errno == libc::EEXIST && into.is_some() => {
                // The name is taken (older kernels check the creating
                // namespace): create under a temporary name, rename inside.
                let tmp = temp_name();
                // Created down: the kernel refuses to rename a running link.
                let down = LinkAttrs {
                    up: false,
                    ..ca.clone()
                };
                let msg = create_msg(&down, &tmp, kind, ns_fd, parent, underlay, cmaster);
                self.raw_request(&msg)
                    .map_err(|e| self.map_create_err(kind, &op, e))?;
                tmp_name = Some(tmp);
            }
            Err(e) => return Err(self.map_create_err(kind, &op, e)),
        }
        // The handle where the device itself now lives.
        let dev_h = into.unwrap_or(self);
        if let Some(tmp) = &tmp_name {
            dev_h.rename(tmp, &a.name).inspect_err(|_| {
                let _ = dev_h.delete_link(tmp);
            })?;
            if a.up && !deferred {
                dev_h.set_up(&a.name, true).inspect_err(|_| {
                    let _ = dev_h.delete_link(&a.name);
                })?;
            }
        }
        let cleanup = |e: Error| -> Error {
            let _ = dev_h.delete_link(&a.name);
            e
        };
        if a.no_ipv6_ll {
            // Before up: the kernel makes the link-local address when the
            // link comes up, and a later addrgenmode removes nothing.
            dev_h.set_no_ipv6_ll(&a.name).map_err(cleanup)?;
        }
        if deferred {
            let (f, c) = if a.up { (IFF_UP, IFF_UP) } else { (0, 0) };
            let mut m = set_by_name(&a.name, f, c);
            if let Some(alias) = &a.alias {
                m.attr_str(IFLA_IFALIAS, alias);
            }
            if let Some(mi) = master {
                m.attr_u32(IFLA_MASTER, mi);
            }
            if a.alias.is_some() || a.up || master.is_some() {
                dev_h
                    .request(&m, || format!("set alias/master/up on {}", a.name))
                    .map_err(cleanup)?;
            }
        }
        Ok(())
    }

    /// A veth pair in one datagram to this namespace: the create request
    /// (peer placed straight into `into`'s namespace under its final name,
    /// echoed back so the peer's index is known without a lookup),
    /// then one follow-up with what the kernel does not take at creation
    /// (alias, `addrgenmode`) and master and up, so the link joins the
    /// bridge and comes up once, fully configured. The peer's alias and up are one
    /// more request in `into`. Both indexes go into the handles' caches: address,
    /// route and tc requests on either end need no lookup afterwards.
    fn create_veth_batched(&self, a: &LinkAttrs, peer: &LinkAttrs, into: &Handle) -> Result<()> {
        let op = format!("create veth {}", a.name);
        let master = match &a.master {
            Some(b) => Some(self.cached_index(b)?),
            None => None,
        };
        self.forget(Some(&a.name));
        into.forget(Some(&peer.name));
        let other_ns = !std::ptr::eq(self, into);
        let ns_fd = other_ns.then(|| into.netns().as_raw_fd());
        let kind = LinkKind::Veth { peer: peer.clone() };
        // Follow-ups needed: then the link is created down and detached and
        // master/up come last (setting an alias on a link already up and
        // bridged runs the NETDEV_CHANGE notifiers once more for nothing).
        let deferred = a.alias.is_some() || a.no_ipv6_ll;
        let created = if deferred {
            LinkAttrs {
                up: false,
                master: None,
                ..a.clone()
            }
        } else {
            a.clone()
        };
        let mut create = create_msg(
            &created,
            &a.name,
            &kind,
            ns_fd,
            None,
            None,
            if deferred { None } else { master },
        );
        create.add_flags(nl::NLM_F_ECHO);
        let mut msgs = vec![create];
        // The follow-ups: alias, `addrgenmode none` and master in one
        // request (the kernel applies them in that order, the link still
        // down: every request on an outer end costs notifiers and a fill of
        // its peer's namespace id, O(namespaces) in conlink's). With an up
        // `addrgenmode` goes first on its own: the kernel applies
        // IFLA_AF_SPEC after the flags, too late once the link is up.
        let af_alone = deferred && a.no_ipv6_ll && a.up;
        let af_with = deferred && a.no_ipv6_ll && !a.up;
        let follow_up = |af: bool| {
            let (f, c) = if a.up { (IFF_UP, IFF_UP) } else { (0, 0) };
            let mut m = set_by_name(&a.name, f, c);
            if let Some(alias) = &a.alias {
                m.attr_str(IFLA_IFALIAS, alias);
            }
            if let Some(mi) = master {
                m.attr_u32(IFLA_MASTER, mi);
            }
            if af {
                add_no_ipv6_ll(&mut m);
            }
            m
        };
        if af_alone {
            msgs.push(no_ipv6_ll_msg(&a.name));
        }
        if deferred && (a.alias.is_some() || a.up || master.is_some() || af_with) {
            msgs.push(follow_up(af_with));
        }
        let refs: Vec<&Msg> = msgs.iter().collect();
        let mut res = self.batch(&refs).into_iter();
        let echo = match res.next() {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(self.map_create_err(&kind, &op, e)),
            None => return Err(Error::Invalid(format!("{op}: no answer"))),
        };
        // A kernel without IPv6 has nothing to generate: its refusal of
        // `addrgenmode` is no error (and the request carrying it goes
        // again without it).
        let no_v6 = |e: &nl::NlError| matches!(e.errno, libc::EAFNOSUPPORT | libc::EOPNOTSUPP);
        for (i, r) in res.enumerate() {
            let r = match r {
                Err(e) if i == 0 && af_alone && no_v6(&e) => Ok(None),
                Err(e) if af_with && no_v6(&e) => {
                    self.raw_request(&follow_up(false)).map(|()| None)
                }
                r => r,
            };
            if let Err(e) = r {
                let _ = self.delete_link(&a.name);
                return Err(nl::op_err(format!("configure veth {}", a.name))(e));
            }
        }
        let mut peer_index = None;
        if let Some(r) = echo.filter(|r| r.ty == RTM_NEWLINK) {
            if let Some(li) = LinkInfo::parse(&r.payload) {
                self.remember(&a.name, li.index);
            }
            peer_index = r.payload.get(16..).and_then(|attrs| {
                nl::attrs(attrs)
                    .find(|(t, _)| *t == IFLA_LINK)
                    .map(|(_, d)| nl::attr_u32(d))
            });
            if let Some(pi) = peer_index.filter(|&i| i != 0) {
                into.remember(&peer.name, pi);
            }
        }
        // The kernel takes no IFLA_AF_SPEC for a veth peer at creation:
        // its addrgenmode is a request in `into`, before any up; the same
        // request as the alias when the peer stays down (one request per
        // container end, not two).
        let af_with_alias = peer.no_ipv6_ll && !peer.up;
        if peer.no_ipv6_ll && !af_with_alias {
            into.set_no_ipv6_ll(&peer.name).inspect_err(|_| {
                let _ = self.delete_link(&a.name);
            })?;
        }
        // The peer cannot be created up (veth_open refuses while the pair is
        // not yet joined: ENOTCONN), so its up goes with its alias.
        if peer.alias.is_some() || peer.up || af_with_alias {
            let (f, c) = if peer.up { (IFF_UP, IFF_UP) } else { (0, 0) };
            let msg = |af: bool| {
                let mut m = match peer_index {
                    Some(pi) if pi != 0 => Msg::new(RTM_NEWLINK, 0, &ifinfomsg(0, pi as i32, f, c)),
                    _ => set_by_name(&peer.name, f, c),
                };
                if let Some(al) = &peer.alias {
                    m.attr_str(IFLA_IFALIAS, al);
                }
                if af {
                    add_no_ipv6_ll(&mut m);
                }
                m
            };
            let op = || format!("set veth peer {} alias/up", peer.name);
            let r = match into.raw_request(&msg(af_with_alias)) {
                // A kernel without IPv6 has no addrgenmode to set.
                Err(e)
                    if af_with_alias
                        && matches!(e.errno, libc::EAFNOSUPPORT | libc::EOPNOTSUPP) =>
                {
                    into.request(&msg(false), op)
                }
                r => r.map_err(nl::op_err(op())),
            };
            r.inspect_err(|_| {
                let _ = self.delete_link(&a.name);
            })?;
        }
        Ok(())
    }

    fn map_create_err(&self, kind: &LinkKind, op: &str, e: nl::NlError) -> Error {
        // rtnl_newlink answers EOPNOTSUPP "Unknown device type" when no
        // rtnl_link_ops exist for the kind (module absent, autoload failed).
        let unknown = e
            .msg
            .as_deref()
            .is_none_or(|m| m.contains("Unknown device type"));
        if e.errno == libc::EOPNOTSUPP && unknown {
            let (feature, module) = kind.feature();
            return Error::MissingFeature {
                op: op.to_string(),
                feature,
                module,
                errno: e.errno,
            };
        }
        nl::op_err(op)(e)
    }

    /// Creates a veth pair: `local` here, `peer` straight into `peer_ns`'s
    /// namespace with its name/MTU/MAC set at creation
    /// (`ip link add LOCAL … type veth peer name PEER … netns NS`).
    pub fn create_veth(&self, local: &LinkAttrs, peer: &LinkAttrs, peer_ns: &Handle) -> Result<()> {
        self.create_link(local, &LinkKind::Veth { peer: peer.clone() }, Some(peer_ns))
    }

    /// Creates a Linux bridge (`ip link add NAME type bridge`).
    pub fn create_bridge(&self, a: &LinkAttrs) -> Result<()> {
        self.create_link(a, &LinkKind::Bridge, None)
    }

    /// Sets or clears the master (`ip link set dev NAME master BR` /
    /// `nomaster`).
    pub fn set_master(&self, name: &str, master: Option<&str>) -> Result<()> {
        let msg = |idx: u32| {
            let mut m = set_by_name(name, 0, 0);
            m.attr_u32(IFLA_MASTER, idx);
            m
        };
        match master {
            // The bridge's index from the cache (one lookup per bridge, not
            // per port); a stale one (the bridge made again) answers ENODEV
            // and is looked up once more.
            Some(b) => self
                .request_on(b, |i| Ok(msg(i)), || format!("add {name} to bridge {b}"))
                .map_err(|e| match e {
                    // BR_MAX_PORTS: say it, the errno text ("Exchange
                    // full") does not.
                    Error::Netlink { op, errno, .. } if errno == libc::EXFULL => Error::Netlink {
                        op,
                        errno,
                        kernel_msg: Some(format!(
                            "bridge {b} is full: a Linux bridge takes at most 1023 ports; \
                             spread the links over more bridges"
                        )),
                    },
                    e => e,
                }),
            None => self.request(&msg(0), || format!("take {name} out of its bridge")),
        }
    }

    /// Turns bridge-port isolation of `name` on or off (`ip link set dev
    /// NAME type bridge_slave isolated on|off`, or `bridge link set dev
    /// NAME isolated on`). An isolated port never forwards to another
    /// isolated port of its bridge: the split horizon that lets a full
    /// mesh of per-peer tunnels on one bridge run without a loop. `name`
    /// must be a bridge port already.
    pub fn set_port_isolated(&self, name: &str, on: bool) -> Result<()> {
        let idx = self.cached_index(name)?;
        self.request(&port_isolated_msg(idx, on), || {
            format!(
                "set {name} bridge port isolated {}",
                if on { "on" } else { "off" }
            )
        })
    }

    /// `ip link set NAME addrgenmode none`: no IPv6 link-local address when
    /// the link comes up (so no DAD, router solicitations or MLD from it).
    /// A kernel without IPv6 has nothing to generate: not an error.
    pub fn set_no_ipv6_ll(&self, name: &str) -> Result<()> {
        match self.raw_request(&no_ipv6_ll_msg(name)) {
            Err(e) if matches!(e.errno, libc::EAFNOSUPPORT | libc::EOPNOTSUPP) => Ok(()),
            r => r.map_err(nl::op_err(format!("set {name} addrgenmode none"))),
        }
    }

    /// Brings a link up or down (`ip link set dev NAME up|down`).
    pub fn set_up(&self, name: &str, up: bool) -> Result<()> {
        self.apply_one(Change::Up(name, up))
    }

    /// Sets the MTU (`ip link set dev NAME mtu M`).
    pub fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        self.apply_one(Change::Mtu(name, mtu))
    }

    /// Sets the MAC address (`ip link set dev NAME address MAC`).
    pub fn set_mac(&self, name: &str, mac: MacAddr) -> Result<()> {
        self.apply_one(Change::Mac(name, mac))
    }

    /// Sets the alias (`ip link set dev NAME alias TEXT`).
    pub fn set_alias(&self, name: &str, alias: &str) -> Result<()> {
        let mut m = set_by_name(name, 0, 0);
        m.attr_str(IFLA_IFALIAS, alias);
        self.request(&m, || format!("set alias of {name}"))
    }

    /// Marks a link as conlink's (`ip link set dev NAME alias conlink:OWNER`).
    pub fn mark(&self, name: &str, owner: &str) -> Result<()> {
        self.apply_one(Change::Mark(name, owner))
    }

    /// Sets the interface group (`ip link set dev NAME group N`).
    pub fn set_group(&self, name: &str, group: u32) -> Result<()> {
        let mut m = set_by_name(name, 0, 0);
        m.attr_u32(IFLA_GROUP, group);
        self.request(&m, || format!("set group {group} on {name}"))
    }

    /// Renames a link (`ip link set dev OLD name NEW`; the link must be down
    /// or the kernel refuses with EBUSY).
    pub fn rename(&self, old: &str, new: &str) -> Result<()> {
        check_ifname(new)?;
        let idx = self.ifindex(old)?;
        self.forget(Some(old));
        self.forget(Some(new));
        let mut m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(0, idx as i32, 0, 0));
        m.attr_str(IFLA_IFNAME, new);
        self.request(&m, || format!("rename {old} to {new}"))
    }

    /// Moves a link into `into`'s namespace, optionally renaming it there
    /// (`ip link set dev NAME netns NS [name NEW]`). If the name is taken
    /// there, the link moves under a temporary name and is renamed inside;
    /// if that rename fails too, the link is deleted and EEXIST returned,
    /// so nothing is left half-moved.
    pub fn move_to(&self, name: &str, into: &Handle, new_name: Option<&str>) -> Result<()> {
        let target = new_name.unwrap_or(name);
        check_ifname(target)?;
        let idx = self.ifindex(name)?;
        self.forget(Some(name));
        into.forget(Some(target));
        let op = || format!("move {name} to {} as {target}", into.netns().path());
        // The kernel moves first (keeping the old name unless it clashes,
        // then using IFLA_IFNAME as the new name) and renames afterwards:
        // with a taken target name, the move can succeed and the rename
        // fail, leaving the link in `into` under its old name.
        let mv = |to: &str| {
            let mut m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(0, idx as i32, 0, 0));
            m.attr_u32(IFLA_NET_NS_FD, into.netns().as_raw_fd() as u32);
            m.attr_str(IFLA_IFNAME, to);
            self.raw_request(&m)
        };
        match mv(target) {
            Ok(()) => Ok(()),
            Err(e) if e.errno == libc::EEXIST => {
                let moved_as = if self.link(name)?.is_some_and(|l| l.index == idx) {
                    let tmp = temp_name();
                    mv(&tmp).map_err(nl::op_err(op()))?;
                    tmp
                } else {
                    name.to_string()
                };
                into.rename(&moved_as, target).inspect_err(|_| {
                    let _ = into.delete_link(&moved_as);
                })
            }
            Err(e) => Err(nl::op_err(op())(e)),
        }
    }

    /// Deletes a link by name (`ip link delete dev NAME`).
    pub fn delete_link(&self, name: &str) -> Result<()> {
        self.forget(Some(name));
        let mut m = Msg::new(RTM_DELLINK, 0, &ifinfomsg(0, 0, 0, 0));
        m.attr_str(IFLA_IFNAME, name);
        self.request(&m, || format!("delete link {name}"))
    }

    /// Deletes every link of interface group `group` in one request
    /// (`ip link delete group N`): the kernel unregisters them as one batch,
    /// far faster than one by one. Returns false if the group had no link
    /// (the kernel's ENODEV). Group 0 (the default group, every interface
    /// not put elsewhere) is refused.
    pub fn delete_group(&self, group: u32) -> Result<bool> {
        if group == 0 {
            return Err(Error::Invalid(
                "refusing to delete group 0 (the default group of every interface)".into(),
            ));
        }
        self.forget(None);
        let mut m = Msg::new(RTM_DELLINK, 0, &ifinfomsg(0, 0, 0, 0));
        m.attr_u32(IFLA_GROUP, group);
        match self.raw_request(&m) {
            Ok(()) => Ok(true),
            Err(e) if e.errno == libc::ENODEV => Ok(false),
            Err(e) => Err(nl::op_err(format!("delete link group {group}"))(e)),
        }
    }

    /// The links carrying conlink's mark; with `owner`, only that owner's.
    pub fn marked_links(&self, owner: Option<&str>) -> Result<Vec<LinkInfo>> {
        Ok(self
            .links()?
            .into_iter()
            .filter(|l| match (l.owner(), owner) {
                (Some(o), Some(want)) => o == want,
                (Some(_), None) => true,
                (None, _) => false,
            })
            .collect())
    }

    /// Deletes the links carrying conlink's mark (with `owner`: only that
    /// owner's) and returns their names. Keeps going past errors and
    /// reports them all; a link already gone (its veth peer was deleted
    /// first) is not an error.
    pub fn delete_marked(&self, owner: Option<&str>) -> Result<Vec<String>> {
        let mut errs = Vec::new();
        let mut gone = Vec::new();
        for l in self.marked_links(owner)? {
            match self.delete_link(&l.name) {
                Ok(()) => gone.push(l.name),
                Err(e) if e.is_no_device() => gone.push(l.name),
                Err(e) => errs.push(e),
            }
        }
        if errs.is_empty() {
            Ok(gone)
        } else {
            Err(Error::Many(errs))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (type, payload) of the attributes after a 16-byte header + fixed part.
    fn top(b: &[u8], fixed: usize) -> Vec<(u16, Vec<u8>)> {
        nl::attrs(&b[16 + fixed..])
            .map(|(t, d)| (t, d.to_vec()))
            .collect()
    }

    #[test]
    fn veth_peer_goes_to_the_namespace_fd() {
        let local = LinkAttrs::new("o0").mtu(1400).group(9).up();
        let peer = LinkAttrs::new("eth0")
            .mtu(9000)
            .mac("c2:00:00:00:00:07".parse().unwrap());
        let m = create_msg(
            &local,
            "o0",
            &LinkKind::Veth { peer },
            Some(42),
            None,
            None,
            Some(3),
        );
        let b = m.bytes();
        // ifinfomsg asks for up.
        assert_eq!(u32::from_ne_bytes([b[24], b[25], b[26], b[27]]), IFF_UP);
        let a = top(&b, 16);
        let types: Vec<u16> = a.iter().map(|x| x.0).collect();
        // No NET_NS_FD at the top: the local end stays here.
        assert_eq!(
            types,
            vec![
                IFLA_MTU,
                IFLA_GROUP,
                IFLA_IFNAME,
                IFLA_LINKINFO,
                IFLA_MASTER
            ]
        );
        let info: Vec<_> = nl::attrs(&a[3].1).map(|(t, d)| (t, d.to_vec())).collect();
        assert_eq!(info[0], (IFLA_INFO_KIND, b"veth".to_vec()));
        let data: Vec<_> = nl::attrs(&info[1].1)
            .map(|(t, d)| (t, d.to_vec()))
            .collect();
        assert_eq!(data[0].0, VETH_INFO_PEER);
        // The peer: its own ifinfomsg, then MTU, MAC, NET_NS_FD, name.
        let p: Vec<_> = nl::attrs(&data[0].1[16..])
            .map(|(t, d)| (t, d.to_vec()))
            .collect();
        assert_eq!(p[0], (IFLA_MTU, 9000u32.to_ne_bytes().to_vec()));
        assert_eq!(p[1], (IFLA_ADDRESS, vec![0xc2, 0, 0, 0, 0, 7]));
        assert_eq!(p[2], (IFLA_NET_NS_FD, 42u32.to_ne_bytes().to_vec()));
        assert_eq!(p[3], (IFLA_IFNAME, b"eth0\0".to_vec()));
    }

    #[test]
    fn names_and_modes_are_checked() {
        assert!(check_ifname("eth0").is_ok());
        for bad in ["", "a/b", "a b", "sixteen-chars-xx", ".", "a:b"] {
            assert!(check_ifname(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            "bridge".parse::<MacvlanMode>().unwrap(),
            MacvlanMode::Bridge
        );
        assert!("l2".parse::<MacvlanMode>().is_err());
        assert_eq!(
            "l3s vepa".parse::<IpvlanMode>().unwrap(),
            IpvlanMode { mode: 2, flags: 2 }
        );
        assert!("bridge-ish".parse::<IpvlanMode>().is_err());
        assert!(temp_name().len() <= IFNAME_MAX);
    }
}
