//! Running the daemon: a runtime, conlink's namespace, the core, the
//! config watcher, and the orderly shutdown on SIGINT/SIGTERM that leaves
//! nothing behind. One path for both runtimes: they differ only in how
//! conlink's namespace is found and which [`Runtime`] feeds the core.

use std::collections::{BTreeSet, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use conlink_core::adopt;
use conlink_core::apply::Applier;
use conlink_core::mesh::{self, Mesh, MeshOptions};
use conlink_core::net::{NetKernel, Placement};
use conlink_core::reconcile::Core;
use conlink_core::Inputs;
use conlink_model::NetworkConfig;
use conlink_net::{Change, Netns};
use conlink_runtime::docker::{DockerRuntime, Engines};
use conlink_runtime::netns::NetnsRuntime;
use conlink_runtime::Runtime;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::watch::ConfigWatch;

/// Which engine conlink watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// docker and/or podman through their API sockets.
    Docker,
    /// Named network namespaces play the containers.
    Netns,
}

/// Loads (and validates) the config again: the error text is the usual
/// `FILE: /path: problem` lines.
pub type Loader = Arc<dyn Fn() -> Result<NetworkConfig, String> + Send + Sync>;

/// What the daemon needs besides the config.
#[derive(Clone)]
pub struct RunOptions {
    /// Which runtime.
    pub runtime: RuntimeKind,
    /// netns runtime: replicas per service (default 1).
    pub scale: Vec<(String, u32)>,
    /// Name of conlink's own namespace when it runs on a host.
    pub netns_name: String,
    /// docker API socket.
    pub docker_socket: PathBuf,
    /// podman API socket.
    pub podman_socket: PathBuf,
    /// Where the engine's sandbox directory is mounted (`--sandbox-dir`).
    pub sandbox_dir: Option<PathBuf>,
    /// Compose project whose `service:` links apply.
    pub compose_project: Option<String>,
    /// Every config file loaded (watched for changes).
    pub files: Vec<PathBuf>,
    /// Loads the config again (reloads).
    pub loader: Loader,
    /// Control API, metrics and live page listeners.
    pub control: crate::control::ControlOptions,
    /// Multi-host: other hosts' conlinks given on the command line.
    pub peers: Vec<Ipv4Addr>,
    /// Multi-host: peers from the swarm's node list.
    pub swarm: bool,
    /// Multi-host: how bridges are stretched (`--mesh-tunnel`).
    pub mesh_tunnel: mesh::MeshTunnel,
    /// Multi-host: UDP port of the tunnels (None: the kind's default).
    pub mesh_port: Option<u16>,
    /// Multi-host: underlay MTU (None: found from the routes to the peers).
    pub underlay_mtu: Option<u32>,
}

impl RunOptions {
    /// The mesh inputs when multi-host mode is on (`--peer` or `--swarm`),
    /// checked against the config; no peers yet (they come once conlink
    /// knows its own addresses, [`Core::set_peers`]).
    fn mesh(&self, cfg: &NetworkConfig, project: Option<&str>) -> anyhow::Result<Option<Mesh>> {
        if self.peers.is_empty() && !self.swarm {
            return Ok(None);
        }
        let project = project.map(str::to_string).unwrap_or_else(|| {
            warn!("multi-host without a compose project: VNIs derive from bridge names alone");
            String::new()
        });
        let opts = MeshOptions {
            kind: self.mesh_tunnel,
            port: self
                .mesh_port
                .unwrap_or_else(|| self.mesh_tunnel.default_port()),
            // Found from the routes once the peers are known (see
            // `underlay`), unless given.
            underlay_mtu: self.underlay_mtu.unwrap_or(mesh::DEFAULT_UNDERLAY_MTU),
            project,
        };
        mesh::check(cfg, &opts).map_err(|e| anyhow::anyhow!("multi-host: {e}"))?;
        Ok(Some(Mesh {
            opts,
            peers: BTreeSet::new(),
            local: None,
        }))
    }
}

