//! The diff: from an actual state to a desired one, the ordered operations
//! that get there. Setup (from nothing), teardown (to nothing), undo of a
//! failed step (back to the state before), config reload and adoption
//! after a restart are all this one function; there is no hand-written
//! inverse anywhere.
//!
//! [`record`] is the other half: applying an operation's effect to a state
//! value. The executor records each operation that succeeded into the
//! actual state, so `diff(record(a, diff(a, d)), d)` is empty (tested).

use std::fmt;
use std::net::Ipv4Addr;

use conlink_model::{BridgeMode, EthtoolSetting, IpNet, MacAddr, Netem, Route};
use serde::Serialize;

use crate::state::{CtrRef, CtrState, ForwardSpec, Globals, LinkState, State, TunnelState};

/// One step, in order. Container operations carry the container they act
/// on; the rest act on conlink's namespace.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// A bridge (linux, ovs; patch bridges exist only as state).
    CreateBridge { name: String, mode: BridgeMode },
    /// Removes a bridge.
    DeleteBridge { name: String, mode: BridgeMode },
    /// A tunnel interface joining its bridge.
    CreateTunnel { name: String, spec: TunnelState },
    /// Removes a tunnel interface.
    DeleteTunnel { name: String, spec: TunnelState },
    /// Adds a peer to a mesh tunnel's flood list (`bridge fdb append
    /// 00:00:00:00:00:00 dev NAME dst REMOTE`).
    AddFlood { name: String, remote: Ipv4Addr },
    /// Removes a peer from a mesh tunnel's flood list (`bridge fdb del …`).
    DelFlood { name: String, remote: Ipv4Addr },
    /// Replaces (or removes) a tunnel's netem.
    SetTunnelNetem {
        name: String,
        from: Option<Netem>,
        to: Option<Netem>,
    },
    /// IPv4 forwarding on in conlink's namespace (left on at removal: it
    /// may have been on before, and turning it off is nobody's business).
    EnableForwarding,
    /// Forgets the forwarding flag (no system change, see above).
    ForgetForwarding,
    /// Deletes conlink's nftables table in its namespace.
    DropForwardTable,
    /// Creates a link (identity, MAC, MTU), joins its bridge, down; the
    /// marker carries the hash of the final spec (`hash`).
    CreateLink {
        ctr: CtrRef,
        dev: String,
        link: LinkState,
        hash: String,
    },
    /// Deletes a link (a veth through its outer end).
    DeleteLink {
        ctr: CtrRef,
        dev: String,
        link: LinkState,
    },
    /// MTU in place (both ends of a veth).
    SetMtu {
        ctr: CtrRef,
        dev: String,
        outer: Option<String>,
        from: Option<u32>,
        to: u32,
    },
    /// MAC in place.
    SetMac {
        ctr: CtrRef,
        dev: String,
        from: Option<MacAddr>,
        to: MacAddr,
    },
    /// Adds an address.
    AddAddr {
        ctr: CtrRef,
        dev: String,
        addr: IpNet,
    },
    /// Removes an address.
    DelAddr {
        ctr: CtrRef,
        dev: String,
        addr: IpNet,
    },
    /// Adds a route.
    AddRoute {
        ctr: CtrRef,
        dev: String,
        route: Route,
    },
    /// Removes a route.
    DelRoute {
        ctr: CtrRef,
        dev: String,
        route: Route,
    },
    /// Replaces (or removes) the netem root qdisc.
    SetNetem {
        ctr: CtrRef,
        dev: String,
        from: Option<Netem>,
        to: Option<Netem>,
    },
    /// Applies the ethtool settings `to` (all of them, in order).
    SetEthtool {
        ctr: CtrRef,
        dev: String,
        from: Vec<EthtoolSetting>,
        to: Vec<EthtoolSetting>,
    },
    /// Administrative state, of both ends of a veth (`outer`: its end in
    /// conlink's namespace): an admin-down override must stop traffic in
    /// both directions, and `ip link` on either side should show it.
    SetUp {
        ctr: CtrRef,
        dev: String,
        outer: Option<String>,
        up: bool,
    },
    /// 1:1 NAT rule of a link: (address, NAT address); None removes it.
    SetNat {
        ctr: CtrRef,
        dev: String,
        from: Option<(Ipv4Addr, Ipv4Addr)>,
        to: Option<(Ipv4Addr, Ipv4Addr)>,
    },
    /// Deletes conlink's nftables table in the container.
    DropNatTable { ctr: CtrRef },
    /// Port forwards of a link (rules and both host routes); None removes.
    SetForward {
        ctr: CtrRef,
        dev: String,
        from: Option<ForwardSpec>,
        to: Option<ForwardSpec>,
    },
    /// Rewrites a link's ownership marker after in-place changes.
    Mark {
        ctr: CtrRef,
        dev: String,
        outer: Option<String>,
        hash: String,
    },
    /// Runs a configured command (by the reconciler, through the runtime).
    RunCommand { ctr: CtrRef, argv: Vec<String> },
    /// Forgets commands no longer configured (they ran; nothing to undo).
    ForgetCommands {
        ctr: CtrRef,
        commands: Vec<Vec<String>>,
    },
    /// Forgets a container entry with nothing left in it.
    ForgetContainer { ctr: CtrRef },
}

