//! Interface addresses and routes, IPv4 and IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use conlink_model::{IpNet, Ipv4Net, Ipv6Net, Route, RouteType};

use crate::change::Change;
use crate::error::Result;
use crate::handle::Handle;
use crate::nl::{self, Msg, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};

const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
/// IFA_F_NODAD: use an IPv6 address at once instead of after duplicate
/// address detection (about 1 s during which it cannot be bound, which a
/// container starting right after its links come up would hit). Addresses
/// are assigned by configuration here, so DAD has nothing to find.
const IFA_F_NODAD: u8 = 0x02;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_METRICS: u16 = 8;
const RTA_FLOW: u16 = 11;
const RTA_TABLE: u16 = 15;
const RTAX_MTU: u16 = 2;
const RTAX_ADVMSS: u16 = 8;
const RTAX_INITCWND: u16 = 11;
const RTAX_INITRWND: u16 = 14;
const RTN_UNICAST: u8 = 1;
const RTNH_F_ONLINK: u32 = 4;
const RT_TABLE_MAIN: u32 = 254;

fn family(v6: bool) -> u8 {
    if v6 {
        libc::AF_INET6 as u8
    } else {
        libc::AF_INET as u8
    }
}

fn ip_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn ifaddrmsg(v6: bool, prefix: u8, flags: u8, index: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = family(v6);
    b[1] = prefix;
    b[2] = flags;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b
}

/// The RTM_NEWADDR/DELADDR message for `addr` on `index`. IPv4: with the
/// broadcast address `ip addr add ADDR brd + dev DEV` computes (none for
/// /31 and /32, as iproute2). IPv6: `ip -6 addr add ADDR dev DEV nodad`
/// (IFA_LOCAL is not sent for IPv6 by iproute2, only IFA_ADDRESS).
pub fn addr_msg(ty: u16, flags: u16, index: u32, addr: IpNet) -> Msg {
    match addr {
        IpNet::V4(a) => {
            let mut m = Msg::new(ty, flags, &ifaddrmsg(false, a.prefix, 0, index));
            m.attr(IFA_LOCAL, &a.addr.octets());
            m.attr(IFA_ADDRESS, &a.addr.octets());
            if a.prefix < 31 {
                m.attr(IFA_BROADCAST, &a.broadcast().octets());
            }
            m
        }
        IpNet::V6(a) => {
            // iproute2 puts flags that fit in ifa_flags there.
            let f = if ty == RTM_NEWADDR { IFA_F_NODAD } else { 0 };
            let mut m = Msg::new(ty, flags, &ifaddrmsg(true, a.prefix, f, index));
            m.attr(IFA_ADDRESS, &a.addr.octets());
            m
        }
    }
}

/// The RTM_NEWROUTE/DELROUTE message for `r`, out of interface `index`
/// when the route type takes one (`ip route add ROUTE dev DEV`; a
/// blackhole/unreachable/prohibit/throw route has no interface). Every
/// attribute of the model: gateway, preferred source, priority, table
/// (above 255 in RTA_TABLE), protocol, scope, type, RTA_METRICS (mtu,
/// advmss, initcwnd, initrwnd), onlink (RTNH_F_ONLINK), realms (RTA_FLOW).
pub fn route_msg(ty: u16, flags: u16, index: Option<u32>, r: &Route) -> Msg {
    let table = r.table.unwrap_or(RT_TABLE_MAIN);
    let mut fixed = [0u8; 12];
    fixed[0] = family(r.is_ipv6());
    fixed[1] = r.dst.prefix();
    // Tables above 255 travel in RTA_TABLE with rtm_table = RT_TABLE_UNSPEC.
    fixed[4] = if table < 256 { table as u8 } else { 0 };
    fixed[5] = r.protocol();
    fixed[6] = r.effective_scope();
    fixed[7] = r.kind.rtn();
    let rflags = if r.onlink { RTNH_F_ONLINK } else { 0 };
    fixed[8..12].copy_from_slice(&rflags.to_ne_bytes());
    let mut m = Msg::new(ty, flags, &fixed);
    if table >= 256 {
        m.attr_u32(RTA_TABLE, table);
    }
    if r.dst.prefix() > 0 {
        m.attr(RTA_DST, &ip_bytes(r.dst.network()));
    }
    if let Some(g) = r.via {
        m.attr(RTA_GATEWAY, &ip_bytes(g));
    }
    if let Some(s) = r.src {
        m.attr(RTA_PREFSRC, &ip_bytes(s));
    }
    if let Some(p) = r.metric {
        m.attr_u32(RTA_PRIORITY, p);
    }
    if let Some(f) = r.realm {
        m.attr_u32(RTA_FLOW, f);
    }
    let metrics = [
        (RTAX_MTU, r.mtu),
        (RTAX_ADVMSS, r.advmss),
        (RTAX_INITCWND, r.initcwnd),
        (RTAX_INITRWND, r.initrwnd),
    ];
    if metrics.iter().any(|(_, v)| v.is_some()) {
        m.nest(RTA_METRICS, |m| {
            for (k, v) in metrics {
                if let Some(v) = v {
                    m.attr_u32(k, v);
                }
            }
        });
    }
    if let (Some(i), true) = (index, r.has_dev()) {
        m.attr_u32(RTA_OIF, i);
    }
    m
}

