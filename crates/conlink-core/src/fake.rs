//! An in-memory [`Kernel`] for unit tests: namespaces holding interfaces
//! with their properties, nftables tables, a failure switch. It follows
//! the kernel's rules that matter to conlink (a veth dies with its peer,
//! routes die with their device or when it goes down, names are unique per
//! namespace, indexes are never reused), so that tests can compare what a
//! sequence of changes leaves with what a fresh start makes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Mutex;

use conlink_model::{BridgeMode, EthtoolSetting, Forward, IpNet, Ipv4Net, MacAddr, Netem, Route};

use crate::kernel::{ErrorKind, KResult, Kernel, KernelError, Marked, Ns};
use crate::state::{LinkIdentity, TunnelState};

/// The namespace key of conlink's own namespace in [`World`].
pub const CONLINK: &str = "conlink";

/// One interface.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FakeLink {
    /// Interface index (unique for the world's lifetime).
    pub ifindex: u32,
    /// Kind (`veth`, `bridge`, `vxlan`…).
    pub kind: String,
    /// veth: (namespace, name) of the peer.
    pub peer: Option<(String, String)>,
    /// Bridge it is a port of (linux or ovs).
    pub master: Option<String>,
    /// Patched back to back with this interface.
    pub patched: Option<String>,
    /// MTU (1500 by default).
    pub mtu: u32,
    /// MAC, when set.
    pub mac: Option<MacAddr>,
    /// Up.
    pub up: bool,
    /// Addresses.
    pub addrs: BTreeSet<IpNet>,
    /// Routes (canonical text).
    pub routes: BTreeSet<String>,
    /// Root qdisc netem (canonical text).
    pub netem: Option<String>,
    /// Last value of each ethtool feature set.
    pub features: BTreeMap<String, bool>,
    /// Marker (alias after `conlink:`).
    pub marker: String,
    /// Mesh tunnels: the all-zeros FDB entries' destinations.
    pub flood: BTreeSet<Ipv4Addr>,
    /// Tunnels: the remote (none for a flooding mesh tunnel).
    pub remote: Option<Ipv4Addr>,
    /// Bridge port isolation (per-peer mesh tunnels).
    pub isolated: bool,
}

/// conlink's forward rules: key -> (bridge, ip, forwards).
pub type FwdTable = BTreeMap<String, (String, Ipv4Addr, Vec<Forward>)>;

/// Everything the fake kernel holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct World {
    /// Interfaces by namespace (conlink's is [`CONLINK`]; containers by
    /// namespace path) and name.
    pub ns: BTreeMap<String, BTreeMap<String, FakeLink>>,
    /// NAT tables by container namespace: dev -> (ip, nat).
    pub nat: BTreeMap<String, BTreeMap<String, (Ipv4Addr, Ipv4Addr)>>,
    /// conlink's forward table (None: no table): key -> (bridge, ip, forwards).
    pub fwd: Option<FwdTable>,
    /// IPv4 forwarding on.
    pub forwarding: bool,
    /// Next interface index.
    pub next_index: u32,
}

impl World {
    /// The world with every interface index set to 0: equal worlds then
    /// mean equal configuration regardless of how they came about.
    pub fn without_indexes(&self) -> World {
        let mut w = self.clone();
        w.next_index = 0;
        for links in w.ns.values_mut() {
            for l in links.values_mut() {
                l.ifindex = 0;
            }
        }
        w
    }
}

/// The fake kernel.
pub struct FakeKernel {
    world: Mutex<World>,
    fail: Mutex<Vec<String>>,
    docker: Option<Ipv4Net>,
    /// Every call made, as text (tests count them).
    pub calls: Mutex<Vec<String>>,
}

fn err(kind: ErrorKind, msg: impl Into<String>) -> KernelError {
    KernelError::new(kind, msg)
}

fn key(ns: Ns<'_>) -> String {
    match ns {
        Ns::Conlink => CONLINK.into(),
        Ns::Ctr(p) => p.display().to_string(),
    }
}

