//! Semantic checks and enrichment: the validated raw config (plain JSON)
//! becomes the typed [`NetworkConfig`] (spec §4–§7).
//!
//! This is where strings become typed values (addresses, routes, netem,
//! forwards, ethtool settings), defaults are filled in and bridge modes are
//! resolved, and where the checks the schema cannot express live: octet and
//! prefix ranges, MTU and VLAN ranges, unparsable routes or netem options,
//! forward misuse, a patch bridge with more than two ends, duplicate tunnel
//! or outer interface names.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;

use conlink_model::{
    Bridge, BridgeMode, Command, CommandSpec, EthtoolSetting, Forward, Group, IpNet, Link,
    LinkType, MacAddr, Netem, NetworkConfig, Route, Target, Tunnel, TunnelType,
};
use serde::Deserialize;
use serde_json::Value;

use crate::{BridgeModeSetting, LoadOptions, PathError};

/// The tx-offload setting veth links get first unless `--keep-veth-offload`
/// (checksum offload on veth breaks some traffic between namespaces).
pub const VETH_OFFLOAD_OFF: &str = "--offload tx off";

/// Smallest MTU the kernel accepts for IPv4 interfaces.
pub const MTU_MIN: u32 = 68;
/// Largest MTU of a veth (and what the 16-bit IPv4 total length allows).
pub const MTU_MAX: u32 = 65535;

/// A string or a list of strings, as users may write `route`, `netem`,
/// `forward`, `ethtool` and `command`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The entries with their pointer suffix (`""` for a lone string).
    fn items(&self) -> Vec<(String, &str)> {
        match self {
            OneOrMany::One(s) => vec![(String::new(), s.as_str())],
            OneOrMany::Many(v) => v
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("/{i}"), s.as_str()))
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawLink {
    #[serde(rename = "type")]
    link_type: Option<LinkType>,
    service: Option<String>,
    container: Option<String>,
    bridge: Option<String>,
    dev: Option<String>,
    outer_dev: Option<String>,
    ip: Option<OneOrMany>,
    mac: Option<String>,
    mtu: Option<i64>,
    route: Option<OneOrMany>,
    nat: Option<String>,
    netem: Option<OneOrMany>,
    mode: Option<String>,
    vlanid: Option<i64>,
    forward: Option<OneOrMany>,
    ethtool: Option<OneOrMany>,
    ipv6: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct RawBridge {
    bridge: String,
    mode: Option<String>,
    vni: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct RawTunnel {
    #[serde(rename = "type")]
    tunnel_type: TunnelType,
    bridge: String,
    remote: String,
    vni: u64,
    port: Option<u16>,
    netem: Option<OneOrMany>,
}

#[derive(Debug, Deserialize)]
struct RawCommand {
    service: Option<String>,
    container: Option<String>,
    command: OneOrMany,
}

struct Ctx<'a> {
    errs: Vec<PathError>,
    warns: Vec<PathError>,
    /// Pointers the schema rejected.
    bad: HashSet<&'a str>,
    /// Every proper ancestor of a pointer in `bad` (`/links/3` for
    /// `/links/3/ip`), so both lookups below are a few hash probes, not a
    /// scan of `bad`: with 20,000 bad items the scans made loading take
    /// minutes.
    bad_ancestors: HashSet<&'a str>,
}

/// The properties each `bridges`, `tunnels` and `commands` entry knows;
/// others are ignored with a warning (the original ignored them silently).
const ENTRY_KEYS: &[(&str, &[&str])] = &[
    ("bridges", &["bridge", "mode"]),
    (
        "tunnels",
        &["type", "bridge", "remote", "vni", "port", "netem"],
    ),
    ("commands", &["service", "container", "command"]),
];

impl Ctx<'_> {
    /// Records a warning: the value is ignored, loading goes on.
    fn warn(&mut self, ptr: impl Into<String>, message: impl Into<String>) {
        self.warns.push(PathError {
            ptr: ptr.into(),
            message: message.into(),
        });
    }

    /// Records an error, unless the schema already reported one at (or
    /// above) the same property: one clear error per mistake is enough.
    fn err(&mut self, ptr: impl Into<String>, message: impl Into<String>) {
        let ptr = ptr.into();
        // `/links/3` (a whole item) does not hide errors in other
        // properties of that item; `/links/3/ip` hides `/links/3/ip/…`.
        let dup = prefixes(&ptr).any(|p| p.matches('/').count() > 2 && self.bad.contains(p));
        if !dup {
            self.errs.push(PathError {
                ptr,
                message: message.into(),
            });
        }
    }

    /// Whether the schema rejected something inside the item at `ptr`.
    fn rejected(&self, ptr: &str) -> bool {
        self.bad.contains(ptr) || self.bad_ancestors.contains(ptr)
    }

    /// Deserializes every item of list `key`. Items the schema rejected are
    /// still enriched when they deserialize, so their other mistakes are
    /// reported too; if they do not, the schema error says why.
    fn items<T: for<'de> Deserialize<'de>>(&mut self, root: &Value, key: &str) -> Vec<(String, T)> {
        let Some(list) = root.get(key).and_then(Value::as_array) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(list.len());
        for (i, v) in list.iter().enumerate() {
            let ptr = format!("/{key}/{i}");
            match T::deserialize(v) {
                Ok(t) => out.push((ptr, t)),
                Err(_) if self.rejected(&ptr) => {}
                // The schema should have caught this; say what serde saw.
                Err(e) => self.err(ptr, e.to_string()),
            }
        }
        out
    }

    /// Parses `s` with `FromStr`, recording an error at `ptr` on failure.
    fn parse<T: std::str::FromStr>(&mut self, ptr: &str, s: &str) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        match s.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.err(ptr, e.to_string());
                None
            }
        }
    }
}

