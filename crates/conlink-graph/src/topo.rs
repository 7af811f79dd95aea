//! The picture's structure, independent of output format: which boxes
//! (clusters) exist, which interface nodes sit in them, and which edges join
//! the nodes. Every renderer reads this, so DOT, Mermaid and SVG show the same
//! topology.

use std::collections::BTreeMap;

use conlink_model::{Base, BridgeMode, Link, NetworkConfig, Target, IFNAME_MAX};

/// Index of a node in [`Topology::nodes`].
pub type NodeId = usize;

/// What a node stands for (renderers pick shapes and colours by kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// An interface inside a service's or container's namespace.
    Inner,
    /// The outer veth end, in conlink's namespace, joined to a bridge.
    Outer,
    /// A tunnel interface (`TYPE-VNI`) in a bridge.
    Tunnel,
    /// A parent interface in the host's root namespace.
    HostParent,
    /// A remote host a tunnel reaches.
    Remote,
    /// Stand-in so an empty box still shows (a bridge without ports, ...).
    Placeholder,
}

/// One interface (or remote host) in the picture.
#[derive(Debug, Clone)]
pub struct Node {
    /// Kind of node.
    pub kind: NodeKind,
    /// Main label: the interface name (or `remote host ADDRESS`).
    pub name: String,
    /// Second, smaller label line: type, address, ...
    pub detail: String,
    /// Properties shown on hover / as tooltip, in display order.
    pub props: Vec<(String, String)>,
}

/// A service or a container with its inner interfaces.
#[derive(Debug, Clone)]
pub struct GroupBox {
    /// `true` for a compose service, `false` for a container name.
    pub is_service: bool,
    /// Service or container name.
    pub name: String,
    /// Inner interface nodes, in configuration order.
    pub nodes: Vec<NodeId>,
    /// Commands configured for it (shown on hover).
    pub commands: Vec<String>,
}

impl GroupBox {
    /// Box title, e.g. `service node` or `container r1`.
    pub fn title(&self) -> String {
        let kind = if self.is_service {
            "service"
        } else {
            "container"
        };
        format!("{kind} {}", self.name)
    }
}

/// A bridge in conlink's namespace with the outer ends and tunnels on it.
#[derive(Debug, Clone)]
pub struct BridgeBox {
    /// Bridge name.
    pub name: String,
    /// Resolved mode (`None` if a link names a bridge the config does not list).
    pub mode: Option<BridgeMode>,
    /// Tunnel nodes first, then outer veth ends, in configuration order.
    pub nodes: Vec<NodeId>,
}

impl BridgeBox {
    /// Box title, e.g. `bridge s1 (linux)`.
    pub fn title(&self) -> String {
        match self.mode {
            Some(m) => format!("bridge {} ({})", self.name, mode_str(m)),
            None => format!("bridge {}", self.name),
        }
    }
}

/// Kind of an edge (renderers draw them differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    /// Inner end to outer end of a veth pair.
    Veth,
    /// Inner interface to its parent in the host namespace.
    Host,
    /// Tunnel interface to the remote host.
    Tunnel,
}

/// A line between two nodes.
#[derive(Debug, Clone)]
pub struct Edge {
    /// Edge kind.
    pub kind: EdgeKind,
    /// Inner interface or tunnel node.
    pub from: NodeId,
    /// Outer end, host parent or remote host node.
    pub to: NodeId,
    /// Short label (`vlan 100`, `macvlan bridge`, ...), possibly empty.
    pub label: String,
}

/// The whole picture.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    /// All nodes; boxes refer to them by index.
    pub nodes: Vec<Node>,
    /// Parent interfaces in the host namespace.
    pub host: Vec<NodeId>,
    /// Bridges in conlink's namespace, by name.
    pub bridges: Vec<BridgeBox>,
    /// Services (by name) then containers (by name).
    pub groups: Vec<GroupBox>,
    /// Remote hosts reached by tunnels.
    pub remotes: Vec<NodeId>,
    /// Edges.
    pub edges: Vec<Edge>,
}

/// Name of a bridge mode as users write it.
pub fn mode_str(m: BridgeMode) -> &'static str {
    match m {
        BridgeMode::Linux => "linux",
        BridgeMode::Ovs => "ovs",
        BridgeMode::Patch => "patch",
    }
}

