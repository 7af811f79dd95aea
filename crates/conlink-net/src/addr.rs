//! IPv4 addresses and routes.

use conlink_model::{Ipv4Net, Route, RouteDst};

use crate::error::Result;
use crate::handle::Handle;
use crate::nl::{self, Msg, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE};

const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_METRICS: u16 = 8;
const RTA_TABLE: u16 = 15;
const RTAX_MTU: u16 = 2;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;
const RTNH_F_ONLINK: u32 = 4;
const RT_TABLE_MAIN: u32 = 254;

fn ifaddrmsg(prefix: u8, index: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = libc::AF_INET as u8;
    b[1] = prefix;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b
}

/// The RTM_NEWADDR/DELADDR message for `addr` on `index`, with the
/// broadcast address `ip addr add ADDR brd + dev DEV` computes (none for
/// /31 and /32, as iproute2).
pub fn addr_msg(ty: u16, flags: u16, index: u32, addr: Ipv4Net) -> Msg {
    let mut m = Msg::new(ty, flags, &ifaddrmsg(addr.prefix, index));
    m.attr(IFA_LOCAL, &addr.addr.octets());
    m.attr(IFA_ADDRESS, &addr.addr.octets());
    if addr.prefix < 31 {
        m.attr(IFA_BROADCAST, &addr.broadcast().octets());
    }
    m
}

/// The RTM_NEWROUTE/DELROUTE message for `r` out of interface `index`.
pub fn route_msg(ty: u16, flags: u16, index: u32, r: &Route) -> Msg {
    let dst = r.dst_net();
    let table = r.table.unwrap_or(RT_TABLE_MAIN);
    let mut fixed = [0u8; 12];
    fixed[0] = libc::AF_INET as u8;
    fixed[1] = dst.prefix;
    // Tables above 255 travel in RTA_TABLE with rtm_table = RT_TABLE_UNSPEC.
    fixed[4] = if table < 256 { table as u8 } else { 0 };
    fixed[5] = RTPROT_BOOT;
    fixed[6] = r.effective_scope();
    fixed[7] = RTN_UNICAST;
    let rflags = if r.onlink { RTNH_F_ONLINK } else { 0 };
    fixed[8..12].copy_from_slice(&rflags.to_ne_bytes());
    let mut m = Msg::new(ty, flags, &fixed);
    if dst.prefix > 0 {
        m.attr(RTA_DST, &dst.network().octets());
    }
    if let Some(g) = r.via {
        m.attr(RTA_GATEWAY, &g.octets());
    }
    if let Some(s) = r.src {
        m.attr(RTA_PREFSRC, &s.octets());
    }
    if let Some(p) = r.metric {
        m.attr_u32(RTA_PRIORITY, p);
    }
    if let Some(mtu) = r.mtu {
        m.nest(RTA_METRICS, |m| {
            m.attr_u32(RTAX_MTU, mtu);
        });
    }
    if table >= 256 {
        m.attr_u32(RTA_TABLE, table);
    }
    m.attr_u32(RTA_OIF, index);
    m
}

impl Handle {
    /// The IPv4 addresses of `dev` (`ip -4 addr show dev DEV`).
    pub fn addrs(&self, dev: &str) -> Result<Vec<Ipv4Net>> {
        let idx = self.ifindex(dev)?;
        let m = Msg::new(RTM_GETADDR, NLM_F_DUMP, &ifaddrmsg(0, 0));
        let mut out = Vec::new();
        for r in self.dump(&m, &format!("list addresses of {dev}"))? {
            let p = &r.payload;
            if r.ty != RTM_NEWADDR || p.len() < 8 || p[0] != libc::AF_INET as u8 {
                continue;
            }
            if u32::from_ne_bytes([p[4], p[5], p[6], p[7]]) != idx {
                continue;
            }
            // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the
            // peer's on point-to-point links).
            let mut local = None;
            let mut address = None;
            for (ty, d) in nl::attrs(&p[8..]) {
                if d.len() == 4 {
                    let a = std::net::Ipv4Addr::new(d[0], d[1], d[2], d[3]);
                    match ty {
                        IFA_LOCAL => local = Some(a),
                        IFA_ADDRESS => address = Some(a),
                        _ => {}
                    }
                }
            }
            if let Some(a) = local.or(address) {
                out.push(Ipv4Net {
                    addr: a,
                    prefix: p[1],
                });
            }
        }
        Ok(out)
    }

