//! Carrying operations out on a [`Kernel`] and recording each success into
//! the actual state. A failed step is undone by diffing the partial actual
//! state back to what it was before, and applying that: the same diff as
//! everything else.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::Mutex;

use conlink_model::{BridgeMode, LinkType, Route};
use tracing::warn;

use crate::diff::{diff_container, globals_post, globals_pre, record_container, record_global, Op};
use crate::kernel::{Change, ErrorKind, KResult, Kernel, KernelError, Ns};
use crate::state::{CtrState, Globals, TunnelState};

/// An operation that failed (after its container was put back).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op}: {err}")]
pub struct ApplyError {
    /// The operation, as logged (`node_1/eth0: address 10.0.0.1/24 added`).
    pub op: String,
    /// The interface it was about, if any.
    pub dev: Option<String>,
    /// Why.
    pub err: KernelError,
}

/// The marker of a link: `conlink link NAME DEV ID12 HASH` (alias
/// `conlink:conlink link …`): container name, interface, the first 12
/// characters of the container id, the hash of the link spec. IFALIASZ is
/// 256; container names are far shorter in practice, interface names 15.
pub fn link_marker(ctr: &crate::state::CtrRef, dev: &str, hash: &str) -> String {
    let id12: String = ctr.id.chars().take(12).collect();
    format!("conlink link {} {dev} {id12} {hash}", ctr.name)
}

/// The marker of a bridge.
pub const BRIDGE_MARKER: &str = "conlink bridge";

/// The marker on the loopback of a network namespace conlink created
/// (its own on a host, the netns runtime's containers): a conlink
/// restarted after a SIGKILL finds it and still removes the namespace at
/// exit. It dies with the namespace, so it can never claim someone
/// else's namespace that reuses the name.
pub const NETNS_MARKER: &str = "conlink netns";

/// The marker of a tunnel.
pub fn tunnel_marker(hash: &str) -> String {
    format!("conlink tunnel {hash}")
}

/// Applies operations; owns the cross-container bookkeeping the kernel
/// needs (which outer ends a patch bridge has).
pub struct Applier<K: Kernel> {
    kernel: K,
    patches: Mutex<HashMap<String, PatchEnds>>,
    /// Linux bridge -> its multi-host tunnels (one, or one per peer; see
    /// `forget_moved`).
    mesh_ports: Mutex<HashMap<String, BTreeSet<String>>>,
}

/// One patch bridge's ends on this host.
#[derive(Debug, Default)]
struct PatchEnds {
    /// Outer veth ends and configured tunnels, in arrival order (two at
    /// most).
    ends: Vec<String>,
    /// The multi-host tunnel of this patch: the fallback end, patched to
    /// the one local end while the other end is on another host.
    tunnel: Option<String>,
    /// What is patched in the kernel now.
    paired: Option<(String, String)>,
}

impl PatchEnds {
    fn want(&self) -> Option<(String, String)> {
        crate::mesh::patch_pair(&self.ends, self.tunnel.as_deref())
            .map(|(a, b)| (a.to_string(), b.to_string()))
    }

    fn present(&self, dev: &str) -> bool {
        self.ends.iter().any(|e| e == dev) || self.tunnel.as_deref() == Some(dev)
    }
}

fn host32(a: Ipv4Addr) -> Route {
    Route::to(conlink_model::IpNet::host(a.into()))
}

/// Accepts "already gone" (removals) or "already there" (idempotent adds).
fn ok_if(r: KResult<()>, kind: ErrorKind) -> KResult<()> {
    match r {
        Err(e) if e.kind == kind => Ok(()),
        r => r,
    }
}

fn dev_of(op: &Op) -> Option<String> {
    use Op::*;
    match op {
        CreateLink { dev, .. }
        | DeleteLink { dev, .. }
        | SetMtu { dev, .. }
        | SetMac { dev, .. }
        | AddAddr { dev, .. }
        | DelAddr { dev, .. }
        | AddRoute { dev, .. }
        | DelRoute { dev, .. }
        | SetNetem { dev, .. }
        | SetEthtool { dev, .. }
        | SetUp { dev, .. }
        | SetNat { dev, .. }
        | SetForward { dev, .. }
        | Mark { dev, .. } => Some(dev.clone()),
        _ => None,
    }
}

