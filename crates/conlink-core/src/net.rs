//! The real [`Kernel`]: conlink-net's netlink, tc, ethtool, nftables and
//! OVS code.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use conlink_model::{
    BridgeMode, EthtoolSetting, IpNet, Ipv4Net, LinkType, MacAddr, Netem, Route, TunnelType,
};
use conlink_net::nft::{ForwardRules, NatRule, Nft, NftError, DOCKER_IF};
use conlink_net::{
    Datapath, Handle, LinkAttrs, LinkKind, Netns, OvsOptions, OvsSupervisor, TunnelSpec,
};
use tracing::{info, warn};

use crate::kernel::{Change, ErrorKind, KResult, Kernel, KernelError, Marked, Ns};
use crate::state::{LinkIdentity, TunnelState};

/// Interface group of every outer end and tunnel conlink creates in its
/// namespace, so that shutdown deletes them all in one request (`ip link
/// delete group N`): the kernel unregisters them as one batch.
pub const OUTER_GROUP: u32 = 0x636c; // "cl"

fn kind_of_errno(e: Option<i32>) -> ErrorKind {
    match e {
        Some(x) if x == ENODEV || x == ENOENT || x == ESRCH || x == EADDRNOTAVAIL => {
            ErrorKind::Gone
        }
        Some(x) if x == EEXIST => ErrorKind::Exists,
        _ => ErrorKind::Other,
    }
}

const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const EEXIST: i32 = 17;
const ENODEV: i32 = 19;
const EADDRNOTAVAIL: i32 = 99;

fn net_err(e: conlink_net::Error) -> KernelError {
    KernelError::new(kind_of_errno(e.errno()), e.to_string())
}

fn nft_err(e: NftError) -> KernelError {
    KernelError::new(kind_of_errno(e.errno()), e.to_string())
}

/// Where conlink runs, as the kernel layer needs to know it.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// The host's root namespace (parents of *vlan/*vtap links); None:
    /// `/proc/1/ns/net` (conlink in a container with `pid: host`).
    pub host_ns: Option<PathBuf>,
    /// Where tunnel devices are created (the namespace that reaches the
    /// remote); None: conlink's own namespace. Devices made elsewhere are
    /// moved in: a tunnel keeps its underlay when moved.
    pub tunnel_ns: Option<PathBuf>,
    /// Where multi-host mesh tunnels are created, when that differs from
    /// `tunnel_ns`: conlink in a container (`pid: host`) reaches the other
    /// hosts from the host's namespace, `/proc/1/ns/net`. None: as
    /// `tunnel_ns`.
    pub mesh_ns: Option<PathBuf>,
    /// Runtime directory of the OVS daemons conlink starts when a bridge is
    /// `ovs` and no OVS answers in its namespace (`/run/conlink/ovs-NAME`);
    /// None: `/run/conlink/ovs-conlink`.
    pub ovs_dir: Option<PathBuf>,
}

impl Placement {
    /// The OVS runtime directory for conlink namespace (or project) NAME.
    pub fn ovs_dir_for(name: &str) -> PathBuf {
        Path::new("/run/conlink").join(format!("ovs-{name}"))
    }
}

/// The real kernel.
pub struct NetKernel {
    conlink: Handle,
    place: Placement,
    host: Mutex<Option<Arc<Handle>>>,
    /// Open handles on container namespaces: one per container, not one
    /// per operation (opening one costs a thread and a setns).
    ctrs: Mutex<HashMap<PathBuf, Arc<Handle>>>,
    /// Handles the netns runtime opened at start-up, not used yet: taken
    /// into `ctrs` by a container's first operation if the path still
    /// names the same namespace, dropped when the container dies first.
    unused: Mutex<HashMap<PathBuf, Handle>>,
    nft: Mutex<Option<Nft>>,
    docker_addr: Option<Ipv4Net>,
    /// conlink's namespace, kept for starting OVS's daemons inside it.
    conlink_ns: Netns,
    /// The Open vSwitch in use, found or started on the first OVS
    /// operation (configs without ovs bridges never touch OVS); its own
    /// daemons stop when the kernel is dropped, after the teardown.
    ovs: Mutex<Option<Arc<OvsSupervisor>>>,
    /// New interfaces in conlink's namespace start with IPv6 disabled
    /// (`net.ipv6.conf.default.disable_ipv6 = 1` there, see
    /// [`disable_ipv6_by_default`]): outer ends then need no
    /// `addrgenmode none` request of their own.
    v6_off: bool,
}

