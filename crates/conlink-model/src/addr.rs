//! Interface addresses (IPv4 and IPv6 prefixes) and MAC addresses, with the
//! replica offsets of spec §4.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Why an address string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseAddrError {
    #[error("{0:?} is not an IPv4 address with prefix length (like 10.0.0.1/24)")]
    Cidr(String),
    #[error("{0:?}: prefix length must be 0..=32")]
    Prefix(String),
    #[error("{0:?} is not an IPv6 address with prefix length (like fd00::1/64)")]
    Cidr6(String),
    #[error("{0:?}: prefix length must be 0..=128")]
    Prefix6(String),
    #[error(
        "{0:?} is not an IPv4 or IPv6 address with prefix length (like 10.0.0.1/24 or fd00::1/64)"
    )]
    CidrAny(String),
    #[error("{0:?} is not a MAC address (like c2:00:00:00:00:01)")]
    Mac(String),
    #[error("offset {offset} takes {base} past the end of its address space")]
    Overflow { base: String, offset: u128 },
    /// Replica MACs count up in the last three bytes only: a carry into the
    /// first three would change the vendor part (OUI) and could set the
    /// multicast bit, which the kernel refuses for a unicast address.
    #[error(
        "replica {replica} would get MAC {base} + {offset}, which carries out of the last three bytes (changing the vendor part and possibly the multicast bit); pick a base MAC whose last three bytes leave room for {replica} replicas"
    )]
    MacCarry {
        /// The configured base MAC.
        base: String,
        /// The offset that carried (replica number minus one).
        offset: u64,
        /// The replica number that breaks it.
        replica: u64,
    },
}

/// An IPv4 address with its prefix length, as `ip addr add` takes it
/// (`10.0.1.1/24`: the host address is kept, not masked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    /// The interface address.
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

impl Ipv4Net {
    /// Builds a prefix, refusing a length over 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, ParseAddrError> {
        if prefix > 32 {
            return Err(ParseAddrError::Prefix(format!("{addr}/{prefix}")));
        }
        Ok(Self { addr, prefix })
    }

    /// The address plus `offset` as a 32-bit integer, same prefix length
    /// (replica i gets offset i-1).
    pub fn offset(&self, offset: u32) -> Result<Self, ParseAddrError> {
        let n =
            u32::from(self.addr)
                .checked_add(offset)
                .ok_or_else(|| ParseAddrError::Overflow {
                    base: self.to_string(),
                    offset: offset.into(),
                })?;
        Ok(Self {
            addr: Ipv4Addr::from(n),
            prefix: self.prefix,
        })
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The netmask as an integer.
    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// Whether `ip` lies inside this prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    /// The broadcast address of the prefix (what `ip addr add ... brd +` sets).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) | !self.mask())
    }
}

impl FromStr for Ipv4Net {
    type Err = ParseAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| ParseAddrError::Cidr(s.into()))?;
        let addr: Ipv4Addr = a.parse().map_err(|_| ParseAddrError::Cidr(s.into()))?;
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseAddrError::Cidr(s.into()));
        }
        let prefix: u8 = p.parse().map_err(|_| ParseAddrError::Cidr(s.into()))?;
        if prefix > 32 {
            return Err(ParseAddrError::Prefix(s.into()));
        }
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}
crate::serde_via_str!(Ipv4Net);

/// An IPv6 address with its prefix length, as `ip -6 addr add` takes it
/// (`fd00::1/64`: the host address is kept, not masked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv6Net {
    /// The interface address.
    pub addr: Ipv6Addr,
    /// Prefix length, 0..=128.
    pub prefix: u8,
}

impl Ipv6Net {
    /// Builds a prefix, refusing a length over 128.
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Result<Self, ParseAddrError> {
        if prefix > 128 {
            return Err(ParseAddrError::Prefix6(format!("{addr}/{prefix}")));
        }
        Ok(Self { addr, prefix })
    }

    /// The address plus `offset` as a 128-bit integer, same prefix length
    /// (replica i gets offset i-1).
    pub fn offset(&self, offset: u128) -> Result<Self, ParseAddrError> {
        let n =
            u128::from(self.addr)
                .checked_add(offset)
                .ok_or_else(|| ParseAddrError::Overflow {
                    base: self.to_string(),
                    offset,
                })?;
        Ok(Self {
            addr: Ipv6Addr::from(n),
            prefix: self.prefix,
        })
    }

