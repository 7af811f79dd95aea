//! The per-peer multi-host mesh (`--mesh-tunnel vxlan-p2p|geneve`) and
//! underlay MTU discovery, for real, without docker: every "host" is a
//! network namespace joined to the others by an underlay bridge (in a
//! namespace of its own), each runs the real conlink binary with the netns
//! runtime and `--peer`, and its "containers" are namespaces too.
//!
//! * three hosts with `vxlan-p2p`: one isolated device per peer, all pairs
//!   ping, and one broadcast reaches every other host exactly once and
//!   never comes back (split horizon: no loop);
//! * `geneve` on a kernel without geneve: a clear error naming the missing
//!   feature, and nothing left behind (on a kernel with geneve, the same
//!   run must build the isolated devices instead);
//! * without `--underlay-mtu` the tunnel MTU follows the underlay's (9000
//!   → 8950, 1400 → 1350 plus the MTU warning).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ip_json, link_names, netns_list, ping, prefix, require_root, Conlink};

/// `ip ARGS`, which must succeed.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `n` host namespaces `{p}hN` with underlay addresses 192.168.213.N/24
/// on `ul` (MTU `mtu`), joined by bridge `ub` in namespace `{p}u`.
/// Everything is removed by exact name on drop.
struct Underlay {
    ns: String,
    hosts: Vec<String>,
}

impl Underlay {
    fn new(p: &str, n: usize, mtu: u32) -> Underlay {
        let u = Underlay {
            ns: format!("{p}u"),
            hosts: (1..=n).map(|i| format!("{p}h{i}")).collect(),
        };
        let m = mtu.to_string();
        ip(&["netns", "add", &u.ns]);
        ip(&[
            "-n", &u.ns, "link", "add", "ub", "mtu", &m, "type", "bridge",
        ]);
        ip(&["-n", &u.ns, "link", "set", "ub", "up"]);
        for (i, h) in u.hosts.iter().enumerate() {
            ip(&["netns", "add", h]);
            ip(&["-n", h, "link", "set", "lo", "up"]);
            let port = format!("p{}", i + 1);
            ip(&[
                "-n", &u.ns, "link", "add", &port, "mtu", &m, "type", "veth", "peer", "name", "ul",
                "mtu", &m, "netns", h,
            ]);
            ip(&["-n", &u.ns, "link", "set", &port, "master", "ub", "up"]);
            let addr = format!("{}/24", Self::addr(i + 1));
            ip(&["-n", h, "addr", "add", &addr, "dev", "ul"]);
            ip(&["-n", h, "link", "set", "ul", "up"]);
        }
        u
    }

    /// Underlay address of host `i` (1-based).
    fn addr(i: usize) -> String {
        format!("192.168.213.{i}")
    }