/// An IPv4 address whose parse error names the value.
struct Addr(Ipv4Addr);

impl std::str::FromStr for Addr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse()
            .map(Addr)
            .map_err(|_| format!("{s:?} is not an IPv4 address"))
    }
}

fn target(service: Option<String>, container: Option<String>) -> Option<Target> {
    match (service, container) {
        (Some(s), None) => Some(Target::Service(s)),
        (None, Some(c)) => Some(Target::Container(c)),
        _ => None,
    }
}

/// `ptr` and each of its ancestors (`/a/b/c`, `/a/b`, `/a`, ``).
fn prefixes(ptr: &str) -> impl Iterator<Item = &str> {
    std::iter::once(ptr).chain(ptr.rmatch_indices('/').map(move |(i, _)| &ptr[..i]))
}

/// A config that loaded, with the warnings about what was ignored.
pub type Enriched = (NetworkConfig, Vec<PathError>);

/// Checks and enriches the merged, schema-checked config. `bad` holds the
/// pointers the schema rejected; those items are skipped so each mistake is
/// reported once. On success also returns the warnings (values ignored
/// where the original was lenient, spec §4).
pub fn enrich(
    root: &Value,
    opts: &LoadOptions,
    bad: &[String],
) -> Result<Enriched, Vec<PathError>> {
    let mut cx = Ctx {
        errs: Vec::new(),
        warns: Vec::new(),
        bad: bad.iter().map(String::as_str).collect(),
        bad_ancestors: bad
            .iter()
            .flat_map(|b| prefixes(b).filter(move |p| p.len() < b.len()))
            .collect(),
    };
    let mut cfg = NetworkConfig::default();

    for (key, known) in ENTRY_KEYS {
        let Some(list) = root.get(*key).and_then(Value::as_array) else {
            continue;
        };
        for (i, item) in list.iter().enumerate() {
            let Some(m) = item.as_object() else { continue };
            for k in m.keys().filter(|k| !known.contains(&k.as_str())) {
                cx.warn(
                    format!("/{key}/{i}/{}", crate::tree::escape(k)),
                    format!("unknown property {k:?} (ignored)"),
                );
            }
        }
    }

    // Links first: bridges named only in links need to be known.
    let raw_links: Vec<(String, RawLink)> = cx.items(root, "links");
    let mut links: Vec<(String, Link)> = Vec::with_capacity(raw_links.len());
    for (i, (ptr, raw)) in raw_links.into_iter().enumerate() {
        let _ = i;
        if let Some(l) = link(&mut cx, &ptr, raw, opts) {
            links.push((ptr, l));
        }
    }

    // Bridges: declared ones, then those only named by links and tunnels.
    let mut modes: Vec<(String, String, BridgeModeSetting)> = Vec::new();
    let mut vnis: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for (ptr, b) in cx.items::<RawBridge>(root, "bridges") {
        let mode = match &b.mode {
            Some(m) => match cx.parse::<BridgeModeSetting>(&format!("{ptr}/mode"), m) {
                Some(m) => m,
                None => continue,
            },
            None => opts.default_bridge_mode,
        };
        if let Some(v) = b.vni {
            vnis.insert(b.bridge.clone(), v);
        }
        modes.push((b.bridge, ptr, mode));
    }
    let raw_tunnels: Vec<(String, RawTunnel)> = cx.items(root, "tunnels");
    let mut named: Vec<(String, String)> = links
        .iter()
        .filter_map(|(p, l)| l.bridge.clone().map(|b| (b, format!("{p}/bridge"))))
        .collect();
    named.extend(
        raw_tunnels
            .iter()
            .map(|(p, t)| (t.bridge.clone(), format!("{p}/bridge"))),
    );
    for (name, ptr) in named {
        if !modes.iter().any(|(n, _, _)| *n == name) {
            modes.push((name, ptr, opts.default_bridge_mode));
        }
    }
    let mut auto: Vec<&str> = Vec::new();
    for (name, _, setting) in &modes {
        if *setting == BridgeModeSetting::Auto {
            auto.push(name);
        }
        let mode = resolve_mode(*setting, opts.ovs_loaded);
        cfg.bridges.insert(
            name.clone(),
            Bridge {
                bridge: name.clone(),
                mode,
                vni: vnis.get(name).copied(),
            },
        );
    }
    if !auto.is_empty() {
        let mode = resolve_mode(BridgeModeSetting::Auto, opts.ovs_loaded);
        let why = if opts.ovs_loaded {
            "openvswitch module loaded"
        } else {
            "openvswitch module not loaded"
        };
        let mode = match mode {
            BridgeMode::Ovs => "ovs",
            _ => "linux",
        };
        tracing::info!(
            "bridge mode auto -> {mode} ({why}) for bridge{} {}",
            if auto.len() == 1 { "" } else { "s" },
            auto.join(", ")
        );
    }

    // Tunnels.
    let mut tunnel_names: HashSet<String> = HashSet::new();
    for (ptr, t) in raw_tunnels {
        let remote = cx
            .parse::<Addr>(&format!("{ptr}/remote"), &t.remote)
            .map(|a| a.0);
        let netem = t
            .netem
            .as_ref()
            .and_then(|n| parse_netem(&mut cx, &format!("{ptr}/netem"), n));
        let Ok(vni) = u32::try_from(t.vni) else {
            cx.err(format!("{ptr}/vni"), "vni must be below 2^24 (16777216)");
            continue;
        };
        let (Some(remote), true) = (remote, t.netem.is_none() || netem.is_some()) else {
            continue;
        };
        let tun = Tunnel {
            tunnel_type: t.tunnel_type,
            bridge: t.bridge,
            remote,
            vni,
            port: Some(t.port.unwrap_or(t.tunnel_type.default_port())),
            netem,
        };
        if !tunnel_names.insert(tun.ifname()) {
            cx.err(
                ptr,
                format!(
                    "duplicate tunnel {} (type and vni must be unique)",
                    tun.ifname()
                ),
            );
            continue;
        }
        cfg.tunnels.push(tun);
    }

    cross_checks(&mut cx, &cfg, &links);
    name_collisions(&mut cx, &modes, &links);

    for (_, l) in links {
        group(&mut cfg, &l.target).links.push(l);
    }
    // A Link is ~1 KB and a Vec grows to 4 for 2 or 3 of them: with
    // thousands of containers the slack was MBs (docs/performance.md).
    for g in cfg.services.values_mut().chain(cfg.containers.values_mut()) {
        g.links.shrink_to_fit();
    }

    // Commands.
    for (_, c) in cx.items::<RawCommand>(root, "commands") {
        let Some(t) = target(c.service, c.container) else {
            // the schema reports the missing or doubled target
            continue;
        };
        let command = match c.command {
            OneOrMany::One(s) => CommandSpec::Shell(s),
            OneOrMany::Many(v) => CommandSpec::Argv(v),
        };
        group(&mut cfg, &t)
            .commands
            .push(Command { target: t, command });
    }

    if cx.errs.is_empty() {
        Ok((cfg, cx.warns))
    } else {
        Err(cx.errs)
    }
}

