//! The netns runtime: named network namespaces play the containers.
//!
//! `container: NAME` targets the namespace `NAME`; `service: S` targets
//! `S_1 … S_N` (N from `--scale S=N`), with replica index i for `S_i`, so
//! replica offsets work without docker. Namespaces conlink creates are
//! removed when it stops; ones that already existed are left alone.

use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::sched::{setns, CloneFlags};
use tokio::io::{AsyncBufReadExt, BufReader};
use tracing::{info, warn};

use crate::{Container, Event};

/// Where iproute2 keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Errors of the netns runtime.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// Creating a named namespace failed.
    #[error("create network namespace {name}: {source}")]
    Create {
        name: String,
        #[source]
        source: conlink_net::Error,
    },
    /// Removing a named namespace failed.
    #[error("delete network namespace {name}: {source}")]
    Delete {
        name: String,
        #[source]
        source: conlink_net::Error,
    },
    /// Running a command in a namespace failed.
    #[error("run {argv:?} in {name}: {source}")]
    Exec {
        name: String,
        argv: Vec<String>,
        #[source]
        source: std::io::Error,
    },
}

fn io(e: nix::Error) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

/// Path of the named namespace `name`.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Creates the named namespace `name` (`ip netns add NAME`), through
/// conlink-net's namespace code (the one place that calls unshare).
pub fn create_named(name: &str) -> Result<PathBuf, NetnsError> {
    conlink_net::Netns::create_named(name).map_err(|source| NetnsError::Create {
        name: name.to_string(),
        source,
    })?;
    Ok(netns_path(name))
}

/// Removes the named namespace `name` (`ip netns del NAME`); one already
/// gone is not an error. The kernel destroys it, and every virtual
/// interface in it, once nothing holds it.
pub fn delete_named(name: &str) -> Result<(), NetnsError> {
    if !netns_path(name).exists() {
        return Ok(());
    }
    conlink_net::Netns::delete_named(name).map_err(|source| NetnsError::Delete {
        name: name.to_string(),
        source,
    })
}

/// A stable pseudo container id for a namespace name: 16 hex digits of its
/// FNV-1a hash (outer interface names may embed the first 8).
pub fn pseudo_id(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The netns runtime: the instances it plays and the namespaces it created.
pub struct NetnsRuntime {
    instances: Vec<Container>,
    /// Namespaces created here, with their cookie: one deleted and made
    /// again by someone else under the same name is theirs, not ours.
    created: Vec<(String, u64)>,
}

/// The cookie of the namespace mounted at `path`: a 64-bit id the kernel
/// never hands out twice (`SO_NETNS_COOKIE`, Linux 5.14). The nsfs inode
/// number would not do: the kernel recycles those, and a namespace deleted
/// and made again by someone else can get the old number (seen in CI).
fn ns_cookie(path: &Path) -> Option<u64> {
    // From asm-generic/socket.h; not in the libc crate for every target.
    const SO_NETNS_COOKIE: libc::c_int = 71;
    let ns = conlink_net::Netns::open(path).ok()?;
    ns.run(|| {
        // SAFETY: plain socket(2)/getsockopt(2)/close(2) on a fresh fd with
        // a correctly sized out-buffer.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return None;
            }
            let mut cookie: u64 = 0;
            let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
            let r = libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                SO_NETNS_COOKIE,
                (&mut cookie as *mut u64).cast(),
                &mut len,
            );
            libc::close(fd);
            (r == 0).then_some(cookie)
        }
    })
    .ok()
    .flatten()
}

impl NetnsRuntime {
    /// Ensures a namespace for every container name and for replicas
    /// `S_1..S_N` of every `(service, N)`. On error, removes what it created.
    pub fn prepare(containers: &[String], services: &[(String, u32)]) -> Result<Self, NetnsError> {
        let mut rt = NetnsRuntime {
            instances: Vec::new(),
            created: Vec::new(),
        };
        let wanted =
            containers
                .iter()
                .map(|c| (c.clone(), None, 1))
                .chain(services.iter().flat_map(|(s, n)| {
                    (1..=*n).map(move |i| (format!("{s}_{i}"), Some(s.clone()), i))
                }));
        for (name, service, index) in wanted {
            let path = netns_path(&name);
            if !path.exists() {
                if let Err(e) = create_named(&name) {
                    rt.shutdown();
                    return Err(e);
                }
                rt.created
                    .push((name.clone(), ns_cookie(&path).unwrap_or(0)));
            }
            rt.instances.push(Container {
                id: pseudo_id(&name),
                name,
                service,
                project: None,
                index,
                netns: path,
            });
        }
        Ok(rt)
    }

    /// The instances, as start events would report them.
    pub fn instances(&self) -> &[Container] {
        &self.instances
    }