/// Whether `op` is a link-level change that goes to the kernel together
/// with its neighbours ([`Kernel::batch`]).
fn batchable(op: &Op) -> bool {
    matches!(
        op,
        Op::SetUp { .. }
            | Op::SetMtu { .. }
            | Op::SetMac { .. }
            | Op::AddAddr { .. }
            | Op::DelAddr { .. }
            | Op::AddRoute { .. }
            | Op::DelRoute { .. }
            | Op::Mark { .. }
    )
}

/// The kernel changes of a batchable op, in order: a veth's outer end
/// first where the op covers both ends. `marker`: a `Mark`'s text.
fn changes<'a>(op: &'a Op, marker: &'a str) -> Vec<(Ns<'a>, Change<'a>)> {
    let both = |ctr: &'a crate::state::CtrRef,
                outer: &'a Option<String>,
                c: &dyn Fn(&'a str) -> Change<'a>,
                dev: &'a str| {
        let mut v: Vec<(Ns<'a>, Change<'a>)> = outer.iter().map(|o| (Ns::Conlink, c(o))).collect();
        v.push((Ns::Ctr(&ctr.netns), c(dev)));
        v
    };
    match op {
        Op::SetUp {
            ctr,
            dev,
            outer,
            up,
        } => both(ctr, outer, &|d| Change::Up(d, *up), dev),
        Op::SetMtu {
            ctr,
            dev,
            outer,
            to,
            ..
        } => both(ctr, outer, &|d| Change::Mtu(d, *to), dev),
        // A veth's two ends carry the same marker.
        Op::Mark {
            ctr, dev, outer, ..
        } => both(ctr, outer, &|d| Change::Mark(d, marker), dev),
        Op::SetMac { ctr, dev, to, .. } => vec![(Ns::Ctr(&ctr.netns), Change::Mac(dev, *to))],
        Op::AddAddr { ctr, dev, addr } => {
            vec![(Ns::Ctr(&ctr.netns), Change::AddAddr(dev, *addr))]
        }
        Op::DelAddr { ctr, dev, addr } => {
            vec![(Ns::Ctr(&ctr.netns), Change::DelAddr(dev, *addr))]
        }
        Op::AddRoute { ctr, dev, route } => {
            vec![(Ns::Ctr(&ctr.netns), Change::AddRoute(dev, route))]
        }
        Op::DelRoute { ctr, dev, route } => {
            vec![(Ns::Ctr(&ctr.netns), Change::DelRoute(dev, route))]
        }
        _ => Vec::new(),
    }
}

/// A batchable op's verdict from its changes': the first refusal, where
/// removals accept what is already gone (a dead container's namespace
/// takes its links with it) and adds what is already there.
fn verdict(op: &Op, rs: Vec<KResult<()>>) -> KResult<()> {
    let accept = match op {
        Op::AddAddr { .. } | Op::AddRoute { .. } => Some(ErrorKind::Exists),
        Op::DelAddr { .. } | Op::DelRoute { .. } => Some(ErrorKind::Gone),
        _ => None,
    };
    for r in rs {
        match accept {
            Some(k) => ok_if(r, k)?,
            None => r?,
        }
    }
    Ok(())
}

impl<K: Kernel> Applier<K> {
    /// Carries a run of batchable ops out together (each namespace's
    /// changes in one datagram): one verdict per op, every op tried.
    fn apply_run(&self, ops: &[&Op]) -> Vec<KResult<()>> {
        let markers: Vec<String> = ops
            .iter()
            .map(|op| match op {
                Op::Mark { ctr, dev, hash, .. } => link_marker(ctr, dev, hash),
                _ => String::new(),
            })
            .collect();
        let per: Vec<Vec<(Ns<'_>, Change<'_>)>> = ops
            .iter()
            .zip(&markers)
            .map(|(op, m)| changes(op, m))
            .collect();
        let flat: Vec<(Ns<'_>, Change<'_>)> = per.iter().flatten().copied().collect();
        let mut rs = self.kernel.batch(&flat).into_iter();
        ops.iter()
            .zip(&per)
            .map(|(op, cs)| verdict(op, rs.by_ref().take(cs.len()).collect()))
            .collect()
    }

    /// An applier over `kernel`.
    pub fn new(kernel: K) -> Self {
        Applier {
            kernel,
            patches: Mutex::new(HashMap::new()),
            mesh_ports: Mutex::new(HashMap::new()),
        }
    }

    /// The kernel.
    pub fn kernel(&self) -> &K {
        &self.kernel
    }

