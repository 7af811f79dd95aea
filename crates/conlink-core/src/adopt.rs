//! Adoption after a restart: the actual state rediscovered from the
//! kernel by conlink's ownership markers. A link whose marker hash equals
//! the hash of what the config wants now is taken as it is (same ifindex,
//! traffic keeps flowing); anything else becomes a placeholder that the
//! diff removes (and, when still wanted, makes again). Nothing is changed
//! here: the reconciler applies `diff(adopted, desired)` like any change.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use conlink_model::{BridgeMode, LinkType, TunnelType};
use tracing::{info, warn};

use crate::apply::{hash_json, BRIDGE_MARKER, NETNS_MARKER};
use crate::desired::{desired_globals, Inputs};
use crate::kernel::{KResult, Kernel, Marked, Ns};
use crate::state::{
    CtrRef, CtrState, ForwardSpec, Globals, LinkIdentity, LinkState, Outer, State, TunnelState,
};

/// The id prefix of an adopted container entry not yet matched with a
/// running container: `adopt:` + the first 12 characters of the id in the
/// marker.
pub const ADOPT_PREFIX: &str = "adopt:";

/// A link marker, parsed: `conlink link NAME DEV ID12 HASH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkMarker {
    /// Container name.
    pub ctr: String,
    /// Interface in the container.
    pub dev: String,
    /// First 12 characters of the container id.
    pub id12: String,
    /// Hash of the link spec applied.
    pub hash: String,
}

impl LinkMarker {
    /// Parses a marker; None for other markers.
    pub fn parse(m: &str) -> Option<LinkMarker> {
        let mut w = m.split(' ');
        if (w.next(), w.next()) != (Some("conlink"), Some("link")) {
            return None;
        }
        let (ctr, dev, id12, hash) = (w.next()?, w.next()?, w.next()?, w.next()?);
        Some(LinkMarker {
            ctr: ctr.into(),
            dev: dev.into(),
            id12: id12.into(),
            hash: hash.into(),
        })
    }
}

/// What a restarted conlink found in its namespace.
#[derive(Debug, Default)]
pub struct Found {
    /// The adopted state: globals, and container entries with
    /// [`ADOPT_PREFIX`] ids bound later by [`bind`].
    pub state: State,
    /// Interfaces of an older conlink version (marker `conlink`), to delete.
    pub legacy: Vec<String>,
    /// How many marked interfaces there were.
    pub count: usize,
}

/// A link placeholder: enough to delete it (and any forwards keyed by its
/// outer end), different from anything the config can want.
fn placeholder(kind: LinkType, outer: Option<String>) -> LinkState {
    let forward = outer.as_ref().map(|o| ForwardSpec {
        ip: Ipv4Addr::UNSPECIFIED,
        outer: o.clone(),
        bridge: String::new(),
        forwards: Vec::new(),
    });
    LinkState {
        id: LinkIdentity {
            kind,
            outer: outer.map(|name| Outer {
                name,
                bridge: String::new(),
                mode: BridgeMode::Linux,
            }),
            parent: None,
            mode: Some("adopted".into()),
            vlanid: None,
            no_ipv6: false,
        },
        mac: None,
        mtu: None,
        addrs: Vec::new(),
        routes: Vec::new(),
        netem: None,
        ethtool: Vec::new(),
        nat: None,
        forward,
        up: true,
    }
}

