//! Several "hosts" on one machine for multi-host tests: each host is a
//! network namespace with its own docker engine, all joined by an underlay
//! (a bridge in a test namespace, 192.168.211.0/24), optionally formed into
//! a Docker Swarm; one conlink per host runs as a process in the host's
//! namespace against that host's engine.
//!
//! What works here (docker 20.10, found out for these tests):
//! - `nsenter --net=/run/netns/H dockerd --data-root D --exec-root E
//!   --pidfile P -H unix://S --bridge none --iptables=false` (not `ip netns
//!   exec`: it remounts /sys and hides the cgroup mounts dockerd needs).
//! - Swarm tasks always get a docker network: a stack puts services on an
//!   overlay (`eth0`) plus `docker_gwbridge` (`eth1`); swarm's predefined
//!   networks are `host` and `bridge`, there is no `none`. conlink links in
//!   swarm tasks therefore use other names (`lan0`).
//! - `cap_add` works in stacks (20.10); a task's namespace is reachable as
//!   its SandboxKey (`E/netns/ID`).
//!
//! Everything is named with a unique suffix and removed by exact name or
//! PID on drop: engines (their tasks first), namespaces, mounts under the
//! test's own directory. The shared engine at /var/run/docker.sock is only
//! used for `docker save` of the test image.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::tempdir;
pub use super::test_image;

/// Runs `cmd`, panicking when it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

/// Output as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `ip ARGS`, which must succeed.
fn ip(args: &[&str]) {
    let out = run(Command::new("ip").args(args));
    assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
}

/// One host: namespace, engine, address.
pub struct Host {
    /// Network namespace name.
    pub ns: String,
    /// Underlay address.
    pub addr: String,
    /// Engine socket.
    pub sock: PathBuf,
    dockerd: Option<Child>,
    /// The exec-root (task sandboxes live under it).
    pub exec_root: PathBuf,
    /// The data-root (images, containers).
    data_root: PathBuf,
    /// dockerd's pid file.
    pidfile: PathBuf,
    /// dockerd's log (appended to by every start).
    log: PathBuf,
    /// Whether the engine was stopped by the test ([`Host::stop_engine`]).
    stopped: bool,
}