impl Op {
    /// The container this operation acts on, if any.
    pub fn ctr(&self) -> Option<&CtrRef> {
        use Op::*;
        match self {
            CreateLink { ctr, .. }
            | DeleteLink { ctr, .. }
            | SetMtu { ctr, .. }
            | SetMac { ctr, .. }
            | AddAddr { ctr, .. }
            | DelAddr { ctr, .. }
            | AddRoute { ctr, .. }
            | DelRoute { ctr, .. }
            | SetNetem { ctr, .. }
            | SetEthtool { ctr, .. }
            | SetUp { ctr, .. }
            | SetNat { ctr, .. }
            | DropNatTable { ctr }
            | SetForward { ctr, .. }
            | Mark { ctr, .. }
            | RunCommand { ctr, .. }
            | ForgetCommands { ctr, .. }
            | ForgetContainer { ctr } => Some(ctr),
            _ => None,
        }
    }

    /// Whether the operation only changes conlink's records (nothing on
    /// the system), so plans and change logs leave it out.
    pub fn is_bookkeeping(&self) -> bool {
        matches!(
            self,
            Op::ForgetCommands { .. }
                | Op::ForgetContainer { .. }
                | Op::ForgetForwarding
                | Op::Mark { .. }
        ) || matches!(
            self,
            Op::CreateBridge {
                mode: BridgeMode::Patch,
                ..
            } | Op::DeleteBridge {
                mode: BridgeMode::Patch,
                ..
            }
        )
    }
}

fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "none".into(), |v| v.to_string())
}

