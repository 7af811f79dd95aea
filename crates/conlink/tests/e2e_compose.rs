//! End-to-end tests with real `docker compose`: conlink runs as the
//! `network` service of a compose project (the image built by
//! `scripts/build-images`), the other services are `FROM scratch` busybox
//! containers, and every assertion is real traffic (`docker exec … ping`,
//! HTTP through a published port) or the kernel's own view (`ip -j`, `tc -j`
//! inside the containers' namespaces).
//!
//! Each test uses its own compose project (`-p cle2e-TAG-PID`), bounds every
//! wait, and runs `docker compose down -v --timeout 1` for its own project
//! only when it ends (a Drop guard, also on failure; the conlink log is
//! printed then). Needs root, a docker daemon, compose v2 and the images:
//! `scripts/install-deps && scripts/build-images` (the test command runs
//! both). Image names come from CONLINK_IMAGE / CONLINK_TEST_IMAGE as in
//! `scripts/lib/common.sh`.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{conlink_image, require_docker, tempdir, test_image};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One compose project, brought down (only it) on drop.
struct Project {
    name: String,
    files: Vec<PathBuf>,
    env: Vec<(String, String)>,
}

impl Project {
    /// `docker compose -p cle2e-TAG-PID -f FILES… up -d ARGS`; waits for
    /// the first `All links connected`.
    fn up(tag: &str, files: &[PathBuf], env: &[(&str, &str)], args: &[&str]) -> Project {
        let p = Project::start(tag, files, env, args);
        p.wait_log("All links connected", 1, Duration::from_secs(60));
        p
    }