    /// The netmask as an integer.
    pub fn mask(&self) -> u128 {
        if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix))
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) & self.mask())
    }

    /// Whether `ip` lies inside this prefix.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.network())
    }
}

impl FromStr for Ipv6Net {
    type Err = ParseAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| ParseAddrError::Cidr6(s.into()))?;
        let addr: Ipv6Addr = a.parse().map_err(|_| ParseAddrError::Cidr6(s.into()))?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseAddrError::Cidr6(s.into()));
        }
        let prefix: u8 = p.parse().map_err(|_| ParseAddrError::Prefix6(s.into()))?;
        Self::new(addr, prefix).map_err(|_| ParseAddrError::Prefix6(s.into()))
    }
}

impl fmt::Display for Ipv6Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}
crate::serde_via_str!(Ipv6Net);

/// An interface address of either family (what one `ip` entry holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpNet {
    /// An IPv4 prefix.
    V4(Ipv4Net),
    /// An IPv6 prefix.
    V6(Ipv6Net),
}

impl IpNet {
    /// The address plus `offset` (replica i gets offset i-1): a 32-bit
    /// integer for IPv4, a 128-bit one for IPv6; the prefix length stays.
    pub fn offset(&self, offset: u128) -> Result<Self, ParseAddrError> {
        match self {
            IpNet::V4(n) => {
                let o = u32::try_from(offset).map_err(|_| ParseAddrError::Overflow {
                    base: n.to_string(),
                    offset,
                })?;
                n.offset(o).map(IpNet::V4)
            }
            IpNet::V6(n) => n.offset(offset).map(IpNet::V6),
        }
    }

    /// The interface address.
    pub fn addr(&self) -> IpAddr {
        match self {
            IpNet::V4(n) => IpAddr::V4(n.addr),
            IpNet::V6(n) => IpAddr::V6(n.addr),
        }
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        match self {
            IpNet::V4(n) => n.prefix,
            IpNet::V6(n) => n.prefix,
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        match self {
            IpNet::V4(n) => IpAddr::V4(n.network()),
            IpNet::V6(n) => IpAddr::V6(n.network()),
        }
    }

    /// The same prefix with the host bits cleared (a route destination).
    pub fn trunc(&self) -> Self {
        match self {
            IpNet::V4(n) => IpNet::V4(Ipv4Net {
                addr: n.network(),
                prefix: n.prefix,
            }),
            IpNet::V6(n) => IpNet::V6(Ipv6Net {
                addr: n.network(),
                prefix: n.prefix,
            }),
        }
    }

    /// Whether this is an IPv6 prefix.
    pub fn is_ipv6(&self) -> bool {
        matches!(self, IpNet::V6(_))
    }

    /// The IPv4 prefix, if this is one.
    pub fn v4(&self) -> Option<Ipv4Net> {
        match self {
            IpNet::V4(n) => Some(*n),
            IpNet::V6(_) => None,
        }
    }

    /// The whole address space of `addr`'s family (`0.0.0.0/0` or `::/0`).
    pub fn any(v6: bool) -> Self {
        if v6 {
            IpNet::V6(Ipv6Net {
                addr: Ipv6Addr::UNSPECIFIED,
                prefix: 0,
            })
        } else {
            IpNet::V4(Ipv4Net {
                addr: Ipv4Addr::UNSPECIFIED,
                prefix: 0,
            })
        }
    }

    /// A host prefix (/32 or /128) for one address.
    pub fn host(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(a) => IpNet::V4(Ipv4Net {
                addr: a,
                prefix: 32,
            }),
            IpAddr::V6(a) => IpNet::V6(Ipv6Net {
                addr: a,
                prefix: 128,
            }),
        }
    }
}

impl From<Ipv4Net> for IpNet {
    fn from(n: Ipv4Net) -> Self {
        IpNet::V4(n)
    }
}

impl From<Ipv6Net> for IpNet {
    fn from(n: Ipv6Net) -> Self {
        IpNet::V6(n)
    }
}