const V6_DEFAULT_KNOB: &str = "/proc/sys/net/ipv6/conf/default/disable_ipv6";

/// Makes every interface created in `ns` from now on start with IPv6
/// disabled (`sysctl net.ipv6.conf.default.disable_ipv6=1` inside it);
/// for namespaces conlink owns. Outer ends, bridges and tunnels never
/// carry IPv6 (the containers' traffic crosses them at layer 2), and an
/// interface with IPv6 merely "without a link-local address" (`addrgenmode
/// none`) still gets a multicast route (`ff00::/8`) when it comes up: with
/// thousands of outer ends, every later up, alias change and delete in the
/// namespace walks them all (`rt6_sync_up`, `rt6_disable_ip`;
/// docs/performance.md). Disabled, the kernel skips its IPv6 work for them
/// altogether. Interfaces that exist already (docker's `DOCKER-ETH0`,
/// `lo`) keep theirs. An error (no IPv6 in the kernel, `/proc/sys`
/// read-only in a container) leaves the namespace as it was: outer ends
/// then get `addrgenmode none` each, as before.
pub fn disable_ipv6_by_default(ns: &Netns) -> Result<(), String> {
    match ns.run(|| std::fs::write(V6_DEFAULT_KNOB, "1")) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write {V6_DEFAULT_KNOB}: {e}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether new interfaces in `ns` start with IPv6 disabled.
fn ipv6_off_by_default(ns: &Netns) -> bool {
    ns.run(|| std::fs::read_to_string(V6_DEFAULT_KNOB))
        .is_ok_and(|r| r.is_ok_and(|v| v.trim() == "1"))
}

impl NetKernel {
    /// Opens conlink's namespace and prepares it: docker's `eth0` renamed
    /// `DOCKER-ETH0` (keeping addresses and routes) so container links may
    /// use `eth0`.
    pub fn open(conlink_ns: &Netns, place: Placement) -> KResult<Self> {
        let conlink = Handle::open(conlink_ns).map_err(net_err)?;
        let docker_addr = prepare_docker_if(&conlink).map_err(net_err)?;
        let v6_off = ipv6_off_by_default(conlink_ns);
        Ok(NetKernel {
            conlink,
            place,
            host: Mutex::new(None),
            ctrs: Mutex::new(HashMap::new()),
            unused: Mutex::new(HashMap::new()),
            nft: Mutex::new(None),
            docker_addr,
            conlink_ns: conlink_ns.try_clone().map_err(net_err)?,
            ovs: Mutex::new(None),
            v6_off,
        })
    }

    /// Takes handles already open on container namespaces (the netns
    /// runtime opens each at start-up to set its loopback up): the first
    /// setup of each container then opens none (docs/performance.md,
    /// "Where the time goes"). A namespace deleted and made again before
    /// its first setup is not the one its start-up handle holds: the first
    /// use checks, and a container's death drops the handle unused.
    pub fn with_ctr_handles(self, hs: impl IntoIterator<Item = (PathBuf, Handle)>) -> Self {
        self.unused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(hs);
        self
    }

    /// The start-up handle for `path` if the path still names the
    /// namespace it holds. (Inode numbers are unique among live
    /// namespaces, and the handle keeps its namespace alive.)
    fn take_unused(&self, path: &Path) -> Option<Handle> {
        use std::os::unix::fs::MetadataExt;
        let h = self
            .unused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(path)?;
        let now = std::fs::metadata(path).ok()?.ino();
        (h.netns().inode().ok()? == now).then_some(h)
    }

    /// The OVS answering in conlink's namespace, or conlink's own daemons
    /// started there (userspace datapath without the kernel module).
    fn ovs(&self) -> KResult<Arc<OvsSupervisor>> {
        let mut o = self.ovs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = &*o {
            return Ok(o.clone());
        }
        let dir = self
            .place
            .ovs_dir
            .clone()
            .unwrap_or_else(|| Placement::ovs_dir_for("conlink"));
        let sup = Arc::new(
            OvsSupervisor::ensure(&self.conlink_ns, &OvsOptions::new(dir)).map_err(net_err)?,
        );
        *o = Some(sup.clone());
        Ok(sup)
    }

    /// An OVS bridge, refused when the name is taken in OVS or in conlink's
    /// namespace (never share someone else's). On the userspace datapath
    /// ovs-vswitchd makes the bridge's device (a tap) in conlink's
    /// namespace. The bridge device is brought up (forwards route through
    /// it, as through a Linux bridge).
    fn create_ovs_bridge(&self, name: &str) -> KResult<()> {
        let ovs = self.ovs()?;
        let mut dev = self.conlink.link(name).map_err(net_err)?;
        if let Some(d) = &dev {
            // The tap of a bridge a killed conlink's own OVS made, killed
            // before marking it: the leftover database proves it ours.
            if d.owner().is_none()
                && d.kind.as_deref() == Some("tun")
                && ovs.is_leftover_bridge(name)
            {
                self.conlink.delete_link(name).map_err(net_err)?;
                info!("bridge {name}: removed its device left by a killed conlink's ovs-vswitchd");
                dev = None;
            }
        }
        if ovs.bridge_exists(name).map_err(net_err)? || dev.is_some() {
            return Err(KernelError::new(
                ErrorKind::Exists,
                format!("bridge {name}: an ovs bridge or interface with that name already exists in conlink's namespace; refusing to share it"),
            ));
        }
        ovs.add_bridge(name).map_err(net_err)?;
        if ovs.started_own() && ovs.datapath() == Datapath::Netdev {
            // The userspace datapath's devices (the bridge's tap and
            // `ovs-netdev`) are persistent: after a SIGKILL they outlive
            // conlink's daemons. The plain `conlink` marker makes the next
            // start remove them with other unadoptable leftovers (see
            // adopt::scan) before it makes the bridge again in a fresh OVS.
            for dev in [name, "ovs-netdev"] {
                if self.conlink.link(dev).map_err(net_err)?.is_some() {
                    self.conlink.mark(dev, "conlink").map_err(net_err)?;
                }
            }
        }
        if self.conlink.link(name).map_err(net_err)?.is_some() {
            self.conlink.set_up(name, true).map_err(net_err)?;
        }
        info!(
            "bridge {name}: ovs bridge created ({} datapath)",
            match ovs.datapath() {
                Datapath::System => "kernel",
                Datapath::Netdev => "userspace",
            }
        );
        Ok(())
    }

    /// conlink's namespace handle.
    pub fn conlink(&self) -> &Handle {
        &self.conlink
    }

    fn host(&self) -> KResult<Arc<Handle>> {
        let mut h = self.host.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = &*h {
            return Ok(h.clone());
        }
        let path = self
            .place
            .host_ns
            .clone()
            .unwrap_or_else(|| "/proc/1/ns/net".into());
        let handle = Arc::new(
            Netns::open(&path)
                .and_then(|ns| Handle::open(&ns))
                .map_err(|e| {
                    // Opening another process's namespace needs ptrace
                    // access to it: init has every capability, docker's
                    // default set lacks some, so the kernel wants
                    // CAP_SYS_PTRACE. Say what to add.
                    let denied = matches!(e.errno(), Some(13 | 1)); // EACCES, EPERM
                    let mut k = net_err(e);
                    if denied {
                        k.msg.push_str(
                            ": the host's namespace is needed for vlan/macvlan/ipvlan parents; \
                             give conlink's container `cap_add: [SYS_PTRACE]` (with `pid: host`)",
                        );
                    }
                    k
                })?,
        );
        *h = Some(handle.clone());
        Ok(handle)
    }

    fn ctr(&self, path: &Path) -> KResult<Arc<Handle>> {
        if let Some(h) = self
            .ctrs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(path)
        {
            return Ok(h.clone());
        }
        let h = Arc::new(match self.take_unused(path) {
            Some(h) => h,
            None => Netns::open(path)
                .and_then(|ns| Handle::open(&ns))
                .map_err(net_err)?,
        });
        self.ctrs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.to_path_buf(), h.clone());
        Ok(h)
    }

    fn ns(&self, ns: Ns<'_>) -> KResult<NsHandle<'_>> {
        Ok(match ns {
            Ns::Conlink => NsHandle::Borrowed(&self.conlink),
            Ns::Ctr(p) => NsHandle::Owned(self.ctr(p)?),
        })
    }

    /// nftables in a container's namespace, through the namespace fd the
    /// cached handle holds (reopening `/proc/PID/ns/net` by path could land
    /// in another namespace once PID is recycled).
    fn ctr_nft(&self, ctr: &Path) -> KResult<Nft> {
        let h = self.ctr(ctr)?;
        let ns = h.netns();
        Nft::open_fd(ns.as_fd(), ns.path()).map_err(nft_err)
    }

    fn with_nft<T>(&self, f: impl FnOnce(&mut Nft) -> Result<T, NftError>) -> KResult<T> {
        let mut nft = self.nft.lock().unwrap_or_else(|p| p.into_inner());
        if nft.is_none() {
            let ns = self.conlink.netns();
            *nft = Some(Nft::open_fd(ns.as_fd(), ns.path()).map_err(nft_err)?);
        }
        match nft.as_mut() {
            Some(n) => f(n).map_err(nft_err),
            None => Err(KernelError::new(ErrorKind::Other, "nftables not open")),
        }
    }
}

enum NsHandle<'a> {
    Borrowed(&'a Handle),
    Owned(Arc<Handle>),
}

impl std::ops::Deref for NsHandle<'_> {
    type Target = Handle;
    fn deref(&self) -> &Handle {
        match self {
            NsHandle::Borrowed(h) => h,
            NsHandle::Owned(h) => h,
        }
    }
}

