//! conlink as a global service of the stack itself
//! (`examples/swarm/conlink.yaml`): one conlink task per swarm node, on the
//! host network, entering the tasks through their sandboxes, making the
//! mesh tunnels in the node's namespace and its bridges in an anonymous
//! namespace of its own. Real engines, a real swarm, real pings and frames
//! (the "hosts" of `common/hosts.rs`). Needs root, dockerd/docker
//! (docker.io), the busybox test image and the conlink image
//! (`scripts/install-deps && scripts/build-images`); the conlink binary in
//! the stack is this build's, copied onto the conlink image.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::hosts::{
    addr_of, bpdu, carried, links, marked, packet_socket, ping, require_docker, run, sandbox, slot,
    tasks, test_image, text, wait_tasks, Hosts,
};
use common::{conlink_image, tempdir};

/// An image made for this test on the shared engine (the conlink image
/// with this build's binary), untagged by exact name on drop.
struct TestImage(String);

impl TestImage {
    fn build() -> TestImage {
        let base = conlink_image();
        let out = run(Command::new("docker").args(["image", "inspect", &base]));
        assert!(
            out.status.success(),
            "image {base} missing: run scripts/build-images (as root)"
        );
        let tag = format!("conlink-test-svc:{}", std::process::id());
        let dir = tempdir::Dir::new("svc-image");
        let bin = dir.0.join("conlink");
        // Without debug info the context is a tenth of the size.
        let stripped = Command::new("strip")
            .args(["--strip-debug", "-o"])
            .arg(&bin)
            .arg(env!("CARGO_BIN_EXE_conlink"))
            .output()
            .is_ok_and(|o| o.status.success());
        if !stripped {
            std::fs::copy(env!("CARGO_BIN_EXE_conlink"), &bin).expect("copy conlink binary");
        }
        std::fs::write(
            dir.0.join("Dockerfile"),
            format!("FROM {base}\nCOPY conlink /usr/local/bin/conlink\n"),
        )
        .expect("write Dockerfile");
        let out = run(Command::new("timeout")
            .arg("300")
            .args(["docker", "build", "-q", "--force-rm", "-t", &tag])
            .arg(&dir.0)
            .env("DOCKER_BUILDKIT", "0"));
        assert!(
            out.status.success(),
            "docker build {tag}: {}",
            text(&out.stderr)
        );
        TestImage(tag)
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", &self.0])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// On a failing test, the conlink tasks' logs (the only place they are).
struct Logs<'a>(&'a Hosts, String);

impl Drop for Logs<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for (i, id, name) in tasks(self.0, &self.1) {
            let out = self.0.hosts[i].docker(&["logs", "--tail", "80", &id]);
            eprintln!(
                "---- host {} {name}:\n{}{}",
                i + 1,
                text(&out.stdout),
                text(&out.stderr)
            );
        }
    }
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/swarm")
}

/// The inode of the network namespace at `path`.
fn ns_inode(path: &str) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {path}: {e}"))
        .ino()
}

/// conlink's own namespace in the conlink task with host PID `pid`: of
/// the namespaces it holds descriptors on (its own, the tasks'), the one
/// with bridge `bridge`. Its inode (no descriptor is kept: holding one would
/// keep the namespace alive).
fn conlink_ns_of(pid: &str, bridge: &str) -> Option<u64> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let mut seen = BTreeSet::new();
    for fd in fds.filter_map(Result::ok) {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        let t = target.to_string_lossy();
        let Some(ino) = t
            .strip_prefix("net:[")
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if !seen.insert(ino) {
            continue;
        }
        let names: Vec<String> = conlink_net::Netns::open(fd.path())
            .and_then(|ns| conlink_net::Handle::open(&ns))
            .and_then(|h| h.links())
            .map(|ls| ls.into_iter().map(|l| l.name).collect())
            .unwrap_or_default();
        if names.iter().any(|n| n == bridge) {
            return Some(ino);
        }
    }
    None
}