impl FromStr for IpNet {
    type Err = ParseAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let a = s.split_once('/').map_or(s, |(a, _)| a);
        if a.contains(':') {
            s.parse().map(IpNet::V6)
        } else if a.contains('.') {
            // Dotted: an IPv4 attempt, so say what is wrong with it as such.
            s.parse().map(IpNet::V4)
        } else {
            Err(ParseAddrError::CidrAny(s.into()))
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpNet::V4(n) => n.fmt(f),
            IpNet::V6(n) => n.fmt(f),
        }
    }
}
crate::serde_via_str!(IpNet);

/// `serde(with)` helpers for a link's `ip`: one address is written as a
/// string (the shape existing tools read), several as a list; both read back.
pub mod ip_list {
    use super::IpNet;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(IpNet),
        Many(Vec<IpNet>),
    }

    /// Writes one address as a string, several as a list.
    pub fn serialize<S: Serializer>(v: &[IpNet], s: S) -> Result<S::Ok, S::Error> {
        match v {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }

    /// Reads a string or a list of strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(n) => vec![n],
            OneOrMany::Many(v) => v,
        })
    }
}

/// A 48-bit Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// A locally administered unicast MAC whose first octet is `c2`, derived
    /// from `key` alone (FNV-1a, then splitmix64): the same key gives the
    /// same address in every run, so a reloaded or restarted conlink wants
    /// the MAC a link already has.
    pub fn derived_c2(key: &[u8]) -> Self {
        let mut z: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key {
            z ^= u64::from(*b);
            z = z.wrapping_mul(0x0100_0000_01b3);
        }
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let b = z.to_be_bytes();
        MacAddr([0xc2, b[0], b[1], b[2], b[3], b[4]])
    }

    /// A random locally administered unicast MAC whose first octet is `c2`,
    /// the default for links that do not set one. `seed` mixes in caller
    /// entropy; the rest comes from the clock and a process-wide counter, so
    /// two calls never return the same address in one run.
    pub fn random_c2(seed: u64) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let c = COUNTER.fetch_add(1, Ordering::Relaxed);
        // splitmix64: cheap, well-distributed, no dependency on a rand crate.
        let mut z =
            seed ^ nanos ^ c.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(std::process::id());
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let b = z.to_be_bytes();
        MacAddr([0xc2, b[0], b[1], b[2], b[3], b[4]])
    }

    /// The MAC plus `offset` (replica i gets offset i-1), added to the last
    /// three bytes only: a carry out of them is an error naming the replica,
    /// never a silent change of the OUI or the multicast bit.
    pub fn offset(&self, offset: u64) -> Result<Self, ParseAddrError> {
        let low = u64::from(self.0[3]) << 16 | u64::from(self.0[4]) << 8 | u64::from(self.0[5]);
        let n = low
            .checked_add(offset)
            .filter(|n| *n < (1 << 24))
            .ok_or_else(|| ParseAddrError::MacCarry {
                base: self.to_string(),
                offset,
                replica: offset.saturating_add(1),
            })?;
        let b = n.to_be_bytes();
        Ok(MacAddr([self.0[0], self.0[1], self.0[2], b[5], b[6], b[7]]))
    }
}

impl FromStr for MacAddr {
    type Err = ParseAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for o in out.iter_mut() {
            let p = parts.next().ok_or_else(|| ParseAddrError::Mac(s.into()))?;
            if p.len() != 2 {
                return Err(ParseAddrError::Mac(s.into()));
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| ParseAddrError::Mac(s.into()))?;
        }
        if parts.next().is_some() {
            return Err(ParseAddrError::Mac(s.into()));
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}
crate::serde_via_str!(MacAddr);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_round_trip_and_offset() {
        let n: Ipv4Net = "10.0.1.255/24".parse().unwrap();
        assert_eq!(n.offset(1).unwrap().to_string(), "10.0.2.0/24");
        assert_eq!(n.network().to_string(), "10.0.1.0");
        assert!(n.contains("10.0.1.7".parse().unwrap()));
        assert!(!n.contains("10.0.2.7".parse().unwrap()));
        assert!("255.255.255.255/32"
            .parse::<Ipv4Net>()
            .unwrap()
            .offset(1)
            .is_err());
    }