fn attrs(name: &str, mac: Option<MacAddr>, mtu: Option<u32>, marker: &str) -> LinkAttrs {
    let mut a = LinkAttrs::new(name).owner(marker);
    if let Some(m) = mtu {
        a = a.mtu(m);
    }
    if let Some(m) = mac {
        a = a.mac(m);
    }
    a
}

/// `a` without an IPv6 link-local address when the link opts out of IPv6
/// (config `ipv6: false`).
fn v6(a: LinkAttrs, ipv6: bool) -> LinkAttrs {
    if ipv6 {
        a
    } else {
        a.no_ipv6_ll()
    }
}

fn child_kind(id: &LinkIdentity) -> KResult<LinkKind> {
    let parent = id.parent.clone().unwrap_or_default();
    let bad = |e: conlink_net::Error| KernelError::new(ErrorKind::Other, e.to_string());
    let mode = id.mode.as_deref();
    let mv = |m: Option<&str>| m.map(str::parse).transpose().map_err(bad);
    Ok(match id.kind {
        LinkType::Vlan => LinkKind::Vlan {
            parent,
            id: id
                .vlanid
                .ok_or_else(|| KernelError::new(ErrorKind::Other, "vlan link without vlanid"))?,
        },
        LinkType::Macvlan => LinkKind::Macvlan {
            parent,
            mode: mv(mode)?,
        },
        LinkType::Macvtap => LinkKind::Macvtap {
            parent,
            mode: mv(mode)?,
        },
        LinkType::Ipvlan => LinkKind::Ipvlan {
            parent,
            mode: mode.unwrap_or("l2").parse().map_err(bad)?,
        },
        LinkType::Ipvtap => LinkKind::Ipvtap {
            parent,
            mode: mode.unwrap_or("l2").parse().map_err(bad)?,
        },
        k => {
            return Err(KernelError::new(
                ErrorKind::Other,
                format!("{} is not a child link", k.as_str()),
            ))
        }
    })
}

