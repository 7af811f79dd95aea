//! Watching the config files: inotify on each file's parent directory, so
//! that editors that write a new file and rename it over the old one are
//! seen (a watch on the file itself would follow the old inode).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::sync::mpsc;
use tracing::warn;

/// How long changes settle before a reload (an editor's save is several
/// events: write, rename, attribute change).
const SETTLE: Duration = Duration::from_millis(100);

/// The settle after an event that ends a save (the file closed after
/// writing, or a new file renamed over it): the content is complete, so
/// only what arrives at the same moment is folded in. Keeps the reload
/// latency (file written -> change applied) low: bench/reload.
const SETTLE_DONE: Duration = Duration::from_millis(5);

/// A running watcher; stops when dropped.
pub struct ConfigWatch {
    stop: Arc<AtomicBool>,
    /// Write end of a pipe the watcher polls beside inotify: dropping it
    /// wakes the watcher at once, so it sleeps with no timeout while
    /// nothing changes (zero idle wake-ups: issue 13).
    _wake: Option<OwnedFd>,
}

impl Drop for ConfigWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl ConfigWatch {
    /// Watches `files`; each settled change sends one reload request.
    pub fn spawn(files: &[PathBuf], tx: mpsc::Sender<&'static str>) -> Option<ConfigWatch> {
        let mut dirs: BTreeMap<PathBuf, BTreeSet<OsString>> = BTreeMap::new();
        for f in files {
            let abs = std::path::absolute(f).unwrap_or_else(|_| f.clone());
            let (Some(dir), Some(name)) = (abs.parent(), abs.file_name()) else {
                continue;
            };
            dirs.entry(dir.to_path_buf())
                .or_default()
                .insert(name.to_os_string());
        }
        if dirs.is_empty() {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (wake_rx, wake) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok((r, w)) => (Some(r), Some(w)),
            Err(e) => {
                warn!("no wake-up pipe for the config watcher ({e}); it polls every 50 ms");
                (None, None)
            }
        };
        std::thread::Builder::new()
            .name("config-watch".into())
            .spawn(move || {
                if let Err(e) = watch(&dirs, &tx, &flag, wake_rx.as_ref()) {
                    warn!("watching the config files failed ({e}); reload with SIGHUP");
                }
            })
            .ok()?;
        Some(ConfigWatch { stop, _wake: wake })
    }
}

fn watch(
    dirs: &BTreeMap<PathBuf, BTreeSet<OsString>>,
    tx: &mpsc::Sender<&'static str>,
    stop: &AtomicBool,
    wake: Option<&OwnedFd>,
) -> nix::Result<()> {
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
    let mut wds = BTreeMap::new();
    for (d, names) in dirs {
        let wd = ino.add_watch(
            d.as_path(),
            AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_DELETE
                | AddWatchFlags::IN_MODIFY,
        )?;
        wds.insert(wd, names);
    }
    // When the pending reload fires.
    let mut dirty: Option<std::time::Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        let mut fds = vec![PollFd::new(ino.as_fd(), PollFlags::POLLIN)];
        if let Some(w) = wake {
            fds.push(PollFd::new(w.as_fd(), PollFlags::POLLIN));
        }
        // Idle, it sleeps until a file event or the stop (the wake pipe
        // closing). While a reload is pending, until its deadline.
        let wait = match (dirty, wake.is_some()) {
            (Some(t), _) => {
                let left = t.saturating_duration_since(std::time::Instant::now());
                // Rounded up: a poll that returns before the deadline
                // would spin until it passes.
                PollTimeout::from(left.as_micros().div_ceil(1000).min(u16::MAX as u128) as u16)
            }
            (None, true) => PollTimeout::NONE,
            (None, false) => PollTimeout::from(50u16),
        };
        match poll(&mut fds, wait) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e),
        }
        match ino.read_events() {
            Ok(evs) => {
                for ev in evs {
                    let ours = ev
                        .name
                        .as_ref()
                        .is_some_and(|n| wds.get(&ev.wd).is_some_and(|names| names.contains(n)));
                    if ours {
                        let done = ev
                            .mask
                            .intersects(AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_MOVED_TO);
                        let at =
                            std::time::Instant::now() + if done { SETTLE_DONE } else { SETTLE };
                        // A later event moves the deadline either way: a
                        // write after a close starts a new save.
                        dirty = Some(at);
                    }
                }
            }
            Err(nix::Error::EAGAIN) => {}
            Err(e) => return Err(e),
        }
        if let Some(t) = dirty {
            if std::time::Instant::now() >= t {
                dirty = None;
                if tx.blocking_send("file changed").is_err() {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// Whether `p` is one of `files` (tests).
#[allow(dead_code)]
pub fn is_watched(files: &[PathBuf], p: &Path) -> bool {
    files.iter().any(|f| f == p)
}
