//! The executor: carries planned operations out with `conlink-net`, and
//! owns the state that spans containers (patch ends, bridges, tunnels).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context};
use conlink_model::{BridgeMode, LinkType, NetworkConfig, TunnelType};
use conlink_model::{Ipv4Net, Route};
use conlink_net::nft::{ForwardRules, NatRule, Nft, DOCKER_IF};
use conlink_net::{Handle, LinkAttrs, LinkKind, Netns, TunnelSpec};
use conlink_runtime::Container;
use tracing::{info, warn};

use crate::daemon::Network;
use crate::plan::{late_route_ops, link_ops, ContainerPlan, InstanceLink, Op};

/// Interface group of every outer end conlink creates in its namespace, so
/// that shutdown deletes them all in one request (`ip link delete group N`):
/// the kernel then unregisters them as one batch (< 1 ms each instead of
/// ~20 ms one by one).
pub const OUTER_GROUP: u32 = 0x636c; // "cl"

/// Alias owner of what conlink creates (`conlink:OWNER`).
pub const OWNER: &str = "conlink";

/// Carries plans out.
pub struct Executor {
    /// conlink's own namespace (bridges, outer veth ends, tunnels).
    conlink: Handle,
    /// The host's root namespace, where *vlan/*vtap parents live; opened
    /// lazily (only configs with such links need it).
    host: Mutex<Option<std::sync::Arc<Handle>>>,
    host_ns: Option<std::path::PathBuf>,
    /// Outer ends present per patch bridge.
    patches: Mutex<HashMap<String, Vec<String>>>,
    /// Bridges and tunnels made at startup (names), for shutdown.
    made: Mutex<Vec<(String, BridgeMode)>>,
    /// Where tunnel devices are created (the namespace that reaches the
    /// remote host); None: conlink's own namespace (conlink in a container
    /// with its docker interface). Devices made elsewhere are moved into
    /// conlink's namespace: a tunnel keeps its underlay when moved.
    tunnel_ns: Option<std::path::PathBuf>,
    /// nftables in conlink's namespace (port forwards), opened on first use.
    nft: Mutex<Option<Nft>>,
    /// conlink's docker-provided address (on `DOCKER-ETH0`), when it has one.
    docker_addr: Option<Ipv4Net>,
}

/// Where conlink runs, as the executor needs to know it.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// The host's root namespace (parents of *vlan/*vtap links); None:
    /// `/proc/1/ns/net` (conlink in a container with `pid: host`).
    pub host_ns: Option<std::path::PathBuf>,
    /// Where tunnel devices are created (see [`Executor`]); None: conlink's
    /// own namespace.
    pub tunnel_ns: Option<std::path::PathBuf>,
}

impl Executor {
    /// Opens conlink's namespace and creates every bridge and tunnel of
    /// `cfg` there. Refuses a bridge name that already exists (never share
    /// someone else's bridge). On error removes what it made.
    pub fn init(cfg: &NetworkConfig, conlink_ns: &Netns, place: Placement) -> anyhow::Result<Self> {
        let conlink = Handle::open(conlink_ns).context("open conlink's namespace")?;
        remove_leftovers(&conlink)?;
        let docker_addr = prepare_docker_if(&conlink)?;
        if check_forwards(cfg, docker_addr)? {
            enable_forwarding(conlink_ns);
        }
        let ex = Executor {
            conlink,
            host: Mutex::new(None),
            host_ns: place.host_ns,
            patches: Mutex::new(HashMap::new()),
            made: Mutex::new(Vec::new()),
            tunnel_ns: place.tunnel_ns,
            nft: Mutex::new(None),
            docker_addr,
        };
        if let Err(e) = ex.make_bridges(cfg) {
            for e2 in ex.shutdown(&[]) {
                warn!("cleanup after failed start: {e2:#}");
            }
            return Err(e);
        }
        Ok(ex)
    }

