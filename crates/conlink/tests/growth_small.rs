//! The short version of `bench/growth` (N = 50) as a correctness check, not
//! a timing: every namespace gets both links (one on a shared Linux bridge,
//! one on a point-to-point patch with its pair), the outer ends carry no
//! IPv6 link-local address, traffic crosses both, and shutdown leaves
//! nothing behind (the namespaces conlink created go too).

mod common;

use std::time::Duration;

use common::{ip_json, link_names, netns_list, ping, prefix, require_root, Conlink};

const N: usize = 50;

/// The growth bench's network file for namespaces `{p}n1..{p}nN`.
fn config(p: &str) -> String {
    let mut s = String::from("bridges:\n  - {bridge: lan, mode: linux}\n");
    for k in (1..=N).step_by(2) {
        s += &format!("  - {{bridge: pt{k}, mode: patch}}\n");
    }
    s += "links:\n";
    for i in 1..=N {
        s += &format!(
            "  - {{container: {p}n{i}, dev: eth0, bridge: lan, mtu: 9000, ip: 10.90.0.{}/16, route: 10.91.0.0/16 via 10.90.0.1}}\n\
             \x20 - {{container: {p}n{i}, dev: eth1, bridge: pt{}, mtu: 9000, ip: 10.92.0.{}/16}}\n",
            10 + i,
            i - (1 - i % 2),
            10 + i
        );
    }
    s
}

#[test]
fn fifty_namespaces_two_links_each_all_present_and_all_gone_after() {
    require_root();
    let p = prefix();
    let before = netns_list(&p);
    let mut c = Conlink::start(&p, &config(&p), &[]);
    c.wait_connected();
    let ready = c
        .log()
        .iter()
        .filter(|l| l.contains("2 link(s) ready"))
        .count();
    assert_eq!(ready, N, "containers reported ready");
    for i in 1..=N {
        let ns = format!("{p}n{i}");
        let addrs = ip_json(&ns, &["-4", "addr", "show"]);
        let mut got: Vec<(String, String)> = addrs
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|l| {
                let name = l["ifname"].as_str().unwrap_or("").to_string();
                l["addr_info"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |a| (name.clone(), a["local"].as_str().unwrap_or("").to_string()))
            })
            .filter(|(n, _)| n != "lo")
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("eth0".to_string(), format!("10.90.0.{}", 10 + i)),
                ("eth1".to_string(), format!("10.92.0.{}", 10 + i)),
            ],
            "{ns}"
        );
        let routes = ip_json(&ns, &["route", "show", "10.91.0.0/16"]);
        assert_eq!(routes.as_array().map(Vec::len), Some(1), "{ns}: route");
    }
    // conlink's namespace: the bridge, N bridge ports, N patch ends.
    let outer = link_names(&c.own_ns);
    assert_eq!(
        outer.iter().filter(|n| n.ends_with("-eth0")).count(),
        N,
        "{outer:?}"
    );
    assert_eq!(outer.iter().filter(|n| n.ends_with("-eth1")).count(), N);
    let ports = ip_json(&c.own_ns, &["link", "show", "master", "lan"]);
    assert_eq!(ports.as_array().map(Vec::len), Some(N), "ports of lan");
    // Outer ends: no IPv6 address at all (IPv6 disabled in the namespace).
    let v6 = ip_json(&c.own_ns, &["-6", "addr", "show"]);
    let with_v6: Vec<&str> = v6
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["addr_info"].as_array().is_some_and(|a| !a.is_empty()))
        .filter_map(|l| l["ifname"].as_str())
        .filter(|n| n.ends_with("-eth0") || n.ends_with("-eth1"))
        .collect();
    assert!(with_v6.is_empty(), "outer ends with IPv6: {with_v6:?}");
    // Traffic: across the bridge (1 -> N) and across a patch (3 <-> 4).
    assert!(ping(&format!("{p}n1"), &format!("10.90.0.{}", 10 + N)));
    assert!(ping(&format!("{p}n3"), "10.92.0.14"));
    assert!(ping(&format!("{p}n4"), "10.92.0.13"));
    assert!(c.stop(), "conlink exited with an error");
    // Everything gone: conlink's namespace (bridge and outer ends with it)
    // and the namespaces it created for the containers.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while netns_list(&p) != before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(netns_list(&p), before, "namespaces left behind");
}
