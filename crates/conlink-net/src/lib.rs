//! conlink-net: carries network operations out on the kernel.
//!
//! Everything goes through netlink (links, addresses, routes, tc) or ioctl
//! (ethtool) on sockets opened inside the target namespace; only Open
//! vSwitch is driven through its `ovs-vsctl` tool. The layer knows nothing
//! of YAML or docker: callers hand it names, addresses and model values.
//!
//! Start with [`Netns`] (open/create namespaces) and [`Handle`] (one
//! namespace's netlink socket); every operation is a short method on
//! `Handle` whose doc names its iproute2 equivalent.

mod addr;
mod change;
mod error;
mod ethtool;
mod fdb;
mod handle;
mod link;
pub mod netns;
pub mod nft;
pub mod nl;
pub mod ovs;
mod stats;
mod tc;

pub use addr::RouteTo;
pub use change::Change;
pub use error::{Error, Result};
pub use handle::Handle;
pub use link::{IpvlanMode, LinkAttrs, LinkInfo, LinkKind, MacvlanMode, TunnelSpec, MARK_PREFIX};
pub use netns::Netns;
pub use ovs::{Datapath, OvsOptions, OvsSupervisor};
pub use stats::{oper_state_name, Counters, LinkStats};

/// Request builders without I/O, for byte-level comparison with iproute2
/// (tests) and for callers that batch requests themselves.
pub mod msg {
    pub use crate::addr::{addr_msg, route_get_msg, route_msg};
    pub use crate::ethtool::{ethtool_msg, expand_feature};
    pub use crate::fdb::fdb_msg;
    pub use crate::link::{create_msg, port_isolated_msg};
    pub use crate::tc::{dist_table, ingress_msg, netem_msg, netem_options, redirect_msg};
}