/// The underlay path to each peer, from the namespace mesh tunnels are
/// made in (`ip route get PEER`: outgoing interface, its MTU, the route's
/// MTU, the source address).
fn probe_underlay(
    underlay: Option<&std::path::Path>,
    conlink: &Netns,
    peers: &BTreeSet<Ipv4Addr>,
) -> Vec<(Ipv4Addr, Result<conlink_net::RouteTo, String>)> {
    let h = match underlay {
        Some(p) => Netns::open(p).and_then(|n| conlink_net::Handle::open(&n)),
        None => conlink_net::Handle::open(conlink),
    };
    match h {
        Ok(h) => peers
            .iter()
            .map(|p| (*p, h.route_to(*p).map_err(|e| e.to_string())))
            .collect(),
        Err(e) => peers.iter().map(|p| (*p, Err(e.to_string()))).collect(),
    }
}

/// Multi-host, once the first peers are known: the underlay MTU (unless
/// `--underlay-mtu` gave it) is the smallest path MTU of the routes to the
/// peers, else [`mesh::DEFAULT_UNDERLAY_MTU`] with a log line; this host's
/// mesh address (`vxlan-p2p` derives the pair VNIs from it) is the one of
/// its addresses the `--peer` list names, else the source address of the
/// route to the first peer. Then the MTU and patch warnings.
fn settle_underlay(
    m: &mut Mesh,
    cfg: &NetworkConfig,
    opts: &RunOptions,
    own: &BTreeSet<Ipv4Addr>,
    probes: &[(Ipv4Addr, Result<conlink_net::RouteTo, String>)],
) -> anyhow::Result<()> {
    if opts.underlay_mtu.is_none() {
        let mut best: Option<(Ipv4Addr, &conlink_net::RouteTo)> = None;
        for (p, r) in probes {
            match r {
                Ok(r) if best.is_none_or(|(_, b)| r.mtu() < b.mtu()) => best = Some((*p, r)),
                Ok(_) => {}
                Err(e) => warn!("multi-host: underlay MTU: no route to peer {p}: {e}"),
            }
        }
        match best {
            Some((p, r)) => {
                m.opts.underlay_mtu = r.mtu();
                info!(
                    "multi-host: underlay MTU {} (route to {p} via {}{}; the smallest of {} peer(s)): \
                     tunnel MTU {}",
                    r.mtu(),
                    r.dev,
                    r.route_mtu
                        .map(|x| format!(", route mtu {x}"))
                        .unwrap_or_default(),
                    probes.len(),
                    m.opts.tunnel_mtu()
                );
            }
            None => info!(
                "multi-host: underlay MTU unknown (no route to a peer yet): assuming {} \
                 (tunnel MTU {}); set --underlay-mtu",
                mesh::DEFAULT_UNDERLAY_MTU,
                m.opts.tunnel_mtu()
            ),
        }
    }
    let listed = own.iter().find(|a| opts.peers.contains(a)).copied();
    let routed = probes
        .iter()
        .find_map(|(_, r)| r.as_ref().ok().and_then(|r| r.src));
    m.local = listed.or(routed);
    if m.opts.kind == mesh::MeshTunnel::VxlanP2p {
        let Some(me) = m.local else {
            anyhow::bail!(
                "multi-host: --mesh-tunnel vxlan-p2p needs this host's underlay address (each \
                 host pair's VNI derives from both addresses) and found none: give every host \
                 the same --peer list, this host's address included"
            );
        };
        info!("multi-host: this host is {me} in the mesh");
    }
    for w in mesh::mtu_warnings(cfg, &m.opts) {
        warn!("{w}");
    }
    for w in mesh::patch_warnings(cfg, m) {
        warn!("{w}");
    }
    Ok(())
}

/// How often the swarm's node list is read for peers. A node that fails is
/// marked down by the managers after its heartbeat period (5 s by default),
/// so reading more often would not find it sooner.
const SWARM_POLL: Duration = Duration::from_secs(1);