fn group<'a>(cfg: &'a mut NetworkConfig, t: &Target) -> &'a mut Group {
    match t {
        Target::Service(s) => cfg.services.entry(s.clone()).or_default(),
        Target::Container(c) => cfg.containers.entry(c.clone()).or_default(),
    }
}

/// Resolves `auto` (spec §5): ovs if the openvswitch module is loaded.
fn resolve_mode(setting: BridgeModeSetting, ovs_loaded: bool) -> BridgeMode {
    match setting {
        BridgeModeSetting::Linux => BridgeMode::Linux,
        BridgeModeSetting::Ovs => BridgeMode::Ovs,
        BridgeModeSetting::Patch => BridgeMode::Patch,
        BridgeModeSetting::Auto if ovs_loaded => BridgeMode::Ovs,
        BridgeModeSetting::Auto => BridgeMode::Linux,
    }
}

fn parse_netem(cx: &mut Ctx, ptr: &str, n: &OneOrMany) -> Option<Netem> {
    // A list of netem option groups is one qdisc: join them.
    let joined = match n {
        OneOrMany::One(s) => s.clone(),
        OneOrMany::Many(v) => v.join(" "),
    };
    cx.parse(ptr, &joined)
}

/// Enriches one link; `None` if it had errors (already recorded).
/// What makes default MACs differ between hosts (two conlinks joined by a
/// tunnel may run the same service names): the machine id, else the host
/// name. Read once per process.
fn host_salt() -> &'static str {
    static SALT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SALT.get_or_init(|| {
        [
            "/etc/machine-id",
            "/var/lib/dbus/machine-id",
            "/etc/hostname",
        ]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_default()
    })
}

