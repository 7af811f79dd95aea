//! The validated, typed conlink network model.
//!
//! This crate is the vocabulary the other crates share: `conlink-config` turns
//! users' files into a [`NetworkConfig`], the planner reads it, `conlink-net`
//! carries out operations built from these values. Nothing here does I/O.
//!
//! Every value type parses from the string users write (`FromStr`) and prints
//! back to a canonical form (`Display`); serde uses those strings, so the
//! `--show-config` JSON keeps the shape existing users' tools read, and can be
//! read back (by `conlink graph`, say) into the same types.

pub mod addr;
mod config;
mod container;
mod ethtool;
mod forward;
mod netem;
mod route;

pub use addr::{ip_list, IpNet, Ipv4Net, Ipv6Net, MacAddr, ParseAddrError};
pub use config::{
    Base, Bridge, BridgeMode, Command, CommandSpec, Group, Link, LinkType, NetworkConfig, Target,
    Tunnel, TunnelType,
};
pub use container::Container;
pub use ethtool::{
    ChannelParam, Duplex, EthtoolSetting, LinkModes, ParseEthtoolError, RingParam, OFFLOAD_FEATURES,
};
pub use forward::{Forward, ParseForwardError, Proto};
pub use netem::{Distribution, Loss, Netem, ParseNetemError, Percent, Rate, Slot};
pub use route::{ParseRouteError, Route, RouteType, RTPROT_BOOT};

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// Implements `Serialize`/`Deserialize` through `Display`/`FromStr`.
macro_rules! serde_via_str {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_via_str;
