//! Routes: what follows `ip route add`, applied on a link's `dev`.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::Ipv4Net;

/// Why a route string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route {route:?}: {reason}")]
pub struct ParseRouteError {
    /// The route as written.
    pub route: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Route destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteDst {
    /// `default` (0.0.0.0/0).
    Default,
    /// A prefix; a bare address means /32. Host bits are cleared, as the
    /// kernel demands of route destinations.
    Net(Ipv4Net),
}

/// One IPv4 route on a link's interface: the subset of `ip route add`
/// conlink understands (`[default|PREFIX] [via ADDR] [src ADDR] [metric N]
/// [mtu N] [table N] [scope link|host|global] [onlink]`). `dev` is implied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    /// Destination.
    pub dst: RouteDst,
    /// Gateway (`via`).
    pub via: Option<Ipv4Addr>,
    /// Preferred source (`src`).
    pub src: Option<Ipv4Addr>,
    /// Priority (`metric`, also `priority`/`preference`).
    pub metric: Option<u32>,
    /// Path MTU (`mtu`).
    pub mtu: Option<u32>,
    /// Routing table id (`table`); main when absent.
    pub table: Option<u32>,
    /// Scope (`scope`): 0 global, 253 link, 254 host. Absent: the kernel's
    /// choice as iproute2 makes it (link for routes without a gateway).
    pub scope: Option<u8>,
    /// `onlink`: the gateway is reachable on the link even if no prefix says so.
    pub onlink: bool,
}

impl Route {
    /// The destination as a prefix (default is 0.0.0.0/0).
    pub fn dst_net(&self) -> Ipv4Net {
        match self.dst {
            RouteDst::Default => Ipv4Net {
                addr: Ipv4Addr::UNSPECIFIED,
                prefix: 0,
            },
            RouteDst::Net(n) => n,
        }
    }

    /// The scope the kernel should get: the explicit one, else link scope for
    /// routes without a gateway and universe (0) for gatewayed ones, which is
    /// what `ip route add` picks.
    pub fn effective_scope(&self) -> u8 {
        self.scope
            .unwrap_or(if self.via.is_some() { 0 } else { 253 })
    }
}

fn scope_name(s: u8) -> Option<&'static str> {
    match s {
        0 => Some("global"),
        200 => Some("site"),
        253 => Some("link"),
        254 => Some("host"),
        _ => None,
    }
}

impl FromStr for Route {
    type Err = ParseRouteError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ParseRouteError {
            route: s.to_string(),
            reason,
        };
        let mut words = s.split_whitespace().peekable();
        let first = words.next().ok_or_else(|| err("empty route".into()))?;
        let dst = match first {
            "default" | "0.0.0.0/0" => RouteDst::Default,
            w => {
                let n = if w.contains('/') {
                    w.parse::<Ipv4Net>().map_err(|e| err(e.to_string()))?
                } else {
                    let a: Ipv4Addr = w.parse().map_err(|_| {
                        err(format!(
                            "{w:?} is not a destination (default, PREFIX or ADDRESS)"
                        ))
                    })?;
                    Ipv4Net {
                        addr: a,
                        prefix: 32,
                    }
                };
                if n.prefix == 0 {
                    RouteDst::Default
                } else {
                    RouteDst::Net(Ipv4Net {
                        addr: n.network(),
                        prefix: n.prefix,
                    })
                }
            }
        };
        let mut r = Route {
            dst,
            via: None,
            src: None,
            metric: None,
            mtu: None,
            table: None,
            scope: None,
            onlink: false,
        };
        while let Some(key) = words.next() {
            if key == "onlink" {
                r.onlink = true;
                continue;
            }
            let val = words
                .next()
                .ok_or_else(|| err(format!("{key:?} needs a value")))?;
            let num = |v: &str| -> Result<u32, ParseRouteError> {
                v.parse::<u32>()
                    .map_err(|_| err(format!("{key} {v:?}: not a number")))
            };
            let ip = |v: &str| -> Result<Ipv4Addr, ParseRouteError> {
                v.parse::<Ipv4Addr>()
                    .map_err(|_| err(format!("{key} {v:?}: not an IPv4 address")))
            };
            match key {
                "via" => {
                    let v = val.strip_prefix("inet ").unwrap_or(val);
                    r.via = Some(ip(v)?)
                }
                "src" => r.src = Some(ip(val)?),
                "metric" | "priority" | "preference" => r.metric = Some(num(val)?),
                "mtu" => {
                    let m = num(val)?;
                    if !(68..=65535).contains(&m) {
                        return Err(err(format!("mtu {m} out of range 68..=65535")));
                    }
                    r.mtu = Some(m)
                }
                "table" => {
                    r.table = Some(match val {
                        "main" => 254,
                        "local" => 255,
                        "default" => 253,
                        v => num(v)?,
                    })
                }
                "scope" => {
                    r.scope = Some(match val {
                        "global" | "universe" => 0,
                        "site" => 200,
                        "link" => 253,
                        "host" => 254,
                        v => {
                            let n = num(v)?;
                            u8::try_from(n).map_err(|_| err(format!("scope {n} out of range")))?
                        }
                    })
                }
                "dev" | "oif" => {
                    return Err(err(
                        "do not name a dev: the route is applied on the link's own dev".into(),
                    ))
                }
                other => return Err(err(format!("unsupported route option {other:?}"))),
            }
        }
        Ok(r)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.dst {
            RouteDst::Default => f.write_str("default")?,
            RouteDst::Net(n) => write!(f, "{n}")?,
        }
        if let Some(v) = self.via {
            write!(f, " via {v}")?;
        }
        if let Some(v) = self.src {
            write!(f, " src {v}")?;
        }
        if let Some(v) = self.metric {
            write!(f, " metric {v}")?;
        }
        if let Some(v) = self.mtu {
            write!(f, " mtu {v}")?;
        }
        if let Some(v) = self.table {
            write!(f, " table {v}")?;
        }
        if let Some(v) = self.scope {
            match scope_name(v) {
                Some(n) => write!(f, " scope {n}")?,
                None => write!(f, " scope {v}")?,
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

    #[test]
    fn parses_common_forms() {
        let r: Route = "default via 10.0.0.1".parse().unwrap();
        assert_eq!(r.dst, RouteDst::Default);
        assert_eq!(r.via, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(r.effective_scope(), 0);
        let r: Route = "10.0.0.0/8 via 10.1.0.100 metric 5".parse().unwrap();
        assert_eq!(r.to_string(), "10.0.0.0/8 via 10.1.0.100 metric 5");
        let r: Route = "192.168.3.7/24".parse().unwrap();
        assert_eq!(r.to_string(), "192.168.3.0/24");
        assert_eq!(r.effective_scope(), 253);
        let r: Route = "10.9.9.9 scope link onlink".parse().unwrap();
        assert_eq!(r.to_string(), "10.9.9.9/32 scope link onlink");
    }

    #[test]
    fn rejects_what_it_cannot_do() {
        for bad in [
            "",
            "via 10.0.0.1",
            "default via",
            "default dev eth0",
            "default via 1.2.3",
            "10.0.0.0/8 proto static",
            "default metric x",
            "10.0.0.0/40",
        ] {
            assert!(bad.parse::<Route>().is_err(), "{bad:?}");
        }
    }
}
