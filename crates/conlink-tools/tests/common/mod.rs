//! Helpers shared by the process-level tests.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique suffix for names created by one test (pid + counter).
pub fn unique() -> String {
    format!(
        "{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A scratch directory removed (by its exact path) on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("conlink-tools-{tag}-{}", unique()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Path of one of this crate's binaries.
pub fn bin(name: &str) -> PathBuf {
    match name {
        "wait" => env!("CARGO_BIN_EXE_wait").into(),
        "copy" => env!("CARGO_BIN_EXE_copy").into(),
        "echo" => env!("CARGO_BIN_EXE_echo").into(),
        "mdc" => env!("CARGO_BIN_EXE_mdc").into(),
        "resolve-deps" => env!("CARGO_BIN_EXE_resolve-deps").into(),
        "conlink-start" => env!("CARGO_BIN_EXE_conlink-start").into(),
        other => panic!("no binary {other}"),
    }
}

/// Output of a finished process.
#[derive(Debug)]
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

/// Waits for `child` at most `limit`; kills it (by its own handle) and
/// panics on timeout.
pub fn finish(mut child: Child, limit: Duration) -> Out {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stdout = String::new();
            let mut stderr = String::new();
            if let Some(mut s) = child.stdout.take() {
                s.read_to_string(&mut stdout).unwrap();
            }
            if let Some(mut s) = child.stderr.take() {
                s.read_to_string(&mut stderr).unwrap();
            }
            return Out {
                status,
                stdout,
                stderr,
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `cmd` with piped stdout/stderr.
pub fn spawn(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs a binary of this crate with `args`, bounded by 20 s.
pub fn run<I, S>(name: &str, args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    finish(
        spawn(Command::new(bin(name)).args(args)),
        Duration::from_secs(20),
    )
}

/// Panics unless running as root (for tests that create namespaces).
pub fn require_root() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test needs root (it creates network namespaces); run the suite as root");
    }
}

/// A child whose stderr is collected by a thread while it runs, so that a
/// test can wait for a progress line before changing the world.
pub struct Watched {
    child: Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Watched {
    pub fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stderr.take().unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Watched {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Blocks until stderr contains `text` (panics after `limit`, or if the
    /// process ends first).
    pub fn wait_for_stderr(&mut self, text: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.stderr.lock().unwrap().contains(text) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                if self.stderr.lock().unwrap().contains(text) {
                    return;
                }
                panic!(
                    "exited ({status}) before printing {text:?}: {}",
                    self.stderr.lock().unwrap()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} within {limit:?}: {}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the end (bounded, killing it on timeout) and collects output.
    pub fn finish(mut self, limit: Duration) -> Out {
        let mut out = finish_child(&mut self.child, limit);
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        out.stderr = self.stderr.lock().unwrap().clone();
        out
    }
}

fn finish_child(child: &mut Child, limit: Duration) -> Out {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stdout = String::new();
            if let Some(mut s) = child.stdout.take() {
                s.read_to_string(&mut stdout).unwrap();
            }
            return Out {
                status,
                stdout,
                stderr: String::new(),
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
