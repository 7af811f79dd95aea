//! [`Handle`]: a NETLINK_ROUTE socket (plus an ioctl socket for ethtool)
//! opened inside one network namespace, usable from any thread.

use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::nl::{self, Msg, NlError, Reply, Socket};

/// Network operations on one namespace. All methods take `&self` and may be
/// called from any thread (requests are serialised on the socket).
///
/// Interface indexes used by address, route and tc requests are cached by
/// name; a stale entry (link deleted and re-created elsewhere) is detected
/// by the kernel's ENODEV and looked up again. Links renamed by another
/// handle or tool while a new link takes the old name are the one case the
/// cache cannot see: rename through the handle you keep using.
#[derive(Debug)]
pub struct Handle {
    ns: Netns,
    sock: Mutex<Socket>,
    /// An AF_INET datagram socket opened in the same namespace: SIOCETHTOOL
    /// resolves interface names in the socket's namespace.
    pub(crate) ioctl_fd: OwnedFd,
    /// Interface indexes by name, to spare a lookup per address/route/tc
    /// request. An entry gone stale (the link was deleted behind our back)
    /// shows as ENODEV and is looked up again once (see `request_on`).
    index_cache: Mutex<HashMap<String, u32>>,
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
            index_cache: Mutex::new(HashMap::new()),
        })
    }

    /// Creates the named namespace NAME (as `ip netns add NAME`) and opens
    /// a handle on it in one step (one thread instead of two).
    pub fn create_netns(name: &str) -> Result<Handle> {
        let (ns, socks) = Netns::create_named_with(name, open_sockets)?;
        let (sock, ioctl_fd) = socks?;
        Ok(Handle {
            ns,
            sock: Mutex::new(sock),
            ioctl_fd,
            index_cache: Mutex::new(HashMap::new()),
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
            index_cache: Mutex::new(HashMap::new()),
        })
    }

    /// The namespace this handle works in.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// The index of `name`, from the cache or the kernel.
    pub(crate) fn cached_index(&self, name: &str) -> Result<u32> {
        let cache = || self.index_cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = cache().get(name) {
            return Ok(*i);
        }
        let i = self.ifindex(name)?;
        cache().insert(name.to_string(), i);
        Ok(i)
    }

    /// Records the index of `name` (known from a reply, e.g. the echo of
    /// a create), sparing the lookup.
    pub(crate) fn remember(&self, name: &str, index: u32) {
        self.index_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), index);
    }

    /// Drops cached indexes: one name, or all.
    pub(crate) fn forget(&self, name: Option<&str>) {
        let mut c = self.index_cache.lock().unwrap_or_else(|p| p.into_inner());
        match name {
            Some(n) => {
                c.remove(n);
            }
            None => c.clear(),
        }
    }

    /// Sends the request `build` makes for interface `dev`'s index; if a
    /// cached index turns out stale (ENODEV), looks `dev` up again once.
    pub(crate) fn request_on(
        &self,
        dev: &str,
        build: impl Fn(u32) -> Result<Msg>,
        op: impl FnOnce() -> String,
    ) -> Result<()> {
        let idx = self.cached_index(dev)?;
        match self.raw_request(&build(idx)?) {
            Ok(()) => Ok(()),
            Err(e) if e.errno == libc::ENODEV => {
                self.forget(Some(dev));
                let idx = self.cached_index(dev)?;
                self.request(&build(idx)?, op)
            }
            Err(e) => Err(nl::op_err(op())(e)),
        }
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

    /// Sends `msgs` in one datagram; one verdict per message (see
    /// [`Socket::batch`]).
    pub(crate) fn batch(&self, msgs: &[&Msg]) -> Vec<std::result::Result<Option<Reply>, NlError>> {
        self.sock().batch(msgs)
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