/// Where the kernel sends a packet to one address (`ip route get DST`):
/// the underlay path of a tunnel to that address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTo {
    /// Outgoing interface index.
    pub oif: u32,
    /// Outgoing interface name.
    pub dev: String,
    /// The source address the kernel picks (RTA_PREFSRC).
    pub src: Option<Ipv4Addr>,
    /// MTU of the outgoing interface.
    pub dev_mtu: u32,
    /// The route's own MTU (`ip route … mtu M`, RTAX_MTU), if set.
    pub route_mtu: Option<u32>,
}

impl RouteTo {
    /// The path MTU as far as this host knows it: the route's MTU when it
    /// sets one, else the interface's (the smaller of both).
    pub fn mtu(&self) -> u32 {
        self.route_mtu.map_or(self.dev_mtu, |m| m.min(self.dev_mtu))
    }
}

/// The request of `ip route get DST` (IPv4), as iproute2 sends it: an
/// rtmsg with dst_len 32 and RTM_F_LOOKUP_TABLE (the reply names the table
/// of the route found), and RTA_DST.
pub fn route_get_msg(dst: Ipv4Addr) -> Msg {
    const RTM_F_LOOKUP_TABLE: u32 = 0x1000;
    let mut fixed = [0u8; 12];
    fixed[0] = libc::AF_INET as u8;
    fixed[1] = 32;
    fixed[8..12].copy_from_slice(&RTM_F_LOOKUP_TABLE.to_ne_bytes());
    let mut m = Msg::new(RTM_GETROUTE, 0, &fixed);
    m.attr(RTA_DST, &dst.octets());
    m
}

impl Handle {
    /// The addresses of `dev`, IPv4 then IPv6 as the kernel lists them
    /// (`ip addr show dev DEV`; IPv6 link-local ones left out: the kernel
    /// makes them itself).
    pub fn addrs(&self, dev: &str) -> Result<Vec<IpNet>> {
        let idx = self.ifindex(dev)?;
        let mut out = Vec::new();
        for v6 in [false, true] {
            let m = Msg::new(RTM_GETADDR, NLM_F_DUMP, &ifaddrmsg(v6, 0, 0, 0));
            for r in self.dump(&m, &format!("list addresses of {dev}"))? {
                let p = &r.payload;
                if r.ty != RTM_NEWADDR || p.len() < 8 || p[0] != family(v6) {
                    continue;
                }
                if u32::from_ne_bytes([p[4], p[5], p[6], p[7]]) != idx {
                    continue;
                }
                // IFA_LOCAL is the interface's own address (IFA_ADDRESS is
                // the peer's on point-to-point links); IPv6 has only ADDRESS.
                let mut local = None;
                let mut address = None;
                for (ty, d) in nl::attrs(&p[8..]) {
                    let a = parse_ip(d);
                    match ty {
                        IFA_LOCAL => local = a,
                        IFA_ADDRESS => address = a,
                        _ => {}
                    }
                }
                match local.or(address) {
                    Some(IpAddr::V4(a)) => out.push(IpNet::V4(Ipv4Net {
                        addr: a,
                        prefix: p[1],
                    })),
                    Some(IpAddr::V6(a)) if a.segments()[0] & 0xffc0 != 0xfe80 => {
                        out.push(IpNet::V6(Ipv6Net {
                            addr: a,
                            prefix: p[1],
                        }))
                    }
                    _ => {}
                }
            }
        }
        Ok(out)
    }

