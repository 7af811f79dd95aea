//! Routes: what follows `ip route add`, as users write it in a link's
//! `route` list, parsed into typed values (no string reaches the net layer).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::IpNet;

/// Why a route string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route {route:?}: {reason}")]
pub struct ParseRouteError {
    /// The route as written.
    pub route: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Route type (`ip route add TYPE PREFIX`, rtm_type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RouteType {
    /// A normal route through a gateway or a link (RTN_UNICAST).
    #[default]
    Unicast,
    /// Silently discard (RTN_BLACKHOLE).
    Blackhole,
    /// Discard with ICMP "host unreachable" (RTN_UNREACHABLE).
    Unreachable,
    /// Discard with ICMP "communication administratively prohibited" (RTN_PROHIBIT).
    Prohibit,
    /// Stop the lookup in this table, continue with the next policy rule (RTN_THROW).
    Throw,
}

impl RouteType {
    /// The kernel's RTN_* number.
    pub fn rtn(self) -> u8 {
        match self {
            RouteType::Unicast => 1,
            RouteType::Blackhole => 6,
            RouteType::Unreachable => 7,
            RouteType::Prohibit => 8,
            RouteType::Throw => 9,
        }
    }

    /// The word `ip route` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteType::Unicast => "unicast",
            RouteType::Blackhole => "blackhole",
            RouteType::Unreachable => "unreachable",
            RouteType::Prohibit => "prohibit",
            RouteType::Throw => "throw",
        }
    }

    fn from_word(w: &str) -> Option<Self> {
        Some(match w {
            "unicast" => RouteType::Unicast,
            "blackhole" => RouteType::Blackhole,
            "unreachable" => RouteType::Unreachable,
            "prohibit" => RouteType::Prohibit,
            "throw" => RouteType::Throw,
            _ => return None,
        })
    }
}

/// Route protocol (`proto`) as iproute2 boots with it when none is given.
pub const RTPROT_BOOT: u8 = 3;

/// The names of `/etc/iproute2/rt_protos` (and iproute2's built-in ones).
const PROTOS: &[(&str, u8)] = &[
    ("unspec", 0),
    ("redirect", 1),
    ("kernel", 2),
    ("boot", 3),
    ("static", 4),
    ("gated", 8),
    ("ra", 9),
    ("mrt", 10),
    ("zebra", 11),
    ("bird", 12),
    ("dnrouted", 13),
    ("xorp", 14),
    ("ntk", 15),
    ("dhcp", 16),
    ("keepalived", 18),
    ("babel", 42),
    ("openr", 99),
    ("bgp", 186),
    ("isis", 187),
    ("ospf", 188),
    ("rip", 189),
    ("eigrp", 192),
];

const TABLES: &[(&str, u32)] = &[("default", 253), ("main", 254), ("local", 255)];

const SCOPES: &[(&str, u8)] = &[
    ("global", 0),
    ("universe", 0),
    ("site", 200),
    ("link", 253),
    ("host", 254),
    ("nowhere", 255),
];