impl FakeKernel {
    /// A fake kernel with conlink's namespace and the docker address
    /// 172.17.0.2/16 (so forwards work).
    pub fn new() -> Self {
        let mut w = World {
            next_index: 2,
            ..Default::default()
        };
        w.ns.insert(CONLINK.into(), BTreeMap::new());
        FakeKernel {
            world: Mutex::new(w),
            fail: Mutex::new(Vec::new()),
            docker: "172.17.0.2/16".parse().ok(),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// A fake kernel that starts from `w`: what a conlink restarted after
    /// a SIGKILL finds (the system as the killed run left it).
    pub fn with_world(w: World) -> Self {
        let k = FakeKernel::new();
        *k.w() = w;
        k
    }

    /// Adds a container namespace.
    pub fn add_ns(&self, path: &Path) {
        self.w().ns.entry(path.display().to_string()).or_default();
    }

    /// Destroys a container namespace (the container died): its
    /// interfaces go, veth peers in other namespaces with them.
    pub fn remove_ns(&self, path: &Path) {
        let mut w = self.w();
        let k = path.display().to_string();
        if let Some(links) = w.ns.remove(&k) {
            for l in links.values() {
                if let Some((pns, pname)) = &l.peer {
                    if let Some(m) = w.ns.get_mut(pns) {
                        m.remove(pname);
                    }
                }
            }
        }
        w.nat.remove(&k);
    }

    /// Makes every later call whose text contains `what` fail.
    pub fn fail_on(&self, what: &str) {
        self.fail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(what.to_string());
    }

    /// Stops failing.
    pub fn heal(&self) {
        self.fail.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// A copy of the world.
    pub fn world(&self) -> World {
        self.w().clone()
    }

    fn w(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn call(&self, text: String) -> KResult<()> {
        let fails = self
            .fail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|f| text.contains(f.as_str()));
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(text.clone());
        if fails {
            return Err(err(ErrorKind::Other, format!("{text}: injected failure")));
        }
        Ok(())
    }

    fn with_link<T>(
        &self,
        ns: Ns<'_>,
        dev: &str,
        f: impl FnOnce(&mut FakeLink) -> KResult<T>,
    ) -> KResult<T> {
        let mut w = self.w();
        let links =
            w.ns.get_mut(&key(ns))
                .ok_or_else(|| err(ErrorKind::Gone, format!("namespace {} gone", key(ns))))?;
        let l = links
            .get_mut(dev)
            .ok_or_else(|| err(ErrorKind::Gone, format!("{dev}: no such device")))?;
        f(l)
    }

    fn insert(&self, ns: &str, name: &str, mut l: FakeLink) -> KResult<u32> {
        let mut w = self.w();
        let idx = w.next_index;
        let links =
            w.ns.get_mut(ns)
                .ok_or_else(|| err(ErrorKind::Gone, format!("namespace {ns} gone")))?;
        if links.contains_key(name) {
            return Err(err(ErrorKind::Exists, format!("{name}: exists")));
        }
        l.ifindex = idx;
        links.insert(name.to_string(), l);
        w.next_index += 1;
        Ok(idx)
    }
}

impl Default for FakeKernel {
    fn default() -> Self {
        Self::new()
    }
}

fn link(kind: &str, mac: Option<MacAddr>, mtu: Option<u32>, marker: &str) -> FakeLink {
    FakeLink {
        ifindex: 0,
        kind: kind.into(),
        peer: None,
        master: None,
        patched: None,
        mtu: mtu.unwrap_or(1500),
        mac,
        up: false,
        addrs: BTreeSet::new(),
        routes: BTreeSet::new(),
        netem: None,
        features: BTreeMap::new(),
        marker: marker.into(),
        flood: BTreeSet::new(),
        remote: None,
        isolated: false,
    }
}

impl Kernel for FakeKernel {
    fn create_bridge(&self, name: &str, mode: BridgeMode, marker: &str) -> KResult<()> {
        self.call(format!("create_bridge {name}"))?;
        let kind = match mode {
            BridgeMode::Ovs => "openvswitch",
            _ => "bridge",
        };
        let mut l = link(kind, None, None, marker);
        l.up = true;
        self.insert(CONLINK, name, l).map(|_| ())
    }

    fn delete_bridge(&self, name: &str, _mode: BridgeMode) -> KResult<()> {
        self.delete_link(Ns::Conlink, name)
    }

    fn create_tunnel(&self, name: &str, spec: &TunnelState, marker: &str) -> KResult<()> {
        self.call(format!("create_tunnel {name}"))?;
        let kind = match spec.kind {
            conlink_model::TunnelType::Vxlan => "vxlan",
            conlink_model::TunnelType::Geneve => "geneve",
        };
        let mut l = link(kind, None, spec.mtu, marker);
        l.up = true;
        l.remote = spec.remote;
        l.isolated = spec.isolated();
        if spec.mode != BridgeMode::Patch {
            l.master = Some(spec.bridge.clone());
        }
        self.insert(CONLINK, name, l).map(|_| ())
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
        self.call(format!(
            "create_veth {} {outer} {dev}{}",
            ctr.display(),
            if ipv6 { "" } else { " no-ipv6" }
        ))?;
        let cns = ctr.display().to_string();
        if !self.w().ns.contains_key(&cns) {
            return Err(err(ErrorKind::Gone, format!("namespace {cns} gone")));
        }
        let mut o = link("veth", None, mtu, marker);
        o.peer = Some((cns.clone(), dev.to_string()));
        let mut i = link("veth", mac, mtu, marker);
        i.peer = Some((CONLINK.into(), outer.to_string()));
        {
            let w = self.w();
            if w.ns[&cns].contains_key(dev) || w.ns[CONLINK].contains_key(outer) {
                return Err(err(ErrorKind::Exists, format!("{outer}/{dev}: exists")));
            }
        }
        self.insert(CONLINK, outer, o)?;
        self.insert(&cns, dev, i).map(|_| ())
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
        self.call(format!("create_child {} {dev}", ctr.display()))?;
        self.insert(
            &ctr.display().to_string(),
            dev,
            link(id.kind.as_str(), mac, mtu, marker),
        )
        .map(|_| ())
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
        self.call(format!(
            "create_dummy {} {dev}{}",
            ctr.display(),
            if ipv6 { "" } else { " no-ipv6" }
        ))?;
        self.insert(
            &ctr.display().to_string(),
            dev,
            link("dummy", mac, mtu, marker),
        )
        .map(|_| ())
    }

    fn attach(&self, port: &str, bridge: &str, _mode: BridgeMode) -> KResult<()> {
        self.call(format!("attach {port} {bridge}"))?;
        if !self.w().ns[CONLINK].contains_key(bridge) {
            return Err(err(
                ErrorKind::Gone,
                format!("bridge {bridge}: no such device"),
            ));
        }
        self.with_link(Ns::Conlink, port, |l| {
            l.master = Some(bridge.into());
            Ok(())
        })
    }

    fn detach_ovs(&self, _bridge: &str, port: &str) -> KResult<()> {
        self.call(format!("detach_ovs {port}"))?;
        self.with_link(Ns::Conlink, port, |l| {
            l.master = None;
            Ok(())
        })
    }

    fn patch(&self, a: &str, b: &str) -> KResult<()> {
        self.call(format!("patch {a} {b}"))?;
        self.with_link(Ns::Conlink, a, |l| {
            l.patched = Some(b.into());
            Ok(())
        })?;
        self.with_link(Ns::Conlink, b, |l| {
            l.patched = Some(a.into());
            Ok(())
        })
    }

    fn unpatch(&self, dev: &str) -> KResult<()> {
        self.call(format!("unpatch {dev}"))?;
        self.with_link(Ns::Conlink, dev, |l| {
            l.patched = None;
            Ok(())
        })
    }

    fn fdb_append(&self, dev: &str, remote: Ipv4Addr) -> KResult<()> {
        self.call(format!("fdb_append {dev} {remote}"))?;
        self.with_link(Ns::Conlink, dev, |l| {
            l.flood.insert(remote);
            Ok(())
        })
    }

    fn fdb_del(&self, dev: &str, remote: Ipv4Addr) -> KResult<()> {
        self.call(format!("fdb_del {dev} {remote}"))?;
        self.with_link(Ns::Conlink, dev, |l| {
            l.flood.remove(&remote);
            Ok(())
        })
    }

    fn fdb_forget(&self, port: &str, mac: MacAddr) -> KResult<()> {
        // Nothing is learned in the model; the call is recorded.
        self.call(format!("fdb_forget {port} {mac}"))
    }

    fn fdb_flood(&self, dev: &str) -> KResult<Vec<Ipv4Addr>> {
        self.call(format!("fdb_flood {dev}"))?;
        self.with_link(Ns::Conlink, dev, |l| Ok(l.flood.iter().copied().collect()))
    }

    fn delete_link(&self, ns: Ns<'_>, name: &str) -> KResult<()> {
        self.call(format!("delete_link {} {name}", key(ns)))?;
        let mut w = self.w();
        let k = key(ns);
        let links =
            w.ns.get_mut(&k)
                .ok_or_else(|| err(ErrorKind::Gone, format!("namespace {k} gone")))?;
        let l = links
            .remove(name)
            .ok_or_else(|| err(ErrorKind::Gone, format!("{name}: no such device")))?;
        // Ports of a deleted bridge leave it; a patch partner loses its
        // redirect target (its own filter stays, pointing nowhere).
        for other in links.values_mut() {
            if other.master.as_deref() == Some(name) {
                other.master = None;
            }
        }
        // Routes on a deleted device go with it (conlink's namespace).
        if let Some((pns, pname)) = l.peer {
            if let Some(m) = w.ns.get_mut(&pns) {
                m.remove(&pname);
            }
        }
        Ok(())
    }

    fn delete_outer_group(&self) -> KResult<()> {
        self.call("delete_outer_group".into())?;
        let names: Vec<String> = self.w().ns[CONLINK]
            .iter()
            .filter(|(_, l)| l.kind == "veth" || l.kind == "vxlan")
            .map(|(n, _)| n.clone())
            .collect();
        for n in names {
            let _ = self.delete_link(Ns::Conlink, &n);
        }
        Ok(())
    }

    fn set_up(&self, ns: Ns<'_>, dev: &str, up: bool) -> KResult<()> {
        self.call(format!("set_up {} {dev} {up}", key(ns)))?;
        self.with_link(ns, dev, |l| {
            l.up = up;
            if !up {
                // The kernel flushes a device's routes when it goes down.
                l.routes.clear();
            }
            Ok(())
        })
    }

    fn set_mtu(&self, ns: Ns<'_>, dev: &str, mtu: u32) -> KResult<()> {
        self.call(format!("set_mtu {} {dev} {mtu}", key(ns)))?;
        self.with_link(ns, dev, |l| {
            l.mtu = mtu;
            Ok(())
        })
    }

    fn set_mac(&self, ns: Ns<'_>, dev: &str, mac: MacAddr) -> KResult<()> {
        self.call(format!("set_mac {} {dev} {mac}", key(ns)))?;
        self.with_link(ns, dev, |l| {
            l.mac = Some(mac);
            Ok(())
        })
    }

    fn set_marker(&self, ns: Ns<'_>, dev: &str, marker: &str) -> KResult<()> {
        self.call(format!("set_marker {} {dev}", key(ns)))?;
        self.with_link(ns, dev, |l| {
            l.marker = marker.into();
            Ok(())
        })
    }

    fn add_addr(&self, ns: Ns<'_>, dev: &str, addr: IpNet) -> KResult<()> {
        self.call(format!("add_addr {} {dev} {addr}", key(ns)))?;
        self.with_link(ns, dev, |l| {
            if !l.addrs.insert(addr) {
                return Err(err(ErrorKind::Exists, format!("{addr}: exists")));
            }
            Ok(())
        })
    }

    fn del_addr(&self, ns: Ns<'_>, dev: &str, addr: IpNet) -> KResult<()> {
        self.call(format!("del_addr {} {dev} {addr}", key(ns)))?;
        self.with_link(ns, dev, |l| {
            if !l.addrs.remove(&addr) {
                return Err(err(ErrorKind::Gone, format!("{addr}: not there")));
            }
            Ok(())
        })
    }

    fn add_route(&self, ns: Ns<'_>, dev: &str, r: &Route) -> KResult<()> {
        self.call(format!("add_route {} {dev} {r}", key(ns)))?;
        self.with_link(ns, dev, |l| {
            if !l.routes.insert(r.to_string()) {
                return Err(err(ErrorKind::Exists, format!("route {r}: exists")));
            }
            Ok(())
        })
    }

    fn del_route(&self, ns: Ns<'_>, dev: &str, r: &Route) -> KResult<()> {
        self.call(format!("del_route {} {dev} {r}", key(ns)))?;
        self.with_link(ns, dev, |l| {
            if !l.routes.remove(&r.to_string()) {
                return Err(err(ErrorKind::Gone, format!("route {r}: not there")));
            }
            Ok(())
        })
    }

    fn set_netem(&self, ns: Ns<'_>, dev: &str, netem: Option<&Netem>) -> KResult<()> {
        self.call(format!(
            "set_netem {} {dev} {}",
            key(ns),
            netem.map(|n| n.to_string()).unwrap_or_default()
        ))?;
        self.with_link(ns, dev, |l| {
            l.netem = netem.map(|n| n.to_string());
            Ok(())
        })
    }

    fn ethtool(&self, ns: Ns<'_>, dev: &str, s: &EthtoolSetting) -> KResult<()> {
        self.call(format!("ethtool {} {dev} {s}", key(ns)))?;
        self.with_link(ns, dev, |l| {
            match s {
                EthtoolSetting::Features(pairs) => {
                    for (f, on) in pairs {
                        l.features.insert(f.clone(), *on);
                    }
                }
                other => {
                    // Rings, channels, link modes: the last value set.
                    l.features.insert(other.to_string(), true);
                }
            }
            Ok(())
        })
    }

    fn set_nat(&self, ctr: &Path, dev: &str, ip: Ipv4Addr, nat: Ipv4Addr) -> KResult<()> {
        self.call(format!("set_nat {} {dev}", ctr.display()))?;
        let mut w = self.w();
        let k = ctr.display().to_string();
        if !w.ns.contains_key(&k) {
            return Err(err(ErrorKind::Gone, "namespace gone"));
        }
        w.nat.entry(k).or_default().insert(dev.into(), (ip, nat));
        Ok(())
    }

    fn del_nat(&self, ctr: &Path, dev: &str) -> KResult<()> {
        self.call(format!("del_nat {} {dev}", ctr.display()))?;
        let mut w = self.w();
        match w.nat.get_mut(&ctr.display().to_string()) {
            Some(t) => {
                t.remove(dev);
                Ok(())
            }
            None => Err(err(ErrorKind::Gone, "no nat table")),
        }
    }

    fn drop_nat_table(&self, ctr: &Path) -> KResult<()> {
        self.call(format!("drop_nat_table {}", ctr.display()))?;
        let mut w = self.w();
        let k = ctr.display().to_string();
        if !w.ns.contains_key(&k) {
            return Err(err(ErrorKind::Gone, "namespace gone"));
        }
        w.nat.remove(&k);
        Ok(())
    }

    fn set_forwards(&self, key: &str, bridge: &str, ip: Ipv4Addr, fwd: &[Forward]) -> KResult<()> {
        self.call(format!("set_forwards {key}"))?;
        self.w()
            .fwd
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), (bridge.into(), ip, fwd.to_vec()));
        Ok(())
    }

    fn del_forwards(&self, key: &str) -> KResult<()> {
        self.call(format!("del_forwards {key}"))?;
        if let Some(t) = self.w().fwd.as_mut() {
            t.remove(key);
        }
        Ok(())
    }

    fn drop_forward_table(&self) -> KResult<()> {
        self.call("drop_forward_table".into())?;
        self.w().fwd = None;
        Ok(())
    }

    fn has_forward_table(&self) -> KResult<bool> {
        Ok(self.w().fwd.is_some())
    }

    fn enable_forwarding(&self) {
        self.w().forwarding = true;
    }

    fn docker_addr(&self) -> Option<Ipv4Net> {
        self.docker
    }

    fn marked(&self, ns: Ns<'_>) -> KResult<Vec<Marked>> {
        let w = self.w();
        let links =
            w.ns.get(&key(ns))
                .ok_or_else(|| err(ErrorKind::Gone, "namespace gone"))?;
        Ok(links
            .iter()
            .filter(|(_, l)| !l.marker.is_empty())
            .map(|(n, l)| Marked {
                name: n.clone(),
                ifindex: l.ifindex,
                marker: l.marker.clone(),
            })
            .collect())
    }
}
