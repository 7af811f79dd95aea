//! Privileged end-to-end tests of the daemon with the netns runtime: the real
//! binary, real namespaces, veths, bridges and pings.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{ip_json, link_names, netns_list, ping, prefix, require_root, Conlink};

#[test]
fn router_with_three_switches_routes_between_all_hosts() {
    require_root();
    let p = prefix();
    let before = netns_list(&p);
    let cfg = format!(
        r#"
links:
  - {{container: {p}r, dev: eth1, bridge: s1, ip: 10.201.1.254/24}}
  - {{container: {p}r, dev: eth2, bridge: s2, ip: 10.201.2.254/24}}
  - {{container: {p}r, dev: eth3, bridge: s3, ip: 10.201.3.254/24}}
  - {{container: {p}h1, bridge: s1, ip: 10.201.1.1/24, route: default via 10.201.1.254}}
  - {{container: {p}h2, bridge: s2, ip: 10.201.2.1/24, route: default via 10.201.2.254}}
  - {{container: {p}h3, bridge: s3, ip: 10.201.3.1/24, route: default via 10.201.3.254}}
commands:
  - {{container: {p}r, command: "echo 1 > /proc/sys/net/ipv4/ip_forward"}}
"#
    );
    let mut c = Conlink::start(&p, &cfg, &[]);
    c.wait_connected();
    c.wait_for("exited 0", 1, Duration::from_secs(10));
    let hosts = [
        (format!("{p}h1"), "10.201.1.1"),
        (format!("{p}h2"), "10.201.2.1"),
        (format!("{p}h3"), "10.201.3.1"),
    ];
    for (from, _) in &hosts {
        for (to, addr) in &hosts {
            if from != to {
                assert!(
                    ping(from, addr),
                    "{from} cannot reach {to} ({addr}) through the router"
                );
            }
        }
    }
    // The three bridges live in conlink's own namespace, not in the root one.
    let bridges = ip_json(&c.own_ns, &["link", "show", "type", "bridge"]);
    let names: Vec<&str> = bridges
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(c.stop(), "conlink exited with an error");
    assert_eq!(netns_list(&p), before, "namespaces left behind or removed");
}

