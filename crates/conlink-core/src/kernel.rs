//! The boundary between applying operations and the system: the real
//! implementation is [`crate::net::NetKernel`] over conlink-net; unit tests
//! use [`crate::fake::FakeKernel`], an in-memory model, passed explicitly.
//!
//! Calls are blocking (netlink is synchronous); the reconciler runs them on
//! blocking threads.

use std::net::Ipv4Addr;
use std::path::Path;

use conlink_model::{BridgeMode, EthtoolSetting, IpNet, Ipv4Net, MacAddr, Netem, Route};

use crate::state::{LinkIdentity, TunnelState};

/// How an operation failed, as far as the applier cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object (or its whole namespace) is not there.
    Gone,
    /// The object is there already.
    Exists,
    /// Anything else.
    Other,
}

/// A failed kernel operation.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{msg}")]
pub struct KernelError {
    /// Classification.
    pub kind: ErrorKind,
    /// What failed and why, for the log.
    pub msg: String,
}

impl KernelError {
    /// An error of kind `kind`.
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        KernelError {
            kind,
            msg: msg.into(),
        }
    }
}

/// Result of a kernel call.
pub type KResult<T> = Result<T, KernelError>;

/// Which namespace a call acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns<'a> {
    /// conlink's own namespace (bridges, outer ends, tunnels).
    Conlink,
    /// A container's namespace, by path.
    Ctr(&'a Path),
}

/// A link-level change by interface name, one netlink request each (a
/// marker is written without its `conlink:` prefix): what a run of one
/// container's operations sends together ([`Kernel::batch`]).
pub use conlink_net::Change;

/// An interface carrying conlink's ownership marker, as found in a
/// namespace (for adoption after a restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    /// Interface name.
    pub name: String,
    /// Interface index (adoption keeps it).
    pub ifindex: u32,
    /// The marker text after `conlink:`.
    pub marker: String,
}