impl Kernel for NetKernel {
    fn create_bridge(&self, name: &str, mode: BridgeMode, marker: &str) -> KResult<()> {
        match mode {
            BridgeMode::Linux => {
                if self.conlink.link(name).map_err(net_err)?.is_some() {
                    return Err(KernelError::new(
                        ErrorKind::Exists,
                        format!("bridge {name}: an interface with that name already exists in conlink's namespace; refusing to share it"),
                    ));
                }
                self.conlink
                    .create_bridge(&LinkAttrs::new(name).owner(marker).up())
                    .map_err(net_err)
            }
            BridgeMode::Ovs => self.create_ovs_bridge(name),
            BridgeMode::Patch => Ok(()),
        }
    }

    fn delete_bridge(&self, name: &str, mode: BridgeMode) -> KResult<()> {
        match mode {
            BridgeMode::Linux => self.conlink.delete_link(name).map_err(net_err),
            BridgeMode::Ovs => self.ovs()?.del_bridge(name).map_err(net_err),
            BridgeMode::Patch => Ok(()),
        }
    }

    fn create_tunnel(&self, name: &str, t: &TunnelState, marker: &str) -> KResult<()> {
        let kind = match (t.remote, t.kind) {
            (Some(remote), kind) => {
                let spec = TunnelSpec {
                    vni: t.vni,
                    remote,
                    dstport: t.port,
                    underlay: None,
                };
                match kind {
                    TunnelType::Vxlan => LinkKind::Vxlan(spec),
                    TunnelType::Geneve => LinkKind::Geneve(spec),
                }
            }
            // A mesh tunnel: no default remote, its FDB says where.
            (None, TunnelType::Vxlan) => LinkKind::VxlanFdb {
                vni: t.vni,
                dstport: t.port,
            },
            (None, TunnelType::Geneve) => {
                return Err(KernelError::new(
                    ErrorKind::Other,
                    format!("tunnel {name}: geneve has no forwarding database for multi-host"),
                ))
            }
        };
        let mut a = LinkAttrs::new(name).owner(marker).group(OUTER_GROUP);
        if t.mode == BridgeMode::Linux {
            a = a.master(&t.bridge);
        }
        if let Some(m) = t.mtu {
            a = a.mtu(m);
        }
        if t.is_mesh() {
            // No IPv6 link-local on a mesh tunnel: its DAD and router
            // solicitations would be flooded to every peer, and through an
            // idle patch tunnel into the far end's container.
            a = a.no_ipv6_ll();
        }
        // A per-peer port comes up only once it is isolated: an up,
        // non-isolated peer port would forward one peer's floods to the
        // others (a loop, if two hosts did it at once).
        let isolate = t.isolated();
        if !isolate {
            a = a.up();
        }
        let underlay = match (t.is_mesh(), &self.place.mesh_ns) {
            (true, Some(ns)) => Some(ns),
            _ => self.place.tunnel_ns.as_ref(),
        };
        match underlay {
            None => self.conlink.create_link(&a, &kind, None),
            Some(ns) => {
                // Created where the underlay is, then moved in.
                let under = Netns::open(ns)
                    .and_then(|ns| Handle::open(&ns))
                    .map_err(net_err)?;
                under.create_link(&a, &kind, Some(&self.conlink))
            }
        }
        .map_err(net_err)?;
        if isolate {
            // `ip link set dev NAME type bridge_slave isolated on` + `up`;
            // a failure leaves nothing: the device goes again.
            let done = self
                .conlink
                .set_port_isolated(name, true)
                .and_then(|()| self.conlink.set_up(name, true));
            if let Err(e) = done {
                let _ = self.conlink.delete_link(name);
                return Err(net_err(e));
            }
        }
        if t.mode == BridgeMode::Ovs {
            self.ovs()?.add_port(&t.bridge, name).map_err(net_err)?;
        }
        Ok(())
    }