/// The outer veth name shown for a link: `outer-dev` when configured, else
/// the name replica 1 gets (spec §4): `SERVICE_1-DEV` / `CONTAINER-DEV`. When
/// that is too long the real name embeds the container id, unknown here, so
/// `c<id>-DEV5` stands for it.
pub fn outer_name(link: &Link) -> (String, bool) {
    if let Some(o) = &link.outer_dev {
        return (o.clone(), false);
    }
    let name = match &link.target {
        Target::Service(s) => format!("{s}_1-{}", link.dev),
        Target::Container(c) => format!("{c}-{}", link.dev),
    };
    // IFNAMSIZ counts bytes, not characters.
    if name.len() <= IFNAME_MAX {
        (name, true)
    } else {
        let dev5: String = link.dev.chars().take(5).collect();
        (format!("c<id>-{dev5}"), true)
    }
}

/// Short description of a link's kind: `veth`, `vlan 100`, `macvlan bridge`.
fn kind_label(link: &Link) -> String {
    let mut s = link.link_type.as_str().to_string();
    if let Some(v) = link.vlanid {
        s += &format!(" {v}");
    }
    if let Some(m) = &link.mode {
        s += &format!(" {m}");
    }
    s
}

/// Every property of a link users may want to see on hover.
fn link_props(link: &Link, is_service: bool) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = vec![
        ("dev".into(), link.dev.clone()),
        ("type".into(), link.link_type.as_str().into()),
    ];
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            p.push((k.into(), v));
        }
    };
    let ips: Vec<String> = link.ip.iter().map(|v| v.to_string()).collect();
    add("ip", (!ips.is_empty()).then(|| ips.join(", ")));
    add("mac", link.mac.map(|v| v.to_string()));
    add("mtu", link.mtu.map(|v| v.to_string()));
    add("netem", link.netem.as_ref().map(|v| v.to_string()));
    add("mode", link.mode.clone());
    add("vlanid", link.vlanid.map(|v| v.to_string()));
    add("nat", link.nat.map(|v| v.to_string()));
    let join = |v: Vec<String>| (!v.is_empty()).then(|| v.join("; "));
    add(
        "route",
        join(link.route.iter().map(|r| r.to_string()).collect()),
    );
    add(
        "forward",
        join(link.forward.iter().map(|r| r.to_string()).collect()),
    );
    add(
        "ethtool",
        join(link.ethtool.iter().map(|r| r.to_string()).collect()),
    );
    add("bridge", link.bridge.clone());
    match link.link_type.base() {
        Base::Conlink => add("outer-dev", Some(outer_name(link).0)),
        Base::Host => add("parent", link.outer_dev.clone()),
        Base::Local => {}
    }
    if is_service && (!link.ip.is_empty() || link.mac.is_some()) {
        add(
            "replicas",
            Some("values shown are replica 1's; replica i adds i-1 to ip and mac".into()),
        );
    }
    p
}

impl Topology {
    fn push(
        &mut self,
        kind: NodeKind,
        name: String,
        detail: String,
        props: Vec<(String, String)>,
    ) -> NodeId {
        self.nodes.push(Node {
            kind,
            name,
            detail,
            props,
        });
        self.nodes.len() - 1
    }

    fn bridge_index(
        &mut self,
        cfg: &NetworkConfig,
        name: &str,
        index: &mut BTreeMap<String, usize>,
    ) -> usize {
        if let Some(&i) = index.get(name) {
            return i;
        }
        self.bridges.push(BridgeBox {
            name: name.to_string(),
            mode: cfg.bridges.get(name).map(|b| b.mode),
            nodes: Vec::new(),
        });
        index.insert(name.to_string(), self.bridges.len() - 1);
        self.bridges.len() - 1
    }

