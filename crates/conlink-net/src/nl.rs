//! The netlink wire format and a small synchronous NETLINK_ROUTE socket.
//!
//! Why not `netlink-packet-route`: conlink must match iproute2's requests
//! byte for byte for the operations this machine's kernel cannot run (netem,
//! geneve, vlan, ipvlan, dummy), and several attributes it needs are not in
//! that crate (netem options, `IFLA_IFALIAS` set, group delete). The wire
//! format is a dozen lines of code; building messages directly keeps every
//! byte visible and testable.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
/// Ask the kernel to send the resulting object back (RTM_NEWLINK: the new
/// link, with the veth peer's index in IFLA_LINK).
pub const NLM_F_ECHO: u16 = 0x8;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_APPEND: u16 = 0x800;
/// In an NLMSG_ERROR reply: extended-ack TLVs follow the (capped) request.
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;

const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
const NETLINK_GET_STRICT_CHK: libc::c_int = 12;

/// Marks an attribute as a container of attributes.
pub const NLA_F_NESTED: u16 = 0x8000;

/// Rounds up to the 4-byte netlink alignment.
pub const fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// One netlink request under construction: header, fixed family header,
/// then attributes (nested ones through [`Msg::nest`]).
#[derive(Debug, Clone)]
pub struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    /// A message of type `ty` with `flags` (NLM_F_REQUEST is added) and the
    /// fixed header `fixed` (ifinfomsg, ifaddrmsg, rtmsg, tcmsg…).
    pub fn new(ty: u16, flags: u16, fixed: &[u8]) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // seq, set by the socket
        buf.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it
        buf.extend_from_slice(fixed);
        buf.resize(align(buf.len()), 0);
        Msg { buf }
    }

    /// Appends attribute `ty` with raw payload (padded to 4 bytes).
    pub fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    /// Appends a NUL-terminated string attribute (what iproute2's
    /// `addattr_l(…, strlen(s) + 1)` sends).
    pub fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.attr(ty, &v)
    }

    pub fn attr_u8(&mut self, ty: u16, v: u8) -> &mut Self {
        self.attr(ty, &[v])
    }
    pub fn attr_u16(&mut self, ty: u16, v: u16) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }
    pub fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// Appends a nested attribute whose content `f` writes; its length is
    /// fixed up afterwards, as iproute2's `addattr_nest`/`addattr_nest_end`.
    pub fn nest(&mut self, ty: u16, f: impl FnOnce(&mut Msg)) -> &mut Self {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        f(self);
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// Appends raw bytes at the current position (a struct inside a nest,
    /// like the ifinfomsg that starts VETH_INFO_PEER).
    pub fn raw(&mut self, data: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(data);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    /// The finished message (length set; seq 0).
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = self.buf.clone();
        let len = b.len() as u32;
        b[0..4].copy_from_slice(&len.to_ne_bytes());
        b
    }

    /// Adds `flags` to the header's flags.
    pub fn add_flags(&mut self, flags: u16) -> &mut Self {
        let f = u16::from_ne_bytes([self.buf[6], self.buf[7]]) | flags;
        self.buf[6..8].copy_from_slice(&f.to_ne_bytes());
        self
    }

    /// Message type.
    pub fn msg_type(&self) -> u16 {
        u16::from_ne_bytes([self.buf[4], self.buf[5]])
    }
}

/// `struct ifinfomsg` (16 bytes).
pub fn ifinfomsg(family: u8, index: i32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0] = family;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// `struct tcmsg` (20 bytes).
pub fn tcmsg(ifindex: i32, handle: u32, parent: u32, info: u32) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    b[8..12].copy_from_slice(&handle.to_ne_bytes());
    b[12..16].copy_from_slice(&parent.to_ne_bytes());
    b[16..20].copy_from_slice(&info.to_ne_bytes());
    b
}

