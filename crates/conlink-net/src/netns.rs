//! Network namespaces: open, create/delete named ones (`ip netns add/del`),
//! create anonymous ones (held by a descriptor only),
//! and run a closure inside one.
//!
//! A namespace is a per-thread property, and a pooled or async-runtime
//! thread that changed namespace would silently carry the change into
//! unrelated work. So only code here calls setns(2)/unshare(2):
//! [`Netns::run`] enters the namespace on the calling thread, runs the
//! closure, and enters the thread's own namespace again before it returns
//! (even when the closure panics; if that fails, the process aborts rather
//! than go on in the wrong place). unshare(2) happens only on short-lived
//! threads made for it. Entering on the caller's thread costs two setns
//! calls; a thread per call, or a shared thread to hand the call to, cost
//! ~60-170 µs on this machine's VM (thread start or wake-up), twice per
//! container at start-up (docs/performance.md, "Where the time goes").

use std::cell::{Cell, OnceCell};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::error::{Error, Result};

/// Where named namespaces live (as with iproute2).
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// An open network namespace (a file descriptor on its nsfs inode).
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    path: String,
}

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Invalid(format!("path {s:?} contains a NUL byte")))
}

fn last_err(op: &'static str, path: &str) -> Error {
    Error::Netns {
        op,
        path: path.to_string(),
        source: std::io::Error::last_os_error(),
    }
}

/// Refuses names `ip netns` would refuse (and ones that escape the dir).
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Error::Invalid(format!(
            "bad network namespace name {name:?}"
        )));
    }
    Ok(())
}

/// Makes `/run/netns` exist and be a shared mount point, as iproute2 does
/// before its first `ip netns add` (bind-mounting it onto itself if it is
/// not a mount point yet). Done once per process.
fn prepare_run_dir() -> Result<()> {
    static DONE: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    if *done {
        return Ok(());
    }
    let dir = cstr(NETNS_RUN_DIR)?;
    // SAFETY: valid C string.
    if unsafe { libc::mkdir(dir.as_ptr(), 0o755) } < 0
        && std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST)
    {
        return Err(last_err("create directory", NETNS_RUN_DIR));
    }
    let none = cstr("none")?;
    let empty = cstr("")?;
    let mut made_mount = false;
    loop {
        // SAFETY: valid C strings; null data is allowed for propagation changes.
        let r = unsafe {
            libc::mount(
                empty.as_ptr(),
                dir.as_ptr(),
                none.as_ptr(),
                libc::MS_SHARED | libc::MS_REC,
                std::ptr::null(),
            )
        };
        if r == 0 {
            break;
        }
        // EINVAL: not a mount point yet; bind it onto itself once, like iproute2.
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) || made_mount {
            return Err(last_err("make shared mount", NETNS_RUN_DIR));
        }
        // SAFETY: valid C strings.
        let r = unsafe {
            libc::mount(
                dir.as_ptr(),
                dir.as_ptr(),
                none.as_ptr(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            )
        };
        if r < 0 {
            return Err(last_err("bind mount", NETNS_RUN_DIR));
        }
        made_mount = true;
    }
    *done = true;
    Ok(())
}