/// IPv4 addresses of this host: those of the namespace mesh tunnels are
/// made in (it holds the underlay). A swarm's node list and a shared
/// `--peer` list include this host; it is no peer of itself.
fn own_addrs(underlay: Option<&std::path::Path>, conlink: &Netns) -> BTreeSet<Ipv4Addr> {
    let h = match underlay {
        Some(p) => Netns::open(p).and_then(|n| conlink_net::Handle::open(&n)),
        None => conlink_net::Handle::open(conlink),
    };
    let mut out = BTreeSet::new();
    let Ok(h) = h else { return out };
    for l in h.links().unwrap_or_default() {
        for a in h.addrs(&l.name).unwrap_or_default() {
            if let Some(v4) = a.v4() {
                out.insert(v4.addr);
            }
        }
    }
    out
}

/// The swarm's ready nodes' addresses; Ok(empty) when the engine is in no
/// swarm (any more: it left); Err when the list is refused (a worker's
/// engine), then the peers stay as they were.
async fn swarm_peers(rt: &DockerRuntime) -> Result<BTreeSet<Ipv4Addr>, String> {
    match rt.swarm_nodes().await {
        Ok(nodes) => Ok(nodes
            .iter()
            .filter(|n| n.ready)
            .filter_map(|n| n.addr)
            .collect()),
        Err(_) if matches!(rt.swarm_addr().await, Ok(None)) => Ok(BTreeSet::new()),
        Err(e) => Err(format!(
            "multi-host: swarm node list: {e} (a manager engine is needed; peers unchanged)"
        )),
    }
}

/// The peers at start-up (before adoption, so that the tunnels an earlier
/// run made are wanted and adopted): the fixed ones and the swarm's.
async fn initial_peers(
    fixed: &BTreeSet<Ipv4Addr>,
    own: &BTreeSet<Ipv4Addr>,
    swarm: Option<&DockerRuntime>,
) -> BTreeSet<Ipv4Addr> {
    let mut peers = fixed.clone();
    if let Some(rt) = swarm {
        match swarm_peers(rt).await {
            Ok(p) => peers.extend(p),
            Err(e) => warn!("{e}"),
        }
    }
    peers.difference(own).copied().collect()
}

/// Multi-host: keeps the core's peers equal to the fixed ones plus, on
/// Swarm, the ready nodes' addresses, read every [`SWARM_POLL`] until
/// aborted. Every round converges (a tunnel change that failed is
/// retried); the same error is logged once.
async fn follow_peers<K: conlink_core::Kernel, R: Runtime>(
    core: Arc<Core<K, R>>,
    fixed: BTreeSet<Ipv4Addr>,
    own: BTreeSet<Ipv4Addr>,
    swarm: Option<DockerRuntime>,
) {
    let mut last_err = String::new();
    loop {
        let mut peers = fixed.clone();
        if let Some(rt) = &swarm {
            match swarm_peers(rt).await {
                Ok(p) => peers.extend(p),
                Err(e) => {
                    if e != last_err {
                        warn!("{e}");
                        last_err = e;
                    }
                    tokio::time::sleep(SWARM_POLL).await;
                    continue;
                }
            }
        }
        let peers: BTreeSet<Ipv4Addr> = peers.difference(&own).copied().collect();
        match core.set_peers(peers).await {
            Ok(_) => last_err.clear(),
            Err(e) => {
                let e = format!("multi-host: tunnels: {e} (retried)");
                if e != last_err {
                    warn!("{e}");
                    last_err = e;
                }
            }
        }
        if swarm.is_none() && last_err.is_empty() {
            // Fixed peers: nothing will change any more.
            return;
        }
        tokio::time::sleep(SWARM_POLL).await;
    }
}

/// New interfaces in conlink's namespace (one it owns) start without IPv6
/// (`conlink_core::net::disable_ipv6_by_default`; docs/performance.md):
/// best effort, a failure only costs speed.
fn no_ipv6_on_new_links(ns: &Netns) {
    if let Err(e) = conlink_core::net::disable_ipv6_by_default(ns) {
        debug!("IPv6 stays on for new interfaces in conlink's namespace ({e}): outer ends get `addrgenmode none` each");
    }
}