fn list<T: fmt::Display>(v: &[T]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn nat(v: &Option<(Ipv4Addr, Ipv4Addr)>) -> String {
    v.map_or_else(|| "none".into(), |(_, n)| n.to_string())
}

fn fwd(v: &Option<ForwardSpec>) -> String {
    v.as_ref()
        .map_or_else(|| "none".into(), |f| list(&f.forwards))
}

/// The one-line change log form: `node_1/eth0: mtu 1500 -> 9000`,
/// `bridge s4: created`, `h2_1/eth1: removed`.
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Op::*;
        match self {
            CreateBridge { name, mode } => {
                write!(f, "bridge {name}: created ({})", mode_str(*mode))
            }
            DeleteBridge { name, .. } => write!(f, "bridge {name}: removed"),
            CreateTunnel { name, spec } => match spec.remote {
                Some(r) if spec.per_peer => write!(
                    f,
                    "tunnel {name}: created (multi-host, peer {r}, VNI {}, bridge {}{})",
                    spec.vni,
                    spec.bridge,
                    if spec.isolated() { ", isolated" } else { "" }
                ),
                Some(r) => write!(
                    f,
                    "tunnel {name}: created (remote {r}, bridge {})",
                    spec.bridge
                ),
                None => write!(
                    f,
                    "tunnel {name}: created (multi-host, VNI {}, bridge {})",
                    spec.vni, spec.bridge
                ),
            },
            AddFlood { name, remote } => write!(f, "tunnel {name}: peer {remote} added"),
            DelFlood { name, remote } => write!(f, "tunnel {name}: peer {remote} removed"),
            DeleteTunnel { name, .. } => write!(f, "tunnel {name}: removed"),
            SetTunnelNetem { name, from, to } => {
                write!(f, "tunnel {name}: netem {} -> {}", opt(from), opt(to))
            }
            EnableForwarding => write!(f, "conlink: IPv4 forwarding enabled"),
            ForgetForwarding => write!(f, "conlink: forwarding no longer needed"),
            DropForwardTable => write!(f, "conlink: forward rules table removed"),
            CreateLink { ctr, dev, link, .. } => {
                write!(f, "{}/{dev}: created ({}", ctr.name, link.id.kind.as_str())?;
                if let Some(o) = &link.id.outer {
                    write!(f, ", {} on bridge {}", o.name, o.bridge)?;
                }
                write!(f, ")")
            }
            DeleteLink { ctr, dev, .. } => write!(f, "{}/{dev}: removed", ctr.name),
            SetMtu {
                ctr, dev, from, to, ..
            } => {
                write!(f, "{}/{dev}: mtu {} -> {to}", ctr.name, opt(from))
            }
            SetMac { ctr, dev, from, to } => {
                write!(f, "{}/{dev}: mac {} -> {to}", ctr.name, opt(from))
            }
            AddAddr { ctr, dev, addr } => write!(f, "{}/{dev}: address {addr} added", ctr.name),
            DelAddr { ctr, dev, addr } => write!(f, "{}/{dev}: address {addr} removed", ctr.name),
            AddRoute { ctr, dev, route } => write!(f, "{}/{dev}: route {route} added", ctr.name),
            DelRoute { ctr, dev, route } => {
                write!(f, "{}/{dev}: route {route} removed", ctr.name)
            }
            SetNetem { ctr, dev, from, to } => {
                write!(f, "{}/{dev}: netem {} -> {}", ctr.name, opt(from), opt(to))
            }
            SetEthtool { ctr, dev, from, to } => {
                write!(
                    f,
                    "{}/{dev}: ethtool {} -> {}",
                    ctr.name,
                    list(from),
                    list(to)
                )
            }
            SetUp { ctr, dev, up, .. } => {
                write!(f, "{}/{dev}: {}", ctr.name, if *up { "up" } else { "down" })
            }
            SetNat { ctr, dev, from, to } => {
                write!(f, "{}/{dev}: nat {} -> {}", ctr.name, nat(from), nat(to))
            }
            DropNatTable { ctr } => write!(f, "{}: nat table removed", ctr.name),
            SetForward { ctr, dev, from, to } => {
                write!(
                    f,
                    "{}/{dev}: forward {} -> {}",
                    ctr.name,
                    fwd(from),
                    fwd(to)
                )
            }
            Mark { ctr, dev, .. } => write!(f, "{}/{dev}: marker updated", ctr.name),
            RunCommand { ctr, argv } => write!(f, "{}: run {:?}", ctr.name, argv.join(" ")),
            ForgetCommands { ctr, commands } => {
                write!(
                    f,
                    "{}: {} command(s) no longer configured",
                    ctr.name,
                    commands.len()
                )
            }
            ForgetContainer { ctr } => write!(f, "{}: forgotten", ctr.name),
        }
    }
}

/// The name users write for a bridge mode.
pub fn mode_str(m: BridgeMode) -> &'static str {
    match m {
        BridgeMode::Linux => "linux",
        BridgeMode::Ovs => "ovs",
        BridgeMode::Patch => "patch",
    }
}

/// The whole diff: globals that others need first (creations), then each
/// container, then globals that must wait for the containers (removals).
pub fn diff(actual: &State, desired: &State) -> Vec<Op> {
    let mut ops = globals_pre(&actual.globals, &desired.globals);
    let names: std::collections::BTreeSet<&String> = actual
        .containers
        .keys()
        .chain(desired.containers.keys())
        .collect();
    for name in names {
        ops.extend(diff_container(
            actual.containers.get(name),
            desired.containers.get(name),
        ));
    }
    ops.extend(globals_post(&actual.globals, &desired.globals));
    ops
}