fn link(cx: &mut Ctx, ptr: &str, raw: RawLink, opts: &LoadOptions) -> Option<Link> {
    let before = cx.errs.len();
    // A missing or doubled target is the schema's to report; the other
    // properties are still checked.
    let target = target(raw.service, raw.container);
    let link_type = raw.link_type.unwrap_or(LinkType::Veth);
    let p = |k: &str| format!("{ptr}/{k}");

    let mut ip: Vec<IpNet> = Vec::new();
    if let Some(list) = &raw.ip {
        for (suffix, s) in list.items() {
            if let Some(a) = cx.parse::<IpNet>(&format!("{}{suffix}", p("ip")), s) {
                ip.push(a);
            }
        }
    }
    let mac = match raw.mac.as_deref() {
        Some(s) => {
            let m = cx.parse::<MacAddr>(&p("mac"), s);
            if let Some(m) = m.filter(|m| m.0[0] & 1 == 1) {
                cx.err(
                    p("mac"),
                    format!("{m} is a multicast MAC (first octet is odd)"),
                );
            }
            m
        }
        None if matches!(link_type, LinkType::Ipvlan | LinkType::Ipvtap) => None,
        // Derived, not random: the same link wants the same MAC on every
        // load, so reloads and restarts leave it alone.
        None => Some(MacAddr::derived_c2(
            format!(
                "{}/{}/{}",
                host_salt(),
                match &target {
                    Some(Target::Service(s)) => format!("service/{s}"),
                    Some(Target::Container(c)) => format!("container/{c}"),
                    None => String::new(),
                },
                raw.dev.as_deref().unwrap_or("eth0")
            )
            .as_bytes(),
        )),
    };
    let mtu = match raw.mtu {
        Some(m) => match u32::try_from(m)
            .ok()
            .filter(|m| (MTU_MIN..=MTU_MAX).contains(m))
        {
            Some(m) => Some(m),
            None => {
                cx.err(
                    p("mtu"),
                    format!("mtu {m} out of range {MTU_MIN}..={MTU_MAX}"),
                );
                None
            }
        },
        None if link_type.has_parent() => None,
        None => Some(opts.default_mtu),
    };
    // Lenient as the original: a mode on a veth and a vlanid on anything but
    // a vlan are ignored with a warning.
    let mut mode = raw.mode.clone();
    if link_type == LinkType::Veth && mode.is_some() {
        cx.warn(
            p("mode"),
            "mode applies to macvlan, macvtap, ipvlan and ipvtap links (ignored on a veth link)",
        );
        mode = None;
    }
    let raw_vlanid = if link_type != LinkType::Vlan && raw.vlanid.is_some() {
        cx.warn(
            p("vlanid"),
            format!(
                "vlanid applies to vlan links only (ignored on a {} link)",
                link_type.as_str()
            ),
        );
        None
    } else {
        raw.vlanid
    };
    let vlanid = match raw_vlanid {
        Some(v) => match u16::try_from(v).ok().filter(|v| (1..=4094).contains(v)) {
            Some(v) => Some(v),
            None => {
                cx.err(p("vlanid"), format!("vlanid {v} out of range 1..=4094"));
                None
            }
        },
        None => None,
    };
    let mut route = Vec::new();
    if let Some(r) = &raw.route {
        for (suffix, s) in r.items() {
            if let Some(r) = cx.parse::<Route>(&format!("{}{suffix}", p("route")), s) {
                route.push(r);
            }
        }
    }
    route.shrink_to_fit();
    let nat = raw
        .nat
        .as_deref()
        .and_then(|s| cx.parse::<Addr>(&p("nat"), s))
        .map(|a| a.0);
    let netem = raw
        .netem
        .as_ref()
        .and_then(|n| parse_netem(cx, &p("netem"), n));
    let mut forward = Vec::new();
    if let Some(f) = &raw.forward {
        for (suffix, s) in f.items() {
            if let Some(f) = cx.parse::<Forward>(&format!("{}{suffix}", p("forward")), s) {
                forward.push(f);
            }
        }
    }
    let mut ethtool = Vec::new();
    if link_type == LinkType::Veth && !opts.keep_veth_offload {
        // cannot fail: a constant the unit tests parse
        if let Ok(e) = VETH_OFFLOAD_OFF.parse::<EthtoolSetting>() {
            ethtool.push(e);
        }
    }
    if let Some(e) = &raw.ethtool {
        for (suffix, s) in e.items() {
            if let Some(e) = cx.parse::<EthtoolSetting>(&format!("{}{suffix}", p("ethtool")), s) {
                ethtool.push(e);
            }
        }
    }
    ethtool.shrink_to_fit();
    // `ipv6: false` is an IPv4-only link: an IPv6 address on it would get
    // no link-local neighbour and contradict the key.
    let ipv6 = raw.ipv6.unwrap_or(true);
    if !ipv6 && ip.iter().any(|a| a.is_ipv6()) {
        cx.err(
            p("ipv6"),
            "ipv6: false, but ip has an IPv6 address (drop one or the other)",
        );
    }
    // NAT and port forwards stay IPv4: they need an IPv4 address among `ip`.
    let has_v4 = ip.iter().any(|a| !a.is_ipv6());
    if !ip.is_empty() && !has_v4 {
        if raw.nat.is_some() {
            cx.err(
                p("nat"),
                "nat needs an IPv4 address in ip (NAT is IPv4 only)",
            );
        }
        if raw.forward.is_some() {
            cx.err(
                p("forward"),
                "forward needs an IPv4 address in ip (port forwarding is IPv4 only)",
            );
        }
    }
    if cx.errs.len() > before {
        return None;
    }
    let target = target?;
    Some(Link {
        link_type,
        target,
        dev: raw.dev.unwrap_or_else(|| "eth0".into()),
        outer_dev: raw.outer_dev,
        bridge: raw.bridge,
        ip,
        mac,
        mtu,
        route,
        nat,
        netem,
        mode,
        vlanid,
        forward,
        ethtool,
        ipv6,
        base: link_type.base(),
    })
}