    fn create_veth(
        &self,
        ctr: &Path,
        outer: &str,
        dev: &str,
        mac: Option<MacAddr>,
        mtu: Option<u32>,
        ipv6: bool,
        marker: &str,
    ) -> KResult<()> {
        let h = self.ctr(ctr)?;
        // The outer end needs no IPv6: disabled by the namespace's default
        // (see `disable_ipv6_by_default`), or else without a link-local
        // address, so the kernel sends no DAD or router solicitations from
        // it (flooded to every port of the bridge: O(N) per new container,
        // see docs/performance.md).
        let mut local = attrs(outer, None, mtu, marker).group(OUTER_GROUP);
        if !self.v6_off {
            local = local.no_ipv6_ll();
        }
        let peer = v6(attrs(dev, mac, mtu, marker), ipv6);
        match self.conlink.create_veth(&local, &peer, &h) {
            // A leftover of ours in the container: after a conlink
            // container restarts, its old namespace (and with it the old
            // outer ends) is destroyed asynchronously, so the container
            // ends can still be there. Ours (marked) are replaced; anything
            // else stays an error.
            Err(e) if e.is_exists() => {
                if h.link(dev)
                    .map_err(net_err)?
                    .is_some_and(|l| l.owner().is_some_and(|o| o.starts_with("conlink")))
                {
                    match h.delete_link(dev) {
                        Err(e) if !e.is_no_device() => return Err(net_err(e)),
                        _ => {}
                    }
                }
                self.conlink.create_veth(&local, &peer, &h).map_err(net_err)
            }
            r => r.map_err(net_err),
        }
    }