/// Reading ownership markers: all adoption needs from the system. Every
/// [`Kernel`] has it; `conlink plan` uses a reader that can do nothing
/// else ([`crate::net::MarkReader`]), so it cannot change the system.
pub trait Marks {
    /// Interfaces carrying conlink's marker in `ns`.
    fn marked(&self, ns: Ns<'_>) -> KResult<Vec<Marked>>;
    /// The flood list of mesh tunnel `dev` in conlink's namespace.
    fn fdb_flood(&self, dev: &str) -> KResult<Vec<Ipv4Addr>>;
    /// Whether conlink's forward table is in conlink's namespace.
    fn has_forward_table(&self) -> KResult<bool>;
}

impl<K: Kernel> Marks for K {
    fn marked(&self, ns: Ns<'_>) -> KResult<Vec<Marked>> {
        Kernel::marked(self, ns)
    }
    fn fdb_flood(&self, dev: &str) -> KResult<Vec<Ipv4Addr>> {
        Kernel::fdb_flood(self, dev)
    }
    fn has_forward_table(&self) -> KResult<bool> {
        Kernel::has_forward_table(self)
    }
}

/// Reads conlink's namespace: bridges, tunnels and outer ends it marked.
pub fn scan<K: Marks + ?Sized>(kernel: &K, inp: &Inputs) -> Found {
    let mut f = Found::default();
    let marked = match kernel.marked(Ns::Conlink) {
        Ok(m) => m,
        Err(e) => {
            warn!("cannot look for an earlier run's interfaces: {e}");
            return f;
        }
    };
    // The namespace's own marker (on `lo`) is not a leftover to adopt.
    let marked: Vec<_> = marked
        .into_iter()
        .filter(|m| m.marker != NETNS_MARKER)
        .collect();
    f.count = marked.len();
    let want: Globals = desired_globals(inp);
    for m in marked {
        if m.marker == BRIDGE_MARKER {
            f.state.globals.bridges.insert(m.name, BridgeMode::Linux);
        } else if let Some(hash) = m.marker.strip_prefix("conlink tunnel ") {
            // The marker's hash covers the bare device (no netem, no
            // flood entries): what CreateTunnel made.
            let adopted = want.tunnels.get(&m.name).map(TunnelState::device);
            let spec = match adopted {
                Some(mut t) if hash_json(&t) == hash => {
                    if t.floods() {
                        // The peers it floods to are read back: the diff
                        // then appends and deletes entries in place.
                        match kernel.fdb_flood(&m.name) {
                            Ok(f) => t.flood = f.into_iter().collect(),
                            Err(e) => warn!("tunnel {}: cannot read its peers: {e}", m.name),
                        }
                    }
                    t
                }
                // Not what is wanted: a spec that differs from every
                // wanted one, so the diff replaces or removes it.
                _ => TunnelState {
                    kind: TunnelType::Vxlan,
                    vni: u32::MAX,
                    remote: Some(Ipv4Addr::UNSPECIFIED),
                    port: 0,
                    bridge: String::new(),
                    mode: BridgeMode::Linux,
                    netem: None,
                    flood: Default::default(),
                    mtu: None,
                    per_peer: false,
                },
            };
            f.state.globals.tunnels.insert(m.name, spec);
        } else if let Some(lm) = LinkMarker::parse(&m.marker) {
            let e = f.state.containers.entry(lm.ctr.clone()).or_insert_with(|| {
                CtrState::empty(CtrRef {
                    name: lm.ctr.clone(),
                    id: format!("{ADOPT_PREFIX}{}", lm.id12),
                    netns: PathBuf::new(),
                })
            });
            let mut l = placeholder(LinkType::Veth, Some(m.name.clone()));
            // The hash rides along in `mode` until bound.
            l.id.mode = Some(format!("adopted {}", lm.hash));
            e.links.insert(lm.dev, l);
        } else if m.marker == "conlink" {
            f.legacy.push(m.name);
        }
    }
    // Forwarding and its table: re-asserted (idempotent) when wanted,
    // removed when not. The table is looked up (its rules are not: they
    // are replaced whole when wanted); when the lookup fails, assume the
    // worst.
    f.state.globals.forward_table = kernel.has_forward_table().unwrap_or(true);
    if f.count > 0 {
        info!(
            "found {} interface(s) of an earlier conlink run: adopting what still matches",
            f.count
        );
    }
    f
}

/// Binds an adopted entry to the running container `ctr` (same name, id
/// starting with the marker's), given what is desired for it and what its
/// namespace holds (`inner`: marked links inside the container, for
/// dummy and *vlan links). Links whose hash matches are taken as desired;
/// others stay placeholders for the diff to replace.
pub fn bind(
    adopted: Option<&CtrState>,
    ctr: &CtrRef,
    desired: Option<&CtrState>,
    inner: &[(String, LinkMarker)],
) -> Option<CtrState> {
    let same = adopted.is_some_and(|a| {
        a.ctr
            .id
            .strip_prefix(ADOPT_PREFIX)
            .is_some_and(|id12| ctr.id.starts_with(id12))
    });
    let mut st = CtrState::empty(ctr.clone());
    let mut all_match = true;
    let want = |dev: &str, hash: &str| -> Option<LinkState> {
        let d = desired?.links.get(dev)?;
        // A port of an OVS bridge is not adopted: conlink's own OVS starts
        // with a fresh database after a restart, so the outer end would be
        // in no bridge. Such links are made anew (new ifindex).
        let on_ovs =
            d.id.outer
                .as_ref()
                .is_some_and(|o| o.mode == BridgeMode::Ovs);
        (d.hash() == hash && !on_ovs).then(|| d.clone())
    };
    if !same && adopted.is_some() {
        // Another instance now has the name: the old one's leftovers are
        // removed (the diff sees a different instance) and links made anew.
        return adopted.cloned();
    }
    if let Some(a) = adopted {
        for (dev, l) in &a.links {
            let hash =
                l.id.mode
                    .as_deref()
                    .and_then(|m| m.strip_prefix("adopted "))
                    .unwrap_or("");
            match want(dev, hash) {
                Some(d) => {
                    st.links.insert(dev.clone(), d);
                }
                None => {
                    all_match = false;
                    let mut p = l.clone();
                    p.id.mode = Some("adopted".into());
                    st.links.insert(dev.clone(), p);
                }
            }
        }
    }
    for (_, lm) in inner {
        if st.links.contains_key(&lm.dev) || lm.ctr != ctr.name {
            continue;
        }
        if !ctr.id.starts_with(&lm.id12) {
            continue;
        }
        match want(&lm.dev, &lm.hash) {
            Some(d) if d.id.outer.is_none() => {
                st.links.insert(lm.dev.clone(), d);
            }
            _ => {
                all_match = false;
                st.links
                    .insert(lm.dev.clone(), placeholder(LinkType::Dummy, None));
            }
        }
    }
    if st.links.is_empty() {
        return None;
    }
    if let Some(d) = desired {
        st.nat_table = st.links.values().any(|l| l.nat.is_some());
        if all_match && st.links.len() == d.links.len() {
            // Everything was in place: the commands ran then.
            st.commands = d.commands.clone();
        }
    }
    Some(st)
}

/// Markers of a namespace's links, parsed (name, marker).
pub fn inner_markers<K: Marks + ?Sized>(kernel: &K, ctr: &CtrRef) -> Vec<(String, LinkMarker)> {
    kernel
        .marked(Ns::Ctr(&ctr.netns))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| Some((m.name, LinkMarker::parse(&m.marker)?)))
        .collect()
}