/// Globals to make or change before the containers' operations: new and
/// changed bridges, then new and changed tunnels (after the bridges they
/// join), then forwarding.
pub fn globals_pre(a: &Globals, d: &Globals) -> Vec<Op> {
    let mut ops = Vec::new();
    for (name, mode) in &d.bridges {
        match a.bridges.get(name) {
            Some(m) if m == mode => {}
            Some(m) => {
                ops.push(Op::DeleteBridge {
                    name: name.clone(),
                    mode: *m,
                });
                ops.push(Op::CreateBridge {
                    name: name.clone(),
                    mode: *mode,
                });
            }
            None => ops.push(Op::CreateBridge {
                name: name.clone(),
                mode: *mode,
            }),
        }
    }
    for (name, spec) in &d.tunnels {
        match a.tunnels.get(name) {
            Some(s) if s == spec => {}
            // The same device: netem and the flood list change in place
            // (a peer coming or going is one entry, not a new device).
            Some(s) if s.device() == spec.device() => {
                if s.netem != spec.netem {
                    ops.push(Op::SetTunnelNetem {
                        name: name.clone(),
                        from: s.netem.clone(),
                        to: spec.netem.clone(),
                    });
                }
                for r in s.flood.difference(&spec.flood) {
                    ops.push(Op::DelFlood {
                        name: name.clone(),
                        remote: *r,
                    });
                }
                for r in spec.flood.difference(&s.flood) {
                    ops.push(Op::AddFlood {
                        name: name.clone(),
                        remote: *r,
                    });
                }
            }
            Some(s) => {
                ops.push(Op::DeleteTunnel {
                    name: name.clone(),
                    spec: s.clone(),
                });
                ops.extend(create_tunnel(name, spec));
            }
            None => ops.extend(create_tunnel(name, spec)),
        }
    }
    if d.forwarding && !a.forwarding {
        ops.push(Op::EnableForwarding);
    }
    ops
}

/// A tunnel is made bare (no netem, no flood entries), then given them:
/// each step all or nothing, and the flood list is the same ops whether
/// the device is new or adopted.
fn create_tunnel(name: &str, spec: &TunnelState) -> Vec<Op> {
    let mut ops = vec![Op::CreateTunnel {
        name: name.to_string(),
        spec: spec.device(),
    }];
    if spec.netem.is_some() {
        ops.push(Op::SetTunnelNetem {
            name: name.to_string(),
            from: None,
            to: spec.netem.clone(),
        });
    }
    for r in &spec.flood {
        ops.push(Op::AddFlood {
            name: name.to_string(),
            remote: *r,
        });
    }
    ops
}

/// Globals to remove once the containers are done with them: the forward
/// table, tunnels, then bridges.
pub fn globals_post(a: &Globals, d: &Globals) -> Vec<Op> {
    let mut ops = Vec::new();
    if a.forward_table && !d.forward_table {
        ops.push(Op::DropForwardTable);
    }
    if a.forwarding && !d.forwarding {
        ops.push(Op::ForgetForwarding);
    }
    for (name, spec) in &a.tunnels {
        if !d.tunnels.contains_key(name) {
            ops.push(Op::DeleteTunnel {
                name: name.clone(),
                spec: spec.clone(),
            });
        }
    }
    for (name, mode) in &a.bridges {
        if !d.bridges.contains_key(name) {
            ops.push(Op::DeleteBridge {
                name: name.clone(),
                mode: *mode,
            });
        }
    }
    ops
}

/// One container's operations. A different instance under the same name
/// (new id or namespace) is the old one removed and the new one made.
pub fn diff_container(a: Option<&CtrState>, d: Option<&CtrState>) -> Vec<Op> {
    match (a, d) {
        (None, None) => Vec::new(),
        (Some(a), Some(d)) if a.ctr != d.ctr => {
            let mut ops = diff_same(a, &CtrState::empty(a.ctr.clone()));
            ops.push(Op::ForgetContainer { ctr: a.ctr.clone() });
            ops.extend(diff_same(&CtrState::empty(d.ctr.clone()), d));
            ops
        }
        (Some(a), Some(d)) => diff_same(a, d),
        (None, Some(d)) => diff_same(&CtrState::empty(d.ctr.clone()), d),
        (Some(a), None) => {
            let mut ops = diff_same(a, &CtrState::empty(a.ctr.clone()));
            ops.push(Op::ForgetContainer { ctr: a.ctr.clone() });
            ops
        }
    }
}

