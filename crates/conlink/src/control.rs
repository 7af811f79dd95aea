//! The control API's view of this daemon: [`CoreBackend`] implements
//! `conlink_control::ControlBackend` over the reconciling core (its
//! snapshot, events and overrides) and the kernel (one link dump per
//! namespace for state and counters), and [`start`] opens the listeners
//! the command line asks for.
//!
//! Runtime overrides (`link set`, `link clear`) are inputs of the core's
//! desired state: the core diffs and applies them like any config change,
//! so there is one source of truth.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use conlink_control::api::{
    BridgeStatus, ContainerState, ContainerStatus, Counters, Event, EventType, LinkState,
    LinkStatus, Problem, Status, TunnelStatus,
};
use conlink_control::server::{self, Control, Listener, Role};
use conlink_control::{ControlBackend, EventHub, Metrics, OverrideChange, Selector};
use conlink_core::desired::LinkOverride;
use conlink_core::events::{CoreEvent, LinkStatus as CoreLinkStatus};
use conlink_core::reconcile::Core;
use conlink_core::Kernel;
use conlink_model::{BridgeMode, Netem, NetworkConfig, Target};
use conlink_net::{Handle, LinkStats, Netns};
use conlink_runtime::Runtime;
use tokio::sync::{broadcast, oneshot};
use tracing::debug;

/// How long `link set|clear` waits for the core to apply an override.
const APPLY_WAIT: Duration = Duration::from_secs(10);

/// The core as the control servers see it.
pub struct CoreBackend<K: Kernel, R: Runtime> {
    core: Arc<Core<K, R>>,
    /// conlink's own namespace.
    own: Handle,
    name: String,
    hub: Arc<EventHub>,
    metrics: Metrics,
    /// The netem parameters each override laid over the config's, by
    /// (container, dev): the core only knows the result.
    netem_params: Mutex<BTreeMap<(String, String), Netem>>,
    /// Handles on container namespaces by container id: opening one enters
    /// the namespace on a fresh thread (~0.1 ms), too much per scrape for
    /// a thousand containers. Entries of gone containers are pruned.
    handles: Mutex<HashMap<String, Arc<Handle>>>,
    /// How many of the core's setup timings the setup histogram has seen.
    setups_seen: Mutex<usize>,
}

impl<K: Kernel, R: Runtime> CoreBackend<K, R> {
    /// A backend over `core`; `own` is a handle on conlink's namespace.
    pub fn new(core: Arc<Core<K, R>>, own: Handle, name: &str) -> Self {
        CoreBackend {
            core,
            own,
            name: name.to_string(),
            hub: Arc::new(EventHub::new()),
            metrics: Metrics::default(),
            netem_params: Mutex::new(BTreeMap::new()),
            handles: Mutex::new(HashMap::new()),
            setups_seen: Mutex::new(0),
        }
    }

    fn handle(&self, id: &str, netns: &std::path::Path) -> Option<Arc<Handle>> {
        let mut hs = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = hs.get(id) {
            return Some(h.clone());
        }
        match Netns::open(netns).and_then(|ns| Handle::open(&ns)) {
            Ok(h) => {
                let h = Arc::new(h);
                hs.insert(id.to_string(), h.clone());
                Some(h)
            }
            Err(e) => {
                debug!("status: open {}: {e}", netns.display());
                None
            }
        }
    }

    /// The kernel's view of the links of every container with made links
    /// (build_status reads no other): one datagram of by-name requests per
    /// namespace, the namespaces split over the cores. At 1000 containers
    /// this is most of a status or a scrape, nearly all of it in the kernel
    /// (docs/control.md, "Cost").
    fn read_containers(&self, cs: &[ContainerInput]) -> HashMap<String, Vec<LinkStats>> {
        let jobs: Vec<(&str, Arc<Handle>, Vec<&str>)> = cs
            .iter()
            .filter(|c| c.links.iter().any(|l| l.setup == Setup::Ready))
            .filter_map(|c| {
                let h = self.handle(&c.id, &c.netns)?;
                let devs = c.links.iter().map(|l| l.dev.as_str()).collect();
                Some((c.id.as_str(), h, devs))
            })
            .collect();
        let read = |part: &[(&str, Arc<Handle>, Vec<&str>)]| {
            part.iter()
                .filter_map(|(id, h, devs)| match h.link_stats_of(devs) {
                    Ok(v) => Some((id.to_string(), v)),
                    Err(e) => {
                        debug!("status: {id}: {e}");
                        None
                    }
                })
                .collect::<Vec<_>>()
        };
        // Threads pay off only past a few dozen namespaces.
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(jobs.len() / 64)
            .max(1);
        if threads == 1 {
            return read(&jobs).into_iter().collect();
        }
        let chunk = jobs.len().div_ceil(threads);
        std::thread::scope(|sc| {
            let parts: Vec<_> = jobs
                .chunks(chunk)
                .map(|p| sc.spawn(move || read(p)))
                .collect();
            parts
                .into_iter()
                .flat_map(|t| t.join().unwrap_or_default())
                .collect()
        })
    }