/// Whether any process still holds the namespace with inode `ino`: as its
/// namespace, through a descriptor, or a mount (an nsfs bind).
fn ns_held(ino: u64) -> Vec<String> {
    let tag = format!("net:[{ino}]");
    let mut by = Vec::new();
    for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = p.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if std::fs::read_link(p.path().join("ns/net")).is_ok_and(|t| t.to_string_lossy() == tag) {
            by.push(format!("process {pid}"));
        }
        for fd in std::fs::read_dir(p.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if std::fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy() == tag) {
                let what = |f: &str| {
                    std::fs::read_to_string(p.path().join(f))
                        .unwrap_or_default()
                        .lines()
                        .find(|l| f != "status" || l.starts_with("State:"))
                        .unwrap_or("")
                        .to_string()
                };
                by.push(format!(
                    "fd {} of process {pid} ({}, {})",
                    fd.file_name().to_string_lossy(),
                    what("comm"),
                    what("status")
                ));
            }
        }
    }
    if std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| m.contains(&tag)) {
        by.push("a mount".into());
    }
    by
}

/// UDP sockets bound to `port` in the named namespace `ns` (a VXLAN
/// device's socket is one).
fn udp_bound(ns: &str, port: u16) -> usize {
    let ns = conlink_net::Netns::open(format!("/run/netns/{ns}")).expect("open host netns");
    // /proc/thread-self: /proc/net would be the main thread's namespace.
    let table = ns
        .run(|| std::fs::read_to_string("/proc/thread-self/net/udp"))
        .expect("enter host netns")
        .expect("read /proc/net/udp");
    let want = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|local| local.ends_with(&want))
        })
        .count()
}