    /// The `--peer` list every host gets (its own address included).
    fn peers(&self) -> String {
        (1..=self.hosts.len())
            .map(Self::addr)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for Underlay {
    fn drop(&mut self) {
        for n in self.hosts.iter().chain(std::iter::once(&self.ns)) {
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `ip -d -j link show dev DEV` in `ns`, the one object.
fn link(ns: &str, dev: &str) -> serde_json::Value {
    ip_json(ns, &["-d", "-s", "link", "show", "dev", dev])[0].clone()
}

/// An nftables ingress counter on `lan0` in container namespace `ns`
/// for the test's broadcast ping (to 10.213.0.255, broadcast MAC).
fn count_broadcasts(ns: &str) {
    let rules = r#"table netdev clt {
  counter bc { }
  chain in {
    type filter hook ingress device "lan0" priority 0;
    ether daddr ff:ff:ff:ff:ff:ff ip daddr 10.213.0.255 icmp type echo-request counter name "bc"
  }
}
"#;
    let mut c = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("run nft");
    use std::io::Write;
    c.stdin.take().unwrap().write_all(rules.as_bytes()).unwrap();
    assert!(c.wait().unwrap().success(), "nft counter in {ns}");
}

/// The packets the counter of [`count_broadcasts`] saw.
fn broadcasts(ns: &str) -> u64 {
    let out = Command::new("ip")
        .args([
            "netns", "exec", ns, "nft", "-j", "list", "counter", "netdev", "clt", "bc",
        ])
        .output()
        .expect("run nft");
    assert!(out.status.success(), "nft list counter in {ns}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("nft -j is JSON");
    v["nftables"]
        .as_array()
        .and_then(|a| a.iter().find_map(|o| o["counter"]["packets"].as_u64()))
        .unwrap_or_else(|| panic!("no counter in {v}"))
}

/// The per-peer device names (`v…`/`g…`, 15 characters, remote set) in
/// conlink's namespace `own`, by their remote.
fn peer_devices(own: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = ip_json(own, &["-d", "link", "show"])
        .as_array()
        .expect("list")
        .iter()
        .filter(|l| {
            matches!(
                l["linkinfo"]["info_kind"].as_str(),
                Some("vxlan") | Some("geneve")
            )
        })
        .map(|l| {
            (
                l["linkinfo"]["info_data"]["remote"]
                    .as_str()
                    .unwrap_or("-")
                    .to_string(),
                l["ifname"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Waits (bounded) until `f` holds.
fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The config of host `i`: its one container `{p}c{i}` on bridge s1.
fn host_config(p: &str, i: usize) -> String {
    format!(
        "links:\n  - {{container: {p}c{i}, dev: lan0, bridge: s1, ip: 10.213.0.{i}/24, mtu: 1400, ipv6: false}}\n"
    )
}

#[test]
fn vxlan_p2p_mesh_of_three_hosts_reaches_all_pairs_without_a_loop() {
    require_root();
    let p = prefix();
    let before = netns_list(&p);
    let under = Underlay::new(&p, 3, 1500);
    let peers = under.peers();
    let mut conlinks: Vec<Conlink> = (1..=3)
        .map(|i| {
            Conlink::start_in(
                &under.hosts[i - 1],
                &format!("{p}{i}"),
                &host_config(&p, i),
                &[
                    "--peer",
                    &peers,
                    "--mesh-tunnel",
                    "vxlan-p2p",
                    "--compose-project",
                    "lab",
                ],
            )
        })
        .collect();
    for c in &mut conlinks {
        c.wait_connected();
        c.wait_for("this host is 192.168.213.", 1, Duration::from_secs(5));
    }
    // Each host: one vxlan device per peer, remote = that peer, isolated
    // port of s1, up, MTU 1450; the VNI is the pair's, equal on both ends.
    let mut vni_of_pair = std::collections::BTreeMap::new();
    for (i, c) in conlinks.iter().enumerate() {
        let devs = peer_devices(&c.own_ns);
        let want: Vec<String> = (1..=3)
            .filter(|j| *j != i + 1)
            .map(Underlay::addr)
            .collect();
        let remotes: Vec<String> = devs.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(remotes, want, "host {}: {devs:?}", i + 1);
        for (remote, name) in &devs {
            let l = link(&c.own_ns, name);
            assert_eq!(name.len(), 15, "{name}");
            assert_eq!(l["master"], "s1", "{l}");
            assert_eq!(l["mtu"], 1450, "{l}");
            assert_eq!(l["linkinfo"]["info_slave_data"]["isolated"], true, "{l}");
            assert!(
                l["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
                "{l}"
            );
            let vni = l["linkinfo"]["info_data"]["id"].as_u64().unwrap();
            let j: usize = remote.rsplit('.').next().unwrap().parse().unwrap();
            let pair = (j.min(i + 1), j.max(i + 1));
            let prev = vni_of_pair.insert(pair, vni);
            assert!(
                prev.is_none_or(|v| v == vni),
                "pair {pair:?}: {prev:?} vs {vni}"
            );
        }
    }
    assert_eq!(vni_of_pair.len(), 3);
    // All pairs ping.
    for i in 1..=3 {
        for j in 1..=3 {
            if i != j {
                let (from, to) = (format!("{p}c{i}"), format!("10.213.0.{j}"));
                assert!(ping(&from, &to), "{from} cannot reach {to}");
            }
        }
    }
    // One broadcast from c1: c2 and c3 each receive it exactly once, and
    // c1 never gets it back. Host 2 passing it on to host 3 (or 3 to 2)
    // would give c3 (c2) a second copy; a loop would give everyone an
    // endless stream. Counted by an nftables ingress counter in each
    // container matching only that broadcast (the bridges' own IPv6
    // traffic is flooded too, so interface counters would not do); the
    // isolated ports split the horizon.
    for j in 1..=3 {
        count_broadcasts(&format!("{p}c{j}"));
    }
    let st = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("{p}c1"),
            "ping",
            "-b",
            "-c",
            "1",
            "-W",
            "1",
            "10.213.0.255",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run ping -b");
    // (Nobody answers a broadcast ping by default: the exit status is no
    // measure; the counters are.)
    let _ = st;
    std::thread::sleep(Duration::from_millis(1500));
    let got = [1, 2, 3].map(|j| broadcasts(&format!("{p}c{j}")));
    assert_eq!(
        got,
        [0, 1, 1],
        "one broadcast from c1: copies received by c1, c2, c3"
    );
    for c in &mut conlinks {
        assert!(c.stop(), "conlink exited with an error");
    }
    drop(under);
    wait_until("namespaces gone", Duration::from_secs(10), || {
        netns_list(&p) == before
    });
}

/// Whether this kernel can make a geneve device (probed in `ns`).
fn kernel_has_geneve(ns: &str) -> bool {
    let ok = Command::new("ip")
        .args([
            "-n", ns, "link", "add", "gprobe0", "type", "geneve", "id", "5", "remote", "10.0.0.2",
        ])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        ip(&["-n", ns, "link", "del", "gprobe0"]);
    }
    ok
}

#[test]
fn geneve_mesh_without_kernel_geneve_fails_clearly_and_leaves_nothing() {
    require_root();
    let p = prefix();
    let before = netns_list(&p);
    let under = Underlay::new(&p, 2, 1500);
    let host = under.hosts[0].clone();
    let links_before = link_names(&host);
    let has = kernel_has_geneve(&host);
    let mut c = Conlink::start_in(
        &host,
        &format!("{p}1"),
        &host_config(&p, 1),
        &[
            "--peer",
            &under.peers(),
            "--mesh-tunnel",
            "geneve",
            "--compose-project",
            "lab",
        ],
    );
    if has {
        // A kernel with geneve: the isolated per-peer device is made.
        c.wait_connected();
        let devs = peer_devices(&c.own_ns);
        assert_eq!(devs.len(), 1, "{devs:?}");
        assert_eq!(devs[0].0, Underlay::addr(2));
        let l = link(&c.own_ns, &devs[0].1);
        assert_eq!(l["linkinfo"]["info_kind"], "geneve");
        assert_eq!(l["linkinfo"]["info_data"]["port"], 6081, "{l}");
        assert_eq!(l["linkinfo"]["info_slave_data"]["isolated"], true, "{l}");
        assert!(c.stop());
    } else {
        let t0 = Instant::now();
        let ok = loop {
            if let Some(st) = c.try_exit() {
                break st;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "conlink did not exit"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(!ok, "conlink must fail when it cannot build the mesh");
        // The reader thread drains what conlink wrote before it exited.
        wait_until("the error in the log", Duration::from_secs(5), || {
            c.log()
                .iter()
                .any(|l| l.contains("module geneve not loaded"))
        });
        let log = c.log().join("\n");
        assert!(
            log.contains("kernel lacks geneve support (module geneve not loaded)"),
            "the error names the missing feature:\n{log}"
        );
        assert!(!log.contains("All links connected"), "{log}");
    }
    // Nothing left: no interface in the host namespace, no namespace
    // (conlink's own, the container's) of this test besides the hosts'.
    assert_eq!(link_names(&host), links_before);
    drop(c);
    drop(under);
    wait_until("namespaces gone", Duration::from_secs(10), || {
        netns_list(&p) == before
    });
}

#[test]
fn underlay_mtu_is_found_from_the_route_to_the_peers() {
    require_root();
    for (mtu, tunnel, warns) in [(9000u32, 8950u64, false), (1400, 1350, true)] {
        let p = prefix();
        let before = netns_list(&p);
        let under = Underlay::new(&p, 2, mtu);
        let mut c = Conlink::start_in(
            &under.hosts[0],
            &format!("{p}1"),
            &host_config(&p, 1),
            &["--peer", &Underlay::addr(2), "--compose-project", "lab"],
        );
        c.wait_connected();
        c.wait_for(
            &format!("multi-host: underlay MTU {mtu} (route to 192.168.213.2 via ul"),
            1,
            Duration::from_secs(5),
        );
        let t = ip_json(&c.own_ns, &["-d", "link", "show", "type", "vxlan"]);
        let t = &t.as_array().expect("list")[0];
        assert_eq!(t["mtu"], tunnel, "{t}");
        let warned = c
            .log()
            .iter()
            .any(|l| l.contains(&format!("exceed the multi-host tunnel MTU {tunnel}")));
        assert_eq!(
            warned, warns,
            "links of MTU 1400 against tunnel MTU {tunnel}"
        );
        assert!(c.stop());
        drop(under);
        wait_until("namespaces gone", Duration::from_secs(10), || {
            netns_list(&p) == before
        });
    }
}

#[test]
fn vxlan_p2p_without_this_hosts_address_is_refused_before_anything_is_made() {
    require_root();
    let p = prefix();
    let before = netns_list(&p);
    let under = Underlay::new(&p, 1, 1500);
    let host = under.hosts[0].clone();
    let links_before = link_names(&host);
    // The peer is neither routed nor does the list name this host.
    let mut c = Conlink::start_in(
        &host,
        &format!("{p}1"),
        &host_config(&p, 1),
        &["--peer", "10.250.0.9", "--mesh-tunnel", "vxlan-p2p"],
    );
    let t0 = Instant::now();
    let ok = loop {
        if let Some(st) = c.try_exit() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "conlink did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!ok, "conlink must refuse to start");
    wait_until("the error in the log", Duration::from_secs(5), || {
        c.log()
            .iter()
            .any(|l| l.contains("--mesh-tunnel vxlan-p2p needs this host's underlay address"))
    });
    assert_eq!(link_names(&host), links_before);
    drop(c);
    drop(under);
    wait_until("namespaces gone", Duration::from_secs(10), || {
        netns_list(&p) == before
    });
}