    /// Carries one operation out. Removals accept what is already gone
    /// (a dead container's namespace takes its links with it).
    pub fn apply_one(&self, op: &Op) -> KResult<()> {
        let k = &self.kernel;
        match op {
            // Link-level changes: the same path alone as in a run.
            Op::SetUp { .. }
            | Op::SetMtu { .. }
            | Op::SetMac { .. }
            | Op::AddAddr { .. }
            | Op::DelAddr { .. }
            | Op::AddRoute { .. }
            | Op::DelRoute { .. }
            | Op::Mark { .. } => self.apply_run(&[op]).pop().unwrap_or(Ok(())),
            Op::CreateBridge { name, mode } => {
                if *mode == BridgeMode::Patch {
                    self.patches().entry(name.clone()).or_default();
                    return Ok(());
                }
                k.create_bridge(name, *mode, BRIDGE_MARKER)
            }
            Op::DeleteBridge { name, mode } => {
                if *mode == BridgeMode::Patch {
                    self.patches().remove(name);
                }
                ok_if(k.delete_bridge(name, *mode), ErrorKind::Gone)
            }
            Op::CreateTunnel { name, spec } => {
                k.create_tunnel(name, spec, &tunnel_marker(&hash_json(&spec.device())))?;
                self.note_mesh_port(name, spec, true);
                if spec.mode == BridgeMode::Patch {
                    let joined = if spec.is_mesh() {
                        self.set_patch_tunnel(&spec.bridge, Some(name))
                    } else {
                        self.join_patch(&spec.bridge, name)
                    };
                    if let Err(e) = joined {
                        if spec.is_mesh() {
                            let _ = self.set_patch_tunnel(&spec.bridge, None);
                        } else {
                            self.leave_patch(&spec.bridge, name);
                        }
                        let _ = k.delete_link(Ns::Conlink, name);
                        return Err(e);
                    }
                }
                Ok(())
            }
            Op::AddFlood { name, remote } => ok_if(k.fdb_append(name, *remote), ErrorKind::Exists),
            Op::DelFlood { name, remote } => ok_if(k.fdb_del(name, *remote), ErrorKind::Gone),
            Op::DeleteTunnel { name, spec } => {
                self.note_mesh_port(name, spec, false);
                if spec.mode == BridgeMode::Patch {
                    if spec.is_mesh() {
                        if let Err(e) = self.set_patch_tunnel(&spec.bridge, None) {
                            warn!("patch {}: {e}", spec.bridge);
                        }
                    } else {
                        self.leave_patch(&spec.bridge, name);
                    }
                }
                if spec.mode == BridgeMode::Ovs {
                    ok_if(k.detach_ovs(&spec.bridge, name), ErrorKind::Gone).ok();
                }
                ok_if(k.delete_link(Ns::Conlink, name), ErrorKind::Gone)
            }
            Op::SetTunnelNetem { name, to, .. } => {
                let r = k.set_netem(Ns::Conlink, name, to.as_ref());
                if to.is_none() {
                    ok_if(r, ErrorKind::Gone)
                } else {
                    r
                }
            }
            Op::EnableForwarding => {
                k.enable_forwarding();
                Ok(())
            }
            Op::ForgetForwarding => Ok(()),
            Op::DropForwardTable => ok_if(k.drop_forward_table(), ErrorKind::Gone),
            Op::CreateLink {
                ctr,
                dev,
                link,
                hash,
            } => {
                let marker = link_marker(ctr, dev, hash);
                let (mac, mtu, ipv6) = (link.mac, link.mtu, !link.id.no_ipv6);
                match (&link.id.kind, &link.id.outer) {
                    (LinkType::Veth, Some(o)) => {
                        k.create_veth(&ctr.netns, &o.name, dev, mac, mtu, ipv6, &marker)?;
                        let joined = match o.mode {
                            BridgeMode::Patch => self.join_patch(&o.bridge, &o.name),
                            m => k.attach(&o.name, &o.bridge, m),
                        };
                        // Both ends come up in the link's `SetUp` (a made
                        // link is recorded down), or stay down with an
                        // admin-down override.
                        if joined.is_ok() {
                            self.forget_moved(&o.bridge, mac);
                        }
                        if let Err(e) = joined {
                            // The op is all or nothing: the half-made veth
                            // goes the way every link goes.
                            let del = Op::DeleteLink {
                                ctr: ctr.clone(),
                                dev: dev.clone(),
                                link: link.clone(),
                            };
                            let _ = self.apply_one(&del);
                            return Err(e);
                        }
                        Ok(())
                    }
                    (LinkType::Veth, None) => Err(KernelError::new(
                        ErrorKind::Other,
                        "veth link without an outer end",
                    )),
                    (LinkType::Dummy, _) => {
                        k.create_dummy(&ctr.netns, dev, mac, mtu, ipv6, &marker)
                    }
                    _ => k.create_child(&ctr.netns, dev, &link.id, mac, mtu, &marker),
                }
            }
            Op::DeleteLink { ctr, dev, link } => match &link.id.outer {
                Some(o) => {
                    match o.mode {
                        BridgeMode::Patch => self.leave_patch(&o.bridge, &o.name),
                        BridgeMode::Ovs => {
                            ok_if(k.detach_ovs(&o.bridge, &o.name), ErrorKind::Gone).ok();
                        }
                        BridgeMode::Linux => {}
                    }
                    // Deleting the outer end deletes the container end.
                    ok_if(k.delete_link(Ns::Conlink, &o.name), ErrorKind::Gone)
                }
                None => ok_if(k.delete_link(Ns::Ctr(&ctr.netns), dev), ErrorKind::Gone),
            },
            Op::SetNetem { ctr, dev, to, .. } => {
                let r = k.set_netem(Ns::Ctr(&ctr.netns), dev, to.as_ref());
                if to.is_none() {
                    ok_if(r, ErrorKind::Gone)
                } else {
                    r
                }
            }
            Op::SetEthtool { ctr, dev, to, .. } => {
                for s in to {
                    k.ethtool(Ns::Ctr(&ctr.netns), dev, s)?;
                }
                Ok(())
            }
            Op::SetNat { ctr, dev, from, to } => {
                if from.is_some() {
                    ok_if(k.del_nat(&ctr.netns, dev), ErrorKind::Gone)?;
                }
                if let Some((ip, nat)) = to {
                    k.set_nat(&ctr.netns, dev, *ip, *nat)?;
                }
                Ok(())
            }
            Op::DropNatTable { ctr } => ok_if(k.drop_nat_table(&ctr.netns), ErrorKind::Gone),
            Op::SetForward { ctr, dev, from, to } => {
                let docker = k.docker_addr();
                if let Some(f) = from {
                    ok_if(k.del_forwards(&f.outer), ErrorKind::Gone)?;
                    // An adopted placeholder knows only the rules' key.
                    let known = !f.bridge.is_empty();
                    if known {
                        ok_if(
                            k.del_route(Ns::Conlink, &f.bridge, &host32(f.ip)),
                            ErrorKind::Gone,
                        )?;
                    }
                    if let (Some(d), true) = (docker, known) {
                        ok_if(
                            k.del_route(Ns::Ctr(&ctr.netns), dev, &host32(d.addr)),
                            ErrorKind::Gone,
                        )?;
                    }
                }
                if let Some(f) = to {
                    let d = docker.ok_or_else(|| {
                        KernelError::new(
                            ErrorKind::Other,
                            "forward needs conlink attached to a docker network \
                             (no DOCKER-ETH0 or eth0 with an address in conlink's namespace)",
                        )
                    })?;
                    ok_if(
                        k.add_route(Ns::Conlink, &f.bridge, &host32(f.ip)),
                        ErrorKind::Exists,
                    )?;
                    let rest = ok_if(
                        k.add_route(Ns::Ctr(&ctr.netns), dev, &host32(d.addr)),
                        ErrorKind::Exists,
                    )
                    .and_then(|()| k.set_forwards(&f.outer, &f.bridge, f.ip, &f.forwards));
                    if let Err(e) = rest {
                        // A failed op is not recorded, so no rollback would
                        // know of its first steps: undo them here (the
                        // bridge's /32 route leaked otherwise, issue 12).
                        let _ = k.del_route(Ns::Ctr(&ctr.netns), dev, &host32(d.addr));
                        let _ = k.del_route(Ns::Conlink, &f.bridge, &host32(f.ip));
                        return Err(e);
                    }
                }
                Ok(())
            }
            // Commands run through the runtime (the reconciler does it).
            Op::RunCommand { .. } | Op::ForgetCommands { .. } => Ok(()),
            Op::ForgetContainer { ctr } => {
                k.forget_ns(&ctr.netns);
                Ok(())
            }
        }
    }