impl Host {
    /// Starts this host's dockerd in its namespace (roots, socket and pid
    /// file as at the first start, log appended); `live_restore` adds
    /// `--live-restore` (containers outlive the engine's stop).
    fn spawn_dockerd(&mut self, live_restore: bool) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("dockerd log file");
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.ns))
            .arg("dockerd")
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("--pidfile")
            .arg(&self.pidfile)
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args(["--bridge", "none", "--iptables=false", "--ip6tables=false"]);
        if live_restore {
            cmd.arg("--live-restore");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start dockerd (apt-get install docker.io)");
        self.dockerd = Some(child);
        self.stopped = false;
    }

    /// Waits (bounded, 60 s) until the engine answers.
    pub fn wait_engine(&self) {
        let t0 = Instant::now();
        while !self.docker(&["version"]).status.success() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "dockerd of {} did not answer within 60 s (log: {})",
                self.ns,
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The engine's PID (nsenter execs dockerd in place: the child's PID).
    pub fn engine_pid(&self) -> Option<u32> {
        self.dockerd.as_ref().map(Child::id)
    }

    /// Stops this host's dockerd: SIGTERM by PID, then waits (bounded,
    /// 60 s: it stops its containers first unless live-restore) until it
    /// has exited.
    pub fn stop_engine(&mut self) {
        let Some(mut c) = self.dockerd.take() else {
            return;
        };
        self.stopped = true;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let t0 = Instant::now();
        loop {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            if t0.elapsed() > Duration::from_secs(60) {
                let _ = c.kill();
                let _ = c.wait();
                panic!("dockerd of {} did not exit within 60 s of SIGTERM", self.ns);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts this host's dockerd again after [`Host::stop_engine`], with
    /// the same roots, and waits until it answers.
    pub fn start_engine(&mut self, live_restore: bool) {
        assert!(self.dockerd.is_none(), "start of a running engine");
        self.spawn_dockerd(live_restore);
        self.wait_engine();
    }

    /// `docker -H unix://SOCK ARGS` (bounded by `timeout 120`).
    pub fn docker(&self, args: &[&str]) -> Output {
        run(Command::new("timeout")
            .arg("120")
            .arg("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args))
    }

    /// Like [`Host::docker`], failing the test on a non-zero exit; stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker on {} {args:?}: {}",
            self.ns,
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Running containers: (id, name).
    pub fn containers(&self) -> Vec<(String, String)> {
        self.docker_ok(&["ps", "--format", "{{.ID}} {{.Names}}"])
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }
}

/// The hosts of one test.
pub struct Hosts {
    /// Unique suffix of every name.
    pub suf: String,
    /// Underlay namespace.
    pub ul: String,
    /// The hosts.
    pub hosts: Vec<Host>,
    dir: tempdir::Dir,
}

impl Hosts {
    /// `n` hosts with running engines and the test image loaded.
    pub fn new(tag: &str, n: usize) -> Hosts {
        Self::make(tag, n, false)
    }

    /// Like [`Hosts::new`], with the test's directory (the engines'
    /// exec-roots under it) a shared mount, as `/` is on a systemd host: a
    /// container may then bind-mount an exec-root's `netns` directory with
    /// `propagation: rslave` and see sandboxes made later. On this
    /// machine `/` is private, and docker refuses such a bind of a private
    /// mount (`… is not a shared or slave mount`).
    pub fn new_shared(tag: &str, n: usize) -> Hosts {
        Self::make(tag, n, true)
    }

    fn make(tag: &str, n: usize, shared: bool) -> Hosts {
        let suf = format!("{tag}{}", std::process::id() % 100000);
        let dir = tempdir::Dir::new(&format!("mh-{suf}"));
        let ul = format!("mhu{suf}");
        let mut hs = Hosts {
            suf: suf.clone(),
            ul: ul.clone(),
            hosts: Vec::new(),
            dir,
        };
        if shared {
            // Before any engine mounts anything under it (a bind of the
            // directory onto itself would hide those); `hs` exists, so its
            // Drop unmounts it with the engines' mounts (everything under
            // the directory) whatever fails later.
            let d = hs.dir.0.clone();
            for cmd in [
                Command::new("mount").arg("--bind").arg(&d).arg(&d),
                Command::new("mount").arg("--make-rshared").arg(&d),
            ] {
                let out = run(cmd);
                assert!(out.status.success(), "{cmd:?}: {}", text(&out.stderr));
            }
        }
        ip(&["netns", "add", &ul]);
        ip(&["-n", &ul, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &ul, "link", "set", "br0", "up"]);
        let image = hs.dir.0.join("image.tar");
        let out = run(Command::new("docker")
            .args(["save", "-o"])
            .arg(&image)
            .arg(test_image()));
        assert!(
            out.status.success(),
            "docker save {}: {} (run scripts/build-images)",
            test_image(),
            text(&out.stderr)
        );
        for i in 1..=n {
            let ns = format!("mh{i}{suf}");
            let port = format!("mhp{i}{suf}");
            let addr = format!("192.168.211.{i}");
            ip(&["netns", "add", &ns]);
            hs.hosts.push(Host {
                ns: ns.clone(),
                addr: addr.clone(),
                sock: hs.dir.0.join(format!("s{i}.sock")),
                dockerd: None,
                exec_root: hs.dir.0.join(format!("e{i}")),
                data_root: hs.dir.0.join(format!("d{i}")),
                pidfile: hs.dir.0.join(format!("p{i}.pid")),
                log: hs.dir.0.join(format!("dockerd{i}.log")),
                stopped: false,
            });
            ip(&[
                "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ]);
            ip(&["link", "set", &port, "netns", &ul]);
            ip(&["-n", &ul, "link", "set", &port, "master", "br0", "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            hs.hosts
                .last_mut()
                .expect("just pushed")
                .spawn_dockerd(false);
        }
        for h in &hs.hosts {
            h.wait_engine();
            h.docker_ok(&["load", "-q", "-i", &image.display().to_string()]);
        }
        hs
    }

    /// The test's own directory.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// Forms a swarm: host 1 initialises, the others join as managers (so
    /// every host's engine can list the nodes).
    pub fn swarm(&self) {
        let h1 = &self.hosts[0];
        h1.docker_ok(&[
            "swarm",
            "init",
            "--advertise-addr",
            &h1.addr,
            "--listen-addr",
            &format!("{}:2377", h1.addr),
        ]);
        let token = h1.docker_ok(&["swarm", "join-token", "-q", "manager"]);
        for h in &self.hosts[1..] {
            h.docker_ok(&[
                "swarm",
                "join",
                "--advertise-addr",
                &h.addr,
                "--listen-addr",
                &format!("{}:2377", h.addr),
                "--token",
                token.trim(),
                &format!("{}:2377", h1.addr),
            ]);
        }
    }

    /// Loads `image` from the shared engine into every host's engine.
    pub fn load_image(&self, image: &str) {
        let tar = self.dir.0.join("extra-image.tar");
        let out = run(Command::new("docker")
            .args(["save", "-o"])
            .arg(&tar)
            .arg(image));
        assert!(
            out.status.success(),
            "docker save {image}: {}",
            text(&out.stderr)
        );
        for h in &self.hosts {
            h.docker_ok(&["load", "-q", "-i", &tar.display().to_string()]);
        }
        let _ = std::fs::remove_file(&tar);
    }

    /// Per-node paths a stack can reach through the swarm template
    /// `{{.Node.ID}}` (all "hosts" share one file system, so one mount
    /// source cannot mean a different path on each node otherwise):
    /// `DIR/by-node/NODEID/docker.sock` and `…/netns` are symlinks to that
    /// host's engine socket and sandbox directory (`EXEC_ROOT/netns`).
    /// Returns `DIR/by-node`. Call after [`Hosts::swarm`].
    pub fn node_dirs(&self) -> PathBuf {
        let base = self.dir.0.join("by-node");
        for (i, h) in self.hosts.iter().enumerate() {
            let d = base.join(self.node_id(i));
            std::fs::create_dir_all(&d).expect("create node dir");
            let netns = h.exec_root.join("netns");
            std::fs::create_dir_all(&netns).expect("create sandbox dir");
            std::os::unix::fs::symlink(&h.sock, d.join("docker.sock")).expect("symlink socket");
            std::os::unix::fs::symlink(&netns, d.join("netns")).expect("symlink netns dir");
        }
        base
    }

    /// This host's swarm node id.
    pub fn node_id(&self, i: usize) -> String {
        self.hosts[i]
            .docker_ok(&["info", "--format", "{{.Swarm.NodeID}}"])
            .trim()
            .to_string()
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Tasks first (a stopping engine would wait for each), then leave
        // the swarm, then the engines by PID. An engine the test stopped
        // (and failed before starting again) is started first: with
        // live-restore its containers still run and only it removes them.
        for h in &mut self.hosts {
            if h.stopped && h.dockerd.is_none() {
                h.spawn_dockerd(false);
                let t0 = Instant::now();
                while !h.docker(&["version"]).status.success()
                    && t0.elapsed() < Duration::from_secs(60)
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        for h in &self.hosts {
            let ids = text(&h.docker(&["ps", "-aq"]).stdout);
            for s in text(&h.docker(&["stack", "ls", "--format", "{{.Name}}"]).stdout).lines() {
                h.docker(&["stack", "rm", s]);
            }
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                h.docker(&[&["rm", "-f"][..], &ids].concat());
            }
        }
        for h in &self.hosts {
            h.docker(&["swarm", "leave", "--force"]);
        }
        for h in &mut self.hosts {
            if let Some(mut c) = h.dockerd.take() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(c.id() as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_secs(20) {
                    if let Ok(Some(_)) = c.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                if !matches!(c.try_wait(), Ok(Some(_))) {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        }
        // Mounts an engine left under our directory (overlay layers, netns
        // bind mounts), deepest first.
        let dir = self.dir.0.display().to_string();
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(String::from))
            .filter(|m| m.starts_with(&dir))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
        for h in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", &h.ns]).status();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ul]).status();
    }
}

/// One host's conlink: a process in the host's namespace, watching that
/// host's engine. Stopped (SIGTERM, bounded, then SIGKILL) on drop.
pub struct HostConlink {
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    /// conlink's own namespace name.
    pub own_ns: String,
    tag: String,
    /// Where it runs: a host namespace, or None for the test's own.
    host_ns: Option<String>,
    /// The engine socket it watches.
    sock: PathBuf,
    /// Its arguments after the socket and namespace ones.
    args: Vec<std::ffi::OsString>,
}

impl HostConlink {
    /// Starts conlink in `h`'s namespace on compose file `file` (project
    /// `project`) with `extra` arguments.
    pub fn start(h: &Host, tag: &str, file: &Path, project: &str, extra: &[&str]) -> HostConlink {
        Self::launch(Some(&h.ns), &h.sock, tag, file, project, extra)
    }

    /// Starts conlink in the test's own namespace (the machine's) against
    /// the engine at `sock`, e.g. the shared /var/run/docker.sock.
    pub fn on_engine(
        sock: &Path,
        tag: &str,
        file: &Path,
        project: &str,
        extra: &[&str],
    ) -> HostConlink {
        Self::launch(None, sock, tag, file, project, extra)
    }

    fn launch(
        host_ns: Option<&str>,
        sock: &Path,
        tag: &str,
        file: &Path,
        project: &str,
        extra: &[&str],
    ) -> HostConlink {
        let own_ns = format!("{tag}own");
        let mut args: Vec<std::ffi::OsString> = vec!["--compose-project".into(), project.into()];
        args.push("--compose-file".into());
        args.push(file.into());
        args.extend(extra.iter().map(|a| a.into()));
        let mut c = HostConlink {
            child: None,
            log: Arc::new(Mutex::new(Vec::new())),
            own_ns,
            tag: tag.to_string(),
            host_ns: host_ns.map(String::from),
            sock: sock.to_path_buf(),
            args,
        };
        c.child = Some(c.spawn());
        c
    }

    /// Starts it again after [`HostConlink::kill9`], with the same own
    /// namespace (as a restarted service would): it finds its leftovers
    /// there. The log starts empty.
    pub fn restart(&mut self, h: &Host, file: &Path, project: &str, extra: &[&str]) {
        assert!(self.child.is_none(), "restart of a running conlink");
        self.host_ns = Some(h.ns.clone());
        self.sock = h.sock.clone();
        self.args = vec!["--compose-project".into(), project.into()];
        self.args.push("--compose-file".into());
        self.args.push(file.into());
        self.args.extend(extra.iter().map(|a| a.into()));
        self.respawn();
    }

    /// Starts it again after [`HostConlink::kill9`] with the arguments it
    /// had; the log starts empty.
    pub fn respawn(&mut self) {
        assert!(self.child.is_none(), "restart of a running conlink");
        // A new buffer: the killed run's reader may still push its last
        // lines into the old one.
        self.log = Arc::new(Mutex::new(Vec::new()));
        self.child = Some(self.spawn());
    }

    fn spawn(&self) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_conlink"));
        if let Some(h) = &self.host_ns {
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
            .arg("--docker-socket")
            .arg(&self.sock)
            .args(["--podman-socket", "/nonexistent/podman.sock"])
            .args(["--netns-name", &self.own_ns, "-v"])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start conlink");
        let err = child.stderr.take().expect("stderr piped");
        let (t, log) = (self.tag.clone(), self.log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("conlink[{t}]: {line}");
                log.lock().unwrap().push(line);
            }
        });
        child
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it still runs (not exited, not killed by the test).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// How many log lines (of this run) contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log().iter().filter(|l| l.contains(needle)).count()
    }

    /// Log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) until `n` log lines contain `needle`.
    pub fn wait_for(&mut self, needle: &str, n: usize, timeout: Duration) {
        let t0 = Instant::now();
        loop {
            if self.log().iter().filter(|l| l.contains(needle)).count() >= n {
                return;
            }
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "conlink {} exited ({st}) before logging {needle:?}",
                    self.tag
                );
            }
            assert!(
                t0.elapsed() < timeout,
                "conlink {}: timed out after {timeout:?} waiting for {needle:?}",
                self.tag
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (no cleanup), then reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, bounded wait; whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(st)) = c.try_wait() {
                return st.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        panic!("conlink {} did not exit within 20 s of SIGTERM", self.tag);
    }
}

impl Drop for HostConlink {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.stop()));
        }
        // A killed conlink leaves its namespace: ours by exact name.
        if Path::new(&format!("/run/netns/{}", self.own_ns)).exists() {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.own_ns])
                .status();
        }
    }
}

// ---- helpers of the multi-host tests ------------------------------------

/// `ip -j link show` names in namespace `ns`.
pub fn links(ns: &str) -> Vec<String> {
    super::link_names(ns)
}

/// Interfaces conlink marked (alias `conlink:…`) in namespace `ns`.
pub fn marked(ns: &str) -> Vec<String> {
    super::ip_json(ns, &["link", "show"])
        .as_array()
        .expect("list")
        .iter()
        .filter(|l| {
            l["ifalias"]
                .as_str()
                .is_some_and(|a| a.starts_with("conlink:"))
        })
        .filter_map(|l| l["ifname"].as_str().map(String::from))
        .collect()
}

/// `docker exec C ping -c1 -W2 ADDR` on host `h`, retried for up to 10 s.
pub fn ping(h: &Host, c: &str, addr: &str) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if h.docker(&["exec", c, "ping", "-c1", "-W2", addr])
            .status
            .success()
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// The IPv4 address (with prefix) of `dev` in container `c`, if any.
pub fn addr_of(h: &Host, c: &str, dev: &str) -> Option<String> {
    let out = h.docker(&["exec", c, "ip", "-o", "-4", "addr", "show", "dev", dev]);
    if !out.status.success() {
        return None;
    }
    text(&out.stdout)
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .map(String::from)
}

pub fn ifindex(h: &Host, c: &str, dev: &str) -> String {
    h.docker_ok(&["exec", c, "cat", &format!("/sys/class/net/{dev}/ifindex")])
        .trim()
        .to_string()
}

/// Fails loudly unless docker, dockerd, compose and the test image exist.
pub fn require_docker() {
    super::require_root();
    for (what, ok) in [
        (
            "docker CLI / shared engine (for docker save)",
            run(Command::new("docker").arg("version")).status.success(),
        ),
        (
            "dockerd",
            run(Command::new("sh").args(["-c", "command -v dockerd"]))
                .status
                .success(),
        ),
        (
            "test image (scripts/build-images)",
            run(Command::new("docker").args(["image", "inspect", &test_image()]))
                .status
                .success(),
        ),
    ] {
        assert!(
            ok,
            "missing {what}: run scripts/install-deps and scripts/build-images as root"
        );
    }
}

/// Containers of all hosts whose name starts with `prefix`: (host index,
/// id, name).
pub fn tasks(hs: &Hosts, prefix: &str) -> Vec<(usize, String, String)> {
    let mut v = Vec::new();
    for (i, h) in hs.hosts.iter().enumerate() {
        for (id, name) in h.containers() {
            if name.starts_with(prefix) {
                v.push((i, id, name));
            }
        }
    }
    v.sort_by(|a, b| a.2.cmp(&b.2));
    v
}

/// Waits (bounded) until `n` containers named `prefix*` run and each has
/// `dev` (with an address when `need_addr`); returns them.
pub fn wait_tasks(
    hs: &Hosts,
    prefix: &str,
    n: usize,
    dev: &str,
    need_addr: bool,
) -> Vec<(usize, String, String)> {
    let t0 = Instant::now();
    let ready = |(i, c, _): &(usize, String, String)| {
        if need_addr {
            addr_of(&hs.hosts[*i], c, dev).is_some()
        } else {
            hs.hosts[*i]
                .docker(&["exec", c, "cat", &format!("/sys/class/net/{dev}/ifindex")])
                .status
                .success()
        }
    };
    loop {
        let t = tasks(hs, prefix);
        if t.len() == n && t.iter().all(ready) {
            return t;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "timed out waiting for {n} tasks {prefix}* with {dev}: have {t:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The task slot from a task container name `STACK_SVC.SLOT.ID`.
pub fn slot(name: &str) -> u32 {
    name.split('.')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("slot in task name")
}

pub const ETH_P_ALL: u16 = 0x0003;

/// An AF_PACKET socket on `dev` inside the namespace at `path`.
pub fn packet_socket(path: &str, dev: &str) -> OwnedFd {
    let ns = conlink_net::Netns::open(path).expect("open task namespace");
    let h = conlink_net::Handle::open(&ns).expect("handle");
    let idx = h.ifindex(dev).expect("ifindex") as i32;
    let fd = ns
        .run(|| {
            // SAFETY: plain socket(2).
            unsafe {
                libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    i32::from(ETH_P_ALL.to_be()),
                )
            }
        })
        .expect("enter namespace");
    assert!(
        fd >= 0,
        "AF_PACKET socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: zeroed sockaddr_ll is valid; fields set below.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = ETH_P_ALL.to_be();
    sa.sll_ifindex = idx;
    // SAFETY: valid fd and address.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sa as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: valid fd, timeval of the right size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    fd
}

/// An 802.1D configuration BPDU to 01:80:c2:00:00:00 carrying `marker`.
pub fn bpdu(marker: &[u8; 8]) -> Vec<u8> {
    let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0xaa]);
    f.extend_from_slice(&38u16.to_be_bytes());
    f.extend_from_slice(&[0x42, 0x42, 0x03, 0, 0, 0, 0, 0]);
    f.extend_from_slice(marker);
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(marker);
    f.extend_from_slice(&[0x80, 0x01, 0, 0, 0x14, 0, 0x02, 0, 0x0f, 0]);
    f.resize(60, 0);
    f
}

/// Sends `frame` on `tx` until a frame with `marker` arrives on `rx`
/// (the first may go before the far end's patch exists), bounded.
pub fn carried(tx: &OwnedFd, rx: &OwnedFd, frame: &[u8], marker: &[u8]) -> bool {
    let t0 = Instant::now();
    let mut buf = [0u8; 2048];
    while t0.elapsed() < Duration::from_secs(10) {
        // SAFETY: valid fd and buffer.
        unsafe { libc::send(tx.as_raw_fd(), frame.as_ptr() as *const _, frame.len(), 0) };
        let until = Instant::now() + Duration::from_millis(300);
        while Instant::now() < until {
            // SAFETY: valid fd and buffer.
            let n = unsafe { libc::recv(rx.as_raw_fd(), buf.as_mut_ptr() as *mut _, buf.len(), 0) };
            if n > 0 && buf[..n as usize].windows(marker.len()).any(|w| w == marker) {
                return true;
            }
        }
    }
    false
}

pub fn sandbox(h: &Host, c: &str) -> String {
    h.docker_ok(&["inspect", "-f", "{{.NetworkSettings.SandboxKey}}", c])
        .trim()
        .to_string()
}