    fn params(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Netem>> {
        self.netem_params.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The links `sel` matches, as (container, dev) pairs.
    fn resolve(&self, sel: &Selector) -> conlink_control::Result<Vec<(String, String)>> {
        let st = self.snapshot();
        Ok(sel
            .resolve(&st)?
            .into_iter()
            .map(|l| (l.container.clone(), l.dev.clone()))
            .collect())
    }

    /// Waits (bounded) for the reconciles in `rxs`, records their latency
    /// and returns the failures of `links` the snapshot then shows.
    fn wait_applied(
        &self,
        rxs: Vec<oneshot::Receiver<()>>,
        links: &[(String, String)],
        t0: Instant,
    ) -> Vec<String> {
        let deadline = t0 + APPLY_WAIT;
        for mut rx in rxs {
            loop {
                match rx.try_recv() {
                    Err(oneshot::error::TryRecvError::Empty) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    _ => break,
                }
            }
        }
        self.metrics.reconcile.observe(t0.elapsed());
        let snap = self.core.snapshot();
        let mut out = Vec::new();
        for c in &snap.containers {
            for l in &c.links {
                if l.status == CoreLinkStatus::Failed
                    && links.iter().any(|(n, d)| n == &c.name && d == &l.dev)
                {
                    out.push(format!(
                        "{}/{}: {}",
                        c.name,
                        l.dev,
                        l.reason.clone().unwrap_or_else(|| "failed".into())
                    ));
                }
            }
        }
        out
    }
}

/// The configured netem of `ctr`'s link `dev` (service group first, then
/// the container's own group), without any override.
fn config_netem(cfg: &NetworkConfig, service: Option<&str>, ctr: &str, dev: &str) -> Option<Netem> {
    let targets = service
        .map(|s| Target::Service(s.to_string()))
        .into_iter()
        .chain([Target::Container(ctr.to_string())]);
    for t in targets {
        if let Some(g) = cfg.group(&t) {
            if let Some(l) = g.links.iter().find(|l| l.dev == dev) {
                return l.netem.clone();
            }
        }
    }
    None
}

/// Re-emits each core event into the hub, which numbers and keeps them.
/// `past` (the core's history when `rx` subscribed) goes first: events of
/// the start (bridges made before the API existed) are in the API's history
/// too. An event in both is forwarded once: such events can only be the
/// first ones `rx` yields (emitted between the subscription and the
/// history read), so `past` is checked until the first new event, then
/// dropped.
fn forward_events(
    hub: Arc<EventHub>,
    mut past: Vec<CoreEvent>,
    mut rx: broadcast::Receiver<CoreEvent>,
) {
    for ev in &past {
        emit(&hub, ev.clone());
    }
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(ev) if past.contains(&ev) => {}
                Ok(ev) => {
                    past = Vec::new();
                    emit(&hub, ev)
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("control API: {n} core event(s) lost (slow consumer)")
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

fn emit(hub: &EventHub, ev: CoreEvent) {
    use conlink_core::events::EventType as T;
    let kind = match ev.kind {
        T::Container => EventType::Container,
        T::Link => EventType::Link,
        T::Override => EventType::Override,
        T::Config => EventType::Config,
        T::Conlink => EventType::Conlink,
    };
    // The core's actions serialize to the API's lowercase words.
    let action = serde_json::to_value(ev.action)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let mut attrs = ev.actor.attributes;
    // `-f container=NAME` / `-f dev=DEV` filters work on link and override
    // events as they did before the core: the id carries both.
    if matches!(kind, EventType::Link | EventType::Override) {
        if let Some((ctr, dev)) = ev.actor.id.rsplit_once('/') {
            attrs
                .entry("container".into())
                .or_insert_with(|| ctr.to_string());
            attrs.entry("dev".into()).or_insert_with(|| dev.to_string());
        }
    }
    hub.emit_owned(kind, &action, ev.actor.id, attrs);
}

fn counters(s: &LinkStats) -> Counters {
    let c = s.counters;
    Counters {
        rx_bytes: c.rx_bytes,
        rx_packets: c.rx_packets,
        rx_dropped: c.rx_dropped,
        rx_errors: c.rx_errors,
        tx_bytes: c.tx_bytes,
        tx_packets: c.tx_packets,
        tx_dropped: c.tx_dropped,
        tx_errors: c.tx_errors,
    }
}

/// Up as a link state: administratively up and operationally up (or
/// UNKNOWN, what dummies and some tunnels report, with carrier).
fn is_up(s: &LinkStats) -> bool {
    s.admin_up && (s.oper_state == "UP" || (s.oper_state == "UNKNOWN" && s.carrier != Some(false)))
}

fn mode_str(m: BridgeMode) -> &'static str {
    match m {
        BridgeMode::Linux => "linux",
        BridgeMode::Ovs => "ovs",
        BridgeMode::Patch => "patch",
    }
}

fn target_str(t: &Target) -> String {
    match t {
        Target::Service(s) => format!("service {s}"),
        Target::Container(c) => format!("container {c}"),
    }
}

/// Where one link (or a container's links) stands in the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setup {
    /// Not made (yet).
    Pending,
    /// Made as desired.
    Ready,
    /// The last attempt failed, with the reason.
    Failed(String),
}

/// One link as the daemon knows it, before the kernel is read: what any
/// daemon (this one, the reconciling core) hands to [`build_status`].
#[derive(Debug, Clone)]
pub struct LinkInput {
    /// Interface name in the container.
    pub dev: String,
    /// Link type (`veth`…).
    pub kind: String,
    /// veth: outer end name, bridge, bridge mode.
    pub outer: Option<(String, String, BridgeMode)>,
    /// Addresses (CIDR).
    pub addresses: Vec<String>,
    /// netem from the config.
    pub netem_config: Option<conlink_model::Netem>,
    /// netem override (the parameters laid over the config's).
    pub netem_override: Option<conlink_model::Netem>,
    /// Held down by an override.
    pub admin_down: bool,
    /// State in the daemon.
    pub setup: Setup,
}

/// One container as the daemon knows it.
#[derive(Debug, Clone)]
pub struct ContainerInput {
    /// Engine id (also the key of cached namespace handles).
    pub id: String,
    /// Name.
    pub name: String,
    /// Compose service.
    pub service: Option<String>,
    /// Replica number.
    pub replica: u32,
    /// Its network namespace.
    pub netns: PathBuf,
    /// Its links.
    pub links: Vec<LinkInput>,
}

/// Builds the status from what the daemon knows (`containers`, `missing`:
/// configured targets without a container) and the kernel: `own` is the
/// link dump of conlink's namespace, `inner` dumps a container's.
pub fn build_status(
    name: &str,
    cfg: &NetworkConfig,
    converged: bool,
    containers: &[ContainerInput],
    missing: &[Target],
    own: &[LinkStats],
    inner: &dyn Fn(&ContainerInput) -> Option<Vec<LinkStats>>,
) -> Status {
    let own_by_name: HashMap<&str, &LinkStats> = own.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut st = Status {
        name: name.to_string(),
        converged,
        ..Default::default()
    };
    for t in missing {
        st.pending.push(Problem {
            what: target_str(t),
            reason: "no running container seen yet".into(),
        });
    }
    for c in containers {
        let failed = c.links.iter().find_map(|l| match &l.setup {
            Setup::Failed(r) => Some(r.clone()),
            _ => None,
        });
        let pending = c.links.iter().any(|l| l.setup == Setup::Pending);
        let (state, reason) = match (&failed, pending) {
            (Some(r), _) => (ContainerState::Failed, Some(r.clone())),
            (None, true) => (
                ContainerState::Pending,
                Some("links being set up".to_string()),
            ),
            (None, false) => (ContainerState::Ready, None),
        };
        match state {
            ContainerState::Pending => st.pending.push(Problem {
                what: c.name.clone(),
                reason: "links being set up".into(),
            }),
            ContainerState::Failed => st.failed.push(Problem {
                what: c.name.clone(),
                reason: reason.clone().unwrap_or_default(),
            }),
            ContainerState::Ready => {}
        }
        st.containers.push(ContainerStatus {
            id: c.id.clone(),
            name: c.name.clone(),
            service: c.service.clone(),
            replica: c.replica,
            state,
            reason,
        });
        // Only namespaces with made links are read (a pending container's
        // namespace may not be there yet).
        let kernel = if c.links.iter().any(|l| l.setup == Setup::Ready) {
            inner(c)
        } else {
            None
        };
        for l in &c.links {
            let inner_s = kernel
                .as_ref()
                .and_then(|k| k.iter().find(|s| s.name == l.dev));
            let outer_s = l
                .outer
                .as_ref()
                .and_then(|o| own_by_name.get(o.0.as_str()).copied());
            let (lstate, lreason) = match &l.setup {
                Setup::Pending => (LinkState::Pending, None),
                Setup::Failed(r) => (LinkState::Failed, Some(r.clone())),
                Setup::Ready => match (inner_s, l.outer.is_some(), outer_s) {
                    (None, _, _) => (
                        LinkState::Missing,
                        Some(format!("{} not found in the container's namespace", l.dev)),
                    ),
                    (Some(_), true, None) => (
                        LinkState::Missing,
                        Some("outer end not found in conlink's namespace".into()),
                    ),
                    (Some(i), _, o) => {
                        if is_up(i) && o.is_none_or(is_up) {
                            (LinkState::Up, None)
                        } else {
                            (LinkState::Down, None)
                        }
                    }
                },
            };
            if lstate == LinkState::Missing {
                st.failed.push(Problem {
                    what: format!("{}/{}", c.name, l.dev),
                    reason: lreason.clone().unwrap_or_default(),
                });
            }
            let in_force = match (&l.netem_config, &l.netem_override) {
                (base, Some(o)) => Some(conlink_control::overlay_netem(base.as_ref(), o)),
                (base, None) => base.clone(),
            };
            st.links.push(LinkStatus {
                container: c.name.clone(),
                service: c.service.clone(),
                replica: c.replica,
                dev: l.dev.clone(),
                kind: l.kind.clone(),
                outer: l.outer.as_ref().map(|o| o.0.clone()),
                bridge: l.outer.as_ref().map(|o| o.1.clone()),
                bridge_mode: l.outer.as_ref().map(|o| mode_str(o.2).to_string()),
                state: lstate,
                admin_up: inner_s.map(|s| s.admin_up),
                oper_state: inner_s.map(|s| s.oper_state.clone()),
                outer_admin_up: outer_s.map(|s| s.admin_up),
                outer_oper_state: outer_s.map(|s| s.oper_state.clone()),
                addresses: l.addresses.clone(),
                mac: inner_s.and_then(|s| s.mac).map(|m| m.to_string()),
                mtu: inner_s.map(|s| s.mtu),
                netem_config: l.netem_config.as_ref().map(|n| n.to_string()),
                netem_override: l.netem_override.as_ref().map(|n| n.to_string()),
                netem: in_force.map(|n| n.to_string()),
                admin_down_override: l.admin_down,
                flap: None,
                counters: inner_s.map(counters),
                reason: lreason,
            });
        }
    }
    for b in cfg.bridges.values() {
        let dev = own_by_name.get(b.bridge.as_str());
        let mut ports: Vec<String> = match (b.mode, dev) {
            (BridgeMode::Linux, Some(d)) => own
                .iter()
                .filter(|s| s.master == Some(d.index))
                .map(|s| s.name.clone())
                .collect(),
            // OVS and patch ports are not kernel bridge ports: list what
            // conlink attached (outer ends present, tunnels).
            _ => st
                .links
                .iter()
                .filter(|l| l.bridge.as_deref() == Some(b.bridge.as_str()))
                .filter_map(|l| l.outer.clone())
                .filter(|o| own_by_name.contains_key(o.as_str()))
                .chain(
                    cfg.tunnels
                        .iter()
                        .filter(|t| t.bridge == b.bridge)
                        .map(|t| t.ifname()),
                )
                .collect(),
        };
        ports.sort();
        st.bridges.push(BridgeStatus {
            name: b.bridge.clone(),
            mode: mode_str(b.mode).into(),
            ports,
            admin_up: match b.mode {
                BridgeMode::Patch => None,
                _ => dev.map(|d| d.admin_up),
            },
        });
    }
    for t in &cfg.tunnels {
        let n = t.ifname();
        st.tunnels.push(TunnelStatus {
            kind: match t.tunnel_type {
                conlink_model::TunnelType::Vxlan => "vxlan",
                conlink_model::TunnelType::Geneve => "geneve",
            }
            .into(),
            vni: t.vni,
            remote: t.remote.to_string(),
            bridge: t.bridge.clone(),
            oper_state: own_by_name.get(n.as_str()).map(|s| s.oper_state.clone()),
            name: n,
        });
    }
    st
}

impl<K: Kernel, R: Runtime> ControlBackend for CoreBackend<K, R> {
    fn snapshot(&self) -> Status {
        let snap = self.core.snapshot();
        let inputs = self.core.inputs();
        let cfg = &inputs.cfg;
        {
            let mut hs = self.handles.lock().unwrap_or_else(|p| p.into_inner());
            hs.retain(|id, _| snap.containers.iter().any(|c| &c.id == id));
        }
        let params = self.params().clone();
        let mut cs: Vec<ContainerInput> = snap
            .containers
            .iter()
            .map(|c| ContainerInput {
                id: c.id.clone(),
                name: c.name.clone(),
                service: c.service.clone(),
                replica: c.replica,
                netns: c
                    .links
                    .first()
                    .map(|l| PathBuf::from(&l.netns))
                    .unwrap_or_default(),
                links: c
                    .links
                    .iter()
                    .map(|l| {
                        let key = (c.name.clone(), l.dev.clone());
                        let o = inputs.overrides.get(&key);
                        LinkInput {
                            dev: l.dev.clone(),
                            kind: l.desired.id.kind.as_str().to_string(),
                            outer: l
                                .desired
                                .id
                                .outer
                                .as_ref()
                                .map(|o| (o.name.clone(), o.bridge.clone(), o.mode)),
                            addresses: l.desired.addrs.iter().map(|a| a.to_string()).collect(),
                            netem_config: config_netem(cfg, c.service.as_deref(), &c.name, &l.dev),
                            netem_override: o
                                .and_then(|o| o.netem.as_ref())
                                .and_then(|_| params.get(&key).cloned()),
                            admin_down: o.is_some_and(|o| o.admin_down),
                            setup: match l.status {
                                CoreLinkStatus::Pending => Setup::Pending,
                                CoreLinkStatus::Ready => Setup::Ready,
                                CoreLinkStatus::Failed => Setup::Failed(
                                    l.reason.clone().unwrap_or_else(|| "setup failed".into()),
                                ),
                            },
                        }
                    })
                    .collect(),
            })
            .collect();
        // The core makes a container's links all or nothing: when one
        // failed, the others not made are failed too (nothing retries them
        // before the next change), as the old daemon showed them.
        for c in &mut cs {
            let failed = c.links.iter().find_map(|l| match &l.setup {
                Setup::Failed(r) => Some(format!("{}: {r}", l.dev)),
                _ => None,
            });
            if let Some(why) = failed {
                for l in &mut c.links {
                    if l.setup == Setup::Pending {
                        l.setup = Setup::Failed(format!("not made: {why}"));
                    }
                }
            }
        }
        // Configured targets without a container yet.
        let mut missing = Vec::new();
        for (s, g) in &cfg.services {
            if !g.links.is_empty() && !cs.iter().any(|c| c.service.as_deref() == Some(s)) {
                missing.push(Target::Service(s.clone()));
            }
        }
        for (n, g) in &cfg.containers {
            if !g.links.is_empty() && !cs.iter().any(|c| &c.name == n) {
                missing.push(Target::Container(n.clone()));
            }
        }
        // conlink's own namespace (one dump of every outer end, bridge and
        // tunnel) is read while the containers' namespaces are.
        let (own, kernel) = std::thread::scope(|sc| {
            let own = sc.spawn(|| self.own.link_stats());
            let kernel = self.read_containers(&cs);
            let own = match own.join() {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    debug!("status: conlink's namespace: {e}");
                    vec![]
                }
                Err(_) => vec![],
            };
            (own, kernel)
        });
        let mut st = build_status(&self.name, cfg, snap.converged, &cs, &missing, &own, &|c| {
            kernel.get(c.id.as_str()).cloned()
        });
        // Multi-host: the mesh tunnels (not in the config), their remotes
        // the peers they flood to (or the one peer of a per-peer device).
        for (name, t) in snap.tunnels.iter().filter(|(_, t)| t.is_mesh()) {
            let peers: Vec<String> = match t.remote {
                Some(r) if !t.floods() => vec![r.to_string()],
                _ => t.flood.iter().map(|p| p.to_string()).collect(),
            };
            st.tunnels.push(TunnelStatus {
                name: name.clone(),
                kind: match t.kind {
                    conlink_model::TunnelType::Vxlan => "vxlan".into(),
                    conlink_model::TunnelType::Geneve => "geneve".into(),
                },
                vni: t.vni,
                remote: peers.join(","),
                bridge: t.bridge.clone(),
                oper_state: own
                    .iter()
                    .find(|s| &s.name == name)
                    .map(|s| s.oper_state.clone()),
            });
        }
        st
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.hub.subscribe()
    }

    fn history(&self, since: Option<SystemTime>) -> Vec<Event> {
        self.hub.history(since)
    }

    fn set_override(
        &self,
        sel: &Selector,
        c: &OverrideChange,
    ) -> conlink_control::Result<Vec<String>> {
        let links = self.resolve(sel)?;
        let t0 = Instant::now();
        let inputs = self.core.inputs();
        let snap = self.core.snapshot();
        let service = |ctr: &str| {
            snap.containers
                .iter()
                .find(|x| x.name == ctr)
                .and_then(|x| x.service.clone())
        };
        // What each link had, to put back when the kernel refuses.
        let mut before = Vec::new();
        let mut rxs = Vec::new();
        for (ctr, dev) in &links {
            let old = self.core.override_of(ctr, dev);
            let old_params = self.params().get(&(ctr.clone(), dev.clone())).cloned();
            before.push((ctr.clone(), dev.clone(), old.clone(), old_params.clone()));
            let mut admin_down = old.as_ref().is_some_and(|o| o.admin_down);
            if let Some(d) = c.admin_down {
                admin_down = d;
            }
            let mut params = if c.reset_netem { None } else { old_params };
            if let Some(n) = &c.netem {
                params = Some(match params {
                    Some(p) => conlink_control::overlay_netem(Some(&p), n),
                    None => n.clone(),
                });
            }
            let base = config_netem(&inputs.cfg, service(ctr).as_deref(), ctr, dev);
            let netem = params
                .as_ref()
                .map(|p| conlink_control::overlay_netem(base.as_ref(), p));
            {
                let mut ps = self.params();
                match &params {
                    Some(p) => ps.insert((ctr.clone(), dev.clone()), p.clone()),
                    None => ps.remove(&(ctr.clone(), dev.clone())),
                };
            }
            if !admin_down && netem.is_none() {
                if let Some(rx) = self.core.clear_override(ctr, dev) {
                    rxs.push(rx);
                }
            } else {
                rxs.push(
                    self.core
                        .set_override(ctr, dev, LinkOverride { admin_down, netem }),
                );
            }
        }
        let failed = self.wait_applied(rxs, &links, t0);
        if !failed.is_empty() {
            self.metrics.error("override");
            // Back to what was there: nothing changes when a request fails.
            let mut rxs = Vec::new();
            for (ctr, dev, old, old_params) in before {
                {
                    let mut ps = self.params();
                    match old_params {
                        Some(p) => ps.insert((ctr.clone(), dev.clone()), p),
                        None => ps.remove(&(ctr.clone(), dev.clone())),
                    };
                }
                match old {
                    Some(o) => rxs.push(self.core.set_override(&ctr, &dev, o)),
                    None => rxs.extend(self.core.clear_override(&ctr, &dev)),
                }
            }
            self.wait_applied(rxs, &links, Instant::now());
            return Err(conlink_control::Error::Apply(format!(
                "{}; the override was not kept",
                failed.join("; ")
            )));
        }
        Ok(links.into_iter().map(|(c, d)| format!("{c}/{d}")).collect())
    }

    fn clear_override(&self, sel: &Selector) -> conlink_control::Result<Vec<String>> {
        let links = self.resolve(sel)?;
        let t0 = Instant::now();
        let mut rxs = Vec::new();
        for (ctr, dev) in &links {
            self.params().remove(&(ctr.clone(), dev.clone()));
            rxs.extend(self.core.clear_override(ctr, dev));
        }
        let failed = self.wait_applied(rxs, &links, t0);
        if !failed.is_empty() {
            self.metrics.error("override");
            return Err(conlink_control::Error::Apply(failed.join("; ")));
        }
        Ok(links.into_iter().map(|(c, d)| format!("{c}/{d}")).collect())
    }

    fn graph_html(&self) -> String {
        conlink_graph::render(&self.core.inputs().cfg, conlink_graph::Format::Html)
    }

    fn metrics(&self) -> &Metrics {
        // The core keeps every container's (start event -> links ready)
        // time; the histogram takes the ones it has not seen yet, at scrape
        // time, so the setup path pays nothing for metrics.
        let mut seen = self.setups_seen.lock().unwrap_or_else(|p| p.into_inner());
        let (new, next) = self.core.timings().samples_since(*seen);
        for (took, _) in &new {
            self.metrics.setup.observe(*took);
        }
        *seen = next;
        &self.metrics
    }

    fn event_counts(&self) -> BTreeMap<(EventType, String), u64> {
        self.hub.counts()
    }

    fn running_state(&self) -> serde_json::Value {
        serde_json::to_value(self.core.running_state()).unwrap_or_default()
    }
}

/// Which control listeners to open.
#[derive(Debug, Clone, Default)]
pub struct ControlOptions {
    /// Unix socket path; None: `/run/conlink/NAME.sock`; `off` disables.
    pub socket: Option<PathBuf>,
    /// TCP API address.
    pub api_addr: Option<String>,
    /// Bearer token file for the TCP API.
    pub api_token_file: Option<PathBuf>,
    /// Prometheus endpoint address.
    pub metrics_addr: Option<String>,
    /// Live page address.
    pub web_addr: Option<String>,
}

impl ControlOptions {
    /// Refuses a TCP API without a readable, non-empty token file.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(addr) = &self.api_addr {
            match &self.api_token_file {
                Some(f) => {
                    read_token(f)?;
                }
                None => anyhow::bail!(
                    "--api-addr {addr} needs --api-token-file: conlink never serves its API on TCP without a token"
                ),
            }
        }
        Ok(())
    }
}