fn diff_same(a: &CtrState, d: &CtrState) -> Vec<Op> {
    let ctr = &a.ctr;
    let mut ops = Vec::new();
    // Removed links first (their names may be reused by new links).
    for (dev, al) in &a.links {
        let keep = d.links.get(dev).is_some_and(|dl| !must_recreate(al, dl));
        if !keep {
            ops.extend(remove_link(ctr, dev, al));
        }
    }
    let removals = ops.len();
    for (dev, dl) in &d.links {
        match a.links.get(dev) {
            Some(al) if !must_recreate(al, dl) => {
                let changes = link_props(ctr, dev, al, dl);
                if !changes.is_empty() {
                    ops.extend(changes);
                    ops.push(Op::Mark {
                        ctr: ctr.clone(),
                        dev: dev.clone(),
                        outer: dl.id.outer.as_ref().map(|o| o.name.clone()),
                        hash: dl.hash(),
                    });
                }
            }
            _ => {
                let base = dl.created();
                // The link is marked with what it is when made (no address,
                // down, …) and gets the full hash only once the rest is
                // done: a conlink killed in between must not adopt a
                // half-made link as finished (issue 12: SIGKILL during a
                // scale-up).
                ops.push(Op::CreateLink {
                    ctr: ctr.clone(),
                    dev: dev.clone(),
                    link: base.clone(),
                    hash: base.hash(),
                });
                let props = link_props(ctr, dev, &base, dl);
                if !props.is_empty() {
                    ops.extend(props);
                    ops.push(Op::Mark {
                        ctr: ctr.clone(),
                        dev: dev.clone(),
                        outer: dl.id.outer.as_ref().map(|o| o.name.clone()),
                        hash: dl.hash(),
                    });
                }
            }
        }
    }
    // The new links are made first, ethtool settings (ioctls) and netem
    // (tc) next, so that the link-level changes of all links follow in one
    // run the applier sends together (docs/performance.md); nothing in a
    // link's properties waits for another link's creation, and neither
    // ethtool nor a qdisc needs the link up. Routes that name
    // another dev of the container (`… via X dev eth1` on eth0's link) go
    // after every link exists and has its addresses; the markers after
    // everything they vouch for.
    let rest = ops.split_off(removals);
    let (made, rest): (Vec<Op>, Vec<Op>) = rest
        .into_iter()
        .partition(|o| matches!(o, Op::CreateLink { .. }));
    let (early, rest): (Vec<Op>, Vec<Op>) = rest
        .into_iter()
        .partition(|o| matches!(o, Op::SetEthtool { .. } | Op::SetNetem { .. }));
    ops.extend(made);
    ops.extend(early);
    ops.extend(rest);
    let (late, ops): (Vec<Op>, Vec<Op>) = ops.into_iter().partition(|o| {
        matches!(o, Op::AddRoute { dev, route, .. } if route.dev.as_deref().is_some_and(|rd| rd != dev))
    });
    let (marks, mut ops): (Vec<Op>, Vec<Op>) =
        ops.into_iter().partition(|o| matches!(o, Op::Mark { .. }));
    ops.extend(late);
    ops.extend(marks);
    if a.nat_table && !d.nat_table {
        ops.push(Op::DropNatTable { ctr: ctr.clone() });
    }
    let gone: Vec<Vec<String>> = a
        .commands
        .iter()
        .filter(|c| !d.commands.contains(c))
        .cloned()
        .collect();
    if !gone.is_empty() {
        ops.push(Op::ForgetCommands {
            ctr: ctr.clone(),
            commands: gone,
        });
    }
    for argv in &d.commands {
        if !a.commands.contains(argv) {
            ops.push(Op::RunCommand {
                ctr: ctr.clone(),
                argv: argv.clone(),
            });
        }
    }
    ops
}

/// What the kernel cannot change in place: kind, outer end, bridge, parent
/// and mode; and properties that have no "unset" to go back to (an MTU or
/// MAC removed, an ethtool setting removed), for which only a fresh link
/// gives what a fresh start would.
fn must_recreate(a: &LinkState, d: &LinkState) -> bool {
    a.id != d.id
        || (a.mtu.is_some() && d.mtu.is_none())
        || (a.mac.is_some() && d.mac.is_none())
        || !a.ethtool.iter().all(|s| d.ethtool.contains(s))
}

/// Removal of a link: its forwards and NAT first (the forward's host route
/// on the bridge survives the link otherwise), then the link.
fn remove_link(ctr: &CtrRef, dev: &str, al: &LinkState) -> Vec<Op> {
    let mut ops = Vec::new();
    if al.forward.is_some() {
        ops.push(Op::SetForward {
            ctr: ctr.clone(),
            dev: dev.into(),
            from: al.forward.clone(),
            to: None,
        });
    }
    if al.nat.is_some() {
        ops.push(Op::SetNat {
            ctr: ctr.clone(),
            dev: dev.into(),
            from: al.nat,
            to: None,
        });
    }
    let mut link = al.clone();
    link.forward = None;
    link.nat = None;
    ops.push(Op::DeleteLink {
        ctr: ctr.clone(),
        dev: dev.into(),
        link,
    });
    ops
}