    fn create_child(
        &self,
        ctr: &Path,
        dev: &str,
        id: &LinkIdentity,
        mac: Option<MacAddr>,
        mtu: Option<u32>,
        marker: &str,
    ) -> KResult<()> {
        let h = self.ctr(ctr)?;
        let kind = child_kind(id)?;
        self.host()?
            .create_link(
                &v6(attrs(dev, mac, mtu, marker), !id.no_ipv6),
                &kind,
                Some(&h),
            )
            .map_err(net_err)
    }

    fn create_dummy(
        &self,
        ctr: &Path,
        dev: &str,
        mac: Option<MacAddr>,
        mtu: Option<u32>,
        ipv6: bool,
        marker: &str,
    ) -> KResult<()> {
        self.ctr(ctr)?
            .create_link(
                &v6(attrs(dev, mac, mtu, marker), ipv6),
                &LinkKind::Dummy,
                None,
            )
            .map_err(net_err)
    }

    fn attach(&self, port: &str, bridge: &str, mode: BridgeMode) -> KResult<()> {
        match mode {
            BridgeMode::Linux => self.conlink.set_master(port, Some(bridge)).map_err(net_err),
            BridgeMode::Ovs => self.ovs()?.add_port(bridge, port).map_err(net_err),
            BridgeMode::Patch => Ok(()),
        }
    }

    fn detach_ovs(&self, bridge: &str, port: &str) -> KResult<()> {
        self.ovs()?.del_port(bridge, port).map_err(net_err)
    }

    fn patch(&self, a: &str, b: &str) -> KResult<()> {
        self.conlink.patch(a, b).map_err(net_err)?;
        info!("patch: {a} <-> {b}");
        Ok(())
    }

    fn unpatch(&self, dev: &str) -> KResult<()> {
        self.conlink.unpatch(dev).map_err(net_err)
    }

    fn fdb_append(&self, dev: &str, remote: Ipv4Addr) -> KResult<()> {
        self.conlink.fdb_append(dev, remote).map_err(net_err)
    }

    fn fdb_del(&self, dev: &str, remote: Ipv4Addr) -> KResult<()> {
        self.conlink.fdb_del(dev, remote).map_err(net_err)
    }

    fn fdb_forget(&self, port: &str, mac: MacAddr) -> KResult<()> {
        self.conlink.fdb_forget(port, mac.0).map_err(net_err)
    }

    fn fdb_flood(&self, dev: &str) -> KResult<Vec<Ipv4Addr>> {
        self.conlink.fdb_flood(dev).map_err(net_err)
    }

    fn delete_link(&self, ns: Ns<'_>, name: &str) -> KResult<()> {
        self.ns(ns)?.delete_link(name).map_err(net_err)
    }

    fn delete_outer_group(&self) -> KResult<()> {
        self.conlink
            .delete_group(OUTER_GROUP)
            .map(|_| ())
            .map_err(net_err)
    }

