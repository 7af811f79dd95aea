//! Link targets of `conlink link set|clear TARGET`: `CONTAINER[:DEV]` or
//! `SERVICE[:REPLICA][:DEV]`, matched against the links of a status.

use crate::api::{LinkStatus, Status};
use crate::error::{Error, Result};

/// A parsed TARGET. The first part names a container or a service (both
/// are tried: compose container names like `lab-node-1` never equal a
/// service name in practice, and when they do, both meanings match); a
/// number second part is a replica, anything else a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Container or service name.
    pub name: String,
    /// Replica (services only).
    pub replica: Option<u32>,
    /// Interface inside the container (None: all of its links).
    pub dev: Option<String>,
    /// The target as written.
    pub raw: String,
}

impl Selector {
    /// Parses TARGET.
    pub fn parse(s: &str) -> Result<Selector> {
        let bad = |why: &str| {
            Error::BadRequest(format!(
                "bad target {s:?}: {why} (expected CONTAINER[:DEV] or SERVICE[:REPLICA][:DEV])"
            ))
        };
        let parts: Vec<&str> = s.split(':').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("empty part"));
        }
        let num = |p: &str| p.parse::<u32>().ok().filter(|n| *n >= 1);
        let (replica, dev) = match parts.as_slice() {
            [_] => (None, None),
            [_, b] => match num(b) {
                Some(n) => (Some(n), None),
                None => (None, Some(b.to_string())),
            },
            [_, r, d] => (
                Some(num(r).ok_or_else(|| bad("replica must be a number from 1"))?),
                Some(d.to_string()),
            ),
            _ => return Err(bad("too many parts")),
        };
        Ok(Selector {
            name: parts[0].to_string(),
            replica,
            dev,
            raw: s.to_string(),
        })
    }

    /// Whether link `l` is selected.
    pub fn matches(&self, l: &LinkStatus) -> bool {
        let by_container = l.container == self.name && self.replica.is_none();
        let by_service = l.service.as_deref() == Some(self.name.as_str())
            && self.replica.is_none_or(|r| r == l.replica);
        (by_container || by_service) && self.dev.as_deref().is_none_or(|d| d == l.dev)
    }

    /// The selected links of `st`; an error naming some known ones when
    /// there are none.
    pub fn resolve<'a>(&self, st: &'a Status) -> Result<Vec<&'a LinkStatus>> {
        let hit: Vec<&LinkStatus> = st.links.iter().filter(|l| self.matches(l)).collect();
        if hit.is_empty() {
            let mut known: Vec<String> = st.links.iter().take(8).map(LinkStatus::id).collect();
            if st.links.len() > 8 {
                known.push(format!("… {} more", st.links.len() - 8));
            }
            return Err(Error::UnknownTarget {
                target: self.raw.clone(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            });
        }
        Ok(hit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::LinkState;

    pub(crate) fn link(
        container: &str,
        service: Option<&str>,
        replica: u32,
        dev: &str,
    ) -> LinkStatus {
        LinkStatus {
            container: container.into(),
            service: service.map(Into::into),
            replica,
            dev: dev.into(),
            kind: "veth".into(),
            outer: None,
            bridge: None,
            bridge_mode: None,
            state: LinkState::Up,
            admin_up: None,
            oper_state: None,
            outer_admin_up: None,
            outer_oper_state: None,
            addresses: vec![],
            mac: None,
            mtu: None,
            netem_config: None,
            netem_override: None,
            netem: None,
            admin_down_override: false,
            flap: None,
            counters: None,
            reason: None,
        }
    }

    #[test]
    fn forms() {
        let st = Status {
            links: vec![
                link("lab-node-1", Some("node"), 1, "eth0"),
                link("lab-node-1", Some("node"), 1, "eth1"),
                link("lab-node-2", Some("node"), 2, "eth0"),
                link("r1", None, 1, "eth0"),
            ],
            ..Default::default()
        };
        let ids = |t: &str| -> Vec<String> {
            Selector::parse(t)
                .unwrap()
                .resolve(&st)
                .unwrap()
                .into_iter()
                .map(LinkStatus::id)
                .collect()
        };
        assert_eq!(ids("node").len(), 3);
        assert_eq!(ids("node:2"), ["lab-node-2/eth0"]);
        assert_eq!(ids("node:eth1"), ["lab-node-1/eth1"]);
        assert_eq!(ids("node:1:eth0"), ["lab-node-1/eth0"]);
        assert_eq!(ids("lab-node-1:eth0"), ["lab-node-1/eth0"]);
        assert_eq!(ids("r1"), ["r1/eth0"]);
        let e = Selector::parse("nope:eth0")
            .unwrap()
            .resolve(&st)
            .unwrap_err();
        assert_eq!(e.kind(), "unknown_target");
        assert!(e.to_string().contains("lab-node-1/eth0"), "{e}");
        for bad in ["", "a::b", "a:x:eth0", "a:0:eth0", "a:1:b:c"] {
            let e = Selector::parse(bad).unwrap_err();
            assert_eq!(e.kind(), "bad_request", "{bad}");
        }
    }
}