/// In-place changes from `a` to `d` (same identity), in the order the
/// kernel needs: what depends on an address goes before it goes and comes
/// after it comes; ethtool before up (some settings want no traffic).
fn link_props(ctr: &CtrRef, dev: &str, a: &LinkState, d: &LinkState) -> Vec<Op> {
    let mut ops = Vec::new();
    let c = || ctr.clone();
    let dv = || dev.to_string();
    let fwd_change = a.forward != d.forward;
    let nat_change = a.nat != d.nat;
    if fwd_change && a.forward.is_some() {
        ops.push(Op::SetForward {
            ctr: c(),
            dev: dv(),
            from: a.forward.clone(),
            to: None,
        });
    }
    if nat_change && a.nat.is_some() {
        ops.push(Op::SetNat {
            ctr: c(),
            dev: dv(),
            from: a.nat,
            to: None,
        });
    }
    // Routes that go, last first (a later route may depend on an earlier).
    let route_gone: Vec<&Route> = a.routes.iter().filter(|r| !d.routes.contains(r)).collect();
    let addr_gone: Vec<&IpNet> = a.addrs.iter().filter(|x| !d.addrs.contains(x)).collect();
    // A kept route may hang on an address that goes: the kernel drops it
    // with the address, so it is removed and added again explicitly.
    let readd: Vec<&Route> = if addr_gone.is_empty() {
        Vec::new()
    } else {
        a.routes.iter().filter(|r| d.routes.contains(r)).collect()
    };
    for r in route_gone.iter().rev().chain(readd.iter().rev()) {
        ops.push(Op::DelRoute {
            ctr: c(),
            dev: dv(),
            route: (*r).clone(),
        });
    }
    for x in &addr_gone {
        ops.push(Op::DelAddr {
            ctr: c(),
            dev: dv(),
            addr: **x,
        });
    }
    if let (Some(to), true) = (d.mtu, d.mtu != a.mtu) {
        ops.push(Op::SetMtu {
            ctr: c(),
            dev: dv(),
            outer: d.id.outer.as_ref().map(|o| o.name.clone()),
            from: a.mtu,
            to,
        });
    }
    if let (Some(to), true) = (d.mac, d.mac != a.mac) {
        ops.push(Op::SetMac {
            ctr: c(),
            dev: dv(),
            from: a.mac,
            to,
        });
    }
    if a.ethtool != d.ethtool {
        ops.push(Op::SetEthtool {
            ctr: c(),
            dev: dv(),
            from: a.ethtool.clone(),
            to: d.ethtool.clone(),
        });
    }
    if a.up != d.up {
        ops.push(Op::SetUp {
            ctr: c(),
            dev: dv(),
            outer: d.id.outer.as_ref().map(|o| o.name.clone()),
            up: d.up,
        });
    }
    for x in &d.addrs {
        if !a.addrs.contains(x) {
            ops.push(Op::AddAddr {
                ctr: c(),
                dev: dv(),
                addr: *x,
            });
        }
    }
    for r in &d.routes {
        if !a.routes.contains(r) || readd.contains(&r) {
            ops.push(Op::AddRoute {
                ctr: c(),
                dev: dv(),
                route: r.clone(),
            });
        }
    }
    if a.netem != d.netem {
        ops.push(Op::SetNetem {
            ctr: c(),
            dev: dv(),
            from: a.netem.clone(),
            to: d.netem.clone(),
        });
    }
    if nat_change && d.nat.is_some() {
        ops.push(Op::SetNat {
            ctr: c(),
            dev: dv(),
            from: None,
            to: d.nat,
        });
    }
    if fwd_change && d.forward.is_some() {
        ops.push(Op::SetForward {
            ctr: c(),
            dev: dv(),
            from: None,
            to: d.forward.clone(),
        });
    }
    ops
}