    /// Where a packet to `dst` goes (`ip route get DST`): the outgoing
    /// interface, its MTU, the route's MTU and the source address. No
    /// route is an error (ENETUNREACH, or EHOSTUNREACH for an unreachable
    /// route).
    pub fn route_to(&self, dst: Ipv4Addr) -> Result<RouteTo> {
        let r = self
            .get(&route_get_msg(dst))
            .map_err(nl::op_err(format!("route get {dst}")))?;
        let p = &r.payload;
        let (mut oif, mut src, mut route_mtu) = (None, None, None);
        for (ty, d) in nl::attrs(p.get(12..).unwrap_or(&[])) {
            match ty {
                RTA_OIF if d.len() == 4 => oif = Some(nl::attr_u32(d)),
                RTA_PREFSRC => {
                    if let Some(IpAddr::V4(a)) = parse_ip(d) {
                        src = Some(a);
                    }
                }
                RTA_METRICS => {
                    for (k, v) in nl::attrs(d) {
                        if k == RTAX_MTU && v.len() == 4 {
                            route_mtu = Some(nl::attr_u32(v)).filter(|m| *m > 0);
                        }
                    }
                }
                _ => {}
            }
        }
        let oif = oif.ok_or_else(|| {
            crate::Error::Invalid(format!("route get {dst}: the kernel named no interface"))
        })?;
        let link = self
            .links()?
            .into_iter()
            .find(|l| l.index == oif)
            .ok_or_else(|| crate::Error::NoSuchLink {
                op: format!("route get {dst}"),
                name: format!("ifindex {oif}"),
            })?;
        Ok(RouteTo {
            oif,
            dev: link.name,
            src,
            dev_mtu: link.mtu,
            route_mtu,
        })
    }

    /// The main-table IPv4 routes out of `dev` that the kernel did not
    /// derive from an address (`ip route show dev DEV proto boot|static…`;
    /// prefix routes of the interface's own addresses are recreated by the
    /// kernel and left out).
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
            let mut rt = Route::to(IpNet::any(false));
            let mut oif = None;
            for (ty, d) in nl::attrs(&p[12..]) {
                let num = (d.len() == 4).then(|| u32::from_ne_bytes([d[0], d[1], d[2], d[3]]));
                match ty {
                    RTA_DST => {
                        if let Some(IpAddr::V4(a)) = parse_ip(d) {
                            rt.dst = IpNet::V4(Ipv4Net { addr: a, prefix });
                        }
                    }
                    RTA_GATEWAY => rt.via = parse_ip(d),
                    RTA_PREFSRC => rt.src = parse_ip(d),
                    RTA_PRIORITY => rt.metric = num,
                    RTA_FLOW => rt.realm = num,
                    RTA_OIF => oif = num,
                    RTA_TABLE => table = num.unwrap_or(table),
                    _ => {}
                }
            }
            if oif != Some(idx) || table != RT_TABLE_MAIN {
                continue;
            }
            rt.proto = Some(proto);
            rt.scope = Some(scope);
            rt.onlink = flags & RTNH_F_ONLINK != 0;
            out.push(rt);
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
    /// (`ip addr replace ADDR/LEN brd + dev DEV`; IPv6: `ip -6 addr replace
    /// ADDR/LEN dev DEV nodad`).
    pub fn add_addr(&self, dev: &str, addr: impl Into<IpNet>) -> Result<()> {
        self.apply_one(Change::AddAddr(dev, addr.into()))
    }

    /// Removes an address (`ip addr del ADDR/LEN dev DEV`).
    pub fn del_addr(&self, dev: &str, addr: impl Into<IpNet>) -> Result<()> {
        self.apply_one(Change::DelAddr(dev, addr.into()))
    }

    /// Adds (or re-applies) a route with every field of the model
    /// (`ip route replace ROUTE dev DEV`): out of the route's own `dev` if it
    /// names one, else out of `dev`.
    pub fn add_route(&self, dev: &str, r: &Route) -> Result<()> {
        self.apply_one(Change::AddRoute(dev, r))
    }

    /// Adds a route, failing with EEXIST if it exists (`ip route add ROUTE dev DEV`).
    pub fn add_route_excl(&self, dev: &str, r: &Route) -> Result<()> {
        self.route_request(dev, r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Deletes a route (`ip route del ROUTE dev DEV`).
    pub fn del_route(&self, dev: &str, r: &Route) -> Result<()> {
        self.apply_one(Change::DelRoute(dev, r))
    }

    fn route_request(&self, dev: &str, r: &Route, ty: u16, flags: u16) -> Result<()> {
        let out = r.dev.as_deref().unwrap_or(dev);
        let verb = if ty == RTM_DELROUTE { "delete" } else { "add" };
        let op = || match &r.dev {
            Some(_) => format!("{verb} route {r}"),
            None => format!("{verb} route {r} dev {dev}"),
        };
        if r.kind != RouteType::Unicast {
            // No interface: nothing to look up (the kernel refuses one).
            return self.request(&route_msg(ty, flags, None, r), op);
        }
        self.request_on(out, |idx| Ok(route_msg(ty, flags, Some(idx), r)), op)
    }
}

fn parse_ip(d: &[u8]) -> Option<IpAddr> {
    match d.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3]))),
        16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(d);
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}
