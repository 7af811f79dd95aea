//! [`Handle`]: a NETLINK_ROUTE socket (plus an ioctl socket for ethtool)
//! opened inside one network namespace, usable from any thread.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::nl::{self, Msg, NlError, Reply, Socket};

/// Network operations on one namespace. All methods take `&self` and may be
/// called from any thread (requests are serialised on the socket).
#[derive(Debug)]
pub struct Handle {
    ns: Netns,
    sock: Mutex<Socket>,
    /// An AF_INET datagram socket opened in the same namespace: SIOCETHTOOL
    /// resolves interface names in the socket's namespace.
    pub(crate) ioctl_fd: OwnedFd,
}

fn open_sockets() -> Result<(Socket, OwnedFd)> {
    let sock = Socket::open().map_err(|e| Error::Io {
        op: "open netlink socket".into(),
        source: e,
    })?;
    // SAFETY: plain socket(2); fd owned right after.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Error::Io {
            op: "open ioctl socket".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: fresh descriptor owned by nobody else.
    Ok((sock, unsafe { OwnedFd::from_raw_fd(fd) }))
}

impl Handle {
    /// Opens a handle on namespace `ns` (its sockets are created on a
    /// short-lived thread that entered `ns`).
    pub fn open(ns: &Netns) -> Result<Handle> {
        let (sock, ioctl_fd) = ns.run(open_sockets)??;
        Ok(Handle {
            ns: ns.try_clone()?,
            sock: Mutex::new(sock),
            ioctl_fd,
        })
    }

    /// Opens a handle on the named namespace `/run/netns/NAME`.
    pub fn open_named(name: &str) -> Result<Handle> {
        Self::open(&Netns::named(name)?)
    }

    /// Opens a handle on the calling thread's current namespace.
    pub fn current() -> Result<Handle> {
        let ns = Netns::current()?;
        let (sock, ioctl_fd) = open_sockets()?;
        Ok(Handle {
            ns,
            sock: Mutex::new(sock),
            ioctl_fd,
        })
    }

    /// The namespace this handle works in.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    fn sock(&self) -> std::sync::MutexGuard<'_, Socket> {
        // A panic while holding the lock cannot leave the socket in a state
        // later requests would misread (replies are matched by sequence).
        self.sock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `msg`, waits for the ack.
    pub(crate) fn raw_request(&self, msg: &Msg) -> std::result::Result<(), NlError> {
        self.sock().request(msg)
    }

    /// Sends `msg`; a refusal becomes [`Error::Netlink`] for operation `op`.
    pub(crate) fn request(&self, msg: &Msg, op: impl FnOnce() -> String) -> Result<()> {
        self.raw_request(msg).map_err(|e| nl::op_err(op())(e))
    }

    /// Sends a get request and returns the one reply.
    pub(crate) fn get(&self, msg: &Msg) -> std::result::Result<Reply, NlError> {
        self.sock().get(msg)
    }

    /// Sends a dump request and returns all replies.
    pub(crate) fn dump(&self, msg: &Msg, op: &str) -> Result<Vec<Reply>> {
        self.sock().dump(msg).map_err(nl::op_err(op))
    }
}
