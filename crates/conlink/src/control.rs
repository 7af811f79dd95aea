//! The control API's view of this daemon: [`DaemonBackend`] implements
//! `conlink_control::ControlBackend` over the daemon's state (containers,
//! their plans and setup state) and the kernel (one link dump per
//! namespace for state and counters), and [`start`] opens the listeners
//! the command line asks for.
//!
//! Runtime overrides (`link set`, `link clear`) are refused here with a
//! clear error: they are inputs of the desired state, which only the
//! reconciling core (issue 10) diffs and applies. Changing links behind the
//! daemon's back would be a second source of truth.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context;
use conlink_control::api::{
    BridgeStatus, ContainerState, ContainerStatus, Counters, Event, EventType, LinkState,
    LinkStatus, Problem, Status, TunnelStatus,
};
use conlink_control::server::{self, Control, Listener, Role};
use conlink_control::{ControlBackend, Metrics, OverrideChange, Selector};
use conlink_model::{BridgeMode, NetworkConfig, Target};
use conlink_net::{Handle, LinkStats, Netns};
use tokio::sync::broadcast;
use tracing::debug;

use crate::daemon::{Daemon, Exec, Network, Status as SetupStatus};
use crate::exec::Executor;

/// The message `link set|clear` gets from this daemon.
pub const NO_OVERRIDES: &str = "runtime link overrides (down/up, --netem, --flap, clear) are desired-state inputs of the reconciling core (issue 10), which this conlink does not have yet; nothing was changed";

/// The daemon as the control servers see it.
pub struct DaemonBackend<N: Network, E: Exec> {
    daemon: Arc<Daemon<N, E>>,
    exec: Arc<Executor>,
    name: String,
    /// Handles on container namespaces by container id: opening one enters
    /// the namespace on a fresh thread (~0.1 ms), too much per scrape for
    /// a thousand containers. Entries of gone containers are pruned.
    handles: Mutex<HashMap<String, Arc<Handle>>>,
}

impl<N: Network, E: Exec> DaemonBackend<N, E> {
    /// A backend over `daemon` whose conlink namespace is `exec`'s.
    pub fn new(daemon: Arc<Daemon<N, E>>, exec: Arc<Executor>, name: &str) -> Self {
        DaemonBackend {
            daemon,
            exec,
            name: name.to_string(),
            handles: Mutex::new(HashMap::new()),
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

impl ContainerInput {
    /// From the current daemon's view of a container.
    fn from_entry(e: &crate::daemon::EntryView) -> ContainerInput {
        let setup = match e.status {
            SetupStatus::Pending => Setup::Pending,
            SetupStatus::Ready => Setup::Ready,
            SetupStatus::Failed => {
                Setup::Failed(e.reason.clone().unwrap_or_else(|| "setup failed".into()))
            }
        };
        ContainerInput {
            id: e.container.id.clone(),
            name: e.container.name.clone(),
            service: e.container.service.clone(),
            replica: e.container.index,
            netns: e.container.netns.clone(),
            links: e
                .plan
                .links
                .iter()
                .map(|l| LinkInput {
                    dev: l.dev.clone(),
                    kind: l.kind.as_str().to_string(),
                    outer: l
                        .outer
                        .as_ref()
                        .map(|o| (o.name.clone(), o.bridge.clone(), o.mode)),
                    addresses: l.ip.iter().map(|a| a.to_string()).collect(),
                    netem_config: l.netem.clone(),
                    netem_override: None,
                    admin_down: false,
                    setup: setup.clone(),
                })
                .collect(),
        }
    }
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

impl<N: Network, E: Exec> ControlBackend for DaemonBackend<N, E> {
    fn snapshot(&self) -> Status {
        let d = &self.daemon;
        let entries = d.entries();
        let missing = d.missing_targets();
        let converged = d.is_converged();
        let own = self.exec.conlink_handle().link_stats().unwrap_or_else(|e| {
            debug!("status: conlink's namespace: {e}");
            vec![]
        });
        {
            let mut hs = self.handles.lock().unwrap_or_else(|p| p.into_inner());
            hs.retain(|id, _| entries.iter().any(|e| &e.container.id == id));
        }
        let inputs: Vec<ContainerInput> = entries.iter().map(ContainerInput::from_entry).collect();
        build_status(
            &self.name,
            d.config(),
            converged,
            &inputs,
            &missing,
            &own,
            &|c| {
                let h = self.handle(&c.id, &c.netns)?;
                h.link_stats().ok()
            },
        )
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.daemon.hub().subscribe()
    }

    fn history(&self, since: Option<SystemTime>) -> Vec<Event> {
        self.daemon.hub().history(since)
    }

    fn set_override(
        &self,
        _sel: &Selector,
        _c: &OverrideChange,
    ) -> conlink_control::Result<Vec<String>> {
        self.daemon.metrics().error("override");
        Err(conlink_control::Error::Unsupported(NO_OVERRIDES.into()))
    }

    fn clear_override(&self, _sel: &Selector) -> conlink_control::Result<Vec<String>> {
        Err(conlink_control::Error::Unsupported(NO_OVERRIDES.into()))
    }

    fn graph_html(&self) -> String {
        conlink_graph::render(self.daemon.config(), conlink_graph::Format::Html)
    }

    fn metrics(&self) -> &Metrics {
        self.daemon.metrics()
    }

    fn event_counts(&self) -> BTreeMap<(EventType, String), u64> {
        self.daemon.hub().counts()
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

/// Opens the listeners of `opts` for `daemon`. Errors (a socket in use, a
/// TCP API without token) stop the start: the user asked for them.
pub async fn start<N: Network, E: Exec>(
    daemon: Arc<Daemon<N, E>>,
    exec: Arc<Executor>,
    name: &str,
    opts: &ControlOptions,
) -> anyhow::Result<Vec<Listener>> {
    let ctl = Control::new(Arc::new(DaemonBackend::new(daemon, exec, name)));
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