    fn make_bridges(&self, cfg: &NetworkConfig) -> anyhow::Result<()> {
        for b in cfg.bridges.values() {
            match b.mode {
                BridgeMode::Linux => {
                    if self.conlink.link(&b.bridge)?.is_some() {
                        anyhow::bail!(
                            "bridge {}: an interface with that name already exists in conlink's namespace; refusing to share it",
                            b.bridge
                        );
                    }
                    self.conlink
                        .create_bridge(&LinkAttrs::new(&b.bridge).owner(OWNER).up())
                        .with_context(|| format!("create bridge {}", b.bridge))?;
                    info!("bridge {}: linux bridge created", b.bridge);
                }
                BridgeMode::Ovs => {
                    conlink_net::ovs::add_bridge(&b.bridge)
                        .with_context(|| format!("create ovs bridge {}", b.bridge))?;
                    info!("bridge {}: ovs bridge created", b.bridge);
                }
                BridgeMode::Patch => {
                    self.patches
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(b.bridge.clone(), Vec::new());
                    continue;
                }
            }
            self.made_push(b.bridge.clone(), b.mode);
        }
        for t in &cfg.tunnels {
            let name = t.ifname();
            let spec = TunnelSpec {
                vni: t.vni,
                remote: t.remote,
                dstport: t.udp_port(),
                underlay: None,
            };
            let kind = match t.tunnel_type {
                TunnelType::Vxlan => LinkKind::Vxlan(spec),
                TunnelType::Geneve => LinkKind::Geneve(spec),
            };
            let mode = cfg.bridges.get(&t.bridge).map(|b| b.mode);
            let mut a = LinkAttrs::new(&name).owner(OWNER).group(OUTER_GROUP);
            if mode == Some(BridgeMode::Linux) {
                a = a.master(&t.bridge);
            }
            let a = a.up();
            match &self.tunnel_ns {
                None => self.conlink.create_link(&a, &kind, None),
                Some(ns) => {
                    // Created where the underlay is, then moved (`into`).
                    let under = Handle::open(&Netns::open(ns)?)
                        .with_context(|| format!("open underlay namespace {}", ns.display()))?;
                    under.create_link(&a, &kind, Some(&self.conlink))
                }
            }
            .with_context(|| format!("create tunnel {name}"))?;
            // Not recorded in `made`: tunnels are in OUTER_GROUP, so the
            // group delete at shutdown removes them with the outer ends.
            if mode == Some(BridgeMode::Patch) {
                self.join_patch(&t.bridge, &name)?;
            }
            if mode == Some(BridgeMode::Ovs) {
                conlink_net::ovs::add_port(&t.bridge, &name)?;
            }
            if let Some(n) = &t.netem {
                self.conlink.set_netem(&name, n)?;
            }
            info!("tunnel {name} to {} on bridge {}", t.remote, t.bridge);
        }
        Ok(())
    }