/// Checks between links, bridges and tunnels.
/// Names conlink's own namespace already holds, or that the kernel or OVS
/// create there: an interface of the config named so would fail to create,
/// or worse, take over (and later delete) the existing one.
const RESERVED_IFNAMES: &[&str] = &["lo", "DOCKER-ETH0", "ovs-system", "ovs-netdev"];

/// Why `name` may not be a bridge or veth outer-dev in conlink's namespace.
fn reserved_ifname(name: &str) -> Option<String> {
    if RESERVED_IFNAMES.contains(&name) {
        return Some(format!(
            "{name:?} is an interface conlink's namespace already has (reserved: {})",
            RESERVED_IFNAMES.join(", ")
        ));
    }
    // Tunnel interfaces are named TYPE-VNI (vxlan-1001); any name of that
    // shape is kept for them, so adding a tunnel later cannot collide.
    let tunnel_like = ["vxlan-", "geneve-"].iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    tunnel_like.then(|| {
        format!("{name:?} is named like a tunnel interface (TYPE-VNI names are kept for tunnels)")
    })
}

/// Interface-name collisions: in conlink's namespace bridges, veth
/// outer-devs and tunnels share one name space with the reserved names;
/// in a container, `lo` is always there already.
fn name_collisions(
    cx: &mut Ctx,
    modes: &[(String, String, BridgeModeSetting)],
    links: &[(String, Link)],
) {
    let bridges: HashSet<&str> = modes.iter().map(|(n, _, _)| n.as_str()).collect();
    for (name, ptr, _) in modes {
        if let Some(why) = reserved_ifname(name) {
            let ptr = if ptr.ends_with("/bridge") {
                ptr.clone()
            } else {
                format!("{ptr}/bridge")
            };
            cx.err(ptr, format!("bridge {why}"));
        }
    }
    for (ptr, l) in links {
        if l.dev == "lo" {
            cx.err(
                format!("{ptr}/dev"),
                "dev \"lo\": every container already has its loopback interface",
            );
        }
        let (LinkType::Veth, Some(o)) = (l.link_type, l.outer_dev.as_deref()) else {
            continue;
        };
        if let Some(why) = reserved_ifname(o) {
            cx.err(format!("{ptr}/outer-dev"), format!("outer-dev {why}"));
        } else if bridges.contains(o) {
            cx.err(
                format!("{ptr}/outer-dev"),
                format!("outer-dev {o:?} is also the name of a bridge"),
            );
        }
    }
}