/// Two swarm nodes, one stack holding the lab and conlink as a global
/// service: a conlink task on each node, replicas spread over both ping
/// each other through the stretched bridge with their slots' addresses,
/// a patch across the nodes carries a BPDU both ways; each conlink's
/// bridges and tunnels live in an anonymous namespace of its own, not in
/// the node's; host 2's conlink killed takes its namespace with it, host
/// 1's links stay, and the task swarm starts again wires host 2 from
/// nothing; `docker stack rm` leaves nothing on either node (no
/// tunnel, no tunnel socket, no marked interface, nothing holding
/// conlink's namespace). Before the swarm: without SYS_ADMIN conlink
/// fails at start, saying what to add.
#[test]
fn conlink_as_a_global_service_of_the_stack() {
    require_docker();
    let img = TestImage::build();
    let hs = Hosts::new_shared("gs", 2);
    hs.load_image(&img.0);
    let ex = examples();

    // 0. On the host network without SYS_ADMIN: a clear error at start.
    let t0 = Instant::now();
    let out = hs.hosts[0].docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--cap-add",
        "NET_ADMIN",
        "-v",
        &format!("{}:/var/run/docker.sock", hs.hosts[0].sock.display()),
        "-v",
        &format!("{}:/lab:ro", ex.display()),
        &img.0,
        "conlink",
        "--compose-file",
        "/lab/stack.yaml",
    ]);
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "conlink ran without SYS_ADMIN: {err}"
    );
    assert!(
        err.contains("cap_add: [NET_ADMIN, SYS_ADMIN]`): unshare netns")
            && err.matches("Operation not permitted").count() == 1,
        "unclear error without SYS_ADMIN: {err}"
    );
    eprintln!(
        "without SYS_ADMIN ({:.1} s): {}",
        t0.elapsed().as_secs_f64(),
        err.trim()
    );

    hs.swarm();
    for i in 0..2 {
        let id = hs.node_id(i);
        hs.hosts[0].docker_ok(&[
            "node",
            "update",
            "--label-add",
            &format!("lab-side={}", ["a", "b"][i]),
            &id,
        ]);
    }
    let by_node = hs.node_dirs();
    let stack = format!("gs{}", hs.suf);
    let _logs = Logs(&hs, format!("{stack}_conlink."));
    let t_deploy = Instant::now();
    let out = run(Command::new("timeout")
        .arg("120")
        .arg("docker")
        .arg("-H")
        .arg(format!("unix://{}", hs.hosts[0].sock.display()))
        .env("LAB_IMAGE", test_image())
        .env("CONLINK_IMAGE", &img.0)
        // Each node's own engine socket and sandbox directory, through
        // the swarm's template (see Hosts::node_dirs).
        .env(
            "ENGINE_SOCKET",
            by_node
                .join("{{.Node.ID}}/docker.sock")
                .display()
                .to_string(),
        )
        .env(
            "ENGINE_NETNS",
            by_node.join("{{.Node.ID}}/netns").display().to_string(),
        )
        .args(["stack", "deploy", "--resolve-image", "never", "-c"])
        .arg(ex.join("stack.yaml"))
        .arg("-c")
        .arg(ex.join("conlink.yaml"))
        .arg(&stack));
    assert!(out.status.success(), "stack deploy: {}", text(&out.stderr));

    // 1. One conlink task per node.
    let t0 = Instant::now();
    let cl = loop {
        let mut t = tasks(&hs, &format!("{stack}_conlink."));
        if t.len() == 2 && t[0].0 != t[1].0 {
            // By host (tasks come sorted by name, i.e. by node id): cl[i]
            // and own_ns[i] are host i's.
            t.sort_by_key(|x| x.0);
            break t;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "conlink tasks not running on both nodes: {t:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };

    // 2. Replicas spread over both nodes, addresses from their slots, all
    //    pairs ping across the stretched bridge.
    let nodes = wait_tasks(&hs, &format!("{stack}_node."), 4, "lan0", true);
    let on: Vec<usize> = nodes.iter().map(|t| t.0).collect();
    assert!(
        on.contains(&0) && on.contains(&1),
        "tasks not spread: {nodes:?}"
    );
    for (i, c, name) in &nodes {
        assert_eq!(
            addr_of(&hs.hosts[*i], c, "lan0").as_deref(),
            Some(format!("10.90.0.{}/24", slot(name)).as_str()),
            "{name}"
        );
    }
    for (i, c, name) in &nodes {
        for s in 1..=4 {
            assert!(
                ping(&hs.hosts[*i], c, &format!("10.90.0.{s}")),
                "{name} cannot ping 10.90.0.{s}"
            );
        }
    }
    eprintln!(
        "bench: stack deploy (conlink global + 4 replicas, 2 nodes) to all-pairs ping: {:.2} s",
        t_deploy.elapsed().as_secs_f64()
    );

    // 3. Each conlink: its two mesh tunnels (s1, p1) flood to the other
    //    node; bridges and tunnels are in its own namespace, not the
    //    node's, whose only trace is the tunnels' UDP sockets.
    let mut own_ns = Vec::new();
    for (i, id, name) in &cl {
        let h = &hs.hosts[*i];
        let st = h.docker_ok(&["exec", id, "conlink", "status", "--json"]);
        let st: serde_json::Value = serde_json::from_str(&st).expect("status json");
        let mesh: Vec<&serde_json::Value> = st["tunnels"]
            .as_array()
            .expect("tunnels")
            .iter()
            .filter(|t| t["name"].as_str().is_some_and(|n| n.starts_with("vxlan-")))
            .collect();
        assert_eq!(mesh.len(), 2, "{name}: tunnels for s1 and p1: {st}");
        for t in &mesh {
            assert_eq!(t["remote"], hs.hosts[1 - i].addr.as_str(), "{name}: {t}");
        }
        let host_links = links(&h.ns);
        assert!(
            !host_links
                .iter()
                .any(|l| l == "s1" || l == "p1" || l.starts_with("vxlan-")),
            "host {i}: conlink's devices in the node's namespace: {host_links:?}"
        );
        assert!(
            udp_bound(&h.ns, 8472) >= 1,
            "host {i}: no socket of the tunnels"
        );
        let pid = h.docker_ok(&["inspect", "-f", "{{.State.Pid}}", id]);
        let ino = conlink_ns_of(pid.trim(), "s1")
            .unwrap_or_else(|| panic!("{name}: no namespace with bridge s1 among its descriptors"));
        assert_ne!(ino, ns_inode(&format!("/run/netns/{}", h.ns)));
        own_ns.push(ino);
    }

    // 4. The patch across the nodes carries a BPDU, both ways.
    let pa = wait_tasks(&hs, &format!("{stack}_pa."), 1, "lan0", false);
    let pb = wait_tasks(&hs, &format!("{stack}_pb."), 1, "lan0", false);
    assert_eq!((pa[0].0, pb[0].0), (0, 1), "placement");
    let fa = packet_socket(&sandbox(&hs.hosts[0], &pa[0].1), "lan0");
    let fb = packet_socket(&sandbox(&hs.hosts[1], &pb[0].1), "lan0");
    assert!(
        carried(&fa, &fb, &bpdu(b"GSBPDU01"), b"GSBPDU01"),
        "BPDU a->b not carried"
    );
    assert!(
        carried(&fb, &fa, &bpdu(b"GSBPDU02"), b"GSBPDU02"),
        "BPDU b->a not carried"
    );
    drop((fa, fb));

    // 5. Host 2's conlink task is killed (SIGKILL: no teardown at all):
    //    the kernel takes its namespace and everything in it; host 1's
    //    links stay as they are; swarm starts a new task, which wires host
    //    2's tasks again from nothing (nothing to adopt, nothing left over).
    let h1_tasks: Vec<&(usize, String, String)> = nodes.iter().filter(|t| t.0 == 0).collect();
    let idx = |c: &str| hs.hosts[0].docker_ok(&["exec", c, "cat", "/sys/class/net/lan0/ifindex"]);
    let before: Vec<String> = h1_tasks.iter().map(|t| idx(&t.1)).collect();
    let (_, old2, _) = cl.iter().find(|t| t.0 == 1).expect("conlink on host 2");
    let t_kill = Instant::now();
    hs.hosts[1].docker_ok(&["kill", old2]);
    let t0 = Instant::now();
    while !ns_held(own_ns[1]).is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "host 2: killed conlink's namespace still held by {:?}",
            ns_held(own_ns[1])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let t0 = Instant::now();
    let new2 = loop {
        let t: Vec<_> = tasks(&hs, &format!("{stack}_conlink."))
            .into_iter()
            .filter(|t| t.0 == 1 && &t.1 != old2)
            .collect();
        if let Some(t) = t.into_iter().next() {
            break t;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "swarm did not restart host 2's conlink"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    for (i, c, name) in &nodes {
        for s in 1..=4 {
            assert!(
                ping(&hs.hosts[*i], c, &format!("10.90.0.{s}")),
                "after host 2's conlink restarted: {name} cannot ping 10.90.0.{s}"
            );
        }
    }
    eprintln!(
        "bench: host 2's conlink task killed to all-pairs ping again: {:.2} s",
        t_kill.elapsed().as_secs_f64()
    );
    let after: Vec<String> = h1_tasks.iter().map(|t| idx(&t.1)).collect();
    assert_eq!(before, after, "host 1's links were re-made");
    let pid = hs.hosts[1].docker_ok(&["inspect", "-f", "{{.State.Pid}}", &new2.1]);
    own_ns[1] = conlink_ns_of(pid.trim(), "s1").expect("restarted conlink's namespace");

    // 6. The stack goes, conlink with it: nothing is left on either node.
    let t_rm = Instant::now();
    hs.hosts[0].docker_ok(&["stack", "rm", &stack]);
    let t0 = Instant::now();
    while !tasks(&hs, &format!("{stack}_")).is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "stack tasks still running"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    for (i, h) in hs.hosts.iter().enumerate() {
        let t0 = Instant::now();
        loop {
            let held = ns_held(own_ns[i]);
            let sockets = udp_bound(&h.ns, 8472);
            let left: Vec<String> = links(&h.ns)
                .into_iter()
                .filter(|l| l.starts_with("vxlan-"))
                .chain(marked(&h.ns))
                .collect();
            if held.is_empty() && sockets == 0 && left.is_empty() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "host {i} after stack rm: conlink's namespace held by {held:?}, \
                 {sockets} tunnel socket(s), interfaces {left:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    eprintln!(
        "bench: stack rm to nothing left on either node: {:.2} s",
        t_rm.elapsed().as_secs_f64()
    );
}