/// conlink's own namespace on a host: a dedicated named one, created if
/// missing (and then removed at exit).
pub struct OwnNetns {
    /// The namespace.
    pub ns: Netns,
    name: String,
    created: bool,
}

/// Whether the namespace of `h` carries conlink's namespace marker on `lo`.
fn netns_marked(h: &conlink_net::Handle) -> bool {
    h.link("lo")
        .ok()
        .flatten()
        .is_some_and(|l| l.owner() == Some(conlink_core::apply::NETNS_MARKER))
}

impl OwnNetns {
    /// Opens the named namespace, creating it when missing. One that
    /// exists and carries conlink's mark was made by an earlier conlink
    /// that was killed: it is removed at exit as if made now.
    pub fn open_or_create(name: &str) -> anyhow::Result<Self> {
        if Netns::exists_named(name) {
            let ns = Netns::named(name)?;
            let ours = conlink_net::Handle::open(&ns).is_ok_and(|h| netns_marked(&h));
            if ours {
                info!("using network namespace {name} for bridges (made by an earlier conlink run: removed at exit)");
            } else {
                info!("using existing network namespace {name} for bridges");
            }
            if ours {
                no_ipv6_on_new_links(&ns);
            }
            return Ok(Self {
                ns,
                name: name.to_string(),
                created: ours,
            });
        }
        let ns = Netns::create_named(name)
            .with_context(|| format!("create conlink's namespace {name}"))?;
        // Owned (removed on drop) before anything else can fail.
        let own = Self {
            ns,
            name: name.to_string(),
            created: true,
        };
        conlink_net::Handle::open(&own.ns)
            .and_then(|h| h.mark("lo", conlink_core::apply::NETNS_MARKER))
            .with_context(|| format!("mark conlink's namespace {name}"))?;
        no_ipv6_on_new_links(&own.ns);
        info!("created network namespace {name} for bridges");
        Ok(own)
    }
}

impl Drop for OwnNetns {
    fn drop(&mut self) {
        if self.created {
            if let Err(e) = Netns::delete_named(&self.name) {
                warn!("delete namespace {}: {e}", self.name);
            }
        }
    }
}