#[test]
fn scaled_service_gets_offset_addresses_macs_and_settings() {
    require_root();
    let p = prefix();
    let cfg = format!(
        r#"
links:
  - service: {p}n
    bridge: s1
    ip: 10.202.0.1/24
    mac: c2:00:00:00:00:10
    mtu: 1400
    route:
      - 10.203.0.0/16 via 10.202.0.254
"#
    );
    let mut c = Conlink::start(&p, &cfg, &["--scale", &format!("{p}n=3")]);
    c.wait_connected();
    for i in 1..=3u32 {
        let ns = format!("{p}n_{i}");
        let link = &ip_json(&ns, &["addr", "show", "dev", "eth0"])[0];
        assert_eq!(link["mtu"], 1400, "{ns}");
        assert_eq!(
            link["address"],
            format!("c2:00:00:00:00:{:02x}", 0x10 + i - 1),
            "{ns}"
        );
        let addrs: Vec<String> = link["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["family"] == "inet")
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect();
        assert_eq!(addrs, vec![format!("10.202.0.{i}/24")], "{ns}");
        let routes = ip_json(&ns, &["route", "show", "10.203.0.0/16"]);
        assert_eq!(routes[0]["gateway"], "10.202.0.254", "{ns}: {routes}");
        assert_eq!(routes[0]["dev"], "eth0");
        // The default outer name is SERVICE_INDEX-DEV.
        let outer = ip_json(
            &c.own_ns,
            &["link", "show", "dev", &format!("{p}n_{i}-eth0")],
        );
        assert_eq!(outer[0]["master"], "s1");
    }
    assert!(ping(&format!("{p}n_1"), "10.202.0.3"));
    assert!(c.stop());
}

#[test]
fn a_failing_link_is_undone_and_does_not_disturb_others() {
    require_root();
    let p = prefix();
    let before = netns_list(&p);
    let cfg = format!(
        r#"
links:
  - {{container: {p}bad, dev: eth0, bridge: s1, ip: 10.204.0.1/24}}
  - {{container: {p}bad, dev: eth1, type: macvlan, outer-dev: {p}nope, mode: bridge}}
  - {{container: {p}ok, dev: eth0, bridge: s1, ip: 10.204.0.2/24}}
"#
    );
    let mut c = Conlink::start(&p, &cfg, &[]);
    c.wait_for(
        &format!("{p}ok: 1 link(s) ready"),
        1,
        Duration::from_secs(30),
    );
    c.wait_for("link setup failed", 1, Duration::from_secs(30));
    let failed = c.lines_with("link setup failed");
    assert!(
        failed[0].contains(&format!("{p}bad")) && failed[0].contains("eth1"),
        "error must name the container and link: {failed:?}"
    );
    // The good link of the bad container was undone.
    let names = link_names(&format!("{p}bad"));
    assert_eq!(names, vec!["lo"], "half-built container");
    // The other container is intact and conlink did not claim convergence.
    assert!(!c.log().iter().any(|l| l.contains("All links connected")));
    let ok = ip_json(&format!("{p}ok"), &["link", "show", "dev", "eth0"]);
    assert_eq!(ok[0]["operstate"], "UP");
    assert!(c.stop());
    assert_eq!(netns_list(&p), before);
}

#[test]
fn sigterm_leaves_nothing_in_namespaces_conlink_did_not_create() {
    require_root();
    let p = prefix();
    // The test owns these namespaces; conlink must clean inside, not remove them.
    let names = [format!("{p}x"), format!("{p}y")];
    for n in &names {
        assert!(Command::new("ip")
            .args(["netns", "add", n])
            .status()
            .unwrap()
            .success());
    }
    struct Del(Vec<String>);
    impl Drop for Del {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = Command::new("ip").args(["netns", "del", n]).status();
            }
        }
    }
    let _del = Del(names.to_vec());
    let cfg = format!(
        r#"
links:
  - {{container: {p}x, bridge: pp, ip: 10.205.0.1/24}}
  - {{container: {p}y, bridge: pp, ip: 10.205.0.2/24}}
bridges:
  - {{bridge: pp, mode: patch}}
"#
    );
    let mut c = Conlink::start(&p, &cfg, &[]);
    c.wait_connected();
    // The patch is a tc ingress u32 filter with a mirred redirect.
    let out = Command::new("tc")
        .args([
            "-n",
            &c.own_ns,
            "-j",
            "filter",
            "show",
            "dev",
            &format!("{p}x-eth0"),
            "ingress",
        ])
        .output()
        .unwrap();
    let filters = String::from_utf8_lossy(&out.stdout);
    assert!(filters.contains("mirred"), "no mirred action: {filters}");
    assert!(
        ping(&names[0], "10.205.0.2"),
        "no traffic through the patch"
    );
    assert!(c.stop());
    for n in &names {
        let left = link_names(n);
        assert_eq!(left, vec!["lo"], "{n}: conlink left interfaces behind");
    }
    assert!(
        !netns_list(&p).contains(&c.own_ns),
        "conlink's own namespace left behind"
    );
}

/// Interfaces in conlink's namespace whose name starts with `p`.
fn outer_ends(own: &str, p: &str) -> Vec<String> {
    let mut v: Vec<String> = link_names(own)
        .into_iter()
        .filter(|n| n.starts_with(p))
        .collect();
    v.sort();
    v
}