/// Records a successful operation's effect on globals.
pub fn record_global(g: &mut Globals, op: &Op) {
    match op {
        Op::CreateBridge { name, mode } => {
            g.bridges.insert(name.clone(), *mode);
        }
        Op::DeleteBridge { name, .. } => {
            g.bridges.remove(name);
        }
        Op::CreateTunnel { name, spec } => {
            g.tunnels.insert(name.clone(), spec.clone());
        }
        Op::DeleteTunnel { name, .. } => {
            g.tunnels.remove(name);
        }
        Op::SetTunnelNetem { name, to, .. } => {
            if let Some(t) = g.tunnels.get_mut(name) {
                t.netem = to.clone();
            }
        }
        Op::AddFlood { name, remote } => {
            if let Some(t) = g.tunnels.get_mut(name) {
                t.flood.insert(*remote);
            }
        }
        Op::DelFlood { name, remote } => {
            if let Some(t) = g.tunnels.get_mut(name) {
                t.flood.remove(remote);
            }
        }
        Op::EnableForwarding => {
            g.forwarding = true;
            // The table is made on the first forward; recorded here so a
            // teardown always removes it.
            g.forward_table = true;
        }
        Op::ForgetForwarding => g.forwarding = false,
        Op::DropForwardTable => g.forward_table = false,
        _ => {}
    }
}

/// Records a successful container operation's effect; `slot` is the
/// container's entry (None: no entry yet). Returns the new entry.
pub fn record_container(slot: Option<CtrState>, op: &Op) -> Option<CtrState> {
    let Some(ctr) = op.ctr() else {
        return slot;
    };
    if let Op::ForgetContainer { .. } = op {
        return None;
    }
    let mut st = match slot {
        Some(s) if s.ctr == *ctr => s,
        _ => CtrState::empty(ctr.clone()),
    };
    match op {
        Op::CreateLink { dev, link, .. } => {
            st.links.insert(dev.clone(), link.clone());
        }
        Op::DeleteLink { dev, .. } => {
            st.links.remove(dev);
        }
        Op::DropNatTable { .. } => st.nat_table = false,
        Op::RunCommand { argv, .. } => {
            if !st.commands.contains(argv) {
                st.commands.push(argv.clone());
            }
        }
        Op::ForgetCommands { commands, .. } => st.commands.retain(|c| !commands.contains(c)),
        _ => {
            let dev = match op {
                Op::SetMtu { dev, .. }
                | Op::SetMac { dev, .. }
                | Op::AddAddr { dev, .. }
                | Op::DelAddr { dev, .. }
                | Op::AddRoute { dev, .. }
                | Op::DelRoute { dev, .. }
                | Op::SetNetem { dev, .. }
                | Op::SetEthtool { dev, .. }
                | Op::SetUp { dev, .. }
                | Op::SetNat { dev, .. }
                | Op::SetForward { dev, .. }
                | Op::Mark { dev, .. } => dev,
                _ => return Some(st),
            };
            if let Op::SetNat { to: Some(_), .. } = op {
                st.nat_table = true;
            }
            if let Some(l) = st.links.get_mut(dev) {
                record_link(l, op);
            }
        }
    }
    Some(st)
}

fn record_link(l: &mut LinkState, op: &Op) {
    match op {
        Op::SetMtu { to, .. } => l.mtu = Some(*to),
        Op::SetMac { to, .. } => l.mac = Some(*to),
        // Exactly one more each (a Vec grows to 4 for the first): this is
        // the actual state of every link, kept for the daemon's life.
        Op::AddAddr { addr, .. } if !l.addrs.contains(addr) => {
            l.addrs.reserve_exact(1);
            l.addrs.push(*addr)
        }
        Op::DelAddr { addr, .. } => l.addrs.retain(|x| x != addr),
        Op::AddRoute { route, .. } if !l.routes.contains(route) => {
            l.routes.reserve_exact(1);
            l.routes.push(route.clone())
        }
        Op::DelRoute { route, .. } => l.routes.retain(|r| r != route),
        Op::SetNetem { to, .. } => l.netem = to.clone(),
        Op::SetEthtool { to, .. } => l.ethtool = to.clone(),
        Op::SetUp { up, .. } => l.up = *up,
        Op::SetNat { to, .. } => l.nat = *to,
        Op::SetForward { to, .. } => l.forward = to.clone(),
        _ => {}
    }
}

/// Records a successful operation into a whole state.
pub fn record(s: &mut State, op: &Op) {
    match op.ctr() {
        None => record_global(&mut s.globals, op),
        Some(c) => {
            let slot = s.containers.remove(&c.name);
            if let Some(st) = record_container(slot, op) {
                s.containers.insert(st.ctr.name.clone(), st);
            }
        }
    }
}
