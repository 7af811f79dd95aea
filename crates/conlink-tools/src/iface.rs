//! Interface checks for `wait -i` / `wait -I`, done in the caller's network
//! namespace without spawning `ip` (a scratch image has none).
//!
//! * existence and flags: `SIOCGIFINDEX` / `SIOCGIFFLAGS` ioctls on a
//!   datagram socket (`if_nametoindex` does the same). Unlike
//!   `/sys/class/net`, a socket always reflects the namespace of the calling
//!   process, whichever sysfs happens to be mounted.
//! * addresses: one `RTM_GETADDR` dump over a `NETLINK_ROUTE` socket (what
//!   `ip -4 addr show dev IFACE` sends), filtered here by interface index.
//!
//! "Has an address" (`-I`) means: the interface is administratively up and
//! holds an IPv4 address, or a global-scope IPv6 address that is not
//! tentative. IPv6 link-local addresses do not count: the kernel adds them by
//! itself as soon as a link comes up, so they say nothing about whether
//! conlink has configured the interface yet.

use std::ffi::CString;
use std::io;
use std::mem;

/// State of an interface as seen from this network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfaceState {
    /// Kernel interface index.
    pub index: u32,
    /// `IFF_UP` is set.
    pub up: bool,
}

/// Closes a file descriptor on drop.
struct Fd(libc::c_int);
impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: the descriptor was returned by socket() and is owned here.
        unsafe { libc::close(self.0) };
    }
}

fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    let cname = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    let bytes = cname.as_bytes_with_nul();
    if bytes.len() > libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name longer than 15 bytes",
        ));
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { mem::zeroed() };
    for (dst, &b) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = b as libc::c_char;
    }
    Ok(req)
}

/// Index and up flag of `name`, or `None` when no such interface exists
/// in this namespace.
pub fn state(name: &str) -> io::Result<Option<IfaceState>> {
    // SAFETY: plain socket(2) call; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = Fd(fd);
    let mut req = ifreq_for(name)?;
    // SAFETY: req is a valid ifreq with a NUL-terminated name; the kernel
    // writes ifr_ifindex into it.
    if unsafe { libc::ioctl(fd.0, libc::SIOCGIFINDEX, &mut req) } < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENODEV) => Ok(None),
            _ => Err(err),
        };
    }
    // SAFETY: SIOCGIFINDEX filled the ifindex member of the union.
    let index = unsafe { req.ifr_ifru.ifru_ifindex } as u32;
    let mut req = ifreq_for(name)?;
    // SAFETY: as above, SIOCGIFFLAGS fills ifru_flags.
    if unsafe { libc::ioctl(fd.0, libc::SIOCGIFFLAGS, &mut req) } < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            // Removed between the two calls.
            Some(libc::ENODEV) => Ok(None),
            _ => Err(err),
        };
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    Ok(Some(IfaceState {
        index,
        up: flags as libc::c_int & libc::IFF_UP != 0,
    }))
}

/// One address from an `RTM_GETADDR` dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrInfo {
    /// Interface index the address belongs to.
    pub index: u32,
    /// `AF_INET` or `AF_INET6`.
    pub family: u8,
    /// `RT_SCOPE_*` (0 = universe/global, 253 = link, 254 = host).
    pub scope: u8,
    /// `IFA_F_*` flags (low 8 bits, from the message header).
    pub flags: u8,
}

impl AddrInfo {
    /// Whether this address means "configured" (see module docs).
    pub fn counts(&self) -> bool {
        match self.family as libc::c_int {
            libc::AF_INET => true,
            libc::AF_INET6 => {
                self.scope == libc::RT_SCOPE_UNIVERSE
                    && self.flags & libc::IFA_F_TENTATIVE as u8 == 0
            }
            _ => false,
        }
    }
}

const NLMSG_HDRLEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;

/// Parses the messages of one netlink receive buffer. Returns the addresses
/// found and whether the dump is finished (`NLMSG_DONE`); an `NLMSG_ERROR`
/// becomes an error.
pub fn parse_addr_messages(buf: &[u8], seq: u32) -> io::Result<(Vec<AddrInfo>, bool)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + NLMSG_HDRLEN <= buf.len() {
        let h = &buf[pos..];
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let kind = u16::from_ne_bytes([h[4], h[5]]);
        let msg_seq = u32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
        if len < NLMSG_HDRLEN || pos + len > buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "malformed netlink message",
            ));
        }
        if msg_seq == seq {
            match kind {
                k if k == libc::NLMSG_DONE as u16 => return Ok((out, true)),
                k if k == libc::NLMSG_ERROR as u16 => {
                    let code = h
                        .get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .unwrap_or(-libc::EIO);
                    if code != 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                }
                k if k == libc::RTM_NEWADDR && len >= NLMSG_HDRLEN + IFADDRMSG_LEN => {
                    let m = &h[NLMSG_HDRLEN..];
                    out.push(AddrInfo {
                        family: m[0],
                        flags: m[2],
                        scope: m[3],
                        index: u32::from_ne_bytes([m[4], m[5], m[6], m[7]]),
                    });
                }
                _ => {}
            }
        }
        // Messages are aligned to 4 bytes.
        pos += (len + 3) & !3;
    }
    Ok((out, false))
}

