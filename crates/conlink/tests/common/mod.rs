//! Shared helpers for privileged tests that run the real conlink binary
//! with the netns runtime. Every test uses its own short unique prefix for
//! namespace and service names, bounds every wait, and removes only what it
//! created.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Fails loudly when not root.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (network namespaces, veths): run scripts/test as root"
    );
}

/// A short unique prefix (names must fit 15-byte interface names).
pub fn prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!(
        "t{}{}",
        std::process::id() % 10000,
        (b'a' + n as u8) as char
    )
}

/// `ip -j ARGS` inside namespace `ns`, parsed.
pub fn ip_json(ns: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new("ip")
        .args(["-n", ns, "-j"])
        .args(args)
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip -n {ns} -j {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ip -j output is JSON")
}

/// Interface names in namespace `ns` (`ip -j link show`), in kernel order.
pub fn link_names(ns: &str) -> Vec<String> {
    ip_json(ns, &["link", "show"])
        .as_array()
        .expect("ip -j link show gives a list")
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(String::from))
        .collect()
}

/// Pings `addr` from namespace `ns` (3 tries, 1 s each).
pub fn ping(ns: &str, addr: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "1", addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
        || Command::new("ip")
            .args(["netns", "exec", ns, "ping", "-c", "2", "-W", "1", addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
}

/// Names of the named namespaces starting with `prefix` (tests run in
/// parallel: each looks only at its own).
pub fn netns_list(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = netns_all()
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}

fn netns_all() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A running conlink, stopped (SIGTERM, bounded wait, then SIGKILL) on drop.
pub struct Conlink {
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempdir::Dir,
    /// conlink's own namespace name.
    pub own_ns: String,
    /// Started under a wrapper (strace): signals go to its children.
    wrapped: bool,
}

/// SIGTERM to `pid`, or when `wrapped` to its children (conlink under
/// strace: strace would detach on SIGTERM and leave conlink running).
fn terminate(pid: u32, wrapped: bool) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let targets: Vec<i32> = if wrapped {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    } else {
        vec![pid as i32]
    };
    for t in targets {
        let _ = kill(Pid::from_raw(t), Signal::SIGTERM);
    }
}

pub mod hosts;

pub mod tempdir {
    /// A temporary directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("conlink-test-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("create temp dir");
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Conlink {
    /// Starts conlink on `config` (a network file's YAML) with extra args.
    pub fn start(tag: &str, config: &str, extra: &[&str]) -> Conlink {
        Self::start_with(None, tag, config, extra)
    }

    /// Starts conlink inside namespace `host` (it plays the host there).
    pub fn start_in(host: &str, tag: &str, config: &str, extra: &[&str]) -> Conlink {
        Self::start_with(Some(host), tag, config, extra)
    }

    /// Starts conlink inside namespace `host` under a wrapper command line
    /// (e.g. `strace -f -o FILE`), split on spaces.
    pub fn start_wrapped(
        host: &str,
        wrapper: &str,
        tag: &str,
        config: &str,
        extra: &[&str],
    ) -> Conlink {
        Self::spawn(Some(host), Some(wrapper), tag, config, extra)
    }

    fn start_with(host: Option<&str>, tag: &str, config: &str, extra: &[&str]) -> Conlink {
        Self::spawn(host, None, tag, config, extra)
    }

    fn spawn(
        host: Option<&str>,
        wrapper: Option<&str>,
        tag: &str,
        config: &str,
        extra: &[&str],
    ) -> Conlink {
        let dir = tempdir::Dir::new(tag);
        let file: PathBuf = dir.0.join("network.yaml");
        std::fs::write(&file, config).expect("write config");
        let own_ns = format!("{tag}own");
        let mut cmd = match wrapper {
            Some(w) => {
                let mut words = w.split(' ');
                let mut c = Command::new(words.next().expect("wrapper program"));
                c.args(words).arg(env!("CARGO_BIN_EXE_conlink"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_conlink")),
        };
        if let Some(h) = host {
            // Only the network namespace changes: `ip netns exec` would also
            // give conlink a slave mount namespace, hiding the namespaces it
            // creates under /run/netns from everyone else.
            let ns = std::fs::File::open(format!("/run/netns/{h}")).expect("open host netns");
            // SAFETY: runs in the forked child before exec; setns(2) is
            // async-signal-safe and `ns` is moved into the closure.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(std::io::Error::from)
                });
            }
        }
        let mut child = cmd
            .args([
                "--runtime",
                "netns",
                "--netns-name",
                &own_ns,
                "-v",
                "--network-file",
            ])
            .arg(&file)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start conlink");
        let log = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().expect("stderr piped");
        let l2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("conlink: {line}");
                l2.lock().unwrap().push(line);
            }
        });
        Conlink {
            child: Some(child),
            log,
            _dir: dir,
            own_ns,
            wrapped: wrapper.is_some(),
        }
    }

    /// Log lines so far.
    /// The network file conlink was started with (tests edit it).
    pub fn config_path(&self) -> PathBuf {
        self._dir.0.join("network.yaml")
    }

    /// Replaces the config the way editors do: a new file renamed over it.
    pub fn edit_config(&self, text: &str) {
        let tmp = self._dir.0.join(".network.yaml.swp");
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, self.config_path()).expect("rename config");
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Log lines so far that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| l.contains(needle))
            .collect()
    }

    /// Waits (bounded) until `n` log lines contain `needle`.
    pub fn wait_for(&mut self, needle: &str, n: usize, timeout: Duration) {
        let t0 = Instant::now();
        loop {
            let count = self.log().iter().filter(|l| l.contains(needle)).count();
            if count >= n {
                return;
            }
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("conlink exited ({st}) before logging {needle:?}");
            }
            assert!(
                t0.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {needle:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `All links connected`.
    pub fn wait_connected(&mut self) {
        self.wait_for("All links connected", 1, Duration::from_secs(30));
    }

    /// The process id, while it runs (for /proc figures).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether it exited successfully, once it has exited (None while it
    /// runs; reaped then).
    pub fn try_exit(&mut self) -> Option<bool> {
        let st = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(st.success())
    }

    /// SIGKILL (no cleanup at all), then reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, bounded wait; returns the exit status success.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        terminate(child.id(), self.wrapped);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(st)) = child.try_wait() {
                return st.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("conlink did not exit within 20 s of SIGTERM");
    }
}

impl Drop for Conlink {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(child.id(), self.wrapped);
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The conlink image of the docker end-to-end tests (CONLINK_IMAGE).
pub fn conlink_image() -> String {
    std::env::var("CONLINK_IMAGE").unwrap_or_else(|_| "conlink:latest".into())
}

/// The busybox test image (CONLINK_TEST_IMAGE).
pub fn test_image() -> String {
    std::env::var("CONLINK_TEST_IMAGE").unwrap_or_else(|_| "conlink-test-busybox:latest".into())
}

/// Fails loudly unless root, docker, compose v2 and both images are there.
pub fn require_docker() {
    require_root();
    let ok = |args: &[&str]| {
        Command::new("docker")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(
        ok(&["version"]),
        "no docker daemon answers: run scripts/install-deps (as root)"
    );
    assert!(
        ok(&["compose", "version"]),
        "docker compose v2 missing: run scripts/install-deps (as root)"
    );
    for img in [conlink_image(), test_image()] {
        assert!(
            ok(&["image", "inspect", &img]),
            "image {img} missing: run scripts/build-images (as root)"
        );
    }
}