    /// The main-table IPv4 unicast routes out of `dev` that the kernel did
    /// not derive from an address (`ip route show dev DEV proto
    /// boot|static…`; prefix routes of the interface's own addresses are
    /// recreated by the kernel and left out).
    pub fn routes(&self, dev: &str) -> Result<Vec<Route>> {
        const RTPROT_KERNEL: u8 = 2;
        let idx = self.ifindex(dev)?;
        let mut fixed = [0u8; 12];
        fixed[0] = libc::AF_INET as u8;
        let m = Msg::new(RTM_GETROUTE, NLM_F_DUMP, &fixed);
        let mut out = Vec::new();
        for r in self.dump(&m, &format!("list routes of {dev}"))? {
            let p = &r.payload;
            if r.ty != RTM_NEWROUTE || p.len() < 12 || p[0] != libc::AF_INET as u8 {
                continue;
            }
            let (prefix, proto, scope, kind) = (p[1], p[5], p[6], p[7]);
            if kind != RTN_UNICAST || proto == RTPROT_KERNEL {
                continue;
            }
            let flags = u32::from_ne_bytes([p[8], p[9], p[10], p[11]]);
            let mut table = u32::from(p[4]);
            let (mut dst, mut via, mut src, mut metric, mut oif) = (None, None, None, None, None);
            for (ty, d) in nl::attrs(&p[12..]) {
                let ip = || (d.len() == 4).then(|| std::net::Ipv4Addr::new(d[0], d[1], d[2], d[3]));
                let num = || (d.len() == 4).then(|| u32::from_ne_bytes([d[0], d[1], d[2], d[3]]));
                match ty {
                    RTA_DST => dst = ip(),
                    RTA_GATEWAY => via = ip(),
                    RTA_PREFSRC => src = ip(),
                    RTA_PRIORITY => metric = num(),
                    RTA_OIF => oif = num(),
                    RTA_TABLE => table = num().unwrap_or(table),
                    _ => {}
                }
            }
            if oif != Some(idx) || table != RT_TABLE_MAIN {
                continue;
            }
            let dst = match dst {
                Some(a) if prefix > 0 => RouteDst::Net(Ipv4Net { addr: a, prefix }),
                _ => RouteDst::Default,
            };
            out.push(Route {
                dst,
                via,
                src,
                metric,
                mtu: None,
                table: None,
                scope: Some(scope),
                onlink: flags & RTNH_F_ONLINK != 0,
            });
        }
        Ok(out)
    }

    /// Renames a link that is in use, keeping its configuration: the kernel
    /// renames only links that are down, and taking a link down drops the
    /// routes through it, so they are listed first and put back after
    /// (addresses survive; their prefix routes come back with the link).
    /// No iproute2 one-liner: `ip route show dev OLD` + `ip link set OLD
    /// down name NEW up` + `ip route add … dev NEW` for each.
    pub fn rename_keeping_config(&self, old: &str, new: &str) -> Result<()> {
        let routes = self.routes(old)?;
        self.set_up(old, false)?;
        self.rename(old, new)?;
        self.set_up(new, true)?;
        // Link-scope routes first: a gatewayed route needs its gateway's
        // prefix reachable.
        let mut routes = routes;
        routes.sort_by_key(|r| r.via.is_some());
        for r in &routes {
            self.add_route(new, r)?;
        }
        Ok(())
    }

    /// Adds (or re-applies) an address with its broadcast
    /// (`ip addr replace ADDR/LEN brd + dev DEV`).
    pub fn add_addr(&self, dev: &str, addr: Ipv4Net) -> Result<()> {
        self.request_on(
            dev,
            |idx| {
                Ok(addr_msg(
                    RTM_NEWADDR,
                    NLM_F_CREATE | NLM_F_REPLACE,
                    idx,
                    addr,
                ))
            },
            || format!("add address {addr} on {dev}"),
        )
    }

    /// Removes an address (`ip addr del ADDR/LEN dev DEV`).
    pub fn del_addr(&self, dev: &str, addr: Ipv4Net) -> Result<()> {
        self.request_on(
            dev,
            |idx| Ok(addr_msg(RTM_DELADDR, 0, idx, addr)),
            || format!("delete address {addr} on {dev}"),
        )
    }

    /// Adds (or re-applies) a route out of `dev` with every field of the
    /// model (`ip route replace ROUTE dev DEV`).
    pub fn add_route(&self, dev: &str, r: &Route) -> Result<()> {
        self.request_on(
            dev,
            |idx| {
                Ok(route_msg(
                    RTM_NEWROUTE,
                    NLM_F_CREATE | NLM_F_REPLACE,
                    idx,
                    r,
                ))
            },
            || format!("add route {r} dev {dev}"),
        )
    }

    /// Adds a route, failing with EEXIST if it exists (`ip route add ROUTE dev DEV`).
    pub fn add_route_excl(&self, dev: &str, r: &Route) -> Result<()> {
        self.request_on(
            dev,
            |idx| Ok(route_msg(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, idx, r)),
            || format!("add route {r} dev {dev}"),
        )
    }

    /// Deletes a route (`ip route del ROUTE dev DEV`).
    pub fn del_route(&self, dev: &str, r: &Route) -> Result<()> {
        self.request_on(
            dev,
            |idx| Ok(route_msg(RTM_DELROUTE, 0, idx, r)),
            || format!("delete route {r} dev {dev}"),
        )
    }
}