    fn patches(&self) -> std::sync::MutexGuard<'_, HashMap<String, PatchEnds>> {
        self.patches.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a patch end; brings the kernel in line with the pairing.
    fn join_patch(&self, bridge: &str, port: &str) -> KResult<()> {
        {
            let mut p = self.patches();
            let pe = p.entry(bridge.to_string()).or_default();
            if !pe.ends.iter().any(|e| e == port) {
                if pe.ends.len() >= 2 {
                    return Err(KernelError::new(
                        ErrorKind::Other,
                        format!(
                            "patch {bridge}: already joins {} and {}; a patch takes two links",
                            pe.ends[0], pe.ends[1]
                        ),
                    ));
                }
                pe.ends.push(port.to_string());
            }
        }
        // A join always (re)applies the pair: re-running is how an end
        // that came back gets its redirect again.
        self.repair(bridge, true)
    }

    fn leave_patch(&self, bridge: &str, port: &str) {
        if let Some(pe) = self.patches().get_mut(bridge) {
            pe.ends.retain(|e| e != port);
        }
        if let Err(e) = self.repair(bridge, false) {
            warn!("patch {bridge}: {e}");
        }
    }

    /// Sets (or clears) the mesh tunnel of a patch.
    fn set_patch_tunnel(&self, bridge: &str, tunnel: Option<&str>) -> KResult<()> {
        self.patches().entry(bridge.to_string()).or_default().tunnel = tunnel.map(String::from);
        self.repair(bridge, tunnel.is_some())
    }

