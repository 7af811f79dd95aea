//! Multi-host tests on one machine: "hosts" are network namespaces with
//! their own docker engines on an underlay (see `common/hosts.rs`), one
//! conlink per host. Real engines, a real swarm, real pings and frames.
//! Needs root, dockerd/docker (docker.io), compose v2 and the busybox test
//! image (`scripts/install-deps && scripts/build-images`).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::hosts::{
    addr_of, bpdu, carried, ifindex, links, marked, packet_socket, ping, require_docker, run,
    sandbox, slot, tasks, test_image, text, wait_tasks, Host, HostConlink, Hosts,
};

/// The example stack (examples/swarm/stack.yaml) with the test image.
fn stack_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/swarm/stack.yaml")
}

/// Two swarm nodes, one stack: replicas spread over both ping each other
/// through a stretched conlink bridge with addresses from their task
/// slots; a patch across the hosts carries a BPDU; killing one host's
/// conlink leaves the other host's links alone (same ifindex, pings go
/// on); draining a node moves its tasks and their links follow with the
/// same addresses; removing the stack leaves no link or tunnel, stopping
/// the conlinks nothing at all.
#[test]
fn swarm_stack_across_two_nodes() {
    require_docker();
    let hs = Hosts::new("sw", 2);
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
    let stack = format!("lab{}", hs.suf);
    let file = stack_file();
    let peers_flag = ["--swarm"];
    let mut cl: Vec<HostConlink> = (0..2)
        .map(|i| {
            HostConlink::start(
                &hs.hosts[i],
                &format!("c{i}{}", hs.suf),
                &file,
                &stack,
                &peers_flag,
            )
        })
        .collect();
    for c in &mut cl {
        c.wait_for("multi-host: peers now", 1, Duration::from_secs(30));
    }
    let t_deploy = Instant::now();
    let out = run(Command::new("timeout")
        .arg("120")
        .arg("docker")
        .arg("-H")
        .arg(format!("unix://{}", hs.hosts[0].sock.display()))
        .env("LAB_IMAGE", test_image())
        .args(["stack", "deploy", "-c"])
        .arg(&file)
        .arg(&stack));
    assert!(out.status.success(), "stack deploy: {}", text(&out.stderr));

    // 1. Replicas spread over both nodes, addresses from their slots, all
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
        "bench: swarm deploy (4 replicas, 2 nodes) to all-pairs ping: {:.2} s",
        t_deploy.elapsed().as_secs_f64()
    );
    // One tunnel per host for s1, flooding to the other host only.
    for (i, c) in cl.iter().enumerate() {
        let vx: Vec<String> = links(&c.own_ns)
            .into_iter()
            .filter(|l| l.starts_with("vxlan-"))
            .collect();
        assert_eq!(vx.len(), 2, "host {i}: tunnels for s1 and p1: {vx:?}");
    }

    // 2. The patch across the hosts carries a BPDU, both ways.
    let pa = wait_tasks(&hs, &format!("{stack}_pa."), 1, "lan0", false);
    let pb = wait_tasks(&hs, &format!("{stack}_pb."), 1, "lan0", false);
    assert_eq!((pa[0].0, pb[0].0), (0, 1), "placement");
    let fa = packet_socket(&sandbox(&hs.hosts[0], &pa[0].1), "lan0");
    let fb = packet_socket(&sandbox(&hs.hosts[1], &pb[0].1), "lan0");
    assert!(
        carried(&fa, &fb, &bpdu(b"MHBPDU01"), b"MHBPDU01"),
        "BPDU a->b not carried"
    );
    assert!(
        carried(&fb, &fa, &bpdu(b"MHBPDU02"), b"MHBPDU02"),
        "BPDU b->a not carried"
    );

    // 3. Host 2's conlink dies: host 1's tasks keep their links (same
    //    ifindex) and still ping each other.
    let h1_tasks: Vec<&(usize, String, String)> = nodes.iter().filter(|t| t.0 == 0).collect();
    let before: Vec<String> = h1_tasks
        .iter()
        .map(|t| ifindex(&hs.hosts[0], &t.1, "lan0"))
        .collect();
    // Host 2's tunnels, to see them adopted (same device) after restart.
    let vx_index = |ns: &str| -> Vec<(String, String)> {
        common::ip_json(ns, &["link", "show"])
            .as_array()
            .expect("list")
            .iter()
            .filter(|l| {
                l["ifname"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("vxlan-"))
            })
            .map(|l| {
                (
                    l["ifname"].as_str().unwrap_or("").to_string(),
                    l["ifindex"].to_string(),
                )
            })
            .collect()
    };
    let tunnels2 = vx_index(&cl[1].own_ns);
    assert_eq!(tunnels2.len(), 2, "{tunnels2:?}");
    cl[1].kill9();
    for (_, c, name) in &h1_tasks {
        for (_, _, other) in &h1_tasks {
            let s = slot(other);
            assert!(
                ping(&hs.hosts[0], c, &format!("10.90.0.{s}")),
                "{name} lost 10.90.0.{s}"
            );
        }
    }
    let after: Vec<String> = h1_tasks
        .iter()
        .map(|t| ifindex(&hs.hosts[0], &t.1, "lan0"))
        .collect();
    assert_eq!(before, after, "host 1's links were re-made");
    // Host 2's conlink comes back: it removes its leftovers and re-wires.
    cl[1].restart(&hs.hosts[1], &file, &stack, &peers_flag);
    cl[1].wait_for("All links connected", 1, Duration::from_secs(60));
    assert_eq!(
        vx_index(&cl[1].own_ns),
        tunnels2,
        "host 2's tunnels were not adopted"
    );
    assert!(
        !cl[1].log().iter().any(|l| l.contains("tunnel vxlan-")),
        "tunnels re-made or changed after restart: {:?}",
        cl[1].log()
    );
    for (i, c, name) in &nodes {
        for s in 1..=4 {
            assert!(
                ping(&hs.hosts[*i], c, &format!("10.90.0.{s}")),
                "after restart: {name} cannot ping 10.90.0.{s}"
            );
        }
    }

    // 4. Drain host 2: its node tasks move to host 1 with their slots'
    //    addresses; host 2 keeps no links for them.
    let id2 = hs.node_id(1);
    let t_drain = Instant::now();
    hs.hosts[0].docker_ok(&["node", "update", "--availability", "drain", &id2]);
    let t0 = Instant::now();
    let moved = loop {
        let t = tasks(&hs, &format!("{stack}_node."));
        if t.len() == 4
            && t.iter().all(|x| x.0 == 0)
            && t.iter()
                .all(|(i, c, _)| addr_of(&hs.hosts[*i], c, "lan0").is_some())
        {
            break t;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "tasks did not move to host 1: {t:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    for (i, c, name) in &moved {
        assert_eq!(
            addr_of(&hs.hosts[*i], c, "lan0").as_deref(),
            Some(format!("10.90.0.{}/24", slot(name)).as_str()),
            "{name} after drain"
        );
        for s in 1..=4 {
            assert!(
                ping(&hs.hosts[*i], c, &format!("10.90.0.{s}")),
                "after drain: {name} cannot ping 10.90.0.{s}"
            );
        }
    }
    eprintln!(
        "bench: drain to moved tasks pinging with their addresses: {:.2} s",
        t_drain.elapsed().as_secs_f64()
    );
    let left2: Vec<String> = links(&cl[1].own_ns)
        .into_iter()
        .filter(|l| l.starts_with("node_"))
        .collect();
    assert!(
        left2.is_empty(),
        "host 2 kept links of moved tasks: {left2:?}"
    );

    // 5. Host 2 leaves the swarm: host 1's conlink drops the peer, and
    //    with no peer left no tunnel is wanted (its tasks keep their links).
    hs.hosts[0].docker_ok(&["node", "demote", &id2]);
    hs.hosts[1].docker_ok(&["swarm", "leave", "--force"]);
    let t0 = Instant::now();
    loop {
        let st = hs.hosts[0].docker_ok(&["node", "inspect", "-f", "{{.Status.State}}", &id2]);
        if st.trim() == "down" {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "host 2 not down: {st}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    hs.hosts[0].docker_ok(&["node", "rm", "--force", &id2]);
    cl[0].wait_for("multi-host: peers now none", 1, Duration::from_secs(20));
    let t0 = Instant::now();
    while links(&cl[0].own_ns).iter().any(|l| l.starts_with("vxlan-")) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "host 1 kept tunnels without peers"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, c, name) = &moved[0];
    assert!(
        ping(&hs.hosts[0], c, "10.90.0.4"),
        "{name} lost its local links with the peer"
    );

    // 6. The stack goes: no link, no tunnel on any host; then conlink
    //    stops and leaves nothing at all.
    hs.hosts[0].docker_ok(&["stack", "rm", &stack]);
    let t0 = Instant::now();
    while !tasks(&hs, &format!("{stack}_")).is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "stack tasks still running"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    for (i, c) in cl.iter().enumerate() {
        let t0 = Instant::now();
        loop {
            let left: Vec<String> = links(&c.own_ns)
                .into_iter()
                .filter(|l| l != "lo" && l != "s1")
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "host {i} keeps {left:?} after stack rm"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for (i, c) in cl.iter_mut().enumerate() {
        assert!(c.stop(), "conlink {i} exit status");
        // The restarted conlink (host 2) found its namespace there and
        // leaves it (it did not create it), empty; the other removes its own.
        let ns_left = Path::new(&format!("/run/netns/{}", c.own_ns)).exists();
        if i == 0 {
            assert!(!ns_left, "host {i}: conlink namespace left");
        } else if ns_left {
            assert_eq!(
                links(&c.own_ns),
                vec!["lo".to_string()],
                "host {i}: interfaces left"
            );
        }
        assert!(
            marked(&hs.hosts[i].ns).is_empty(),
            "host {i}: marked interfaces left"
        );
    }
}

/// Plain multi-host without Swarm: two engines, one compose project on
/// each (service a on host 1, b on host 2), two conlinks given the same
/// `--peer` list: a and b ping each other over the stretched bridge; when
/// b goes and comes back, host 2's tunnel stays the same device.
#[test]
fn peer_mode_two_engines_without_swarm() {
    require_docker();
    let hs = Hosts::new("pe", 2);
    let img = test_image();
    let file = hs.dir().join("compose.yaml");
    std::fs::write(
        &file,
        [
            "services:".to_string(),
            "  a:".into(),
            format!("    image: {img}"),
            "    command: [sleep, \"1000000\"]".into(),
            "    network_mode: none".into(),
            "    stop_signal: SIGKILL".into(),
            "  b:".into(),
            format!("    image: {img}"),
            "    command: [sleep, \"1000000\"]".into(),
            "    network_mode: none".into(),
            "    stop_signal: SIGKILL".into(),
            "x-network:".into(),
            "  bridges:".into(),
            "    - {bridge: s1, mode: linux}".into(),
            "  links:".into(),
            "    - {service: a, bridge: s1, ip: 10.91.0.1/24, mtu: 1450}".into(),
            "    - {service: b, bridge: s1, ip: 10.91.0.2/24, mtu: 1450}".into(),
        ]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>(),
    )
    .expect("write compose file");
    let project = format!("pe{}", hs.suf);
    let peers = format!("{},{}", hs.hosts[0].addr, hs.hosts[1].addr);
    let mut cl: Vec<HostConlink> = (0..2)
        .map(|i| {
            HostConlink::start(
                &hs.hosts[i],
                &format!("p{i}{}", hs.suf),
                &file,
                &project,
                &["--peer", &peers],
            )
        })
        .collect();
    let compose = |h: &Host, args: &[&str]| {
        let out = run(Command::new("timeout")
            .arg("120")
            .arg("docker")
            .env("DOCKER_HOST", format!("unix://{}", h.sock.display()))
            .args(["compose", "-p", &project, "-f"])
            .arg(&file)
            .args(args));
        assert!(
            out.status.success(),
            "compose {args:?}: {}",
            text(&out.stderr)
        );
    };
    compose(&hs.hosts[0], &["up", "-d", "a"]);
    let a = format!("{project}-a-1");
    let b = format!("{project}-b-1");
    cl[0].wait_for(&format!("{a}: 1 link(s) ready"), 1, Duration::from_secs(60));
    // Task start to cross-host ping: from `compose up` of b returning (its
    // container runs) to the first ping from a (on host 1) answered by b.
    let t_up = Instant::now();
    compose(&hs.hosts[1], &["up", "-d", "b"]);
    let t_started = Instant::now();
    let t0 = Instant::now();
    while !hs.hosts[0]
        .docker(&["exec", &a, "ping", "-c1", "-W1", "10.91.0.2"])
        .status
        .success()
    {
        assert!(t0.elapsed() < Duration::from_secs(20), "a never reached b");
    }
    eprintln!(
        "bench: container start to first cross-host ping: {:.0} ms (compose up itself {:.0} ms)",
        t_started.elapsed().as_secs_f64() * 1e3,
        (t_started - t_up).as_secs_f64() * 1e3
    );
    for c in &mut cl {
        c.wait_for("All links connected", 1, Duration::from_secs(60));
    }
    assert!(
        ping(&hs.hosts[0], &a, "10.91.0.2"),
        "a cannot ping b across hosts"
    );
    assert!(
        ping(&hs.hosts[1], &b, "10.91.0.1"),
        "b cannot ping a across hosts"
    );
    // Each host floods to the other one only (its own address dropped).
    for (i, c) in cl.iter().enumerate() {
        let vx: Vec<String> = links(&c.own_ns)
            .into_iter()
            .filter(|l| l.starts_with("vxlan-"))
            .collect();
        assert_eq!(vx.len(), 1, "host {i}: {vx:?}");
        let fdb =
            run(Command::new("bridge").args(["-n", &c.own_ns, "-j", "fdb", "show", "dev", &vx[0]]));
        let v: serde_json::Value = serde_json::from_slice(&fdb.stdout).expect("bridge -j");
        let dsts: Vec<&str> = v
            .as_array()
            .expect("list")
            .iter()
            .filter(|e| e["mac"] == "00:00:00:00:00:00")
            .filter_map(|e| e["dst"].as_str())
            .collect();
        assert_eq!(
            dsts,
            vec![hs.hosts[1 - i].addr.as_str()],
            "host {i} flood list"
        );
        let l = common::ip_json(&c.own_ns, &["-d", "link", "show", "dev", &vx[0]]);
        assert_eq!(l[0]["mtu"], 1450, "tunnel MTU = underlay 1500 - 50");
        assert_eq!(l[0]["master"], "s1");
        // `conlink status` lists the mesh tunnel with its peer.
        let out = run(Command::new(env!("CARGO_BIN_EXE_conlink"))
            .args(["status", "--json", "--socket"])
            .arg(format!("/run/conlink/{}.sock", c.own_ns)));
        assert!(out.status.success(), "status: {}", text(&out.stderr));
        let st: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
        let t = st["tunnels"]
            .as_array()
            .expect("tunnels")
            .iter()
            .find(|t| t["name"] == vx[0].as_str())
            .unwrap_or_else(|| panic!("host {i}: {} not in status: {st}", vx[0]));
        assert_eq!(t["remote"], hs.hosts[1 - i].addr.as_str(), "{t}");
        assert_eq!(t["bridge"], "s1", "{t}");
    }
    // b goes: its link goes, host 2's tunnel stays the same device (the
    // mesh depends on the config and the peers only), and a comes back
    // to a working bridge when b is started again.
    let vx1 = links(&cl[1].own_ns)
        .into_iter()
        .find(|l| l.starts_with("vxlan-"))
        .expect("host 2 tunnel");
    let idx = |ns: &str, dev: &str| {
        common::ip_json(ns, &["link", "show", "dev", dev])[0]["ifindex"].clone()
    };
    let before = idx(&cl[1].own_ns, &vx1);
    compose(&hs.hosts[1], &["down", "--timeout", "1"]);
    let t0 = Instant::now();
    while links(&cl[1].own_ns).iter().any(|l| l.starts_with("b_1-")) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "host 2 kept b's link"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(idx(&cl[1].own_ns, &vx1), before, "host 2's tunnel re-made");
    compose(&hs.hosts[1], &["up", "-d", "b"]);
    assert!(
        ping(&hs.hosts[0], &a, "10.91.0.2"),
        "a cannot ping b after b came back"
    );
    compose(&hs.hosts[1], &["down", "--timeout", "1"]);
    compose(&hs.hosts[0], &["down", "--timeout", "1"]);
    for (i, c) in cl.iter_mut().enumerate() {
        assert!(c.stop(), "conlink {i} exit status");
        assert!(
            marked(&hs.hosts[i].ns).is_empty(),
            "host {i}: marked interfaces left"
        );
    }
}