impl Netns {
    /// Opens the namespace at `path` (`/proc/PID/ns/net`, `/run/netns/NAME`).
    pub fn open(path: impl AsRef<Path>) -> Result<Netns> {
        let path = path.as_ref().to_string_lossy().into_owned();
        let c = cstr(&path)?;
        // SAFETY: valid C string; fd owned right after.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(last_err("open netns", &path));
        }
        Ok(Netns {
            // SAFETY: fresh descriptor, owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path,
        })
    }

    /// The calling thread's namespace.
    pub fn current() -> Result<Netns> {
        Self::open("/proc/thread-self/ns/net")
    }

    /// The namespace of process `pid`.
    pub fn of_pid(pid: i32) -> Result<Netns> {
        Self::open(format!("/proc/{pid}/ns/net"))
    }

    /// The named namespace `/run/netns/NAME` (`ip netns exec NAME` finds it so).
    pub fn named(name: &str) -> Result<Netns> {
        check_name(name)?;
        Self::open(format!("{NETNS_RUN_DIR}/{name}"))
    }

    /// Whether `/run/netns/NAME` exists.
    pub fn exists_named(name: &str) -> bool {
        check_name(name).is_ok() && Path::new(NETNS_RUN_DIR).join(name).exists()
    }

    /// Creates the named namespace NAME, as `ip netns add NAME` does: makes
    /// `/run/netns` a shared bind mount (so the namespace mounts propagate to
    /// other mount namespaces), creates the file, and bind-mounts a fresh
    /// namespace onto it. Fails with EEXIST if the name is taken.
    pub fn create_named(name: &str) -> Result<Netns> {
        Self::create_named_with(name, || ()).map(|(ns, ())| ns)
    }

    /// Like [`Netns::create_named`], and also runs `f` inside the new
    /// namespace on the thread that created it (saves entering it again:
    /// [`crate::Handle::create_netns`] opens its sockets there).
    pub fn create_named_with<T: Send>(
        name: &str,
        f: impl FnOnce() -> T + Send,
    ) -> Result<(Netns, T)> {
        check_name(name)?;
        prepare_run_dir()?;
        let path = format!("{NETNS_RUN_DIR}/{name}");
        let cpath = cstr(&path)?;
        let none = cstr("none")?;
        // SAFETY: valid C string; the fd is closed right away.
        let fd = unsafe {
            libc::open(
                cpath.as_ptr(),
                libc::O_RDONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            return Err(last_err("create netns", &path));
        }
        // SAFETY: fd was just opened by us.
        unsafe { libc::close(fd) };
        let made = std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("netns-create".into())
                .spawn_scoped(s, || -> Result<(Netns, T)> {
                    // SAFETY: unshare affects only this short-lived thread.
                    if unsafe { libc::unshare(libc::CLONE_NEWNET) } < 0 {
                        return Err(last_err("unshare netns", &path));
                    }
                    let src = cstr("/proc/thread-self/ns/net")?;
                    // SAFETY: valid C strings.
                    let r = unsafe {
                        libc::mount(
                            src.as_ptr(),
                            cpath.as_ptr(),
                            none.as_ptr(),
                            libc::MS_BIND,
                            std::ptr::null(),
                        )
                    };
                    if r < 0 {
                        return Err(last_err("bind netns", &path));
                    }
                    let ns = Self::open(&path)?;
                    Ok((ns, f()))
                })
                .map_err(|e| Error::Io {
                    op: "spawn netns thread".into(),
                    source: e,
                })?
                .join()
                .unwrap_or_else(|_| Err(Error::Invalid("netns thread panicked".into())))
        });
        if made.is_err() {
            // SAFETY: valid C string; undo the mount (if any) and the file.
            unsafe {
                libc::umount2(cpath.as_ptr(), libc::MNT_DETACH);
                libc::unlink(cpath.as_ptr());
            }
        }
        made
    }

    /// Creates a namespace with no name: a fresh one made by unshare(2) on
    /// a short-lived thread, held by the returned descriptor only (no file
    /// under `/run/netns`, no mount). It lives while some descriptor or
    /// process holds it; when the last one goes, the kernel destroys it with
    /// every interface in it (a veth's peer elsewhere goes too). `label`
    /// names it in messages.
    ///
    /// What conlink uses in a container on the host's network (a swarm
    /// service): a container may not be allowed to mount (AppArmor's
    /// docker-default profile denies it), and needs no mount for this. Needs
    /// CAP_SYS_ADMIN (docker's default seccomp profile allows unshare(2)
    /// only with it).
    pub fn create_anonymous(label: &str) -> Result<Netns> {
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("netns-create".into())
                .spawn_scoped(s, || -> Result<Netns> {
                    // SAFETY: unshare affects only this short-lived thread.
                    if unsafe { libc::unshare(libc::CLONE_NEWNET) } < 0 {
                        return Err(last_err("unshare netns", label));
                    }
                    let mut ns = Self::open("/proc/thread-self/ns/net")?;
                    ns.path = label.to_string();
                    Ok(ns)
                })
                .map_err(|e| Error::Io {
                    op: "spawn netns thread".into(),
                    source: e,
                })?
                .join()
                .unwrap_or_else(|_| Err(Error::Invalid("netns thread panicked".into())))
        })
    }

    /// Deletes the named namespace NAME as `ip netns del NAME` does (lazy
    /// unmount, then unlink). The namespace itself lives on while some
    /// process or fd still holds it. ENOENT if there is no such name.
    pub fn delete_named(name: &str) -> Result<()> {
        check_name(name)?;
        let path = format!("{NETNS_RUN_DIR}/{name}");
        let c = cstr(&path)?;
        // SAFETY: valid C string. EINVAL (not mounted) is fine: unlink anyway.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        // SAFETY: valid C string.
        if unsafe { libc::unlink(c.as_ptr()) } < 0 {
            return Err(last_err("delete netns", &path));
        }
        Ok(())
    }

    /// The path this namespace was opened from.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A second handle on the same namespace.
    pub fn try_clone(&self) -> Result<Netns> {
        Ok(Netns {
            fd: self.fd.try_clone().map_err(|e| Error::Netns {
                op: "dup netns fd",
                path: self.path.clone(),
                source: e,
            })?,
            path: self.path.clone(),
        })
    }

    /// Runs `f` inside this namespace and returns its result, on the
    /// calling thread, which is back in its own namespace when this returns
    /// (see the module doc). Sockets opened by `f` stay in this namespace
    /// and may be used from any thread afterwards; processes spawned by `f`
    /// start in it. `f` may call `run` again (the outer namespace is
    /// entered again after).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let back = match IN_RUN.get() {
            Some(outer) => outer,
            None => match thread_home() {
                Some(h) => h,
                // No descriptor on this thread's namespace to come back to:
                // a thread of its own.
                None => return self.run_on_new_thread(f),
            },
        };
        let fd = self.fd.as_raw_fd();
        enter(fd, &self.path)?;
        let outer = IN_RUN.replace(Some(fd));
        // Goes back also when `f` unwinds.
        struct Back(RawFd, Option<RawFd>);
        impl Drop for Back {
            fn drop(&mut self) {
                IN_RUN.set(self.1);
                if let Err(e) = enter(self.0, "the thread's own namespace") {
                    // Going on inside another namespace would put later
                    // work of this thread in the wrong place.
                    eprintln!("conlink: cannot leave a network namespace: {e}");
                    std::process::abort();
                }
            }
        }
        let _back = Back(back, outer);
        Ok(f())
    }

    /// [`Netns::run`] on a short-lived thread of its own (when the calling
    /// thread's own namespace cannot be opened to come back to).
    fn run_on_new_thread<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let fd = self.fd.as_raw_fd();
        std::thread::scope(|s| {
            let h = std::thread::Builder::new()
                .name("netns".into())
                .spawn_scoped(s, move || -> Result<T> {
                    enter(fd, &self.path)?;
                    Ok(f())
                })
                .map_err(|e| Error::Io {
                    op: "spawn netns thread".into(),
                    source: e,
                })?;
            match h.join() {
                Ok(r) => r,
                // Re-raise the closure's panic on the caller's thread.
                Err(p) => std::panic::resume_unwind(p),
            }
        })
    }

    /// The namespace inode (equal inodes: same namespace).
    pub fn inode(&self) -> Result<u64> {
        // SAFETY: zeroed stat is a valid out-buffer.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and out-buffer.
        if unsafe { libc::fstat(self.fd.as_raw_fd(), &mut st) } < 0 {
            return Err(last_err("stat netns", &self.path));
        }
        Ok(st.st_ino)
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Netns {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// setns(2) into the namespace `fd` (a live nsfs descriptor).
fn enter(fd: RawFd, path: &str) -> Result<()> {
    // SAFETY: fd is a live nsfs fd borrowed by the caller; setns changes
    // only the calling thread, which `Netns::run` brings back (or a
    // short-lived thread made for this).
    if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } < 0 {
        return Err(last_err("enter netns", path));
    }
    Ok(())
}

thread_local! {
    /// Inside [`Netns::run`] on this thread: the namespace entered.
    static IN_RUN: Cell<Option<RawFd>> = const { Cell::new(None) };
    /// This thread's own namespace, opened on its first [`Netns::run`]
    /// (threads change namespace only inside `run`, or, made for it, by
    /// unshare before anything else).
    static HOME: OnceCell<Option<OwnedFd>> = const { OnceCell::new() };
}

/// The descriptor of the calling thread's own namespace.
fn thread_home() -> Option<RawFd> {
    HOME.with(|h| {
        h.get_or_init(|| Netns::current().ok().map(|n| n.fd))
            .as_ref()
            .map(|fd| fd.as_raw_fd())
    })
}