    /// Makes the kernel's pairing of `bridge` what its ends want: the two
    /// local ends with each other, else the one local end with the mesh
    /// tunnel. An end that leaves the pair but stays (the tunnel when the
    /// far end arrives here) loses its redirect; the new pair is patched.
    fn repair(&self, bridge: &str, force: bool) -> KResult<()> {
        let (want, stale) = {
            let mut p = self.patches();
            let Some(pe) = p.get_mut(bridge) else {
                return Ok(());
            };
            let want = pe.want();
            if want == pe.paired && !force {
                return Ok(());
            }
            let old = pe.paired.take();
            let stale: Vec<String> = old
                .iter()
                .flat_map(|(a, b)| [a.clone(), b.clone()])
                .filter(|d| pe.present(d) && !want.as_ref().is_some_and(|(a, b)| a == d || b == d))
                .collect();
            (want, stale)
        };
        for d in &stale {
            ok_if(self.kernel.unpatch(d), ErrorKind::Gone).map_err(|e| {
                KernelError::new(e.kind, format!("patch {bridge}: release {d}: {e}"))
            })?;
        }
        if let Some((a, b)) = &want {
            self.kernel.patch(a, b).map_err(|e| {
                KernelError::new(e.kind, format!("patch {bridge}: join {a} and {b}: {e}"))
            })?;
        }
        if let Some(pe) = self.patches().get_mut(bridge) {
            pe.paired = want;
        }
        Ok(())
    }

    /// Registers adopted patch ends (after a restart) without touching the
    /// kernel: their mirred actions are still in place.
    pub fn adopt_patch_end(&self, bridge: &str, port: &str) {
        let mut p = self.patches();
        let pe = p.entry(bridge.to_string()).or_default();
        if !pe.ends.iter().any(|e| e == port) {
            pe.ends.push(port.to_string());
        }
        pe.paired = pe.want();
    }

    fn note_mesh_port(&self, name: &str, spec: &TunnelState, present: bool) {
        if !spec.is_mesh() || spec.mode != BridgeMode::Linux {
            return;
        }
        let mut m = self.mesh_ports.lock().unwrap_or_else(|p| p.into_inner());
        if present {
            m.entry(spec.bridge.clone())
                .or_default()
                .insert(name.to_string());
        } else if let Some(ports) = m.get_mut(&spec.bridge) {
            ports.remove(name);
            if ports.is_empty() {
                m.remove(&spec.bridge);
            }
        }
    }

    /// A station that moved between hosts: a task rescheduled here keeps
    /// its slot's MAC, and until the entry ages out (300 s) the bridge
    /// would send its frames back into the tunnel, where it was learned
    /// before. When a link with a fixed MAC joins a stretched bridge, what
    /// was learned for that MAC on the tunnel is forgotten (best effort:
    /// learning fixes it too, once the station sends).
    fn forget_moved(&self, bridge: &str, mac: Option<conlink_model::MacAddr>) {
        let Some(mac) = mac else { return };
        let ports = self
            .mesh_ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(bridge)
            .cloned()
            .unwrap_or_default();
        for port in ports {
            if let Err(e) = self.kernel.fdb_forget(&port, mac) {
                warn!("bridge {bridge}: forget {mac} on {port}: {e}");
            }
        }
    }