/// One route as `ip route add` takes it: `[TYPE] PREFIX|default [via ADDR]
/// [dev DEV] [src ADDR] [proto P] [metric N] [table T] [scope S] [mtu N]
/// [advmss N] [initcwnd N] [initrwnd N] [realms [FROM/]TO] [onlink]`, IPv4
/// or IPv6. Without `dev` it goes out of the link's own `dev`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// Route type (unicast unless `blackhole|unreachable|prohibit|throw`).
    pub kind: RouteType,
    /// Destination with host bits cleared; prefix length 0 is `default`.
    pub dst: IpNet,
    /// Gateway (`via`), same family as `dst`.
    pub via: Option<IpAddr>,
    /// Output interface (`dev`) when not the link's own: another link's dev
    /// in the same container (conlink-config checks it exists).
    pub dev: Option<String>,
    /// Preferred source (`src`, RTA_PREFSRC).
    pub src: Option<IpAddr>,
    /// Routing protocol (`proto`); boot (3) when absent, as iproute2.
    pub proto: Option<u8>,
    /// Priority (`metric`, also `priority`/`preference`).
    pub metric: Option<u32>,
    /// Routing table id (`table`); main when absent.
    pub table: Option<u32>,
    /// Scope (`scope`): 0 global, 200 site, 253 link, 254 host. Absent: what
    /// iproute2 picks (see [`Route::effective_scope`]).
    pub scope: Option<u8>,
    /// Path MTU (`mtu`, RTAX_MTU).
    pub mtu: Option<u32>,
    /// Advertised TCP MSS (`advmss`, RTAX_ADVMSS).
    pub advmss: Option<u32>,
    /// Initial TCP congestion window (`initcwnd`, RTAX_INITCWND).
    pub initcwnd: Option<u32>,
    /// Initial TCP receive window (`initrwnd`, RTAX_INITRWND).
    pub initrwnd: Option<u32>,
    /// `onlink`: the gateway is reachable on the link even if no prefix says so.
    pub onlink: bool,
    /// Routing realms (`realms [FROM/]TO`, RTA_FLOW): `FROM << 16 | TO`.
    pub realm: Option<u32>,
}

impl Route {
    /// A plain unicast route to `dst` with nothing else set.
    pub fn to(dst: IpNet) -> Self {
        Route {
            kind: RouteType::Unicast,
            dst: dst.trunc(),
            via: None,
            dev: None,
            src: None,
            proto: None,
            metric: None,
            table: None,
            scope: None,
            mtu: None,
            advmss: None,
            initcwnd: None,
            initrwnd: None,
            onlink: false,
            realm: None,
        }
    }

    /// Whether this is an IPv6 route.
    pub fn is_ipv6(&self) -> bool {
        self.dst.is_ipv6()
    }

    /// Whether the destination is `default` (prefix length 0).
    pub fn is_default(&self) -> bool {
        self.dst.prefix() == 0
    }

    /// Whether the kernel takes an output interface for this route: only
    /// unicast ones (it refuses a dev or gateway on blackhole and friends).
    pub fn has_dev(&self) -> bool {
        self.kind == RouteType::Unicast
    }

    /// The routing protocol the kernel gets (boot unless given).
    pub fn protocol(&self) -> u8 {
        self.proto.unwrap_or(RTPROT_BOOT)
    }

    /// The scope the kernel should get, chosen as `ip route add` does: the
    /// explicit one; else universe for IPv6 and for everything but unicast
    /// routes without a gateway, which get link scope.
    pub fn effective_scope(&self) -> u8 {
        if let Some(s) = self.scope {
            return s;
        }
        if !self.is_ipv6() && self.kind == RouteType::Unicast && self.via.is_none() {
            253
        } else {
            0
        }
    }
}