/// One received message: type, flags and payload after the nlmsghdr.
#[derive(Debug, Clone)]
pub struct Reply {
    pub ty: u16,
    pub payload: Vec<u8>,
}

/// Iterates the attributes in `buf` as (type without flags, payload).
pub fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        if off + 4 > buf.len() {
            return None;
        }
        let len = u16::from_ne_bytes([buf[off], buf[off + 1]]) as usize;
        let ty = u16::from_ne_bytes([buf[off + 2], buf[off + 3]]) & 0x3fff;
        if len < 4 || off + len > buf.len() {
            return None;
        }
        let data = &buf[off + 4..off + len];
        off += align(len);
        Some((ty, data))
    })
}

/// A string attribute payload without its NUL.
pub fn attr_string(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

/// A u32 attribute payload (0 when short).
pub fn attr_u32(data: &[u8]) -> u32 {
    data.get(..4)
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

/// What the kernel said about a failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlError {
    /// Positive errno.
    pub errno: i32,
    /// The kernel's extended-ack text, when it gave one.
    pub msg: Option<String>,
}

/// How long a request waits for the kernel's reply before failing with
/// ETIMEDOUT. The kernel answers at once unless RTNL is held for long
/// (thousands of links being made at the same moment take well under a
/// second each); without a bound a lost reply would hang that worker for
/// ever.
pub const RECV_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One received message as (seq, type, flags, payload).
type Raw = (u32, u16, u16, Vec<u8>);

thread_local! {
    /// Where datagrams are received (the messages are copied out): one
    /// 64 KiB buffer per thread instead of one per socket. conlink keeps a
    /// socket per container namespace, and 64 KiB each was most of its
    /// memory at scale (docs/performance.md, "Memory").
    static RECV_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 1 << 16]);
}

/// A NETLINK_ROUTE socket bound to the namespace it was opened in.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
    /// The receive timeout set, for the error message.
    timeout: std::time::Duration,
}

impl Socket {
    /// Opens a NETLINK_ROUTE socket in the calling thread's namespace, with
    /// extended acks (the kernel's error text) and capped acks.
    pub fn open() -> io::Result<Self> {
        Self::open_proto(libc::NETLINK_ROUTE)
    }

