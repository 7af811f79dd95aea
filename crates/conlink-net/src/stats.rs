//! Interface state and counters of a whole namespace in one request: what
//! `ip -s -j link show` prints (`RTM_GETLINK` dump with `IFLA_STATS64`).
//!
//! One dump per namespace, not one request per link: `conlink status` and
//! the metrics scrape read 1000 links in a few milliseconds this way.

use conlink_model::MacAddr;

use crate::error::Result;
use crate::handle::Handle;
use crate::link::RTM_GETLINK;
use crate::nl::{self, ifinfomsg, Msg, NLM_F_DUMP};

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKINFO: u16 = 18;
const IFLA_IFALIAS: u16 = 20;
const IFLA_STATS64: u16 = 23;
const IFLA_CARRIER: u16 = 33;
const IFLA_INFO_KIND: u16 = 1;
const IFF_UP: u32 = 1;

/// `struct rtnl_link_stats64` counters conlink reports (the first eight
/// fields of the kernel struct, in its order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Packets dropped on transmit.
    pub tx_dropped: u64,
}

impl Counters {
    fn parse(d: &[u8]) -> Counters {
        let f = |i: usize| {
            d.get(i * 8..i * 8 + 8)
                .map(|b| u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .unwrap_or(0)
        };
        Counters {
            rx_packets: f(0),
            tx_packets: f(1),
            rx_bytes: f(2),
            tx_bytes: f(3),
            rx_errors: f(4),
            tx_errors: f(5),
            rx_dropped: f(6),
            tx_dropped: f(7),
        }
    }
}

/// One interface's state and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStats {
    /// Interface index.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Alias (conlink's ownership mark lives here).
    pub alias: Option<String>,
    /// Administratively up (IFF_UP).
    pub admin_up: bool,
    /// RFC 2863 operational state as `ip link` prints it (`UP`, `DOWN`,
    /// `LOWERLAYERDOWN`, `UNKNOWN`…).
    pub oper_state: String,
    /// Carrier present.
    pub carrier: Option<bool>,
    /// MTU.
    pub mtu: u32,
    /// MAC address.
    pub mac: Option<MacAddr>,
    /// Master (bridge) index.
    pub master: Option<u32>,
    /// `IFLA_LINK`: for a veth, the peer's index (in the peer's namespace).
    pub link: Option<u32>,
    /// Kind (`veth`, `bridge`…).
    pub kind: Option<String>,
    /// Counters (zero when the kernel sent none).
    pub counters: Counters,
}

/// `ip link` names of the RFC 2863 operational states (`IF_OPER_*`).
pub fn oper_state_name(v: u8) -> &'static str {
    match v {
        1 => "NOTPRESENT",
        2 => "DOWN",
        3 => "LOWERLAYERDOWN",
        4 => "TESTING",
        5 => "DORMANT",
        6 => "UP",
        _ => "UNKNOWN",
    }
}

impl LinkStats {
    /// Decodes one RTM_NEWLINK payload (ifinfomsg + attributes).
    pub fn parse(payload: &[u8]) -> Option<LinkStats> {
        let fixed = payload.get(..16)?;
        let index = i32::from_ne_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]) as u32;
        let flags = u32::from_ne_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
        let mut s = LinkStats {
            index,
            name: String::new(),
            alias: None,
            admin_up: flags & IFF_UP != 0,
            oper_state: "UNKNOWN".into(),
            carrier: None,
            mtu: 0,
            mac: None,
            master: None,
            link: None,
            kind: None,
            counters: Counters::default(),
        };
        for (ty, data) in nl::attrs(&payload[16..]) {
            match ty {
                IFLA_IFNAME => s.name = nl::attr_string(data),
                IFLA_IFALIAS => s.alias = Some(nl::attr_string(data)),
                IFLA_MTU => s.mtu = nl::attr_u32(data),
                IFLA_MASTER => s.master = Some(nl::attr_u32(data)),
                IFLA_LINK => s.link = Some(nl::attr_u32(data)),
                IFLA_OPERSTATE => {
                    s.oper_state = oper_state_name(data.first().copied().unwrap_or(0)).into()
                }
                IFLA_CARRIER => s.carrier = data.first().map(|&c| c != 0),
                IFLA_STATS64 => s.counters = Counters::parse(data),
                IFLA_ADDRESS if data.len() == 6 => {
                    let mut m = [0u8; 6];
                    m.copy_from_slice(data);
                    s.mac = Some(MacAddr(m));
                }
                IFLA_LINKINFO => {
                    for (t, d) in nl::attrs(data) {
                        if t == IFLA_INFO_KIND {
                            s.kind = Some(nl::attr_string(d));
                        }
                    }
                }
                _ => {}
            }
        }
        Some(s)
    }
}

impl Handle {
    /// State and counters of every interface in this namespace, in one dump:
    /// `ip -s -d -j link show`.
    pub fn link_stats(&self) -> Result<Vec<LinkStats>> {
        // No IFLA_EXT_MASK: without RTEXT_FILTER_SKIP_STATS the kernel
        // includes IFLA_STATS64 in every reply.
        let m = Msg::new(RTM_GETLINK, NLM_F_DUMP, &ifinfomsg(0, 0, 0, 0));
        Ok(self
            .dump(&m, "list link counters")?
            .iter()
            .filter(|r| r.ty == crate::link::RTM_NEWLINK)
            .filter_map(|r| LinkStats::parse(&r.payload))
            .collect())
    }

    /// State and counters of the interfaces named `names` that exist, in
    /// one datagram of `RTM_GETLINK` requests by name (`ip -s -d -j link
    /// show dev NAME` for each): a container's links without its `lo` and
    /// without a dump's extra round trip. A name that is not there is left
    /// out (the caller reports it missing).
    pub fn link_stats_of(&self, names: &[&str]) -> Result<Vec<LinkStats>> {
        let msgs: Vec<Msg> = names
            .iter()
            .map(|n| {
                let mut m = Msg::new(RTM_GETLINK, 0, &ifinfomsg(0, 0, 0, 0));
                m.attr_str(IFLA_IFNAME, n);
                m
            })
            .collect();
        let refs: Vec<&Msg> = msgs.iter().collect();
        let mut out = Vec::with_capacity(names.len());
        for r in self.batch(&refs) {
            match r {
                Ok(Some(rep)) => out.extend(LinkStats::parse(&rep.payload)),
                Ok(None) => {}
                Err(e) if e.errno == libc::ENODEV => {}
                Err(e) => return Err(nl::op_err("read link counters")(e)),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_state_and_counters() {
        let mut m = Msg::new(16, 0, &ifinfomsg(0, 7, IFF_UP, 0));
        m.attr_str(IFLA_IFNAME, "eth0");
        m.attr_u32(IFLA_MTU, 1500);
        m.attr_u8(IFLA_OPERSTATE, 2);
        m.attr_u8(IFLA_CARRIER, 0);
        let stats: Vec<u8> = (1u64..=24).flat_map(|v| v.to_ne_bytes()).collect();
        m.attr(IFLA_STATS64, &stats);
        let b = m.bytes();
        let s = LinkStats::parse(&b[16..]).unwrap();
        assert_eq!(s.index, 7);
        assert_eq!(s.name, "eth0");
        assert!(s.admin_up);
        assert_eq!(s.oper_state, "DOWN");
        assert_eq!(s.carrier, Some(false));
        assert_eq!(s.counters.rx_packets, 1);
        assert_eq!(s.counters.tx_bytes, 4);
        assert_eq!(s.counters.tx_dropped, 8);
    }
}
