//! Link-level changes in one namespace, sent together: [`Handle::apply`]
//! puts a run of them in one datagram (one system call each way, one
//! wake-up, instead of one round trip each). The single-change methods
//! (`set_up`, `add_addr`, …) are the same code with a run of one.

use conlink_model::{IpNet, MacAddr, Route, RouteType};

use crate::addr::{addr_msg, route_msg};
use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::link::{set_by_name, MARK_PREFIX};
use crate::nl::{self, Msg, NLM_F_CREATE, NLM_F_REPLACE};

const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const IFLA_ADDRESS: u16 = 1;
const IFLA_MTU: u16 = 4;
const IFLA_IFALIAS: u16 = 20;
const IFF_UP: u32 = 1;

/// One change to an interface, by name, as one netlink request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change<'a> {
    /// `ip link set dev DEV up|down`.
    Up(&'a str, bool),
    /// `ip link set dev DEV mtu M`.
    Mtu(&'a str, u32),
    /// `ip link set dev DEV address MAC`.
    Mac(&'a str, MacAddr),
    /// `ip link set dev DEV alias conlink:OWNER` (see [`Handle::mark`]).
    Mark(&'a str, &'a str),
    /// `ip addr replace ADDR dev DEV` (see [`Handle::add_addr`]).
    AddAddr(&'a str, IpNet),
    /// `ip addr del ADDR dev DEV`.
    DelAddr(&'a str, IpNet),
    /// `ip route replace ROUTE dev DEV` (out of the route's own `dev` if
    /// it names one).
    AddRoute(&'a str, &'a Route),
    /// `ip route del ROUTE dev DEV`.
    DelRoute(&'a str, &'a Route),
}

impl Change<'_> {
    /// The operation, as errors name it.
    fn op(&self) -> String {
        let route = |verb: &str, dev: &str, r: &Route| match &r.dev {
            Some(_) => format!("{verb} route {r}"),
            None => format!("{verb} route {r} dev {dev}"),
        };
        match *self {
            Change::Up(d, up) => format!("set {d} {}", if up { "up" } else { "down" }),
            Change::Mtu(d, m) => format!("set mtu {m} on {d}"),
            Change::Mac(d, m) => format!("set address {m} on {d}"),
            Change::Mark(d, _) => format!("set alias of {d}"),
            Change::AddAddr(d, a) => format!("add address {a} on {d}"),
            Change::DelAddr(d, a) => format!("delete address {a} on {d}"),
            Change::AddRoute(d, r) => route("add", d, r),
            Change::DelRoute(d, r) => route("delete", d, r),
        }
    }

    /// The interface whose index the request carries (looked up, or from
    /// the handle's cache); None for requests by name.
    fn indexed(&self) -> Option<&str> {
        match *self {
            Change::AddAddr(d, _) | Change::DelAddr(d, _) => Some(d),
            Change::AddRoute(d, r) | Change::DelRoute(d, r) => {
                (r.kind == RouteType::Unicast).then(|| r.dev.as_deref().unwrap_or(d))
            }
            _ => None,
        }
    }

    /// The request, for interface index `idx` when [`Change::indexed`].
    fn msg(&self, idx: u32) -> Result<Msg> {
        Ok(match *self {
            Change::Up(d, up) => set_by_name(d, if up { IFF_UP } else { 0 }, IFF_UP),
            Change::Mtu(d, mtu) => {
                let mut m = set_by_name(d, 0, 0);
                m.attr_u32(IFLA_MTU, mtu);
                m
            }
            Change::Mac(d, mac) => {
                let mut m = set_by_name(d, 0, 0);
                m.attr(IFLA_ADDRESS, &mac.0);
                m
            }
            Change::Mark(d, owner) => {
                let mut m = set_by_name(d, 0, 0);
                m.attr_str(IFLA_IFALIAS, &format!("{MARK_PREFIX}{owner}"));
                m
            }
            Change::AddAddr(_, a) => addr_msg(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, idx, a),
            Change::DelAddr(_, a) => addr_msg(RTM_DELADDR, 0, idx, a),
            Change::AddRoute(_, r) => route_msg(
                RTM_NEWROUTE,
                NLM_F_CREATE | NLM_F_REPLACE,
                self.indexed().map(|_| idx),
                r,
            ),
            Change::DelRoute(_, r) => route_msg(RTM_DELROUTE, 0, self.indexed().map(|_| idx), r),
        })
    }
}

impl Handle {
    /// Carries `changes` out in order, all in one datagram: one verdict
    /// per change. The kernel goes on after a refusal, so a later change
    /// that depended on a refused one fails too (callers report the first
    /// error). Indexes come from the handle's cache; one gone stale (the
    /// interface made again) is looked up and its change sent once more.
    pub fn apply(&self, changes: &[Change<'_>]) -> Vec<Result<()>> {
        let build = |c: &Change<'_>| -> Result<Msg> {
            let idx = match c.indexed() {
                Some(d) => self.cached_index(d)?,
                None => 0,
            };
            c.msg(idx)
        };
        let built: Vec<Result<Msg>> = changes.iter().map(build).collect();
        let sent: Vec<&Msg> = built.iter().filter_map(|b| b.as_ref().ok()).collect();
        let mut verdicts = self.batch(&sent).into_iter();
        built
            .into_iter()
            .zip(changes)
            .map(|(b, c)| {
                b?;
                let v = verdicts.next().unwrap_or(Err(nl::NlError {
                    errno: libc::EIO,
                    msg: None,
                }));
                match (v, c.indexed()) {
                    (Ok(_), _) => Ok(()),
                    (Err(e), Some(d)) if e.errno == libc::ENODEV => {
                        self.forget(Some(d));
                        self.request(&build(c)?, || c.op())
                    }
                    (Err(e), _) => Err(nl::op_err(c.op())(e)),
                }
            })
            .collect()
    }

    /// One change (a run of one).
    pub(crate) fn apply_one(&self, c: Change<'_>) -> Result<()> {
        self.apply(&[c])
            .pop()
            .unwrap_or_else(|| Err(Error::Invalid(format!("{}: no verdict", c.op()))))
    }
}