    /// Opens a netlink socket of protocol `proto` (NETLINK_GENERIC for the
    /// ethtool family) in the calling thread's namespace, set up as `open`.
    pub fn open_proto(proto: libc::c_int) -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the fd is owned right after.
        let fd =
            unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        for opt in [NETLINK_EXT_ACK, NETLINK_CAP_ACK, NETLINK_GET_STRICT_CHK] {
            let one: libc::c_int = 1;
            // SAFETY: valid fd, pointer to a live c_int of the given size.
            // Failure is harmless (older kernels): acks just carry less.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    SOL_NETLINK,
                    opt,
                    &one as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        // SAFETY: zeroed sockaddr_nl is a valid "any port" address.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: valid fd and a correctly sized sockaddr_nl.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut sock = Socket {
            fd,
            seq: 0,
            timeout: RECV_TIMEOUT,
        };
        sock.set_recv_timeout(RECV_TIMEOUT)?;
        sock.seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1);
        Ok(sock)
    }

    /// Sets how long a receive waits (SO_RCVTIMEO); past it a request
    /// fails with ETIMEDOUT ("no reply from the kernel within …").
    pub fn set_recv_timeout(&mut self, timeout: std::time::Duration) -> io::Result<()> {
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: libc::suseconds_t::from(timeout.subsec_micros() as i32),
        };
        // SAFETY: valid fd, pointer to a live timeval of the given size.
        let r = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        self.timeout = timeout;
        Ok(())
    }

    /// Sends `msgs` in one datagram (the kernel handles them one after the
    /// other, each under its own RTNL hold); returns the first sequence
    /// number, message `i` carrying `first + i`.
    fn send_all(&mut self, msgs: &[&Msg]) -> io::Result<u32> {
        DATAGRAMS.fetch_add(1, Ordering::Relaxed);
        MESSAGES.fetch_add(msgs.len() as u64, Ordering::Relaxed);
        let first = self.seq.wrapping_add(1);
        let mut b = Vec::with_capacity(msgs.iter().map(|m| m.buf.len()).sum());
        for m in msgs {
            self.seq = self.seq.wrapping_add(1);
            let start = b.len();
            b.extend_from_slice(&m.buf);
            let len = (b.len() - start) as u32;
            b[start..start + 4].copy_from_slice(&len.to_ne_bytes());
            b[start + 8..start + 12].copy_from_slice(&self.seq.to_ne_bytes());
        }
        // SAFETY: zeroed sockaddr_nl addresses the kernel (pid 0).
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: valid fd; buffer and address live for the call.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                b.as_ptr() as *const libc::c_void,
                b.len(),
                0,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(first)
    }

    fn send(&mut self, msg: &Msg) -> io::Result<u32> {
        self.send_all(&[msg])
    }

    /// Receives one datagram and splits it into (seq, type, flags, payload),
    /// keeping the messages whose sequence `keep` accepts.
    fn recv_where(&mut self, keep: impl Fn(u32) -> bool) -> io::Result<Vec<Raw>> {
        RECV_BUF.with_borrow_mut(|buf| self.recv_into(buf, keep))
    }

    fn recv_into(&mut self, buf: &mut [u8], keep: impl Fn(u32) -> bool) -> io::Result<Vec<Raw>> {
        let n = loop {
            // SAFETY: valid fd; the buffer is owned and sized.
            let r = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if e.kind() == io::ErrorKind::WouldBlock {
                    // SO_RCVTIMEO expired: say so, not "try again".
                    return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT));
                }
                return Err(e);
            }
            break r as usize;
        };
        let mut out = Vec::new();
        let mut off = 0;
        while off + 16 <= n {
            let b = &buf[off..n];
            let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
            if len < 16 || len > b.len() {
                break;
            }
            let ty = u16::from_ne_bytes([b[4], b[5]]);
            let flags = u16::from_ne_bytes([b[6], b[7]]);
            let mseq = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
            if keep(mseq) {
                out.push((mseq, ty, flags, b[16..len].to_vec()));
            }
            off += align(len);
        }
        Ok(out)
    }

    /// Receives one datagram's messages of sequence `seq`.
    fn recv(&mut self, seq: u32) -> io::Result<Vec<(u16, u16, Vec<u8>)>> {
        Ok(self
            .recv_where(|s| s == seq)?
            .into_iter()
            .map(|(_, ty, flags, p)| (ty, flags, p))
            .collect())
    }

    /// Sends `msg` with NLM_F_ACK and waits for the kernel's verdict.
    pub fn request(&mut self, msg: &Msg) -> std::result::Result<(), NlError> {
        self.batch(&[msg]).pop().unwrap_or(Ok(None)).map(|_| ())
    }

    /// Sends all of `msgs` with NLM_F_ACK in one datagram and collects one
    /// verdict per message, in order: `Ok(Some(reply))` for a request that
    /// asked for NLM_F_ECHO (the object the kernel made), else `Ok(None)`.
    /// The kernel goes on after a refused message, so a later message that
    /// depended on it fails too (typically ENODEV); callers report the
    /// first error. One system call each way instead of one per request.
    pub fn batch(&mut self, msgs: &[&Msg]) -> Vec<std::result::Result<Option<Reply>, NlError>> {
        let acked: Vec<Msg> = msgs
            .iter()
            .map(|m| {
                let mut m = (*m).clone();
                m.add_flags(NLM_F_ACK);
                m
            })
            .collect();
        let refs: Vec<&Msg> = acked.iter().collect();
        let mut out: Vec<Option<std::result::Result<Option<Reply>, NlError>>> =
            vec![None; msgs.len()];
        let mut echoed: Vec<Option<Reply>> = vec![None; msgs.len()];
        let first = match self.send_all(&refs) {
            Ok(f) => f,
            Err(e) => return msgs.iter().map(|_| Err(io_nl(&e, self.timeout))).collect(),
        };
        let count = msgs.len() as u32;
        let slot = move |s: u32| {
            let i = s.wrapping_sub(first);
            (i < count).then_some(i as usize)
        };
        let mut left = msgs.len();
        while left > 0 {
            let got = match self.recv_where(|s| slot(s).is_some()) {
                Ok(v) => v,
                Err(e) => {
                    for o in out.iter_mut().filter(|o| o.is_none()) {
                        *o = Some(Err(io_nl(&e, self.timeout)));
                    }
                    break;
                }
            };
            for (seq, ty, flags, payload) in got {
                let Some(i) = slot(seq) else { continue };
                if out[i].is_some() {
                    continue;
                }
                if ty == NLMSG_ERROR {
                    out[i] = Some(match parse_error(flags, &payload) {
                        None => Ok(echoed[i].take()),
                        Some(e) => Err(e),
                    });
                    left -= 1;
                } else if echoed[i].is_none() {
                    echoed[i] = Some(Reply { ty, payload });
                }
            }
        }
        out.into_iter()
            .map(|o| {
                o.unwrap_or(Err(NlError {
                    errno: libc::EIO,
                    msg: None,
                }))
            })
            .collect()
    }

    /// Sends a get request (no dump) and returns the single reply.
    pub fn get(&mut self, msg: &Msg) -> std::result::Result<Reply, NlError> {
        let t = self.timeout;
        let seq = self.send(msg).map_err(|e| io_nl(&e, t))?;
        loop {
            for (ty, flags, payload) in self.recv(seq).map_err(|e| io_nl(&e, t))? {
                if ty == NLMSG_ERROR {
                    if let Some(e) = parse_error(flags, &payload) {
                        return Err(e);
                    }
                    continue;
                }
                return Ok(Reply { ty, payload });
            }
        }
    }

    /// Sends a dump request and collects every reply message until DONE.
    pub fn dump(&mut self, msg: &Msg) -> std::result::Result<Vec<Reply>, NlError> {
        let t = self.timeout;
        let seq = self.send(msg).map_err(|e| io_nl(&e, t))?;
        let mut out = Vec::new();
        loop {
            for (ty, flags, payload) in self.recv(seq).map_err(|e| io_nl(&e, t))? {
                match ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        return match parse_error(flags, &payload) {
                            None => Ok(out),
                            Some(e) => Err(e),
                        }
                    }
                    _ => out.push(Reply { ty, payload }),
                }
            }
        }
    }
}