fn name_of<T: PartialEq + Copy>(table: &[(&'static str, T)], v: T) -> Option<&'static str> {
    table.iter().find(|(_, x)| *x == v).map(|(n, _)| *n)
}

impl FromStr for Route {
    type Err = ParseRouteError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ParseRouteError {
            route: s.to_string(),
            reason,
        };
        let mut words = s.split_whitespace().peekable();
        let mut first = words.next().ok_or_else(|| err("empty route".into()))?;
        if first == "to" {
            first = words
                .next()
                .ok_or_else(|| err("\"to\" needs a destination".into()))?;
        }
        let kind = match RouteType::from_word(first) {
            Some(k) => {
                first = words
                    .next()
                    .ok_or_else(|| err(format!("{first} needs a destination")))?;
                k
            }
            None => RouteType::Unicast,
        };
        if matches!(
            first,
            "local" | "broadcast" | "multicast" | "anycast" | "nat"
        ) {
            return Err(err(format!(
                "route type {first:?} is not supported (use unicast, blackhole, unreachable, prohibit or throw)"
            )));
        }
        // `default` takes its family from the gateway or source; decided below.
        let dst: Option<IpNet> = match first {
            "default" | "all" | "any" => None,
            w => {
                let n = if w.contains('/') {
                    w.parse::<IpNet>().map_err(|e| err(e.to_string()))?
                } else {
                    let a: IpAddr = w.parse().map_err(|_| {
                        err(format!(
                            "{w:?} is not a destination (default, PREFIX or ADDRESS)"
                        ))
                    })?;
                    IpNet::host(a)
                };
                Some(n.trunc())
            }
        };
        let mut r = Route::to(dst.unwrap_or(IpNet::any(false)));
        r.kind = kind;
        let mut seen: Vec<&str> = Vec::new();
        while let Some(key) = words.next() {
            let canon = match key {
                "priority" | "preference" => "metric",
                "oif" => "dev",
                "protocol" => "proto",
                "realm" => "realms",
                k => k,
            };
            if seen.contains(&canon) {
                return Err(err(format!("{key:?} given twice")));
            }
            seen.push(canon);
            if key == "onlink" {
                r.onlink = true;
                continue;
            }
            let known = matches!(
                canon,
                "via"
                    | "dev"
                    | "src"
                    | "proto"
                    | "metric"
                    | "table"
                    | "scope"
                    | "mtu"
                    | "advmss"
                    | "initcwnd"
                    | "initrwnd"
                    | "realms"
            );
            if !known {
                return Err(err(format!("unknown route option {key:?}")));
            }
            let mut val = words
                .next()
                .ok_or_else(|| err(format!("{key:?} needs a value")))?;
            if canon == "via" && matches!(val, "inet" | "inet6") {
                val = words
                    .next()
                    .ok_or_else(|| err(format!("{key:?} needs an address")))?;
            }
            if val == "lock" {
                return Err(err(format!("{key} lock is not supported")));
            }
            let num = |v: &str| -> Result<u32, ParseRouteError> {
                v.parse::<u32>()
                    .map_err(|_| err(format!("{key} {v:?}: not a number")))
            };
            let ip = |v: &str| -> Result<IpAddr, ParseRouteError> {
                v.parse::<IpAddr>()
                    .map_err(|_| err(format!("{key} {v:?}: not an IP address")))
            };
            match canon {
                "via" => r.via = Some(ip(val)?),
                "src" => r.src = Some(ip(val)?),
                "dev" => {
                    if val.is_empty()
                        || val.len() > crate::IFNAME_MAX
                        || val.contains(['/', ':'])
                        || val == "."
                        || val == ".."
                    {
                        return Err(err(format!("dev {val:?}: not an interface name")));
                    }
                    r.dev = Some(val.to_string())
                }
                "proto" => {
                    r.proto = Some(match PROTOS.iter().find(|(n, _)| *n == val) {
                        Some((_, p)) => *p,
                        None => u8::try_from(num(val)?)
                            .map_err(|_| err(format!("proto {val}: out of range 0..=255")))?,
                    })
                }
                "metric" => r.metric = Some(num(val)?),
                "table" => {
                    let t = match TABLES.iter().find(|(n, _)| *n == val) {
                        Some((_, t)) => *t,
                        None => num(val)?,
                    };
                    if t == 0 {
                        return Err(err("table 0 is not a routing table".into()));
                    }
                    r.table = Some(t)
                }
                "scope" => {
                    r.scope = Some(match SCOPES.iter().find(|(n, _)| *n == val) {
                        Some((_, sc)) => *sc,
                        None => u8::try_from(num(val)?)
                            .map_err(|_| err(format!("scope {val}: out of range 0..=255")))?,
                    })
                }
                "mtu" => {
                    let m = num(val)?;
                    if !(68..=65535).contains(&m) {
                        return Err(err(format!("mtu {m} out of range 68..=65535")));
                    }
                    r.mtu = Some(m)
                }
                "advmss" => r.advmss = Some(num(val)?),
                "initcwnd" => r.initcwnd = Some(num(val)?),
                "initrwnd" => r.initrwnd = Some(num(val)?),
                "realms" => {
                    let part = |v: &str| -> Result<u32, ParseRouteError> {
                        v.parse::<u16>().map(u32::from).map_err(|_| {
                            err(format!("realms {val:?}: realms are numbers 0..=65535"))
                        })
                    };
                    r.realm = Some(match val.split_once('/') {
                        Some((from, to)) => part(from)? << 16 | part(to)?,
                        None => part(val)?,
                    })
                }
                // `known` above lists exactly the arms here.
                _ => return Err(err(format!("unknown route option {key:?}"))),
            }
        }
        // The family: the destination's, or for `default` the gateway's
        // (then the source's); IPv4 when nothing says.
        let v6 = match dst {
            Some(d) => d.is_ipv6(),
            None => r.via.or(r.src).is_some_and(|a| a.is_ipv6()),
        };
        if dst.is_none() {
            r.dst = IpNet::any(v6);
        }
        let fam = |a: IpAddr| if a.is_ipv6() { "IPv6" } else { "IPv4" };
        let want = if v6 { "IPv6" } else { "IPv4" };
        for (what, a) in [("via", r.via), ("src", r.src)] {
            if let Some(a) = a {
                if a.is_ipv6() != v6 {
                    return Err(err(format!(
                        "{what} {a} is {} but the destination is {want}",
                        fam(a)
                    )));
                }
            }
        }
        if r.kind != RouteType::Unicast {
            if r.via.is_some() || r.dev.is_some() || r.onlink {
                return Err(err(format!(
                    "a {} route takes no via, dev or onlink",
                    r.kind.as_str()
                )));
            }
        } else if r.onlink && r.via.is_none() {
            return Err(err("onlink needs a gateway (via)".into()));
        }
        Ok(r)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind != RouteType::Unicast {
            write!(f, "{} ", self.kind.as_str())?;
        }
        // `default` reads back as IPv6 only when a gateway or source says so.
        let v6_inferred = self.via.or(self.src).is_some_and(|a| a.is_ipv6());
        if self.is_default() && self.is_ipv6() == v6_inferred {
            f.write_str("default")?;
        } else {
            write!(f, "{}", self.dst)?;
        }
        if let Some(v) = self.via {
            write!(f, " via {v}")?;
        }
        if let Some(v) = &self.dev {
            write!(f, " dev {v}")?;
        }
        if let Some(v) = self.src {
            write!(f, " src {v}")?;
        }
        if let Some(p) = self.proto {
            match name_of(PROTOS, p) {
                Some(n) => write!(f, " proto {n}")?,
                None => write!(f, " proto {p}")?,
            }
        }
        if let Some(v) = self.metric {
            write!(f, " metric {v}")?;
        }
        if let Some(t) = self.table {
            match name_of(TABLES, t) {
                Some(n) => write!(f, " table {n}")?,
                None => write!(f, " table {t}")?,
            }
        }
        if let Some(v) = self.scope {
            match name_of(SCOPES, v) {
                Some(n) => write!(f, " scope {n}")?,
                None => write!(f, " scope {v}")?,
            }
        }
        for (k, v) in [
            ("mtu", self.mtu),
            ("advmss", self.advmss),
            ("initcwnd", self.initcwnd),
            ("initrwnd", self.initrwnd),
        ] {
            if let Some(v) = v {
                write!(f, " {k} {v}")?;
            }
        }
        if let Some(r) = self.realm {
            if r >> 16 == 0 {
                write!(f, " realms {r}")?;
            } else {
                write!(f, " realms {}/{}", r >> 16, r & 0xffff)?;
            }
        }
        if self.onlink {
            f.write_str(" onlink")?;
        }
        Ok(())
    }
}
crate::serde_via_str!(Route);

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> Route {
        s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn parses_common_forms() {
        let r = rt("default via 10.0.0.1");
        assert!(r.is_default() && !r.is_ipv6());
        assert_eq!(r.via, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(r.effective_scope(), 0);
        let r = rt("10.0.0.0/8 via 10.1.0.100 metric 5");
        assert_eq!(r.to_string(), "10.0.0.0/8 via 10.1.0.100 metric 5");
        let r = rt("192.168.3.7/24");
        assert_eq!(r.to_string(), "192.168.3.0/24");
        assert_eq!(r.effective_scope(), 253);
        let r = rt("10.9.9.9 via 10.0.0.1 scope link onlink");
        assert_eq!(r.to_string(), "10.9.9.9/32 via 10.0.0.1 scope link onlink");
    }

    #[test]
    fn k3s_route_and_every_attribute() {
        let r = rt("10.128.0.0/15 via 10.200.0.2 dev eth1");
        assert_eq!(r.dev.as_deref(), Some("eth1"));
        assert_eq!(r.to_string(), "10.128.0.0/15 via 10.200.0.2 dev eth1");
        let s = "10.0.0.0/8 via 10.1.0.100 dev eth1 src 10.1.0.1 proto static metric 10 \
                 table 1000 scope global mtu 1400 advmss 1360 initcwnd 10 initrwnd 20 \
                 realms 1/2 onlink";
        let r = rt(s);
        assert_eq!(r.proto, Some(4));
        assert_eq!(r.table, Some(1000));
        assert_eq!(r.realm, Some(1 << 16 | 2));
        assert_eq!(r.advmss, Some(1360));
        assert_eq!(
            r.to_string(),
            s.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        assert_eq!(rt(&r.to_string()), r);
        let r = rt("default via 10.0.0.1 preference 7 protocol 99 table main realm 3");
        assert_eq!(
            r.to_string(),
            "default via 10.0.0.1 proto openr metric 7 table main realms 3"
        );
    }

    #[test]
    fn types_and_ipv6() {
        let r = rt("blackhole 10.9.0.0/16");
        assert_eq!(r.kind, RouteType::Blackhole);
        assert_eq!(r.effective_scope(), 0);
        assert_eq!(r.to_string(), "blackhole 10.9.0.0/16");
        for t in ["unreachable", "prohibit", "throw"] {
            assert_eq!(rt(&format!("{t} 10.1.0.0/16 table 7")).kind.as_str(), t);
        }
        let r = rt("default via fd00::1");
        assert!(r.is_ipv6() && r.is_default());
        assert_eq!(r.to_string(), "default via fd00::1");
        assert_eq!(r.effective_scope(), 0);
        let r = rt("fd00:1::/64 via fd00::1 metric 1024");
        assert_eq!(r.to_string(), "fd00:1::/64 via fd00::1 metric 1024");
        let r = rt("unreachable ::/0");
        assert!(r.is_ipv6() && r.is_default());
        assert_eq!(r.to_string(), "unreachable ::/0");
        assert_eq!(rt(&r.to_string()), r);
        assert_eq!(rt("fd00::5").to_string(), "fd00::5/128");
    }

    #[test]
    fn rejects_what_it_cannot_do_naming_the_word() {
        for (bad, why) in [
            ("", "empty route"),
            ("via 10.0.0.1", "\"via\" is not a destination"),
            ("default via", "\"via\" needs a value"),
            ("default via 1.2.3", "not an IP address"),
            ("10.0.0.0/8 bogus 1", "unknown route option \"bogus\""),
            (
                "10.0.0.0/8 frobnicate",
                "unknown route option \"frobnicate\"",
            ),
            ("default metric x", "not a number"),
            ("10.0.0.0/40", "prefix length"),
            ("default via fd00::1 src 10.0.0.1", "src 10.0.0.1 is IPv4"),
            ("fd00::/64 via 10.0.0.1", "via 10.0.0.1 is IPv4"),
            ("blackhole 10.0.0.0/8 via 10.0.0.1", "takes no via"),
            ("local 10.0.0.1", "route type \"local\""),
            ("default via 10.0.0.1 metric 1 metric 2", "given twice"),
            (
                "default via 10.0.0.1 mtu lock 1400",
                "lock is not supported",
            ),
            ("10.0.0.0/8 onlink", "onlink needs a gateway"),
            ("default via 10.0.0.1 table 0", "table 0"),
            ("default via 10.0.0.1 realms 70000", "realms"),
        ] {
            let e = bad.parse::<Route>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}
