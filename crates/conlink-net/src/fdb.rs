//! Forwarding-database entries of VXLAN devices: the remotes of a tunnel
//! that has no single remote. An all-zeros MAC entry per remote makes the
//! kernel send every flooded frame (broadcast, unknown unicast, multicast)
//! to each remote in turn: head-end replication over unicast, no multicast
//! needed in the underlay. Learned unicast entries then send known MACs to
//! one remote only.

use std::net::Ipv4Addr;

use crate::error::Result;
use crate::handle::Handle;
use crate::nl::{self, Msg, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP};

const RTM_NEWNEIGH: u16 = 28;
const RTM_DELNEIGH: u16 = 29;
const RTM_GETNEIGH: u16 = 30;
const AF_BRIDGE: u8 = 7;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
/// `bridge fdb` without `temp`/`static` means permanent; NOARP is always set.
const NUD_NOARP: u16 = 0x40;
const NUD_PERMANENT: u16 = 0x80;
/// The entry is the device's own (`self`), not its bridge master's.
const NTF_SELF: u8 = 0x02;
/// The entry is the bridge master's (`master`).
const NTF_MASTER: u8 = 0x04;

/// The MAC of the flood entries.
const ZERO_MAC: [u8; 6] = [0; 6];

/// `struct ndmsg`: family, pad, ifindex, state, flags, type.
fn ndmsg(ifindex: u32, state: u16, flags: u8) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[0] = AF_BRIDGE;
    b[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    b[8..10].copy_from_slice(&state.to_ne_bytes());
    b[10] = flags;
    b
}

/// The request of `bridge fdb append 00:00:00:00:00:00 dev DEV dst DST`
/// (`del`: `bridge fdb del …`), byte for byte as iproute2 sends it.
pub fn fdb_msg(del: bool, ifindex: u32, dst: Ipv4Addr) -> Msg {
    let (ty, flags) = if del {
        (RTM_DELNEIGH, 0)
    } else {
        (RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND)
    };
    let mut m = Msg::new(
        ty,
        flags,
        &ndmsg(ifindex, NUD_NOARP | NUD_PERMANENT, NTF_SELF),
    );
    m.attr(NDA_LLADDR, &ZERO_MAC);
    m.attr(NDA_DST, &dst.octets());
    m
}

impl Handle {
    /// Adds `dst` to the flood list of VXLAN device `dev`
    /// (`bridge fdb append 00:00:00:00:00:00 dev DEV dst DST`). Appending a
    /// remote that is already listed is accepted (EEXIST is success): a
    /// re-run converges.
    pub fn fdb_append(&self, dev: &str, dst: Ipv4Addr) -> Result<()> {
        let idx = self.cached_index(dev)?;
        match self.raw_request(&fdb_msg(false, idx, dst)) {
            Ok(()) => Ok(()),
            Err(e) if e.errno == libc::EEXIST => Ok(()),
            Err(e) => Err(nl::op_err(format!("append fdb flood entry {dst} on {dev}"))(e)),
        }
    }

    /// Removes `dst` from the flood list of `dev`
    /// (`bridge fdb del 00:00:00:00:00:00 dev DEV dst DST`); one that is not
    /// there (ENOENT) is not an error.
    pub fn fdb_del(&self, dev: &str, dst: Ipv4Addr) -> Result<()> {
        let idx = self.cached_index(dev)?;
        match self.raw_request(&fdb_msg(true, idx, dst)) {
            Ok(()) => Ok(()),
            Err(e) if e.errno == libc::ENOENT => Ok(()),
            Err(e) => Err(nl::op_err(format!("delete fdb flood entry {dst} on {dev}"))(e)),
        }
    }

    /// Forgets where MAC `mac` was learned on bridge port `port`: the
    /// bridge's entry (`bridge fdb del MAC dev PORT master`) and the port's
    /// own, for a VXLAN port (`bridge fdb del MAC dev PORT self`). For a
    /// station that moved: a task rescheduled from another host keeps its
    /// MAC, and until the old entry ages out (300 s) the bridge would send
    /// its frames back into the tunnel. Entries that do not exist are fine.
    pub fn fdb_forget(&self, port: &str, mac: [u8; 6]) -> Result<()> {
        let idx = self.cached_index(port)?;
        for flags in [NTF_MASTER, NTF_SELF] {
            let mut m = Msg::new(RTM_DELNEIGH, 0, &ndmsg(idx, 0, flags));
            m.attr(NDA_LLADDR, &mac);
            match self.raw_request(&m) {
                Ok(()) => {}
                Err(e) if e.errno == libc::ENOENT || e.errno == libc::EINVAL => {}
                Err(e) => {
                    return Err(nl::op_err(format!("forget learned MAC on {port}"))(e));
                }
            }
        }
        Ok(())
    }

    /// The flood list of `dev`: the IPv4 destinations of its all-zeros
    /// entries (`bridge fdb show dev DEV | grep ^00:00:00:00:00:00`), sorted.
    pub fn fdb_flood(&self, dev: &str) -> Result<Vec<Ipv4Addr>> {
        let idx = self.ifindex(dev)?;
        // With strict checking the kernel filters the dump by ndm_ifindex.
        let m = Msg::new(RTM_GETNEIGH, NLM_F_DUMP, &ndmsg(idx, 0, 0));
        let mut out = Vec::new();
        for r in self.dump(&m, &format!("dump fdb of {dev}"))? {
            if r.ty != RTM_NEWNEIGH || r.payload.len() < 12 {
                continue;
            }
            let ifindex =
                u32::from_ne_bytes([r.payload[4], r.payload[5], r.payload[6], r.payload[7]]);
            if ifindex != idx {
                continue;
            }
            let (mut mac, mut dst) = (None, None);
            for (ty, data) in nl::attrs(&r.payload[12..]) {
                match ty {
                    NDA_LLADDR => mac = Some(data.to_vec()),
                    NDA_DST if data.len() == 4 => {
                        dst = Some(Ipv4Addr::new(data[0], data[1], data[2], data[3]))
                    }
                    _ => {}
                }
            }
            if let (Some(mac), Some(dst)) = (mac, dst) {
                if mac == ZERO_MAC {
                    out.push(dst);
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}