    fn batch(&self, changes: &[(Ns<'_>, Change<'_>)]) -> Vec<KResult<()>> {
        // One datagram per namespace, each in the given order (changes in
        // different namespaces never depend on each other).
        let mut groups: Vec<(Ns<'_>, Vec<usize>)> = Vec::new();
        for (i, (ns, _)) in changes.iter().enumerate() {
            match groups.iter_mut().find(|(g, _)| g == ns) {
                Some((_, idx)) => idx.push(i),
                None => groups.push((*ns, vec![i])),
            }
        }
        let mut out: Vec<Option<KResult<()>>> = vec![None; changes.len()];
        for (ns, idx) in groups {
            match self.ns(ns) {
                Err(e) => idx.iter().for_each(|&i| out[i] = Some(Err(e.clone()))),
                Ok(h) => {
                    let cs: Vec<Change<'_>> = idx.iter().map(|&i| changes[i].1).collect();
                    for (&i, r) in idx.iter().zip(h.apply(&cs)) {
                        out[i] = Some(r.map_err(net_err));
                    }
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(KernelError::new(ErrorKind::Other, "no verdict"))))
            .collect()
    }

    fn set_up(&self, ns: Ns<'_>, dev: &str, up: bool) -> KResult<()> {
        self.ns(ns)?.set_up(dev, up).map_err(net_err)
    }

    fn set_mtu(&self, ns: Ns<'_>, dev: &str, mtu: u32) -> KResult<()> {
        self.ns(ns)?.set_mtu(dev, mtu).map_err(net_err)
    }

    fn set_mac(&self, ns: Ns<'_>, dev: &str, mac: MacAddr) -> KResult<()> {
        self.ns(ns)?.set_mac(dev, mac).map_err(net_err)
    }

    fn set_marker(&self, ns: Ns<'_>, dev: &str, marker: &str) -> KResult<()> {
        self.ns(ns)?.mark(dev, marker).map_err(net_err)
    }

    fn add_addr(&self, ns: Ns<'_>, dev: &str, addr: IpNet) -> KResult<()> {
        self.ns(ns)?.add_addr(dev, addr).map_err(net_err)
    }

    fn del_addr(&self, ns: Ns<'_>, dev: &str, addr: IpNet) -> KResult<()> {
        self.ns(ns)?.del_addr(dev, addr).map_err(net_err)
    }

    fn add_route(&self, ns: Ns<'_>, dev: &str, r: &Route) -> KResult<()> {
        self.ns(ns)?.add_route(dev, r).map_err(net_err)
    }

    fn del_route(&self, ns: Ns<'_>, dev: &str, r: &Route) -> KResult<()> {
        self.ns(ns)?.del_route(dev, r).map_err(net_err)
    }

    fn set_netem(&self, ns: Ns<'_>, dev: &str, netem: Option<&Netem>) -> KResult<()> {
        let h = self.ns(ns)?;
        match netem {
            Some(n) => h.set_netem(dev, n),
            None => h.clear_root_qdisc(dev),
        }
        .map_err(net_err)
    }

    fn ethtool(&self, ns: Ns<'_>, dev: &str, s: &EthtoolSetting) -> KResult<()> {
        self.ns(ns)?.apply_ethtool(dev, s).map_err(net_err)
    }

    fn set_nat(&self, ctr: &Path, dev: &str, ip: Ipv4Addr, nat: Ipv4Addr) -> KResult<()> {
        let mut nft = self.ctr_nft(ctr)?;
        nft.apply_nat(&NatRule {
            dev: dev.to_string(),
            ip,
            nat,
        })
        .map_err(nft_err)
    }

    fn del_nat(&self, ctr: &Path, dev: &str) -> KResult<()> {
        let mut nft = self.ctr_nft(ctr)?;
        nft.remove_nat(dev).map_err(nft_err)
    }

    fn drop_nat_table(&self, ctr: &Path) -> KResult<()> {
        let mut nft = self.ctr_nft(ctr)?;
        nft.delete_table().map_err(nft_err)
    }

    fn set_forwards(
        &self,
        key: &str,
        bridge: &str,
        ip: Ipv4Addr,
        fwd: &[conlink_model::Forward],
    ) -> KResult<()> {
        self.with_nft(|n| {
            n.apply_forwards(&ForwardRules {
                key: key.to_string(),
                docker_if: DOCKER_IF.to_string(),
                bridge: bridge.to_string(),
                ip,
                forwards: fwd.to_vec(),
            })
        })
    }

    fn del_forwards(&self, key: &str) -> KResult<()> {
        self.with_nft(|n| n.remove_forwards(key))
    }

    fn drop_forward_table(&self) -> KResult<()> {
        let r = self.with_nft(|n| n.delete_table());
        *self.nft.lock().unwrap_or_else(|p| p.into_inner()) = None;
        r
    }

    fn has_forward_table(&self) -> KResult<bool> {
        self.with_nft(|n| n.has_table())
    }

    fn enable_forwarding(&self) {
        enable_forwarding(self.conlink.netns());
    }

    fn docker_addr(&self) -> Option<Ipv4Net> {
        self.docker_addr
    }

    fn marked(&self, ns: Ns<'_>) -> KResult<Vec<Marked>> {
        Ok(self
            .ns(ns)?
            .marked_links(None)
            .map_err(net_err)?
            .into_iter()
            .filter_map(|l| {
                Some(Marked {
                    marker: l.owner()?.to_string(),
                    name: l.name,
                    ifindex: l.index,
                })
            })
            .collect())
    }

    fn forget_ns(&self, ctr: &Path) {
        self.ctrs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(ctr);
    }

    fn forget_unused_ns(&self, ctr: &Path) {
        self.unused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(ctr);
    }
}

/// Forwards cross from `DOCKER-ETH0` to the bridge: IPv4 forwarding must be
/// on in conlink's namespace. `/proc/sys/net` belongs to the namespace of
/// the thread that opens it, so the write happens on a thread inside it.
/// Docker mounts `/proc/sys` read-only in containers: then the compose
/// service needs `sysctls: {net.ipv4.ip_forward: 1}`, which the warning says.
fn enable_forwarding(ns: &Netns) {
    const KNOB: &str = "/proc/sys/net/ipv4/ip_forward";
    let res = ns.run(|| {
        if std::fs::read_to_string(KNOB).is_ok_and(|v| v.trim() == "1") {
            return Ok(());
        }
        std::fs::write(KNOB, "1")
    });
    match res {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(
            "cannot enable IPv4 forwarding for port forwards ({e}); \
             give the conlink service `sysctls: {{net.ipv4.ip_forward: 1}}`"
        ),
        Err(e) => warn!("cannot enter conlink's namespace to enable forwarding: {e}"),
    }
}

/// conlink's docker-provided interface: its `eth0` renamed `DOCKER-ETH0`
/// (keeping addresses and routes) so container links may use `eth0`.
/// Returns its IPv4 address, None when conlink has no docker interface.
fn prepare_docker_if(conlink: &Handle) -> conlink_net::Result<Option<Ipv4Net>> {
    if conlink.link(DOCKER_IF)?.is_none() {
        if conlink.link("eth0")?.is_none() {
            return Ok(None);
        }
        conlink.rename_keeping_config("eth0", DOCKER_IF)?;
        info!("renamed docker interface eth0 to {DOCKER_IF}");
    }
    Ok(conlink.addrs(DOCKER_IF)?.into_iter().find_map(|a| a.v4()))
}

/// Reads conlink's ownership markers and nothing else: what `conlink
/// plan` sees the system through. Unlike [`NetKernel::open`] it prepares
/// nothing (no `DOCKER-ETH0` rename), and it has no method that writes.
pub struct MarkReader {
    conlink: Handle,
}

impl MarkReader {
    /// A reader on conlink's namespace.
    pub fn open(conlink_ns: &Netns) -> KResult<Self> {
        Ok(MarkReader {
            conlink: Handle::open(conlink_ns).map_err(net_err)?,
        })
    }
}

impl crate::adopt::Marks for MarkReader {
    fn fdb_flood(&self, dev: &str) -> KResult<Vec<Ipv4Addr>> {
        self.conlink.fdb_flood(dev).map_err(net_err)
    }

    fn has_forward_table(&self) -> KResult<bool> {
        let ns = self.conlink.netns();
        Nft::open_fd(ns.as_fd(), ns.path())
            .and_then(|mut n| n.has_table())
            .map_err(nft_err)
    }

    fn marked(&self, ns: Ns<'_>) -> KResult<Vec<Marked>> {
        let owned;
        let h = match ns {
            Ns::Conlink => &self.conlink,
            Ns::Ctr(p) => {
                owned = Handle::open(&Netns::open(p).map_err(net_err)?).map_err(net_err)?;
                &owned
            }
        };
        Ok(h.marked_links(None)
            .map_err(net_err)?
            .into_iter()
            .filter_map(|l| {
                Some(Marked {
                    marker: l.owner()?.to_string(),
                    name: l.name,
                    ifindex: l.index,
                })
            })
            .collect())
    }
}