    #[test]
    fn cidr_rejects_junk() {
        for bad in [
            "10.0.0.1",
            "10.0.0.256/24",
            "10.0.0.1/33",
            "10.0.0.1/",
            "x/24",
            "10.0.0.1/+3",
        ] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv6_parse_offset_and_family() {
        let n: IpNet = "fd00::ffff/64".parse().unwrap();
        assert!(n.is_ipv6());
        assert_eq!(n.offset(1).unwrap().to_string(), "fd00::1:0/64");
        assert_eq!(n.trunc().to_string(), "fd00::/64");
        let big: IpNet = "fd00::1/64".parse().unwrap();
        assert_eq!(big.offset(1 << 64).unwrap().to_string(), "fd00:0:0:1::1/64");
        assert!("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
            .parse::<IpNet>()
            .unwrap()
            .offset(1)
            .is_err());
        let v4: IpNet = "10.0.0.1/24".parse().unwrap();
        assert_eq!(v4.offset(2).unwrap().to_string(), "10.0.0.3/24");
        assert!(v4.offset(1 << 40).is_err());
        for bad in ["fd00::1", "fd00::1/129", "fd00::g/64", "x/3", "fd00::1/1x"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ip_list_serde_shapes() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct W {
            #[serde(with = "ip_list")]
            ip: Vec<IpNet>,
        }
        let one: W = serde_json::from_value(serde_json::json!({"ip": "10.0.0.1/24"})).unwrap();
        assert_eq!(serde_json::to_value(&one).unwrap()["ip"], "10.0.0.1/24");
        let two: W =
            serde_json::from_value(serde_json::json!({"ip": ["10.0.0.1/24", "fd00::1/64"]}))
                .unwrap();
        assert_eq!(
            serde_json::to_value(&two).unwrap()["ip"],
            serde_json::json!(["10.0.0.1/24", "fd00::1/64"])
        );
    }

    #[test]
    fn mac_offset_never_changes_the_oui_or_multicast_bit() {
        // 02:00:00:ff:ff:ff + 1 used to give 02:00:01:00:00:00 (new OUI);
        // fe:ff:ff:ff:ff:ff + 1 would give ff:00:… (multicast).
        let m: MacAddr = "02:00:00:ff:ff:fe".parse().unwrap();
        assert_eq!(m.offset(1).unwrap().to_string(), "02:00:00:ff:ff:ff");
        let e = m.offset(2).unwrap_err().to_string();
        assert!(e.contains("replica 3 "), "{e}");
        assert!(e.contains("vendor part"), "{e}");
        let m: MacAddr = "fe:ff:ff:ff:ff:ff".parse().unwrap();
        assert!(matches!(
            m.offset(1),
            Err(ParseAddrError::MacCarry { replica: 2, .. })
        ));
        assert!(m.offset(u64::MAX).is_err());
    }

    #[test]
    fn mac_offset_carries_across_octets() {
        let m: MacAddr = "00:0a:00:00:00:ff".parse().unwrap();
        assert_eq!(m.offset(1).unwrap().to_string(), "00:0a:00:00:01:00");
        assert!("ff:ff:ff:ff:ff:ff"
            .parse::<MacAddr>()
            .unwrap()
            .offset(1)
            .is_err());
        assert!("00:0a:00:00:00".parse::<MacAddr>().is_err());
        assert!("00:0a:00:00:00:0g".parse::<MacAddr>().is_err());
    }

    #[test]
    fn derived_mac_is_stable_and_keyed() {
        let a = MacAddr::derived_c2(b"h/service/node/eth0");
        assert_eq!(a, MacAddr::derived_c2(b"h/service/node/eth0"));
        assert_ne!(a, MacAddr::derived_c2(b"h/service/node/eth1"));
        assert_eq!(a.0[0], 0xc2);
    }

    #[test]
    fn random_mac_is_c2_and_distinct() {
        let a = MacAddr::random_c2(1);
        let b = MacAddr::random_c2(1);
        assert_eq!(a.0[0], 0xc2);
        assert_ne!(a, b);
    }
}