/// An I/O error as a verdict; a receive timeout (of `timeout`) is ours,
/// not the kernel's, and says so.
fn io_nl(e: &io::Error, timeout: std::time::Duration) -> NlError {
    let errno = e.raw_os_error().unwrap_or(libc::EIO);
    NlError {
        errno,
        msg: (errno == libc::ETIMEDOUT)
            .then(|| format!("no netlink reply from the kernel within {:?}", timeout)),
    }
}

/// Decodes an NLMSG_ERROR payload: None for a plain ack (error 0).
fn parse_error(flags: u16, p: &[u8]) -> Option<NlError> {
    let err = p
        .get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(-libc::EIO);
    if err == 0 {
        return None;
    }
    let mut msg = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        // After the error code comes the offending request: only its
        // 16-byte header when capped, else the whole message.
        let req_len = if flags & NLM_F_CAPPED != 0 {
            16
        } else {
            p.get(4..8)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .unwrap_or(16)
        };
        if let Some(tlvs) = p.get(4 + align(req_len)..) {
            for (ty, data) in attrs(tlvs) {
                if ty == NLMSGERR_ATTR_MSG {
                    msg = Some(attr_string(data));
                }
            }
        }
    }
    Some(NlError { errno: -err, msg })
}

/// Turns a kernel verdict into the crate error for operation `op`.
pub fn op_err(op: impl Into<String>) -> impl FnOnce(NlError) -> Error {
    move |e| Error::Netlink {
        op: op.into(),
        errno: e.errno,
        kernel_msg: e.msg,
    }
}