    /// Builds the picture of a configuration. Bridges appear in name order,
    /// services then containers in name order, links in configuration order.
    pub fn build(cfg: &NetworkConfig) -> Topology {
        let mut t = Topology::default();
        let mut bridge_ix: BTreeMap<String, usize> = BTreeMap::new();
        for name in cfg.bridges.keys() {
            t.bridge_index(cfg, name, &mut bridge_ix);
        }
        // Tunnels first so they sit at the top of their bridge, nearest the
        // remote hosts (drawn above conlink's namespace in the SVG).
        let mut remote_ix: BTreeMap<std::net::Ipv4Addr, NodeId> = BTreeMap::new();
        for tun in &cfg.tunnels {
            let b = t.bridge_index(cfg, &tun.bridge, &mut bridge_ix);
            let mut props = vec![
                ("tunnel".into(), tun.ifname()),
                ("vni".into(), tun.vni.to_string()),
                ("remote".into(), tun.remote.to_string()),
                ("bridge".into(), tun.bridge.clone()),
            ];
            if let Some(n) = &tun.netem {
                props.push(("netem".into(), n.to_string()));
            }
            let id = t.push(
                NodeKind::Tunnel,
                tun.ifname(),
                format!("tunnel vni {}", tun.vni),
                props,
            );
            t.bridges[b].nodes.push(id);
            let remote = match remote_ix.get(&tun.remote) {
                Some(&r) => r,
                None => {
                    let r = t.push(
                        NodeKind::Remote,
                        format!("remote host {}", tun.remote),
                        "conlink on another host".into(),
                        vec![("address".into(), tun.remote.to_string())],
                    );
                    remote_ix.insert(tun.remote, r);
                    t.remotes.push(r);
                    r
                }
            };
            let label = tun.ifname();
            t.edges.push(Edge {
                kind: EdgeKind::Tunnel,
                from: id,
                to: remote,
                label,
            });
        }
        let mut host_ix: BTreeMap<String, NodeId> = BTreeMap::new();
        let groups = cfg
            .services
            .iter()
            .map(|(n, g)| (true, n, g))
            .chain(cfg.containers.iter().map(|(n, g)| (false, n, g)));
        for (is_service, gname, group) in groups {
            let mut gb = GroupBox {
                is_service,
                name: gname.clone(),
                nodes: Vec::new(),
                commands: group
                    .commands
                    .iter()
                    .map(|c| c.command.argv().join(" "))
                    .collect(),
            };
            for link in &group.links {
                let mut detail = kind_label(link);
                for ip in &link.ip {
                    detail += &format!(" {ip}");
                }
                let inner = t.push(
                    NodeKind::Inner,
                    link.dev.clone(),
                    detail,
                    link_props(link, is_service),
                );
                gb.nodes.push(inner);
                match link.link_type.base() {
                    Base::Conlink => {
                        let bname = link.bridge.clone().unwrap_or_else(|| "(none)".into());
                        let b = t.bridge_index(cfg, &bname, &mut bridge_ix);
                        let (oname, derived) = outer_name(link);
                        let mut props = vec![
                            ("outer-dev".into(), oname.clone()),
                            ("peer".into(), format!("{gname}:{}", link.dev)),
                            ("bridge".into(), bname.clone()),
                        ];
                        if derived && is_service {
                            props.push((
                                "naming".into(),
                                format!("replica i is named {gname}_i-{}", link.dev),
                            ));
                        }
                        let outer = t.push(NodeKind::Outer, oname, "veth".into(), props);
                        t.bridges[b].nodes.push(outer);
                        t.edges.push(Edge {
                            kind: EdgeKind::Veth,
                            from: inner,
                            to: outer,
                            label: String::new(),
                        });
                    }
                    Base::Host => {
                        let pname = link.outer_dev.clone().unwrap_or_else(|| "(parent?)".into());
                        let parent = match host_ix.get(&pname) {
                            Some(&p) => p,
                            None => {
                                let p = t.push(
                                    NodeKind::HostParent,
                                    pname.clone(),
                                    String::new(),
                                    Vec::new(),
                                );
                                host_ix.insert(pname, p);
                                t.host.push(p);
                                p
                            }
                        };
                        let label = kind_label(link);
                        // The parent's label lists each kind of child it has
                        // (type and VLAN id), as the issue asks.
                        let pn = &mut t.nodes[parent];
                        if !pn.detail.split(", ").any(|d| d == label) {
                            if !pn.detail.is_empty() {
                                pn.detail += ", ";
                            }
                            pn.detail += &label;
                        }
                        pn.props
                            .push(("child".into(), format!("{gname}:{} ({label})", link.dev)));
                        t.edges.push(Edge {
                            kind: EdgeKind::Host,
                            from: inner,
                            to: parent,
                            label,
                        });
                    }
                    Base::Local => {}
                }
            }
            if gb.nodes.is_empty() {
                let p = t.push(
                    NodeKind::Placeholder,
                    "(no links)".into(),
                    String::new(),
                    Vec::new(),
                );
                gb.nodes.push(p);
            }
            t.groups.push(gb);
        }
        for b in 0..t.bridges.len() {
            if t.bridges[b].nodes.is_empty() {
                let p = t.push(
                    NodeKind::Placeholder,
                    "(no ports)".into(),
                    String::new(),
                    Vec::new(),
                );
                t.bridges[b].nodes.push(p);
            }
        }
        t
    }

    /// Hover text of a node: one `key: value` per line.
    pub fn tooltip(&self, id: NodeId) -> String {
        let n = &self.nodes[id];
        let mut s = n.name.clone();
        for (k, v) in &n.props {
            s += &format!("\n{k}: {v}");
        }
        s
    }
}