    /// A watcher reporting these instances' namespaces dying and coming back.
    pub fn watcher(&self) -> NetnsWatcher {
        NetnsWatcher {
            instances: self.instances.clone(),
        }
    }

    /// Names of the namespaces this runtime created.
    pub fn created(&self) -> impl Iterator<Item = &str> {
        self.created.iter().map(|(n, _)| n.as_str())
    }

    /// Sends a start event for every instance.
    pub async fn announce(&self, tx: &tokio::sync::mpsc::Sender<Event>) {
        for c in &self.instances {
            if tx.send(Event::Start(c.clone())).await.is_err() {
                return;
            }
        }
    }

    /// Takes namespace `name` (one of the instances) as made by this
    /// runtime: an earlier run of conlink created it (its marker says so)
    /// and was killed before removing it, so this run removes it at exit.
    pub fn claim(&mut self, name: &str) {
        if self.created.iter().any(|(n, _)| n == name) {
            return;
        }
        if let Some(cookie) = ns_cookie(&netns_path(name)) {
            self.created.push((name.to_string(), cookie));
        }
    }

    /// Removes the namespaces this runtime created (collecting errors).
    pub fn shutdown(&mut self) -> Vec<NetnsError> {
        let mut errs = Vec::new();
        for (name, cookie) in self.created.drain(..) {
            match ns_cookie(&netns_path(&name)) {
                Some(now) if now == cookie => {}
                _ => continue, // gone, or someone else's namespace now
            }
            if let Err(e) = delete_named(&name) {
                errs.push(e);
            }
        }
        errs
    }
}

/// Watches the namespaces an instance list plays (see [`NetnsRuntime::watcher`]).
pub struct NetnsWatcher {
    instances: Vec<Container>,
}

/// Whether `path` is a mounted network namespace (not just the file that
/// `ip netns add` creates before it mounts the namespace on it).
fn is_netns(path: &Path) -> bool {
    // NSFS_MAGIC from linux/magic.h.
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type().0 == NSFS_MAGIC)
        .unwrap_or(false)
}

/// A running [`NetnsWatcher`]; [`WatchHandle::stop`] ends it.
pub struct WatchHandle {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Write end of a pipe the watcher polls: closing it wakes the watcher
    /// at once, so it can sleep without a timeout (no idle wake-ups).
    wake: Option<std::os::fd::OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WatchHandle {
    /// Stops the watcher and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        drop(self.wake.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl NetnsWatcher {
    /// Reports a namespace that disappears (`ip netns del`) as a dying
    /// container and one that comes back (`ip netns add`) as a new start, as
    /// docker does for `docker stop`/`start`.
    ///
    /// Driven by inotify on /run/netns: its delete and create events are
    /// queued, so a namespace deleted and made again in quick succession is
    /// still seen as a restart (polling the names missed that, and the
    /// kernel may even give the new namespace the old inode number). A
    /// create is reported once the namespace is mounted on the new file
    /// (`ip netns add` creates the file first, then mounts). Runs on its own
    /// thread until stopped.
    pub fn spawn(self, tx: tokio::sync::mpsc::Sender<Event>) -> WatchHandle {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let (wake_rx, wake) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok((r, w)) => (Some(r), Some(w)),
            Err(e) => {
                warn!("no wake-up pipe for the netns watcher ({e}); it polls every 100 ms");
                (None, None)
            }
        };
        let thread = std::thread::Builder::new()
            .name("netns-watch".into())
            .spawn(move || {
                if let Err(e) = self.watch(&tx, &flag, wake_rx.as_ref()) {
                    warn!("watching {NETNS_DIR} failed ({e}); namespace deaths go unnoticed");
                }
            })
            .ok();
        WatchHandle { stop, wake, thread }
    }