/// Reads a token file: its content without surrounding whitespace; empty
/// is an error.
pub fn read_token(path: &std::path::Path) -> anyhow::Result<String> {
    let t = std::fs::read_to_string(path)
        .with_context(|| format!("read API token file {}", path.display()))?;
    let t = t.trim().to_string();
    if t.is_empty() {
        anyhow::bail!("API token file {} is empty", path.display());
    }
    Ok(t)
}

/// Opens the listeners of `opts` for `core` (`own`: a handle on conlink's
/// namespace). Errors (a socket in use, a TCP API without token) stop the
/// start: the user asked for them.
pub async fn start<K: Kernel, R: Runtime>(
    core: Arc<Core<K, R>>,
    own: Handle,
    name: &str,
    opts: &ControlOptions,
) -> anyhow::Result<Vec<Listener>> {
    let backend = CoreBackend::new(core.clone(), own, name);
    // Subscribed before anything else happens, so no event is missed.
    let rx = core.subscribe();
    forward_events(backend.hub.clone(), core.history(), rx);
    let ctl = Control::new(Arc::new(backend));
    let mut out = Vec::new();
    let path = match &opts.socket {
        Some(p) if p.as_os_str() == "off" => None,
        Some(p) => Some(p.clone()),
        None => Some(server::socket_path(
            std::path::Path::new(server::SOCKET_DIR),
            name,
        )),
    };
    match path {
        // Asked for explicitly: failing is an error.
        Some(p) if opts.socket.is_some() => out.push(server::serve_unix(&p, ctl.clone())?),
        // The default: a read-only /run (compose `read_only: true`) or a
        // second conlink with the same name must not stop the links.
        Some(p) => match server::serve_unix(&p, ctl.clone()) {
            Ok(l) => out.push(l),
            Err(e) => {
                tracing::warn!("no control API socket: {e} (set --socket PATH or --socket off)")
            }
        },
        None => {}
    }
    if let Some(addr) = &opts.api_addr {
        let token = match &opts.api_token_file {
            Some(f) => Some(read_token(f)?),
            None => anyhow::bail!(
                "--api-addr {addr} needs --api-token-file: conlink never serves its API on TCP without a token"
            ),
        };
        out.push(server::serve_tcp(addr, Role::Api { token }, ctl.clone()).await?);
    }
    if let Some(addr) = &opts.metrics_addr {
        out.push(server::serve_tcp(addr, Role::Metrics, ctl.clone()).await?);
    }
    if let Some(addr) = &opts.web_addr {
        out.push(server::serve_tcp(addr, Role::Web, ctl.clone()).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(index: u32, name: &str, up: bool, oper: &str, master: Option<u32>) -> LinkStats {
        LinkStats {
            index,
            name: name.into(),
            alias: None,
            admin_up: up,
            oper_state: oper.into(),
            carrier: Some(oper == "UP"),
            mtu: 1500,
            mac: None,
            master,
            link: None,
            kind: Some("veth".into()),
            counters: Default::default(),
        }
    }

    fn link(dev: &str, outer: &str, setup: Setup) -> LinkInput {
        LinkInput {
            dev: dev.into(),
            kind: "veth".into(),
            outer: Some((outer.into(), "s1".into(), BridgeMode::Linux)),
            addresses: vec!["10.0.0.1/24".into()],
            netem_config: Some("delay 10ms loss 2%".parse().unwrap()),
            netem_override: None,
            admin_down: false,
            setup,
        }
    }

    #[test]
    fn states_from_daemon_and_kernel() {
        let mut cfg = NetworkConfig::default();
        cfg.bridges.insert(
            "s1".into(),
            conlink_model::Bridge {
                bridge: "s1".into(),
                mode: BridgeMode::Linux,
                vni: None,
            },
        );
        let mut over = link("eth1", "a-eth1", Setup::Ready);
        over.netem_override = Some("loss 5%".parse().unwrap());
        over.admin_down = true;
        let cs = vec![
            ContainerInput {
                id: "1".into(),
                name: "a".into(),
                service: None,
                replica: 1,
                netns: "/x".into(),
                links: vec![
                    link("eth0", "a-eth0", Setup::Ready),
                    over,
                    link("eth2", "a-eth2", Setup::Ready),
                ],
            },
            ContainerInput {
                id: "2".into(),
                name: "b".into(),
                service: Some("svc".into()),
                replica: 2,
                netns: "/y".into(),
                links: vec![link("eth0", "b-eth0", Setup::Failed("boom".into()))],
            },
        ];
        let own = vec![
            ls(1, "s1", true, "UP", None),
            ls(2, "a-eth0", true, "UP", Some(1)),
            ls(3, "a-eth1", false, "DOWN", Some(1)),
            ls(4, "a-eth2", true, "UP", Some(1)),
        ];
        let inner = |c: &ContainerInput| {
            assert_eq!(c.name, "a", "a failed container's namespace is not read");
            Some(vec![
                ls(2, "eth0", true, "UP", None),
                ls(3, "eth1", false, "DOWN", None),
            ])
        };
        let st = build_status(
            "lab",
            &cfg,
            false,
            &cs,
            &[Target::Service("web".into())],
            &own,
            &inner,
        );
        let states: Vec<LinkState> = st.links.iter().map(|l| l.state).collect();
        assert_eq!(
            states,
            [
                LinkState::Up,
                LinkState::Down,
                LinkState::Missing,
                LinkState::Failed
            ]
        );
        assert_eq!(st.links[1].netem.as_deref(), Some("delay 10ms loss 5%"));
        assert_eq!(st.links[1].netem_override.as_deref(), Some("loss 5%"));
        assert!(st.links[1].admin_down_override);
        assert_eq!(st.links[3].reason.as_deref(), Some("boom"));
        assert_eq!(st.containers[1].state, ContainerState::Failed);
        assert_eq!(st.pending[0].what, "service web");
        let failed: Vec<&str> = st.failed.iter().map(|p| p.what.as_str()).collect();
        assert_eq!(failed, ["a/eth2", "b"]);
        assert_eq!(st.bridges[0].ports, ["a-eth0", "a-eth1", "a-eth2"]);
    }
}