#[test]
fn namespaces_killed_mid_setup_are_cleaned_and_restarts_rewired() {
    require_root();
    let p = prefix();
    let before = netns_list(&p);
    let cfg =
        format!("links:\n  - {{service: {p}s, bridge: s1, ip: 10.206.0.1/24, nat: 10.206.9.9}}\n");
    let mut c = Conlink::start(&p, &cfg, &["--scale", &format!("{p}s=30")]);
    // Kill replicas while conlink is still setting the others up: as soon
    // as the first one reports ready.
    c.wait_for(" ready in ", 1, Duration::from_secs(30));
    for i in [7, 19, 30] {
        let st = Command::new("ip")
            .args(["netns", "del", &format!("{p}s_{i}")])
            .status()
            .unwrap();
        assert!(st.success());
    }
    c.wait_connected();
    // Their outer ends went with them (or were removed); the rest are there.
    let t0 = std::time::Instant::now();
    loop {
        let ends = outer_ends(&c.own_ns, &p);
        if ends.len() == 27 {
            assert!(!ends.contains(&format!("{p}s_7-eth0")), "{ends:?}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "outer ends: {ends:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A namespace coming back is a restart: its links are made again.
    let ready = format!("{p}s_7: 1 link(s) ready");
    let seen = c.log().iter().filter(|l| l.contains(&ready)).count();
    assert!(Command::new("ip")
        .args(["netns", "add", &format!("{p}s_7")])
        .status()
        .unwrap()
        .success());
    // The test made this one: it removes it, also when an assert fails.
    struct DelOnDrop(String);
    impl Drop for DelOnDrop {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _readded = DelOnDrop(format!("{p}s_7"));
    c.wait_for(&ready, seen + 1, Duration::from_secs(10));
    // (Every replica DNATs what arrives, so a ping would not answer here:
    // check the rewired state instead.)
    let l = &ip_json(&format!("{p}s_7"), &["addr", "show", "dev", "eth0"])[0];
    assert_eq!(l["operstate"], "UP", "{l}");
    assert_eq!(l["addr_info"][0]["local"], "10.206.0.7", "{l}");
    let outer = ip_json(&c.own_ns, &["link", "show", "dev", &format!("{p}s_7-eth0")]);
    assert_eq!(outer[0]["master"], "s1");
    let nft = Command::new("ip")
        .args(["netns", "exec", &format!("{p}s_7"), "nft", "list", "tables"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&nft.stdout).contains("conlink"));
    assert!(c.stop());
    // Everything conlink created is gone, including the re-added namespace's
    // links (the test made that one; conlink must not delete it).
    let mut after = netns_list(&p);
    after.retain(|n| n != &format!("{p}s_7"));
    assert_eq!(after, before);
    let names = link_names(&format!("{p}s_7"));
    assert_eq!(names, vec!["lo"]);
    let nft = Command::new("ip")
        .args(["netns", "exec", &format!("{p}s_7"), "nft", "list", "tables"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&nft.stdout).contains("conlink"),
        "nft table left behind"
    );
}

#[test]
fn a_restart_after_sigkill_adopts_its_links() {
    require_root();
    let p = prefix();
    let cfg = format!(
        "links:\n  - {{service: {p}k, bridge: s1, ip: 10.207.0.1/24}}\n\
         bridges:\n  - {{bridge: s1, mode: linux}}\n"
    );
    let scale = format!("{p}k=2");
    let mut first = Conlink::start(&p, &cfg, &["--scale", &scale]);
    let own = first.own_ns.clone();
    first.wait_connected();
    let idx =
        |ns: &str, dev: &str| ip_json(ns, &["link", "show", "dev", dev])[0]["ifindex"].clone();
    let (k1, k2) = (format!("{p}k_1"), format!("{p}k_2"));
    let before = (idx(&k1, "eth0"), idx(&k2, "eth0"), idx(&own, "s1"));
    // No cleanup at all: bridge, outer ends, namespaces stay behind.
    first.kill9();
    assert_eq!(outer_ends(&own, &p).len(), 2);
    // Traffic keeps flowing while conlink is down (the kernel keeps links).
    assert!(ping(&k1, "10.207.0.2"), "no traffic while conlink is down");
    // Restart: every link still matches, so every link is adopted as it
    // is (same ifindex), none is made again.
    let mut second = Conlink::start(&p, &cfg, &["--scale", &scale]);
    second.wait_connected();
    let log = second.log();
    for k in [&k1, &k2] {
        assert!(
            log.iter()
                .any(|l| l.contains(&format!("{k}: 1 link(s) adopted"))),
            "{log:#?}"
        );
    }
    assert!(
        !log.iter()
            .any(|l| l.contains("ready in") || l.contains("created")),
        "links were remade: {log:#?}"
    );
    assert_eq!(
        (idx(&k1, "eth0"), idx(&k2, "eth0"), idx(&own, "s1")),
        before
    );
    assert!(ping(&k1, "10.207.0.2"), "no traffic after the restart");
    // The first run marked the namespaces it made (on `lo`); the second
    // finds the mark and removes them at exit like its own.
    assert!(
        log.iter()
            .any(|l| l.contains("2 namespace(s) made by an earlier conlink run")),
        "{log:#?}"
    );
    assert!(second.stop());
    let left: Vec<String> = [&own, &k1, &k2]
        .into_iter()
        .filter(|n| std::path::Path::new("/run/netns").join(n).exists())
        .cloned()
        .collect();
    // (Removed by exact name if the assertion below fails.)
    for n in &left {
        let _ = Command::new("ip").args(["netns", "del", n]).status();
    }
    assert!(
        left.is_empty(),
        "namespaces of the first run left behind: {left:?}"
    );
}