    fn made_push(&self, name: String, mode: BridgeMode) {
        self.made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name, mode));
    }

    fn host(&self) -> anyhow::Result<std::sync::Arc<Handle>> {
        let mut h = self.host.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = &*h {
            return Ok(h.clone());
        }
        let path = self
            .host_ns
            .clone()
            .unwrap_or_else(|| "/proc/1/ns/net".into());
        let handle = std::sync::Arc::new(
            Handle::open(&Netns::open(&path)?)
                .with_context(|| format!("open host namespace {}", path.display()))?,
        );
        *h = Some(handle.clone());
        Ok(handle)
    }

    /// Removes everything conlink made: links inside the `remaining`
    /// containers that are not veths (dummy, *vlan/*vtap: they would outlive
    /// us there), every outer end (one batched group delete, which takes the
    /// veths' container ends with it), then bridges and tunnels. Goes on
    /// past errors and returns them all.
    pub fn shutdown(&self, remaining: &[(Container, Arc<ContainerPlan>)]) -> Vec<anyhow::Error> {
        let mut errs = Vec::new();
        for (c, plan) in remaining {
            let inner: Vec<&InstanceLink> =
                plan.links.iter().filter(|l| l.outer.is_none()).collect();
            let has_nat = plan.links.iter().any(|l| l.nat.is_some());
            if inner.is_empty() && !has_nat {
                continue;
            }
            let Ok(ctr) = Netns::open(&c.netns).and_then(|ns| Handle::open(&ns)) else {
                continue; // namespace gone: so is everything in it
            };
            for l in inner {
                errs.extend(self.teardown_link(Some(&ctr), l));
            }
            if has_nat {
                errs.extend(drop_nat_table(&ctr));
            }
        }
        if let Some(mut nft) = self.nft.lock().unwrap_or_else(|p| p.into_inner()).take() {
            if let Err(e) = nft.delete_table() {
                errs.push(anyhow!(e).context("delete nftables table"));
            }
        }
        if let Err(e) = self.conlink.delete_group(OUTER_GROUP) {
            if !e.is_no_device() {
                errs.push(anyhow!(e).context("delete outer interfaces"));
            }
        }
        let made: Vec<_> = self
            .made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for (name, mode) in made {
            let r = match mode {
                BridgeMode::Ovs => conlink_net::ovs::del_bridge(&name).map_err(anyhow::Error::from),
                _ => match self.conlink.delete_link(&name) {
                    Err(e) if e.is_no_device() => Ok(()),
                    r => r.map_err(anyhow::Error::from),
                },
            };
            if let Err(e) = r {
                errs.push(e.context(format!("delete bridge {name}")));
            }
        }
        errs
    }

    fn run_op(&self, ctr: &Handle, op: &Op) -> anyhow::Result<()> {
        match op {
            Op::CreateVeth {
                outer,
                dev,
                mac,
                mtu,
                master,
            } => {
                // The outer end is a bridge/patch port: it never carries
                // IPv6 itself, so no link-local address, DAD or router
                // solicitation (each DAD completion takes the global RTNL).
                let mut local = LinkAttrs::new(outer)
                    .owner(OWNER)
                    .group(OUTER_GROUP)
                    .no_ipv6_ll()
                    .up();
                if let Some(b) = master {
                    local = local.master(b);
                }
                let mut peer = LinkAttrs::new(dev).owner(OWNER).up();
                if let Some(m) = mtu {
                    local = local.mtu(*m);
                    peer = peer.mtu(*m);
                }
                if let Some(m) = mac {
                    peer = peer.mac(*m);
                }
                // A leftover of ours (conlink restarted while the container
                // kept running) is replaced, not an EEXIST failure: the
                // outer end in our namespace, or the container end (after a
                // SIGKILL the old namespace of conlink is destroyed
                // asynchronously, so its veths' peers can still be there
                // when the new conlink starts).
                match self.conlink.create_veth(&local, &peer, ctr) {
                    Err(e) if e.is_exists() => {
                        match self.conlink.delete_link(outer) {
                            Err(e) if e.is_no_device() => {}
                            r => r?,
                        }
                        if ctr.link(dev)?.is_some_and(|l| l.owner() == Some(OWNER)) {
                            match ctr.delete_link(dev) {
                                Err(e) if e.is_no_device() => {}
                                r => r?,
                            }
                        }
                        self.conlink.create_veth(&local, &peer, ctr)?;
                    }
                    r => r?,
                }
            }
            Op::CreateChild {
                kind,
                parent,
                dev,
                mode,
                vlanid,
                mac,
                mtu,
            } => {
                let host = self.host()?;
                let kind = child_kind(*kind, parent, mode.as_deref(), *vlanid)?;
                let mut a = LinkAttrs::new(dev).owner(OWNER);
                if let Some(m) = mtu {
                    a = a.mtu(*m);
                }
                if let Some(m) = mac {
                    a = a.mac(*m);
                }
                host.create_link(&a, &kind, Some(ctr))?;
            }
            Op::CreateDummy { dev, mac, mtu } => {
                let mut a = LinkAttrs::new(dev).owner(OWNER);
                if let Some(m) = mtu {
                    a = a.mtu(*m);
                }
                if let Some(m) = mac {
                    a = a.mac(*m);
                }
                ctr.create_link(&a, &LinkKind::Dummy, None)?;
            }
            Op::JoinOvs { outer, bridge } => conlink_net::ovs::add_port(bridge, outer)?,
            Op::JoinPatch { outer, bridge } => self.join_patch(bridge, outer)?,
            Op::Up { dev } => ctr.set_up(dev, true)?,
            Op::Ethtool { dev, setting } => ctr.apply_ethtool(dev, setting)?,
            Op::AddAddr { dev, ip } => ctr.add_addr(dev, *ip)?,
            Op::AddRoute { dev, route } => ctr.add_route(dev, route)?,
            Op::Netem { dev, netem } => ctr.set_netem(dev, netem)?,
            Op::Nat { dev, ip, nat } => {
                let mut nft = Nft::open(Some(ctr.netns().path().as_ref()))?;
                nft.apply_nat(&NatRule {
                    dev: dev.clone(),
                    ip: *ip,
                    nat: *nat,
                })?;
            }
            Op::Forward {
                outer,
                bridge,
                ip,
                dev,
                forward,
            } => self.forward(ctr, outer, bridge, *ip, dev, forward)?,
        }
        Ok(())
    }

    /// Port forwards of one container link (spec §4): DNAT of the published
    /// ports on `DOCKER-ETH0` to the container, masqueraded out of the
    /// bridge, a host route to the container in conlink's namespace and one
    /// back to conlink's docker address in the container.
    fn forward(
        &self,
        ctr: &Handle,
        outer: &str,
        bridge: &str,
        ip: std::net::Ipv4Addr,
        dev: &str,
        forward: &[conlink_model::Forward],
    ) -> anyhow::Result<()> {
        // init() refused forwards without a docker interface already.
        let docker = self
            .docker_addr
            .ok_or_else(|| anyhow!("forward needs conlink's docker interface"))?;
        let host = |a: std::net::Ipv4Addr| -> anyhow::Result<Route> {
            Ok(Route::to(conlink_model::IpNet::host(a.into())))
        };
        add_route_idem(&self.conlink, bridge, &host(ip)?)?;
        add_route_idem(ctr, dev, &host(docker.addr)?)?;
        let mut nft = self.nft.lock().unwrap_or_else(|p| p.into_inner());
        if nft.is_none() {
            *nft = Some(Nft::open(Some(self.conlink.netns().path().as_ref()))?);
        }
        if let Some(nft) = nft.as_mut() {
            nft.apply_forwards(&ForwardRules {
                key: outer.to_string(),
                docker_if: DOCKER_IF.to_string(),
                bridge: bridge.to_string(),
                ip,
                forwards: forward.to_vec(),
            })?;
        }
        Ok(())
    }

    /// Records a patch end; with both ends present, joins them both ways.
    fn join_patch(&self, bridge: &str, outer: &str) -> anyhow::Result<()> {
        let mut p = self.patches.lock().unwrap_or_else(|p| p.into_inner());
        let ends = p.entry(bridge.to_string()).or_default();
        if !ends.iter().any(|e| e == outer) {
            if ends.len() >= 2 {
                anyhow::bail!(
                    "patch {bridge}: already joins {} and {}; a patch takes two links",
                    ends[0],
                    ends[1]
                );
            }
            ends.push(outer.to_string());
        }
        if let [a, b] = ends.as_slice() {
            self.conlink
                .patch(a, b)
                .with_context(|| format!("patch {bridge}: join {a} and {b}"))?;
            info!("patch {bridge}: {a} <-> {b}");
        }
        Ok(())
    }

    fn leave_patch(&self, bridge: &str, outer: &str) {
        let mut p = self.patches.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ends) = p.get_mut(bridge) {
            ends.retain(|e| e != outer);
        }
    }

    fn setup_link(&self, ctr: &Handle, l: &InstanceLink) -> anyhow::Result<()> {
        for op in link_ops(l) {
            self.run_op(ctr, &op)?;
        }
        Ok(())
    }

    fn teardown_link(&self, ctr: Option<&Handle>, l: &InstanceLink) -> Vec<anyhow::Error> {
        let mut errs = Vec::new();
        if let Some(o) = &l.outer {
            if !l.forward.is_empty() {
                let mut nft = self.nft.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(nft) = nft.as_mut() {
                    if let Err(e) = nft.remove_forwards(&o.name) {
                        errs.push(anyhow!(e).context(format!("remove forwards of {}", o.name)));
                    }
                }
            }
            if o.mode == BridgeMode::Patch {
                self.leave_patch(&o.bridge, &o.name);
            }
            if o.mode == BridgeMode::Ovs {
                if let Err(e) = conlink_net::ovs::del_port(&o.bridge, &o.name) {
                    errs.push(anyhow!(e));
                }
            }
            // Deleting the outer end deletes the container end with it.
            match self.conlink.delete_link(&o.name) {
                Err(e) if !e.is_no_device() => errs.push(anyhow!(e)),
                _ => {}
            }
        } else if let Some(ctr) = ctr {
            match ctr.delete_link(&l.dev) {
                Err(e) if !e.is_no_device() => errs.push(anyhow!(e)),
                _ => {}
            }
        }
        errs
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

/// Deletes conlink's nftables table in a container (its `nat` rules: the
/// table holds nothing else there).
fn drop_nat_table(ctr: &Handle) -> Option<anyhow::Error> {
    Nft::open(Some(ctr.netns().path().as_ref()))
        .and_then(|mut n| n.delete_table())
        .err()
        .map(|e| anyhow!(e).context("delete nat table"))
}

/// Adds a route, accepting one that is already there (a re-setup).
fn add_route_idem(h: &Handle, dev: &str, r: &Route) -> anyhow::Result<()> {
    match h.add_route(dev, r) {
        Err(e) if e.is_exists() => Ok(()),
        r => Ok(r?),
    }
}

/// A conlink that was killed (SIGKILL, OOM) left its marked interfaces in
/// its namespace: outer ends, tunnels, bridges. They are ours, so a new
/// run removes them and starts clean (containers get their links again)
/// instead of refusing the bridges as someone else's. Outer ends and
/// tunnels go in one batched group delete; unmarked interfaces are never
/// touched, and a bridge of someone else's still stops the start.
fn remove_leftovers(conlink: &Handle) -> anyhow::Result<()> {
    let marked = conlink.marked_links(Some(OWNER))?;
    if marked.is_empty() {
        return Ok(());
    }
    conlink
        .delete_group(OUTER_GROUP)
        .context("remove leftover outer interfaces")?;
    let rest = conlink
        .delete_marked(Some(OWNER))
        .context("remove leftover bridges")?;
    info!(
        "removed {} leftover interface(s) of an earlier conlink run ({} bridge(s))",
        marked.len(),
        rest.len()
    );
    Ok(())
}

/// conlink's docker-provided interface: its `eth0` renamed `DOCKER-ETH0`
/// (keeping addresses and routes) so container links may use `eth0`.
/// Returns its IPv4 address, None when conlink has no docker interface.
fn prepare_docker_if(conlink: &Handle) -> anyhow::Result<Option<Ipv4Net>> {
    if conlink.link(DOCKER_IF)?.is_none() {
        if conlink.link("eth0")?.is_none() {
            return Ok(None);
        }
        conlink
            .rename_keeping_config("eth0", DOCKER_IF)
            .context("rename docker's eth0 to DOCKER-ETH0")?;
        info!("renamed docker interface eth0 to {DOCKER_IF}");
    }
    Ok(conlink.addrs(DOCKER_IF)?.into_iter().find_map(|a| a.v4()))
}

/// Spec §4: a forward needs a docker interface; the rest of its misuse
/// (non-veth, patch bridge, no ip) the config validation refused already.
/// Returns whether any link has forwards.
fn check_forwards(cfg: &NetworkConfig, docker: Option<Ipv4Net>) -> anyhow::Result<bool> {
    let first = cfg
        .services
        .values()
        .chain(cfg.containers.values())
        .flat_map(|g| &g.links)
        .find(|l| !l.forward.is_empty());
    match (first, docker) {
        (None, _) => Ok(false),
        (Some(_), Some(_)) => Ok(true),
        (Some(l), None) => anyhow::bail!(
            "link {} of {}: forward needs conlink attached to a docker network \
             (no {DOCKER_IF} or eth0 with an address in conlink's namespace)",
            l.dev,
            l.target.name()
        ),
    }
}

fn child_kind(
    kind: LinkType,
    parent: &str,
    mode: Option<&str>,
    vlanid: Option<u16>,
) -> anyhow::Result<LinkKind> {
    let parent = parent.to_string();
    let mv = |m: Option<&str>| m.map(str::parse).transpose();
    Ok(match kind {
        LinkType::Vlan => LinkKind::Vlan {
            parent,
            id: vlanid.ok_or_else(|| anyhow!("vlan link without vlanid"))?,
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
            mode: mode.unwrap_or("l2").parse()?,
        },
        LinkType::Ipvtap => LinkKind::Ipvtap {
            parent,
            mode: mode.unwrap_or("l2").parse()?,
        },
        LinkType::Veth | LinkType::Dummy => anyhow::bail!("{kind:?} is not a child link"),
    })
}

impl Network for Executor {
    fn setup(&self, c: &Container, plan: &ContainerPlan) -> anyhow::Result<()> {
        let ctr = Handle::open(&Netns::open(&c.netns)?)
            .with_context(|| format!("open namespace of {}", c.name))?;
        for (i, l) in plan.links.iter().enumerate() {
            if let Err(e) = self.setup_link(&ctr, l) {
                // Undo this container's links so far, then report.
                for done in &plan.links[..=i] {
                    for e2 in self.teardown_link(Some(&ctr), done) {
                        warn!("{}: undo {}: {e2:#}", c.name, done.dev);
                    }
                }
                return Err(e.context(format!("link {} of {}", l.dev, c.name)));
            }
        }
        for op in late_route_ops(plan) {
            if let Err(e) = self.run_op(&ctr, &op) {
                for done in &plan.links {
                    for e2 in self.teardown_link(Some(&ctr), done) {
                        warn!("{}: undo {}: {e2:#}", c.name, done.dev);
                    }
                }
                return Err(e.context(format!("routes of {}", c.name)));
            }
        }
        Ok(())
    }

    fn teardown(&self, c: &Container, plan: &ContainerPlan) -> Vec<anyhow::Error> {
        // The namespace may be gone already (the container died): then only
        // conlink's side is left to clean.
        let ctr = Netns::open(&c.netns)
            .ok()
            .and_then(|ns| Handle::open(&ns).ok());
        let mut errs: Vec<anyhow::Error> = plan
            .links
            .iter()
            .flat_map(|l| self.teardown_link(ctr.as_ref(), l))
            .collect();
        if let (Some(ctr), true) = (&ctr, plan.links.iter().any(|l| l.nat.is_some())) {
            errs.extend(drop_nat_table(ctr));
        }
        errs
    }
}
