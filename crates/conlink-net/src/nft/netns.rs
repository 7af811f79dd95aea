//! Opening the nf_tables socket inside another network namespace.
//!
//! Kept apart on purpose: the crate's own `netns` module can replace this
//! later without touching the rest of `nft`. A netlink socket stays bound to
//! the namespace it was created in, so we create it on a short-lived thread
//! that `setns`es first, and use it from anywhere afterwards (the netavark
//! pattern): no long-lived thread ever changes namespace.

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
use nix::sys::time::TimeVal;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Open a bound NETLINK_NETFILTER socket in the current namespace.
pub fn socket_here() -> io::Result<Socket> {
    let mut s = Socket::new(NETLINK_NETFILTER)?;
    s.bind_auto()?;
    // The kernel answers a batch before sendmsg returns; the timeout only
    // guards against a reply that never comes (which would be a kernel bug),
    // so a wait can never hang the daemon.
    setsockopt(&s, ReceiveTimeout, &TimeVal::new(5, 0)).map_err(io::Error::from)?;
    Ok(s)
}

/// Open a bound NETLINK_NETFILTER socket inside the namespace at `netns`
/// (`/run/netns/NAME`, `/proc/PID/ns/net`).
pub fn socket_in(netns: &Path) -> io::Result<Socket> {
    socket_in_fd(File::open(netns)?.into())
}

/// Open a bound NETLINK_NETFILTER socket inside the namespace `ns` refers
/// to. Preferred over a path: a `/proc/PID/ns/net` path reopened later may
/// name another namespace once PID is recycled, a held fd cannot.
pub fn socket_in_fd(ns: OwnedFd) -> io::Result<Socket> {
    let worker = std::thread::Builder::new().name("nft-setns".into()).spawn(
        move || -> io::Result<Socket> {
            // Only this thread changes namespace, and it ends right after.
            setns(&ns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            socket_here()
        },
    )?;
    worker
        .join()
        .map_err(|_| io::Error::other("namespace thread panicked"))?
}