    /// `docker compose … up -d ARGS`, not waiting for conlink.
    fn start(tag: &str, files: &[PathBuf], env: &[(&str, &str)], args: &[&str]) -> Project {
        require_docker();
        let p = Project {
            name: format!("cle2e-{tag}-{}", std::process::id()),
            files: files.to_vec(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain([
                    ("CONLINK_IMAGE".to_string(), conlink_image()),
                    ("CONLINK_TEST_IMAGE".to_string(), test_image()),
                ])
                .collect(),
        };
        // A leftover of an earlier run with the same pid: remove it first.
        p.compose(&["--profile", "*", "down", "-v", "--timeout", "1"]);
        p.compose_ok(&[&["up", "-d"][..], args].concat());
        p
    }

    /// The docker CLI with the project's environment (DOCKER_HOST for a
    /// podman run).
    fn docker(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    fn compose(&self, args: &[&str]) -> Output {
        let mut cmd = self.docker();
        cmd.arg("compose").args(["-p", &self.name]);
        for f in &self.files {
            cmd.arg("-f").arg(f);
        }
        cmd.args(args);
        run(&mut cmd)
    }

    fn compose_ok(&self, args: &[&str]) {
        let out = self.compose(args);
        assert!(
            out.status.success(),
            "docker compose {args:?} failed: {}",
            text(&out.stderr)
        );
    }

    /// Container name of replica `n` of `service`.
    fn ctr(&self, service: &str, n: u32) -> String {
        format!("{}-{service}-{n}", self.name)
    }

    fn network(&self) -> String {
        self.ctr("network", 1)
    }

    /// conlink's log (it logs to stderr; `docker logs` keeps both streams).
    fn logs(&self) -> String {
        let out = run(self.docker().args(["logs", &self.network()]));
        text(&out.stdout) + &text(&out.stderr)
    }

    fn count(&self, needle: &str) -> usize {
        self.logs().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits until `needle` appears in at least `n` log lines.
    fn wait_log(&self, needle: &str, n: usize, timeout: Duration) {
        let t0 = Instant::now();
        while self.count(needle) < n {
            // A failed setup never converges: say so at once.
            if needle == "All links connected" && self.count("link setup failed") > 0 {
                panic!("a link setup failed while waiting for {needle:?}");
            }
            assert!(
                t0.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {n}x {needle:?} in conlink's log"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for the `n`th `CONTAINER: K link(s) ready` line of `ctr`.
    fn wait_ready(&self, ctr: &str, n: usize) {
        let t0 = Instant::now();
        let count = || {
            self.logs()
                .lines()
                .filter(|l| l.contains(&format!(" {ctr}: ")) && l.contains("link(s) ready"))
                .count()
        };
        while count() < n {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "timed out waiting for {ctr}'s links (ready #{n})"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `docker exec CTR ARGV`.
    fn exec(&self, ctr: &str, argv: &[&str]) -> Output {
        run(self.docker().arg("exec").arg(ctr).args(argv))
    }

    /// Pings `addr` from `ctr`: up to 5 one-second tries (ARP, a link that
    /// just came up).
    fn ping(&self, ctr: &str, addr: &str) -> bool {
        (0..5).any(|_| {
            self.exec(ctr, &["ping", "-c", "1", "-W", "1", addr])
                .status
                .success()
        })
    }

    fn assert_ping(&self, from: &str, addr: &str) {
        assert!(self.ping(from, addr), "{from} cannot ping {addr}");
    }

    /// Main PID of a running container.
    fn pid(&self, ctr: &str) -> u32 {
        let out = run(self.docker().args(["inspect", "-f", "{{.State.Pid}}", ctr]));
        text(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no pid for {ctr}: {}", text(&out.stderr)))
    }

    /// `ip -j ARGS` in the network namespace of `ctr` (host's iproute2:
    /// busybox `ip` has no JSON).
    fn ip_json(&self, ctr: &str, args: &[&str]) -> serde_json::Value {
        let pid = self.pid(ctr).to_string();
        let out = run(Command::new("nsenter")
            .args(["-t", &pid, "-n", "ip", "-j"])
            .args(args));
        assert!(
            out.status.success(),
            "ip -j {args:?} in {ctr}: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("ip -j output is JSON")
    }

    /// Interface names in `ctr`'s namespace.
    fn ifnames(&self, ctr: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .ip_json(ctr, &["link", "show"])
            .as_array()
            .expect("ip -j link: a list")
            .iter()
            .filter_map(|l| l["ifname"].as_str().map(String::from))
            .collect();
        v.sort();
        v
    }

    /// IPv4 addresses (`A/LEN`) of `dev` in `ctr`.
    fn addrs(&self, ctr: &str, dev: &str) -> Vec<String> {
        self.ip_json(ctr, &["-4", "addr", "show", "dev", dev])
            .as_array()
            .expect("ip -j addr: a list")
            .iter()
            .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or(""), a["prefixlen"]))
            .collect()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- conlink log of {} ----\n{}", self.name, self.logs());
        }
        self.compose(&["--profile", "*", "down", "-v", "--timeout", "1"]);
    }
}

/// The router example: three hosts on three switches reach each other
/// through the router; its command ran; then SIGTERM to conlink (`docker
/// compose stop network`) removes every interface conlink made, in every
/// container that is still running and in the host.
#[test]
fn router_three_switches_then_sigterm_leaves_nothing() {
    let ex = examples().join("router");
    let p = Project::up(
        "router",
        &[
            ex.join("compose.yaml"),
            fixtures().join("override/images.yaml"),
        ],
        &[],
        &[],
    );
    let hosts = [("h1", "10.0.1.1"), ("h2", "10.0.2.1"), ("h3", "10.0.3.1")];
    for (from, _) in hosts {
        for (to, addr) in hosts {
            if from != to {
                assert!(
                    p.ping(&p.ctr(from, 1), addr),
                    "{from} cannot reach {to} ({addr}) through the router"
                );
            }
        }
    }
    // The router's command ran (after its links were up) and succeeded.
    p.wait_log("exited 0", 1, Duration::from_secs(10));
    // Three bridges in conlink's namespace; the router has e1..e3.
    let bridges: Vec<String> = p
        .ip_json(&p.network(), &["link", "show", "type", "bridge"])
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(String::from))
        .collect();
    assert_eq!(bridges.len(), 3, "{bridges:?}");
    let router = p.ctr("router", 1);
    assert_eq!(p.ifnames(&router), ["e1", "e2", "e3", "lo"]);
    assert_eq!(p.addrs(&router, "e2"), ["10.0.2.254/24"]);

    let host_before = host_conlink_ifaces();
    p.compose_ok(&["stop", "--timeout", "20", "network"]);
    let logs = p.logs();
    assert!(
        logs.contains("SIGTERM"),
        "no SIGTERM handling logged:\n{logs}"
    );
    assert!(
        logs.contains("cleanup done"),
        "cleanup did not finish:\n{logs}"
    );
    // Nothing waited out a timeout on the way (the engine watcher once
    // outlived the core by its 2 s grace at every stop).
    assert!(
        !logs.contains("did not stop in time") && !logs.contains("not waiting for them"),
        "the shutdown waited out a timeout:\n{logs}"
    );
    let code = run(p
        .docker()
        .args(["inspect", "-f", "{{.State.ExitCode}}", &p.network()]));
    assert_eq!(text(&code.stdout).trim(), "0", "conlink's exit code");
    for c in ["router", "h1", "h2", "h3"] {
        assert_eq!(
            p.ifnames(&p.ctr(c, 1)),
            ["lo"],
            "{c} keeps links after SIGTERM"
        );
    }
    assert!(
        !p.ping(&p.ctr("h1", 1), "10.0.1.254"),
        "h1 still reaches the router"
    );
    // Nothing of conlink's appeared in the host namespace either.
    assert_eq!(host_conlink_ifaces(), host_before);
}

/// Interfaces in the host namespace marked as conlink's (alias `conlink:…`).
fn host_conlink_ifaces() -> Vec<String> {
    let out = run(Command::new("ip").args(["-j", "link", "show"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j");
    v.as_array()
        .unwrap()
        .iter()
        .filter(|l| {
            l["ifalias"]
                .as_str()
                .is_some_and(|a| a.starts_with("conlink"))
        })
        .filter_map(|l| l["ifname"].as_str().map(String::from))
        .collect()
}

/// Outer interface names in conlink's namespace (its veth ends).
fn outer_ifaces(p: &Project) -> Vec<String> {
    let mut v: Vec<String> = p
        .ip_json(&p.network(), &["link", "show", "type", "veth"])
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(String::from))
        .collect();
    v.sort();
    v
}

/// A container the test ran by hand, removed (by exact name) on drop.
struct Foreign(String);

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Scaling 2 → 5 → 3, `docker restart` of a replica, and `--scale node=0`
/// then `=1`: addresses follow the replica index, links come and go with
/// the replicas, pings work after each step; a `node` container of another
/// compose project is left alone.
#[test]
fn scale_up_down_restart() {
    let dir = fixtures().join("scale");
    let p = Project::up(
        "scale",
        &[dir.join("compose.yaml")],
        &[],
        &["--scale", "node=2"],
    );
    let srv = p.ctr("server", 1);
    for i in 1..=2 {
        p.assert_ping(&p.ctr("node", i), "10.1.0.100");
    }

    // A `node` of another compose project: not ours, no links.
    let foreign = Foreign(format!("{}-foreign", p.name));
    let st = run(Command::new("docker").args([
        "run",
        "-d",
        "--name",
        &foreign.0,
        "--network",
        "none",
        "--label",
        "com.docker.compose.project=cle2e-someone-else",
        "--label",
        "com.docker.compose.service=node",
        "--label",
        "com.docker.compose.container-number=3",
        &test_image(),
        "sleep",
        "600",
    ]));
    assert!(st.status.success(), "docker run: {}", text(&st.stderr));
    // conlink logs nothing for containers it ignores: give the start event
    // a moment to arrive and be (not) acted on.
    std::thread::sleep(Duration::from_secs(1));
    p.assert_ping(&p.ctr("node", 1), "10.1.0.2");
    assert_eq!(
        p.ifnames(&foreign.0),
        ["lo"],
        "a foreign project's node got links"
    );
    assert!(!p.logs().contains(&foreign.0), "{}", p.logs());
    drop(foreign);

    // 2 -> 5: the 5th replica has .5 and MAC ...:05.
    p.compose_ok(&["up", "-d", "--scale", "node=5"]);
    for i in 3..=5 {
        p.wait_ready(&p.ctr("node", i), 1);
    }
    let n5 = p.ctr("node", 5);
    assert_eq!(p.addrs(&n5, "eth0"), ["10.1.0.5/24"]);
    let link = p.ip_json(&n5, &["link", "show", "dev", "eth0"]);
    assert_eq!(link[0]["address"], "02:00:0a:01:00:05");
    p.assert_ping(&n5, "10.1.0.1");
    p.assert_ping(&srv, "10.1.0.5");
    assert_eq!(
        outer_ifaces(&p),
        [
            "node_1-eth0",
            "node_2-eth0",
            "node_3-eth0",
            "node_4-eth0",
            "node_5-eth0",
            "server_1-eth0"
        ]
    );

    // 5 -> 3: only replicas 4 and 5 lose their links.
    p.compose_ok(&["up", "-d", "--scale", "node=3"]);
    let removed = |n: u32| format!("{}: links removed", p.ctr("node", n));
    p.wait_log(&removed(4), 1, Duration::from_secs(30));
    p.wait_log(&removed(5), 1, Duration::from_secs(30));
    assert_eq!(
        outer_ifaces(&p),
        ["node_1-eth0", "node_2-eth0", "node_3-eth0", "server_1-eth0"]
    );
    for i in 1..=3 {
        p.assert_ping(&srv, &format!("10.1.0.{i}"));
    }
    assert!(!p.ping(&srv, "10.1.0.5"), "removed replica 5 still answers");

    // docker restart: the same links come back (same address and MAC).
    let n2 = p.ctr("node", 2);
    let st = run(Command::new("docker").args(["restart", "-t", "1", &n2]));
    assert!(st.status.success(), "docker restart: {}", text(&st.stderr));
    p.wait_ready(&n2, 2);
    assert_eq!(p.addrs(&n2, "eth0"), ["10.1.0.2/24"]);
    let link = p.ip_json(&n2, &["link", "show", "dev", "eth0"]);
    assert_eq!(link[0]["address"], "02:00:0a:01:00:02");
    p.assert_ping(&n2, "10.1.0.100");

    // --scale node=0 then =1: a new container with the old name.
    p.compose_ok(&["up", "-d", "--scale", "node=0"]);
    p.wait_log(&removed(1), 1, Duration::from_secs(30));
    assert_eq!(outer_ifaces(&p), ["server_1-eth0"]);
    p.compose_ok(&["up", "-d", "--scale", "node=1"]);
    let n1 = p.ctr("node", 1);
    p.wait_ready(&n1, 2);
    p.assert_ping(&n1, "10.1.0.100");
    assert_eq!(outer_ifaces(&p), ["node_1-eth0", "server_1-eth0"]);
}

/// Bridge modes linux, patch and auto (linux here: no openvswitch module):
/// pings over each; the patch is tc ingress + u32 + mirred in conlink's
/// namespace, and is re-made when one end restarts.
#[test]
fn bridge_modes_linux_patch_auto() {
    let ex = examples().join("bridge-modes");
    let p = Project::up(
        "modes",
        &[
            ex.join("compose.yaml"),
            fixtures().join("override/images.yaml"),
        ],
        &[],
        &[],
    );
    let left = p.ctr("left", 1);
    for addr in ["10.2.0.2", "10.2.1.2", "10.2.2.2", "10.2.3.2"] {
        p.assert_ping(&left, addr);
    }
    let kinds = p.ip_json(&p.network(), &["-d", "link", "show", "type", "bridge"]);
    let mut bridges: Vec<&str> = kinds
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    bridges.sort();
    assert_eq!(
        bridges,
        ["core", "lan", "spare"],
        "wire is a patch: no bridge"
    );
    assert!(p.logs().contains("core"), "auto mode choice not logged");
    let mirred = |dev: &str| {
        let out = p.exec(
            &p.network(),
            &["tc", "-j", "filter", "show", "dev", dev, "ingress"],
        );
        assert!(
            out.status.success(),
            "tc filter show: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    for (dev, to) in [
        ("left_1-wire0", "right_1-wire0"),
        ("right_1-wire0", "left_1-wire0"),
    ] {
        let f = mirred(dev);
        assert!(
            f.contains("mirred") && f.contains(to),
            "{dev}: no mirred to {to}: {f}"
        );
    }
    // One end restarts: the patch is re-made and carries traffic again.
    let st = run(Command::new("docker").args(["restart", "-t", "1", &p.ctr("right", 1)]));
    assert!(st.status.success(), "docker restart: {}", text(&st.stderr));
    p.wait_ready(&p.ctr("right", 1), 2);
    assert!(mirred("left_1-wire0").contains("right_1-wire0"));
    p.assert_ping(&left, "10.2.1.2");
    p.assert_ping(&left, "10.2.0.2");
}

/// Two compose files plus a network file, links declared in each, merged;
/// commands (one argv, one shell string) run once links are up.
#[test]
fn two_compose_files_and_a_network_file() {
    let dir = fixtures().join("multi");
    let p = Project::up(
        "multi",
        &[dir.join("compose.yaml"), dir.join("compose.extra.yaml")],
        &[],
        &[],
    );
    let (n1, n2, n3) = (p.ctr("n1", 1), p.ctr("n2", 1), p.ctr("n3", 1));
    assert_eq!(p.ifnames(&n1), ["eth0", "eth1", "lo"]);
    assert_eq!(p.ifnames(&n2), ["eth0", "eth2", "lo"]);
    assert_eq!(p.ifnames(&n3), ["eth0", "eth2", "lo"]);
    // The top-level entry of the second file set n2 eth0's MTU.
    let l = p.ip_json(&n2, &["link", "show", "dev", "eth0"]);
    assert_eq!(l[0]["mtu"], 1500);
    p.assert_ping(&n1, "10.7.0.2");
    p.assert_ping(&n1, "10.7.1.3");
    p.assert_ping(&n2, "10.7.2.3");
    // Both commands pinged over links that exist only once conlink made
    // them: they succeeding shows they ran after the links were up.
    p.wait_log("exited 0", 2, Duration::from_secs(15));
    let logs = p.logs();
    assert!(logs.contains(&format!("{n2}: n2-reached-n3")), "{logs}");
    assert!(!logs.contains("exited 1"), "{logs}");

    // conlink killed (no cleanup) and started again while the containers
    // keep running: it converges again, no EEXIST failure.
    let net = p.network();
    for args in [&["kill", "-s", "KILL", &net][..], &["start", &net][..]] {
        let st = run(Command::new("docker").args(args));
        assert!(st.status.success(), "docker {args:?}: {}", text(&st.stderr));
    }
    p.wait_log("All links connected", 2, Duration::from_secs(60));
    assert!(!p.logs().contains("failed"), "{}", p.logs());
    p.assert_ping(&n1, "10.7.1.3");
    p.assert_ping(&n2, "10.7.2.3");
}

/// A unix-socket proxy in front of docker's socket that the test can cut:
/// cutting closes every open connection and refuses new ones until restored.
struct Proxy {
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<UnixStream>>>,
    _dir: tempdir::Dir,
    dir: PathBuf,
}

impl Proxy {
    fn start(tag: &str) -> Proxy {
        let dir = tempdir::Dir::new(tag);
        let path = dir.0.join("docker.sock");
        let listener = UnixListener::bind(&path).expect("bind proxy socket");
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<UnixStream>>> = Arc::default();
        let (cut2, conns2) = (cut.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if cut2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(upstream) = UnixStream::connect("/var/run/docker.sock") else {
                    continue;
                };
                let mut list = conns2.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(upstream.try_clone().unwrap());
                drop(list);
                pipe(client.try_clone().unwrap(), upstream.try_clone().unwrap());
                pipe(upstream, client);
            }
        });
        let d = dir.0.clone();
        Proxy {
            cut,
            conns,
            _dir: dir,
            dir: d,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` on a thread until either side closes.
fn pipe(mut from: UnixStream, mut to: UnixStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

/// The event stream breaks (the proxy conlink talks to docker through is
/// cut) while replicas start: after reconnecting, conlink gives them links.
#[test]
fn event_stream_break_then_resync() {
    let proxy = Proxy::start("proxy");
    let dir = fixtures().join("proxy");
    let pdir = proxy.dir.display().to_string();
    let p = Project::up(
        "proxy",
        &[dir.join("compose.yaml")],
        &[("PROXY_DIR", &pdir)],
        &[],
    );
    p.assert_ping(&p.ctr("node", 1), "10.8.0.1");

    proxy.cut();
    p.wait_log("reconnecting", 1, Duration::from_secs(15));
    // Replicas 2 and 3 start while conlink cannot hear docker.
    p.compose_ok(&["up", "-d", "--scale", "node=3"]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(p.count("node-2: "), 0, "conlink heard the start while cut");
    proxy.restore();
    p.wait_ready(&p.ctr("node", 2), 1);
    p.wait_ready(&p.ctr("node", 3), 1);
    p.assert_ping(&p.ctr("node", 3), "10.8.0.1");
    p.assert_ping(&p.ctr("node", 1), "10.8.0.2");
    // And live events flow again after the reconnect.
    let st = run(Command::new("docker").args(["restart", "-t", "1", &p.ctr("node", 1)]));
    assert!(st.status.success());
    p.wait_ready(&p.ctr("node", 1), 2);
    p.assert_ping(&p.ctr("node", 1), "10.8.0.3");
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a
/// test that publishes it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// HTTP GET through a port published by the conlink service, forwarded to
/// busybox httpd in each of two replicas (conlink ports 8080 and 8081).
#[test]
fn forward_published_ports_to_two_replicas() {
    let dir = fixtures().join("forward");
    let (a, b) = (free_port().to_string(), free_port().to_string());
    let p = Project::up(
        "fwd",
        &[dir.join("compose.yaml")],
        &[("HOST_PORT_1", &a), ("HOST_PORT_2", &b)],
        &[],
    );
    for (i, port) in [(1, &a), (2, &b)] {
        let ctr = p.ctr("web", i);
        let host =
            run(Command::new("docker").args(["inspect", "-f", "{{.Config.Hostname}}", &ctr]));
        let want = text(&host.stdout).trim().to_string();
        let t0 = Instant::now();
        loop {
            let out = run(Command::new("curl").args([
                "-sS",
                "--max-time",
                "2",
                &format!("http://127.0.0.1:{port}/hostname"),
            ]));
            if text(&out.stdout).trim() == want {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "port {port} does not reach {ctr} ({want}): {} {}",
                text(&out.stdout),
                text(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    // conlink's docker eth0 was renamed.
    assert!(p.ifnames(&p.network()).contains(&"DOCKER-ETH0".to_string()));
}

/// A podman API service on a private socket, stopped (by PID) on drop.
struct PodmanService {
    child: std::process::Child,
    sock: PathBuf,
    _dir: tempdir::Dir,
}

impl PodmanService {
    fn start() -> PodmanService {
        let dir = tempdir::Dir::new("podman");
        let sock = dir.0.join("podman.sock");
        let child = Command::new("podman")
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", sock.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman missing: run scripts/install-deps (as root)");
        let svc = PodmanService {
            child,
            sock,
            _dir: dir,
        };
        let t0 = Instant::now();
        while UnixStream::connect(&svc.sock).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "podman service does not answer on {}",
                svc.sock.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        svc
    }
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// Copies `img` from docker into podman's store unless podman has that
/// very image (same id) already.
fn image_to_podman(img: &str) {
    let id = |cmd: &str| {
        let out = run(Command::new(cmd).args(["image", "inspect", "--format", "{{.Id}}", img]));
        text(&out.stdout)
            .trim()
            .trim_start_matches("sha256:")
            .to_string()
    };
    let want = id("docker");
    assert!(
        !want.is_empty(),
        "image {img} missing: run scripts/build-images"
    );
    if id("podman") == want {
        return;
    }
    let st = Command::new("sh")
        .args(["-c", "docker save \"$1\" | podman load -q", "sh", img])
        .stdout(Stdio::null())
        .status()
        .expect("run docker save | podman load");
    assert!(st.success(), "docker save {img} | podman load failed");
}

/// The router example against podman (its docker-compatible API on a
/// private socket; compose and conlink both talk to it): every host pings
/// the others, and SIGTERM removes conlink's interfaces. Pings run from
/// the host in the containers' namespaces: podman's default capabilities
/// lack NET_RAW, which busybox ping needs.
#[test]
fn podman_router() {
    require_docker();
    let svc = PodmanService::start();
    image_to_podman(&conlink_image());
    image_to_podman(&test_image());
    let sock = svc.sock.display().to_string();
    let host = format!("unix://{sock}");
    let ex = examples().join("router");
    let p = Project::up(
        "podman",
        &[
            ex.join("compose.yaml"),
            fixtures().join("override/images.yaml"),
            fixtures().join("override/podman.yaml"),
        ],
        &[("DOCKER_HOST", &host), ("PODMAN_SOCK", &sock)],
        &[],
    );
    let ping = |from: &str, addr: &str| {
        let pid = p.pid(&p.ctr(from, 1)).to_string();
        (0..5).any(|_| {
            Command::new("nsenter")
                .args(["-t", &pid, "-n", "ping", "-c", "1", "-W", "1", addr])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    };
    let hosts = [("h1", "10.0.1.1"), ("h2", "10.0.2.1"), ("h3", "10.0.3.1")];
    for (from, _) in hosts {
        for (_, addr) in hosts {
            assert!(ping(from, addr), "{from} cannot reach {addr} (podman)");
        }
    }
    // podman 4.3 treats a stop without a timeout as SIGKILL: give one.
    p.compose_ok(&["stop", "--timeout", "20", "network"]);
    assert!(p.logs().contains("cleanup done"), "{}", p.logs());
    for c in ["router", "h1", "h2", "h3"] {
        assert_eq!(p.ifnames(&p.ctr(c, 1)), ["lo"], "{c} keeps links (podman)");
    }
    drop(p);
}

/// conlink run directly on the host (a process, not a container) against a
/// compose project without a network service: it keeps its bridges in a
/// namespace of its own (`--netns-name`), matches the project given with
/// `--compose-project`, and at SIGTERM removes the links and that namespace.
#[test]
fn conlink_on_the_host() {
    let dir = fixtures().join("scale");
    let p = Project::start(
        "host",
        &[dir.join("compose.yaml")],
        &[],
        &["--scale", "node=2", "node", "server"],
    );
    let ns = format!("clhost{}", std::process::id());
    let mut child = Command::new(env!("CARGO_BIN_EXE_conlink"))
        .arg("--compose-file")
        .arg(dir.join("compose.yaml"))
        .args(["--compose-project", &p.name, "--netns-name", &ns])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start conlink");
    let guard = KillOnDrop(child.id());
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let (err, l2) = (child.stderr.take().expect("piped"), log.clone());
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("conlink: {line}");
            l2.lock().unwrap().push(line);
        }
    });
    let t0 = Instant::now();
    while !log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("All links connected"))
    {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("conlink exited ({st}) before connecting");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "conlink did not connect"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    p.assert_ping(&p.ctr("node", 1), "10.1.0.100");
    p.assert_ping(&p.ctr("node", 2), "10.1.0.1");
    // The bridge lives in conlink's own namespace, not in the host's.
    let br = run(Command::new("ip").args(["-n", &ns, "-j", "link", "show", "type", "bridge"]));
    assert!(text(&br.stdout).contains("\"lan\""), "{}", text(&br.stdout));
    assert!(!host_conlink_ifaces().contains(&"lan".to_string()));

    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let t0 = Instant::now();
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(guard);
    assert!(status.success(), "conlink exit status {status}");
    assert!(
        !Path::new("/run/netns").join(&ns).exists(),
        "namespace {ns} left behind"
    );
    for c in [p.ctr("node", 1), p.ctr("node", 2), p.ctr("server", 1)] {
        assert_eq!(p.ifnames(&c), ["lo"], "{c} keeps links");
    }
}

/// SIGKILLs a process we started (by PID) if it still runs at drop.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // Only a failed test leaves it running; it is not reaped yet then,
        // so the PID is still the child's.
        if std::thread::panicking() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0 as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// The control API inside a compose deployment: `docker compose exec
/// network conlink status` finds conlink's socket by itself, and its
/// answer matches the containers' interfaces; events and bad requests too.
#[test]
fn control_api_from_docker_compose_exec() {
    let ex = examples().join("router");
    let p = Project::up(
        "ctl",
        &[
            ex.join("compose.yaml"),
            fixtures().join("override/images.yaml"),
        ],
        &[],
        &[],
    );
    let exec =
        |args: &[&str]| p.compose(&[&["exec", "-T", "network", "conlink"][..], args].concat());
    // The socket is named after the compose project and root only.
    let ls = p.compose(&["exec", "-T", "network", "ls", "-l", "/run/conlink"]);
    let ls = text(&ls.stdout);
    assert!(ls.contains(&format!("{}.sock", p.name)), "{ls}");
    assert!(ls.contains("srw-------"), "{ls}");
    let out = exec(&["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["name"], p.name.as_str());
    assert_eq!(st["converged"], true, "{st}");
    let links = st["links"].as_array().unwrap();
    assert_eq!(links.len(), 6, "{st}");
    for l in links {
        let ctr = l["container"].as_str().unwrap();
        let dev = l["dev"].as_str().unwrap();
        let k = &p.ip_json(ctr, &["link", "show", "dev", dev])[0];
        assert_eq!(l["state"], "up", "{l}");
        assert_eq!(l["mtu"], k["mtu"], "{ctr}/{dev}");
        assert_eq!(l["mac"], k["address"], "{ctr}/{dev}");
        assert_eq!(l["oper_state"], k["operstate"], "{ctr}/{dev}");
        assert_eq!(
            l["addresses"][0].as_str().unwrap(),
            p.addrs(ctr, dev)[0],
            "{ctr}/{dev}"
        );
    }
    let router = p.ctr("router", 1);
    assert!(links.iter().any(|l| l["container"] == router.as_str()
        && l["service"] == "router"
        && l["dev"] == "e2"));
    // The table, as a user types it.
    let table = text(&exec(&["status"]).stdout);
    assert!(table.contains("6 link(s), converged"), "{table}");
    // Events: every container started, then converged.
    let evs = text(&exec(&["events", "--no-follow"]).stdout);
    let lines: Vec<&str> = evs.lines().collect();
    let mut last_seen = 0;
    for c in ["router", "h1", "h2", "h3"] {
        let id = format!("\"ID\":\"{}\"", p.ctr(c, 1));
        let i = lines.iter().rposition(|l| l.contains(&id));
        last_seen = last_seen.max(i.unwrap_or_else(|| panic!("{c}: {evs}")));
    }
    // (Later events of containers the config does not want, such as
    // conlink's own, may follow: they change nothing.)
    assert!(
        lines[last_seen..]
            .iter()
            .any(|l| l.contains("\"converged\"")),
        "{evs}"
    );
    // A bad request: clear error, non-zero exit, nothing changed.
    let before = p.ip_json(&p.ctr("h1", 1), &["link", "show", "dev", "eth0"]);
    let out = exec(&["link", "set", "nosuch", "down"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("unknown target \"nosuch\""),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        p.ip_json(&p.ctr("h1", 1), &["link", "show", "dev", "eth0"]),
        before
    );
    // A good one: h1's link goes down in the kernel, traffic stops; clear
    // brings it back with its route.
    let out = exec(&["link", "set", "h1", "down"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let down = p.ip_json(&p.ctr("h1", 1), &["link", "show", "dev", "eth0"]);
    let flags = down[0]["flags"].as_array().cloned().unwrap_or_default();
    assert!(!flags.iter().any(|f| f == "UP"), "{down}");
    assert!(!p
        .exec(&p.ctr("h1", 1), &["ping", "-c", "1", "-W", "1", "10.0.3.1"])
        .status
        .success());
    let out = exec(&["link", "clear", "h1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    p.assert_ping(&p.ctr("h1", 1), "10.0.3.1");
}

/// A compose project of its own in a temporary directory, for tests that
/// edit conlink's network file while it runs: `compose.yaml` (services
/// `a`, `b`, `c` and conlink as `network`) and `cfg/net.yaml`, the
/// directory mounted at /cfg (a file mount would not see a new file renamed
/// over the old one). With `holder`, conlink's network namespace belongs to
/// a `netns` sleeper service (`network_mode: service:netns`), so it
/// outlives a SIGKILL of the conlink container: that is what lets a
/// restarted conlink container adopt its links.
fn live_project(tag: &str, net: &str, holder: bool) -> (tempdir::Dir, Project) {
    let dir = tempdir::Dir::new(&format!("live-{tag}"));
    std::fs::create_dir_all(dir.0.join("cfg")).expect("mkdir cfg");
    std::fs::write(dir.0.join("cfg/net.yaml"), net).expect("write net.yaml");
    let netmode = if holder {
        "network_mode: service:netns\n    depends_on: [netns]"
    } else {
        "network_mode: none"
    };
    let compose = format!(
        "x-node: &node\n\
         \x20 image: ${{CONLINK_TEST_IMAGE}}\n\
         \x20 network_mode: none\n\
         \x20 command: sleep 86400\n\
         services:\n\
         \x20 netns: *node\n\
         \x20 network:\n\
         \x20   image: ${{CONLINK_IMAGE}}\n\
         \x20   stop_grace_period: 10s\n\
         \x20   pid: host\n\
         \x20   {netmode}\n\
         \x20   cap_add: [SYS_ADMIN, NET_ADMIN, SYS_NICE, NET_BROADCAST, IPC_LOCK]\n\
         \x20   security_opt: ['apparmor:unconfined']\n\
         \x20   volumes:\n\
         \x20     - /var/run/docker.sock:/var/run/docker.sock\n\
         \x20     - ./cfg:/cfg\n\
         \x20   command: conlink --network-file /cfg/net.yaml\n\
         \x20 a: *node\n\
         \x20 b: *node\n\
         \x20 c: *node\n"
    );
    std::fs::write(dir.0.join("compose.yaml"), compose).expect("write compose.yaml");
    let p = Project::up(tag, &[dir.0.join("compose.yaml")], &[], &[]);
    (dir, p)
}

fn live_net(a_extra: &str, more_links: &str, more_bridges: &str) -> String {
    format!(
        "bridges:\n  - {{bridge: s1, mode: linux}}\n{more_bridges}\
         links:\n\
         \x20 - {{service: a, bridge: s1, ip: 10.230.0.1/24{a_extra}}}\n\
         \x20 - {{service: b, bridge: s1, ip: 10.230.0.2/24}}\n\
         \x20 - {{service: c, bridge: s1, ip: 10.230.0.3/24}}\n\
         {more_links}"
    )
}

/// Replaces `cfg/net.yaml` the way editors save: a new file renamed over.
fn save(dir: &tempdir::Dir, text: &str) {
    let tmp = dir.0.join("cfg/.net.yaml.swp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, dir.0.join("cfg/net.yaml")).expect("rename");
}

/// A continuous ping from the host's iputils inside `ctr`'s namespace:
/// `ping -i 0.05 -c N -W 1 ADDR`; `finish` gives (sent, received).
struct LivePing(std::process::Child);

impl LivePing {
    fn start(p: &Project, ctr: &str, addr: &str, n: u32) -> LivePing {
        let pid = p.pid(ctr).to_string();
        LivePing(
            Command::new("nsenter")
                .args([
                    "-t", &pid, "-n", "ping", "-D", "-O", "-i", "0.05", "-W", "1", "-c",
                ])
                .arg(n.to_string())
                .arg(addr)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start ping"),
        )
    }

    fn finish(self) -> (u32, u32) {
        let out = self.0.wait_with_output().expect("ping output");
        let t = text(&out.stdout);
        // Which ones went unanswered, and when (-D -O), for the failure.
        for l in t.lines().filter(|l| l.contains("no answer")) {
            eprintln!("ping: {l}");
        }
        let line = t
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("no ping summary: {t}"));
        let nums: Vec<u32> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        (nums[0], nums[1])
    }
}

fn ifindex(p: &Project, ctr: &str, dev: &str) -> serde_json::Value {
    p.ip_json(ctr, &["link", "show", "dev", dev])[0]["ifindex"].clone()
}

/// Live reload under compose: editing the network file of a running
/// project adds a link (and its bridge), changes MTU, a route and an
/// address in place (netem needs sch_netem: `netns_reload`/`control_netns`
/// cover it where the module exists), removes the link again; the kernel follows each edit, the
/// links the edits do not touch keep their ifindex, and a continuous ping
/// over them loses nothing.
#[test]
fn compose_live_reload_add_change_remove() {
    let (dir, p) = live_project("live", &live_net("", "", ""), false);
    let (a, b, c) = (p.ctr("a", 1), p.ctr("b", 1), p.ctr("c", 1));
    let before = (ifindex(&p, &b, "eth0"), ifindex(&p, &c, "eth0"));
    let a_eth0 = ifindex(&p, &a, "eth0");
    // ~10 s of pings between b and c, over links no edit touches.
    let ping = LivePing::start(&p, &b, "10.230.0.3", 200);
    std::thread::sleep(Duration::from_millis(500));

    // 1. MTU and a route on a's link (in place), a new link a/eth1 + b/eth1
    //    on a new bridge.
    save(
        &dir,
        &live_net(
            ", mtu: 9000, route: 10.99.0.0/16 via 10.230.0.254",
            "  - {service: a, dev: eth1, bridge: s2, ip: 10.231.0.1/24}\n\
             \x20 - {service: b, dev: eth1, bridge: s2, ip: 10.231.0.2/24}\n",
            "  - {bridge: s2, mode: linux}\n",
        ),
    );
    p.wait_log(
        &format!("{a}/eth0: mtu 65535 -> 9000"),
        1,
        Duration::from_secs(30),
    );
    p.wait_log("All links connected", 2, Duration::from_secs(30));
    let l = &p.ip_json(&a, &["link", "show", "dev", "eth0"])[0];
    assert_eq!(l["mtu"], 9000, "{l}");
    assert_eq!(
        ifindex(&p, &a, "eth0"),
        a_eth0,
        "a/eth0 remade for an MTU change"
    );
    let r = p.ip_json(&a, &["route", "show", "10.99.0.0/16"]);
    assert_eq!(r[0]["gateway"], "10.230.0.254", "{r}");
    p.assert_ping(&a, "10.231.0.2");

    // 2. a's address changes in place; the eth1 links and bridge s2 go.
    save(
        &dir,
        &live_net(", mtu: 9000, route: 10.99.0.0/16 via 10.230.0.254", "", "")
            .replace("10.230.0.1/24", "10.230.0.11/24"),
    );
    p.wait_log(&format!("{a}/eth1: removed"), 1, Duration::from_secs(30));
    p.wait_log("bridge s2: removed", 1, Duration::from_secs(30));
    p.wait_log("All links connected", 3, Duration::from_secs(30));
    assert_eq!(p.addrs(&a, "eth0"), vec!["10.230.0.11/24".to_string()]);
    assert_eq!(
        ifindex(&p, &a, "eth0"),
        a_eth0,
        "a/eth0 remade for an address change"
    );
    assert!(!p.ifnames(&a).contains(&"eth1".to_string()));
    assert!(!p.ifnames(&b).contains(&"eth1".to_string()));
    p.assert_ping(&a, "10.230.0.3");

    let (sent, got) = ping.finish();
    assert_eq!((sent, got), (200, 200), "pings over untouched links lost");
    assert_eq!(
        (ifindex(&p, &b, "eth0"), ifindex(&p, &c, "eth0")),
        before,
        "untouched links remade"
    );
}

/// Adoption under compose: SIGKILL the conlink container and start it
/// again (its namespace held by the `netns` service): every link is
/// adopted, none made again (same ifindex everywhere), and a continuous
/// ping across the whole window loses nothing.
#[test]
fn compose_sigkill_restart_adopts_every_link() {
    let (_dir, p) = live_project("adopt", &live_net("", "", ""), true);
    // A bystander: another project with its own conlink and the same
    // service names. The restarted conlink must leave its links alone
    // (it once adopted their markers and deleted them).
    let (_dir2, by) = live_project("adoptby", &live_net("", "", ""), false);
    let by_b = by.ctr("b", 1);
    let by_before = ifindex(&by, &by_b, "eth0");
    let ctrs = [p.ctr("a", 1), p.ctr("b", 1), p.ctr("c", 1)];
    let before: Vec<_> = ctrs.iter().map(|c| ifindex(&p, c, "eth0")).collect();
    assert_eq!(p.count("link(s) ready"), 3);
    // ~15 s of pings a -> c across the kill and restart.
    let ping = LivePing::start(&p, &ctrs[0], "10.230.0.3", 300);
    std::thread::sleep(Duration::from_millis(500));
    let out = run(p.docker().args(["kill", "-s", "KILL", &p.network()]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::thread::sleep(Duration::from_secs(2));
    // Down, and the links are still there (the kernel keeps them).
    assert_eq!(ifindex(&p, &ctrs[1], "eth0"), before[1]);
    let out = run(p.docker().args(["start", &p.network()]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    p.wait_log("All links connected", 2, Duration::from_secs(60));
    for c in &ctrs {
        p.wait_log(
            &format!("{c}: 1 link(s) adopted"),
            1,
            Duration::from_secs(10),
        );
    }
    assert_eq!(
        p.count("link(s) ready"),
        3,
        "links made again after the restart"
    );
    let after: Vec<_> = ctrs.iter().map(|c| ifindex(&p, c, "eth0")).collect();
    assert_eq!(after, before, "ifindex changed across the restart");
    let (sent, got) = ping.finish();
    assert_eq!((sent, got), (300, 300), "pings lost across the restart");
    p.assert_ping(&ctrs[2], "10.230.0.1");
    assert_eq!(
        ifindex(&by, &by_b, "eth0"),
        by_before,
        "the restart touched another project's link"
    );
    by.assert_ping(&by_b, "10.230.0.3");
}

/// Issue 9 item 7: `All links connected` waits only for containers the
/// engine has: not for a profile-gated service, not for a service left out
/// of `compose up SERVICE…`. A link that fails for good gets one summary
/// line naming the container, the device and why (here: a macvlan needs
/// the host's namespace, which docker's default capabilities cannot open).
#[test]
fn all_links_connected_waits_only_for_existing_containers() {
    let dir = fixtures().join("partial");
    // Only `network` and `a`: `b` has no container, `extra` is gated.
    let p = Project::up(
        "partial",
        &[dir.join("compose.yaml")],
        &[],
        &["network", "a"],
    );
    let (a, b) = (p.ctr("a", 1), p.ctr("b", 1));
    assert_eq!(p.ifnames(&a), ["eth0", "lo"]);
    // `b` comes later: its link is made and traffic crosses.
    p.compose_ok(&["up", "-d", "b"]);
    p.wait_ready(&b, 1);
    p.assert_ping(&a, "10.9.0.2");
    assert_eq!(p.count("links failed"), 0, "{}", p.logs());
    // `broken` (profile) starts; its macvlan parent does not exist.
    p.compose_ok(&["--profile", "broken", "up", "-d", "broken"]);
    let broken = p.ctr("broken", 1);
    let t0 = Instant::now();
    let line = loop {
        if let Some(l) = p.logs().lines().find(|l| l.contains("links failed")) {
            break l.to_string();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no summary line: {}",
            p.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        line.contains(&format!("links failed (1 container(s)): {broken}/eth0: ")),
        "{line}"
    );
    // The default caps (docker's, plus the usual cap_add) cannot open the
    // host's namespace: the reason says what to add.
    assert!(
        line.contains("SYS_PTRACE"),
        "the reason says what to do: {line}"
    );
    // The others are untouched.
    p.assert_ping(&a, "10.9.0.2");
}

/// `All links connected` waits for a container that is created and not
/// started (compose `create`), and stops waiting for it once it is removed:
/// what the engine's create, start and destroy events show conlink
/// (`conlink_runtime::seen`) must agree with the engine's own list.
#[test]
fn a_created_container_is_waited_for_until_it_starts_or_goes() {
    let dir = fixtures().join("partial");
    let p = Project::up(
        "created",
        &[dir.join("compose.yaml")],
        &[],
        &["network", "a"],
    );
    let (a, b) = (p.ctr("a", 1), p.ctr("b", 1));
    // Some change, then whether conlink says `All links connected` again
    // within 4 s (a record's "not yet" is looked at again with the
    // engine's list after 1 s, then 2 s).
    let restart_a = |ready: usize| {
        let st = run(Command::new("docker").args(["restart", "-t", "1", &a]));
        assert!(st.status.success(), "docker restart: {}", text(&st.stderr));
        p.wait_ready(&a, ready);
    };
    let announced_within = |n: usize, t: Duration| {
        let t0 = Instant::now();
        while t0.elapsed() < t {
            if p.count("All links connected") >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    };

    // b created, not started: a's restart converges a, not the lab.
    p.compose_ok(&["create", "b"]);
    restart_a(2);
    assert!(
        !announced_within(2, Duration::from_secs(4)),
        "announced with {b} created and not started: {}",
        p.logs()
    );
    // b starts: its links, then the announcement.
    p.compose_ok(&["start", "b"]);
    p.wait_ready(&b, 1);
    assert!(announced_within(2, Duration::from_secs(30)), "{}", p.logs());
    p.assert_ping(&a, "10.9.0.2");

    // `extra` created, then removed without ever starting: the lab is
    // connected again at the next change.
    p.compose_ok(&["--profile", "extra", "create", "extra"]);
    restart_a(3);
    assert!(
        !announced_within(3, Duration::from_secs(4)),
        "announced with extra created and not started: {}",
        p.logs()
    );
    p.compose_ok(&["--profile", "extra", "rm", "-f", "extra"]);
    restart_a(4);
    assert!(announced_within(3, Duration::from_secs(30)), "{}", p.logs());
    assert_eq!(p.count("links failed"), 0, "{}", p.logs());
}