    /// Registers an adopted tunnel (after a restart) without touching the
    /// kernel: a patch's tunnel is one of its ends again.
    pub fn adopt_tunnel(&self, name: &str, spec: &TunnelState) {
        self.note_mesh_port(name, spec, true);
        if spec.mode != BridgeMode::Patch {
            return;
        }
        if spec.is_mesh() {
            let mut p = self.patches();
            let pe = p.entry(spec.bridge.clone()).or_default();
            pe.tunnel = Some(name.to_string());
            pe.paired = pe.want();
        } else {
            self.adopt_patch_end(&spec.bridge, name);
        }
    }

    /// Applies one container's operations in order, recording each success
    /// into `actual`. On a failure, puts the container back where it was
    /// (`diff(partial, before)`, best effort) and returns the error.
    /// `RunCommand` operations are recorded, not run (the caller runs them).
    pub fn apply_container(
        &self,
        actual: &mut Option<CtrState>,
        ops: &[Op],
    ) -> Result<(), ApplyError> {
        let before = actual.clone();
        let mut i = 0;
        while i < ops.len() {
            // A run of link-level changes goes to the kernel together; the
            // markers (last) in a run of their own, sent only once all that
            // they vouch for is done.
            let mut j = i + 1;
            if batchable(&ops[i]) {
                let mark = matches!(ops[i], Op::Mark { .. });
                while j < ops.len()
                    && batchable(&ops[j])
                    && matches!(ops[j], Op::Mark { .. }) == mark
                {
                    j += 1;
                }
            }
            let run: Vec<&Op> = ops[i..j].iter().collect();
            let verdicts = if run.len() == 1 {
                vec![self.apply_one(run[0])]
            } else {
                self.apply_run(&run)
            };
            // Every change of a run was tried: what succeeded is recorded,
            // so that the undo below sees it.
            let mut failed = None;
            for (op, v) in run.into_iter().zip(verdicts) {
                match v {
                    Ok(()) => *actual = record_container(actual.take(), op),
                    Err(e) => {
                        failed.get_or_insert((op, e));
                    }
                }
            }
            if let Some((op, err)) = failed {
                self.undo_container(actual, &before, op);
                return Err(ApplyError {
                    op: op.to_string(),
                    dev: dev_of(op),
                    err,
                });
            }
            i = j;
        }
        Ok(())
    }

    /// Puts a container whose `failed` operation was refused back where it
    /// was (`diff(partial, before)`, best effort): the same instance's
    /// previous state; a new instance (its predecessor already removed)
    /// goes back to nothing.
    fn undo_container(
        &self,
        actual: &mut Option<CtrState>,
        before: &Option<CtrState>,
        failed: &Op,
    ) {
        let back = match (before, failed.ctr()) {
            (Some(b), Some(c)) if b.ctr == *c => Some(b.clone()),
            _ => None,
        };
        for u in diff_container(actual.as_ref(), back.as_ref()) {
            if matches!(u, Op::RunCommand { .. }) {
                continue;
            }
            match self.apply_one(&u) {
                Ok(()) => *actual = record_container(actual.take(), &u),
                Err(e) => warn!("undo {u}: {e}"),
            }
        }
    }

    /// Applies global operations in order, recording successes; on a
    /// failure puts the globals back (`diff(partial, before)`).
    pub fn apply_globals(&self, actual: &mut Globals, ops: &[Op]) -> Result<(), ApplyError> {
        let before = actual.clone();
        for op in ops {
            match self.apply_one(op) {
                Ok(()) => record_global(actual, op),
                Err(err) => {
                    let mut undo = globals_pre(actual, &before);
                    undo.extend(globals_post(actual, &before));
                    for u in undo {
                        match self.apply_one(&u) {
                            Ok(()) => record_global(actual, &u),
                            Err(e) => warn!("undo {u}: {e}"),
                        }
                    }
                    return Err(ApplyError {
                        op: op.to_string(),
                        dev: None,
                        err,
                    });
                }
            }
        }
        Ok(())
    }
}

/// FNV-1a of a value's JSON form (markers).
pub fn hash_json<T: serde::Serialize>(v: &T) -> String {
    let json = serde_json::to_string(v).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in json.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}