/// Result of a request for operation `op`.
pub fn check(r: std::result::Result<(), NlError>, op: impl Into<String>) -> Result<()> {
    r.map_err(op_err(op))
}

use std::sync::atomic::{AtomicU64, Ordering};

static DATAGRAMS: AtomicU64 = AtomicU64::new(0);
static MESSAGES: AtomicU64 = AtomicU64::new(0);

/// Netlink traffic this process has sent through [`Socket`] so far:
/// (datagrams, messages). Lets the daemon report the kernel requests a
/// reload cost (work proportional to the change, `bench/reload`); one
/// relaxed atomic add per datagram.
pub fn sent() -> (u64, u64) {
    (
        DATAGRAMS.load(Ordering::Relaxed),
        MESSAGES.load(Ordering::Relaxed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request the kernel never answers (NLMSG_NOOP without NLM_F_ACK is
    /// dropped silently) fails with ETIMEDOUT and a clear message at the
    /// receive timeout; it used to wait for ever. Needs no privileges and
    /// changes nothing.
    #[test]
    fn lost_reply_times_out_with_a_clear_error() {
        let mut s = Socket::open().unwrap();
        s.set_recv_timeout(std::time::Duration::from_millis(200))
            .unwrap();
        let noop = Msg::new(1, 0, &[]);
        let t = std::time::Instant::now();
        let e = s.get(&noop).unwrap_err();
        assert!(t.elapsed() >= std::time::Duration::from_millis(150));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(e.errno, libc::ETIMEDOUT);
        let text = op_err("get link x")(e).to_string();
        assert!(
            text.contains("no netlink reply from the kernel within 200ms"),
            "{text}"
        );
        // The socket still works afterwards.
        let mut lo = Msg::new(18 /* RTM_GETLINK */, 0, &ifinfomsg(0, 1, 0, 0));
        lo.attr_u32(29 /* IFLA_EXT_MASK */, 0);
        assert!(s.get(&lo).is_ok());
    }

    #[test]
    fn nested_lengths_and_padding() {
        let mut m = Msg::new(16, NLM_F_CREATE, &ifinfomsg(0, 0, 0, 0));
        m.attr_str(3, "eth0");
        m.nest(18, |m| {
            m.attr_str(1, "veth");
        });
        let b = m.bytes();
        // 16 header + 16 ifinfomsg + (4+5 -> 12) + nest(4 + 4+5 -> 12) = 16
        assert_eq!(b.len(), 16 + 16 + 12 + 16);
        assert_eq!(
            u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize,
            b.len()
        );
        let a: Vec<_> = attrs(&b[32..]).collect();
        assert_eq!(a[0], (3, &b"eth0\0"[..]));
        assert_eq!(a[1].0, 18);
        // Nest length covers the padded content, as iproute2 addattr_nest_end.
        assert_eq!(u16::from_ne_bytes([b[44], b[45]]), 16);
    }

    #[test]
    fn error_with_extack_text() {
        let mut p = Vec::new();
        p.extend_from_slice(&(-95i32).to_ne_bytes());
        p.extend_from_slice(&[0u8; 16]);
        p.extend_from_slice(&24u16.to_ne_bytes());
        p.extend_from_slice(&1u16.to_ne_bytes());
        p.extend_from_slice(b"Unknown device type\0");
        let e = parse_error(NLM_F_CAPPED | NLM_F_ACK_TLVS, &p).unwrap();
        assert_eq!(e.errno, 95);
        assert_eq!(e.msg.as_deref(), Some("Unknown device type"));
        assert_eq!(parse_error(0, &0i32.to_ne_bytes()), None);
    }
}