    fn watch(
        &self,
        tx: &tokio::sync::mpsc::Sender<Event>,
        stop: &std::sync::atomic::AtomicBool,
        wake: Option<&std::os::fd::OwnedFd>,
    ) -> nix::Result<()> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        use std::os::fd::AsFd;
        use std::time::{Duration, Instant};

        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        ino.add_watch(
            NETNS_DIR,
            AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_DELETE
                | AddWatchFlags::IN_MOVED_FROM
                | AddWatchFlags::IN_MOVED_TO,
        )?;
        let mut alive: Vec<bool> = self.instances.iter().map(|c| is_netns(&c.netns)).collect();
        // Name -> instance: a scan per event made N events cost O(N²).
        let by_name: std::collections::HashMap<&str, usize> = self
            .instances
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_str(), i))
            .collect();
        // Instances whose file reappeared, waiting for the mount.
        let mut pending: Vec<(usize, Instant)> = Vec::new();
        let send = |ev: Event| tx.blocking_send(ev).is_ok();
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let mut fds = vec![PollFd::new(ino.as_fd(), PollFlags::POLLIN)];
            if let Some(w) = wake {
                fds.push(PollFd::new(w.as_fd(), PollFlags::POLLIN));
            }
            // Idle, it sleeps until an inotify event or the stop (the wake
            // pipe closing): zero CPU. A short timeout only while a new
            // namespace file waits for its mount.
            let wait = match (pending.is_empty(), wake.is_some()) {
                (false, _) => PollTimeout::from(10u16),
                (true, true) => PollTimeout::NONE,
                (true, false) => PollTimeout::from(100u16),
            };
            match poll(&mut fds, wait) {
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => return Err(e),
            }
            let events = match ino.read_events() {
                Ok(v) => v,
                Err(nix::Error::EAGAIN) => Vec::new(),
                Err(e) => return Err(e),
            };
            for ev in events {
                let Some(name) = ev.name.as_ref().and_then(|n| n.to_str()) else {
                    continue;
                };
                let Some(&i) = by_name.get(name) else {
                    continue;
                };
                let gone = ev
                    .mask
                    .intersects(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM);
                if gone {
                    pending.retain(|(p, _)| *p != i);
                    if alive[i] {
                        alive[i] = false;
                        if !send(Event::Die(self.instances[i].id.clone())) {
                            return Ok(());
                        }
                    }
                } else {
                    pending.retain(|(p, _)| *p != i);
                    pending.push((i, Instant::now()));
                }
            }
            let mut still = Vec::new();
            for (i, since) in pending.drain(..) {
                if is_netns(&self.instances[i].netns) {
                    if !alive[i] {
                        alive[i] = true;
                        if !send(Event::Start(self.instances[i].clone())) {
                            return Ok(());
                        }
                    }
                } else if since.elapsed() < Duration::from_secs(5) {
                    still.push((i, since));
                }
            }
            pending = still;
        }
        Ok(())
    }
}

impl Drop for NetnsRuntime {
    /// Removing what it created also on panics and early returns keeps
    /// "nothing left behind" true on every path.
    fn drop(&mut self) {
        for e in self.shutdown() {
            warn!("{e}");
        }
    }
}

/// Runs `argv` inside `c`'s namespace, logging each output line prefixed
/// with the instance name, and returns the exit code (-1 for a signal).
pub async fn exec_in(c: &Container, argv: &[String]) -> Result<i64, NetnsError> {
    let err = |source| NetnsError::Exec {
        name: c.name.clone(),
        argv: argv.to_vec(),
        source,
    };
    let Some((prog, args)) = argv.split_first() else {
        return Err(err(std::io::Error::other("empty command")));
    };
    let ns = fs::File::open(&c.netns).map_err(err)?;
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: the closure runs in the forked child before exec and only
    // calls setns(2), which is async-signal-safe; `ns` outlives the spawn.
    unsafe {
        cmd.pre_exec(move || setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io));
    }
    let mut child = cmd.spawn().map_err(err)?;
    let mut readers = tokio::task::JoinSet::new();
    if let Some(out) = child.stdout.take() {
        let name = c.name.clone();
        readers.spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                info!("{name}: {l}");
            }
        });
    }
    if let Some(errp) = child.stderr.take() {
        let name = c.name.clone();
        readers.spawn(async move {
            let mut lines = BufReader::new(errp).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                warn!("{name}: {l}");
            }
        });
    }
    let status = child.wait().await.map_err(err)?;
    while readers.join_next().await.is_some() {}
    Ok(status.code().map(i64::from).unwrap_or(-1))
}

impl crate::Runtime for NetnsRuntime {
    async fn watch(&self, tx: tokio::sync::mpsc::Sender<Event>) {
        // Watch first, then announce: a namespace deleted in between is
        // then reported as a death after its start, not missed.
        let handle = self.watcher().spawn(tx.clone());
        self.announce(&tx).await;
        let _ = tx.send(Event::Synced).await;
        tx.closed().await;
        tokio::task::spawn_blocking(move || handle.stop())
            .await
            .ok();
    }

    async fn exec(&self, c: &Container, argv: Vec<String>) -> Result<i64, crate::RuntimeError> {
        Ok(exec_in(c, &argv).await?)
    }

    async fn known(&self) -> Result<Vec<crate::Known>, crate::RuntimeError> {
        Ok(self
            .instances
            .iter()
            .filter(|c| is_netns(&c.netns))
            .map(|c| crate::Known {
                name: c.name.clone(),
                service: c.service.clone(),
                project: None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_ids_are_stable_hex() {
        assert_eq!(pseudo_id("node_1"), pseudo_id("node_1"));
        assert_ne!(pseudo_id("node_1"), pseudo_id("node_2"));
        assert_eq!(pseudo_id("x").len(), 16);
        assert!(pseudo_id("x").bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