/// Runs the daemon until SIGINT/SIGTERM, then removes everything.
pub async fn run(cfg: NetworkConfig, opts: RunOptions) -> anyhow::Result<()> {
    // Option mistakes fail before anything is made.
    opts.control.check()?;
    // Signals first, so one arriving during setup still shuts down cleanly.
    let sigs = Signals::new()?;
    if cfg
        .services
        .values()
        .chain(cfg.containers.values())
        .all(|g| g.links.is_empty())
    {
        info!("no links configured (bridges, tunnels and commands still apply)");
    }
    match opts.runtime {
        RuntimeKind::Netns => {
            let services: Vec<(String, u32)> = cfg
                .services
                .keys()
                .map(|s| {
                    let n = opts
                        .scale
                        .iter()
                        .rev()
                        .find(|(name, _)| name == s)
                        .map_or(1, |(_, n)| *n);
                    (s.clone(), n)
                })
                .collect();
            let containers: Vec<String> = cfg.containers.keys().cloned().collect();
            debug!("start-up: config loaded");
            let own = OwnNetns::open_or_create(&opts.netns_name)?;
            let ns = own.ns.try_clone()?;
            // The host side (parents of *vlan links, tunnel underlays) is
            // the namespace conlink was started in.
            let place = Placement {
                host_ns: Some("/proc/self/ns/net".into()),
                tunnel_ns: Some("/proc/self/ns/net".into()),
                mesh_ns: None,
                ovs_dir: Some(Placement::ovs_dir_for(&opts.netns_name)),
            };
            let mesh = opts.mesh(&cfg, opts.compose_project.as_deref())?;
            let mut rt =
                tokio::task::spawn_blocking(move || NetnsRuntime::prepare(&containers, &services))
                    .await??;
            // A container's loopback is up; make the namespaces we play
            // them with alike (ping to self, local services on 127.0.0.1),
            // and mark them as ours on `lo`. A namespace that exists already
            // and carries the mark was made by a conlink that was killed:
            // it is ours to remove at exit too.
            let lo: Vec<(String, PathBuf)> = rt
                .instances()
                .iter()
                .map(|c| (c.name.clone(), c.netns.clone()))
                .collect();
            let created: Vec<String> = rt.created().map(String::from).collect();
            // The handles opened here are the ones the kernel side uses
            // for these containers later (one open per namespace).
            // Opened on as many threads as setups run at once (each open
            // is a setns and two sockets, then a request or two: at 2000
            // namespaces a serial open was a fifth of the start-up).
            type Opened = (Vec<String>, Vec<(PathBuf, conlink_net::Handle)>);
            let slots = conlink_core::reconcile::setup_slots();
            let (claimed, handles) =
                tokio::task::spawn_blocking(move || -> anyhow::Result<Opened> {
                    let created: HashSet<String> = created.into_iter().collect();
                    let open = |part: &[(String, PathBuf)]| -> anyhow::Result<Opened> {
                        let (mut claimed, mut handles) =
                            (Vec::new(), Vec::with_capacity(part.len()));
                        for (name, ns) in part {
                            let h = conlink_net::Handle::open(&Netns::open(ns)?)?;
                            if created.contains(name) {
                                // Up and marked in one datagram.
                                for r in h.apply(&[
                                    Change::Up("lo", true),
                                    Change::Mark("lo", conlink_core::apply::NETNS_MARKER),
                                ]) {
                                    r?;
                                }
                            } else if netns_marked(&h) {
                                claimed.push(name.clone());
                            }
                            handles.push((ns.clone(), h));
                        }
                        Ok((claimed, handles))
                    };
                    let per = lo.len().div_ceil(slots.max(1)).max(1);
                    std::thread::scope(|s| {
                        let parts: Vec<_> = lo
                            .chunks(per)
                            .map(|part| s.spawn(move || open(part)))
                            .collect();
                        let (mut claimed, mut handles) = (Vec::new(), Vec::new());
                        for p in parts {
                            let (c, h) = p
                                .join()
                                .map_err(|_| anyhow::anyhow!("opening namespaces panicked"))??;
                            claimed.extend(c);
                            handles.extend(h);
                        }
                        Ok((claimed, handles))
                    })
                })
                .await??;
            debug!("start-up: {} namespace(s) opened", handles.len());
            for name in &claimed {
                rt.claim(name);
            }
            if !claimed.is_empty() {
                info!(
                    "{} namespace(s) made by an earlier conlink run: removed at exit",
                    claimed.len()
                );
            }
            let inputs = Inputs {
                cfg,
                project: None,
                mesh,
                ..Default::default()
            };
            let name = opts.netns_name.clone();
            let res = serve(ns, &name, place, rt, None, inputs, handles, &opts, sigs).await;
            drop(own);
            res
        }
        RuntimeKind::Docker => {
            if let Some(d) = &opts.sandbox_dir {
                if !d.is_dir() {
                    anyhow::bail!(
                        "--sandbox-dir {}: no such directory (mount the engine's EXEC_ROOT/netns, \
                         e.g. /var/run/docker/netns, there with `bind: {{propagation: rslave}}`)",
                        d.display()
                    );
                }
            }
            let mut engines = Vec::new();
            for sock in [&opts.docker_socket, &opts.podman_socket] {
                if !sock.exists() {
                    continue;
                }
                match DockerRuntime::connect(sock).await {
                    Ok(rt) => {
                        conlink_runtime::docker::log_connected(sock);
                        engines.push(rt.with_sandbox_dir(opts.sandbox_dir.clone()));
                    }
                    Err(e) => warn!("{e}"),
                }
            }
            if engines.is_empty() {
                anyhow::bail!(
                    "no container engine answers at {} or {}",
                    opts.docker_socket.display(),
                    opts.podman_socket.display()
                );
            }
            // Inside a container conlink uses its own namespace and finds
            // its compose project; on a host it makes a dedicated one.
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let own_id = conlink_runtime::docker::own_container_id(&mountinfo);
            let mut project = opts.compose_project.clone();
            let (own, ns, place) = match &own_id {
                Some(id) => {
                    let mut me = None;
                    for rt in &engines {
                        match rt.own_container(id).await {
                            Ok(Some(c)) => {
                                me = Some(c);
                                break;
                            }
                            Ok(None) => {}
                            Err(e) => warn!("{e}"),
                        }
                    }
                    if me.is_none() {
                        warn!("own container {} not found in any engine", &id[..12]);
                    }
                    if project.is_none() {
                        project = me.as_ref().and_then(|c| c.project.clone());
                    }
                    let host_net = me
                        .as_ref()
                        .is_some_and(|c| c.network_mode.as_deref() == Some("host"));
                    info!(
                        "running in container {} (project {}{})",
                        &id[..12],
                        project.as_deref().unwrap_or("-"),
                        if host_net { ", host network" } else { "" }
                    );
                    if host_net {
                        // On the host's network (a swarm service: the only
                        // way for it to reach the underlay) the container's
                        // namespace is the host's: bridges there would sit
                        // among the host's interfaces (and its eth0 would
                        // be renamed). They go into a namespace of
                        // conlink's own instead, one without a name: no
                        // mount under /run/netns, which a container may not
                        // make (AppArmor), and nothing left behind: the
                        // kernel removes it, and all in it, with conlink.
                        // The error's text holds its cause already (as a
                        // context it would be printed twice).
                        let ns = Netns::create_anonymous("conlink's namespace (anonymous)")
                            .map_err(|e| {
                                anyhow::anyhow!(
                                    "create conlink's namespace for bridges (conlink in a \
                                     container on the host's network needs \
                                     `cap_add: [NET_ADMIN, SYS_ADMIN]`): {e}"
                                )
                            })?;
                        no_ipv6_on_new_links(&ns);
                        info!("bridges in a namespace of conlink's own (anonymous: removed with conlink)");
                        // The host's namespace is the main thread's own
                        // (/proc/self is the thread group leader, which
                        // never changes namespace).
                        let place = Placement {
                            host_ns: Some("/proc/self/ns/net".into()),
                            tunnel_ns: Some("/proc/self/ns/net".into()),
                            mesh_ns: None,
                            ovs_dir: Some(Placement::ovs_dir_for(&opts.netns_name)),
                        };
                        (None, ns, place)
                    } else {
                        // With `pid: host`, PID 1 is the host's init: its
                        // namespace is the host's root namespace.
                        let place = Placement {
                            host_ns: Some("/proc/1/ns/net".into()),
                            tunnel_ns: None,
                            // Multi-host: the other hosts are reached from
                            // the host's namespace (PID 1's with `pid: host`).
                            mesh_ns: Some("/proc/1/ns/net".into()),
                            // In its own container conlink's OVS state lives
                            // in the container's /run: the default name is
                            // enough.
                            ovs_dir: Some(Placement::ovs_dir_for(&opts.netns_name)),
                        };
                        // The container's namespace is conlink's own.
                        let ns = Netns::current()?;
                        no_ipv6_on_new_links(&ns);
                        (None, ns, place)
                    }
                }
                None => {
                    debug!("start-up: config loaded");
                    let own = OwnNetns::open_or_create(&opts.netns_name)?;
                    let ns = own.ns.try_clone()?;
                    let place = Placement {
                        host_ns: Some("/proc/self/ns/net".into()),
                        tunnel_ns: Some("/proc/self/ns/net".into()),
                        mesh_ns: None,
                        ovs_dir: Some(Placement::ovs_dir_for(&opts.netns_name)),
                    };
                    (Some(own), ns, place)
                }
            };
            let mesh = opts.mesh(&cfg, project.as_deref())?;
            let inputs = Inputs {
                cfg,
                project,
                mesh,
                ..Default::default()
            };
            let swarm = opts.swarm.then(|| engines[0].clone());
            // The API socket's NAME: the compose project inside a compose
            // deployment, else conlink's namespace name.
            let name = match (&own_id, &inputs.project) {
                (Some(_), Some(p)) => p.clone(),
                _ => opts.netns_name.clone(),
            };
            let res = serve(
                ns,
                &name,
                place,
                Engines(engines),
                swarm,
                inputs,
                Vec::new(),
                &opts,
                sigs,
            )
            .await;
            drop(own);
            res
        }
    }
}

struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// How long shutdown waits for in-flight setups and running commands.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The one daemon loop: adopt, make globals, feed runtime events to the
/// core, reload on config changes and SIGHUP, tear down on SIGINT/SIGTERM.
#[allow(clippy::too_many_arguments)]
async fn serve<R: Runtime>(
    ns: Netns,
    name: &str,
    place: Placement,
    runtime: R,
    swarm: Option<DockerRuntime>,
    inputs: Inputs,
    ctr_handles: Vec<(PathBuf, conlink_net::Handle)>,
    opts: &RunOptions,
    mut sigs: Signals,
) -> anyhow::Result<()> {
    let mut inputs = inputs;
    let multihost = inputs.mesh.is_some();
    let fixed: BTreeSet<Ipv4Addr> = opts.peers.iter().copied().collect();
    let underlay = place.mesh_ns.clone().or_else(|| place.tunnel_ns.clone());
    let own = if multihost {
        let ns2 = ns.try_clone()?;
        let u = underlay.clone();
        tokio::task::spawn_blocking(move || own_addrs(u.as_deref(), &ns2)).await?
    } else {
        BTreeSet::new()
    };
    if let Some(m) = &mut inputs.mesh {
        m.peers = initial_peers(&fixed, &own, swarm.as_ref()).await;
        let shown: Vec<String> = m.peers.iter().map(|p| p.to_string()).collect();
        info!(
            "multi-host: peers now {}",
            if shown.is_empty() {
                "none".to_string()
            } else {
                shown.join(", ")
            }
        );
        let ns2 = ns.try_clone()?;
        let peers = m.peers.clone();
        let probes =
            tokio::task::spawn_blocking(move || probe_underlay(underlay.as_deref(), &ns2, &peers))
                .await?;
        settle_underlay(m, &inputs.cfg, opts, &own, &probes)?;
    }
    let inp2 = inputs.clone();
    // conlink's namespace as the control API reads it (status, counters).
    let own_handle = conlink_net::Handle::open(&ns)?;
    let (kernel, found) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let kernel = NetKernel::open(&ns, place)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_ctr_handles(ctr_handles);
        let found = adopt::scan(&kernel, &inp2);
        for name in &found.legacy {
            // Older conlink versions marked everything `conlink:conlink`:
            // their leftovers cannot be adopted, so they go.
            let _ =
                conlink_core::Kernel::delete_link(&kernel, conlink_core::kernel::Ns::Conlink, name);
        }
        if !found.legacy.is_empty() {
            info!(
                "removed {} leftover interface(s) of an older conlink run",
                found.legacy.len()
            );
        }
        Ok((kernel, found))
    })
    .await??;
    debug!("start-up: conlink's namespace read");
    let adopting = found.count > 0;
    let core = Core::new(Applier::new(kernel), runtime, inputs, found.state, adopting);
    if let Err(e) = core.init_globals().await {
        for e2 in core.teardown().await {
            warn!("cleanup after failed start: {e2}");
        }
        return Err(anyhow::anyhow!("{e}"));
    }
    debug!("start-up: bridges and tunnels made");
    let listeners = match crate::control::start(core.clone(), own_handle, name, &opts.control).await
    {
        Ok(l) => l,
        Err(e) => {
            for e2 in core.teardown().await {
                warn!("cleanup after failed start: {e2}");
            }
            return Err(e);
        }
    };
    debug!("start-up: control API up");
    // Multi-host: the tunnels of the initial peers are globals, made (or
    // adopted) above; from now on they follow the peers.
    let peers = multihost.then(|| tokio::spawn(follow_peers(core.clone(), fixed, own, swarm)));
    let (tx, rx) = mpsc::channel(1024);
    let c2 = core.clone();
    let looped = tokio::spawn(async move { c2.run(rx).await });
    let rt = core.runtime().clone();
    let watcher = tokio::spawn(async move { rt.watch(tx).await });

    let (reload_tx, mut reload_rx) = mpsc::channel::<&'static str>(4);
    let _files = ConfigWatch::spawn(&opts.files, reload_tx.clone());
    loop {
        tokio::select! {
            _ = sigs.int.recv() => { info!("SIGINT: cleaning up"); break; }
            _ = sigs.term.recv() => { info!("SIGTERM: cleaning up"); break; }
            _ = sigs.hup.recv() => reload(&core, opts, "SIGHUP").await,
            Some(why) = reload_rx.recv() => reload(&core, opts, why).await,
        }
    }
    // No more requests while things are torn down.
    drop(listeners);
    if let Some(p) = peers {
        p.abort();
        let _ = p.await;
    }
    core.stop();
    if tokio::time::timeout(SHUTDOWN_GRACE, looped).await.is_err() {
        warn!("commands still running after {SHUTDOWN_GRACE:?}; not waiting for them");
    }
    if tokio::time::timeout(Duration::from_secs(2), watcher)
        .await
        .is_err()
    {
        warn!("runtime watcher did not stop in time");
    }
    if let Some(t) = core.timings().summary() {
        info!("{t}");
    }
    for e in core.teardown().await {
        warn!("cleanup: {e}");
    }
    drop(core);
    info!("cleanup done");
    Ok(())
}