/// Dumps all addresses of this namespace (`ip addr show`, RTM_GETADDR with
/// NLM_F_DUMP, family AF_UNSPEC).
pub fn addresses() -> io::Result<Vec<AddrInfo>> {
    // SAFETY: plain socket(2) call; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = Fd(fd);
    let seq: u32 = 1;
    let mut req = [0u8; NLMSG_HDRLEN + IFADDRMSG_LEN];
    let req_len = req.len() as u32;
    req[0..4].copy_from_slice(&req_len.to_ne_bytes());
    req[4..6].copy_from_slice(&libc::RTM_GETADDR.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&seq.to_ne_bytes());
    // pid 0 (kernel), ifaddrmsg all zero = every family, every interface.
    // SAFETY: zeroed sockaddr_nl with nl_family set addresses the kernel.
    let mut kernel: libc::sockaddr_nl = unsafe { mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: buffer and address are valid for the given lengths.
    let sent = unsafe {
        libc::sendto(
            fd.0,
            req.as_ptr().cast(),
            req.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut all = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::recv(fd.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let (found, done) = parse_addr_messages(&buf[..n as usize], seq)?;
        all.extend(found);
        if done || n == 0 {
            return Ok(all);
        }
    }
}

/// Whether `name` exists here, is up and has an address that counts (see
/// module docs).
pub fn has_address(name: &str) -> io::Result<bool> {
    let Some(st) = state(name)? else {
        return Ok(false);
    };
    if !st.up {
        return Ok(false);
    }
    Ok(addresses()?
        .iter()
        .any(|a| a.index == st.index && a.counts()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_exists_and_has_address() {
        // Every namespace has `lo`; in the test's namespace it is up with
        // 127.0.0.1 (also true inside docker containers).
        let st = state("lo").unwrap().expect("lo exists");
        assert_eq!(st.index, 1);
        assert!(has_address("lo").unwrap());
        assert_eq!(state("conlink-nope0").unwrap(), None);
        assert!(!has_address("conlink-nope0").unwrap());
        assert!(state("a-name-that-is-too-long").is_err());
    }

    fn msg(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDRLEN + payload.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[test]
    fn parse_dump() {
        let mut buf = msg(libc::RTM_NEWADDR, 5, &[2, 24, 0x80, 0, 7, 0, 0, 0]);
        // IPv6 link-local: does not count.
        buf.extend(msg(libc::RTM_NEWADDR, 5, &[10, 64, 0x80, 253, 7, 0, 0, 0]));
        // Other sequence: ignored.
        buf.extend(msg(libc::RTM_NEWADDR, 6, &[2, 24, 0, 0, 9, 0, 0, 0]));
        let (found, done) = parse_addr_messages(&buf, 5).unwrap();
        assert!(!done);
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0],
            AddrInfo {
                index: 7,
                family: 2,
                scope: 0,
                flags: 0x80
            }
        );
        assert!(found[0].counts());
        assert!(!found[1].counts());
        let tentative = AddrInfo {
            index: 7,
            family: 10,
            scope: 0,
            flags: libc::IFA_F_TENTATIVE as u8,
        };
        assert!(!tentative.counts());
        assert!(AddrInfo {
            flags: 0,
            ..tentative
        }
        .counts());

        let done = msg(libc::NLMSG_DONE as u16, 5, &[0, 0, 0, 0]);
        assert!(parse_addr_messages(&done, 5).unwrap().1);
        let err = msg(libc::NLMSG_ERROR as u16, 5, &(-libc::EPERM).to_ne_bytes());
        let e = parse_addr_messages(&err, 5).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        let mut bad = msg(libc::RTM_NEWADDR, 5, &[2, 24, 0, 0, 7, 0, 0, 0]);
        bad[0] = 200;
        assert!(parse_addr_messages(&bad, 5).is_err());
    }
}