/// The kernel operations the applier composes operations from.
pub trait Kernel: Send + Sync + 'static {
    /// A bridge in conlink's namespace (linux or ovs), up.
    fn create_bridge(&self, name: &str, mode: BridgeMode, marker: &str) -> KResult<()>;
    /// Removes a bridge.
    fn delete_bridge(&self, name: &str, mode: BridgeMode) -> KResult<()>;
    /// A tunnel interface in conlink's namespace, up, joined to a linux or
    /// ovs bridge (patch joins are the applier's).
    fn create_tunnel(&self, name: &str, spec: &TunnelState, marker: &str) -> KResult<()>;
    /// A veth pair: `outer` in conlink's namespace (outer group, never
    /// IPv6), `dev` in the container (IPv6 link-local unless `ipv6` is
    /// false); MAC on `dev`, MTU on both; both down.
    #[allow(clippy::too_many_arguments)]
    fn create_veth(
        &self,
        ctr: &Path,
        outer: &str,
        dev: &str,
        mac: Option<MacAddr>,
        mtu: Option<u32>,
        ipv6: bool,
        marker: &str,
    ) -> KResult<()>;
    /// A *vlan/*vtap child of a host interface, moved into the container
    /// (IPv6 link-local unless `id.no_ipv6`).
    fn create_child(
        &self,
        ctr: &Path,
        dev: &str,
        id: &LinkIdentity,
        mac: Option<MacAddr>,
        mtu: Option<u32>,
        marker: &str,
    ) -> KResult<()>;
    /// A dummy interface in the container (IPv6 link-local unless `ipv6`
    /// is false).
    fn create_dummy(
        &self,
        ctr: &Path,
        dev: &str,
        mac: Option<MacAddr>,
        mtu: Option<u32>,
        ipv6: bool,
        marker: &str,
    ) -> KResult<()>;
    /// Joins `port` (in conlink's namespace) to a linux or ovs bridge.
    fn attach(&self, port: &str, bridge: &str, mode: BridgeMode) -> KResult<()>;
    /// Takes `port` out of an ovs bridge (linux ports leave by deletion).
    fn detach_ovs(&self, bridge: &str, port: &str) -> KResult<()>;
    /// Joins two interfaces of conlink's namespace back to back (tc mirred
    /// both ways).
    fn patch(&self, a: &str, b: &str) -> KResult<()>;
    /// Takes one interface out of a patch: its ingress redirect goes (`tc
    /// qdisc del dev DEV ingress`); frames arriving on it go nowhere.
    fn unpatch(&self, dev: &str) -> KResult<()>;
    /// Adds `remote` to the flood list of mesh tunnel `dev` (`bridge fdb
    /// append 00:00:00:00:00:00 dev DEV dst REMOTE`); already there is
    /// success.
    fn fdb_append(&self, dev: &str, remote: Ipv4Addr) -> KResult<()>;
    /// Removes `remote` from `dev`'s flood list (`bridge fdb del …`).
    fn fdb_del(&self, dev: &str, remote: Ipv4Addr) -> KResult<()>;
    /// The flood list of `dev` (adoption reads it back), sorted.
    fn fdb_flood(&self, dev: &str) -> KResult<Vec<Ipv4Addr>>;
    /// Forgets where `mac` was learned on bridge port `port` (the bridge's
    /// entry and the VXLAN device's own: `bridge fdb del MAC dev PORT
    /// master|self`); entries that do not exist are fine. Learned state,
    /// not conlink's: nothing records it.
    fn fdb_forget(&self, port: &str, mac: MacAddr) -> KResult<()>;
    /// Deletes an interface (a veth: both ends).
    fn delete_link(&self, ns: Ns<'_>, name: &str) -> KResult<()>;
    /// Deletes every outer end and tunnel in one request (shutdown).
    fn delete_outer_group(&self) -> KResult<()>;
    /// Administrative state.
    fn set_up(&self, ns: Ns<'_>, dev: &str, up: bool) -> KResult<()>;
    /// MTU.
    fn set_mtu(&self, ns: Ns<'_>, dev: &str, mtu: u32) -> KResult<()>;
    /// MAC.
    fn set_mac(&self, ns: Ns<'_>, dev: &str, mac: MacAddr) -> KResult<()>;
    /// Rewrites the ownership marker (alias `conlink:MARKER`).
    fn set_marker(&self, ns: Ns<'_>, dev: &str, marker: &str) -> KResult<()>;
    /// Adds an address.
    fn add_addr(&self, ns: Ns<'_>, dev: &str, addr: IpNet) -> KResult<()>;
    /// Removes an address.
    fn del_addr(&self, ns: Ns<'_>, dev: &str, addr: IpNet) -> KResult<()>;
    /// Adds a route on `dev`.
    fn add_route(&self, ns: Ns<'_>, dev: &str, r: &Route) -> KResult<()>;
    /// Removes a route on `dev`.
    fn del_route(&self, ns: Ns<'_>, dev: &str, r: &Route) -> KResult<()>;
    /// Carries `changes` out in order, one verdict each; like netlink, it
    /// goes on after a refusal (a change that depended on a refused one
    /// fails too). The real kernel sends each namespace's changes in one
    /// datagram; by default, one call each.
    fn batch(&self, changes: &[(Ns<'_>, Change<'_>)]) -> Vec<KResult<()>> {
        changes
            .iter()
            .map(|(ns, c)| match *c {
                Change::Up(d, up) => self.set_up(*ns, d, up),
                Change::Mtu(d, m) => self.set_mtu(*ns, d, m),
                Change::Mac(d, m) => self.set_mac(*ns, d, m),
                Change::Mark(d, m) => self.set_marker(*ns, d, m),
                Change::AddAddr(d, a) => self.add_addr(*ns, d, a),
                Change::DelAddr(d, a) => self.del_addr(*ns, d, a),
                Change::AddRoute(d, r) => self.add_route(*ns, d, r),
                Change::DelRoute(d, r) => self.del_route(*ns, d, r),
            })
            .collect()
    }
    /// Replaces the root qdisc with netem, or removes it (None).
    fn set_netem(&self, ns: Ns<'_>, dev: &str, netem: Option<&Netem>) -> KResult<()>;
    /// One ethtool setting.
    fn ethtool(&self, ns: Ns<'_>, dev: &str, s: &EthtoolSetting) -> KResult<()>;
    /// 1:1 NAT rule for `dev` in the container (makes the table if needed).
    fn set_nat(&self, ctr: &Path, dev: &str, ip: Ipv4Addr, nat: Ipv4Addr) -> KResult<()>;
    /// Removes `dev`'s NAT rule.
    fn del_nat(&self, ctr: &Path, dev: &str) -> KResult<()>;
    /// Deletes conlink's nftables table in the container.
    fn drop_nat_table(&self, ctr: &Path) -> KResult<()>;
    /// Port forward rules for one link, keyed by `key`, in conlink's
    /// namespace (makes the table if needed).
    fn set_forwards(
        &self,
        key: &str,
        bridge: &str,
        ip: Ipv4Addr,
        fwd: &[conlink_model::Forward],
    ) -> KResult<()>;
    /// Removes the forward rules of `key`.
    fn del_forwards(&self, key: &str) -> KResult<()>;
    /// Deletes conlink's nftables table in its own namespace.
    fn drop_forward_table(&self) -> KResult<()>;
    /// Whether conlink's nftables table is in its own namespace.
    fn has_forward_table(&self) -> KResult<bool>;
    /// IPv4 forwarding on in conlink's namespace (a warning, not an error,
    /// when /proc/sys is read-only).
    fn enable_forwarding(&self);
    /// conlink's docker-provided address (`DOCKER-ETH0`), if any.
    fn docker_addr(&self) -> Option<Ipv4Net>;
    /// Interfaces carrying conlink's marker in `ns`.
    fn marked(&self, ns: Ns<'_>) -> KResult<Vec<Marked>>;
    /// Drops any cached handle for a container namespace that is gone.
    fn forget_ns(&self, _ctr: &Path) {}
    /// Drops a handle opened ahead (at start-up) for a container namespace
    /// that died before any operation used it. Handles in use are left to
    /// `forget_ns`, which the diff orders once their links are gone.
    fn forget_unused_ns(&self, _ctr: &Path) {}
}