fn cross_checks(cx: &mut Ctx, cfg: &NetworkConfig, links: &[(String, Link)]) {
    // Patch bridges join exactly two ends (links or tunnels).
    let mut ends: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &cfg.tunnels {
        *ends.entry(t.bridge.as_str()).or_default() += 1;
    }
    let mut forwards: HashMap<(u16, conlink_model::Proto), ()> = HashMap::new();
    let mut outer: HashSet<&str> = HashSet::new();
    // A route may go out of another dev of the same container: one that a
    // link of the same service or container creates.
    let devs: HashSet<(&Target, &str)> = links
        .iter()
        .map(|(_, l)| (&l.target, l.dev.as_str()))
        .collect();
    for (ptr, l) in links {
        for (i, r) in l.route.iter().enumerate() {
            let Some(d) = r.dev.as_deref() else { continue };
            if !devs.contains(&(&l.target, d)) {
                let rptr = if l.route.len() > 1 {
                    format!("{ptr}/route/{i}")
                } else {
                    format!("{ptr}/route")
                };
                let (kind, name) = match &l.target {
                    Target::Service(s) => ("service", s),
                    Target::Container(c) => ("container", c),
                };
                cx.err(
                    rptr,
                    format!("route {r}: no link of {kind} {name} creates dev {d}"),
                );
            }
        }
    }
    for (ptr, l) in links {
        let mode = l
            .bridge
            .as_deref()
            .and_then(|b| cfg.bridges.get(b))
            .map(|b| b.mode);
        if let (Some(b), Some(BridgeMode::Patch)) = (l.bridge.as_deref(), mode) {
            let n = ends.entry(b).or_default();
            *n += 1;
            if *n > 2 {
                cx.err(
                    format!("{ptr}/bridge"),
                    format!(
                        "patch bridge {b:?} already has two ends (a patch joins exactly two links or tunnels)"
                    ),
                );
            }
            if !l.forward.is_empty() {
                cx.err(
                    format!("{ptr}/forward"),
                    format!(
                        "port forwarding needs a linux or ovs bridge, and {b:?} is a patch bridge"
                    ),
                );
            }
        }
        for (j, f) in l.forward.iter().enumerate() {
            if forwards.insert((f.conlink_port, f.proto), ()).is_some() {
                cx.err(
                    format!("{ptr}/forward/{j}"),
                    format!(
                        "conlink port {}/{} is already forwarded by another link",
                        f.conlink_port, f.proto
                    ),
                );
            }
        }
        if let (LinkType::Veth, Some(o)) = (l.link_type, l.outer_dev.as_deref()) {
            if !outer.insert(o) {
                cx.err(
                    format!("{ptr}/outer-dev"),
                    format!("outer-dev {o:?} is already used by another link"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_offload_constant_parses() {
        let e: EthtoolSetting = VETH_OFFLOAD_OFF.parse().unwrap();
        assert_eq!(e.to_string(), VETH_OFFLOAD_OFF);
    }
}