/// Loads the config again and, when valid, converges to it; when not,
/// logs why and keeps the running one.
async fn reload<K: conlink_core::Kernel, R: Runtime>(
    core: &Arc<Core<K, R>>,
    opts: &RunOptions,
    why: &str,
) {
    let loader = opts.loader.clone();
    let loaded = tokio::task::spawn_blocking(move || loader())
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    let cfg = match loaded {
        Ok(c) => c,
        Err(text) => {
            error!("config reload ({why}) refused; the running config stays:");
            for line in text.lines() {
                error!("{line}");
            }
            core.emit(
                conlink_core::events::CoreEvent::now(
                    conlink_core::events::EventType::Config,
                    conlink_core::events::Action::Rejected,
                    "config",
                )
                .attr("reason", text),
            );
            return;
        }
    };
    let cur = core.inputs();
    if cur.cfg == cfg {
        info!("config reload ({why}): no change");
        return;
    }
    if let Some(m) = &cur.mesh {
        if let Err(e) = mesh::check(&cfg, &m.opts) {
            error!("config reload ({why}) refused; the running config stays: multi-host: {e}");
            return;
        }
        for w in mesh::mtu_warnings(&cfg, &m.opts) {
            warn!("{w}");
        }
    }
    info!("config reload ({why}): applying changes");
    let new = Inputs {
        cfg,
        ..(*cur).clone()
    };
    let (t0, ops0, (dg0, msg0)) = (
        std::time::Instant::now(),
        core.ops_applied(),
        conlink_net::nl::sent(),
    );
    match core.reload(new).await {
        Err(e) => error!("config reload ({why}) refused; the running config stays: {e}"),
        Ok(()) => {
            // The work a reload did, to show it follows the change, not the
            // lab (bench/reload reads this line).
            let (dg, msg) = conlink_net::nl::sent();
            info!(
                "config reload ({why}): done in {:.3} ms: {} operation(s), {} netlink message(s) in {} datagram(s)",
                t0.elapsed().as_secs_f64() * 1e3,
                core.ops_applied() - ops0,
                msg - msg0,
                dg - dg0
            );
        }
    }
}
